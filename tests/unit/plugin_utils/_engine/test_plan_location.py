"""Planner decisions and refusals (the golden files hold the successful edits)."""

from __future__ import annotations

import re

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    AnchorNotFoundError,
    CannotWinError,
    NginxConfigError,
    ServerSelectionError,
    UnsupportedConfigError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket, split_proxy_pass
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings

PATH = "/etc/nginx/sites-enabled/site"


def plan(text: str, **settings: object):
    return plan_websocket(load(PATH, text.encode()), PATH, Settings(**settings))


TWO_SITES = """server {
    listen 80;
    server_name a.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
server {
    listen 80;
    server_name b.example.com;
    location /api/ { proxy_pass http://127.0.0.1:9000; }
}
"""


def test_two_sites_without_server_name_is_ambiguous_and_lists_candidates() -> None:
    with pytest.raises(ServerSelectionError) as error:
        plan(TWO_SITES)
    message = str(error.value)
    assert "several server blocks with different names" in message
    assert f"server a.example.com (listen 80) at {PATH}:1" in message
    assert f"server b.example.com (listen 80) at {PATH}:6" in message


def test_server_name_picks_one_and_unknown_name_lists_what_exists() -> None:
    result = plan(TWO_SITES, server_name="b.example.com")
    assert [s.line for s in result.servers] == [6]
    with pytest.raises(ServerSelectionError, match=re.escape("no server block answers to server_name 'c.example.com'")):
        plan(TWO_SITES, server_name="c.example.com")


def test_missing_anchor_says_what_to_set() -> None:
    with pytest.raises(AnchorNotFoundError, match="no selected server block has a location for '/api/'"):
        plan("server {\n    listen 80;\n    location /static/ { root /srv; }\n}\n")


def test_anchor_found_through_routing_when_no_location_has_that_path() -> None:
    result = plan("server {\n    listen 80;\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n")
    assert result.servers[0].action == "inserted"
    assert result.servers[0].route_after["location"] == f"location ~ ^/api/mqtt/ws/ at {PATH}:4"


def test_regex_mode_refuses_when_caret_tilde_prefix_wins() -> None:
    site = "server {\n    listen 80;\n    location ^~ /api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    with pytest.raises(CannotWinError) as error:
        plan(site, match="regex")
    assert "^~ /api/" in str(error.value) and "^~ stops the regex search" in str(error.value)
    assert "match=auto or match=prefix" in str(error.value)
    assert plan(site).servers[0].form == "prefix"


def test_regex_mode_refuses_a_proxy_pass_uri_it_cannot_carry() -> None:
    site = "server {\n    listen 80;\n    location /api/ {\n        proxy_pass http://127.0.0.1:8000/;\n    }\n}\n"
    with pytest.raises(CannotWinError, match="has a URI part that a regex location cannot carry"):
        plan(site, match="regex")


def test_prefix_form_needs_a_literal_regex() -> None:
    site = "server {\n    listen 80;\n    location ^~ /api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    with pytest.raises(CannotWinError, match="is not a plain prefix"):
        plan(site, location="^/api/mqtt/ws/.+$")


