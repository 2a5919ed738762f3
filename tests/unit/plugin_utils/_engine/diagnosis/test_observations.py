"""What the diagnosis observes: probe results, the error log lines, the nginx process."""

from __future__ import annotations

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.observations import (
    probe_from,
    process_from,
    relevant_log_lines,
)

# ------------------------------------------------------------------------------- probes, logs


def test_probe_from_ws_probe_results() -> None:
    refused = probe_from(
        "ws://127.0.0.1:8000/x",
        {"failed": True, "status": 0, "msg": "expected HTTP 101 from ws://127.0.0.1:8000/x, got no HTTP response "
         "(connecting to 127.0.0.1:8000: connection refused)",
         "error": "connecting to 127.0.0.1:8000: connection refused"},
    )  # fmt: skip
    assert refused.connect_failed and refused.connect_error() == "connection refused"
    strict = probe_from("ws://h/x", {"status": 505, "status_line": "HTTP/1.1 505 HTTP Version Not Supported"})
    assert (strict.connect_failed, strict.outcome()) == (False, "HTTP/1.1 505 HTTP Version Not Supported")


LOG = """\
2026/01/01 10:00:00 [notice] 1#1: signal process started
2026/01/01 10:00:01 [error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream, \
client: 127.0.0.1, server: a, request: "GET /api/x HTTP/1.1", upstream: "http://127.0.0.1:9999/api/x"
2026/01/01 10:00:02 [error] 7#7: *2 connect() failed (111: Connection refused) while connecting to upstream, \
client: 127.0.0.1, server: app.test, request: "GET /api/mqtt/ws/hints/s1 HTTP/1.1", upstream: "http://127.0.0.1:8000/api/mqtt/ws/hints/s1"
2026/01/01 10:00:03 [error] 7#7: *3 upstream timed out (110: Connection timed out) while reading response header
"""


def test_relevant_log_lines_prefer_the_backend() -> None:
    lines = relevant_log_lines(LOG, ["127.0.0.1:8000"])
    assert len(lines) == 1 and lines[0].startswith("2026/01/01 10:00:02 [error] 7#7: *2 connect() failed")
    assert len(relevant_log_lines(LOG)) == 3
    assert relevant_log_lines(LOG, limit=1) == [LOG.splitlines()[-1]]


# ------------------------------------------------------------------------------ layer checks


def test_process_from_pid_file() -> None:
    assert process_from("/run/nginx.pid", None, None).describe() == "nginx is not running (no pid file /run/nginx.pid)"
    assert process_from("/p", "12\n", None).problem == "pid 12 from /p is not running"
    assert process_from("/p", "12", "python3\n").problem == "pid 12 from /p is 'python3', not nginx"
    assert process_from("/p", "x", None).problem == "pid file /p holds 'x', not a pid"
    assert process_from("/p", "", None).problem == "pid file /p is empty"
    assert process_from("/p", "12\n", "nginx\n").describe() == "nginx runs (pid 12 from /p)"
