"""A sandboxed nginx configuration under test: its files, what changed, and the directives nginx loads."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple, Union

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Directive, load
from tests.reliability.hostile import INJECTED_DIRECTIVES, INJECTED_HEADER
from tests.support.incident import INCIDENT_SITE_SERVER_HEADERS
from tests.support.nginx_sandbox import NginxSandbox

SKIPPED_DIRS = ("logs", "temp")
RUNTIME_FILES = ("nginx.pid", "nginx.lock")  # written by nginx itself, not configuration
Entry = Union[bytes, Tuple[str, str]]  # file bytes, ("link", target) or ("dir", "")

UPGRADE_MAP = """\
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
"""


def incident_site(sandbox: NginxSandbox, upstream: str = "127.0.0.1:9") -> bytes:
    return INCIDENT_SITE_SERVER_HEADERS.format(listen=sandbox.listen, upstream=upstream).encode()


DIRECTORY: Tuple[str, str] = ("dir", "")


def read_tree(root: Path) -> Dict[str, Entry]:
    """Every file, symlink and directory under ``root`` (relative path -> bytes, ("link", target) or
    ("dir", "")), leaving out logs, temp and nginx's runtime files."""
    entries: Dict[str, Entry] = {}
    for directory, dirs, names in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        dirs[:] = [d for d in dirs if not (rel_dir == "." and d in SKIPPED_DIRS)]
        for name in names + dirs:
            path = os.path.join(directory, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if rel in RUNTIME_FILES:
                continue
            if os.path.islink(path):
                entries[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                entries[rel] = DIRECTORY
            else:
                entries[rel] = Path(path).read_bytes()
    return entries


def changed_entries(before: Dict[str, Entry], after: Dict[str, Entry]) -> List[str]:
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def restore_tree(root: Path, saved: Dict[str, Entry]) -> None:
    """Put ``root`` back to ``saved``: remove what is new, recreate what changed or went missing."""
    changed = changed_entries(saved, read_tree(root))
    for name in sorted(changed, key=len, reverse=True):  # deepest first
        _remove(root / name)
    for name in sorted(changed, key=len):  # parents first
        entry = saved.get(name)
        path = root / name
        if entry == DIRECTORY:
            path.mkdir(parents=True, exist_ok=True)
        elif isinstance(entry, tuple):
            path.symlink_to(entry[1])
        elif entry is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(entry)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def dump_bytes(sandbox: NginxSandbox) -> bytes:
    """``nginx -T`` as bytes (``NginxSandbox.dump`` decodes text, which turns a CR into a line feed)."""
    argv = [sandbox.nginx_bin, "-p", f"{sandbox.root}/", "-c", str(sandbox.conf), "-e", "stderr", "-T"]
    result = subprocess.run(argv, capture_output=True, check=False, timeout=30)
    if result.returncode != 0:
        raise AssertionError(f"nginx -T failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def loaded_directives(sandbox: NginxSandbox) -> List[Directive]:
    """Every directive of every file ``nginx -T`` lists (the configuration nginx would load)."""
    main = str(sandbox.conf)
    config = load(main, sandbox.conf.read_bytes(), dump_bytes(sandbox), main=main)
    return [directive for file in config.files.values() for directive in file.walk()]


@dataclass(frozen=True)
class Expectation:
    """What the loaded configuration may contain: directive names, and at most this many of each kind."""

    allowed_names: Set[str]
    servers: int = 1
    locations: int = 2
    upgrade_maps: int = 1


def is_upgrade_map(directive: Directive) -> bool:
    return directive.name == "map" and directive.args[:1] == ["$http_upgrade"]


def problems(directives: Iterable[Directive], expected: Expectation) -> List[str]:
    """What the loaded configuration holds that it should not (empty when it is clean)."""
    found: List[str] = []
    listed = list(directives)
    names = Counter(d.name for d in listed)
    for directive in listed:
        if directive.name in INJECTED_DIRECTIVES or directive.name not in expected.allowed_names:
            found.append(f"unexpected directive {directive.describe()!r} at {directive.where}")
        if directive.name != "proxy_set_header" and INJECTED_HEADER in directive.args:
            found.append(f"injected argument in {directive.describe()!r} at {directive.where}")
    if names["server"] != expected.servers:
        found.append(f"{names['server']} server blocks (expected {expected.servers})")
    if names["location"] > expected.locations:
        found.append(f"{names['location']} locations (at most {expected.locations})")
    maps = sum(1 for d in listed if is_upgrade_map(d))
    if maps > expected.upgrade_maps:
        found.append(f"{maps} upgrade maps (at most {expected.upgrade_maps})")
    return found
