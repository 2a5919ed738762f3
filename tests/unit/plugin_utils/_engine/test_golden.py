"""Golden before/after cases: exact bytes, idempotence, and state=absent restoring the original."""

from __future__ import annotations

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from tests.unit.plugin_utils._engine.golden import SITE_PATH, GoldenCase, load_cases, plan_case

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan_gives_the_golden_bytes(case: GoldenCase) -> None:
    assert plan_case(case) == case.after


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_planning_the_result_again_changes_nothing(case: GoldenCase) -> None:
    plan = plan_websocket(load(SITE_PATH, case.after), SITE_PATH, Settings(**case.settings))
    assert not plan.changed
    assert plan.after == {}
    assert {s.action for s in plan.servers} == {"unchanged"}


@pytest.mark.parametrize("case", [c for c in CASES if c.absent_restores], ids=lambda c: c.name)
def test_absent_removes_exactly_what_was_added(case: GoldenCase) -> None:
    settings = Settings(**{**case.settings, "state": "absent"})
    plan = plan_websocket(load(SITE_PATH, case.after), SITE_PATH, settings)
    assert plan.after[SITE_PATH] == case.before
    assert {s.action for s in plan.servers} == {"removed"}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bytes_outside_the_edit_are_untouched(case: GoldenCase) -> None:
    plan = plan_websocket(load(SITE_PATH, case.before), SITE_PATH, Settings(**case.settings))
    rebuilt = bytearray()
    cursor = 0
    for edit in sorted(plan.edits, key=lambda e: e.start):
        rebuilt += case.before[cursor : edit.start] + edit.text
        cursor = edit.end
    rebuilt += case.before[cursor:]
    assert bytes(rebuilt) == case.after
    for edit in plan.edits:
        assert edit.start == edit.end or case.before[edit.start : edit.end].strip(), "only directives are replaced"


def test_golden_set_covers_the_documented_situations() -> None:
    names = {c.name for c in CASES}
    assert {
        "incident",
        "incident_before",
        "caret_api",
        "regex_api_first",
        "crlf",
        "tabs",
        "one_line",
        "brace_next_line",
        "no_final_newline",
        "latin1",
        "if_block",
        "map_other_name",
    } <= names


def test_crlf_file_gets_crlf_lines_only() -> None:
    case = next(c for c in CASES if c.name == "crlf")
    assert case.after.count(b"\n") == case.after.count(b"\r\n")


def test_missing_final_newline_stays_missing() -> None:
    case = next(c for c in CASES if c.name == "no_final_newline")
    assert case.after.endswith(b"}") and not case.before.endswith(b"\n")


def test_latin1_bytes_are_copied_not_reencoded() -> None:
    case = next(c for c in CASES if c.name == "latin1")
    assert b"caf\xe9 r\xe9seau" in case.after
    assert case.after.count(b'"\xe9t\xe9"') == 2
    assert b"\xef\xbf\xbd" not in case.after


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_line_gains_trailing_whitespace(case: GoldenCase) -> None:
    def trailing(data: bytes) -> list:
        return [line for line in data.splitlines() if line != line.rstrip(b" \t")]

    assert trailing(case.after) == trailing(case.before)
