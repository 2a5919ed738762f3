"""An RFC-strict WebSocket backend built on the ``websockets`` library (asyncio server API).

- Any path starting with ``/api/mqtt/ws/``: WebSocket endpoint echoing every message verbatim.
  websockets itself answers an upgrade request that is not HTTP/1.1 (such as nginx's default
  ``proxy_http_version 1.0``) with ``505 HTTP Version Not Supported``; nothing here changes that.
- ``GET /api/health``: ``200`` with ``{"status": "ok"}`` (``process_request`` hook, any HTTP version).
- Anything else: ``404``.

Run: ``python -m tests.support.backends.strict_server --port 8001`` (from the repository root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Sequence
from http import HTTPStatus
from typing import Optional

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

WS_PREFIX = "/api/mqtt/ws/"
HEALTH_PATH = "/api/health"


def _path_only(request: Request) -> str:
    return request.path.split("?", 1)[0]


def process_request(connection: ServerConnection, request: Request) -> Optional[Response]:
    """Answer plain HTTP routes; return None to let websockets run the (strict) handshake."""
    path = _path_only(request)
    if path == HEALTH_PATH:
        response = connection.respond(HTTPStatus.OK, '{"status": "ok"}')
        del response.headers["Content-Type"]  # Headers is multi-valued: replace, don't add
        response.headers["Content-Type"] = "application/json"
        return response
    if path.startswith(WS_PREFIX):
        return None
    return connection.respond(HTTPStatus.NOT_FOUND, f"no route for {path}\n")


async def echo(connection: ServerConnection) -> None:
    """Send every received message back unchanged (text stays text, binary stays binary)."""
    with contextlib.suppress(ConnectionClosed):  # a client that vanishes is not a server error
        async for message in connection:
            await connection.send(message)


async def serve_until_signalled(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(echo, host, port, process_request=process_request):
        print(f"strict websockets server listening on {host}:{port}", flush=True)
        await stop


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve_until_signalled(args.host, args.port))


if __name__ == "__main__":
    main()
