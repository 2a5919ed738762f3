"""agaii.nginx.ws_location through ansible-playbook, against a real nginx sandbox and real backends.

Each test writes a playbook whose tasks run the module (``steps``) and, after each step, slurp the
watched file, so one ansible-playbook run gives the result of every step and the exact bytes of the
file after it. Arguments travel as JSON extra vars, so hostile values reach the module unchanged.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.action.ws_location import ARGUMENT_SPEC as WS_OPTIONS
from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import HandshakeResult, handshake
from ansible_collections.agaii.nginx.plugins.modules.nginx_file import ARGUMENT_SPEC as FILE_OPTIONS
from ansible_collections.agaii.nginx.plugins.modules.nginx_file import lock_path
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from tests.support.ansible_run import ANSIBLE_PLAYBOOK, ansible_env
from tests.support.incident import INCIDENT_SITE_SERVER_HEADERS as INCIDENT_SITE
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend, backend_by_name

pytestmark = pytest.mark.nginx

WS_MODULE = "agaii.nginx.ws_location"
FILE_MODULE = "agaii.nginx.nginx_file"
MODULE_OPTIONS = {WS_MODULE: tuple(WS_OPTIONS), FILE_MODULE: tuple(FILE_OPTIONS)}

VHOST = "app.example.test"
WS_PATH = "/api/mqtt/ws/hints/session-874q8t"
HEADERS_WS_PATH = "/api/mqtt/ws/headers/session-874q8t"
RESULTS_MARKER = "RESULTS:"
WATCHED_FILE_BASE64 = "{{ lookup('ansible.builtin.pipe', 'base64 -w0 ' ~ (watch | quote) ~ ' 2>/dev/null || true') }}"
ECHO_TEXT = "hint: ✓ session-874q8t"
CLIENT_XFF = "203.0.113.7"
NO_MAP_WARNING = (
    'no `map $http_upgrade $var` is loaded: the location sends Connection "upgrade"; run '
    "agaii.nginx.upgrade_map (the ws_proxy role does) and the next run switches to the map"
)
UNUSED_UPSTREAM = "127.0.0.1:9"  # for tests that never send traffic

CONNECTION_MAP = """\
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
"""

INCIDENT_FIXED = """\
server {{
    listen {listen};
    server_name app.example.test;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    # managed by agaii.nginx.ws_location
    location ~ ^/api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
    }}

    # the API
    location /api/ {{
        proxy_pass http://{upstream};
    }}
}}
"""

# The incident note's own "before": a prefix ws block without proxy_http_version, literal "upgrade".
INCIDENT_BEFORE = """\
server {{
    listen {listen};
    server_name app.example.test;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    location /api/ {{
        proxy_pass http://{upstream};
    }}

    location /api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 3600s;
    }}
}}
"""

INCIDENT_BEFORE_CONVERGED = """\
server {{
    listen {listen};
    server_name app.example.test;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    location /api/ {{
        proxy_pass http://{upstream};
    }}

    location /api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 3600s;
        proxy_http_version 1.1;
        proxy_send_timeout 3600s;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
}}
"""

CRLF_SITE = (
    "server {{\r\n    listen {listen};\r\n    server_name app.example.test;\r\n\r\n"
    "    location /api/ {{\r\n        proxy_pass http://{upstream};\r\n    }}\r\n}}\r\n"
)
CRLF_FIXED = (
    "server {{\r\n    listen {listen};\r\n    server_name app.example.test;\r\n\r\n"
    "    # managed by agaii.nginx.ws_location\r\n"
    "    location ~ ^/api/mqtt/ws/ {{\r\n"
    "        proxy_pass http://{upstream};\r\n"
    "        proxy_http_version 1.1;\r\n"
    "        proxy_set_header Upgrade $http_upgrade;\r\n"
    '        proxy_set_header Connection "upgrade";\r\n'
    "        proxy_read_timeout 3600s;\r\n"
    "        proxy_send_timeout 3600s;\r\n"
    "    }}\r\n\r\n"
    "    location /api/ {{\r\n        proxy_pass http://{upstream};\r\n    }}\r\n}}\r\n"
)
TAB_SITE = (
    "server {{\n\tlisten {listen};\n\tserver_name app.example.test;\n\n"
    "\tlocation /api/ {{\n\t\tproxy_pass http://{upstream};\n\t}}\n}}\n"
)
TAB_FIXED = (
    "server {{\n\tlisten {listen};\n\tserver_name app.example.test;\n\n"
    "\t# managed by agaii.nginx.ws_location\n"
    "\tlocation ~ ^/api/mqtt/ws/ {{\n"
    "\t\tproxy_pass http://{upstream};\n"
    "\t\tproxy_http_version 1.1;\n"
    "\t\tproxy_set_header Upgrade $http_upgrade;\n"
    '\t\tproxy_set_header Connection "upgrade";\n'
    "\t\tproxy_read_timeout 3600s;\n"
    "\t\tproxy_send_timeout 3600s;\n"
    "\t}}\n\n"
    "\tlocation /api/ {{\n\t\tproxy_pass http://{upstream};\n\t}}\n}}\n"
)


# --------------------------------------------------------------------------- running ansible


@dataclass
class Step:
    """One task: ``module`` with ``args``; ``check`` runs it in check mode."""

    args: Dict[str, Any]
    check: bool = False
    module: str = WS_MODULE


@dataclass
class Run:
    """The registered result of every step, and the watched file's bytes after each (None: absent)."""

    results: List[Dict[str, Any]]
    files: List[Optional[bytes]]
    elapsed: float
    output: str = field(repr=False, default="")


