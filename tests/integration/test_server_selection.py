"""Servers that share a name, on a real nginx: only the server that proxies the anchor path is edited (never
the HTTP to HTTPS redirect server), servers with different upstreams are refused with their list until
``listen`` chooses one, and every answer that is not the WebSocket path stays the same.

``ws_location`` runs in process (Ansible's argument validation, the action's ``converge`` and the real
``nginx_file`` module with the real ``nginx -t``); nginx and the backends are real, and so are the clients.
"""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path
from typing import Dict, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from tests.integration.test_support_smoke import make_self_signed_cert
from tests.reliability.harness import Playbooks, converge
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.processes import free_port
from tests.support.pytest_fixtures import Backend

pytestmark = pytest.mark.nginx

VHOST = "app.example.test"
WS_PATH = "/api/mqtt/ws/hints/session-874q8t"
ECHO_TEXT = "hint: session-874q8t"
UNUSED_UPSTREAM = "127.0.0.1:9"

REDIRECT_AND_HTTPS = """server {{
    listen {plain};
    server_name {vhost};
    location / {{ return 301 https://$host$request_uri; }}
    location /api/ {{ return 301 https://$host$request_uri; }}
}}

server {{
    listen {tls} ssl;
    server_name {vhost};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /api/ {{
        proxy_pass http://{upstream};
    }}
}}
"""

API_AND_CONSOLE = """server {{
    listen {api};
    server_name {vhost};
    location /api/ {{
        proxy_pass http://{upstream};
    }}
}}

server {{
    listen {console};
    server_name {vhost};
    location /api/ {{
        proxy_pass http://{console_upstream};
    }}
}}
"""


def get(port: int, path: str, secure: bool = False) -> Tuple[int, str, bytes]:
    """Status, Location header and body of a plain GET through nginx."""
    if secure:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", port, context=context)
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers={"Host": VHOST})
        response = connection.getresponse()
        return response.status, response.getheader("Location", ""), response.read()
    finally:
        connection.close()


def args(sandbox: NginxSandbox, **options: str) -> Dict[str, str]:
    return {"path": str(sandbox.path("sites-enabled/app")), "nginx_conf": str(sandbox.conf), **options}


