"""Figures of the reliability tests: every test records what it counted, and the run prints them.

A test calls ``figures.record(section, name, value)``. Each figure is printed at once and appended
(one JSON object per line) to ``$AGAII_FIGURES_FILE`` (default ``.build/reliability/figures.jsonl``);
the terminal summary of the run (the controller, also under pytest-xdist) prints them all, which is
where the numbers in ``docs/reliability.md`` come from.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.support.pytest_fixtures import REPO_ROOT

FIGURES_FILE = Path(os.environ.get("AGAII_FIGURES_FILE", REPO_ROOT / ".build" / "reliability" / "figures.jsonl"))


class Figures:
    """Appends figures to the shared file; one instance per test."""

    def __init__(self, test: str) -> None:
        self.test = test

    def record(self, section: str, name: str, value: Any) -> None:
        entry = {"section": section, "name": name, "value": value, "test": self.test, "time": time.time()}
        FIGURES_FILE.parent.mkdir(parents=True, exist_ok=True)
        with FIGURES_FILE.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, sort_keys=True, default=str) + "\n")
        print(f"[figure] {section}: {name} = {value}")

    def record_all(self, section: str, values: Dict[str, Any]) -> None:
        for name, value in values.items():
            self.record(section, name, value)


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    yield Figures(request.node.nodeid)


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    if _is_controller(session.config) and FIGURES_FILE.exists():
        FIGURES_FILE.unlink()


def read_figures() -> List[Dict[str, Any]]:
    if not FIGURES_FILE.exists():
        return []
    return [json.loads(line) for line in FIGURES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    entries = read_figures()
    if not entries or not _is_controller(config):
        return
    terminalreporter.section("reliability figures")
    for entry in sorted(entries, key=lambda e: (e["section"], e["time"])):
        terminalreporter.write_line(f"{entry['section']}: {entry['name']} = {entry['value']}")
    terminalreporter.write_line(f"(also in {FIGURES_FILE})")


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """The reliability suite (fuzzing, injection, faults, load) belongs to the full tier (scripts/test --all)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.full)
