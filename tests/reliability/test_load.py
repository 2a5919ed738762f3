"""Load on the result: WebSocket connections through the nginx the ws_proxy role configured, and a reload
by the role's handler while they are open.

1. The incident's site (``location /api/`` to uvicorn) in a running nginx sandbox; the role adds the map
   and the WebSocket location, reloads nginx through its handler and proves a 101 and an echo.
2. ``tests.support.load_client`` (its own process, bounded) opens ``AGAII_LOAD_CONNECTIONS`` (1,000)
   WebSocket connections and keeps each one echoing a message every second for ``AGAII_SOAK_SECONDS``
   (60, the CI default).
3. With every connection still open, the role runs again with a changed timeout: its handler validates and
   reloads nginx. Meanwhile the client opens a new connection every 0.1 s (handshake, echo, close).
4. After the new workers serve, a few more seconds of probes, then the client stops and reports.

Nothing may be refused: every connection opens, every echo comes back (before and after the reload, on
the connections the old worker keeps), every new connection during and after the reload works.
The sandbox's nginx gets ``worker_connections 4096`` and ``worker_rlimit_nofile 16384`` for this.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from tests.reliability.conftest import Figures
from tests.reliability.harness import Playbooks
from tests.reliability.workspace import incident_site
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.processes import wait_until
from tests.support.pytest_fixtures import REPO_ROOT, Backend

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

SOAK_SECONDS = float(os.environ.get("AGAII_SOAK_SECONDS", "60"))
CONNECTIONS = int(os.environ.get("AGAII_LOAD_CONNECTIONS", "1000"))
PROBES_AFTER_RELOAD_SECONDS = 3.0
WS_PATH = "/api/mqtt/ws/hints/load"


def raise_limits(sandbox: NginxSandbox) -> None:
    text = sandbox.conf.read_text()
    text = text.replace("worker_processes 1;", "worker_processes 1;\nworker_rlimit_nofile 16384;")
    text = text.replace("worker_connections 256;", "worker_connections 4096;")
    sandbox.conf.write_text(text)


def role_play(sandbox: NginxSandbox, read_timeout: str) -> list[Dict[str, Any]]:
    role_vars = {
        "ws_proxy_site": str(sandbox.path("sites-enabled/app")),
        "ws_proxy_nginx_conf": str(sandbox.conf),
        "ws_proxy_reload_method": "signal",
        "ws_proxy_read_timeout": read_timeout,
        "ws_proxy_verify_url": sandbox.ws_url("/api/mqtt/ws/hints/role-probe"),
        "ws_proxy_verify_echo": True,  # the FastAPI route echoes: prove it
    }
    return [{"ansible.builtin.include_role": {"name": "agaii.nginx.ws_proxy"}, "vars": role_vars}]


class LoadProcess:
    """The load client in its own process; its JSON report lines arrive on a queue."""

    def __init__(self, url: str, log: Path) -> None:
        argv = [sys.executable, "-m", "tests.support.load_client", "--url", url, "--connections", str(CONNECTIONS)]
        argv += ["--soak-seconds", str(SOAK_SECONDS)]
        self.stderr = log.open("wb")
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.popen = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.lines: queue.Queue[Dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(json.loads(line))

    def event(self, name: str, timeout: float) -> Dict[str, Any]:
        report = self.lines.get(timeout=timeout)
        assert report["event"] == name, report
        return report

    def stop(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write("stop\n")
        self.popen.stdin.flush()

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)
        self.stderr.close()


@pytest.fixture
def served(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> Iterator[NginxSandbox]:
    raise_limits(nginx_sandbox)
    nginx_sandbox.write_site("app", incident_site(nginx_sandbox, asgi_backend.upstream))
    nginx_sandbox.start(ports=[nginx_sandbox.port])
    yield nginx_sandbox


def test_thousand_websockets_and_a_reload_by_the_role(served: NginxSandbox, tmp_path: Path, figures: Figures) -> None:
    playbooks = Playbooks(tmp_path)
    first = playbooks.run(role_play(served, "3600s"), {}, ["ws_proxy_result"])
    assert first.returncode == 0 and first.results["ws_proxy_result"]["location"]["changed"], first.output[-3000:]

    client = LoadProcess(served.ws_url(WS_PATH), tmp_path / "load-client.log")
    try:
        opened = client.event("opened", timeout=120)
        soaked = client.event("soaked", timeout=SOAK_SECONDS + 60)
        workers = served.worker_pids()
        reload_run = playbooks.run(role_play(served, "3601s"), {}, ["ws_proxy_result"])
        wait_until(lambda: served.worker_pids().isdisjoint(workers), 30, what="the new nginx workers")
        time.sleep(PROBES_AFTER_RELOAD_SECONDS)
        client.stop()
        done = client.event("done", timeout=60)
    finally:
        client.close()

    assert reload_run.returncode == 0 and reload_run.results["ws_proxy_result"]["location"]["changed"], (
        reload_run.output[-3000:]
    )
    assert "Reload nginx with a signal" in reload_run.output
    soak, after = done["soak"], done["after"]
    assert (soak["opened"], soak["open_errors"], soak["echo_errors"]) == (CONNECTIONS, 0, 0), soak
    # every connection kept echoing all along (the pace itself depends on the CPU the machine has to spare)
    assert soak["connections_echoing"] == CONNECTIONS and soak["min_echoes_per_connection"] >= SOAK_SECONDS / 10
    assert (after["echo_errors"], after["probe_errors"], after["open_errors"]) == (0, 0, 0), after
    assert after["connections_echoing"] == CONNECTIONS and after["probes_ok"] > 0
    assert done["held"] == CONNECTIONS
    record(figures, opened, soaked, done, reload_run.elapsed)


def record(
    figures: Figures, opened: Dict[str, Any], soaked: Dict[str, Any], done: Dict[str, Any], reload: float
) -> None:
    section = "load: WebSockets through the role's nginx"
    soak, after = done["soak"], done["after"]
    figures.record(section, "soak seconds", SOAK_SECONDS)
    figures.record(section, "connections opened / held at the end", f"{soak['opened']} / {done['held']}")
    figures.record(section, "seconds to open them", opened["open_seconds"])
    figures.record(section, "echoes during the soak", soak["echoes"])
    figures.record(section, "fewest echoes of one connection during the soak", soak["min_echoes_per_connection"])
    figures.record(section, "longest gap between two echoes of a connection (s)", soak["longest_gap_between_echoes_s"])
    figures.record(section, "errors during the soak (open, echo)", f"{soak['open_errors']}, {soak['echo_errors']}")
    figures.record(section, "echo latency during the soak p50 / p99 / max (ms)", _latency(soak))
    figures.record(section, "held connections still open when the soak ended", soaked["held"])
    figures.record(section, "role run that reloaded nginx (s)", round(reload, 1))
    figures.record(section, "echoes on held connections during and after the reload", after["echoes"])
    figures.record(section, "held connections echoing during and after the reload", after["connections_echoing"])
    figures.record(section, "echo latency during and after the reload p50 / p99 / max (ms)", _latency(after))
    figures.record(
        section,
        "new connections during and after the reload (ok / failed)",
        f"{after['probes_ok']} / {after['probe_errors']}",
    )
    figures.record(
        section,
        "errors during and after the reload (open, echo, probe)",
        f"{after['open_errors']}, {after['echo_errors']}, {after['probe_errors']}",
    )


def _latency(phase: Dict[str, Any]) -> str:
    return f"{phase['latency_p50_ms']} / {phase['latency_p99_ms']} / {phase['latency_max_ms']}"
