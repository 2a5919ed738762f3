"""``python -m tests.support.fleet up SPEC.yml | down ROOT | digest PATH`` (as root, from the repository root)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

import yaml

from tests.support.fleet import Fleet, FleetError, down, tree_digest, up


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fleet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="build and start the fleet described by a YAML spec")
    start.add_argument("spec", type=Path)
    stop = commands.add_parser("down", help="stop everything the fleet started and remove its root")
    stop.add_argument("root", type=Path)
    digest = commands.add_parser("digest", help="SHA-256 of directory trees (paths, links, contents), one a line")
    digest.add_argument("paths", type=Path, nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            fleet = Fleet.from_spec(yaml.safe_load(args.spec.read_text()), args.spec.resolve().parent)
            up(fleet)
            print(json.dumps({"inventory": str(fleet.inventory), "hosts": [host.name for host in fleet.hosts]}))
        elif args.command == "down":
            print("\n".join(down(args.root)) or "nothing to do")
        else:
            print("\n".join(tree_digest(path) for path in args.paths))
    except FleetError as exc:
        print(f"fleet: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
