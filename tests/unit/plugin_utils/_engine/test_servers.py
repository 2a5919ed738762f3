"""The one server_name matcher (ported from nginx 1.22), used at edit time and at route time."""

from __future__ import annotations

from typing import Optional

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.checks import BROKEN, routing_check
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import route_info, select_server
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import CannotWinError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import (
    InvalidHost,
    candidates,
    name_matches,
    validate_host,
)

PATH = "/etc/nginx/sites-enabled/site"


def site(text: str):
    return load(PATH, text.encode())


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:8080", "example.com"),
        ("example.com:8080", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("a.b", "a.b"),
        ("ÄB.test", "Äb.test"),  # ngx_strlow lowers ASCII only
    ],
)
def test_validate_host_normalises_like_nginx(host: str, name: str) -> None:
    assert validate_host(host) == name


@pytest.mark.parametrize("host", ["", ".", "a..b", "..", ":80", "a/b", "a b", "a\tb", "x:..", ".:8080"])
def test_validate_host_refuses_what_nginx_answers_400(host: str) -> None:
    with pytest.raises(InvalidHost):
        validate_host(host)


@pytest.mark.parametrize(
    ("pattern", "host", "expected"),
    [
        ("example.com", "EXAMPLE.com.", True),
        (".example.com", "example.com", True),
        (".example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", True),
        ("www.*", "www.x.y", True),
        ("www.*", "www", False),
        ("example.com.", "example.com", False),  # stored with its dot; the Host loses it
        ("~^(?<sub>.+)\\.example\\.com$", "api.example.com", True),
        ("~^API\\.", "api.test", True),  # an upper-case letter makes the regex caseless
        ("~^\\Kx", "x", False),  # PCRE-only: not a match at edit time
    ],
)
def test_name_matches(pattern: str, host: str, expected: bool) -> None:
    assert name_matches(pattern, host) is expected


CONFLICTS = """\
server { listen 80; server_name first.test; }
server { listen 80; server_name .example.com; }
server { listen 80; server_name example.com *.other.test; }
server { listen 80; server_name *.example.com .other.test; }
server { listen 80; }
server { listen 80; server_name ""; }
server { listen 80 default_server; server_name dflt.test; }
"""


def chosen_line(text: str, host: Optional[str], hostname: Optional[str] = None) -> Optional[int]:
    choice = select_server(site(text), host, 80, hostname=hostname)
    return choice.server.line if choice.server else None


@pytest.mark.parametrize(
    ("host", "line"),
    [
        ("example.com", 2),  # `.example.com` came first: the later exact name is ignored
        ("x.example.com", 2),  # `*.example.com` conflicts with `.example.com`: ignored
        # `.other.test` claims the exact name, then its wildcard half loses to line 3: nobody serves it
        ("other.test", 7),
        ("x.other.test", 3),
        (None, 5),  # no Host: the name "", which the first server without server_name carries
        ("nobody.test", 7),
    ],
)
def test_conflicting_names_keep_the_first_server(host: Optional[str], line: int) -> None:
    assert chosen_line(CONFLICTS, host) == line


def test_conflict_is_reported_with_nginx_words() -> None:
    choice = select_server(site(CONFLICTS), "example.com", 80)
    assert choice.reasons[1] == (
        'conflicting server name "example.com" on *:80, ignored (in server example.com *.other.test '
        f"(listen 80) at {PATH}:3; an earlier server block on that address:port claims it)"
    )


def test_invalid_host_is_a_400_not_a_server() -> None:
    choice = select_server(site(CONFLICTS), "a..b", 80)
    assert (choice.server, choice.status) == (None, 400)
    assert choice.reasons == [
        "nginx answers 400 (client sent invalid host header): the Host 'a..b' has an empty label ('..')"
    ]


def test_hostname_name_needs_the_machine_name() -> None:
    text = "server { listen 80; server_name a.test; }\nserver { listen 80; server_name $hostname; }\n"
    assert chosen_line(text, "web1", hostname="WEB1") == 2
    unknown = select_server(site(text), "web1", 80)
    assert unknown.server is None
    assert unknown.unknown == f"server_name $hostname at {PATH}:2 depends on the nginx host's name, which was not given"


