"""Engine bugs the reliability tests found, each as a minimal reproduction (``xfail(strict=True)``).

The engine promises that it either plans or raises an ``NginxConfigError`` that says what is wrong;
these inputs make it raise something else. When a bug is fixed its test passes, the strict xfail
turns that into a failure, and the marker (and the entry in ``test_fuzz.KNOWN_BUGS``) must go.
"""

from __future__ import annotations

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._model import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._planner import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._target import Settings

PATH = "/etc/nginx/sites-enabled/app"

# A Latin-1 byte (0xe9, "é") in the URI of the anchor's proxy_pass. nginx accepts the bytes as they are.
LATIN1_PROXY_PASS = (
    b"server {\n    listen 80;\n    location /api/ {\n        proxy_pass http://127.0.0.1:8000/caf\xe9/;\n    }\n}\n"
)

# ``proxy_set_header`` without arguments (nginx -t rejects it, crossplane and the lexer accept it).
BARE_PROXY_SET_HEADER = (
    b"server {\n"
    b"    listen 80;\n"
    b"    proxy_set_header;\n"
    b"    location /api/ {\n"
    b"        proxy_pass http://127.0.0.1:8000;\n"
    b"    }\n"
    b"}\n"
)


def plan_or_refuse(site: bytes, settings: Settings) -> bytes:
    """The planned bytes, or the input when the engine refuses with an NginxConfigError (and a message)."""
    try:
        plan = plan_websocket(load(PATH, site), PATH, settings)
    except NginxConfigError as err:
        assert str(err).strip()
        return site
    return plan.after.get(PATH, site)


@pytest.mark.xfail(
    strict=True,
    raises=UnicodeEncodeError,
    reason="_planner._new_body encodes render_directive('proxy_pass', ...) with str.encode() (strict UTF-8): "
    "a non-UTF-8 byte of the anchor's proxy_pass (decoded with surrogateescape) raises UnicodeEncodeError",
)
def test_non_utf8_byte_in_the_anchor_proxy_pass_is_kept_byte_for_byte() -> None:
    after = plan_or_refuse(LATIN1_PROXY_PASS, Settings())
    assert after == LATIN1_PROXY_PASS or b"proxy_pass http://127.0.0.1:8000/caf\xe9/mqtt/ws/;" in after


@pytest.mark.xfail(
    strict=True,
    raises=IndexError,
    reason="_planner.directive_key returns a 1-tuple for a proxy_set_header without arguments, and "
    "_new_body / _missing_inherited index [1] of it",
)
def test_proxy_set_header_without_arguments_is_refused_or_kept() -> None:
    after = plan_or_refuse(BARE_PROXY_SET_HEADER, Settings())
    assert after == BARE_PROXY_SET_HEADER or b"location ~ ^/api/mqtt/ws/ {" in after