def _module_task(index: int, step: Step) -> Dict[str, Any]:
    options = {name: f"{{{{ steps[{index}].args[{name!r}] | default(omit) }}}}" for name in MODULE_OPTIONS[step.module]}
    return {
        "name": f"step {index}",
        step.module: options,
        "check_mode": step.check,
        "diff": True,
        "register": f"step_{index}",
        "ignore_errors": True,
    }


def _snapshot_task(index: int) -> Dict[str, Any]:
    """Record the watched file's bytes (base64; empty when missing) on the controller, which is the target."""
    return {
        "name": f"file after step {index}",
        "ansible.builtin.set_fact": {f"file_{index}": WATCHED_FILE_BASE64},
    }


def playbook(steps: Sequence[Step]) -> List[Dict[str, Any]]:
    tasks: List[Dict[str, Any]] = []
    for index, step in enumerate(steps):
        tasks += [_module_task(index, step), _snapshot_task(index)]
    results = ", ".join(f"step_{i}" for i in range(len(steps)))
    files = ", ".join(f"file_{i}" for i in range(len(steps)))
    saved = f"{{{{ {{'results': [{results}], 'files': [{files}]}} | to_json | b64encode }}}}"
    tasks.append({"name": "report the results", "ansible.builtin.debug": {"msg": f"{RESULTS_MARKER}{saved}"}})
    return [{"name": "ws_location test", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


class Ansible:
    """Writes a playbook per run into ``workdir`` and runs ansible-playbook on the implicit localhost."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0

    def start(self, steps: Sequence[Step], watch: Path) -> Tuple[subprocess.Popen[str], float]:
        self.count += 1
        run_dir = self.workdir / f"run-{self.count}"
        run_dir.mkdir(parents=True)
        (run_dir / "playbook.yml").write_text(json.dumps(playbook(steps), indent=1))
        extra = {"steps": [{"args": s.args} for s in steps], "watch": str(watch)}
        (run_dir / "vars.json").write_text(json.dumps(extra))
        argv = [str(ANSIBLE_PLAYBOOK), "playbook.yml", "-e", "@vars.json"]
        if os.environ.get("AGAII_TARGET_PYTHON"):  # the version matrix runs target-side modules on Python 3.9
            argv += ["-e", f"ansible_python_interpreter={os.environ['AGAII_TARGET_PYTHON']}"]
        output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        popen = subprocess.Popen(argv, cwd=run_dir, env=ansible_env(self.workdir), **output)
        return popen, time.monotonic()

    @staticmethod
    def finish(started: Tuple[subprocess.Popen[str], float]) -> Run:
        popen, began = started
        output, _stderr = popen.communicate(timeout=180)
        assert popen.returncode == 0, output
        found = re.search(rf'"{RESULTS_MARKER}([A-Za-z0-9+/=]+)"', output)
        assert found, output
        saved = json.loads(base64.b64decode(found.group(1)))
        files = [base64.b64decode(data) if data else None for data in saved["files"]]
        return Run(saved["results"], files, time.monotonic() - began, output)

    def run(self, steps: Sequence[Step], watch: Path) -> Run:
        return self.finish(self.start(steps, watch))


@pytest.fixture
def ansible(tmp_path: Path) -> Ansible:
    return Ansible(tmp_path)


# --------------------------------------------------------------------------- helpers


def render(template: str, sandbox: NginxSandbox, upstream: str = UNUSED_UPSTREAM) -> bytes:
    return template.format(listen=sandbox.listen, upstream=upstream).encode()


def sandbox_args(sandbox: NginxSandbox, path: Path, **options: Any) -> Dict[str, Any]:
    return {"path": str(path), "nginx_conf": str(sandbox.conf), **options}


def enabled(sandbox: NginxSandbox, name: str = "app") -> Path:
    return sandbox.path(f"sites-enabled/{name}")


def listing(sandbox: NginxSandbox) -> Dict[str, List[str]]:
    return {sub: sorted(os.listdir(sandbox.path(sub))) for sub in ("sites-enabled", "sites-available", "conf.d")}


def http_get(url: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": VHOST, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ws(sandbox: NginxSandbox, path: str = WS_PATH, **kwargs: Any) -> HandshakeResult:
    return handshake(sandbox.ws_url(path), host=VHOST, timeout=5.0, **kwargs)


def routed_location(sandbox: NginxSandbox, site: Path, uri: str) -> Optional[str]:
    """Where nginx's rules send ``uri`` in the (single) server of ``site``, per the loaded dump."""
    config = load(str(site), site.read_bytes(), sandbox.dump().encode())
    (server,) = config.servers_in(str(site))
    chosen = route(tree(config, server), uri).location
    return chosen.describe() if chosen else None


def assert_upgrades_and_echoes(sandbox: NginxSandbox) -> None:
    result = ws(sandbox, echo=ECHO_TEXT)
    assert (result.status, result.reason) == (101, "Switching Protocols"), result
    assert result.accept_ok and result.error is None
    assert result.echo_received == ECHO_TEXT


def assert_backend_sees_client_headers(sandbox: NginxSandbox) -> None:
    result = ws(sandbox, HEADERS_WS_PATH, headers={"X-Forwarded-For": CLIENT_XFF}, echo="headers please")
    assert result.status == 101, result
    seen = json.loads(result.echo_received or "{}")
    assert (seen["host"], seen["x-forwarded-for"]) == (VHOST, f"{CLIENT_XFF}, 127.0.0.1")
    assert (seen["upgrade"], seen["connection"]) == ("websocket", "upgrade")


# --------------------------------------------------------------------------- the incident


@pytest.mark.parametrize("backend_name", ["asgi", "strict"])
def test_incident_check_apply_idempotent_then_upgrades(
    nginx_sandbox: NginxSandbox, ansible: Ansible, request: pytest.FixtureRequest, backend_name: str
) -> None:
    backend: Backend = backend_by_name(request, backend_name)
    original = render(INCIDENT_SITE, nginx_sandbox, backend.upstream)
    real = nginx_sandbox.write_site("app", original)
    link = enabled(nginx_sandbox)
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    assert ws(nginx_sandbox).status == {"asgi": 404, "strict": 505}[backend_name]  # the incident itself
    assert routed_location(nginx_sandbox, link, "/api/health") == f"location /api/ at {link}:8"
    args = sandbox_args(nginx_sandbox, link)

    run = ansible.run([Step(args, check=True), Step(args), Step(args)], watch=link)

    check, apply, again = run.results
    expected = render(INCIDENT_FIXED, nginx_sandbox, backend.upstream)
    # check mode: the change and its diff are reported, nothing is written
    assert (check["changed"], check["failed"]) == (True, False)
    assert run.files[0] == original
    assert check["diff"] == [
        {"before": original.decode(), "after": expected.decode(), "before_header": str(link), "after_header": str(link)}
    ]
    # apply: exact bytes, written through the link into sites-available
    assert (apply["changed"], apply["failed"]) == (True, False), apply
    assert run.files[1] == expected and real.read_bytes() == expected
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert (apply["path"], apply["realpath"]) == (str(link), str(real))
    assert apply["route_before"] == {
        "location": f"location /api/ at {link}:8",
        "reason": f"longest matching prefix is location /api/ at {link}:8",
    }
    assert apply["route_after"]["location"] == f"location ~ ^/api/mqtt/ws/ at {link}:8"
    assert apply["sample_uri"] == "/api/mqtt/ws/agaii-probe/session-874q8t"
    assert apply["map_variable"] is None
    assert NO_MAP_WARNING in apply["warnings"]
    (server,) = apply["servers"]
    assert (server["file"], server["line"], server["names"]) == (str(link), 1, [VHOST])
    assert (server["action"], server["form"], server["location"]) == ("inserted", "regex", "location ~ ^/api/mqtt/ws/")
    # second run: nothing to do, bytes identical
    assert (again["changed"], again["failed"]) == (False, False)
    assert "diff" not in again
    assert run.files[2] == expected
    assert again["servers"][0]["action"] == "unchanged"

    nginx_sandbox.reload()
    assert_upgrades_and_echoes(nginx_sandbox)
    status, body = http_get(nginx_sandbox.url("/api/health"))
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    # the same `location /api/` as before (moved down by the 12 inserted lines) still serves the API
    assert routed_location(nginx_sandbox, link, "/api/health") == f"location /api/ at {link}:20"
    assert routed_location(nginx_sandbox, link, WS_PATH) == f"location ~ ^/api/mqtt/ws/ at {link}:8"
    if backend_name == "asgi":
        assert_backend_sees_client_headers(nginx_sandbox)


def test_incident_before_config_converges_in_place_to_the_map(
    nginx_sandbox: NginxSandbox, ansible: Ansible, strict_backend: Backend
) -> None:
    nginx_sandbox.write("conf.d/websocket-map.conf", CONNECTION_MAP)
    nginx_sandbox.write_site("app", render(INCIDENT_BEFORE, nginx_sandbox, strict_backend.upstream))
    link = enabled(nginx_sandbox)
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    assert ws(nginx_sandbox).status == 505  # proxy_http_version defaults to 1.0
    args = sandbox_args(nginx_sandbox, link)

    run = ansible.run([Step(args), Step(args)], watch=link)

    apply, again = run.results
    assert (apply["changed"], apply["failed"]) == (True, False), apply
    assert run.files[0] == render(INCIDENT_BEFORE_CONVERGED, nginx_sandbox, strict_backend.upstream)
    (server,) = apply["servers"]
    assert (server["action"], server["location"]) == ("converged", "location /api/mqtt/ws/")
    assert server["reasons"] == [f"converged location /api/mqtt/ws/ at {link}:11 in place"]
    assert apply["map_variable"] == "connection_upgrade"
    assert "warnings" not in apply
    assert (again["changed"], run.files[1]) == (False, run.files[0])

    nginx_sandbox.reload()
    assert_upgrades_and_echoes(nginx_sandbox)


# --------------------------------------------------------------------------- safety


def test_failed_validation_restores_the_original_bytes(nginx_sandbox: NginxSandbox, ansible: Ansible) -> None:
    original = render(INCIDENT_SITE, nginx_sandbox)
    real = nginx_sandbox.write_site("app", original)
    link = enabled(nginx_sandbox)
    before = listing(nginx_sandbox)
    mtime = real.stat().st_mtime_ns

    run = ansible.run([Step(sandbox_args(nginx_sandbox, link, headers={"X-Nope": "$nope"}))], watch=link)

    (result,) = run.results
    assert (result["failed"], result["changed"], result["restored"]) == (True, False, True)
    # nginx names no file or line for an unknown variable; the message says which file was written
    assert result["msg"] == (
        f'nginx -t failed after writing {real}, so the module restored the original bytes: unknown "nope" variable'
    )
    assert result["nginx_error"] == 'unknown "nope" variable'
    assert run.files[0] == original and real.read_bytes() == original
    assert real.stat().st_mtime_ns != mtime  # it really was written, then put back
    assert listing(nginx_sandbox) == before  # no temporary file left behind
    assert nginx_sandbox.test().returncode == 0


def test_config_that_already_fails_is_refused_untouched(nginx_sandbox: NginxSandbox, ansible: Ansible) -> None:
    broken = render(INCIDENT_SITE, nginx_sandbox).replace(
        b"proxy_pass http://127.0.0.1:9;",
        b"proxy_pass http://127.0.0.1:9;\n        proxy_set_header Connection $connection_upgrade;",
    )
    real = nginx_sandbox.write_site("app", broken)
    link = enabled(nginx_sandbox)
    stat_before = real.stat()

    run = ansible.run(
        [Step(sandbox_args(nginx_sandbox, link)), Step(sandbox_args(nginx_sandbox, link), check=True)], watch=link
    )

    for result in run.results:
        assert (result["failed"], result["changed"]) == (True, False)
        assert result["msg"] == (
            f"nginx -t already fails on {nginx_sandbox.conf}, so {link} was left untouched: "
            'unknown "connection_upgrade" variable. Fix the configuration first.'
        )
        assert "[emerg]" in result["nginx_stderr"]
    assert run.files == [broken, broken]
    assert real.stat().st_mtime_ns == stat_before.st_mtime_ns and real.stat().st_ino == stat_before.st_ino


def test_symlink_target_given_as_path_is_matched_to_the_loaded_link(
    nginx_sandbox: NginxSandbox, ansible: Ansible
) -> None:
    real = nginx_sandbox.write_site("app", render(INCIDENT_SITE, nginx_sandbox))
    link = enabled(nginx_sandbox)

    run = ansible.run([Step(sandbox_args(nginx_sandbox, real))], watch=real)

    (result,) = run.results
    assert (result["changed"], result["failed"]) == (True, False), result
    assert (result["path"], result["realpath"]) == (str(link), str(real))
    assert result["servers"][0]["file"] == str(link)
    assert run.files[0] == render(INCIDENT_FIXED, nginx_sandbox)
    assert link.is_symlink() and os.readlink(link) == str(real)


def test_site_not_loaded_by_nginx_is_refused(nginx_sandbox: NginxSandbox, ansible: Ansible) -> None:
    real = nginx_sandbox.write_site("app", render(INCIDENT_SITE, nginx_sandbox), enabled=False)

    run = ansible.run([Step(sandbox_args(nginx_sandbox, real))], watch=real)

    (result,) = run.results
    assert result["failed"] is True
    assert result["msg"] == (
        f"{real} is not loaded by nginx: `nginx -T -c {nginx_sandbox.conf}` lists neither it nor a link to "
        f"{real}. Enable the site (link it into sites-enabled/) or set nginx_conf; nothing was changed."
    )
    assert run.files[0] == render(INCIDENT_SITE, nginx_sandbox)


# --------------------------------------------------------------------------- file shapes


@pytest.mark.parametrize(("site", "fixed"), [(CRLF_SITE, CRLF_FIXED), (TAB_SITE, TAB_FIXED)], ids=["crlf", "tabs"])
def test_line_ends_and_indentation_are_kept_and_absent_restores(
    nginx_sandbox: NginxSandbox, ansible: Ansible, site: str, fixed: str
) -> None:
    original = render(site, nginx_sandbox)
    path = nginx_sandbox.write_site("app", original, symlink=False)
    present = sandbox_args(nginx_sandbox, path)
    absent = sandbox_args(nginx_sandbox, path, state="absent")

    run = ansible.run([Step(present), Step(absent), Step(absent)], watch=path)

    added, removed, nothing_left = run.results
    assert (added["changed"], added["failed"]) == (True, False), added
    assert run.files[0] == render(fixed, nginx_sandbox)
    assert (removed["changed"], removed["failed"]) == (True, False), removed
    assert removed["servers"][0]["action"] == "removed"
    assert run.files[1] == original
    assert (nothing_left["changed"], nothing_left["failed"]) == (False, False)
    assert run.files[2] == original
    assert not path.is_symlink()


def test_backup_goes_to_backup_dir_not_sites_enabled(
    nginx_sandbox: NginxSandbox, ansible: Ansible, tmp_path: Path
) -> None:
    original = render(INCIDENT_SITE, nginx_sandbox)
    nginx_sandbox.write_site("app", original)
    link = enabled(nginx_sandbox)
    backup_dir = tmp_path / "backups" / "nginx"
    before = listing(nginx_sandbox)
    args = sandbox_args(nginx_sandbox, link, backup=True, backup_dir=str(backup_dir))
    into_sites_enabled = {**args, "backup_dir": str(nginx_sandbox.path("sites-enabled"))}
    into_sites_available = {**args, "backup_dir": str(nginx_sandbox.path("sites-available"))}

    run = ansible.run([Step(into_sites_enabled), Step(into_sites_available), Step(args), Step(args)], watch=link)

    refused_enabled, refused_available, first, second = run.results
    assert (refused_enabled["failed"], refused_enabled["changed"]) == (True, False)
    assert refused_enabled["msg"] == (
        f"backup_dir {nginx_sandbox.path('sites-enabled')} holds files nginx loads ({link}), so nginx would load "
        "the backup too. Choose a directory outside every nginx include, such as /var/backups/nginx; "
        "nothing was changed."
    )
    assert (refused_available["failed"], refused_available["changed"]) == (True, False)
    assert refused_available["msg"].startswith(
        f"backup_dir {nginx_sandbox.path('sites-available')} is the directory of the file, where nginx could "
        "load the backup; choose a directory outside every nginx include. Nothing was written."
    )
    assert run.files[0] == run.files[1] == original
    assert (first["changed"], first["failed"]) == (True, False), first
    backup = Path(first["backup_file"])
    assert backup.parent == backup_dir
    assert re.fullmatch(r"app\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~", backup.name)
    assert backup.read_bytes() == original
    assert backup_dir.stat().st_mode & 0o777 == 0o700
    assert listing(nginx_sandbox) == before == {"sites-enabled": ["app"], "sites-available": ["app"], "conf.d": []}
    assert (second["changed"], "backup_file" in second) == (False, False)
    assert os.listdir(backup_dir) == [backup.name]


# --------------------------------------------------------------------------- hostile values

INJECTED = "add_header"
REFUSED = "refused"
HOSTILE: List[Tuple[Dict[str, Any], str, str]] = [
    # (options, REFUSED or "quoted", what the error message starts with / the header line written)
    ({"location": "^/api/mqtt/ws/; }"}, REFUSED, "location '^/api/mqtt/ws/; }': cannot derive"),
    ({"location": "^/ws/ { add_header X-Injected 1; }"}, REFUSED, "location '^/ws/ { add_header"),
    ({"location": "^/api/mqtt/ws/\n    add_header X-Injected 1"}, REFUSED, "location contains a control character"),
    ({"location": "^/api/mqtt/ws/\\"}, REFUSED, "location: the regex '^/api/mqtt/ws/\\\\' does not compile"),
    ({"proxy_pass": "http://127.0.0.1:1; add_header X-Injected 1"}, REFUSED, "proxy_pass must be a URL"),
    ({"proxy_pass": "http://127.0.0.1:1 # comment"}, REFUSED, "proxy_pass must be a URL"),
    ({"proxy_pass": "http://127.0.0.1:1\radd_header X-Injected 1"}, REFUSED, "proxy_pass contains a control"),
    ({"read_timeout": "10s; add_header X-Injected 1"}, REFUSED, "read_timeout must be an nginx time"),
    ({"send_timeout": "10s}"}, REFUSED, "send_timeout must be an nginx time"),
    ({"map_variable": "connection_upgrade; add_header X-Injected 1"}, REFUSED, "map_variable must be an nginx"),
    ({"server_name": "app.example.test; }"}, REFUSED, "{link}: no server block answers to server_name"),
    ({"headers": {"X-Evil; add_header X-Injected 1;": "v"}}, REFUSED, "headers: 'X-Evil; add_header"),
    ({"headers": {"X-Nul": "a\u0000b"}}, REFUSED, "headers[X-Nul] contains a control character"),
    ({"headers": {"X-Newline": "a\nadd_header X-Injected 1;"}}, REFUSED, "headers[X-Newline] contains a control"),
    # accepted by the engine, refused by nginx -t after the write, and rolled back
    ({"headers": {"X-Dollar": "${nope"}}, REFUSED, "nginx -t failed after writing {real}, so the module restored"),
    ({"headers": {"X-Semi": "a; add_header X-Injected 1"}}, "quoted", 'X-Semi "a; add_header X-Injected 1";'),
    (
        {"headers": {"X-Quote": 'a"; add_header X-Injected 1; #'}},
        "quoted",
        'X-Quote "a\\"; add_header X-Injected 1; #";',
    ),
    (
        {"headers": {"X-Back": 'a\\"; add_header X-Injected 1; \\'}},
        "quoted",
        'X-Back "a\\\\\\"; add_header X-Injected 1; \\\\";',
    ),
    ({"headers": {"X-Hash": "#comment"}}, "quoted", 'X-Hash "#comment";'),
    ({"headers": {"X-Brace": "{ }"}}, "quoted", 'X-Brace "{ }";'),
    ({"headers": {"X-Single": "it's"}}, "quoted", 'X-Single "it\'s";'),
]


def directive_names(sandbox: NginxSandbox, site: Path) -> List[str]:
    config = load(str(site), site.read_bytes(), sandbox.dump().encode())
    return [directive.name for directive in config.files[str(site)].walk()]


def test_hostile_values_are_refused_or_quoted(nginx_sandbox: NginxSandbox, ansible: Ansible) -> None:
    original = render(INCIDENT_SITE, nginx_sandbox)
    nginx_sandbox.write_site("app", original)
    link = enabled(nginx_sandbox)
    real = nginx_sandbox.path("sites-available/app")
    steps = [Step(sandbox_args(nginx_sandbox, link, **options)) for options, _outcome, _text in HOSTILE]

    run = ansible.run(steps, watch=link)

    previous = original
    for (options, outcome, text), result, after in zip(HOSTILE, run.results, run.files):
        assert after is not None
        if outcome == REFUSED:
            assert (result["failed"], result["changed"]) == (True, False), (options, result)
            expected = text.replace("{link}", str(link)).replace("{real}", str(real))
            assert result["msg"].startswith(expected), (options, result["msg"])
            assert after == previous, options
        else:
            assert (result["failed"], result["changed"]) == (False, True), (options, result)
            assert f"        proxy_set_header {text}\n".encode() in after, (options, after.decode())
        previous = after
    assert nginx_sandbox.test().returncode == 0
    names = directive_names(nginx_sandbox, link)
    assert INJECTED not in names and "return" not in names
    assert names.count("location") == 2 and names.count("server") == 1
    assert set(names) == {
        "server",
        "listen",
        "server_name",
        "proxy_set_header",
        "location",
        "proxy_pass",
        "proxy_http_version",
        "proxy_read_timeout",
        "proxy_send_timeout",
    }


# --------------------------------------------------------------------------- concurrency


def lock_waiters(lock_file: Path) -> int:
    """How many processes wait for an flock on ``lock_file`` (``->`` lines in /proc/locks)."""
    inode = f":{lock_file.stat().st_ino} "
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and inode in line)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_concurrent_runs_make_one_change(nginx_sandbox: NginxSandbox, ansible: Ansible) -> None:
    real = nginx_sandbox.write_site("app", render(INCIDENT_SITE, nginx_sandbox))
    link = enabled(nginx_sandbox)
    steps = [Step(sandbox_args(nginx_sandbox, link))]
    lock_file = Path(lock_path(str(real)))

    # Hold the target's lock ourselves until both runs have read, planned and queued for the write.
    with open(os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600), "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        first, second = ansible.start(steps, link), ansible.start(steps, link)
        wait_for(lambda: lock_waiters(lock_file) == 2, 60, "both runs to wait for the lock")
        fcntl.flock(held, fcntl.LOCK_UN)
    runs = [ansible.finish(first), ansible.finish(second)]

    results = sorted((run.results[0] for run in runs), key=lambda result: not result["changed"])
    assert [(r["changed"], r["failed"]) for r in results] == [(True, False), (False, False)], results
    assert results[1]["servers"][0]["action"] == "unchanged"  # the loser re-read the file and planned again
    assert real.read_bytes() == render(INCIDENT_FIXED, nginx_sandbox)
    assert directive_names(nginx_sandbox, link).count("location") == 2


# --------------------------------------------------------------------------- the target helper


def test_nginx_file_read_stale_write_and_new_files(nginx_sandbox: NginxSandbox, ansible: Ansible) -> None:
    original = render(INCIDENT_SITE, nginx_sandbox)
    real = nginx_sandbox.write_site("app", original)
    link = enabled(nginx_sandbox)
    new_conf = nginx_sandbox.path("conf.d/new.conf")
    conf = str(nginx_sandbox.conf)
    dump_before = nginx_sandbox.dump()

    def write(path: Path, content: bytes, expected: str, **options: Any) -> Dict[str, Any]:
        return {
            "operation": "write",
            "path": str(path),
            "content": base64.b64encode(content).decode(),
            "expected_sha256": expected,
            "nginx_conf": conf,
            **options,
        }

    steps = [
        Step({"operation": "read", "path": str(link), "nginx_conf": conf}, module=FILE_MODULE),
        Step(write(link, b"# replaced\n", "0" * 64), module=FILE_MODULE),
        Step(write(new_conf, b"bogus_directive on;\n", "absent"), module=FILE_MODULE),
        Step(write(new_conf, CONNECTION_MAP.encode(), "absent"), module=FILE_MODULE, check=True),
        Step(write(new_conf, CONNECTION_MAP.encode(), "absent"), module=FILE_MODULE),
    ]

    run = ansible.run(steps, watch=new_conf)

    read, stale, broken, checked, created = run.results
    assert base64.b64decode(read["content"]) == original
    assert read["stat"] == {
        "path": str(link),
        "realpath": str(real),
        "islink": True,
        "mode": "0644",
        "uid": os.getuid(),
        "gid": os.getgid(),
        "size": len(original),
        "sha256": hashlib.sha256(original).hexdigest(),
    }
    assert read["nginx_rc"] == 0 and "test is successful" in read["nginx_stderr"]
    assert base64.b64decode(read["dump"]).decode() == dump_before
    assert read["dump_realpaths"][str(link)] == str(real)
    assert read["dump_realpaths"][conf] == conf

    assert (stale["failed"], stale["stale"], stale["changed"]) == (True, True, False)
    assert stale["msg"].startswith(f"{real} changed since it was read (expected sha256 {'0' * 64}, found ")
    assert real.read_bytes() == original

    assert (broken["failed"], broken["restored"]) == (True, True)
    assert broken["msg"] == (
        f"nginx -t failed after writing {new_conf}, so the module removed it again: "
        f'unknown directive "bogus_directive" in {new_conf}:1'
    )
    assert (checked["changed"], checked["failed"], run.files[3]) == (True, False, None)
    assert (created["changed"], created["failed"]) == (True, False), created
    assert run.files[4] == CONNECTION_MAP.encode()
    assert new_conf.stat().st_mode & 0o777 == 0o644


def test_nginx_file_status_reads_pid_process_and_log_tails_read_only(
    nginx_sandbox: NginxSandbox, ansible: Ansible
) -> None:
    nginx_sandbox.write_site("app", render(INCIDENT_SITE, nginx_sandbox))
    enabled(nginx_sandbox)
    nginx_sandbox.start()
    log = nginx_sandbox.error_log
    missing = nginx_sandbox.path("logs/missing.log")

    def status(**options: Any) -> Step:
        return Step({"operation": "status", **options}, module=FILE_MODULE)

    steps = [
        status(pid_file=str(nginx_sandbox.pid_file), error_logs=[str(log), str(missing)], tail_bytes=40),
        status(pid_file=str(missing)),
        status(error_logs=[str(log)] * 5),
        status(error_logs=[str(log)], tail_bytes=0),
    ]
    run = ansible.run(steps, watch=log)

    running, no_pid, too_many, no_tail = run.results
    assert running["changed"] is False
    assert running["pid_text"].strip() == str(nginx_sandbox.pid)
    assert running["process_name"] == "nginx\n"
    assert running["logs"] == [
        {"path": str(log), "text": log.read_bytes()[-40:].decode("utf-8", "replace")},
        {"path": str(missing), "text": None},
    ]
    assert (no_pid["pid_text"], no_pid["process_name"], no_pid["logs"]) == (None, None, [])
    assert (too_many["failed"], too_many["msg"]) == (True, "error_logs takes at most 4 files, got 5.")
    assert (no_tail["failed"], no_tail["msg"]) == (True, "tail_bytes must be between 1 and 1048576, got 0.")
