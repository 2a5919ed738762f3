"""Backends the tests start on 127.0.0.1, each a module run as ``python -m tests.support.backends.<name>``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, Optional


def serve(app: Any, description: str, argv: Optional[Sequence[str]] = None) -> None:
    """Run an ASGI ``app`` under uvicorn on ``--host``/``--port`` (the command line of every backend)."""
    import uvicorn

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=False)
