"""The routing model on the rules of nginx-websocket-facts.md section 1 (checked against a real nginx
by tests/integration/test_routing_differential.py)."""

from __future__ import annotations

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import (
    RegexUnknown,
    Route,
    compile_location_regex,
    route,
)

WS = "/api/mqtt/ws/hints/session-874q8t"


def route_in(locations: str, uri: str) -> Route:
    config = load("/site", f"server {{\n{locations}\n}}\n".encode())
    server = config.servers()[0]
    return route(tree(config, server), uri)


def chosen(locations: str, uri: str) -> str:
    result = route_in(locations, uri)
    assert result.known, result.unknown
    assert result.location is not None
    return f"{result.location.modifier} {result.location.path}".strip()


@pytest.mark.parametrize(
    ("locations", "expected"),
    [
        ("location /api/ {} location /api/mqtt/ws/ {}", "/api/mqtt/ws/"),
        ("location /api/mqtt/ws/ {} location /api/ {}", "/api/mqtt/ws/"),
        ("location ~ ^/api/ {} location ~ ^/api/mqtt/ws/ {}", "~ ^/api/"),
        ("location ~ ^/api/mqtt/ws/ {} location ~ ^/api/ {}", "~ ^/api/mqtt/ws/"),
        ("location ^~ /api/ {} location ~ ^/api/mqtt/ws/ {}", "^~ /api/"),
        ("location ~ ^/api/ {} location ^~ /api/mqtt/ws/ {}", "^~ /api/mqtt/ws/"),
        ("location /api/mqtt/ws/ {} location ~ ^/api/ {}", "~ ^/api/"),
        ("location ~ ^/api/mqtt/ws/ {} location ~ ^/api/mqtt/ {}", "~ ^/api/mqtt/ws/"),
        ("location @ws {} location / {}", "/"),
    ],
)
def test_facts_section_1(locations: str, expected: str) -> None:
    assert chosen(locations, WS) == expected


def test_exact_match_stops_everything() -> None:
    assert chosen("location = /api/x {} location ~ x$ {}", "/api/x") == "= /api/x"
    assert chosen("location = /api/x {} location ~ x$ {}", "/api/xx") == "~ x$"


def test_nested_regex_is_checked_even_under_caret_tilde() -> None:
    assert chosen("location ^~ /api/ { location ~ ws { } }", WS) == "~ ws"


def test_regex_beats_a_longer_prefix_but_caseless_matters() -> None:
    assert chosen("location /static/app.js {} location ~* \\.JS$ {}", "/static/app.js") == "~* \\.JS$"
    assert chosen("location /static/app.js {} location ~ \\.JS$ {}", "/static/app.js") == "/static/app.js"


def test_reasons_tell_the_chain() -> None:
    result = route_in("location ^~ /api/ {} location ~ ^/api/mqtt/ws/ {}", WS)
    assert result.reasons == [
        "longest matching prefix is location ^~ /api/ at /site:2",
        "location ^~ /api/ at /site:2 is ^~, so no regex is checked",
    ]


def test_no_match_is_reported() -> None:
    result = route_in("location /api/ {}", "/other")
    assert result.location is None and result.known
    assert result.reasons == ["no location matches; the server's own settings answer"]


@pytest.mark.parametrize(
    "regex",
    [
        "^/a\\Kb",
        "(?|a|b)",
        "[[:alpha:]]+",
        "\\x{41}",
        "(?R)",
        "a{,3}",
        "\\h+",
        "(*UTF8)x",
        "(?x) a b",
        "\\p{L}",
    ],
)
def test_pcre_only_constructs_are_unknown_not_guessed(regex: str) -> None:
    with pytest.raises(RegexUnknown):
        compile_location_regex(regex, caseless=False)
    result = route_in(f'location ~ "{regex}" {{}} location / {{}}', "/a")
    assert not result.known and result.location is None
    assert "does not emulate" in (result.unknown or "")


def test_unknown_regex_after_the_answer_does_not_matter() -> None:
    assert chosen('location ~ ^/a {} location ~ "\\h" {}', "/a") == "~ ^/a"


def test_named_groups_in_pcre_syntax_are_translated() -> None:
    assert chosen("location ~ ^/(?<name>[a-z]+)/ws/ {}", "/abc/ws/x") == "~ ^/(?<name>[a-z]+)/ws/"
