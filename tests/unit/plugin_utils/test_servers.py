"""The one server_name matcher (ported from nginx 1.22), used at edit time and at route time."""

from __future__ import annotations

from typing import Optional

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._diagnose import route_info, select_server
from ansible_collections.agaii.nginx.plugins.plugin_utils._model import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._planner import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._servers import (
    InvalidHost,
    candidates,
    name_matches,
    validate_host,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._target import Settings

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
