"""Injection: every string option of every module, and every string variable of the role, with every hostile value.

In process (fast, all values): ``ws_location`` and ``upgrade_map`` run as their action plugins do
(Ansible's argument validation, then ``converge`` with ``nginx_file`` as the target, real ``nginx -t``
and ``-T``), ``nginx_file`` and ``ws_probe`` run their ``main()``, and the role's variables go through
the role's argument spec and into the options the role passes them to. Through ``ansible-playbook``
(``test_injection_ansible.py``): a representative subset, including the role itself.

After every case: the value was refused (nothing changed on disk) or accepted, and the configuration
``nginx -T`` loads holds nothing it should not (no injected directive, one server, at most one
WebSocket location and one upgrade map); an accepted header or timeout reads back as exactly the value;
the canary file of the shell payloads never exists; nothing was written outside the sandbox and the
working directory.
"""

from __future__ import annotations

import functools
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import yaml

from ansible_collections.agaii.nginx.plugins.modules import ws_probe
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Directive
from tests.reliability.conftest import Figures
from tests.reliability.harness import converge, message, run_module_main, run_nginx_file, validate_args, write_request
from tests.reliability.hostile import hostile_values, short
from tests.reliability.workspace import (
    UPGRADE_MAP,
    Entry,
    Expectation,
    changed_entries,
    incident_site,
    loaded_directives,
    problems,
    read_tree,
    restore_tree,
)
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import REPO_ROOT, Backend

pytestmark = pytest.mark.nginx

ROLE_SPEC = REPO_ROOT / "roles" / "ws_proxy" / "meta" / "argument_specs.yml"
WS_NAMES = {"location", "proxy_pass", "proxy_http_version", "proxy_set_header", "proxy_read_timeout"}
ALLOWED = {*WS_NAMES, "proxy_send_timeout", "map", "default", ""}
OptionArgs = Callable[[str], Dict[str, Any]]
MAP_FILE = "conf.d/websocket-map.conf"
MAP_FILE_VARIABLE = "ws_proxy_map_file"


@dataclass
class Counts:
    """Outcome counts per option."""

    per_option: Dict[str, Counter[str]] = field(default_factory=dict)
    violations: List[str] = field(default_factory=list)

    def add(self, option: str, outcome: str) -> None:
        self.per_option.setdefault(option, Counter())[outcome] += 1

    @property
    def cases(self) -> int:
        return sum(sum(c.values()) for c in self.per_option.values())

    def record(self, figures: Figures, section: str) -> None:
        figures.record(section, "string options", len(self.per_option))
        figures.record(section, "cases run", self.cases)
        for option, outcomes in sorted(self.per_option.items()):
            figures.record(section, option, dict(outcomes.most_common()))
        figures.record(section, "violations", len(self.violations))


class Site:
    """The sandbox with the incident's site (and optionally the upgrade map), judged after each case."""

    def __init__(self, sandbox: NginxSandbox, canary: Path, with_map: bool) -> None:
        self.sandbox = sandbox
        self.canary = canary
        self.real = sandbox.write_site("app", incident_site(sandbox))
        self.link = sandbox.path("sites-enabled/app")
        if with_map:
            sandbox.write(MAP_FILE, UPGRADE_MAP)
        self.saved: Dict[str, Entry] = read_tree(sandbox.root)
        baseline = {d.name for d in loaded_directives(sandbox)}
        self.expected = Expectation(allowed_names=baseline | ALLOWED)

    def remove_map(self) -> None:
        """From now on the configuration has no upgrade map (and that is the state cases start from)."""
        self.sandbox.path(MAP_FILE).unlink()
        self.saved = read_tree(self.sandbox.root)

    @property
    def conf(self) -> str:
        return str(self.sandbox.conf)

    def judge(
        self,
        option: str,
        value: str,
        result: Dict[str, Any],
        counts: Counts,
        expected: Optional[Expectation] = None,
    ) -> List[Directive]:
        """Classify the outcome, check the loaded configuration, put the sandbox back; return the directives."""
        changed = changed_entries(self.saved, read_tree(self.sandbox.root))
        label = f"{option}={short(value)}"
        loaded: List[Directive] = []
        if result.get("failed") and changed and not result.get("changes_kept"):
            counts.violations.append(f"{label}: failed ({result.get('msg')}) but changed {changed}")
        if changed:
            loaded = loaded_directives(self.sandbox)
            counts.violations += [f"{label}: {problem}" for problem in problems(loaded, expected or self.expected)]
        if self.canary.exists():
            counts.violations.append(f"{label}: the canary {self.canary} was created")
            self.canary.unlink()
        counts.add(option, outcome(result, changed))
        restore_tree(self.sandbox.root, self.saved)
        return loaded