def test_an_exact_location_for_the_websocket_uri_cannot_be_beaten() -> None:
    site = (
        "server {\n    listen 80;\n    location = /api/mqtt/ws/agaii-probe/session-874q8t { return 200; }\n"
        "    location /api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    )
    with pytest.raises(CannotWinError) as error:
        plan(site)
    assert str(error.value) == (
        f"{PATH}:1: after the edit nginx would still send /api/mqtt/ws/agaii-probe/session-874q8t to "
        f"location = /api/mqtt/ws/agaii-probe/session-874q8t at {PATH}:3 (exact match location = "
        f"/api/mqtt/ws/agaii-probe/session-874q8t at {PATH}:3; nothing else is checked). "
        "Remove or change the location that takes the WebSocket path."
    )


def test_existing_shadowed_regex_is_reported_not_duplicated() -> None:
    site = (
        "server {\n    listen 80;\n    location ~ ^/api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n"
        "    location ~ ^/api/mqtt/ws/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    )
    with pytest.raises(CannotWinError) as error:
        plan(site)
    assert "location ~ ^/api/mqtt/ws/ exists but nginx sends" in str(error.value)
    assert "first matching regex in file order is location ~ ^/api/" in str(error.value)


def test_plain_prefix_ws_location_shadowed_by_a_regex_becomes_caret_tilde() -> None:
    site = (
        "server {\n    listen 80;\n    location ~ ^/api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n"
        "    location /api/mqtt/ws/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    )
    result = plan(site)
    assert b"    location ^~ /api/mqtt/ws/ {\n" in result.after[PATH]
    assert result.servers[0].action == "converged"


def test_map_variable_must_be_defined() -> None:
    with pytest.raises(NginxConfigError, match="map_variable 'upgrade_var' is not defined"):
        plan(
            "server { listen 80; location /api/ { proxy_pass http://127.0.0.1:8000; } }\n",
            map_variable="upgrade_var",
        )


def test_literal_connection_upgrade_converges_to_the_map_once_it_exists() -> None:
    first = plan(
        "server {\n    listen 80;\n    location /api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    )
    assert 'proxy_set_header Connection "upgrade";' in first.after[PATH].decode()
    assert any("no `map $http_upgrade $var` is loaded" in w for w in first.warnings)
    with_map = b"map $http_upgrade $connection_upgrade {\n    default upgrade;\n    '' close;\n}\n" + first.after[PATH]
    second = plan_websocket(load(PATH, with_map), PATH, Settings())
    assert second.servers[0].action == "converged"
    assert second.after[PATH] == with_map.replace(b'Connection "upgrade";', b"Connection $connection_upgrade;")


def test_file_not_loaded_is_refused() -> None:
    config = load(PATH, b"server { listen 80; }\n")
    with pytest.raises(UnsupportedConfigError, match="not part of the loaded nginx configuration"):
        plan_websocket(config, "/elsewhere", Settings())


def test_route_before_and_after_are_reported() -> None:
    result = plan(
        "server {\n    listen 80;\n    location /api/ {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    )
    outcome = result.servers[0]
    assert outcome.route_before == {
        "location": f"location /api/ at {PATH}:3",
        "reason": f"longest matching prefix is location /api/ at {PATH}:3",
    }
    assert outcome.route_after["location"] == f"location ~ ^/api/mqtt/ws/ at {PATH}:4"
    assert result.sample_uri == "/api/mqtt/ws/agaii-probe/session-874q8t"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:8000", ("http://127.0.0.1:8000", None)),
        ("http://127.0.0.1:8000/", ("http://127.0.0.1:8000", "/")),
        ("http://backend/api/", ("http://backend", "/api/")),
        ("http://unix:/run/app.sock", ("http://unix:/run/app.sock", None)),
        ("http://unix:/run/app.sock:/api/", ("http://unix:/run/app.sock", "/api/")),
    ],
)
def test_split_proxy_pass(value: str, expected: tuple) -> None:
    assert split_proxy_pass(value) == expected


def test_prefix_form_without_a_derivable_proxy_pass_asks_for_proxy_pass() -> None:
    site = "server {\n    listen 80;\n    location /prod-api/ { proxy_pass http://127.0.0.1:8080/; }\n}\n"
    with pytest.raises(CannotWinError) as error:
        plan(site, before="/prod-api/")
    message = str(error.value)
    assert "no proxy_pass for /api/mqtt/ws/ can be derived from location /prod-api/" in message
    assert message.endswith("Set proxy_pass to the WebSocket backend.")
    assert plan(site, before="/prod-api/", proxy_pass="http://127.0.0.1:8080").servers[0].form == "regex"
