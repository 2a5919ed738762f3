"""agaii.nginx.route_info and the agaii.nginx.diagnose_websocket playbook on real nginx sandboxes with real
backends: one sandbox per verdict, diagnosed as a fleet in one ansible-playbook run.

The fleet run is expensive (ten sandboxes, one playbook), so it runs once per pytest session even under
xdist: the first worker runs it under a file lock and leaves the result next to its temporary directory.
"""

from __future__ import annotations

import fcntl
import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import select_server
from tests.support.ansible_run import ansible_playbook
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.processes import LOCALHOST, ManagedProcess, free_port, wait_for_port
from tests.support.pytest_fixtures import REPO_ROOT, Backend

pytestmark = pytest.mark.nginx

VHOST = "app.example.test"
WS_URI = "/api/mqtt/ws/hints/diagnose"
RESULTS_MARKER = "RESULTS:"

CONNECTION_MAP = "map $http_upgrade $connection_upgrade {\n    default upgrade;\n    ''      close;\n}\n"

WS_LOCATION = """\
    location ~ ^/api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 3600s;
    }}
"""
API_LOCATION = """\
    location /api/ {{
        proxy_pass http://{upstream};
    }}
"""


def site(*locations: str) -> str:
    head = "server {{\n    listen {listen};\n    server_name app.example.test;\n"
    return head + "".join(locations) + "}}\n"


# The location at line 4 of each site is the one the verdicts name.
SITES = {
    "healthy": site(WS_LOCATION, API_LOCATION),
    "backend_stopped": site(WS_LOCATION, API_LOCATION),
    "routing_shadowed": site(API_LOCATION.replace("location /api/", "location ~ ^/api/"), WS_LOCATION),
    "headers_missing": site(WS_LOCATION.replace("        proxy_set_header Upgrade $http_upgrade;\n", ""), API_LOCATION),
    "http10_strict": site(WS_LOCATION.replace("        proxy_http_version 1.1;\n", ""), API_LOCATION),
    "missing_map": site(WS_LOCATION, API_LOCATION),
    "timeout_short": site(WS_LOCATION.replace("        proxy_read_timeout 3600s;\n", ""), API_LOCATION),
    "nginx_stopped": site(WS_LOCATION, API_LOCATION),
    "backend_refuses": site(
        WS_LOCATION.replace("location ~ ^/api/mqtt/ws/", "location ^~ /api/mqtt/ws/").replace(
            "proxy_pass http://{upstream};", "proxy_pass http://{upstream}/nowhere/;"
        ),
        API_LOCATION,
    ),
}
STRICT_BACKEND = {"http10_strict"}
NOT_STARTED = {"nginx_stopped"}
MISCONFIGURED = "misconfigured"  # no ws_proxy_diagnose_uri: the role's argument_specs refuse it


# --------------------------------------------------------------------------- running ansible


def local_host(**variables: Any) -> Dict[str, Any]:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, **variables}


# --------------------------------------------------------------------------- the fleet


@dataclass
class Fleet:
    """The playbook's outcome and what each scenario's verdict must name."""

    rc: int
    stdout: str
    report: Dict[str, Any]
    sites: Dict[str, str] = field(default_factory=dict)  # scenario -> loaded site path
    roots: Dict[str, str] = field(default_factory=dict)  # scenario -> sandbox root
    upstreams: Dict[str, str] = field(default_factory=dict)  # scenario -> backend address
    urls: Dict[str, str] = field(default_factory=dict)  # scenario -> ws URL through nginx

    def verdict(self, host: str) -> Dict[str, Any]:
        (found,) = [v for v in self.report["hosts"] if v["host"] == host]
        return found


