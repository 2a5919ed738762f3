"""Real applications and real clients through the sandbox nginx, before and after the ws_proxy role.

Each application is proved by the role with its own documented variables (docs/recipes.md): changed on the first
run, ok on the second. Then its real client works through nginx:

- Debian's mosquitto (MQTT over WebSocket, subprotocol ``mqtt``) behind the incident's exact site, with paho-mqtt:
  CONNACK, QoS 1 publish and receive, and an idle client with keep-alive that outlives a short
  ``proxy_read_timeout`` which does close an idle client without keep-alive;
- a python-socketio application (ASGI under uvicorn) and its client with ``transports=['websocket']``;
- headless Chromium loading a page from the sandbox nginx whose JavaScript opens the WebSocket: the 101 is read
  from the browser's own network events (what the operator saw in DevTools), with a screenshot kept under
  tests/output/real-clients/.

A failed proof is fast and names the layer: a stopped broker fails within the budget as "backend down"; a
subprotocol the application refuses and a first message it does not send fail with their own layer.
Every process is started by the test and stopped by PID, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Dict

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from tests.support.incident import INCIDENT_SITE
from tests.support.mosquitto import CONNACK_ACCEPTED, CONNECT_HEX, Mosquitto
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.prerequisites import require_command, require_module
from tests.support.processes import LOCALHOST, ManagedProcess, free_port, wait_for_port
from tests.support.pytest_fixtures import REPO_ROOT, Backend
from tests.support.role_run import RoleRun, role_vars, run_role

pytestmark = [pytest.mark.nginx, pytest.mark.full]

OUTPUT_DIR = REPO_ROOT / "tests" / "output" / "real-clients"
INCIDENT_HOST = "app.example.com"
MQTT_PATH = "/api/mqtt/ws/broker"
SHORT_READ_TIMEOUT = 3  # seconds: the control timeout the idle clients are measured against
BUDGET = 15
# changed on a first run: the upgrade map, the WebSocket location, and the reload
FIRST_RUN_CHANGES = 3


def assert_first_then_second_run(workdir: Path, variables: Dict[str, Any]) -> RoleRun:
    first = run_role(workdir / "first", variables)
    assert (first.rc, first.failed, first.changed) == (0, 0, FIRST_RUN_CHANGES), first.output[-4000:]
    second = run_role(workdir / "second", variables)
    assert (second.rc, second.failed, second.changed) == (0, 0, 0), second.output[-4000:]
    assert first.proof is not None and second.proof is not None
    assert (second.proof["status"], second.proof["accept_ok"], second.proof["attempts"]) == (101, True, 1)
    return second


# --------------------------------------------------------------------------- MQTT: mosquitto and paho-mqtt


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(require_command("mosquitto", "mosquitto"), tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_site(nginx_sandbox: NginxSandbox, asgi_backend: Backend, mosquitto: Mosquitto) -> Dict[str, Any]:
    """The incident's exact site (only `location /api/`, to the FastAPI app); the broker serves /api/mqtt/ws/."""
    nginx_sandbox.write_site("app", INCIDENT_SITE.format(listen=nginx_sandbox.listen, upstream=asgi_backend.upstream))
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    return role_vars(
        nginx_sandbox,
        nginx_sandbox.path("sites-enabled/app"),
        ws_proxy_location="^/api/mqtt/ws/",
        ws_proxy_before="/api/",
        ws_proxy_upstream=f"http://{mosquitto.upstream}",
        ws_proxy_read_timeout=f"{SHORT_READ_TIMEOUT}s",
        ws_proxy_verify_url=nginx_sandbox.ws_url(MQTT_PATH),
        ws_proxy_verify_host=INCIDENT_HOST,
        ws_proxy_verify_subprotocols=["mqtt"],
        ws_proxy_verify_send=CONNECT_HEX,
        ws_proxy_verify_send_format="hex",
        ws_proxy_verify_expect=CONNACK_ACCEPTED,
    )