def outcome(result: Dict[str, Any], changed: List[str]) -> str:
    if result.get("rejected_by") == "argument spec":
        return "rejected by the argument spec"
    if result.get("crashed"):
        return "refused: the module crashed (" + message(result)[:60] + ")"
    if result.get("failed"):
        return "refused, nothing written" if not result.get("restored") else "refused by nginx -t, restored"
    return "accepted, config changed" if changed else "accepted, nothing to change"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    return tmp_path / "canary"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative paths in option values land here, never in the checkout."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def run_cases(
    values: List[str], options: Dict[str, OptionArgs], case: Callable[[str, Dict[str, Any], str], None]
) -> None:
    for option, make_args in options.items():
        for value in values:
            case(option, make_args(value), value)


def assert_clean(counts: Counts, values: List[str]) -> None:
    assert len(values) >= 30
    assert not counts.violations, "\n".join(counts.violations[:20])


# --------------------------------------------------------------------------- ws_location


def header_args(directives: List[Directive]) -> Dict[str, List[str]]:
    """The proxy_set_header arguments of the site's WebSocket location, by lower-case header name."""
    found: Dict[str, List[str]] = {}
    for directive in directives:
        parent = directive.parent
        in_ws_location = parent is not None and bool(parent.args) and "mqtt/ws" in parent.args[-1]
        if directive.name == "proxy_set_header" and in_ws_location and directive.args:
            found[directive.args[0].lower()] = directive.args
    return found


def check_reads_back(option: str, value: str, loaded: List[Directive], counts: Counts) -> None:
    """An accepted header or timeout is in the file as exactly the value (one argument, safely quoted)."""
    if not loaded:
        return
    headers = header_args(loaded)
    if option == "headers (value)" and headers.get("x-test") != ["X-Test", value]:
        counts.violations.append(f"header value {short(value)} reads back as {headers.get('x-test')}")
    if option == "headers (name)" and headers.get(value.lower()) != [value, "1"]:
        counts.violations.append(f"header name {short(value)} reads back as {headers.get(value.lower())}")
    if option in ("read_timeout", "send_timeout"):
        name = f"proxy_{option}"
        args = [d.args for d in loaded if d.name == name]
        if args != [[value.strip()]]:
            counts.violations.append(f"{option} {short(value)} reads back as {args}")


def ws_location_options(site: Site) -> Dict[str, OptionArgs]:
    base = {"path": str(site.link), "nginx_conf": site.conf}
    return {
        "path": lambda v: {**base, "path": v},
        "server_name": lambda v: {**base, "server_name": v},
        "listen": lambda v: {**base, "listen": v},
        "location": lambda v: {**base, "location": v},
        "before": lambda v: {**base, "before": v},
        "proxy_pass": lambda v: {**base, "proxy_pass": v},
        "proxy_pass (URL with the value)": lambda v: {**base, "proxy_pass": f"http://127.0.0.1:9/{v}"},
        "read_timeout": lambda v: {**base, "read_timeout": v},
        "send_timeout": lambda v: {**base, "send_timeout": v},
        "headers (name)": lambda v: {**base, "headers": {v: "1"}},
        "headers (value)": lambda v: {**base, "headers": {"X-Test": v}},
        "map_variable": lambda v: {**base, "map_variable": v},
        "match": lambda v: {**base, "match": v},
        "state": lambda v: {**base, "state": v},
        "backup_dir": lambda v: {**base, "backup": True, "backup_dir": v},
        "nginx_binary": lambda v: {**base, "nginx_binary": v},
        "nginx_conf": lambda v: {**base, "nginx_conf": v},
    }


