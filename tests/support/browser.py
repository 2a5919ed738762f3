"""Headless Debian Chromium, driven over the DevTools protocol (CDP), to check a WebSocket the way an operator
does in DevTools: load a page, let its JavaScript open the WebSocket, and read the browser's own network events.

The browser is started by PID with a new, empty profile, listens for DevTools on 127.0.0.1 only (a port it
picks, read from ``DevToolsActivePort``) and is stopped by PID. CDP messages go over one WebSocket to the page
target (the ``websockets`` package's synchronous client).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from websockets.sync.client import ClientConnection, connect

from tests.support.processes import LOCALHOST, ManagedProcess, wait_until

START_TIMEOUT = 60.0
# Flags that work in containers without a display, GPU or sandbox; no network beyond what the page asks for.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-proxy-server",
    "--window-size=1000,700",
    "--remote-debugging-address=" + LOCALHOST,
    "--remote-debugging-port=0",
)

# A page whose JavaScript opens a WebSocket to the same host (the page's own origin), sends one text message
# and shows what happened; the test reads the outcome from the browser's network events and from the page.
WEBSOCKET_PAGE = """\
<!doctype html>
<html>
<head><meta charset="utf-8"><title>WebSocket check</title>
<style>body {{ font: 16px sans-serif; margin: 2em; }} #state {{ font-size: 28px; }}</style></head>
<body>
<h1>WebSocket through nginx</h1>
<p>URL: <code id="url"></code></p>
<p id="state">connecting...</p>
<pre id="log"></pre>
<script>
const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + {path};
document.getElementById("url").textContent = url;
const state = document.getElementById("state"), log = document.getElementById("log");
window.wsOutcome = {{opened: false, received: null, closed: null, error: false}};
const ws = new WebSocket(url);
ws.onopen = () => {{ window.wsOutcome.opened = true; state.textContent = "open"; ws.send({message}); }};
ws.onmessage = (event) => {{
  window.wsOutcome.received = event.data;
  state.textContent = "open, echo received";
  log.textContent += "received: " + event.data + "\\n";
}};
ws.onerror = () => {{ window.wsOutcome.error = true; state.textContent = "error"; }};
ws.onclose = (event) => {{ window.wsOutcome.closed = event.code; log.textContent += "closed: " + event.code + "\\n"; }};
</script>
</body>
</html>
"""


def websocket_page(path: str, message: str) -> str:
    """The page's HTML: it opens ``ws://<the page's host><path>`` and sends ``message``."""
    return WEBSOCKET_PAGE.format(path=json.dumps(path), message=json.dumps(message))


@dataclass
class WebSocketSeen:
    """What the browser's Network domain reported for one WebSocket."""

    url: str
    request_id: str
    status: Optional[int] = None
    status_text: str = ""
    response_headers: Dict[str, str] = field(default_factory=dict)
    request_headers: Dict[str, str] = field(default_factory=dict)
    frames_sent: List[str] = field(default_factory=list)
    frames_received: List[str] = field(default_factory=list)
    error: Optional[str] = None


class DevTools:
    """One CDP connection to a page target: commands by id, events kept in order."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.events: List[Dict[str, Any]] = []
        self._next_id = 0

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> Dict[str, Any]:
        self._next_id += 1
        command_id = self._next_id
        self.connection.send(json.dumps({"id": command_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.connection.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"CDP {method} failed: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self.events.append(message)

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                message = json.loads(self.connection.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)

    def websockets(self) -> List[WebSocketSeen]:
        """The WebSockets the page opened, from Network.webSocket* events."""
        seen: Dict[str, WebSocketSeen] = {}
        for event in self.events:
            params = event.get("params", {})
            method = event["method"]
            if method == "Network.webSocketCreated":
                seen[params["requestId"]] = WebSocketSeen(params["url"], params["requestId"])
                continue
            socket = seen.get(params.get("requestId", ""))
            if socket is None:
                continue
            if method == "Network.webSocketWillSendHandshakeRequest":
                socket.request_headers = dict(params["request"].get("headers", {}))
            elif method == "Network.webSocketHandshakeResponseReceived":
                response = params["response"]
                socket.status, socket.status_text = int(response["status"]), response.get("statusText", "")
                socket.response_headers = dict(response.get("headers", {}))
            elif method == "Network.webSocketFrameSent":
                socket.frames_sent.append(params["response"]["payloadData"])
            elif method == "Network.webSocketFrameReceived":
                socket.frames_received.append(params["response"]["payloadData"])
            elif method == "Network.webSocketFrameError":
                socket.error = params.get("errorMessage")
        return list(seen.values())


class Chromium:
    """Debian's chromium, headless, with a fresh profile under ``workdir``; stopped by PID."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.profile = workdir / "chromium-profile"
        self.profile.mkdir(parents=True)
        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        self.process = ManagedProcess(argv, workdir / "chromium.log")
        self.port = 0

    def start(self) -> Chromium:
        self.process.start()
        active = self.profile / "DevToolsActivePort"
        try:
            wait_until(lambda: self._ready(active), START_TIMEOUT, 0.1, "chromium's DevToolsActivePort")
        except BaseException:
            self.process.stop()
            raise
        self.port = int(active.read_text().split()[0])
        return self

    def _ready(self, active: Path) -> bool:
        self.process.raise_if_exited()
        return active.exists() and bool(active.read_text().split())

    def stop(self) -> None:
        self.process.stop()

    def page_url(self) -> str:
        """The CDP WebSocket URL of the first page target (the about:blank chromium opened)."""
        with urllib.request.urlopen(f"http://{LOCALHOST}:{self.port}/json/list", timeout=10) as response:
            targets = json.loads(response.read())
        return str(next(target for target in targets if target.get("type") == "page")["webSocketDebuggerUrl"])


@dataclass
class BrowserCheck:
    """The outcome of loading a page that opens a WebSocket."""

    sockets: List[WebSocketSeen]
    page_outcome: Dict[str, Any]
    screenshot: Path


def check_websocket_page(chromium: Chromium, page_url: str, screenshot: Path, timeout: float = 20.0) -> BrowserCheck:
    """Load ``page_url``, wait until its WebSocket got a message, failed or closed (at most ``timeout`` seconds),
    keep a PNG screenshot at ``screenshot`` and return the browser's own account of the WebSocket."""
    with connect(chromium.page_url(), max_size=None, open_timeout=10) as connection:
        devtools = DevTools(connection)
        devtools.call("Network.enable")
        devtools.call("Page.enable")
        devtools.call("Page.navigate", url=page_url)
        outcome: Dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            devtools.pump(0.2)
            outcome = _page_outcome(devtools)
            if outcome.get("received") is not None or outcome.get("closed") is not None:
                break
        devtools.pump(0.3)
        shot = devtools.call("Page.captureScreenshot", format="png")
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        return BrowserCheck(devtools.websockets(), outcome, screenshot)


def _page_outcome(devtools: DevTools) -> Dict[str, Any]:
    expression = "JSON.stringify(window.wsOutcome || null)"
    result = devtools.call("Runtime.evaluate", expression=expression, returnByValue=True)
    value = result.get("result", {}).get("value")
    return dict(json.loads(value) or {}) if isinstance(value, str) else {}
