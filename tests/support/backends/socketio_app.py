"""A python-socketio application (ASGI) served by uvicorn, as a Socket.IO user deploys one.

Socket.IO lives at ``/socket.io/`` (engine.io 4: ``?EIO=4&transport=websocket``). Events:
    echo  -> answers ``echo`` with the same data to the sender
    whoami -> answers ``whoami`` with the Origin and the forwarded-for header the handshake carried

Everything else (``/``) answers ``404``. Run:
``python -m tests.support.backends.socketio_app --port 8000`` (from the repository root).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Dict, Optional

import socketio

from tests.support.backends import serve

# Origins are checked the way a deployed application checks them; the tests send an Origin that is allowed.
ALLOWED_ORIGIN = "http://app.example.test"
server = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[ALLOWED_ORIGIN])
app = socketio.ASGIApp(server)
_handshakes: Dict[str, Dict[str, Any]] = {}


@server.event
async def connect(sid: str, environ: Dict[str, Any]) -> None:
    _handshakes[sid] = {
        "origin": environ.get("HTTP_ORIGIN"),
        "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
        "transport": environ.get("QUERY_STRING", ""),
    }


@server.event
async def disconnect(sid: str, *reason: Any) -> None:
    _handshakes.pop(sid, None)


@server.event
async def echo(sid: str, data: Any) -> None:
    await server.emit("echo", data, to=sid)


@server.event
async def whoami(sid: str) -> None:
    await server.emit("whoami", _handshakes.get(sid, {}), to=sid)


def main(argv: Optional[Sequence[str]] = None) -> None:
    serve(app, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
