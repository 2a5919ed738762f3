"""Shared pytest fixtures: nginx sandboxes and real backends on 127.0.0.1.

- ``nginx_sandbox``: a fresh :class:`NginxSandbox` per test (not started); stopped and removed after.
  When the test fails, the sandbox is kept and its path and error log are printed.
- ``asgi_backend`` / ``strict_backend``: session-wide uvicorn (FastAPI app) and RFC-strict
  ``websockets`` servers, as :class:`Backend` objects.
- Tests marked ``nginx`` skip when nginx is missing, but FAIL when the ``CI`` environment variable
  is set (a CI run must not go green by skipping everything).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from tests.support.nginx_sandbox import NginxSandbox, find_nginx
from tests.support.processes import LOCALHOST, ManagedProcess, free_port, wait_for_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# Readiness waits, not timed assertions: generous because CI machines can be heavily loaded.
BACKEND_START_TIMEOUT = 90.0
NGINX_MISSING = "nginx is not installed (looked at $NGINX_BIN, PATH and /usr/sbin/nginx)"
_CALL_FAILED = pytest.StashKey[bool]()


@dataclass
class Backend:
    """A backend server we started; ``url`` is its base URL (``http://127.0.0.1:<port>``)."""

    name: str
    port: int
    process: ManagedProcess
    host: str = LOCALHOST

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def upstream(self) -> str:
        """``127.0.0.1:<port>``, ready for ``proxy_pass http://...;`` or an upstream block."""
        return f"{self.host}:{self.port}"

    def http_url(self, path: str = "/") -> str:
        return f"{self.url}{path}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def log_tail(self) -> str:
        return self.process.log_tail()


def nginx_available_or_skip() -> str:
    """The nginx binary path; otherwise fail under CI (``$CI`` set) or skip."""
    binary = find_nginx()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail(f"{NGINX_MISSING}; CI is set, so this is a failure, not a skip", pytrace=False)
        pytest.skip(NGINX_MISSING)
    return binary


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("nginx") is not None:
        nginx_available_or_skip()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


def _start_backend(name: str, module: str, log_dir: Path, extra: Sequence[str] = ()) -> Backend:
    port = free_port()
    argv = [sys.executable, "-m", module, "--host", LOCALHOST, "--port", str(port), *extra]
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    process = ManagedProcess(argv, log_dir / f"{name}.log", cwd=REPO_ROOT, env=env).start()
    try:
        wait_for_port(LOCALHOST, port, BACKEND_START_TIMEOUT, process=process)
    except BaseException:
        process.stop()
        raise
    return Backend(name=name, port=port, process=process)


def _pythonpath() -> str:
    existing = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(REPO_ROOT), existing] if existing else [str(REPO_ROOT)])


@pytest.fixture(scope="session")
def backend_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backend-logs")


@pytest.fixture(scope="session")
def asgi_backend(backend_log_dir: Path) -> Iterator[Backend]:
    """uvicorn serving tests.support.backends.asgi_app (the incident's FastAPI stack)."""
    backend = _start_backend("asgi", "tests.support.backends.asgi_app", backend_log_dir)
    yield backend
    backend.process.stop()


@pytest.fixture(scope="session")
def strict_backend(backend_log_dir: Path) -> Iterator[Backend]:
    """The RFC-strict websockets server (505 for HTTP/1.0 upgrades)."""
    backend = _start_backend("strict", "tests.support.backends.strict_server", backend_log_dir)
    yield backend
    backend.process.stop()


@pytest.fixture
def nginx_sandbox(request: pytest.FixtureRequest) -> Iterator[NginxSandbox]:
    """A fresh, not yet started nginx sandbox; stopped (and removed unless the test failed) after, with the
    lock files nginx_file left for its files."""
    sandbox = NginxSandbox(nginx_bin=nginx_available_or_skip())
    try:
        yield sandbox
    finally:
        failed = request.node.stash.get(_CALL_FAILED, False)
        sandbox.keep = sandbox.keep or failed
        sandbox.remove_lock_files()
        sandbox.cleanup()
        if failed:
            _print_sandbox_diagnosis(sandbox)


def _print_sandbox_diagnosis(sandbox: NginxSandbox) -> None:
    print(f"\n[nginx sandbox kept at {sandbox.root}]\n--- error.log tail ---\n{sandbox.error_log_tail()}")


def backend_by_name(request: pytest.FixtureRequest, name: str) -> Backend:
    """Look a backend fixture up by name (``"asgi"`` or ``"strict"``), for parametrized tests."""
    backend: Optional[Backend] = request.getfixturevalue(f"{name}_backend")
    assert backend is not None
    return backend
