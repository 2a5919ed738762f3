"""Start, watch and stop helper processes for the integration tests.

Every process is owned by PID: it is started with :class:`subprocess.Popen`, its output goes to a
log file (for diagnosis when a test fails), and it is stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Callable, List, Optional

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, host: str = LOCALHOST, exclude: Sequence[int] = ()) -> List[int]:
    """``count`` distinct TCP ports free on ``host`` right now, none of them in ``exclude``.

    The sockets stay bound until all are chosen: one by one, the kernel may hand out a port it just gave.
    """
    sockets: List[socket.socket] = []
    ports: List[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
            if port not in exclude:
                ports.append(port)
    finally:
        for sock in sockets:
            sock.close()
    return ports


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02, what: str = "condition") -> None:
    """Poll ``condition`` until it is true; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def wait_for_port(host: str, port: int, timeout: float = 10.0, process: Optional[ManagedProcess] = None) -> None:
    """Wait until ``host:port`` accepts connections.

    With ``process``, fail fast (RuntimeError with the log tail) if that process exits first.
    """

    def ready() -> bool:
        if process is not None:
            process.raise_if_exited()
        return port_is_open(host, port)

    wait_until(ready, timeout, what=f"{host}:{port} to accept connections")


def pid_is_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_pid(pid: int, timeout: float = 5.0) -> None:
    """Stop a process that is not our child: SIGTERM, wait, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not pid_is_alive(pid), timeout, what=f"pid {pid} to exit")
            return


class ManagedProcess:
    """A subprocess we own by PID, with stdout and stderr captured in ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        cwd: Optional[Path] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.popen: Optional[subprocess.Popen[bytes]] = None
        self._log: Optional[IO[bytes]] = None

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError("process not started")
        return self.popen.pid

    def start(self) -> ManagedProcess:
        if self.popen is not None:
            raise RuntimeError(f"already started (pid {self.popen.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.cwd,
            env=self.env,
        )
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def raise_if_exited(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(
                f"{self.argv[0]} (pid {self.popen.pid}) exited with {self.popen.returncode}; "
                f"log {self.log_path}:\n{self.log_tail()}"
            )

    def log_tail(self, max_bytes: int = 4000) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-max_bytes:].decode("utf-8", "replace")

    def stop(self, timeout: float = 5.0, first_signal: int = signal.SIGTERM) -> Optional[int]:
        """Stop the process (``first_signal``, then SIGKILL); return its exit code."""
        if self.popen is None:
            return None
        try:
            return _terminate(self.popen, timeout, first_signal)
        finally:
            self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _terminate(popen: subprocess.Popen[bytes], timeout: float, first_signal: int) -> int:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(first_signal)
        try:
            return popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
    return popen.wait(timeout)


def start_process(
    argv: Sequence[str],
    log_path: Path,
    cwd: Optional[Path] = None,
    env: Optional[Mapping[str, str]] = None,
) -> ManagedProcess:
    """Start ``argv`` with its output captured in ``log_path``; stop it with ``.stop()``."""
    return ManagedProcess(argv, log_path, cwd=cwd, env=env).start()
