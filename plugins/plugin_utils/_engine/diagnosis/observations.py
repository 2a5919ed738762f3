# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the diagnosis observes on the host: the handshakes (probes), the nginx process named by the pid
file, and the error log lines that matter. PRIVATE.

Pure: it interprets what the ``route_info`` action plugin read or ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

LOG_LINES_KEPT = 5
LOG_LINE_MAX = 400


@dataclass
class Probe:
    """What one WebSocket handshake saw (from agaii.nginx.ws_probe's result)."""

    url: str
    status: int
    status_line: str = ""
    error: Optional[str] = None
    body: str = ""
    headers: List[List[str]] = field(default_factory=list)

    @property
    def connect_failed(self) -> bool:
        return self.status == 0 and (self.error or "").startswith("connecting to ")

    @property
    def upgraded(self) -> bool:
        return self.status == 101

    def header(self, name: str) -> Optional[str]:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def outcome(self) -> str:
        return self.status_line or self.error or "no HTTP response"

    def connect_error(self) -> str:
        return (self.error or "").split(": ", 1)[-1]


def probe_from(url: str, result: Dict[str, Any]) -> Probe:
    status = int(result.get("status") or 0)
    error = None
    if status == 0:
        error = str(result.get("error") or result.get("msg") or "no HTTP response")
    return Probe(
        url=url,
        status=status,
        status_line=str(result.get("status_line") or ""),
        error=error,
        body=str(result.get("body") or ""),
        headers=[list(pair) for pair in result.get("headers") or []],
    )


_RELEVANT_LOG = re.compile(
    r"connect\(\) (?:to \S+ )?failed|upstream timed out|no live upstreams|upstream prematurely closed"
    r"|upstream sent (?:invalid|no valid|too big)|recv\(\) failed|send\(\) failed|host not found in upstream"
    r"|could not be resolved|worker_connections are not enough|SSL_do_handshake\(\) failed|\[emerg\]"
)


def relevant_log_lines(text: str, needles: Sequence[str] = (), limit: int = LOG_LINES_KEPT) -> List[str]:
    """The last ``limit`` error-log lines about upstream failures; those naming a needle (a backend
    address, the WebSocket path) are preferred when there are any."""
    lines = [line.strip() for line in text.splitlines() if _RELEVANT_LOG.search(line)]
    preferred = [line for line in lines if any(needle in line for needle in needles if needle)]
    kept = (preferred or lines)[-limit:]
    return [line if len(line) <= LOG_LINE_MAX else line[: LOG_LINE_MAX - 3] + "..." for line in kept]


@dataclass
class Process:
    """The nginx master named by the pid file, as seen on the host."""

    pid_file: str
    pid: Optional[int] = None
    name: Optional[str] = None
    problem: Optional[str] = None

    @property
    def running(self) -> bool:
        return self.pid is not None and self.name == "nginx"

    def describe(self) -> str:
        if self.running:
            return f"nginx runs (pid {self.pid} from {self.pid_file})"
        return f"nginx is not running ({self.problem or 'pid file ' + self.pid_file})"


def process_from(pid_file: str, pid_text: Optional[str], comm: Optional[str]) -> Process:
    """Interpret the pid file's text and /proc/<pid>/comm (None: unreadable)."""
    if pid_text is None:
        return Process(pid_file, problem=f"no pid file {pid_file}")
    if not pid_text.strip():  # `nginx -t` and `nginx -T` create an empty pid file when there is none
        return Process(pid_file, problem=f"pid file {pid_file} is empty")
    if not pid_text.strip().isdigit():
        return Process(pid_file, problem=f"pid file {pid_file} holds {pid_text.strip()[:40]!r}, not a pid")
    pid = int(pid_text.strip())
    if comm is None:
        return Process(pid_file, pid, problem=f"pid {pid} from {pid_file} is not running")
    name = comm.strip()
    problem = None if name == "nginx" else f"pid {pid} from {pid_file} is {name!r}, not nginx"
    return Process(pid_file, pid, name, problem)
