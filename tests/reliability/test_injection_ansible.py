"""Injection through ``ansible-playbook``: a representative subset of hostile values for every module and
for the ws_proxy role (AnsiballZ, action plugins, the role's templates, argument specs and handlers).

One playbook runs the module cases (tasks with ``ignore_errors``), another the role cases (includes in
block/rescue; variables the role only validates, such as ``ws_proxy_match``, are covered in process). Then
the configuration ``nginx -T`` loads holds nothing it should not, the canary of the shell payloads does
not exist, every request ``ws_probe`` sent is one request line and the expected header lines, and each
case ended as expected: refused, or (for header values) accepted and quoted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.action.upgrade_map import ARGUMENT_SPEC as MAP_OPTIONS
from ansible_collections.agaii.nginx.plugins.action.ws_location import ARGUMENT_SPEC as WS_OPTIONS
from ansible_collections.agaii.nginx.plugins.modules.nginx_file import ARGUMENT_SPEC as FILE_OPTIONS
from tests.reliability.conftest import Figures
from tests.reliability.harness import Playbooks, module_case, role_case
from tests.reliability.test_injection import RequestRecorder, header_args, request_problems
from tests.reliability.workspace import Expectation, incident_site, loaded_directives, problems
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

PROBE_OPTIONS = ("url", "host", "headers", "echo", "timeout")
ALLOWED = {"location", "proxy_pass", "proxy_http_version", "proxy_set_header", "proxy_read_timeout"}
ALLOWED |= {"proxy_send_timeout", "map", "default", ""}
QUOTED_HEADER = '"; add_header X-Injected 1; "'
Case = Tuple[str, Dict[str, Any], str]  # (module or "role", options, expected: "refused" / "accepted")


def module_cases(link: str, conf: str, canary: str, probe_url: str) -> List[Case]:
    site = {"path": link, "nginx_conf": conf}
    refused = "refused"
    cases: List[Case] = [
        ("agaii.nginx.upgrade_map", {"nginx_conf": conf, "variable": "x; add_header X-Injected 1"}, refused),
        ("agaii.nginx.upgrade_map", {"nginx_conf": conf, "map_file": "/tmp/x;add_header X-Injected 1"}, refused),
        ("agaii.nginx.upgrade_map", {"nginx_conf": conf, "nginx_binary": f"nginx; touch {canary}"}, refused),
        ("agaii.nginx.ws_location", {**site, "location": "^/ws/ { add_header X-Injected 1; }"}, refused),
        ("agaii.nginx.ws_location", {**site, "before": "/api/; return 200 x"}, refused),
        ("agaii.nginx.ws_location", {**site, "proxy_pass": "http://127.0.0.1:9; add_header X-Injected 1"}, refused),
        ("agaii.nginx.ws_location", {**site, "read_timeout": "1s\nadd_header X-Injected 1;"}, refused),
        ("agaii.nginx.ws_location", {**site, "send_timeout": f"$(touch {canary})"}, refused),
        ("agaii.nginx.ws_location", {**site, "server_name": "app.example.test; }"}, refused),
        ("agaii.nginx.ws_location", {**site, "listen": "80; add_header X-Injected 1"}, refused),
        ("agaii.nginx.ws_location", {**site, "map_variable": "x; add_header X-Injected 1"}, refused),
        ("agaii.nginx.ws_location", {**site, "headers": {"X-A; add_header X-Injected 1;": "1"}}, refused),
        ("agaii.nginx.ws_location", {**site, "headers": {"X-Nul": "a\x00b"}}, refused),
        ("agaii.nginx.ws_location", {**site, "match": "auto; add_header X-Injected 1"}, refused),
        ("agaii.nginx.ws_location", {**site, "nginx_binary": f"nginx; touch {canary}"}, refused),
        ("agaii.nginx.ws_location", {**site, "nginx_conf": f"`touch {canary}`"}, refused),
        ("agaii.nginx.ws_location", {**site, "path": f"{link}; touch {canary}"}, refused),
        ("agaii.nginx.ws_location", {**site, "headers": {"X-Test": QUOTED_HEADER}}, "accepted"),
        ("agaii.nginx.nginx_file", {"operation": "read; touch", "path": link}, refused),
        ("agaii.nginx.nginx_file", {"operation": "read", "path": link, "nginx_binary": f"`touch {canary}`"}, refused),
        (
            "agaii.nginx.nginx_file",
            {"operation": "write", "path": link, "content": "x; add_header X-Injected 1", "expected_sha256": "0"},
            refused,
        ),
        (
            "agaii.nginx.nginx_file",
            {"operation": "write", "path": link, "content": "", "expected_sha256": f"$(touch {canary})"},
            refused,
        ),
        ("agaii.nginx.ws_probe", {"url": f"{probe_url}\r\nX-Injected: 1"}, refused),
        ("agaii.nginx.ws_probe", {"url": probe_url, "host": "h\r\nX-Injected: 1"}, refused),
        ("agaii.nginx.ws_probe", {"url": probe_url, "headers": {"X-Test": "a\r\nX-Injected: 1"}}, refused),
        ("agaii.nginx.ws_probe", {"url": probe_url, "headers": {"X-Test": "a; X-Injected: 1"}}, refused),
    ]
    return cases


def role_cases(link: str, conf: str, canary: str, probe_url: str) -> List[Case]:
    base = {"ws_proxy_site": link, "ws_proxy_nginx_conf": conf, "ws_proxy_reload_method": "none"}
    backup_dir = f"{Path(conf).parent}/sites-enabled"  # where nginx loads files: a backup must never go there
    hostile = {
        "ws_proxy_site": f"$(touch {canary})",
        "ws_proxy_location": "^/ws/ { add_header X-Injected 1; }",
        "ws_proxy_upstream": "http://127.0.0.1:9; add_header X-Injected 1",
        "ws_proxy_listen": "80 ssl; add_header X-Injected 1",
        "ws_proxy_read_timeout": "1s\nadd_header X-Injected 1;",
        "ws_proxy_nginx_binary": f"nginx; touch {canary}",
        "ws_proxy_nginx_conf": f"`touch {canary}`",
        "ws_proxy_reload_method": f"signal; touch {canary}",
        "ws_proxy_verify_url": f"{probe_url}\r\nX-Injected: 1",
    }
    cases: List[Case] = [("role", {**base, name: value}, "refused") for name, value in hostile.items()]
    cases.append(("role", {**base, "ws_proxy_backup": True, "ws_proxy_backup_dir": backup_dir}, "refused"))
    # every refusal, the proof's URL included, comes before the first write (tests/integration/
    # test_role_refusals.py), so no earlier case has added the map: the hostile map_file is planned and refused
    cases.append(("role", {**base, "ws_proxy_map_file": "/tmp/x;add_header X-Injected 1"}, "refused"))
    verify_host = {**base, "ws_proxy_verify_url": probe_url, "ws_proxy_verify_host": "h\r\nX-Injected: 1"}
    return [*cases, ("role", verify_host, "refused")]


def tasks_for(cases: List[Case]) -> List[Dict[str, Any]]:
    options = {
        "agaii.nginx.ws_location": tuple(WS_OPTIONS),
        "agaii.nginx.upgrade_map": tuple(MAP_OPTIONS),
        "agaii.nginx.nginx_file": tuple(FILE_OPTIONS),
        "agaii.nginx.ws_probe": PROBE_OPTIONS,
    }
    return [
        role_case(index, args) if module == "role" else module_case(index, module, options[module])
        for index, (module, args, _expected) in enumerate(cases)
    ]


@dataclass
class Prepared:
    sandbox: NginxSandbox
    real: Path
    link: str
    conf: str
    canary: Path
    recorder: RequestRecorder
    baseline: Set[str]

    @property
    def probe_url(self) -> str:
        return f"ws://127.0.0.1:{self.recorder.port}/api/mqtt/ws/hints/probe"


@pytest.fixture
def prepared(nginx_sandbox: NginxSandbox, tmp_path: Path) -> Iterator[Prepared]:
    recorder = RequestRecorder()
    real = nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    link, conf = str(nginx_sandbox.path("sites-enabled/app")), str(nginx_sandbox.conf)
    baseline = {d.name for d in loaded_directives(nginx_sandbox)}
    try:
        yield Prepared(nginx_sandbox, real, link, conf, tmp_path / "canary", recorder, baseline)
    finally:
        recorder.close()


def run_cases(
    prepared: Prepared, cases: List[Case], tmp_path: Path, figures: Figures, section: str, locations: int
) -> Tuple[List[Any], Dict[str, Any]]:
    """Run every case in one playbook; check each outcome, the loaded configuration, canary and requests.
    Return the loaded directives and the results."""
    run = Playbooks(tmp_path).run(
        tasks_for(cases),
        {"cases": [args for _m, args, _e in cases]},
        [f"case_{index}" for index in range(len(cases))],
    )
    assert run.returncode == 0, run.output[-5000:]
    outcomes: Counter[str] = Counter()
    for index, (module, args, expected) in enumerate(cases):
        result = run.results[f"case_{index}"]
        got = "refused" if result["failed"] else "accepted"
        outcomes[f"{module}: {got}"] += 1
        assert got == expected, (module, args, result)
    loaded = loaded_directives(prepared.sandbox)
    assert problems(loaded, Expectation(allowed_names=prepared.baseline | ALLOWED)) == []
    assert not prepared.canary.exists()
    assert all(request_problems(head, "X-Test") == [] for head in prepared.recorder.heads), prepared.recorder.heads
    assert len(re.findall(rb"(?m)^\s*location\s", prepared.real.read_bytes())) == locations
    figures.record(section, "cases run", len(cases))
    figures.record(section, "outcomes", dict(outcomes))
    figures.record(section, "probe requests recorded (all clean)", len(prepared.recorder.heads))
    figures.record(section, "seconds", round(run.elapsed, 1))
    return loaded, run.results


def test_modules_through_ansible(prepared: Prepared, tmp_path: Path, figures: Figures) -> None:
    p = prepared
    cases = module_cases(p.link, p.conf, str(p.canary), p.probe_url)
    # the accepted (quoted) header case adds the WebSocket location beside /api/
    loaded, _results = run_cases(p, cases, tmp_path, figures, "injection: modules through ansible-playbook", 2)
    assert header_args(loaded).get("x-test") == ["X-Test", QUOTED_HEADER]


def test_role_through_ansible(prepared: Prepared, tmp_path: Path, figures: Figures) -> None:
    p = prepared
    cases = role_cases(p.link, p.conf, str(p.canary), p.probe_url)
    # every hostile role value is refused before the first write: the site keeps its one location
    section = "injection: ws_proxy role through ansible-playbook"
    _loaded, results = run_cases(p, cases, tmp_path, figures, section, 1)
    # the preflight runs the binary through a shell: quoted, so the whole value is one (missing) command name
    (binary,) = [i for i, (_m, args, _e) in enumerate(cases) if "ws_proxy_nginx_binary" in args]
    failure = results[f"case_{binary}"]
    assert failure["task"] == "Preflight - fail when nginx is missing", failure
    assert failure["msg"].startswith(f"nginx was not found (nginx; touch {p.canary}): "), failure
