"""What the configuration says: time values, URIs, listen, server selection like nginx, route info."""

from __future__ import annotations

import re
from typing import List, Optional

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import (
    Listen,
    direct_backend,
    normalize_uri,
    parse_listen,
    route_info,
    select_server,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import ServerSelectionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import time_seconds
from tests.unit.plugin_utils._engine.diagnosis.sample import (
    COMPLETE,
    MAP_FILE,
    NO_UPGRADE,
    SHADOWED,
    SITE,
    WS_URI,
    at,
    config,
    info_for,
)

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
