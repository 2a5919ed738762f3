"""Golden before/after cases for the planner: ``tests/unit/golden/<case>/``.

Each case holds ``before.conf``, the expected ``after.conf`` and optionally ``case.json`` with the
planner settings and facts about the case. The files are stored as UTF-8 with LF line ends (so the
repository's own sanity checks pass); ``"newline": "crlf"`` and ``"encoding": "latin-1"`` in case.json
turn them into CRLF or Latin-1 bytes before the test sees them (``absent_restores``: whether state=absent on the result
gives the original bytes back). ``python -m tests.unit.plugin_utils._engine.golden`` rewrites every
``after.conf`` from the current planner (``handshake``: whether the integration test proves a
101 through nginx with it): review the diff before committing it.
"""

from __future__ import annotations

import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden"
SITE_PATH = "/etc/nginx/sites-enabled/site.conf"


@dataclass
class GoldenCase:
    name: str
    before: bytes
    after: bytes
    settings: Dict[str, Any] = field(default_factory=dict)
    absent_restores: bool = True
    handshake: bool = True
    newline: str = "lf"
    encoding: str = "utf-8"

    @property
    def directory(self) -> Path:
        return GOLDEN_DIR / self.name


def as_case_bytes(stored: bytes, meta: Dict[str, Any]) -> bytes:
    """Stored (UTF-8, LF) → the bytes the case is about."""
    data = stored.decode("utf-8").encode(meta.get("encoding", "utf-8"))
    return data.replace(b"\n", b"\r\n") if meta.get("newline") == "crlf" else data


def as_stored_bytes(data: bytes, case: GoldenCase) -> bytes:
    if case.newline == "crlf":
        data = data.replace(b"\r\n", b"\n")
    return data.decode(case.encoding).encode("utf-8")


def load_cases() -> List[GoldenCase]:
    cases = []
    for directory in sorted(p for p in GOLDEN_DIR.iterdir() if p.is_dir()):
        meta = json.loads((directory / "case.json").read_text()) if (directory / "case.json").exists() else {}
        after = directory / "after.conf"
        cases.append(
            GoldenCase(
                name=directory.name,
                before=as_case_bytes((directory / "before.conf").read_bytes(), meta),
                after=as_case_bytes(after.read_bytes(), meta) if after.exists() else b"",
                settings=meta.get("settings", {}),
                absent_restores=meta.get("absent_restores", True),
                handshake=meta.get("handshake", True),
                newline=meta.get("newline", "lf"),
                encoding=meta.get("encoding", "utf-8"),
            )
        )
    return cases


def plan_case(case: GoldenCase) -> bytes:
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings

    plan = plan_websocket(load(SITE_PATH, case.before), SITE_PATH, Settings(**case.settings))
    return plan.after.get(SITE_PATH, case.before)


def regenerate() -> None:
    for case in load_cases():
        (case.directory / "after.conf").write_bytes(as_stored_bytes(plan_case(case), case))
        print(f"wrote {case.directory / 'after.conf'}")


if __name__ == "__main__":
    sys.path.insert(0, str(GOLDEN_DIR.parents[2] / ".build" / "collections"))
    importlib.import_module("tests.conftest")  # links the checkout as the collection

    regenerate()
