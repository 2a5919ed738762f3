"""route_info's ``listen`` option: the same selector as ws_location, as the port and address nginx picks by."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

from ansible_collections.agaii.nginx.plugins.action.route_info import ARGUMENT_SPEC, listen_as_port_and_address
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import route_info
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import TaskFailed

PATH = "/etc/nginx/sites-enabled/site"
SITE = """server {
    listen 80;
    server_name app.example.com;
    return 301 https://$host$request_uri;
}
server {
    listen 443 ssl;
    server_name app.example.com;
    location / { proxy_pass http://127.0.0.1:8000; }
}
server {
    listen [::]:443 ssl;
    server_name app.example.com;
    location / { proxy_pass http://127.0.0.1:9000; }
}
"""


def args(listen: Optional[str], port: Optional[int] = None, address: Optional[str] = None) -> Dict[str, Any]:
    return {"listen": listen, "port": port, "address": address}


@pytest.mark.parametrize(
    ("listen", "line", "where"),
    [
        ("[::]:443", 11, "[::]:443"),
        ("443 ssl", 6, "*:443"),
        ("*:443", 6, "*:443"),
        ("*:80", 1, "*:80"),
        ("80", 1, "*:80"),
    ],
)
def test_listen_selects_the_server_nginx_uses(listen: str, line: int, where: str) -> None:
    info = route_info(load(PATH, SITE.encode()), "app.example.com", "/x", **listen_as_port_and_address(args(listen)))
    assert info.choice.server is not None and info.choice.server.line == line
    assert info.choice.listen is not None and info.choice.listen.text == where


def test_without_listen_port_and_address_stay() -> None:
    assert listen_as_port_and_address(args(None, 443, "::1")) == {}


def test_listen_with_port_or_address_is_refused() -> None:
    for given in (args("443", port=443), args("443", address="127.0.0.1")):
        with pytest.raises(TaskFailed) as error:
            listen_as_port_and_address(given)
        assert error.value.result["msg"] == (
            "listen names the port and address itself: give either listen, or port and address."
        )


def test_bad_listen_is_refused_with_the_option_named() -> None:
    with pytest.raises(TaskFailed) as error:
        listen_as_port_and_address(args("443 {"))
    assert error.value.result["msg"].startswith("listen must be a port or address:port as nginx's listen reads it")


def test_listen_is_in_the_argument_spec() -> None:
    assert ARGUMENT_SPEC["listen"] == {"type": "str"}