class FleetBuilder:
    """Lays down one sandbox per scenario, runs the playbook over all of them, stops everything."""

    def __init__(self, workdir: Path, asgi: Backend, strict: Backend) -> None:
        self.workdir = workdir
        self.asgi, self.strict = asgi, strict
        self.sandboxes: Dict[str, NginxSandbox] = {}
        self.processes: List[ManagedProcess] = []

    def run(self) -> Fleet:
        fleet = Fleet(0, "", {})
        try:
            inventory = {name: self._prepare(name, fleet) for name in SITES}
            inventory[MISCONFIGURED] = local_host(ws_proxy_diagnose_host=VHOST)
            (self.workdir / "inventory.json").write_text(json.dumps({"all": {"hosts": inventory}}))
            result = ansible_playbook(
                self.workdir,
                "-i",
                "inventory.json",
                "agaii.nginx.diagnose_websocket",
                "-e",
                "ws_proxy_diagnose_report=report.json",
            )
            fleet.rc, fleet.stdout = result.returncode, result.stdout + result.stderr
            report = self.workdir / "report.json"
            fleet.report = json.loads(report.read_text()) if report.exists() else {}
        finally:
            self._stop()
        return fleet

    def _prepare(self, name: str, fleet: Fleet) -> Dict[str, Any]:
        sandbox = NginxSandbox()
        self.sandboxes[name] = sandbox
        upstream = self._upstream(name)
        sandbox.write("conf.d/websocket-map.conf", CONNECTION_MAP)
        sandbox.write_site("app", SITES[name].format(listen=sandbox.listen, upstream=upstream))
        if name not in NOT_STARTED:
            sandbox.start(ports=[sandbox.port])
        getattr(self, f"_after_start_{name}", lambda sandbox: None)(sandbox)
        fleet.sites[name] = str(sandbox.path("sites-enabled/app"))
        fleet.roots[name] = str(sandbox.root)
        fleet.upstreams[name] = upstream
        fleet.urls[name] = sandbox.ws_url(WS_URI)
        silence = "300s" if name in ("healthy", "timeout_short") else "0"
        return local_host(
            ws_proxy_nginx_conf=str(sandbox.conf),
            ws_proxy_diagnose_host=VHOST,
            ws_proxy_diagnose_uri=WS_URI,
            ws_proxy_diagnose_app_silence=silence,
        )

    def _upstream(self, name: str) -> str:
        if name == "backend_stopped":
            return self._start_own_backend().upstream
        return (self.strict if name in STRICT_BACKEND else self.asgi).upstream

    def _start_own_backend(self) -> Backend:
        port = free_port()
        argv = [sys.executable, "-m", "tests.support.backends.strict_server", "--host", LOCALHOST, "--port", str(port)]
        process = ManagedProcess(argv, self.workdir / "stopped-backend.log", cwd=REPO_ROOT).start()
        self.processes.append(process)
        wait_for_port(LOCALHOST, port, 90, process=process)
        return Backend("stopped", port, process)

    def _after_start_backend_stopped(self, sandbox: NginxSandbox) -> None:
        assert handshake(sandbox.ws_url(WS_URI), host=VHOST, timeout=5).status == 101
        self.processes[-1].stop()
        # a client fails through nginx meanwhile: nginx logs connect() failed, which the verdict quotes
        assert handshake(sandbox.ws_url(WS_URI), host=VHOST, timeout=5).status == 502

    def _after_start_missing_map(self, sandbox: NginxSandbox) -> None:
        sandbox.path("conf.d/websocket-map.conf").unlink()  # nginx keeps running its last good configuration

    def _stop(self) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.cleanup()
        for process in self.processes:
            process.stop()


