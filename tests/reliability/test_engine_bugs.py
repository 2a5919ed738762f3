"""Regressions for the engine bugs the fuzzer found (docs/reliability.md, "Bugs found", 1 and 2).

The engine promises that it either plans or raises an ``NginxConfigError`` that says what is wrong;
these inputs used to make it raise something else.
"""

from __future__ import annotations

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings

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


def test_non_utf8_byte_in_the_anchor_proxy_pass_is_kept_byte_for_byte() -> None:
    after = plan_or_refuse(LATIN1_PROXY_PASS, Settings())
    # the URI part means a ^~ prefix carries it; the Latin-1 byte is copied, never re-encoded
    assert b"location ^~ /api/mqtt/ws/ {" in after
    assert b"proxy_pass http://127.0.0.1:8000/caf\xe9/mqtt/ws/;" in after
    assert after.count(b"\xe9") == 2 and b"\xc3\xa9" not in after


def test_proxy_set_header_without_arguments_is_refused_or_kept() -> None:
    # nginx -t rejects the bare directive; the engine plans anyway and the module's nginx -t has the last word
    after = plan_or_refuse(BARE_PROXY_SET_HEADER, Settings())
    assert b"location ~ ^/api/mqtt/ws/ {" in after