def test_mosquitto_behind_the_incident_site_is_proved_and_paho_publishes_receives_and_idles(
    nginx_sandbox: NginxSandbox, mosquitto: Mosquitto, mqtt_site: Dict[str, Any], tmp_path: Path
) -> None:
    require_module("paho.mqtt", "paho-mqtt")
    from tests.support.mqtt_client import MqttOverWebSocket

    # the incident: the broker is never reached, FastAPI answers the WebSocket path with 404
    before = handshake(nginx_sandbox.ws_url(MQTT_PATH), host=INCIDENT_HOST, subprotocols=["mqtt"], timeout=5)
    assert before.status == 404, before

    second = assert_first_then_second_run(tmp_path, mqtt_site)
    assert second.proof is not None
    assert (second.proof["subprotocol"], second.proof["message_received"], second.proof["message_binary"]) == (
        "mqtt",
        "20020000",
        True,
    )

    def client(name: str, keepalive: int) -> MqttOverWebSocket:
        return MqttOverWebSocket(name, LOCALHOST, nginx_sandbox.port, MQTT_PATH, keepalive=keepalive)

    subscriber, publisher = client("subscriber", 1), client("publisher", 1)
    silent = client("silent", 60)  # no keep-alive traffic within the short proxy_read_timeout
    try:
        assert subscriber.connect() == (False, 0)  # CONNACK: accepted, clean session
        assert publisher.connect() == (False, 0)
        assert silent.connect() == (False, 0)
        assert subscriber.subscribe("agaii/test", qos=1) == [1]
        assert publisher.publish("agaii/test", b"hint: \xe2\x9c\x93 QoS 1", qos=1) is True  # PUBACK
        message = subscriber.next_message()
        assert (message.topic, message.payload, message.qos) == ("agaii/test", b"hint: \xe2\x9c\x93 QoS 1", 1)

        # idle past the control timeout: the keep-alive clients stay connected, the silent one is cut by nginx
        time.sleep(SHORT_READ_TIMEOUT * 2)
        assert silent.disconnected.is_set(), "nginx's short proxy_read_timeout did not close the silent client"
        assert not subscriber.disconnected.is_set(), subscriber.disconnect_reason
        assert not publisher.disconnected.is_set(), publisher.disconnect_reason
        assert publisher.publish("agaii/test", b"after the idle time", qos=1) is True
        assert subscriber.next_message().payload == b"after the idle time"
    finally:
        for each in (subscriber, publisher, silent):
            each.close()


def test_stopped_broker_fails_the_proof_within_the_budget_as_backend_down(
    nginx_sandbox: NginxSandbox, mosquitto: Mosquitto, mqtt_site: Dict[str, Any], tmp_path: Path
) -> None:
    first = run_role(tmp_path / "first", mqtt_site)
    assert (first.rc, first.changed) == (0, FIRST_RUN_CHANGES), first.output[-4000:]
    started = time.monotonic()
    healthy = run_role(tmp_path / "healthy", mqtt_site)
    healthy_seconds = time.monotonic() - started
    assert (healthy.rc, healthy.changed) == (0, 0), healthy.output[-4000:]

    mosquitto.stop()
    started = time.monotonic()
    broken = run_role(tmp_path / "broken", mqtt_site)
    broken_seconds = time.monotonic() - started

    assert (broken.rc, broken.failed, broken.changed) == (2, 1, 0), broken.output[-4000:]
    url = nginx_sandbox.ws_url(MQTT_PATH)
    assert (
        "BACKEND DOWN: the proof through nginx failed after 0.0" in broken.output
        and f"(1 attempt(s)): expected HTTP 101 from {url}, got HTTP/1.1 502 Bad Gateway. "
        f"Diagnosis - backend layer broken: backend down on {mosquitto.upstream}. "
        f"Evidence: TCP connect to {mosquitto.upstream} from the nginx host: connection refused. "
        in broken.output
    ), broken.output[-4000:]
    assert f"Fix: Start the application so that it listens on {mosquitto.upstream}" in broken.output
    print(f"healthy run {healthy_seconds:.1f} s, run with the broker stopped {broken_seconds:.1f} s")
    # the proof and its diagnosis add less than the budget to a healthy run (the old proof retried for ~74 s)
    assert broken_seconds - healthy_seconds < BUDGET, (broken_seconds, healthy_seconds)


