"""ws_probe's description of an application, against a real WebSocket server (the ``websockets`` library, on
127.0.0.1, plain and TLS): subprotocols, query, headers, a message sent (text, hex, base64) and the first message
expected, wss with a CA file, and the time budget with retries only for a missing 101.

The applications the recipes name are proven through nginx in test_real_clients.py (full tier); this file covers
each option's exact outcome and the failure messages, quickly, in the default tier.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import (
    handshake,
    handshake_with_retries,
    with_query,
)
from ansible_collections.agaii.nginx.plugins.modules.ws_probe import ARGUMENT_SPEC, probe, verdict
from tests.support.prerequisites import require_command
from tests.support.processes import LOCALHOST, free_port

CONNECT = bytes.fromhex("101700044d5154540402003c000b61676169692d70726f6265")
CONNACK = bytes.fromhex("20020000")


def application(websocket: ServerConnection) -> None:
    """/echo echoes; /greet speaks first; /whoami sends what the handshake carried; /mqtt answers a CONNECT."""
    request = websocket.request
    assert request is not None
    path = request.path.split("?", 1)[0]
    if path == "/greet":
        websocket.send('0{"sid":"abc","upgrades":[]}')
    elif path == "/whoami":
        seen = {name: request.headers.get(name) for name in ("Origin", "Authorization", "Cookie")}
        websocket.send(json.dumps({"path": request.path, "subprotocol": websocket.subprotocol, **seen}))
    for message in websocket:
        if path == "/mqtt" and message == CONNECT:
            websocket.send(CONNACK)
        elif path == "/echo":
            websocket.send(message)


def select_mqtt(connection: ServerConnection, offered: Sequence[str]) -> Optional[str]:
    """Like mosquitto: select ``mqtt`` when offered, else accept the connection without a subprotocol."""
    return "mqtt" if "mqtt" in offered else None


@dataclass
class Served:
    server: Server
    port: int
    scheme: str

    def url(self, path: str) -> str:
        return f"{self.scheme}://{LOCALHOST}:{self.port}{path}"


def _serve(**options: Any) -> Iterator[Served]:
    port = free_port()
    server = serve(application, LOCALHOST, port, select_subprotocol=select_mqtt, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(server, port, "wss" if options.get("ssl") else "ws")
    finally:
        server.shutdown()
        thread.join(10)


@pytest.fixture(scope="module")
def app() -> Iterator[Served]:
    yield from _serve()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    """The same application over TLS, with a self-signed certificate for 127.0.0.1 and localhost."""
    openssl = require_command("openssl", "openssl")
    workdir = tmp_path_factory.mktemp("tls")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for served in _serve(ssl=context):
        yield served, cert


def params(**overrides: Any) -> Dict[str, Any]:
    """ws_probe's parameters as AnsibleModule gives them: every default, then ``overrides``."""
    defaults = {name: spec.get("default") for name, spec in ARGUMENT_SPEC.items()}
    return {**defaults, **overrides}


# --------------------------------------------------------------------------- what the application does


def test_default_is_the_handshake_alone(app: Served) -> None:
    result = probe(params(url=app.url("/greet")))
    assert (result.status, result.accept_ok, result.error, result.stage, result.attempts) == (101, True, None, None, 1)
    assert result.message_received is None and result.echo_received is None
    assert verdict(result, 101, None) is None


def test_query_headers_and_subprotocol_reach_the_application(app: Served) -> None:
    result = probe(
        params(
            url=app.url("/whoami?room=7"),
            query={"EIO": 4, "transport": "websocket"},
            headers={"Origin": "https://app.example.com", "Authorization": "Bearer t0k", "Cookie": "sid=1"},
            subprotocols=["mqtt"],
            expect=r"^\{",
        )
    )
    assert (result.error, result.subprotocol) == (None, "mqtt")
    assert json.loads(result.message_received or "") == {
        "path": "/whoami?room=7&EIO=4&transport=websocket",
        "subprotocol": "mqtt",
        "Origin": "https://app.example.com",
        "Authorization": "Bearer t0k",
        "Cookie": "sid=1",
    }


def test_a_first_message_from_an_application_that_speaks_first(app: Served) -> None:
    result = probe(params(url=app.url("/greet"), expect=r'^0\{"sid":'))
    assert (result.error, result.message_received, result.message_binary) == (
        None,
        '0{"sid":"abc","upgrades":[]}',
        False,
    )


@pytest.mark.parametrize(
    "send_format, text", [("hex", CONNECT.hex()), ("base64", "EBcABE1RVFQEAgA8AAthZ2FpaS1wcm9iZQ==")]
)
def test_a_binary_greeting_and_its_answer_matched_as_hex(app: Served, send_format: str, text: str) -> None:
    result = probe(
        params(url=app.url("/mqtt"), subprotocols=["mqtt"], send=text, send_format=send_format, expect="^20020000$")
    )
    assert (result.error, result.message_sent, result.message_received, result.message_binary) == (
        None,
        CONNECT.hex(),
        "20020000",
        True,
    )


def test_echo_keeps_working(app: Served) -> None:
    result = probe(params(url=app.url("/echo"), echo="ping ✓"))
    assert (result.error, result.echo_received) == (None, "ping ✓")