def test_ws_location_options(nginx_sandbox: NginxSandbox, canary: Path, workdir: Path, figures: Figures) -> None:
    site, counts, values = Site(nginx_sandbox, canary, with_map=True), Counts(), hostile_values(str(canary))

    def case(option: str, args: Dict[str, Any], value: str) -> None:
        loaded = site.judge(option, value, converge("ws_location", args), counts)
        check_reads_back(option, value, loaded, counts)

    run_cases(values, ws_location_options(site), case)
    counts.record(figures, "injection: ws_location (in process)")
    assert_clean(counts, values)


# --------------------------------------------------------------------------- upgrade_map


def test_upgrade_map_options(nginx_sandbox: NginxSandbox, canary: Path, workdir: Path, figures: Figures) -> None:
    site, counts, values = Site(nginx_sandbox, canary, with_map=False), Counts(), hostile_values(str(canary))
    base = {"nginx_conf": site.conf}
    options: Dict[str, OptionArgs] = {
        "variable": lambda v: {**base, "variable": v},
        "map_file": lambda v: {**base, "map_file": v},
        "map_file (a conf.d file named with the value)": lambda v: {**base, "map_file": f"conf.d/{v}.conf"},
        "backup_dir": lambda v: {**base, "backup": True, "backup_dir": v, "map_file": site.conf},
        "nginx_binary": lambda v: {**base, "nginx_binary": v},
        "nginx_conf": lambda v: {**base, "nginx_conf": v},
    }

    def case(option: str, args: Dict[str, Any], value: str) -> None:
        result = converge("upgrade_map", args)
        loaded = site.judge(option, value, result, counts)
        maps = [d for d in loaded if d.name == "map"]
        wanted = ["$http_upgrade", f"${value.lstrip('$') or 'connection_upgrade'}"]
        if option == "variable" and maps and maps[0].args != wanted:
            counts.violations.append(f"variable {short(value)} reads back as {maps[0].args}")

    run_cases(values, options, case)
    counts.record(figures, "injection: upgrade_map (in process)")
    assert_clean(counts, values)


# --------------------------------------------------------------------------- nginx_file


def test_nginx_file_options(nginx_sandbox: NginxSandbox, canary: Path, workdir: Path, figures: Figures) -> None:
    site, counts, values = Site(nginx_sandbox, canary, with_map=True), Counts(), hostile_values(str(canary))
    data = site.real.read_bytes()
    read = {"operation": "read", "path": str(site.link), "nginx_conf": site.conf}
    write = write_request(site.real, data, data + b"# rewritten\n", site.conf)
    options: Dict[str, OptionArgs] = {
        "operation": lambda v: {**read, "operation": v},
        "path": lambda v: {**read, "path": v},
        "content": lambda v: {**write, "content": v},
        "expected_sha256": lambda v: {**write, "expected_sha256": v},
        "backup_dir": lambda v: {**write, "backup": True, "backup_dir": v},
        "nginx_binary": lambda v: {**read, "nginx_binary": v},
        "nginx_conf": lambda v: {**read, "nginx_conf": v},
    }

    # content is the file's new text: an empty one (base64 of nothing) is a valid request to empty the site
    emptied = Expectation(allowed_names=site.expected.allowed_names, servers=0)

    def case(option: str, args: Dict[str, Any], value: str) -> None:
        expected = emptied if option == "content" and value == "" else None
        result = run_nginx_file(args)
        if result.get("crashed"):  # every refusal is a message, never a traceback
            counts.violations.append(f"{option}={short(value)}: the module crashed: {message(result)[:200]}")
        site.judge(option, value, result, counts, expected)

    run_cases(values, options, case)
    counts.record(figures, "injection: nginx_file (in process)")
    assert_clean(counts, values)


# --------------------------------------------------------------------------- ws_probe


