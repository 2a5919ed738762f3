"""Option values: parsed, validated, and never able to inject a directive."""

from __future__ import annotations

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError, NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.lexer import tokenize
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.render import quote_arg, render_directive
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import (
    Settings,
    literal_prefix,
    parse_location,
)

SITE = b"server {\n    listen 80;\n    location /api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"

HOSTILE = [
    "x; return 200 pwned",
    "x } server { listen 81; } location / {",
    "a\nreturn 200 pwned;",
    "a\r\nb",
    "# comment; return 1;",
    '"; return 200 x; "',
    "'; return 200 x; '",
    "a\\",
    'a\\"; return 1; \\"',
    "$host; deny all",
    "a\x00b",
    "{",
    "}",
    ";",
    "x" * 5000,
    "ünïcødé ✓",
    "${x}",
    "a b c",
    "^/ws/; return 200 x",
    "^/ws/ { return 200 x; } location /",
    '^/ws/" ; deny all; "',
    "^/ws/#; deny all;",
    "^/ws/\\",
    "http://127.0.0.1:8000; deny all",
    "http://127.0.0.1:8000/{x}",
    "60s; deny all",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quoted_values_read_back_as_one_argument(value: str) -> None:
    if any(ch in value for ch in "\r\n\x00"):
        return  # refused earlier by check_plain_value, see below
    text = render_directive("proxy_set_header", ["X-Test", value])
    tokens = list(tokenize(text.encode()))
    assert [t.text for t in tokens[:-1]] == ["proxy_set_header", "X-Test", value]
    assert tokens[-1].kind == ";"


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "option",
    [
        "location",
        "before",
        "proxy_pass",
        "read_timeout",
        "send_timeout",
        "map_variable",
        "server_name",
        "header_value",
        "header_name",
    ],
)
def test_hostile_values_never_add_a_directive(option: str, value: str) -> None:
    settings = _settings_with(option, value)
    config = load("/site", SITE)
    try:
        plan = plan_websocket(config, "/site", settings)
    except NginxConfigError as error:
        assert str(error)
        return
    after = plan.after.get("/site", SITE)
    names = [d.name for d in load("/site", after).files["/site"].walk()]
    expected = {
        "server",
        "listen",
        "location",
        "proxy_pass",
        "proxy_http_version",
        "proxy_set_header",
        "proxy_read_timeout",
        "proxy_send_timeout",
    }
    assert set(names) <= expected
    assert names.count("location") == 2
    assert names.count("server") == 1


def _settings_with(option: str, value: str) -> Settings:
    if option == "header_value":
        return Settings(headers={"X-Test": value})
    if option == "header_name":
        return Settings(headers={value: "1"})
    return Settings(**{option: value})


def test_control_characters_are_refused_with_a_clear_message() -> None:
    with pytest.raises(InvalidOptionError, match="control character"):
        plan_websocket(load("/site", SITE), "/site", Settings(headers={"X-A": "a\nb"}))


def test_quote_arg_keeps_safe_values_bare() -> None:
    assert quote_arg("$http_upgrade") == "$http_upgrade"
    assert quote_arg("^/api/mqtt/ws/") == "^/api/mqtt/ws/"
    assert quote_arg("a b") == '"a b"'
    assert quote_arg("^/x{3}") == '"^/x{3}"'
    assert quote_arg("") == '""'


@pytest.mark.parametrize(
    ("regex", "prefix", "whole"),
    [
        ("^/api/mqtt/ws/", "/api/mqtt/ws/", True),
        ("^/api/v1\\.0/ws", "/api/v1.0/ws", True),
        ("^/api/ws/.+$", "/api/ws/", False),
        ("^/api/wss?/", "/api/ws", False),
        ("/api/", "", False),
    ],
)
def test_literal_prefix(regex: str, prefix: str, whole: bool) -> None:
    assert literal_prefix(regex) == (prefix, whole)


def test_location_forms_and_sample_uri() -> None:
    ws = parse_location("~* ^/api/mqtt/ws/")
    assert (ws.modifier, ws.regex, ws.prefix) == ("~*", "^/api/mqtt/ws/", None)
    ws = parse_location("^/api/mqtt/ws/")
    assert (ws.modifier, ws.prefix, ws.sample_uri) == (
        "~",
        "/api/mqtt/ws/",
        "/api/mqtt/ws/agaii-probe/session-874q8t",
    )


def test_a_regex_without_a_literal_start_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="cannot derive a WebSocket URI"):
        parse_location("ws$")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("match", "fuzzy", "match must be one of auto, regex, prefix"),
        ("read_timeout", "1 hour", "read_timeout must be an nginx time"),
        ("proxy_pass", "127.0.0.1:8000", "proxy_pass must be a URL"),
        ("map_variable", "not-a-var", "map_variable must be an nginx variable name"),
    ],
)
def test_invalid_options_say_what_is_wrong(option: str, value: str, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        plan_websocket(load("/site", SITE), "/site", Settings(**{option: value}))