def test_only_the_https_server_is_edited_and_named(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> None:
    cert, key = make_self_signed_cert(nginx_sandbox)
    plain, tls = nginx_sandbox.port, free_port()
    text = REDIRECT_AND_HTTPS.format(
        plain=f"127.0.0.1:{plain}",
        tls=f"127.0.0.1:{tls}",
        vhost=VHOST,
        cert=cert,
        key=key,
        upstream=asgi_backend.upstream,
    )
    real = nginx_sandbox.write_site("app", text)
    nginx_sandbox.start(ports=[plain, tls])
    redirect_before, api_before = get(plain, "/api/x?y=1"), get(tls, "/api/", secure=True)

    by_listen = converge("ws_location", args(nginx_sandbox, listen=f"{tls} ssl"), check_mode=True)
    assert by_listen["changed"] is True and by_listen["edited"] == [
        f"server {VHOST} (listen 127.0.0.1:{tls} ssl) at {real.parent.parent}/sites-enabled/app:8"
    ]
    no_ssl_there = converge("ws_location", args(nginx_sandbox, listen=f"{plain} ssl"), check_mode=True)
    assert no_ssl_there["failed"] is True and f"no server block listens on {plain} ssl" in no_ssl_there["msg"]
    assert real.read_bytes() == text.encode()

    result = converge("ws_location", args(nginx_sandbox))

    assert result["failed"] is False and result["changed"] is True, result
    https_server = f"server {VHOST} (listen 127.0.0.1:{tls} ssl) at {real.parent.parent}/sites-enabled/app:8"
    assert result["edited"] == [https_server]
    assert [(s["line"], s["listen"], s["action"]) for s in result["servers"]] == [
        (8, [f"127.0.0.1:{tls} ssl"], "inserted")
    ]
    redirect_server = f"server {VHOST} (listen 127.0.0.1:{plain}) at {real.parent.parent}/sites-enabled/app:1"
    assert f"left alone: {redirect_server} does not proxy /api/" in result["warnings"][1]
    after = real.read_bytes().decode()
    assert after.startswith(text[: text.index("server {", 10)])  # the redirect server, byte for byte
    assert after.count("location ~ ^/api/mqtt/ws/ {") == 1
    assert after.index("location ~ ^/api/mqtt/ws/ {") > after.index(f"listen 127.0.0.1:{tls} ssl;")

    nginx_sandbox.reload()
    upgraded = handshake(f"wss://127.0.0.1:{tls}{WS_PATH}", host=VHOST, verify_tls=False, echo=ECHO_TEXT, timeout=5)
    assert (upgraded.status, upgraded.echo_received) == (101, ECHO_TEXT), upgraded
    assert get(plain, "/api/x?y=1") == redirect_before
    assert redirect_before[:2] == (301, f"https://{VHOST}/api/x?y=1")
    assert get(tls, "/api/", secure=True) == api_before
    assert converge("ws_location", args(nginx_sandbox))["changed"] is False


def start_api_and_console(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> Tuple[int, int, str, Path]:
    """The API (on the sandbox's port, to the real backend) and the console server, started: (api port,
    console port, the site's text, the real site file)."""
    api, console = nginx_sandbox.port, free_port()
    text = API_AND_CONSOLE.format(
        api=f"127.0.0.1:{api}",
        console=console,
        vhost=VHOST,
        upstream=asgi_backend.upstream,
        console_upstream=UNUSED_UPSTREAM,
    )
    real = nginx_sandbox.write_site("app", text)
    nginx_sandbox.start(ports=[api, console])
    return api, console, text, real


def test_different_upstreams_are_refused_until_listen_chooses(
    nginx_sandbox: NginxSandbox, asgi_backend: Backend
) -> None:
    api, console, text, real = start_api_and_console(nginx_sandbox, asgi_backend)
    site = f"{real.parent.parent}/sites-enabled/app"
    answers_before = {port: get(port, "/api/") for port in (api, console)}

    refused = converge("ws_location", args(nginx_sandbox))

    assert refused["failed"] is True
    assert refused["msg"] == (
        f"{site}: 2 server blocks named {VHOST} serve /api/ with different upstreams: "
        f"{site}:1 listen 127.0.0.1:{api} -> proxy_pass http://{asgi_backend.upstream}; "
        f"{site}:9 listen {console} -> proxy_pass http://{UNUSED_UPSTREAM}. "
        "Set listen (for example the port of one of them) or server_name to choose the server to edit."
    )
    assert real.read_bytes() == text.encode()

    no_such = converge("ws_location", args(nginx_sandbox, listen=f"*:{api}"))
    assert no_such["failed"] is True and f"no server block listens on *:{api}" in no_such["msg"]
    assert real.read_bytes() == text.encode()

    chosen = converge("ws_location", args(nginx_sandbox, listen=str(api)))

    assert chosen["failed"] is False and chosen["changed"] is True, chosen
    assert chosen["edited"] == [f"server {VHOST} (listen 127.0.0.1:{api}) at {site}:1"]
    after = real.read_bytes().decode()
    assert after.endswith(text[text.index("server {", 10) :])  # the console server, byte for byte
    nginx_sandbox.reload()
    upgraded = handshake(f"ws://127.0.0.1:{api}{WS_PATH}", host=VHOST, echo=ECHO_TEXT, timeout=5)
    assert (upgraded.status, upgraded.echo_received) == (101, ECHO_TEXT), upgraded
    console_ws = handshake(f"ws://127.0.0.1:{console}{WS_PATH}", host=VHOST, timeout=5)
    assert console_ws.status == 502, console_ws
    assert {port: get(port, "/api/") for port in (api, console)} == answers_before
    assert converge("ws_location", args(nginx_sandbox, listen=str(api)))["changed"] is False


def test_the_role_edits_the_server_ws_proxy_listen_names(
    nginx_sandbox: NginxSandbox, asgi_backend: Backend, tmp_path: Path
) -> None:
    """Through ansible-playbook: the role with ws_proxy_listen edits that server only, reloads, and proves it."""
    api, _console, text, real = start_api_and_console(nginx_sandbox, asgi_backend)
    role_vars = {
        "ws_proxy_site": str(nginx_sandbox.path("sites-enabled/app")),
        "ws_proxy_nginx_conf": str(nginx_sandbox.conf),
        "ws_proxy_reload_method": "signal",
        "ws_proxy_listen": f"127.0.0.1:{api}",
        "ws_proxy_verify_url": f"ws://127.0.0.1:{api}{WS_PATH}",
        "ws_proxy_verify_host": VHOST,
        "ws_proxy_verify_echo": True,
    }
    task = {"ansible.builtin.include_role": {"name": "agaii.nginx.ws_proxy"}, "vars": role_vars}

    run = Playbooks(tmp_path).run([task], {}, ["ws_proxy_result"])

    assert run.returncode == 0, run.output[-5000:]
    site = f"{real.parent.parent}/sites-enabled/app"
    assert run.results["ws_proxy_result"]["location"]["edited"] == [
        f"server {VHOST} (listen 127.0.0.1:{api}) at {site}:1"
    ]
    probe = run.results["ws_proxy_result"]["proof"]
    assert (probe["status"], probe["echo_received"]) == (101, "agaii.nginx ws_proxy probe"), probe
    after = real.read_bytes().decode()
    assert after.endswith(text[text.index("server {", 10) :])  # the console server, byte for byte
    assert (
        run.results["ws_proxy_result"]["location"]["map_variable"] == "connection_upgrade"
    )  # the map the role just added
