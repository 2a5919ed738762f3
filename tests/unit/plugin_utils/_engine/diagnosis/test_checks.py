"""Each layer's verdict, its fix text, and the verdict that stops at the first broken layer."""

from __future__ import annotations

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.checks import (
    BROKEN,
    OK,
    SKIPPED,
    UNKNOWN,
    Check,
    backend_check,
    config_fix,
    handshake_check,
    nginx_check,
    routing_check,
    timeout_check,
    verdict,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.observations import (
    Probe,
    process_from,
)
from tests.unit.plugin_utils._engine.diagnosis.sample import (
    NO_UPGRADE,
    SHADOWED,
    WS_URI,
    at,
    info_for,
)


def test_config_fix_names_the_tool() -> None:
    assert config_fix('unknown "connection_upgrade" variable').startswith(
        "Add the map with agaii.nginx.upgrade_map (variable: connection_upgrade)"
    )
    assert config_fix('unknown "backend_url" variable') == (
        "Define $backend_url (a map in http{}, or set) or correct the variable name."
    )
    assert config_fix('"proxy_http_version" directive is duplicate in /x:3') == (
        "Keep exactly one `proxy_http_version 1.1;` in that location."
    )
    assert (
        config_fix("something else") == "Fix the configuration until `nginx -t` passes (nginx names the file and line)."
    )


def test_nginx_check() -> None:
    running = process_from("/p", "12", "nginx")
    invalid = nginx_check(running, 1, 'unknown "connection_upgrade" variable', "/c", "nginx")
    assert (invalid.status, invalid.message) == (
        BROKEN,
        'nginx configuration is invalid: unknown "connection_upgrade" variable',
    )
    assert invalid.evidence == [
        '`nginx -t -c /c` fails: unknown "connection_upgrade" variable',
        "nginx runs (pid 12 from /p) with its last good configuration; a reload or restart fails until this is fixed",
    ]
    stopped = nginx_check(process_from("/p", None, None), 0, None, "/c", "nginx")
    assert (stopped.status, stopped.message) == (BROKEN, "nginx is not running (no pid file /p)")
    assert stopped.fix == "Start nginx: `systemctl start nginx`, or `nginx -c /c` where no service manager runs."
    assert nginx_check(running, 0, None, "/c", "nginx").status == OK


def refused(url: str) -> Probe:
    address = url.split("/")[2]
    return Probe(url, 0, error=f"connecting to {address}: connection refused")


def test_backend_check_down_refusing_and_up() -> None:
    info = info_for(SHADOWED)
    url = info.backends[0].url
    assert url is not None
    down = backend_check(info, [refused(url)], ["2026/01/01 [error] connect() failed"])
    assert (down.status, down.message) == (BROKEN, "backend down on 127.0.0.1:8000")
    assert down.evidence == [
        "TCP connect to 127.0.0.1:8000 from the nginx host: connection refused",
        f"nginx proxies to it: proxy_pass http://127.0.0.1:8000 at {at(5)}",
        "error.log: 2026/01/01 [error] connect() failed",
    ]
    assert down.fix == (
        "Start the application so that it listens on 127.0.0.1:8000, "
        f"or correct proxy_pass http://127.0.0.1:8000 at {at(5)}."
    )
    no_route = backend_check(info, [Probe(url, 403, "HTTP/1.1 403 Forbidden")], [])
    assert no_route.message == (
        f"the backend at 127.0.0.1:8000 refuses the WebSocket handshake for {WS_URI}: HTTP/1.1 403 Forbidden"
    )
    assert backend_check(info, [Probe(url, 101)], []).message == "the backend at 127.0.0.1:8000 upgrades directly (101)"
    skipped = backend_check(info_for("server { listen 80; location / { root /srv; } }\n"), [], [])
    assert (skipped.status, skipped.message) == (
        SKIPPED,
        "backend not probed: no location for this path has a proxy_pass",
    )


def test_routing_check_shadowed() -> None:
    check = routing_check(info_for(SHADOWED))
    assert (check.status, check.message) == (
        BROKEN,
        f"`location ~ ^/api/` at {at(4)} takes the WebSocket path ahead of `location ~ ^/api/mqtt/ws/` at {at(7)} "
        "and has no Upgrade header and no Connection header",
    )
    assert check.fix == (
        "Move `location ~ ^/api/mqtt/ws/` above `location ~ ^/api/`: regexes are tried in file order "
        "(agaii.nginx.ws_location places it there)."
    )


def test_routing_check_caret_prefix_blocks_every_regex() -> None:
    site = SHADOWED.replace("location ~ ^/api/ {", "location ^~ /api/ {")
    check = routing_check(info_for(site))
    assert check.fix is not None and check.fix.startswith(
        f"`location ^~ /api/` at {at(4)} is ^~, so nginx checks no regex"
    )


def test_routing_check_missing_upgrade_header() -> None:
    check = routing_check(info_for(NO_UPGRADE))
    assert (check.status, check.message) == (
        BROKEN,
        f"`location ~ ^/api/mqtt/ws/` at {at(9)} takes the WebSocket path and has no Upgrade header",
    )
    assert check.fix == (
        f"Add `proxy_set_header Upgrade $http_upgrade;` to `location ~ ^/api/mqtt/ws/` at {at(9)} "
        "(agaii.nginx.ws_location converges it in place)."
    )


def test_routing_check_incident_and_other_findings() -> None:
    incident = "server { listen 80; location /api/ { proxy_pass http://127.0.0.1:8000; } }\n"
    check = routing_check(info_for(incident))
    assert check.message == (
        f"`location /api/` at {at(1)} takes the WebSocket path and has no Upgrade header and no Connection header"
    )
    assert check.fix is not None and check.fix.startswith("Add a WebSocket location that nginx picks")
    static = routing_check(info_for("server { listen 80; location /static/ { root /srv; } }\n"))
    assert static.message == f"no location of server (no server_name) (listen 80) at {at(1)} matches {WS_URI}: " + (
        "nginx answers it as a static file"
    )
    no_map = routing_check(info_for(SHADOWED.replace("~ ^/api/ {", "~ ^/nothing/ {"), with_map=False))
    assert no_map.message.endswith("has Connection $connection_upgrade, which no `map $http_upgrade` defines")


def test_routing_check_without_http_version_is_ok_with_a_warning() -> None:
    site = SHADOWED.replace("~ ^/api/ {", "~ ^/nothing/ {").replace("proxy_http_version 1.1;", "")
    check = routing_check(info_for(site))
    assert check.status == OK
    assert check.warnings == [
        f"`location ~ ^/api/mqtt/ws/` at {at(7)} speaks HTTP/1.0 to the backend (no `proxy_http_version 1.1`): "
        "RFC-strict backends answer 505"
    ]


def test_routing_check_unknown_regex() -> None:
    site = "server { listen 80; location ~ ^/api/\\K { proxy_pass http://127.0.0.1:8000; } }\n"
    check = routing_check(info_for(site))
    assert check.status == UNKNOWN and "a PCRE-only escape" in check.message


def test_handshake_check() -> None:
    site = SHADOWED.replace("~ ^/api/ {", "~ ^/nothing/ {").replace("proxy_http_version 1.1;", "")
    info = info_for(site)
    url = f"ws://127.0.0.1:80{WS_URI}"
    assert handshake_check(info, Probe(url, 101), []).status == OK
    strict = handshake_check(info, Probe(url, 505, "HTTP/1.1 505 HTTP Version Not Supported"), [])
    assert (
        strict.message
        == f"505 from the backend: `proxy_http_version 1.1` missing in `location ~ ^/api/mqtt/ws/` at {at(7)}"
    )
    redirect = handshake_check(info, Probe(url, 301, "HTTP/1.1 301 Moved", headers=[["Location", "https://a/"]]), [])
    assert redirect.message == "the handshake through nginx gets HTTP/1.1 301 Moved instead of 101 Switching Protocols"
    assert redirect.fix == (
        "nginx redirects the WebSocket path (Location: https://a/): "
        "probe the final URL, or exempt the path from the redirect."
    )
    closed = handshake_check(info, refused(url), [])
    assert closed.message == "nginx does not answer at 127.0.0.1:80: connection refused"


def test_timeout_check() -> None:
    site = SHADOWED.replace("~ ^/api/ {", "~ ^/nothing/ {")
    info = info_for(site)
    short = timeout_check(info, 300)
    assert (short.status, short.message) == (
        BROKEN,
        f"proxy_read_timeout 60s (nginx's default) of `location ~ ^/api/mqtt/ws/` at {at(7)} is shorter than the "
        "application's 300s of silence: nginx closes the idle WebSocket after 60s",
    )
    assert timeout_check(info, 60).message.split(" of `")[1].split(" the application")[0].endswith("is not longer than")
    assert timeout_check(info, 30).status == OK
    assert timeout_check(info, 0).status == SKIPPED


def test_verdict_stops_at_the_first_broken_layer() -> None:
    checks = [
        Check("nginx", OK, "nginx runs"),
        Check("backend", BROKEN, "backend down on 127.0.0.1:8000", ["TCP: refused", ""], "Start it."),
    ]
    assert verdict(checks, "works") == {
        "status": "broken",
        "layer": "backend",
        "message": "backend down on 127.0.0.1:8000",
        "evidence": ["TCP: refused"],
        "fix": "Start it.",
        "warnings": [],
        "checks": [
            {"layer": "nginx", "status": "ok", "message": "nginx runs"},
            {"layer": "backend", "status": "broken", "message": "backend down on 127.0.0.1:8000"},
        ],
    }
    healthy = verdict([Check("routing", UNKNOWN, "cannot tell"), Check("handshake", OK, "101", warnings=["w"])], "ok")
    assert (healthy["status"], healthy["layer"], healthy["message"]) == ("healthy", "none", "ok")
    assert healthy["warnings"] == ["w", "cannot tell"]
