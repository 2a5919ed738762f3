"""A bounded asyncio WebSocket load client for loopback tests.

It opens ``connections`` WebSocket connections (at most ``connect_concurrency`` handshakes at a time),
keeps every one echoing a short text message every ``interval`` seconds, and measures each echo's
round trip. After ``soak_seconds`` it reports, keeps the connections open and echoing, and starts
*probes*: a new connection every ``probe_interval`` seconds (handshake, one echo, close), which is
how a reload is watched from the outside. It stops when told to (a ``stop`` line on stdin, or
:meth:`LoadClient.stop`) and then reports again and closes every connection cleanly.

Every figure is split by phase (``soak`` before the first report, ``after`` from then on):
connections opened, open errors, echoes, echo errors, latency p50/p99, probes ok/failed.

Run as a process (one JSON object per line on stdout: ``opened``, ``soaked``, ``done``)::

    python -m tests.support.load_client --url ws://127.0.0.1:8080/api/mqtt/ws/hints/load \
        --connections 1000 --soak-seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import resource
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from websockets.asyncio.client import ClientConnection, connect

SOAK = "soak"
AFTER = "after"
PHASES = (SOAK, AFTER)


@dataclass(frozen=True)
class LoadConfig:
    url: str
    connections: int = 1000
    connect_concurrency: int = 50
    interval: float = 1.0
    soak_seconds: float = 60.0
    timeout: float = 10.0
    probe_interval: float = 0.1
    seed: int = 8


@dataclass
class PhaseFigures:
    """The counters of one phase; latencies in seconds."""

    opened: int = 0
    open_errors: Counter[str] = field(default_factory=Counter)
    echoes: int = 0
    echo_errors: Counter[str] = field(default_factory=Counter)
    latencies: array[float] = field(default_factory=lambda: array("d"))
    probes_ok: int = 0
    probe_errors: Counter[str] = field(default_factory=Counter)
    per_connection: Counter[int] = field(default_factory=Counter)
    longest_gap: float = 0.0

    def summary(self) -> Dict[str, Any]:
        return {
            "connections_echoing": len(self.per_connection),
            "min_echoes_per_connection": min(self.per_connection.values()) if self.per_connection else 0,
            "longest_gap_between_echoes_s": round(self.longest_gap, 2),
            "opened": self.opened,
            "open_errors": sum(self.open_errors.values()),
            "open_error_kinds": dict(self.open_errors),
            "echoes": self.echoes,
            "echo_errors": sum(self.echo_errors.values()),
            "echo_error_kinds": dict(self.echo_errors),
            "latency_p50_ms": percentile_ms(self.latencies, 50),
            "latency_p99_ms": percentile_ms(self.latencies, 99),
            "latency_max_ms": round(max(self.latencies) * 1000, 2) if self.latencies else None,
            "probes_ok": self.probes_ok,
            "probe_errors": sum(self.probe_errors.values()),
            "probe_error_kinds": dict(self.probe_errors),
        }


def percentile_ms(values: Sequence[float], percent: float) -> Optional[float]:
    """The nearest-rank percentile of ``values`` (seconds), in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(percent / 100 * len(ordered) + 0.5)))
    return round(ordered[rank - 1] * 1000, 2)


