"""The one table of what a WebSocket location needs, and the cases where the planner's copy and the
diagnosis' copy of it used to disagree."""

from __future__ import annotations

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load, load_files
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.checks import routing_check
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import route_info
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.websocket import (
    REQUIREMENTS,
    WebSocketDirectives,
    breaking_phrases,
    fix_lines,
    gaps,
    variable_name,
)

PATH = "/etc/nginx/sites-enabled/site"
MAIN = "/etc/nginx/nginx.conf"
WS_URI = "/api/mqtt/ws/hints/s1"
MAIN_TEXT = "events {}\nhttp {\n    include /etc/nginx/sites-enabled/*;\n}\n"


def site_with(map_variable: str, *location_lines: str) -> str:
    body = "".join(f"        {line}\n" for line in location_lines)
    return (
        f"map $http_upgrade ${map_variable} {{\n    default upgrade;\n    '' close;\n}}\n"
        "server {\n    listen 80;\n    server_name app.test;\n"
        f"    location ~ ^/api/mqtt/ws/ {{\n{body}    }}\n}}\n"
    )


def routing_of(site: str):
    config = load_files({MAIN: MAIN_TEXT.encode(), PATH: site.encode()}, MAIN)
    info = route_info(config, "app.test", WS_URI)
    return info, routing_check(info)


def test_the_table_lists_each_requirement_once_and_only_the_version_spares_some_handshakes() -> None:
    assert [r.name for r in REQUIREMENTS] == ["proxy_pass", "proxy_http_version", "upgrade", "connection"]
    assert [r.name for r in REQUIREMENTS if not r.breaks_every_handshake] == ["proxy_http_version"]


def test_everything_missing_gives_every_gap_phrase_and_fix_line() -> None:
    nothing = WebSocketDirectives(None, None, None, None, ())
    assert gaps(nothing, None) == [
        "proxy_pass",
        "proxy_http_version 1.1",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_set_header Connection $connection_upgrade",
    ]
    assert breaking_phrases(nothing) == ["no proxy_pass", "no Upgrade header", "no Connection header"]
    assert fix_lines(nothing) == [
        "`proxy_pass`",
        "`proxy_http_version 1.1;`",
        "`proxy_set_header Upgrade $http_upgrade;`",
        "`proxy_set_header Connection $connection_upgrade;` (and the map: agaii.nginx.upgrade_map)",
    ]


def test_variable_names_are_read_like_nginx() -> None:
    assert [variable_name(v) for v in ("$http_upgrade", "$HTTP_Upgrade", "${http_upgrade}", "upgrade", None)] == [
        "http_upgrade",
        "http_upgrade",
        "http_upgrade",
        None,
        None,
    ]
    assert variable_name("$http_upgrade$x") is None


def test_upper_case_variable_names_satisfy_the_planner_and_the_diagnosis() -> None:
    """Disagreement: the planner's converge accepted `$HTTP_UPGRADE` and `$Connection_Upgrade` (nginx
    compares variable names case-insensitively), then its own websocket_gaps refused the same location
    ("still lacks"), and the diagnosis called it broken."""
    site = site_with(
        "connection_upgrade",
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $HTTP_UPGRADE;",
        "proxy_set_header Connection $Connection_Upgrade;",
        "proxy_read_timeout 3600s;",
        "proxy_send_timeout 3600s;",
    )
    result = plan_websocket(load(PATH, site.encode()), PATH, Settings())
    assert (result.changed, result.servers[0].action) == (False, "unchanged")
    info, check = routing_of(site)
    assert info.websocket is not None and (info.websocket.gaps, info.websocket.map_variable) == (
        [],
        "connection_upgrade",
    )
    assert check.status == "ok"


def test_the_connection_fix_names_the_upgrade_map_that_exists() -> None:
    """Disagreement: with `map $http_upgrade $proxy_connection` loaded, the planner adds
    `Connection $proxy_connection`, while the diagnosis told to add `$connection_upgrade` and a second map."""
    site = site_with(
        "proxy_connection",
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
    )
    planned = plan_websocket(load(PATH, site.encode()), PATH, Settings())
    assert b"proxy_set_header Connection $proxy_connection;" in planned.after[PATH]
    info, check = routing_of(site)
    assert info.websocket is not None and info.websocket.gaps == ["proxy_set_header Connection $proxy_connection"]
    assert check.fix == (
        f"Add `proxy_set_header Connection $proxy_connection;` to `location ~ ^/api/mqtt/ws/` at {PATH}:8 "
        "(agaii.nginx.ws_location converges it in place)."
    )


def test_the_fix_adds_proxy_http_version_like_the_planner() -> None:
    """Disagreement: the planner adds `proxy_http_version 1.1` with the missing Upgrade header; the
    diagnosis' fix left it out, so the next handshake met a 505 from RFC-strict backends."""
    site = site_with(
        "connection_upgrade",
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_set_header Connection $connection_upgrade;",
    )
    planned = plan_websocket(load(PATH, site.encode()), PATH, Settings())
    assert b"proxy_http_version 1.1;" in planned.after[PATH]
    _info, check = routing_of(site)
    assert (
        check.message == f"`location ~ ^/api/mqtt/ws/` at {PATH}:8 takes the WebSocket path and has no Upgrade header"
    )
    assert check.fix == (
        "Add `proxy_http_version 1.1;` and `proxy_set_header Upgrade $http_upgrade;` to "
        f"`location ~ ^/api/mqtt/ws/` at {PATH}:8 (agaii.nginx.ws_location converges it in place)."
    )


def test_a_braced_upgrade_variable_is_the_upgrade_header() -> None:
    """`${http_upgrade}` is the same variable for nginx; the diagnosis called it "instead of $http_upgrade"."""
    site = site_with(
        "connection_upgrade",
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade ${http_upgrade};",
        "proxy_set_header Connection $connection_upgrade;",
    )
    info, check = routing_of(site)
    assert (check.status, info.websocket.gaps if info.websocket else None) == ("ok", [])


def test_an_empty_connection_header_is_named_as_nginx_sends_it() -> None:
    """`proxy_set_header Connection "";` (for keepalive upstreams) sends no Connection header at all; the
    verdict used to read "has Connection , which no `map $http_upgrade` defines"."""
    site = site_with(
        "connection_upgrade",
        "proxy_pass http://127.0.0.1:8000;",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        'proxy_set_header Connection "";',
    )
    info, check = routing_of(site)
    assert info.websocket is not None and info.websocket.gaps == ["proxy_set_header Connection $connection_upgrade"]
    assert check.message == (
        f"`location ~ ^/api/mqtt/ws/` at {PATH}:8 takes the WebSocket path and has "
        'Connection "" (nginx sends no Connection header)'
    )
