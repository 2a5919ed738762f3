"""The routing model on the rules of nginx-websocket-facts.md section 1 (checked against a real nginx
by tests/integration/test_routing_differential.py)."""

from __future__ import annotations

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import (
    InvalidUri,
    RegexUnknown,
    Route,
    compile_location_regex,
    parse_complex_uri,
    request_problem,
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
        "[[:^alpha:]]+",
        "[[:foo:]]",
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


@pytest.mark.parametrize(
    ("regex", "uri", "matches"),
    [
        ("^/[-_[:alnum:]]+$", "/ab-_9", True),
        ("^/[-_[:alnum:]]+$", "/a:b", False),  # Python's re alone reads "[-_[:alnum:]" and a literal "]+"
        ("^/[^[:digit:]]", "/1", False),
        ("^/[^[:digit:]]", "/a", True),
        ("^/[[:punct:]]", "/:", True),
        ("^/[]x[:upper:]]", "/]", True),
    ],
)
def test_posix_classes_inside_brackets_are_translated_as_pcre_reads_them(regex: str, uri: str, matches: bool) -> None:
    assert compile_location_regex(regex, caseless=False).search(uri.encode()) is matches


def test_one_word_tilde_location_is_an_empty_regex_that_matches_everything() -> None:
    assert chosen("location / {} location ~ { }", "/anything") == "~"
    assert chosen("location /a {} location ~* { }", "/a") == "~*"


AUTO = "location /ws/ { proxy_pass http://127.0.0.1:9000; } location ~ ^/ws { } location / { }"


def test_auto_redirect_of_a_proxied_prefix_without_its_slash() -> None:
    result = route_in(AUTO, "/ws")
    assert result.redirect == "/ws/" and result.location is not None and result.location.path == "/ws/"
    assert result.reasons == [
        "location /ws/ at /site:2 ends with / and passes the request on, so nginx answers /ws with a 301 "
        "redirect to /ws/; no regex is checked"
    ]
    assert route_in(AUTO, "/ws/").redirect is None
    assert route_in("location /ws/ { root /srv; } location / { }", "/ws").redirect is None  # no proxy: no redirect
    assert chosen(AUTO + " location = /ws { }", "/ws") == "= /ws"  # a location named so is found first
    assert chosen(AUTO + " location ^~ /ws { }", "/ws") == "^~ /ws"


@pytest.mark.parametrize(
    ("uri", "merge", "path"),
    [
        ("/a//b/./c/../d?x=/..", True, "/a/b/d"),
        ("/a//b", False, "/a//b"),
        ("/a/%2e%2E/b", True, "/b"),
        ("/a%2Fb", True, "/a/b"),
        ("/a%252F", True, "/a%2F"),  # a decoded "%" is a literal, never decoded again
        ("/a%3Fb?c", True, "/a?b"),
        ("/a%23b", True, "/a#b"),
        ("/a#frag", True, "/a"),
        ("/a/.", True, "/a/"),
        ("/a/..", True, "/"),
        ("/a/b/..?x", True, "/a/"),
        ("/%C3%A9", True, "/\u00e9"),
    ],
)
def test_parse_complex_uri_like_nginx(uri: str, merge: bool, path: str) -> None:
    assert parse_complex_uri(uri, merge) == path


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("/a%zz", "malformed %-escape"),
        ("/a%", "ends inside a %-escape"),
        ("/a%4", "ends inside a %-escape"),
        ("/a%00b", "NUL byte"),
        ("/..", "climbs above the root"),
        ("/a/../../b", "climbs above the root"),
        ("//..", "climbs above the root"),
        ("/a b", "which the request line does not allow"),
        ("/a\x01", "which the request line does not allow"),
        ("/a?b\x7f", "which the request line does not allow"),
    ],
)
def test_parse_complex_uri_refuses_what_nginx_answers_400(uri: str, why: str) -> None:
    with pytest.raises(InvalidUri, match=why):
        parse_complex_uri(uri)


def test_request_problem_names_400_normalisation_and_redirect() -> None:
    ok = route_in("location / {}", "/ws/x")
    assert request_problem("/ws/x", ok) is None
    assert request_problem("/ws%zz", ok) == (
        "nginx answers 400 to a WebSocket request for /ws%zz: '/ws%zz' has a malformed %-escape (nginx answers 400)",
        "Use a location path without '%', '..' or '.' segments, as clients send it.",
    )
    problem = request_problem("/ws//x", ok)
    assert problem is not None and problem[0].startswith("nginx matches locations against /ws/x, not /ws//x")
    redirect = request_problem("/ws", route_in(AUTO, "/ws"))
    assert redirect is not None
    assert redirect[0] == (
        "nginx answers /ws with a 301 redirect to /ws/: location /ws/ at /site:2 ends with / and passes requests on; "
        "a WebSocket client does not follow redirects"
    )
    assert redirect[1].startswith("Connect the WebSocket clients to /ws/ (the URL with the slash)")
