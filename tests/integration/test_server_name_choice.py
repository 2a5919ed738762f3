"""ws_location and route_info choose the same server as nginx for a regex server_name with named captures
(one matcher, `_servers.py`): the module edits it, nginx upgrades through it, route_info names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import route_info
from tests.integration.test_ws_location import (
    ECHO_TEXT,
    VHOST,
    WS_PATH,
    Ansible,
    Step,
    enabled,
    render,
    sandbox_args,
    ws,
)
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend

pytestmark = pytest.mark.nginx

NAMED_CAPTURE_SITE = """\
server {{
    listen {listen};
    server_name www.example.test;
    location /api/ {{
        return 200 "www";
    }}
}}
server {{
    listen {listen};
    server_name ~^(?<sub>[a-z]+)\\.example\\.test$;
    location /api/ {{
        proxy_pass http://{upstream};
    }}
}}
"""


@pytest.fixture
def ansible(tmp_path: Path) -> Ansible:
    return Ansible(tmp_path)


def test_named_capture_server_name_is_edited_and_is_the_server_nginx_uses(
    nginx_sandbox: NginxSandbox, ansible: Ansible, asgi_backend: Backend
) -> None:
    assert VHOST == "app.example.test"  # answered by the regex server, not by www.example.test
    nginx_sandbox.write_site("app", render(NAMED_CAPTURE_SITE, nginx_sandbox, asgi_backend.upstream))
    link = enabled(nginx_sandbox)
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    assert ws(nginx_sandbox).status == 404  # the API location drops the upgrade: the incident

    run = ansible.run([Step(sandbox_args(nginx_sandbox, link, server_name=VHOST))], watch=link)

    (result,) = run.results
    assert (result["changed"], result["failed"]) == (True, False), result
    (server,) = result["servers"]
    assert (server["line"], server["names"], server["action"]) == (
        8,
        ["~^(?<sub>[a-z]+)\\.example\\.test$"],
        "inserted",
    )
    nginx_sandbox.reload()
    handshake = ws(nginx_sandbox, echo=ECHO_TEXT)
    assert (handshake.status, handshake.echo_received) == (101, ECHO_TEXT), handshake
    config = load(str(link), link.read_bytes(), nginx_sandbox.dump().encode())
    info = route_info(config, VHOST, WS_PATH, nginx_sandbox.port, "127.0.0.1")
    assert info.choice.server is not None and info.choice.server.line == 8
    assert info.reasons[1].startswith("first matching regex server_name ~^(?<sub>[a-z]+)\\.example\\.test$")
    assert info.location is not None and info.location.args == ["~", "^/api/mqtt/ws/"]