def _shared_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory, worker_id: str, request: pytest.FixtureRequest) -> Fleet:
    shared = _shared_dir(tmp_path_factory, worker_id)
    cache = shared / "diagnose-fleet.json"
    with (shared / "diagnose-fleet.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.exists():
            return Fleet(**json.loads(cache.read_text()))
        asgi, strict = request.getfixturevalue("asgi_backend"), request.getfixturevalue("strict_backend")
        result = FleetBuilder(tmp_path_factory.mktemp("diagnose-fleet"), asgi, strict).run()
        cache.write_text(json.dumps(asdict(result)))
        return result


def assert_verdict(fleet: Fleet, host: str, status: str, layer: str, message: str) -> Dict[str, Any]:
    found = fleet.verdict(host)
    assert (found["status"], found["layer"], found["message"]) == (status, layer, message), fleet.stdout[-4000:]
    return found


def layers_run(found: Dict[str, Any]) -> List[str]:
    return [f"{check['layer']}:{check['status']}" for check in found["checks"]]


# --------------------------------------------------------------------------- one test per verdict


def test_healthy(fleet: Fleet) -> None:
    site_path, upstream = fleet.sites["healthy"], fleet.upstreams["healthy"]
    found = assert_verdict(
        fleet,
        "healthy",
        "healthy",
        "none",
        "WebSocket works: 101 Switching Protocols through nginx, "
        f"`location ~ ^/api/mqtt/ws/` at {site_path}:4 proxies to {upstream}",
    )
    assert layers_run(found) == ["nginx:ok", "backend:ok", "routing:ok", "handshake:ok", "timeout:ok"]
    assert found["checks"][4]["message"] == "proxy_read_timeout 3600s outlasts the application's 300s of silence"
    assert (found["fix"], found["evidence"], found["warnings"]) == (None, [], [])
    assert found["url"] == fleet.urls["healthy"]


def test_backend_stopped(fleet: Fleet) -> None:
    site_path, upstream = fleet.sites["backend_stopped"], fleet.upstreams["backend_stopped"]
    found = assert_verdict(fleet, "backend_stopped", "broken", "backend", f"backend down on {upstream}")
    assert layers_run(found) == ["nginx:ok", "backend:broken"]
    assert found["evidence"][:2] == [
        f"TCP connect to {upstream} from the nginx host: connection refused",
        f"nginx proxies to it: proxy_pass http://{upstream} at {site_path}:5",
    ]
    (log_line,) = found["evidence"][2:]
    assert re.fullmatch(
        r"error\.log: \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[error\] \d+#\d+: \*\d+ connect\(\) failed \(111: Connection "
        rf"refused\) while connecting to upstream, .*upstream: \"http://{re.escape(upstream)}{re.escape(WS_URI)}\".*",
        log_line,
    )
    assert found["fix"] == (
        f"Start the application so that it listens on {upstream}, or correct proxy_pass http://{upstream} "
        f"at {site_path}:5."
    )


def test_routing_shadowed(fleet: Fleet) -> None:
    site_path = fleet.sites["routing_shadowed"]
    found = assert_verdict(
        fleet,
        "routing_shadowed",
        "broken",
        "routing",
        f"`location ~ ^/api/` at {site_path}:4 takes the WebSocket path ahead of `location ~ ^/api/mqtt/ws/` "
        f"at {site_path}:7 and has no Upgrade header and no Connection header",
    )
    assert layers_run(found) == ["nginx:ok", "backend:ok", "routing:broken"]
    assert found["evidence"][-1] == f"first matching regex in file order is location ~ ^/api/ at {site_path}:4"
    assert found["fix"] == (
        "Move `location ~ ^/api/mqtt/ws/` above `location ~ ^/api/`: regexes are tried in file order "
        "(agaii.nginx.ws_location places it there)."
    )


def test_headers_missing(fleet: Fleet) -> None:
    site_path = fleet.sites["headers_missing"]
    found = assert_verdict(
        fleet,
        "headers_missing",
        "broken",
        "routing",
        f"`location ~ ^/api/mqtt/ws/` at {site_path}:4 takes the WebSocket path and has no Upgrade header",
    )
    assert found["fix"] == (
        f"Add `proxy_set_header Upgrade $http_upgrade;` to `location ~ ^/api/mqtt/ws/` at {site_path}:4 "
        "(agaii.nginx.ws_location converges it in place)."
    )


def test_http10_upgrade_against_the_strict_backend(fleet: Fleet) -> None:
    site_path = fleet.sites["http10_strict"]
    found = assert_verdict(
        fleet,
        "http10_strict",
        "broken",
        "handshake",
        f"505 from the backend: `proxy_http_version 1.1` missing in `location ~ ^/api/mqtt/ws/` at {site_path}:4",
    )
    assert layers_run(found) == ["nginx:ok", "backend:ok", "routing:ok", "handshake:broken"]
    assert found["evidence"][0] == (
        f"handshake through nginx at {fleet.urls['http10_strict']} (Host {VHOST}): "
        "HTTP/1.1 505 HTTP Version Not Supported"
    )
    assert found["warnings"] == [
        f"`location ~ ^/api/mqtt/ws/` at {site_path}:4 speaks HTTP/1.0 to the backend "
        "(no `proxy_http_version 1.1`): RFC-strict backends answer 505"
    ]
    assert found["fix"].startswith(f"Add `proxy_http_version 1.1;` to `location ~ ^/api/mqtt/ws/` at {site_path}:4")


def test_missing_map(fleet: Fleet) -> None:
    root = fleet.roots["missing_map"]
    found = assert_verdict(
        fleet, "missing_map", "broken", "nginx", 'nginx configuration is invalid: unknown "connection_upgrade" variable'
    )
    assert layers_run(found) == ["nginx:broken"]
    assert found["fix"] == (
        "Add the map with agaii.nginx.upgrade_map (variable: connection_upgrade): it defines $connection_upgrade in "
        "http{} exactly once. nginx names no file or line for this error."
    )
    assert found["evidence"][0] == f'`nginx -t -c {root}/nginx.conf` fails: unknown "connection_upgrade" variable'
    assert re.fullmatch(
        rf"nginx runs \(pid \d+ from {re.escape(root)}/nginx\.pid\) with its last good configuration; "
        "a reload or restart fails until this is fixed",
        found["evidence"][1],
    )


def test_idle_timeout_shorter_than_the_application_silence(fleet: Fleet) -> None:
    site_path = fleet.sites["timeout_short"]
    found = assert_verdict(
        fleet,
        "timeout_short",
        "broken",
        "timeout",
        f"proxy_read_timeout 60s (nginx's default) of `location ~ ^/api/mqtt/ws/` at {site_path}:4 is shorter than "
        "the application's 300s of silence: nginx closes the idle WebSocket after 60s",
    )
    assert layers_run(found) == ["nginx:ok", "backend:ok", "routing:ok", "handshake:ok", "timeout:broken"]


def test_nginx_stopped(fleet: Fleet) -> None:
    root = fleet.roots["nginx_stopped"]
    # nginx -T (run by the diagnosis) leaves an empty pid file where there was none
    found = assert_verdict(
        fleet, "nginx_stopped", "broken", "nginx", f"nginx is not running (pid file {root}/nginx.pid is empty)"
    )
    assert found["fix"] == (
        f"Start nginx: `systemctl start nginx`, or `nginx -c {root}/nginx.conf` where no service manager runs."
    )


def test_backend_refuses_the_rewritten_path(fleet: Fleet) -> None:
    upstream = fleet.upstreams["backend_refuses"]
    found = assert_verdict(
        fleet,
        "backend_refuses",
        "broken",
        "backend",
        f"the backend at {upstream} refuses the WebSocket handshake for /nowhere/hints/diagnose: "
        "HTTP/1.1 403 Forbidden",
    )
    assert found["fix"] == (
        "The application has no WebSocket at /nowhere/hints/diagnose: check its WebSocket route, and the URI nginx "
        f"sends (proxy_pass http://{upstream}/nowhere/ at {fleet.sites['backend_refuses']}:5 maps {WS_URI} to "
        "/nowhere/hints/diagnose)."
    )


def test_fleet_summary_table_json_and_exit_status(fleet: Fleet) -> None:
    hosts = [*SITES, MISCONFIGURED]
    assert [v["host"] for v in fleet.report["hosts"]] == hosts
    assert (fleet.report["healthy"], fleet.report["broken"]) == (1, 9)
    misconfigured = fleet.verdict(MISCONFIGURED)
    assert (misconfigured["status"], misconfigured["layer"], misconfigured["message"]) == (
        "error",
        "diagnosis",
        "no verdict: the host was unreachable or the diagnosis did not run",
    )
    assert "missing required arguments: ws_proxy_diagnose_uri" in fleet.stdout
    width = max(map(len, hosts))
    assert f'"{"HOST".ljust(width)}  STATUS   LAYER      VERDICT",' in fleet.stdout
    for verdict in fleet.report["hosts"]:
        row = f"{verdict['host'].ljust(width)}  {verdict['status']:<7}  {verdict['layer']:<9}  {verdict['message']}"
        assert json.dumps(row) in fleet.stdout
    assert fleet.rc == 2
    # read-only: only the report (written once, on the controller) counts as a change
    recap = dict(re.findall(r"^(\w+)\s+: ok=\d+\s+changed=(\d+)", fleet.stdout, re.M))
    assert recap == {host: "1" if host == "healthy" else "0" for host in hosts}
    broken = ", ".join(f"{v['host']} at {v['layer']}" for v in fleet.report["hosts"] if v["status"] != "healthy")
    assert f"WebSocket broken on 9 of 10 hosts: {broken}" in fleet.stdout


# --------------------------------------------------------------------------- route_info on its own


ROUTE_SITE = """\
server {{
    listen {listen};
    server_name app.example.test *.example.test;
    proxy_set_header Host $host;
    location ^~ /api/ {{
        proxy_pass http://{upstream};
    }}
    location ~ ^/api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
    }}
}}
server {{
    listen {listen} default_server;
    server_name other.example.org;
    return 404;
}}
"""


def route_info_playbook(conf: str, broken_conf: str) -> List[Dict[str, Any]]:
    def task(name: str, args: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
        base = {"host": VHOST, "uri": WS_URI, "nginx_conf": conf}
        return {"name": name, "agaii.nginx.route_info": {**base, **args}, "ignore_errors": True, **extra}

    tasks = [
        task("ws path", {}, register="ws"),
        task(
            "wildcard host, check mode",
            {"host": "b.example.test", "uri": "/api//health"},
            register="wild",
            check_mode=True,
        ),
        task("unknown host", {"host": "nobody.test", "uri": "/"}, register="other"),
        task("nginx -t fails", {"nginx_conf": broken_conf}, register="broken"),
        {
            "name": "report",
            "ansible.builtin.debug": {
                "msg": RESULTS_MARKER + "{{ {'ws': ws, 'wild': wild, 'other': other, 'broken': broken} | to_json }}"
            },
        },
    ]
    return [{"name": "route_info", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


@pytest.fixture
def second_sandbox() -> Iterator[NginxSandbox]:
    sandbox = NginxSandbox()
    yield sandbox
    sandbox.cleanup()


def test_route_info_reports_server_location_reasons_and_websocket_needs(
    nginx_sandbox: NginxSandbox, second_sandbox: NginxSandbox, tmp_path: Path, asgi_backend: Backend
) -> None:
    nginx_sandbox.write("conf.d/websocket-map.conf", CONNECTION_MAP)
    nginx_sandbox.write_site("app", ROUTE_SITE.format(listen=nginx_sandbox.listen, upstream=asgi_backend.upstream))
    second_sandbox.write_site("app", site(WS_LOCATION).format(listen=second_sandbox.listen, upstream="127.0.0.1:9"))
    site_path = nginx_sandbox.path("sites-enabled/app")
    (tmp_path / "playbook.yml").write_text(
        json.dumps(route_info_playbook(str(nginx_sandbox.conf), str(second_sandbox.conf)))
    )

    result = ansible_playbook(tmp_path, "playbook.yml", "-e", f"ansible_python_interpreter={sys.executable}")

    assert result.returncode == 0, result.stdout
    found = re.search(rf'"{RESULTS_MARKER}(.*)"\n', result.stdout)
    assert found, result.stdout
    results = json.loads(json.loads(f'"{found.group(1)}"'))
    ws, wild, other, broken = results["ws"], results["wild"], results["other"], results["broken"]
    listen = nginx_sandbox.listen
    server = f"server app.example.test *.example.test (listen {listen}) at {site_path}:1"
    assert (ws["changed"], ws["failed"]) == (False, False)
    assert ws["server"] == {
        "name": server,
        "file": str(site_path),
        "line": 1,
        "names": ["app.example.test", "*.example.test"],
        "listen": listen,
        "ssl": False,
    }
    assert ws["location"] == {"name": "location ^~ /api/", "file": str(site_path), "line": 5}
    assert ws["reasons"] == [
        f"port {nginx_sandbox.port}: the only port nginx listens on",
        f"2 server blocks listen on {listen}",
        f"exact server_name app.example.test selects {server}",
        f"longest matching prefix is location ^~ /api/ at {site_path}:5",
        f"location ^~ /api/ at {site_path}:5 is ^~, so no regex is checked",
    ]
    assert ws["shadowed"] == [f"location ~ ^/api/mqtt/ws/ at {site_path}:8"]
    assert ws["websocket"] == {
        "ready": False,
        "gaps": [
            "proxy_http_version 1.1",
            "proxy_set_header Upgrade $http_upgrade",
            "proxy_set_header Connection $connection_upgrade",
        ],
        "proxy_pass": f"http://{asgi_backend.upstream}",
        "proxy_http_version": "1.0",
        "proxy_http_version_at": "default",
        "upgrade": None,
        "connection": None,
        "map_variable": None,
        "map_at": None,
    }
    assert ws["proxy_read_timeout"] == {"value": "60s", "seconds": 60.0, "at": "default"}
    assert ws["pid_file"] == str(nginx_sandbox.pid_file) and ws["error_logs"] == [str(nginx_sandbox.error_log)]
    assert "verdict" not in ws
    # wildcard server_name, URI normalized, check mode
    assert (
        wild["path"] == "/api/health"
        and wild["reasons"][2] == f"longest matching wildcard server_name *.example.test selects {server}"
    )
    # no name matches: the default_server answers, and it has no location
    assert other["server"]["line"] == 15 and other["location"] is None
    assert other["reasons"][-1] == "no location matches; the server's own settings answer"
    assert broken["failed"] is True
    assert broken["msg"] == (
        f'nginx -t fails on {second_sandbox.conf}, so nginx\'s routing cannot be read: unknown "connection_upgrade" '
        "variable. Add the map with agaii.nginx.upgrade_map (variable: connection_upgrade): it defines "
        "$connection_upgrade in http{} exactly once. nginx names no file or line for this error."
    )


# --------------------------------------------------------------------------- server selection vs nginx

SELECTION_SITE = """\
server {{ listen {listen}; server_name first.test; return 200 "1"; }}
server {{ listen {listen} default_server; server_name dflt.test; return 200 "2"; }}
server {{ listen {listen}; server_name ~^APP\\d+\\.test$; return 200 "3"; }}
server {{ listen {listen}; server_name ~^app\\d+\\.test$ app7.test; return 200 "4"; }}
server {{ listen {listen}; server_name .example.test; return 200 "5"; }}
server {{ listen {listen}; server_name *.a.example.test; return 200 "6"; }}
server {{ listen {listen}; server_name mail.* *.mail.test; return 200 "7"; }}
server {{ listen {listen}; server_name www.mail.*; return 200 "8"; }}
server {{ listen {other}; server_name first.test; return 200 "9"; }}
server {{ listen {other}; return 200 "10"; }}
"""
SELECTION_HOSTS = [
    "first.test", "FIRST.test.", "dflt.test", "nobody.test", "App1.test", "app1.test", "app7.test", "example.test",
    "x.example.test", "a.example.test", "b.a.example.test", "mail.example", "www.mail.example", "x.mail.test",
    "www.mail.test", "localhost", "1.2.3.4",
]  # fmt: skip


def nginx_answer(port: int, host: str) -> str:
    request = urllib.request.Request(f"http://{LOCALHOST}:{port}/", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"


def test_server_selection_matches_a_real_nginx(nginx_sandbox: NginxSandbox) -> None:
    other_port = free_port()
    text = SELECTION_SITE.format(listen=nginx_sandbox.listen, other=f"{LOCALHOST}:{other_port}")
    nginx_sandbox.write_site("selection", text)
    nginx_sandbox.start(ports=[nginx_sandbox.port, other_port])
    site_path = str(nginx_sandbox.path("sites-enabled/selection"))
    config = load(site_path, text.encode(), nginx_sandbox.dump().encode())
    mismatches = []
    for port in (nginx_sandbox.port, other_port):
        for host in SELECTION_HOSTS:
            choice = select_server(config, host, port, LOCALHOST)
            model = str(choice.server.line) if choice.server else None
            real = nginx_answer(port, host)
            if model != real:
                mismatches.append((port, host, model, real))
    assert mismatches == []
