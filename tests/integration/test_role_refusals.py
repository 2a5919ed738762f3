"""Nothing changes when the ws_proxy role refuses an input: one bad value per role option, through
``ansible-playbook`` against a sandbox nginx (Debian's nginx, real ``nginx -t``), and every file of the
sandbox is byte-identical afterwards, with an error that names the option.

No upgrade map is loaded, so a valid run writes two files (a new map file in conf.d/ and the site): the
role must refuse before the first of them. A last, valid run shows that the comparison sees a write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from tests.reliability.harness import Playbooks, role_case
from tests.reliability.workspace import incident_site, read_tree
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

# (role variable, bad value, text the error must contain); "{root}" is the sandbox directory.
CASES: List[Tuple[str, Any, str]] = [
    ("ws_proxy_site", "{root}/sites-enabled/nowhere", "nowhere"),
    ("ws_proxy_server_name", "other.example.test", "server_name 'other.example.test'"),
    ("ws_proxy_listen", "443; return 200 x", "listen must be a port or address:port"),
    ("ws_proxy_location", "^/ws/ { add_header X-Injected 1; }", "location"),
    ("ws_proxy_before", "/nowhere/", "'/nowhere/'"),
    ("ws_proxy_upstream", "http://127.0.0.1:9; add_header X-Injected 1", "proxy_pass"),
    ("ws_proxy_read_timeout", "one hour", "read_timeout"),
    ("ws_proxy_send_timeout", "1s\nadd_header X-Injected 1;", "send_timeout"),
    ("ws_proxy_match", "sometimes", "ws_proxy_match"),
    ("ws_proxy_map_file", "{root}/elsewhere/websocket-map.conf", "map_file"),
    ("ws_proxy_nginx_binary", "{root}/no-nginx", "nginx was not found ({root}/no-nginx)"),
    ("ws_proxy_nginx_conf", "{root}/no-nginx.conf", "{root}/no-nginx.conf"),
    ("ws_proxy_reload_method", "sometimes", "ws_proxy_reload_method"),
    ("ws_proxy_backup", "maybe", "ws_proxy_backup"),
    ("ws_proxy_backup_dir", "{root}/sites-enabled", "backup_dir"),
    ("ws_proxy_verify_validate_certs", "maybe", "ws_proxy_verify_validate_certs"),
    ("ws_proxy_check_mode", "maybe", "ws_proxy_check_mode"),
    # the proof's options are checked by ws_probe (validate_only) before the first write
    ("ws_proxy_verify_url", "http://127.0.0.1:9/not-a-websocket-url", "unsupported URL scheme"),
    ("ws_proxy_verify_host", "h\r\nX-Injected: 1", "invalid request header 'Host'"),
    ("ws_proxy_verify_query", "a=b\r\nX-Injected: 1", "malformed WebSocket URL"),
    ("ws_proxy_verify_headers", {"Origin": "x\r\nX-Injected: 1"}, "invalid request header 'Origin'"),
    ("ws_proxy_verify_subprotocols", ["mqtt", "a,b"], "invalid subprotocol 'a,b'"),
    ("ws_proxy_verify_echo", "maybe", "ws_proxy_verify_echo"),
    ("ws_proxy_verify_send", "zz", "send is not valid hex"),
    ("ws_proxy_verify_send_format", "morse", "ws_proxy_verify_send_format"),
    ("ws_proxy_verify_expect", "([unclosed", "invalid regex for the expected first message"),
    ("ws_proxy_verify_ca_file", "{root}/no-ca.pem", "is not a readable file"),
    ("ws_proxy_verify_budget", "soon", "ws_proxy_verify_budget"),
    ("ws_proxy_verify_reload_wait", "soon", "ws_proxy_verify_reload_wait"),
]


def role_options() -> List[str]:
    import yaml

    from tests.support.pytest_fixtures import REPO_ROOT

    specs = yaml.safe_load((REPO_ROOT / "roles/ws_proxy/meta/argument_specs.yml").read_text())
    return list(specs["argument_specs"]["main"]["options"])


def test_every_role_option_has_a_refusal_case() -> None:
    assert sorted(name for name, _value, _text in CASES) == sorted(role_options())


def base_vars(sandbox: NginxSandbox) -> Dict[str, Any]:
    return {
        "ws_proxy_site": str(sandbox.path("sites-enabled/app")),
        "ws_proxy_nginx_conf": str(sandbox.conf),
        "ws_proxy_reload_method": "none",
    }


def case_vars(sandbox: NginxSandbox, name: str, value: Any) -> Dict[str, Any]:
    extra: Dict[str, Any] = {"ws_proxy_backup": True} if name == "ws_proxy_backup_dir" else {}
    if name.startswith("ws_proxy_verify_") and name != "ws_proxy_verify_url":
        extra["ws_proxy_verify_url"] = f"ws://{sandbox.listen}/api/mqtt/ws/hints/probe"
    if name == "ws_proxy_verify_send":
        extra["ws_proxy_verify_send_format"] = "hex"
    if isinstance(value, str):
        value = value.replace("{root}", str(sandbox.root))
    return {**base_vars(sandbox), **extra, name: value}


def run_role(sandbox: NginxSandbox, workdir: Path, cases: List[Dict[str, Any]]) -> Dict[str, Any]:
    run = Playbooks(workdir).run(
        [role_case(index, variables) for index, variables in enumerate(cases)],
        {"cases": cases},
        [f"case_{index}" for index in range(len(cases))],
    )
    assert run.returncode == 0, run.output[-5000:]
    return run.results


@pytest.fixture
def site(nginx_sandbox: NginxSandbox) -> NginxSandbox:
    nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    return nginx_sandbox


def test_refused_inputs_change_no_file(site: NginxSandbox, tmp_path: Path) -> None:
    before = read_tree(site.root)
    cases = [case_vars(site, name, value) for name, value, _text in CASES]

    results = run_role(site, tmp_path, cases)

    assert read_tree(site.root) == before
    for index, (name, _value, text) in enumerate(CASES):
        result = results[f"case_{index}"]
        assert result["failed"] is True, (name, result)
        assert text.replace("{root}", str(site.root)) in result["msg"], (name, result)
    valid = run_role(site, tmp_path / "valid", [base_vars(site)])
    assert valid["case_0"] == {"failed": False}
    after = read_tree(site.root)
    changed = sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))
    assert changed == ["conf.d/websocket-upgrade-map.conf", "sites-available/app"]