# --------------------------------------------------------------------------- Socket.IO


SOCKETIO_SITE = """\
server {{
    listen {listen};
    server_name app.example.test;

    location / {{
        proxy_pass http://{upstream};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
}}
"""
SOCKETIO_ORIGIN = "http://app.example.test"


@pytest.fixture
def socketio_backend(tmp_path: Path) -> Iterator[Backend]:
    require_module("socketio", "python-socketio")
    port = free_port()
    argv = [sys.executable, "-m", "tests.support.backends.socketio_app", "--host", LOCALHOST, "--port", str(port)]
    process = ManagedProcess(argv, tmp_path / "socketio.log", cwd=REPO_ROOT).start()
    try:
        wait_for_port(LOCALHOST, port, 90, process=process)
        yield Backend("socketio", port, process)
    finally:
        process.stop()


@pytest.fixture
def socketio_site(nginx_sandbox: NginxSandbox, socketio_backend: Backend) -> Dict[str, Any]:
    site = SOCKETIO_SITE.format(listen=nginx_sandbox.listen, upstream=socketio_backend.upstream)
    nginx_sandbox.write_site("app", site)
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    return role_vars(
        nginx_sandbox,
        nginx_sandbox.path("sites-enabled/app"),
        ws_proxy_location=r"^/socket\.io/",
        ws_proxy_before="/",
        ws_proxy_verify_url=nginx_sandbox.ws_url("/socket.io/"),
        ws_proxy_verify_host="app.example.test",
        ws_proxy_verify_query="EIO=4&transport=websocket",
        ws_proxy_verify_headers={"Origin": SOCKETIO_ORIGIN},
        ws_proxy_verify_expect=r'^0\{"sid":',
    )


async def socketio_round_trip(url: str) -> Dict[str, Any]:
    """Connect with transports=['websocket'] only, echo one event, ask what the server saw; disconnect."""
    import aiohttp
    import socketio

    http = aiohttp.ClientSession()  # ours, so that it is closed even when the connection fails
    client = socketio.AsyncClient(reconnection=False, http_session=http)
    answers: asyncio.Queue[Any] = asyncio.Queue()
    client.on("echo", answers.put)
    client.on("whoami", answers.put)
    try:
        await client.connect(url, transports=["websocket"], headers={"Origin": SOCKETIO_ORIGIN}, wait_timeout=10)
        transport = client.transport()
        await client.emit("echo", {"hint": "✓ over socket.io"})
        echoed = await asyncio.wait_for(answers.get(), 10)
        await client.emit("whoami")
        seen = await asyncio.wait_for(answers.get(), 10)
    finally:
        await client.shutdown()
        await http.close()
    return {"transport": transport, "echoed": echoed, "seen": seen}


def test_socketio_application_is_proved_and_its_websocket_client_connects(
    nginx_sandbox: NginxSandbox, socketio_site: Dict[str, Any], tmp_path: Path
) -> None:
    url = nginx_sandbox.url("/")
    # before: no upgrade headers reach the application, so a websocket-only client cannot connect
    with pytest.raises(Exception, match=r"Connection error|One or more namespaces failed"):
        asyncio.run(socketio_round_trip(url))

    second = assert_first_then_second_run(tmp_path, socketio_site)
    assert second.proof is not None
    assert second.proof["url"] == nginx_sandbox.ws_url("/socket.io/?EIO=4&transport=websocket")
    assert second.proof["message_received"].startswith('0{"sid":') and second.proof["message_binary"] is False

    outcome = asyncio.run(socketio_round_trip(url))
    assert outcome["transport"] == "websocket"
    assert outcome["echoed"] == {"hint": "✓ over socket.io"}
    assert outcome["seen"]["origin"] == SOCKETIO_ORIGIN
    assert outcome["seen"]["x_forwarded_for"] == LOCALHOST
    assert "transport=websocket" in outcome["seen"]["transport"]


