"""Prove the test support (sandbox, backends, ws_handshake) with real traffic through nginx."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from typing import Dict, Optional, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import HandshakeResult, handshake
from tests.support.nginx_sandbox import NginxError, NginxSandbox
from tests.support.processes import free_port
from tests.support.pytest_fixtures import Backend, backend_by_name

needs_nginx = pytest.mark.nginx

WS_PATH = "/api/mqtt/ws/hints/session-1"
HEADERS_WS_PATH = "/api/mqtt/ws/headers/session-1"
ECHO_TEXT = "hint: ✓ ünïcode {json: [1, 2]}"
VHOST = "app.example.test"

CONNECTION_MAP = """\
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
"""

PROXY_HEADERS_SNIPPET = """\
proxy_set_header Host $host;
proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
"""

API_LOCATION = """\
    location /api/ {{
        proxy_pass http://{upstream};
        include snippets/proxy-headers.conf;
    }}
"""

WS_LOCATION = """\
    location /api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_http_version {http_version};
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        include snippets/proxy-headers.conf;
        proxy_read_timeout 3600s;
    }}
"""


def site(sandbox: NginxSandbox, upstream: str, ws_http_version: Optional[str] = "1.1") -> str:
    """A server block with ``/api/`` and, unless ``ws_http_version`` is None, a WebSocket location."""
    body = API_LOCATION.format(upstream=upstream)
    if ws_http_version is not None:
        body += WS_LOCATION.format(upstream=upstream, http_version=ws_http_version)
    return f"server {{\n    listen {sandbox.listen};\n    server_name {VHOST};\n\n{body}}}\n"


def serve(sandbox: NginxSandbox, backend: Backend, ws_http_version: Optional[str] = "1.1") -> None:
    sandbox.write("conf.d/websocket-map.conf", CONNECTION_MAP)
    sandbox.write("snippets/proxy-headers.conf", PROXY_HEADERS_SNIPPET)
    sandbox.write_site("app", site(sandbox, backend.upstream, ws_http_version))
    sandbox.start(ports=[sandbox.port])


def http_get(url: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore *_proxy variables
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ws(
    sandbox: NginxSandbox,
    path: str = WS_PATH,
    echo: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
) -> HandshakeResult:
    return handshake(sandbox.ws_url(path), host=VHOST, headers=headers, echo=echo, timeout=5.0)


# --------------------------------------------------------------------------- (a)


@needs_nginx
@pytest.mark.parametrize("backend_name", ["asgi", "strict"])
def test_correct_ws_location_upgrades_and_echoes(
    nginx_sandbox: NginxSandbox, request: pytest.FixtureRequest, backend_name: str
) -> None:
    serve(nginx_sandbox, backend_by_name(request, backend_name))

    result = ws(nginx_sandbox, echo=ECHO_TEXT)

    assert (result.status, result.reason) == (101, "Switching Protocols"), result
    assert result.accept_ok
    assert result.echo_received == ECHO_TEXT
    assert result.error is None
    assert result.ok
    assert result.close_code == 1000  # the backend answered our close frame through the tunnel


# --------------------------------------------------------------------------- (b)


@needs_nginx
def test_http_1_0_upgrade_gets_505_from_strict_backend(nginx_sandbox: NginxSandbox, strict_backend: Backend) -> None:
    serve(nginx_sandbox, strict_backend, ws_http_version="1.0")

    result = ws(nginx_sandbox, echo=ECHO_TEXT)

    assert (result.status, result.reason) == (505, "HTTP Version Not Supported")
    assert result.body == "Failed to open a WebSocket connection: unsupported HTTP version: HTTP/1.0.\n"
    assert result.echo_received is None
    assert result.error == "expected 101 Switching Protocols, got HTTP/1.1 505 HTTP Version Not Supported"


@needs_nginx
def test_http_1_0_upgrade_still_works_with_uvicorn(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> None:
    serve(nginx_sandbox, asgi_backend, ws_http_version="1.0")

    result = ws(nginx_sandbox, echo=ECHO_TEXT)

    assert result.status == 101
    assert result.ok, result
    assert result.echo_received == ECHO_TEXT


# --------------------------------------------------------------------------- (c)


@needs_nginx
@pytest.mark.parametrize(
    ("backend_name", "status", "body"),
    [
        # FastAPI: the plain GET (no Upgrade reaches it) on a WebSocket-only route.
        ("asgi", 404, '{"detail":"Not Found"}'),
        # websockets checks the HTTP version before the Upgrade header: nginx's default 1.0 wins.
        ("strict", 505, "Failed to open a WebSocket connection: unsupported HTTP version: HTTP/1.0.\n"),
    ],
)
def test_api_location_alone_does_not_upgrade(
    nginx_sandbox: NginxSandbox, request: pytest.FixtureRequest, backend_name: str, status: int, body: str
) -> None:
    serve(nginx_sandbox, backend_by_name(request, backend_name), ws_http_version=None)

    result = ws(nginx_sandbox, echo=ECHO_TEXT)

    assert (result.status, result.body) == (status, body)
    assert not result.upgraded
    assert result.echo_received is None


# --------------------------------------------------------------------------- (d)


@needs_nginx
@pytest.mark.parametrize("backend_name", ["asgi", "strict"])
def test_health_through_nginx(nginx_sandbox: NginxSandbox, request: pytest.FixtureRequest, backend_name: str) -> None:
    serve(nginx_sandbox, backend_by_name(request, backend_name))

    status, body = http_get(nginx_sandbox.url("/api/health"), {"Host": VHOST})

    assert status == 200
    assert json.loads(body) == {"status": "ok"}


# --------------------------------------------------------------------------- (e)


@needs_nginx
def test_backend_sees_host_and_forwarded_for(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> None:
    serve(nginx_sandbox, asgi_backend)
    client_xff = {"X-Forwarded-For": "203.0.113.7"}

    status, body = http_get(nginx_sandbox.url("/api/echo-headers"), {"Host": VHOST, **client_xff})
    ws_result = ws(nginx_sandbox, HEADERS_WS_PATH, headers=client_xff, echo="send me your headers")

    assert status == 200
    http_seen = json.loads(body)
    assert (http_seen["host"], http_seen["x-forwarded-for"]) == (VHOST, "203.0.113.7, 127.0.0.1")
    assert ws_result.status == 101
    ws_seen = json.loads(ws_result.echo_received or "{}")
    assert (ws_seen["host"], ws_seen["x-forwarded-for"]) == (VHOST, "203.0.113.7, 127.0.0.1")
    assert (ws_seen["upgrade"], ws_seen["connection"]) == ("websocket", "upgrade")


# --------------------------------------------------------------------------- (f)


def test_handshake_to_closed_port_reports_error() -> None:
    port = free_port()

    result = handshake(f"ws://127.0.0.1:{port}{WS_PATH}", timeout=2.0, echo="x")

    assert result.status == 0
    assert result.error == f"connecting to 127.0.0.1:{port}: connection refused"
    assert not result.upgraded
    assert result.echo_received is None


# --------------------------------------------------------------------------- (g)


@needs_nginx
def test_reload_picks_up_changed_site(nginx_sandbox: NginxSandbox, strict_backend: Backend) -> None:
    serve(nginx_sandbox, strict_backend, ws_http_version=None)
    assert ws(nginx_sandbox).status == 505
    old_workers = nginx_sandbox.worker_pids()

    nginx_sandbox.write_site("app", site(nginx_sandbox, strict_backend.upstream))
    nginx_sandbox.reload()

    result = ws(nginx_sandbox, echo=ECHO_TEXT)
    assert result.ok, result
    assert nginx_sandbox.worker_pids().isdisjoint(old_workers)
    assert nginx_sandbox.path("sites-enabled/app").resolve() == nginx_sandbox.path("sites-available/app")


@needs_nginx
@pytest.mark.parametrize("check", [True, False], ids=["nginx-t-first", "signal-only"])
def test_reload_refuses_a_broken_site_and_keeps_serving(
    nginx_sandbox: NginxSandbox, strict_backend: Backend, check: bool
) -> None:
    serve(nginx_sandbox, strict_backend)
    workers = nginx_sandbox.worker_pids()
    nginx_sandbox.write("conf.d/websocket-map.conf", "# map removed\n")

    with pytest.raises(NginxError, match='unknown "connection_upgrade" variable'):
        nginx_sandbox.reload(check=check, timeout=5.0)

    assert ws(nginx_sandbox, echo=ECHO_TEXT).ok
    assert nginx_sandbox.worker_pids() == workers


# ------------------------------------------------------------------ sandbox itself


@needs_nginx
def test_sandbox_layout_test_and_dump(nginx_sandbox: NginxSandbox, strict_backend: Backend) -> None:
    nginx_sandbox.write("snippets/proxy-headers.conf", PROXY_HEADERS_SNIPPET)
    nginx_sandbox.write_site("app", site(nginx_sandbox, strict_backend.upstream))

    failed = nginx_sandbox.test()
    nginx_sandbox.write("conf.d/websocket-map.conf", CONNECTION_MAP)
    passed = nginx_sandbox.test()
    dump = nginx_sandbox.dump()

    assert failed.returncode == 1
    assert "[emerg]" in failed.stderr and 'unknown "connection_upgrade" variable' in failed.stderr
    assert passed.returncode == 0 and "test is successful" in passed.stderr
    root = nginx_sandbox.root
    assert f"# configuration file {root}/nginx.conf:" in dump
    assert f"# configuration file {root}/conf.d/websocket-map.conf:" in dump
    assert f"# configuration file {root}/sites-enabled/app:" in dump
    assert f"# configuration file {root}/snippets/proxy-headers.conf:" in dump


# ----------------------------------------------------------------------------- wss


def make_self_signed_cert(sandbox: NginxSandbox) -> Tuple[str, str]:
    """A self-signed EC certificate for VHOST, written into the sandbox; (cert path, key path)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    cert, key = sandbox.path("ssl/cert.pem"), sandbox.path("ssl/key.pem")
    cert.parent.mkdir(mode=0o755, exist_ok=True)
    options = (
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        f"-subj /CN={VHOST} -addext subjectAltName=DNS:{VHOST}"
    )
    argv = [openssl, *options.split(), "-keyout", str(key), "-out", str(cert)]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


@needs_nginx
def test_wss_through_nginx_with_host_override(nginx_sandbox: NginxSandbox, strict_backend: Backend) -> None:
    cert, key = make_self_signed_cert(nginx_sandbox)
    tls_site = site(nginx_sandbox, strict_backend.upstream).replace(
        f"listen {nginx_sandbox.listen};",
        f"listen {nginx_sandbox.listen} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};",
    )
    nginx_sandbox.write("conf.d/websocket-map.conf", CONNECTION_MAP)
    nginx_sandbox.write("snippets/proxy-headers.conf", PROXY_HEADERS_SNIPPET)
    nginx_sandbox.write_site("app", tls_site)
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    url = nginx_sandbox.url(WS_PATH, scheme="wss")

    unverified = handshake(url, host=VHOST, verify_tls=False, echo=ECHO_TEXT, timeout=5.0)
    trusted = handshake(url, host=VHOST, ca_file=cert, echo=ECHO_TEXT, timeout=5.0)
    untrusted = handshake(url, host=VHOST, echo=ECHO_TEXT, timeout=5.0)

    assert unverified.ok, unverified
    assert trusted.ok, trusted  # SNI and the certificate check use the Host override
    assert untrusted.status == 0
    assert untrusted.error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