NAMED_CAPTURE = """\
server {
    listen 80;
    server_name www.example.com;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
}
server {
    listen 80;
    server_name ~^(?<sub>.+)\\.example\\.com$;
    location /api/ { proxy_pass http://127.0.0.1:9000; }
}
"""


def test_edit_time_and_route_time_pick_the_same_named_capture_server() -> None:
    config = site(NAMED_CAPTURE)
    assert [s.line for s in candidates(config, PATH, "app.example.com")] == [6]
    plan = plan_websocket(config, PATH, Settings(server_name="app.example.com"))
    assert [s.line for s in plan.servers] == [6]
    info = route_info(config, "app.example.com", "/api/mqtt/ws", 80)
    assert info.choice.server is not None and info.choice.server.line == 6
    assert info.reasons[1] == (
        "first matching regex server_name ~^(?<sub>.+)\\.example\\.com$ (in load order) selects server "
        f"~^(?<sub>.+)\\.example\\.com$ (listen 80) at {PATH}:6"
    )


REDIRECTING = """\
server {
    listen 80;
    server_name app.test;
    location /api/ { proxy_pass http://127.0.0.1:8000; }
    location /ws/ { proxy_pass http://127.0.0.1:9000; }
}
"""


def test_route_info_and_the_routing_check_name_the_automatic_redirect() -> None:
    info = route_info(site(REDIRECTING), "app.test", "/ws?token=1", 80)
    assert (info.status, info.redirect, info.as_dict()["status"]) == (301, "/ws/", 301)
    check = routing_check(info)
    assert check.status == BROKEN
    assert check.message == (
        f"nginx answers /ws with a 301 redirect to /ws/: `location /ws/` at {PATH}:5 ends with / and passes "
        "requests on (its automatic redirect); a WebSocket client does not follow redirects"
    )
    assert check.fix.startswith(
        "Connect the WebSocket clients to /ws/ (the URL with the slash), or give /ws a location"
    )


@pytest.mark.parametrize(
    ("host", "uri", "reason"),
    [
        ("app.test", "/ws%zz", "nginx answers 400 to the request line: '/ws%zz' has a malformed %-escape"),
        ("app.test", "/ws%00", "nginx answers 400 to the request line: '/ws%00' encodes a NUL byte"),
        ("app.test", "/../ws", "nginx answers 400 to the request line: '/../ws' climbs above the root"),
        ("app..test", "/ws/", "nginx answers 400 (client sent invalid host header): the Host 'app..test' has"),
    ],
)
def test_route_info_says_when_nginx_answers_400(host: str, uri: str, reason: str) -> None:
    info = route_info(site(REDIRECTING), host, uri, 80)
    assert info.status == 400 and info.location is None
    assert info.reasons[-1].startswith(reason)
    check = routing_check(info)
    assert (check.status, check.message) == (
        BROKEN,
        f"nginx answers 400 Bad Request before any location: {info.reasons[-1]}",
    )


def test_merge_slashes_off_comes_from_the_default_server_of_the_address() -> None:
    text = (
        "server { listen 80; server_name a.test; merge_slashes off; location /x/ { } location / { } }\n"
        "server { listen 80; server_name b.test; location /x/ { } location / { } }\n"
    )
    for host in ("a.test", "b.test"):
        info = route_info(site(text), host, "//x/", 80)
        assert info.path == "//x/" and info.location is not None and info.location.args == ["/"]


def test_ws_location_refuses_a_path_that_nginx_redirects() -> None:
    with pytest.raises(CannotWinError) as error:
        plan_websocket(site(REDIRECTING), PATH, Settings(location="^/ws$"))
    message = str(error.value)
    assert message.startswith(f"{PATH}:1: nginx answers /ws with a 301 redirect to /ws/: location /ws/ at {PATH}:")
    assert "a WebSocket client does not follow redirects" in message
    assert "Connect the WebSocket clients to /ws/ (the URL with the slash)" in message