def test_an_application_that_does_not_echo_fails_the_echo_stage(app: Served) -> None:
    result = probe(params(url=app.url("/greet"), echo="ping"))
    assert (result.stage, result.error, result.echo_received) == (
        "echo",
        "echo: the server sent back a different text",
        '0{"sid":"abc","upgrades":[]}',
    )
    assert verdict(result, 101, "ping") == (
        "the handshake succeeded but the echo failed: echo: the server sent back a different text"
    )


# --------------------------------------------------------------------------- failures name their stage


def test_a_refused_subprotocol_is_named_and_not_retried(app: Served) -> None:
    result = probe(params(url=app.url("/echo"), subprotocols=["chat"], retry_for=3.0))
    assert (result.status, result.stage, result.attempts) == (101, "subprotocol", 1)
    assert result.elapsed < 1.5
    assert verdict(result, 101, None) == (
        "subprotocol refused: the server selected none of the subprotocols offered (chat): "
        f"101 without Sec-WebSocket-Protocol ({app.url('/echo')})"
    )


def test_a_first_message_that_does_not_match_is_named(app: Served) -> None:
    result = probe(params(url=app.url("/greet"), expect="^MQTT"))
    assert (result.stage, result.message_received) == ("message", '0{"sid":"abc","upgrades":[]}')
    assert verdict(result, 101, None) == (
        "no expected first message: the first message does not match '^MQTT': "
        f"""text message '0{{"sid":"abc","upgrades":[]}}' ({app.url("/greet")})"""
    )


def test_a_silent_application_fails_within_the_budget(app: Served) -> None:
    result = probe(params(url=app.url("/echo"), expect=".", timeout=1.0))
    assert (result.stage, result.error) == ("message", "waiting for the first message: timed out")
    assert 0.9 <= result.elapsed < 1.5
    assert verdict(result, 101, None) == (
        f"no expected first message: waiting for the first message: timed out ({app.url('/echo')})"
    )


def test_no_101_is_retried_for_retry_for_seconds_within_the_budget() -> None:
    url = f"ws://{LOCALHOST}:{free_port()}/nothing-listens"
    once = handshake_with_retries(url, timeout=5, retry_for=0)
    assert (once.stage, once.attempts) == ("connect", 1)
    assert once.error == f"connecting to {LOCALHOST}:{url.split(':')[2].split('/')[0]}: connection refused"

    retried = handshake_with_retries(url, timeout=5, retry_for=1.2)
    assert retried.stage == "connect" and retried.attempts == 3  # at 0, 0.5 and 1.0 s
    assert 0.9 <= retried.elapsed < 1.5

    budget = handshake_with_retries(url, timeout=1.0, retry_for=30)
    assert budget.stage == "connect" and budget.elapsed < 1.3


def test_invalid_descriptions_are_refused() -> None:
    with pytest.raises(ValueError, match="send is not valid hex"):
        probe(params(url="ws://127.0.0.1:9/", send="10zz", send_format="hex"))
    with pytest.raises(ValueError, match="invalid regex for the expected first message"):
        probe(params(url="ws://127.0.0.1:9/", expect="(unclosed"))
    with pytest.raises(ValueError, match="query must be a string or a dictionary"):
        probe(params(url="ws://127.0.0.1:9/", query=["EIO=4"]))
    with pytest.raises(ValueError, match="invalid request header"):
        probe(params(url="ws://127.0.0.1:9/", headers={"Origin": "a\r\nX-Injected: 1"}))
    with pytest.raises(ValueError, match="invalid subprotocol 'mqtt"):
        probe(params(url="ws://127.0.0.1:9/", subprotocols=["mqtt\r\nX-Injected: 1"]))
    with pytest.raises(ValueError, match="malformed WebSocket URL"):
        probe(params(url="ws://127.0.0.1:9/", query="a=1\r\nX-Injected: 1"))
    # a dictionary is percent-encoded: nothing to inject
    assert with_query("ws://127.0.0.1:9/", {"a": "1\r\nX-Injected: 1"}) == "ws://127.0.0.1:9/?a=1%0D%0AX-Injected%3A+1"


def test_with_query_joins_the_url_query() -> None:
    assert with_query("ws://h/socket.io/", "EIO=4&transport=websocket") == "ws://h/socket.io/?EIO=4&transport=websocket"
    assert with_query("ws://h/a?x=1", {"y": "2 3"}) == "ws://h/a?x=1&y=2+3"
    assert with_query("ws://h/a", "?z=1") == "ws://h/a?z=1"
    assert with_query("ws://h/a", None) == "ws://h/a"


# --------------------------------------------------------------------------- wss


def test_wss_with_a_ca_file_or_without_validation(tls: tuple[Served, Path]) -> None:
    served, cert = tls
    trusted = handshake(served.url("/greet"), ca_file=str(cert), expect="^0", timeout=5)
    assert (trusted.status, trusted.error) == (101, None)
    unverified = probe(params(url=served.url("/greet"), validate_certs=False))
    assert (unverified.status, unverified.error) == (101, None)
    refused = probe(params(url=served.url("/greet")))
    assert refused.status == 0 and refused.stage == "connect"
    assert refused.error is not None and refused.error.startswith(f"TLS handshake with {LOCALHOST}:{served.port}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in refused.error
