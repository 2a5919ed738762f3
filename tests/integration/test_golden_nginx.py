"""Every golden edit, on a real nginx: the result passes ``nginx -t``, and a WebSocket handshake that
failed before the edit gets 101 and its echo after it (RFC-strict backend, so HTTP/1.0 would fail)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend
from tests.unit.plugin_utils._engine.golden import GoldenCase, load_cases

pytestmark = pytest.mark.nginx

CASES = load_cases()
WS_URI = "/api/mqtt/ws/hints/session-874q8t"
ECHO = "hint 874q8t ✓"


def for_sandbox(data: bytes, sandbox: NginxSandbox, backend: Backend) -> bytes:
    """Listen on the sandbox port only, and send every upstream to the real backend."""
    data = re.sub(rb"listen\s+[^;]+;", f"listen {sandbox.listen};".encode(), data)
    return re.sub(rb"127\.0\.0\.1:(?:8000|8001|9000)", backend.upstream.encode(), data)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_after_passes_nginx_t(case: GoldenCase, nginx_sandbox: NginxSandbox, strict_backend: Backend) -> None:
    nginx_sandbox.write_site("site.conf", for_sandbox(case.after, nginx_sandbox, strict_backend))
    result = nginx_sandbox.test()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.mark.parametrize("case", [c for c in CASES if c.handshake], ids=lambda c: c.name)
def test_golden_edit_turns_a_failing_handshake_into_101(
    case: GoldenCase, nginx_sandbox: NginxSandbox, strict_backend: Backend
) -> None:
    host = case.settings.get("server_name") or "localhost"
    nginx_sandbox.write_site("site.conf", for_sandbox(case.before, nginx_sandbox, strict_backend))
    nginx_sandbox.start()
    before = handshake(nginx_sandbox.ws_url(WS_URI), host=host, echo=ECHO, timeout=5)
    assert before.status != 101
    nginx_sandbox.write_site("site.conf", for_sandbox(case.after, nginx_sandbox, strict_backend))
    nginx_sandbox.reload()
    after = handshake(nginx_sandbox.ws_url(WS_URI), host=host, echo=ECHO, timeout=5)
    assert (after.status, after.accept_ok, after.echo_received) == (101, True, ECHO), after.error
