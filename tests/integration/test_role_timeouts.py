"""The role's ws_proxy_read_timeout / ws_proxy_send_timeout read with nginx's own time grammar, through
ansible-playbook against a real nginx: a value nginx refuses (``1y`` for a timeout) is refused with the rule it
breaks and the site keeps every byte; ``1h30m`` and a plain ``90`` are written as given, nginx loads them, and
the role's own proof gets 101 and its echo from the RFC-strict backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.harness import Playbooks, role_case
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend

pytestmark = pytest.mark.nginx

HOST = "app.example.test"
WS_URI = "/api/mqtt/ws/hints/role-timeouts"
SITE = """\
map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      close;
}}

server {{
    listen {listen};
    server_name {host};

    location /api/ {{
        proxy_pass http://{upstream};
    }}
}}
"""


def test_role_timeouts_take_every_nginx_time_and_refuse_what_nginx_refuses(
    nginx_sandbox: NginxSandbox, strict_backend: Backend, tmp_path: Path
) -> None:
    text = SITE.format(listen=nginx_sandbox.listen, host=HOST, upstream=strict_backend.upstream)
    real = nginx_sandbox.write_site("app", text)
    nginx_sandbox.start()
    base = {
        "ws_proxy_site": str(nginx_sandbox.path("sites-enabled/app")),
        "ws_proxy_nginx_conf": str(nginx_sandbox.conf),
        "ws_proxy_reload_method": "signal",
        "ws_proxy_verify_url": nginx_sandbox.ws_url(WS_URI),
        "ws_proxy_verify_host": HOST,
    }
    refused = {**base, "ws_proxy_read_timeout": "1y"}
    accepted = {**base, "ws_proxy_read_timeout": "1h30m", "ws_proxy_send_timeout": "90"}
    run = Playbooks(tmp_path).run([role_case(0, refused)], {"cases": [refused]}, ["case_0"])
    assert run.returncode == 0, run.output[-5000:]
    assert run.results["case_0"]["failed"] is True
    assert (
        "read_timeout must be an nginx time such as 90, 90s, 2m, 1h30m, 1d or 500ms, got '1y': "
        "y is not allowed in a timeout" in run.results["case_0"]["msg"]
    )
    assert real.read_bytes() == text.encode()

    run = Playbooks(tmp_path / "second").run([role_case(0, accepted)], {"cases": [accepted]}, ["case_0"])
    assert run.returncode == 0, run.output[-5000:]
    assert run.results["case_0"] == {"failed": False}, run.output[-5000:]
    after = real.read_text()
    assert "        proxy_read_timeout 1h30m;\n        proxy_send_timeout 90;\n    }\n" in after
    proof = run.output.split("Prove the WebSocket path through nginx", 1)[1]
    assert proof.split("TASK [", 1)[0].strip().splitlines()[1:] == ["ok: [localhost]"], proof[:2000]
    assert nginx_sandbox.test().returncode == 0
