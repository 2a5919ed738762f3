"""Choosing among server blocks that share a name: the listen selector, and servers that only redirect."""

from __future__ import annotations

import re
from typing import Optional

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    AnchorNotFoundError,
    InvalidOptionError,
    ServerSelectionError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import Plan, plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import ListenSelector, parse_listen_selector

PATH = "/etc/nginx/sites-enabled/site"


def plan(text: str, **settings: Optional[str]) -> Plan:
    return plan_websocket(load(PATH, text.encode()), PATH, Settings(**settings))  # type: ignore[arg-type]


def edited(result: Plan) -> list:
    return [(s.line, s.listen) for s in result.servers if s.action != "unchanged"]


REDIRECT_AND_HTTPS = """server {
    listen 80;
    listen [::]:80;
    server_name app.example.com;
    location /api/ { return 301 https://$host$request_uri; }
}
server {
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name app.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
"""

SERVER_LEVEL_REDIRECT = """server {
    listen 80;
    server_name app.example.com;
    return 301 https://$host$request_uri;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
server {
    listen 443 ssl;
    server_name app.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
"""

API_AND_CONSOLE = """server {
    listen 8080;
    server_name app.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
server {
    listen 127.0.0.1:8443 ssl;
    server_name app.example.com;
    location /api/ { proxy_pass http://127.0.0.1:9000; }
}
"""

SAME_UPSTREAM = """server {
    listen 80;
    server_name app.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
server {
    listen 443 ssl;
    server_name app.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
"""


def test_only_the_server_that_proxies_is_edited_and_named() -> None:
    result = plan(REDIRECT_AND_HTTPS)
    assert edited(result) == [(7, ["443 ssl", "[::]:443 ssl"])]
    assert [s.action for s in result.servers] == ["inserted"]
    assert result.warnings[1:] == [
        f"left alone: server app.example.com (listen 80, [::]:80) at {PATH}:1 does not proxy /api/ "
        f"(return 301 https://$host$request_uri at {PATH}:5 answers before any proxy); set listen to choose it",
    ]
    assert result.after[PATH].count(b"location ~ ^/api/mqtt/ws/") == 1
    assert result.after[PATH].index(b"location ~ ^/api/mqtt/ws/") > REDIRECT_AND_HTTPS.index("listen 443 ssl")


def test_a_server_level_return_answers_before_any_location() -> None:
    result = plan(SERVER_LEVEL_REDIRECT)
    assert edited(result) == [(7, ["443 ssl"])]
    assert (
        f"(return 301 https://$host$request_uri at {PATH}:4 answers every request of the server)"
        in (result.warnings[1])
    )


def test_try_files_to_a_named_proxy_location_counts_as_proxied() -> None:
    text = """server {
    listen 80;
    server_name app.example.com;
    location /api/ { return 403; }
}
server {
    listen 8080;
    server_name app.example.com;
    location /api/ { try_files $uri @app; }
    location @app { proxy_pass http://127.0.0.1:8000; }
}
"""
    result = plan(text, proxy_pass="http://127.0.0.1:8000")
    assert edited(result) == [(6, ["8080"])]


def test_different_upstreams_are_refused_with_the_list() -> None:
    with pytest.raises(ServerSelectionError) as error:
        plan(API_AND_CONSOLE)
    assert str(error.value) == (
        f"{PATH}: 2 server blocks named app.example.com serve /api/ with different upstreams: "
        f"{PATH}:1 listen 8080 -> proxy_pass http://127.0.0.1:8000; "
        f"{PATH}:6 listen 127.0.0.1:8443 ssl -> proxy_pass http://127.0.0.1:9000. "
        "Set listen (for example the port of one of them) or server_name to choose the server to edit."
    )


@pytest.mark.parametrize(
    ("listen", "line"),
    [("8443", 6), ("8443 ssl", 6), ("127.0.0.1:8443", 6), ("localhost:8443", 6), ("8080", 1), ("*:8080", 1)],
)
def test_listen_chooses_one_server(listen: str, line: int) -> None:
    result = plan(API_AND_CONSOLE, listen=listen)
    assert [(s.line, s.action) for s in result.servers] == [(line, "inserted")]


def test_given_proxy_pass_makes_upstreams_equal() -> None:
    result = plan(API_AND_CONSOLE, proxy_pass="http://127.0.0.1:7000")
    assert [(s.line, s.action) for s in result.servers] == [(1, "inserted"), (6, "inserted")]


def test_same_upstream_edits_every_proxying_server() -> None:
    result = plan(SAME_UPSTREAM)
    assert edited(result) == [(1, ["80"]), (6, ["443 ssl"])]


@pytest.mark.parametrize(
    ("listen", "line"),
    [("[::]:443", 7), ("[::]:443 ssl", 7), ("443 ssl", 7), ("*:80", 1), ("80", 1), ("[::]:80", 1), ("0.0.0.0:80", 1)],
)
def test_listen_forms_select_by_address_port_and_flags(listen: str, line: int) -> None:
    # the https server listens on IPv6 only: *:443 selects nothing, [::]:443 and 443 select it
    text = SAME_UPSTREAM.replace("    listen 80;\n", "    listen 80;\n    listen [::]:80;\n", 1).replace(
        "listen 443 ssl;\n", "listen [::]:443 ssl;\n"
    )
    result = plan(text, listen=listen)
    assert [(s.line, s.action) for s in result.servers] == [(line, "inserted")]


