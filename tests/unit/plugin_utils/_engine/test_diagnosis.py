"""The diagnosis' pure functions: server selection like nginx, route info, and each layer's verdict."""

from __future__ import annotations

import re
from typing import Dict, List, Optional

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, load_files
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis import (
    BROKEN,
    OK,
    SKIPPED,
    UNKNOWN,
    Check,
    Listen,
    Probe,
    RouteInfo,
    backend_check,
    config_fix,
    direct_backend,
    handshake_check,
    nginx_check,
    normalize_uri,
    parse_listen,
    probe_from,
    process_from,
    relevant_log_lines,
    route_info,
    routing_check,
    select_server,
    time_seconds,
    timeout_check,
    verdict,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import ServerSelectionError

MAIN = "/etc/nginx/nginx.conf"
SITE = "/etc/nginx/sites-enabled/app"
MAP_FILE = "/etc/nginx/conf.d/map.conf"
MAIN_TEXT = """\
pid /run/nginx.pid;
error_log /var/log/nginx/error.log;
events {}
http {
    include /etc/nginx/conf.d/*.conf;
    include /etc/nginx/sites-enabled/*;
}
"""
MAP_TEXT = "map $http_upgrade $connection_upgrade {\n    default upgrade;\n    ''      close;\n}\n"
WS_URI = "/api/mqtt/ws/hints/s1"


def config(site: str, with_map: bool = True, extra: Optional[Dict[str, str]] = None) -> Config:
    files = {MAIN: MAIN_TEXT, SITE: site, **(extra or {})}
    if with_map:
        files[MAP_FILE] = MAP_TEXT
    return load_files({path: text.encode() for path, text in files.items()}, MAIN)


def at(line: int, path: str = SITE) -> str:
    return f"{path}:{line}"


# ------------------------------------------------------------------------------ parsers


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60", 60), ("300s", 300), ("5m", 300), ("1h 30m", 5400), ("1h30m", 5400), ("500ms", 0.5), ("1d", 86400)],
)
def test_time_seconds_reads_nginx_times(text: str, seconds: float) -> None:
    assert time_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "1.5s", "-3"])
def test_time_seconds_refuses_what_nginx_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="nginx time"):
        time_seconds(text)


def test_normalize_uri_like_nginx() -> None:
    assert normalize_uri("/api//mqtt/./ws/%68ints/x?token=1") == "/api/mqtt/ws/hints/x"
    assert normalize_uri("/api/mqtt/../mqtt/ws/") == "/api/mqtt/ws/"
    with pytest.raises(ValueError, match="climbs above the root"):
        normalize_uri("/../etc/passwd")
    with pytest.raises(ValueError, match="must start with '/'"):
        normalize_uri("api/x")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["80"], Listen("*", 80)),
        (["127.0.0.1:8080", "default_server"], Listen("127.0.0.1", 8080, default=True)),
        (["[::]:443", "ssl", "http2"], Listen("[::]", 443, ssl=True)),
        (["localhost:81"], Listen("127.0.0.1", 81)),
        (["0.0.0.0:80", "default"], Listen("*", 80, default=True)),
        (["example.com"], Listen("example.com", 80)),
        (["unix:/run/nginx.sock"], None),
    ],
)
def test_parse_listen(args: List[str], expected: Optional[Listen]) -> None:
    assert parse_listen(args) == expected


# --------------------------------------------------------------------- server selection

# The same servers were asked on a real nginx 1.22 (Host header -> body); the answers are the expectations.
SERVERS = """\
server { listen 127.0.0.1:8001; server_name first.test; return 200 first; }
server { listen 127.0.0.1:8001 default_server; server_name dflt.test; return 200 dflt; }
server { listen 127.0.0.1:8001; server_name ~^APP\\d+\\.test$; return 200 regexupper; }
server { listen 127.0.0.1:8001; server_name ~^app\\d+\\.test$; return 200 regex; }
server { listen 127.0.0.1:8001; server_name .example.test; return 200 dotwild; }
server { listen 127.0.0.1:8001; server_name *.a.example.test; return 200 starwild; }
server { listen 127.0.0.1:8001; server_name mail.*; return 200 tailwild; }
server { listen 8002; server_name wild.test; return 200 wild8002; }
server { listen 127.0.0.1:8002; server_name spec.test; return 200 spec8002; }
"""


