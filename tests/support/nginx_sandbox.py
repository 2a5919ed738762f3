"""A private nginx root laid out like Debian's /etc/nginx, run by PID for tests.

Layout under ``root``::

    nginx.conf            main file, absolute paths only, includes like Debian's
    conf.d/               included inside http{} (``*.conf``)
    sites-available/      site files; sites-enabled/ holds absolute symlinks to them
    sites-enabled/        included inside http{} (``*``)
    modules-enabled/      included at top level (``*.conf``), empty
    snippets/             empty, for ``include snippets/...;``
    proxy_params          copied from /etc/nginx/proxy_params when present
    mime.types            copied from /etc/nginx/mime.types when present
    logs/                 error.log, access.log, master.log (the master's stderr)
    temp/                 *_temp_path directories

``nginx -t``/``-T`` run with ``-e stderr`` (Debian's built-in default), so their stderr looks exactly
like ``nginx -t`` against /etc/nginx/nginx.conf. ``-p <root>/`` keeps every relative path (such as
``include proxy_params;``) inside the sandbox, and nothing under /etc/nginx or /var is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Callable, Optional, Union

from tests.support.processes import (
    LOCALHOST,
    ManagedProcess,
    free_port,
    kill_pid,
    pid_is_alive,
    wait_for_port,
    wait_until,
)

Content = Union[str, bytes]

SYSTEM_NGINX_DIR = Path("/etc/nginx")
COPIED_FILES = ("proxy_params", "mime.types")
TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
FALLBACK_MIME_TYPES = b"types {\n    text/html html htm;\n    application/json json;\n}\n"

MAIN_CONF_TEMPLATE = """\
# nginx sandbox main configuration (Debian layout, absolute paths only).
worker_processes 1;
pid {root}/nginx.pid;
lock_file {root}/nginx.lock;
error_log {root}/logs/error.log {error_log_level};
include {root}/modules-enabled/*.conf;

events {{
    worker_connections 256;
}}

http {{
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include {root}/mime.types;
    default_type application/octet-stream;

    access_log {root}/logs/access.log;
{temp_paths}
    include {root}/conf.d/*.conf;
    include {root}/sites-enabled/*;
}}
"""


class NginxError(RuntimeError):
    """nginx refused a command (test, dump, start or reload)."""


def find_nginx() -> Optional[str]:
    """Path of the nginx binary ($NGINX_BIN, then PATH, then /usr/sbin/nginx), or None."""
    candidate = os.environ.get("NGINX_BIN") or shutil.which("nginx") or "/usr/sbin/nginx"
    return candidate if os.access(candidate, os.X_OK) else None


def _as_bytes(content: Content) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def _write_readable(path: Path, content: Content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_as_bytes(content))
    path.chmod(0o644)
    return path


class NginxSandbox:
    """A throw-away nginx root; ``start()`` runs its master in the foreground under Popen."""

    def __init__(
        self,
        base_dir: Optional[Path] = None,
        nginx_bin: Optional[str] = None,
        port: Optional[int] = None,
        error_log_level: str = "notice",
        keep: bool = False,
    ) -> None:
        binary = nginx_bin or find_nginx()
        if binary is None:
            raise NginxError("nginx binary not found (set NGINX_BIN or install Debian's nginx)")
        self.nginx_bin = binary
        self.root = Path(tempfile.mkdtemp(prefix="nginx-sandbox-", dir=base_dir))
        self.port = port if port is not None else free_port()
        self.host = LOCALHOST
        self.keep = keep
        self.process: Optional[ManagedProcess] = None
        self._layout(error_log_level)

    # ----------------------------------------------------------------- layout

    @property
    def conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def error_log(self) -> Path:
        return self.root / "logs" / "error.log"

    @property
    def access_log(self) -> Path:
        return self.root / "logs" / "access.log"

    @property
    def master_log(self) -> Path:
        return self.root / "logs" / "master.log"

    @property
    def pid_file(self) -> Path:
        return self.root / "nginx.pid"

    @property
    def listen(self) -> str:
        """``127.0.0.1:<port>``, ready for a ``listen`` directive."""
        return f"{self.host}:{self.port}"

    def _layout(self, error_log_level: str) -> None:
        self.root.chmod(0o755)  # workers run as nobody and must reach temp/
        for sub in ("conf.d", "sites-available", "sites-enabled", "modules-enabled", "snippets", "logs"):
            (self.root / sub).mkdir(mode=0o755)
        (self.root / "temp").mkdir(mode=0o755)
        for name in COPIED_FILES:
            self._copy_system_file(name)
        _write_readable(self.conf, self._main_conf(error_log_level))

    def _copy_system_file(self, name: str) -> None:
        source = SYSTEM_NGINX_DIR / name
        if source.is_file():
            _write_readable(self.root / name, source.read_bytes())
        elif name == "mime.types":
            _write_readable(self.root / name, FALLBACK_MIME_TYPES)

    def _main_conf(self, error_log_level: str) -> str:
        temp_paths = "".join(f"    {kind}_temp_path {self.root}/temp/{kind};\n" for kind in TEMP_KINDS)
        return MAIN_CONF_TEMPLATE.format(root=self.root, error_log_level=error_log_level, temp_paths=temp_paths)

    # ---------------------------------------------------------------- writing

    def path(self, relpath: Union[str, Path]) -> Path:
        """Absolute path of ``relpath`` inside the sandbox (refuses to leave it)."""
        candidate = (self.root / relpath).resolve()
        if candidate != self.root.resolve() and self.root.resolve() not in candidate.parents:
            raise ValueError(f"{relpath!r} is outside the sandbox {self.root}")
        return self.root / relpath

    def write(self, relpath: Union[str, Path], content: Content) -> Path:
        """Write ``content`` (bytes written verbatim; str as UTF-8) at ``relpath``; return its path."""
        return _write_readable(self.path(relpath), content)

    def read(self, relpath: Union[str, Path]) -> bytes:
        return self.path(relpath).read_bytes()

    def write_site(self, name: str, content: Content, enabled: bool = True, symlink: bool = True) -> Path:
        """Write a site like Debian does; return the path of the real file.

        ``enabled`` with ``symlink``: the file lives in sites-available/ and sites-enabled/<name> is an
        absolute symlink to it. ``enabled`` without ``symlink``: a regular file in sites-enabled/.
        Not ``enabled``: only sites-available/<name>, and any sites-enabled/<name> is removed.
        """
        enabled_path = self.path(f"sites-enabled/{name}")
        if not (enabled and not symlink):
            target = self.write(f"sites-available/{name}", content)
            self._replace_enabled_entry(enabled_path, target if enabled else None)
            return target
        self._replace_enabled_entry(enabled_path, None)
        return self.write(f"sites-enabled/{name}", content)

    @staticmethod
    def _replace_enabled_entry(enabled_path: Path, link_target: Optional[Path]) -> None:
        if enabled_path.is_symlink() or enabled_path.exists():
            enabled_path.unlink()
        if link_target is not None:
            enabled_path.symlink_to(link_target)

    def disable_site(self, name: str) -> None:
        """Remove sites-enabled/<name> (link or file); sites-available/ is left alone."""
        self._replace_enabled_entry(self.path(f"sites-enabled/{name}"), None)

    def url(self, path: str = "/", port: Optional[int] = None, scheme: str = "http") -> str:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return f"{scheme}://{self.host}:{port if port is not None else self.port}{path}"

    def ws_url(self, path: str = "/", port: Optional[int] = None) -> str:
        return self.url(path, port, scheme="ws")

    # ------------------------------------------------------- nginx commands

    def _argv(self, *extra: str) -> list[str]:
        return [self.nginx_bin, "-p", f"{self.root}/", "-c", str(self.conf), "-e", "stderr", *extra]

    def _run(self, *extra: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._argv(*extra), capture_output=True, text=True, timeout=timeout, check=False)

    def test(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the sandbox's main file; messages are on ``.stderr``."""
        return self._run("-t")

    def dump(self, check: bool = True) -> str:
        """``nginx -T`` stdout (every loaded file); NginxError when the test fails and ``check``."""
        result = self._run("-T")
        if check and result.returncode != 0:
            raise NginxError(f"nginx -T failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def check(self) -> None:
        """Raise NginxError with nginx's messages unless ``nginx -t`` passes."""
        result = self.test()
        if result.returncode != 0:
            raise NginxError(f"nginx -t failed ({result.returncode}):\n{result.stderr}")

    # ------------------------------------------------------------ lifecycle

    @property
    def pid(self) -> int:
        if self.process is None or not self.process.running():
            raise NginxError("nginx is not running")
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def start(self, ports: Optional[Iterable[int]] = None, timeout: float = 60.0) -> NginxSandbox:
        """Run the master in the foreground and wait until its workers serve.

        Waits for the pid file (nginx writes it after binding every listening socket, so connections
        are accepted from then on), for one worker, and for each port in ``ports``.
        """
        if self.running():
            raise NginxError(f"nginx already running (pid {self.pid})")
        self.check()
        self.pid_file.unlink(missing_ok=True)
        argv = self._argv("-g", "daemon off; master_process on;")
        self.process = ManagedProcess(argv, self.master_log).start()
        try:
            self._wait_started(ports, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_started(self, ports: Optional[Iterable[int]], timeout: float) -> None:
        process = self.process
        assert process is not None

        def master_ready() -> bool:
            process.raise_if_exited()
            return self._pid_file_matches() and bool(self.worker_pids())

        wait_until(master_ready, timeout, what="the nginx master and its workers")
        for port in ports or ():
            wait_for_port(self.host, port, timeout, process=process)

    def _pid_file_matches(self) -> bool:
        try:
            return self.pid_file.read_text().strip() == str(self.pid)
        except OSError:
            return False

    def worker_pids(self, include_exiting: bool = False) -> set[int]:
        """PIDs of the master's worker processes (those not shutting down, by default)."""
        if not self.running():
            return set()
        return {
            pid
            for pid, title in _children(self.pid).items()
            if "worker process" in title and (include_exiting or "shutting down" not in title)
        }

    def reload(
        self,
        wait_for: Optional[Callable[[], bool]] = None,
        timeout: float = 60.0,
        check: bool = True,
    ) -> None:
        """``nginx -s reload`` and wait until the new configuration serves.

        Done when a new worker generation runs and no old worker still accepts (old workers retitle
        themselves "worker process is shutting down" as they close their listening sockets), and,
        when given, ``wait_for()`` returns true. A configuration nginx rejects raises NginxError:
        at once with ``check`` (``nginx -t`` runs first), else as soon as the master logs ``[emerg]``
        (nginx then keeps serving the old configuration).
        """
        if check:
            self.check()
        old_workers = self.worker_pids(include_exiting=True)
        log_offset = self._error_log_size()
        result = self._run("-s", "reload")
        if result.returncode != 0:
            raise NginxError(f"nginx -s reload failed ({result.returncode}):\n{result.stderr}")
        try:
            wait_until(lambda: self._reloaded(old_workers, log_offset), timeout, what="nginx reload")
            if wait_for is not None:
                wait_until(wait_for, timeout, what="the reloaded configuration to answer")
        except TimeoutError as exc:
            raise NginxError(f"{exc}; error log tail:\n{self.error_log_tail()}") from exc

    def _reloaded(self, old_workers: set[int], log_offset: int) -> bool:
        if self.process is not None:
            self.process.raise_if_exited()
        new_log = self._error_log_since(log_offset)
        if "[emerg]" in new_log:
            raise NginxError(f"nginx rejected the new configuration and kept the old one:\n{new_log}")
        current = self.worker_pids()
        return bool(current) and not (current & old_workers)

    def _error_log_size(self) -> int:
        try:
            return self.error_log.stat().st_size
        except OSError:
            return 0

    def _error_log_since(self, offset: int) -> str:
        try:
            with self.error_log.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the master (SIGTERM, then SIGKILL) and any worker it leaves behind."""
        if self.process is None:
            return
        workers = self.worker_pids(include_exiting=True) if self.running() else set()
        self.process.stop(timeout=timeout, first_signal=signal.SIGTERM)
        for pid in workers:
            if pid_is_alive(pid):
                kill_pid(pid, timeout)
        self.process = None

    def error_log_tail(self, max_bytes: int = 4000) -> str:
        try:
            return self.error_log.read_bytes()[-max_bytes:].decode("utf-8", "replace")
        except OSError:
            return ""

    def remove_lock_files(self) -> None:
        """Remove the lock files ``nginx_file`` left in /run/lock for the sandbox's files (one per edited path)."""
        # imported here: the demo imports this module before the checkout is linked as ansible_collections
        from ansible_collections.agaii.nginx.plugins.modules.nginx_file import lock_path

        for directory, _dirs, names in os.walk(self.root):
            for name in names:
                with contextlib.suppress(OSError):
                    os.unlink(lock_path(os.path.realpath(os.path.join(directory, name))))

    def cleanup(self) -> None:
        """Stop nginx and remove the sandbox directory (unless ``keep``)."""
        self.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> NginxSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def _children(parent: int) -> dict[int, str]:
    """``{pid: command line}`` of the live children of ``parent`` (Linux /proc)."""
    children: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent_of(entry) == parent:
            title = _cmdline(entry)
            if title is not None:
                children[int(entry.name)] = title
    return children


def _parent_of(proc_dir: Path) -> Optional[int]:
    try:
        fields = (proc_dir / "stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return int(fields[1]) if fields[0] != "Z" else None


def _cmdline(proc_dir: Path) -> Optional[str]:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None