def test_a_refused_subprotocol_and_a_missing_first_message_are_named(
    nginx_sandbox: NginxSandbox, socketio_site: Dict[str, Any], tmp_path: Path
) -> None:
    first = run_role(tmp_path / "first", socketio_site)
    assert (first.rc, first.changed) == (0, FIRST_RUN_CHANGES), first.output[-4000:]
    url = nginx_sandbox.ws_url("/socket.io/?EIO=4&transport=websocket")

    refused = run_role(tmp_path / "subprotocol", {**socketio_site, "ws_proxy_verify_subprotocols": ["mqtt"]})
    assert (refused.rc, refused.failed, refused.changed) == (2, 1, 0), refused.output[-4000:]
    assert (
        "SUBPROTOCOL REFUSED: the proof through nginx failed after " in refused.output
        and "(1 attempt(s)): subprotocol refused: the server selected none of the subprotocols offered (mqtt): "
        f"101 without Sec-WebSocket-Protocol ({url}). Fix: set ws_proxy_verify_subprotocols"
        in refused.output
    ), refused.output[-4000:]

    silent = run_role(tmp_path / "message", {**socketio_site, "ws_proxy_verify_expect": "^MQTT"})
    assert (silent.rc, silent.failed, silent.changed) == (2, 1, 0), silent.output[-4000:]
    assert (
        "NO FIRST MESSAGE: the proof through nginx failed after " in silent.output
        and "(1 attempt(s)): no expected first message: the first message does not match '^MQTT': "
        """text message '0{"sid":"""
        in silent.output
    ), silent.output[-4000:]


# --------------------------------------------------------------------------- a browser: headless Chromium


BROWSER_PATH = "/api/mqtt/ws/hints/browser-session"
BROWSER_MESSAGE = "hint: ✓ from chromium"


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    binary = require_command("chromium", "chromium")
    require_module("websockets", "websockets")
    from tests.support.browser import Chromium

    browser = Chromium(binary, tmp_path).start()
    yield browser
    browser.stop()


def test_chromium_gets_101_from_a_page_served_by_nginx_after_the_role(
    nginx_sandbox: NginxSandbox, asgi_backend: Backend, chromium: Any, tmp_path: Path
) -> None:
    from tests.support.browser import check_websocket_page, websocket_page

    html = nginx_sandbox.path("html")
    nginx_sandbox.write("html/index.html", websocket_page(BROWSER_PATH, BROWSER_MESSAGE))
    site = INCIDENT_SITE.format(listen=nginx_sandbox.listen, upstream=asgi_backend.upstream)
    nginx_sandbox.write_site("app", site.replace("root /var/www/html;", f"root {html};"))
    nginx_sandbox.start(ports=[nginx_sandbox.port])

    before = check_websocket_page(chromium, nginx_sandbox.url("/"), OUTPUT_DIR / "browser-before-role.png")
    (socket,) = before.sockets
    assert socket.status is None and socket.frames_received == [], before  # no 101 in the browser's events
    assert before.page_outcome == {"opened": False, "received": None, "closed": 1006, "error": True}

    variables = role_vars(
        nginx_sandbox,
        nginx_sandbox.path("sites-enabled/app"),
        ws_proxy_verify_url=nginx_sandbox.ws_url(BROWSER_PATH),
        ws_proxy_verify_echo=True,
    )
    second = assert_first_then_second_run(tmp_path, variables)
    assert second.proof is not None and second.proof["echo_received"] == "agaii.nginx ws_proxy probe"

    after = check_websocket_page(chromium, nginx_sandbox.url("/"), OUTPUT_DIR / "browser-websocket-101.png")
    (socket,) = after.sockets
    assert socket.url == nginx_sandbox.ws_url(BROWSER_PATH)
    assert (socket.status, socket.status_text) == (101, "Switching Protocols")
    assert socket.response_headers["Upgrade"].lower() == "websocket"
    assert socket.frames_sent == [BROWSER_MESSAGE] and socket.frames_received == [BROWSER_MESSAGE]
    assert after.page_outcome == {"opened": True, "received": BROWSER_MESSAGE, "closed": None, "error": False}
    assert after.screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