def selected_line(host: str, port: int, address: Optional[str] = "127.0.0.1") -> Optional[int]:
    choice = select_server(config(SERVERS), host, port, address)
    return choice.server.line if choice.server else None


@pytest.mark.parametrize(
    ("host", "port", "line"),
    [
        ("first.test", 8001, 1),
        ("FIRST.TEST.", 8001, 1),  # lower-cased, trailing dot dropped
        ("other.test", 8001, 2),  # default_server, not the first server
        ("App1.test", 8001, 3),  # regex server names are caseless; the first regex wins
        ("example.test", 8001, 5),
        ("x.example.test", 8001, 5),
        ("b.a.example.test", 8001, 6),  # longest leading wildcard
        ("mail.foo.bar", 8001, 7),
        ("www.mail.x", 8001, 2),
        ("wild.test", 8002, 9),  # 127.0.0.1:8002 has its own listen: the wildcard's servers never see it
        ("spec.test", 8002, 9),
    ],
)
def test_select_server_follows_nginx(host: str, port: int, line: int) -> None:
    assert selected_line(host, port) == line


def test_select_server_reasons() -> None:
    choice = select_server(config(SERVERS), "other.test", 8001, "127.0.0.1")
    assert choice.reasons == [
        "7 server blocks listen on 127.0.0.1:8001",
        "no server_name matches other.test: the default server of 127.0.0.1:8001 answers, server dflt.test "
        f"(listen 127.0.0.1:8001 default_server) at {at(2)} (marked default_server)",
    ]
    exact = select_server(config(SERVERS), "first.test", 8001, "127.0.0.1")
    assert (
        exact.reasons[-1]
        == f"exact server_name first.test selects server first.test (listen 127.0.0.1:8001) at {at(1)}"
    )


def test_wildcard_address_answers_other_addresses_and_first_server_is_the_default() -> None:
    site = "server { listen 80; server_name a.test; }\nserver { listen 80; server_name b.test; }\n"
    choice = select_server(config(site), "zzz.test", 80, "10.0.0.5")
    assert choice.server is not None and choice.server.line == 1
    assert choice.reasons[-1].endswith("(the first server block that listens there)")


def test_port_is_inferred_or_asked_for() -> None:
    one_port = select_server(config("server { listen 8080; server_name a.test; }\n"), "a.test")
    assert one_port.reasons[0] == "port 8080: the only port nginx listens on"
    two = "server { listen 80; server_name a.test; }\nserver { listen 443 ssl; server_name b.test; }\n"
    named = select_server(config(two), "b.test")
    assert named.listen == Listen("*", 443, ssl=True)
    assert named.reasons[0] == "port 443: the only port with a server_name that matches b.test"
    both = "server { listen 80; listen 443 ssl; server_name a.test; }\n"
    with pytest.raises(ServerSelectionError, match=re.escape("a.test may arrive on port 80, 443. Set port")):
        select_server(config(both), "a.test")


def test_no_server_on_port_or_address_is_a_finding_not_an_error() -> None:
    choice = select_server(config("server { listen 127.0.0.1:80; }\n"), "a.test", 8080)
    assert (choice.server, choice.reasons) == (None, ["no server block listens on port 8080 (nginx listens on 80)"])
    elsewhere = select_server(config("server { listen 127.0.0.1:80; }\n"), "a.test", 80, "10.0.0.5")
    assert elsewhere.reasons == ["no server block listens on 10.0.0.5:80 (listening on port 80: 127.0.0.1:80)"]
    two = "server { listen 127.0.0.1:80; }\nserver { listen 10.0.0.5:80; }\n"
    with pytest.raises(ServerSelectionError, match="several addresses listen on port 80"):
        select_server(config(two), "a.test", 80)


