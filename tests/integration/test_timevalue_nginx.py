"""The nginx time grammar (``_timevalue``, a port of ngx_parse_time) against a real ``nginx -t``: every value of
the unit test's table is accepted or refused by nginx exactly as the grammar says, as a msec directive
(``proxy_read_timeout``) and as a sec directive (``ssl_session_timeout``)."""

from __future__ import annotations

from typing import Optional

import pytest

from tests.support.nginx_sandbox import NginxSandbox
from tests.unit.plugin_utils._engine.test_timevalue import TIME_TABLE

pytestmark = pytest.mark.nginx

# One directive of each kind nginx reads with ngx_parse_time (msec slot, sec slot).
KINDS = (("proxy_read_timeout", 1), ("ssl_session_timeout", 2))


def nginx_accepts(sandbox: NginxSandbox, directive: str, value: str) -> bool:
    quoted = '"' + value + '"'
    sandbox.write_site("site.conf", f"server {{\n    listen {sandbox.listen};\n    {directive} {quoted};\n}}\n")
    result = sandbox.test()
    if result.returncode == 0:
        return True
    assert f'"{directive}" directive invalid value in ' in result.stderr, result.stderr
    return False


def test_nginx_t_accepts_exactly_what_the_grammar_accepts(nginx_sandbox: NginxSandbox) -> None:
    disagreements = []
    for row in TIME_TABLE:
        for directive, column in KINDS:
            expected: Optional[int] = row[column]  # type: ignore[assignment]
            if nginx_accepts(nginx_sandbox, directive, row[0]) != (expected is not None):
                disagreements.append((directive, row[0], expected))
    assert disagreements == []
