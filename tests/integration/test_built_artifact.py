"""The built artifact: ``ansible-galaxy collection build`` -> install the tarball into a fresh collections path
-> ``ansible-playbook agaii.nginx.fix_websocket`` from the installed collection, against a real nginx.

The tarball is built from what a fresh clone holds, littered the way a used work tree is (test output,
caches, virtualenvs, ``__pycache__``, an old tarball): none of that may reach the artifact.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from tests.support.fleet.collection import (
    BIN_DIR,
    JUNK,
    JUNK_PATTERNS,
    REPO_ROOT,
    build_release,
    install_collection,
    isolated_env,
    tarball_members,
)
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

WS_PATH = "/api/mqtt/ws/hints/session-874q8t"
ECHO = "from the installed collection"
SITE = """\
server {{
    listen {listen};
    server_name app.example.com;

    location /api/ {{
        proxy_pass http://{upstream};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
}}
"""


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_release(tmp_path_factory.mktemp("release"))


@pytest.fixture
def incident(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> Iterator[NginxSandbox]:
    nginx_sandbox.write_site("app", SITE.format(listen=nginx_sandbox.listen, upstream=asgi_backend.upstream))
    nginx_sandbox.start()
    yield nginx_sandbox
    nginx_sandbox.stop()


def test_tarball_holds_the_collection_and_nothing_left_behind(tarball: Path) -> None:
    members = tarball_members(tarball)
    leaked = sorted(name for name in members if JUNK_PATTERNS.search(name))
    assert leaked == [], f"the tarball holds files build_ignore should keep out: {leaked}"
    assert not set(JUNK) & set(members)
    for needed in (
        "MANIFEST.json",
        "FILES.json",
        "meta/runtime.yml",
        "meta/execution-environment.yml",
        "requirements.txt",
        "playbooks/fix_websocket.yml",
        "playbooks/audit_websocket.yml",
        "roles/ws_proxy/tasks/main.yml",
        "roles/ws_proxy/meta/argument_specs.yml",
        "plugins/action/ws_location.py",
        "plugins/plugin_utils/_engine/plan_location.py",
        "plugins/modules/nginx_file.py",
    ):
        assert needed in members, f"{needed} is missing from {tarball.name}"


def test_fix_playbook_runs_from_the_installed_collection(tarball: Path, incident: NginxSandbox, tmp_path: Path) -> None:
    installed = install_collection(tarball, tmp_path / "collections")
    manifest = json.loads((installed / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["name"] == "nginx"

    site = incident.root / "sites-enabled" / "app"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {
                        "web1": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": str(BIN_DIR / "python"),
                            # root already, and sudo need not be installed: no privilege escalation
                            "ansible_become": False,
                        }
                    }
                }
            }
        )
    )
    extra_vars = {
        "ws_proxy_site": str(site),
        "ws_proxy_nginx_conf": str(incident.conf),
        "ws_proxy_reload_method": "signal",
        "ws_proxy_verify_url": incident.ws_url(WS_PATH),
        "ws_proxy_verify_host": "app.example.com",
        "ws_proxy_verify_echo": True,
    }
    # Only the fresh collections path: neither the checkout's .build/collections nor any sys.path copy.
    env = isolated_env(tmp_path / "collections")
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    playbook = [str(BIN_DIR / "ansible-playbook"), "agaii.nginx.fix_websocket", "-i", str(inventory)]
    result = subprocess.run(
        [*playbook, "-e", json.dumps(extra_vars), "-vv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    # The playbook and the role came from the installed copy, never from the source tree.
    assert f"task path: {installed}/roles/ws_proxy/tasks/main.yml" in output
    for source in (REPO_ROOT / "roles", REPO_ROOT / "playbooks", REPO_ROOT / "plugins", REPO_ROOT / ".build"):
        assert str(source) not in output
    assert "web1                       : ok=" in output and "failed=0" in output

    site_text = site.read_text()
    assert site_text.count("location ~ ^/api/mqtt/ws/ {") == 1
    assert "proxy_set_header Connection $connection_upgrade;" in site_text

    proof = handshake(incident.ws_url(WS_PATH), host="app.example.com", echo=ECHO, timeout=10)
    assert proof.status == 101, proof
    assert proof.echo_received == ECHO