def test_server_without_listen_listens_on_port_80() -> None:
    choice = select_server(config("server { server_name a.test; }\n"), "a.test")
    assert choice.listen == Listen("*", 80)


def test_pcre_only_server_name_makes_the_answer_unknown() -> None:
    site = "server { listen 80; server_name ~^(?<sub>\\w+)\\Kx$; }\nserver { listen 80; server_name b.test; }\n"
    choice = select_server(config(site), "zzz.test", 80)
    assert choice.server is None
    assert choice.unknown is not None and "a PCRE-only escape" in choice.unknown


# ------------------------------------------------------------------------------ route info

SHADOWED = """\
server {
    listen 80;
    server_name app.test;
    location ~ ^/api/ {
        proxy_pass http://127.0.0.1:8000;
    }
    location ~ ^/api/mqtt/ws/ {
        proxy_pass http://127.0.0.1:8000;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
    }
}
"""

NO_UPGRADE = """\
server {
    listen 80;
    server_name app.test;
    proxy_set_header Host $host;
    proxy_read_timeout 120s;
    location /api/ {
        proxy_pass http://127.0.0.1:8000;
    }
    location ~ ^/api/mqtt/ws/ {
        proxy_pass http://127.0.0.1:8000;
        proxy_http_version 1.1;
        proxy_set_header Connection $connection_upgrade;
    }
}
"""

COMPLETE = """\
upstream app {
    server 127.0.0.1:8000;
    server 127.0.0.1:8001 down;
    server unix:/run/app.sock;
}
server {
    listen 80;
    server_name app.test;
    error_log /var/log/nginx/app.error.log;
    location ^~ /api/mqtt/ws/ {
        proxy_pass http://app/ws/;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_read_timeout 1h;
    }
}
"""


def info_for(site: str, uri: str = WS_URI, with_map: bool = True) -> RouteInfo:
    return route_info(config(site, with_map), "app.test", uri)


def test_route_info_shadowed_regex() -> None:
    info = info_for(SHADOWED)
    data = info.as_dict()
    assert data["location"] == {"name": "location ~ ^/api/", "file": SITE, "line": 4}
    assert data["reasons"] == [
        "port 80: the only port nginx listens on",
        "1 server block listens on *:80",
        f"exact server_name app.test selects server app.test (listen 80) at {at(1)}",
        f"first matching regex in file order is location ~ ^/api/ at {at(4)}",
    ]
    assert data["shadowed"] == [f"location ~ ^/api/mqtt/ws/ at {at(7)}"]
    assert data["websocket"]["gaps"] == [
        "proxy_http_version 1.1",
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_set_header Connection $connection_upgrade",
    ]
    assert data["proxy_read_timeout"] == {"value": "60s", "seconds": 60.0, "at": "default"}
    assert data["backends"] == [
        {
            "address": "127.0.0.1:8000",
            "url": f"ws://127.0.0.1:8000{WS_URI}",
            "source": f"proxy_pass http://127.0.0.1:8000 at {at(5)}",
            "note": None,
        }
    ]
    assert (data["pid_file"], data["error_logs"]) == ("/run/nginx.pid", ["/var/log/nginx/error.log"])


def test_route_info_declaring_one_header_inherits_none() -> None:
    info = info_for(NO_UPGRADE)
    assert info.websocket is not None
    assert (info.websocket.upgrade, info.websocket.connection) == (None, "$connection_upgrade")
    assert (info.websocket.map_variable, info.websocket.map_at) == ("connection_upgrade", f"{MAP_FILE}:1")
    assert info.read_timeout is not None and (info.read_timeout.value, info.read_timeout.at) == ("120s", at(5))


