"""The incident's stack: a FastAPI app served by uvicorn.

Routes:
    GET  /api/health                     -> {"status": "ok"}
    GET  /api/echo-headers               -> the request headers as a JSON object
    WS   /api/mqtt/ws/hints/{session}    -> echoes every text frame verbatim
    WS   /api/mqtt/ws/headers/{session}  -> first sends the handshake request headers (JSON object),
                                            then echoes text frames verbatim

Header objects map lower-case names to values; repeated headers are joined with ", ".

Run: ``python -m tests.support.backends.asgi_app --port 8000`` (from the repository root).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Optional

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from starlette.datastructures import Headers

from tests.support.backends import serve

app = FastAPI(title="agaii.nginx test backend")


def headers_as_dict(headers: Headers) -> dict[str, str]:
    """Lower-case header names to values; repeated headers joined with ", "."""
    merged: dict[str, str] = {}
    for name, value in headers.items():
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    return merged


@app.get("/api/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/echo-headers")
async def echo_headers(request: Request) -> dict[str, str]:
    return headers_as_dict(request.headers)


async def _echo_text(websocket: WebSocket) -> None:
    try:
        while True:
            await websocket.send_text(await websocket.receive_text())
    except WebSocketDisconnect:
        return


@app.websocket("/api/mqtt/ws/hints/{session}")
async def hints(websocket: WebSocket, session: str) -> None:
    await websocket.accept()
    await _echo_text(websocket)


@app.websocket("/api/mqtt/ws/headers/{session}")
async def handshake_headers(websocket: WebSocket, session: str) -> None:
    await websocket.accept()
    await websocket.send_text(json.dumps(headers_as_dict(websocket.headers), sort_keys=True))
    await _echo_text(websocket)


def main(argv: Optional[Sequence[str]] = None) -> None:
    serve(app, __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