def test_listen_on_a_redirect_server_is_refused_even_with_a_proxy_pass() -> None:
    # issue 17.1: an anchor that only returns or redirects proxies nothing; refused, whoever chose the server
    with pytest.raises(AnchorNotFoundError) as error:
        plan(REDIRECT_AND_HTTPS, listen="[::]:80", proxy_pass="http://127.0.0.1:8000")
    assert str(error.value) == (
        f"{PATH}:5: location /api/ proxies nothing: `return 301 https://$host$request_uri` ({PATH}:5) answers every "
        "request itself, so there is no backend for a WebSocket and a WebSocket location there would open a path the "
        "site does not serve; nothing was changed. Set before to the location that proxies your API (for an HTTP to "
        "HTTPS redirect, that of the HTTPS server, chosen with server_name)."
    )


def test_listen_that_no_server_has_lists_the_listens() -> None:
    with pytest.raises(ServerSelectionError) as error:
        plan(REDIRECT_AND_HTTPS, listen="127.0.0.1:443")
    assert str(error.value) == (
        f"{PATH}: no server block listens on 127.0.0.1:443. The file has: "
        f"server app.example.com (listen 80, [::]:80) at {PATH}:1; "
        f"server app.example.com (listen 443 ssl, [::]:443 ssl) at {PATH}:7. "
        "Set listen to one of their listen values."
    )
    with pytest.raises(ServerSelectionError, match=re.escape("no server block listens on 8080 ssl")):
        plan(API_AND_CONSOLE, listen="8080 ssl")


def test_listen_and_server_name_together() -> None:
    with pytest.raises(ServerSelectionError, match=re.escape("no server block with server_name app.example.com")):
        plan(API_AND_CONSOLE, listen="9999", server_name="app.example.com")


def test_absent_still_removes_from_every_selected_server() -> None:
    both = plan(SAME_UPSTREAM).after[PATH].decode()
    result = plan(both, state="absent")
    assert result.after[PATH].decode() == SAME_UPSTREAM


def test_star_port_selects_the_ipv4_wildcard_only() -> None:
    text = SAME_UPSTREAM.replace("listen 443 ssl;\n", "listen [::]:443 ssl;\n")
    with pytest.raises(ServerSelectionError, match=re.escape("no server block listens on *:443")):
        plan(text, listen="*:443")


def test_a_server_without_listen_listens_on_port_80() -> None:
    text = SAME_UPSTREAM.replace("    listen 80;\n", "", 1)
    assert edited(plan(text, listen="*:80")) == [(1, ["80"])]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8443", ListenSelector("8443", 8443, None, frozenset())),
        ("*:80", ListenSelector("*:80", 80, "*", frozenset())),
        ("[::]:443", ListenSelector("[::]:443", 443, "[::]", frozenset())),
        ("443  ssl", ListenSelector("443 ssl", 443, None, frozenset({"ssl"}))),
        (
            "[::1]:8443 ssl default",
            ListenSelector("[::1]:8443 ssl default", 8443, "[::1]", frozenset({"ssl", "default_server"})),
        ),
    ],
)
def test_selector_parsing(value: str, expected: ListenSelector) -> None:
    assert parse_listen_selector(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "ssl", "api", "0", "65536", "443;", "443 ssl;", "443 ssl\n", "unix:/run/x.sock", "[::]", "443 {", "²"],
)
def test_bad_selectors_are_refused(value: str) -> None:
    with pytest.raises(InvalidOptionError, match="listen"):
        parse_listen_selector(value)


def test_bad_listen_is_refused_by_validation() -> None:
    with pytest.raises(InvalidOptionError, match=re.escape("listen must be a port or address:port")):
        plan(SAME_UPSTREAM, listen="443; return 200")


def test_no_server_that_proxies_is_refused_without_listen() -> None:
    only_redirect = REDIRECT_AND_HTTPS.split("}\n}\n", 1)[0] + "}\n}\n"
    with pytest.raises(AnchorNotFoundError) as error:
        plan(only_redirect, proxy_pass="http://127.0.0.1:8000")
    # one candidate: the planner's refusal names the directive and its fix
    assert str(error.value) == (
        f"{PATH}:5: location /api/ proxies nothing: `return 301 https://$host$request_uri` ({PATH}:5) answers every "
        "request itself, so there is no backend for a WebSocket and a WebSocket location there would open a path the "
        "site does not serve; nothing was changed. Set before to the location that proxies your API (for an HTTP to "
        "HTTPS redirect, that of the HTTPS server, chosen with server_name)."
    )


def test_an_existing_websocket_location_with_a_proxy_counts_as_proxied() -> None:
    spa = """server {
    listen 80;
    server_name app.example.com;
    location / { try_files $uri /index.html; }
    location ~ ^/api/mqtt/ws/ { proxy_pass http://127.0.0.1:8000; }
}
"""
    result = plan(spa)
    assert [(s.line, s.action) for s in result.servers] == [(1, "converged")]


def test_several_servers_none_of_which_proxies_are_refused_with_the_list() -> None:
    only_redirect = REDIRECT_AND_HTTPS.split("}\n}\n", 1)[0] + "}\n}\n"
    twice = only_redirect + only_redirect.replace("listen 80;", "listen 8080;").replace("[::]:80", "[::]:8080")
    with pytest.raises(AnchorNotFoundError) as error:
        plan(twice, proxy_pass="http://127.0.0.1:8000")
    message = str(error.value)
    assert message.startswith(f"{PATH}: no selected server block passes /api/ to a backend: server app.example.com")
    assert message.count("answers before any proxy") == 2
    assert message.endswith(
        "Set before to the location that proxies your API, or listen to the server block to edit (with proxy_pass)."
    )