def test_route_info_follows_upstream_and_rewrites_the_uri() -> None:
    info = info_for(COMPLETE, WS_URI + "?token=1")
    assert info.websocket is not None and info.websocket.ready
    assert [(b.address, b.url, b.note) for b in info.backends] == [
        ("127.0.0.1:8000", "ws://127.0.0.1:8000/ws/hints/s1?token=1", None),
        ("unix:/run/app.sock", None, "a unix socket, which the probe cannot open"),
    ]
    assert info.read_timeout is not None and info.read_timeout.seconds == 3600
    assert info.error_logs == ["/var/log/nginx/app.error.log", "/var/log/nginx/error.log"]


def test_route_info_cannot_follow_variables() -> None:
    site = "server { listen 80; location /api/ { set $up 127.0.0.1:8000; proxy_pass http://$up; } }\n"
    info = route_info(config(site), "app.test", WS_URI)
    assert info.backends == []
    assert info.backend_note == f"proxy_pass http://$up at {at(1)} uses variables; set the backend to probe it directly"
    given = direct_backend("10.0.0.7:9000", WS_URI)
    assert (given.address, given.url) == ("10.0.0.7:9000", f"ws://10.0.0.7:9000{WS_URI}")


# ------------------------------------------------------------------------------- probes, logs


def test_probe_from_ws_probe_results() -> None:
    refused = probe_from(
        "ws://127.0.0.1:8000/x",
        {"failed": True, "status": 0, "msg": "expected HTTP 101 from ws://127.0.0.1:8000/x, got no HTTP response "
         "(connecting to 127.0.0.1:8000: connection refused)",
         "error": "connecting to 127.0.0.1:8000: connection refused"},
    )  # fmt: skip
    assert refused.connect_failed and refused.connect_error() == "connection refused"
    strict = probe_from("ws://h/x", {"status": 505, "status_line": "HTTP/1.1 505 HTTP Version Not Supported"})
    assert (strict.connect_failed, strict.outcome()) == (False, "HTTP/1.1 505 HTTP Version Not Supported")


LOG = """\
2026/01/01 10:00:00 [notice] 1#1: signal process started
2026/01/01 10:00:01 [error] 7#7: *1 connect() failed (111: Connection refused) while connecting to upstream, \
client: 127.0.0.1, server: a, request: "GET /api/x HTTP/1.1", upstream: "http://127.0.0.1:9999/api/x"
2026/01/01 10:00:02 [error] 7#7: *2 connect() failed (111: Connection refused) while connecting to upstream, \
client: 127.0.0.1, server: app.test, request: "GET /api/mqtt/ws/hints/s1 HTTP/1.1", upstream: "http://127.0.0.1:8000/api/mqtt/ws/hints/s1"
2026/01/01 10:00:03 [error] 7#7: *3 upstream timed out (110: Connection timed out) while reading response header
"""


def test_relevant_log_lines_prefer_the_backend() -> None:
    lines = relevant_log_lines(LOG, ["127.0.0.1:8000"])
    assert len(lines) == 1 and lines[0].startswith("2026/01/01 10:00:02 [error] 7#7: *2 connect() failed")
    assert len(relevant_log_lines(LOG)) == 3
    assert relevant_log_lines(LOG, limit=1) == [LOG.splitlines()[-1]]


# ------------------------------------------------------------------------------ layer checks


def test_process_from_pid_file() -> None:
    assert process_from("/run/nginx.pid", None, None).describe() == "nginx is not running (no pid file /run/nginx.pid)"
    assert process_from("/p", "12\n", None).problem == "pid 12 from /p is not running"
    assert process_from("/p", "12", "python3\n").problem == "pid 12 from /p is 'python3', not nginx"
    assert process_from("/p", "x", None).problem == "pid file /p holds 'x', not a pid"
    assert process_from("/p", "", None).problem == "pid file /p is empty"
    assert process_from("/p", "12\n", "nginx\n").describe() == "nginx runs (pid 12 from /p)"


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