def error_kind(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:80] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class LoadClient:
    """Holds the connections; ``phase`` says which figures new events count towards."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.figures = {phase: PhaseFigures() for phase in PHASES}
        self.phase = SOAK
        self.open: Dict[int, ClientConnection] = {}
        self.stopping = asyncio.Event()
        self.random = random.Random(config.seed)

    @property
    def current(self) -> PhaseFigures:
        return self.figures[self.phase]

    def stop(self) -> None:
        self.stopping.set()

    # ------------------------------------------------------------------ connections

    async def open_all(self) -> None:
        gate = asyncio.Semaphore(self.config.connect_concurrency)
        await asyncio.gather(*(self._open_one(index, gate) for index in range(self.config.connections)))

    async def _open_one(self, index: int, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                self.open[index] = await connect(
                    self.config.url, open_timeout=self.config.timeout, ping_interval=None, close_timeout=2
                )
                self.current.opened += 1
            except Exception as exc:  # every failure is a figure, never a crash
                self.current.open_errors[error_kind(exc)] += 1

    async def echo_forever(self) -> None:
        await asyncio.gather(*(self._echo_loop(index, conn) for index, conn in list(self.open.items())))

    async def _echo_loop(self, index: int, conn: ClientConnection) -> None:
        await self.pause(self.random.uniform(0, self.config.interval))
        sequence, last = 0, time.monotonic()
        while not self.stopping.is_set():
            sequence += 1
            if not await self._echo(index, conn, f"load {index}:{sequence}"):
                return
            now = time.monotonic()
            self.current.longest_gap = max(self.current.longest_gap, now - last)
            last = now
            await self.pause(self.config.interval)

    async def _echo(self, index: int, conn: ClientConnection, text: str) -> bool:
        figures, started = self.current, time.monotonic()
        try:
            await conn.send(text)
            reply = await asyncio.wait_for(conn.recv(), self.config.timeout)
        except Exception as exc:
            figures.echo_errors[error_kind(exc)] += 1
            return False
        if reply != text:
            figures.echo_errors["different text came back"] += 1
            return True
        figures.echoes += 1
        figures.per_connection[index] += 1
        figures.latencies.append(time.monotonic() - started)
        return True

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    # ------------------------------------------------------------------ probes

    async def probe_forever(self) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            await self._probe(number)
            await self.pause(self.config.probe_interval)

    async def _probe(self, number: int) -> None:
        figures = self.current
        try:
            async with connect(self.config.url, open_timeout=self.config.timeout, close_timeout=2) as conn:
                text = f"probe {number}"
                await conn.send(text)
                reply = await asyncio.wait_for(conn.recv(), self.config.timeout)
        except Exception as exc:
            figures.probe_errors[error_kind(exc)] += 1
            return
        if reply == text:
            figures.probes_ok += 1
        else:
            figures.probe_errors["different text came back"] += 1

    async def close_all(self) -> None:
        await asyncio.gather(*(conn.close() for conn in self.open.values()), return_exceptions=True)

    def report(self, event: str) -> Dict[str, Any]:
        return {
            "event": event,
            "held": sum(1 for conn in self.open.values() if conn.state.name == "OPEN"),
            **{phase: self.figures[phase].summary() for phase in PHASES},
        }


# --------------------------------------------------------------------------- process entry point


def raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else wanted
    if soft < min(wanted, target):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, target), hard))


def emit(payload: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, sort_keys=True) + "\n")
    sys.stdout.flush()


async def wait_for_stop_line(client: LoadClient) -> None:
    """Stop the client when stdin says ``stop`` (or closes)."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "stop":
            client.stop()
            return


async def run(config: LoadConfig) -> None:
    client = LoadClient(config)
    started = time.monotonic()
    await client.open_all()
    emit({**client.report("opened"), "open_seconds": round(time.monotonic() - started, 2)})
    echoing = asyncio.ensure_future(client.echo_forever())
    stopper = asyncio.ensure_future(wait_for_stop_line(client))
    await client.pause(config.soak_seconds)
    emit(client.report("soaked"))
    client.phase = AFTER
    await client.probe_forever()
    await echoing
    emit(client.report("done"))
    await client.close_all()
    stopper.cancel()


def parse_args(argv: Optional[Sequence[str]] = None) -> LoadConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--probe-interval", type=float, default=0.1)
    args = parser.parse_args(argv)
    return LoadConfig(
        url=args.url,
        connections=args.connections,
        connect_concurrency=args.connect_concurrency,
        interval=args.interval,
        soak_seconds=args.soak_seconds,
        timeout=args.timeout,
        probe_interval=args.probe_interval,
    )


def main(argv: Optional[List[str]] = None) -> None:
    config = parse_args(argv)
    raise_file_limit(config.connections * 2 + 256)
    asyncio.run(run(config))


if __name__ == "__main__":
    main()