class RequestRecorder:
    """A TCP server on 127.0.0.1 that records each request head and answers 400."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.heads: List[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self.heads.append(_read_head(conn))
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def _read_head(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


@pytest.fixture
def recorder() -> Iterator[RequestRecorder]:
    server = RequestRecorder()
    yield server
    server.close()


DEFAULT_HEADERS = {"host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"}


def request_problems(head: bytes, extra_header: Optional[str]) -> List[str]:
    """A request head must be one request line and the expected header lines, CRLF only, no NUL."""
    found = []
    if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\r\n") or b"\0" in head:
        found.append(f"stray CR, LF or NUL in the request: {head[:200]!r}")
    lines = head.split(b"\r\n")
    if not (lines[0].startswith(b"GET ") and lines[0].endswith(b" HTTP/1.1")):
        found.append(f"request line {lines[0][:200]!r}")
    names = {line.split(b":", 1)[0].decode("latin-1").lower() for line in lines[1:]}
    allowed = DEFAULT_HEADERS | ({extra_header.lower()} if extra_header else set())
    if not names <= allowed or len(lines) - 1 != len(names):
        found.append(f"header lines {sorted(names)} (allowed {sorted(allowed)})")
    return found


def test_ws_probe_options(
    recorder: RequestRecorder, asgi_backend: Backend, canary: Path, workdir: Path, figures: Figures
) -> None:
    counts, values = Counts(), hostile_values(str(canary))
    base = {"url": f"ws://127.0.0.1:{recorder.port}/api/mqtt/ws/hints/probe", "timeout": 5}
    echo_url = asgi_backend.ws_url("/api/mqtt/ws/hints/probe")
    options: Dict[str, OptionArgs] = {
        "url": lambda v: {**base, "url": v},
        "url (path with the value)": lambda v: {**base, "url": f"{base['url']}/{v}"},
        "host": lambda v: {**base, "host": v},
        "headers (name)": lambda v: {**base, "headers": {v: "1"}},
        "headers (value)": lambda v: {**base, "headers": {"X-Test": v}},
        "echo": lambda v: {"url": echo_url, "echo": v, "timeout": 5},
    }

    def case(option: str, args: Dict[str, Any], value: str) -> None:
        sent = len(recorder.heads)
        result = run_module_main(ws_probe, args)
        label = f"{option}={short(value)}"
        for head in recorder.heads[sent:]:
            extra = value if option == "headers (name)" else "X-Test" if option == "headers (value)" else None
            counts.violations += [f"{label}: {problem}" for problem in request_problems(head, extra)]
        if option == "echo" and not result.get("failed") and result.get("echo_received") != value:
            counts.violations.append(f"{label}: echo came back as {short(str(result.get('echo_received')))}")
        if result.get("crashed"):
            counts.violations.append(f"{label}: the module crashed: {message(result)}")
        if canary.exists():
            counts.violations.append(f"{label}: the canary was created")
        counts.add(option, probe_outcome(result, len(recorder.heads) > sent))

    run_cases(values, options, case)
    counts.record(figures, "injection: ws_probe (in process)")
    assert_clean(counts, values)


def probe_outcome(result: Dict[str, Any], sent: bool) -> str:
    if str(result.get("msg", "")).startswith("invalid probe arguments"):
        return "refused before connecting"
    if result.get("failed"):
        return "request sent, probe failed" if sent else "probe failed"
    return "probe succeeded"


# --------------------------------------------------------------------------- role variables


@functools.lru_cache(maxsize=1)
def role_argument_spec() -> Dict[str, Dict[str, Any]]:
    options = yaml.safe_load(ROLE_SPEC.read_text())["argument_specs"]["main"]["options"]
    keep = ("type", "choices", "default", "required", "elements")
    return {name: {key: spec[key] for key in keep if key in spec} for name, spec in options.items()}


def role_string_variables() -> List[str]:
    return sorted(name for name, spec in role_argument_spec().items() if spec.get("type", "str") in ("str", "path"))


def role_module_args(variables: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """What tasks/main.yml passes to each module (``x | default('', true) or omit`` drops empty values)."""
    common = {
        "nginx_binary": variables["ws_proxy_nginx_binary"],
        "nginx_conf": variables["ws_proxy_nginx_conf"],
        "backup": variables["ws_proxy_backup"],
        "backup_dir": variables["ws_proxy_backup_dir"],
    }
    location = {
        "path": variables["ws_proxy_site"],
        "server_name": variables["ws_proxy_server_name"] or None,
        "listen": variables["ws_proxy_listen"] or None,
        "location": variables["ws_proxy_location"],
        "before": variables["ws_proxy_before"],
        "proxy_pass": variables["ws_proxy_upstream"] or None,
        "read_timeout": variables["ws_proxy_read_timeout"],
        "send_timeout": variables["ws_proxy_send_timeout"],
        "match": variables["ws_proxy_match"],
        **common,
    }
    return {
        "upgrade_map": {"map_file": variables["ws_proxy_map_file"] or None, **common},
        "ws_location": {name: value for name, value in location.items() if value is not None},
        "ws_probe": {"url": variables["ws_proxy_verify_url"], "host": variables["ws_proxy_verify_host"] or None},
    }


class RoleModel:
    """The role's tasks in process: argument spec, the plan (ws_location in check mode), then upgrade_map,
    ws_location and (with a URL) ws_probe.

    The sandbox is put back after every case, so upgrade_map with the same arguments gives the same
    result: it is computed once per distinct set of arguments (most cases vary only other variables).
    """

    def __init__(self) -> None:
        self.map_results: Dict[str, Dict[str, Any]] = {}

    def __call__(self, variables: Dict[str, Any]) -> Dict[str, Any]:
        try:
            validated = validate_args(role_argument_spec(), variables)
        except ValueError as exc:
            return {"failed": True, "rejected_by": "argument spec", "msg": str(exc)}
        module_args = role_module_args(validated)
        map_args = {k: v for k, v in module_args["upgrade_map"].items() if v is not None}
        location_args = {k: v for k, v in module_args["ws_location"].items() if v is not None}
        plan = converge("ws_location", location_args, check_mode=True)
        if plan.get("failed"):  # the role plans ws_location in check mode before upgrade_map writes
            return plan
        result = self.upgrade_map(map_args)
        if result.get("failed"):
            return result
        result = converge("ws_location", location_args)
        if result.get("failed"):
            return result
        return self.probe(module_args["ws_probe"])

    def upgrade_map(self, args: Dict[str, Any]) -> Dict[str, Any]:
        key = json.dumps(args, sort_keys=True)
        if key not in self.map_results:
            result = converge("upgrade_map", args)
            if result.get("failed") or not result.get("changed"):  # nothing stays written: reusable
                self.map_results[key] = result
            return result
        return self.map_results[key]

    @staticmethod
    def probe(probe: Dict[str, Any]) -> Dict[str, Any]:
        if not probe["url"]:
            return {"failed": False}
        result = run_module_main(ws_probe, {**{k: v for k, v in probe.items() if v is not None}, "timeout": 2})
        return {**result, "changes_kept": True}  # the proof runs after the edits and the reload, as in the role


def test_role_variables(nginx_sandbox: NginxSandbox, canary: Path, workdir: Path, figures: Figures) -> None:
    """The map is loaded (the role reuses it), except for ws_proxy_map_file, which matters only without one."""
    site, counts, values = Site(nginx_sandbox, canary, with_map=True), Counts(), hostile_values(str(canary))
    base = {"ws_proxy_site": str(site.link), "ws_proxy_nginx_conf": site.conf, "ws_proxy_reload_method": "none"}
    names = role_string_variables()

    role_model = RoleModel()

    def case(option: str, args: Dict[str, Any], value: str) -> None:
        site.judge(option, value, role_model(args), counts)

    run_cases(values, {n: (lambda v, n=n: {**base, n: v}) for n in names if n != MAP_FILE_VARIABLE}, case)
    site.remove_map()
    run_cases(values, {MAP_FILE_VARIABLE: lambda v: {**base, MAP_FILE_VARIABLE: v}}, case)
    figures.record("injection: ws_proxy role variables (in process)", "string variables", len(names))
    counts.record(figures, "injection: ws_proxy role variables (in process)")
    assert len(names) >= 14 and MAP_FILE_VARIABLE in names
    assert_clean(counts, values)
