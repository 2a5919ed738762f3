"""Loading: one file or an ``nginx -T`` dump, spans, includes, servers, maps, inheritance."""

from __future__ import annotations

import re

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    effective,
    enclosing_chain,
    glob_match,
    load,
    location_match,
    parse_bytes,
    split_dump,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    ConfigSyntaxError,
    UnsupportedConfigError,
)
from tests.support.corpus import require_corpus

SITE = b"""server {
    listen 80;
    server_name a.example.com *.b.example.com;
    proxy_set_header Host $host;
    location /api/ {
        proxy_pass http://127.0.0.1:8000;
        location ~ \\.json$ { proxy_set_header X-Json 1; }
    }
}
"""

MAIN = b"""events {}
http {
    proxy_set_header X-From-Http 1;
    include conf.d/*.conf;
    include sites-enabled/*;
}
"""


def dump_of(files: dict) -> bytes:
    return b"".join(b"# configuration file " + name.encode() + b":\n" + text + b"\n" for name, text in files.items())


def test_spans_include_the_closing_brace() -> None:
    file = parse_bytes(SITE, "site")
    server = file.directives[0]
    assert SITE[server.start : server.end] == SITE.rstrip(b"\n")
    location = server.children("location")[0]
    assert SITE[location.start : location.end].startswith(b"location /api/ {")
    assert SITE[location.close_brace : location.close_brace + 1] == b"}"
    nested = location.children("location")[0]
    assert SITE[nested.start : nested.end] == b"location ~ \\.json$ { proxy_set_header X-Json 1; }"
    assert nested.args == ["~", "\\.json$"]
    assert location_match(nested) == ("~", "\\.json$")


def test_single_site_file_servers_names_and_listens() -> None:
    config = load("/etc/nginx/sites-enabled/site", SITE)
    (server,) = config.servers()
    assert server.names == ["a.example.com", "*.b.example.com"]
    assert server.listens == [["80"]]
    assert server.where == "/etc/nginx/sites-enabled/site:1"


def test_dump_resolves_relative_includes_from_the_main_config_directory() -> None:
    files = {
        "/etc/nginx/nginx.conf": MAIN,
        "/etc/nginx/conf.d/map.conf": b"map $http_upgrade $conn_up {\n    default upgrade;\n    '' close;\n}\n",
        "/etc/nginx/sites-enabled/site": SITE,
        "/etc/nginx/sites-enabled/.hidden": b"server { listen 81; }\n",
    }
    config = load("/etc/nginx/sites-enabled/site", SITE, dump_of(files))
    assert config.main == "/etc/nginx/nginx.conf"
    assert [s.file for s in config.servers()] == ["/etc/nginx/sites-enabled/site"]
    assert [m.where for m in config.upgrade_maps()] == ["/etc/nginx/conf.d/map.conf:1"]


def test_split_dump_keeps_each_file_as_written() -> None:
    files = {"/a.conf": b"events {}", "/b.conf": b"x 1;\r\n"}
    assert split_dump(dump_of(files)) == files


def test_glob_matches_like_glob3() -> None:
    assert glob_match("/etc/nginx/sites-enabled/*", "/etc/nginx/sites-enabled/site")
    assert not glob_match("/etc/nginx/sites-enabled/*", "/etc/nginx/sites-enabled/.site")
    assert not glob_match("/etc/nginx/*.conf", "/etc/nginx/conf.d/x.conf")


def test_proxy_set_header_inheritance_is_all_or_nothing() -> None:
    files = {"/etc/nginx/nginx.conf": MAIN, "/etc/nginx/sites-enabled/site": SITE}
    config = load("/etc/nginx/sites-enabled/site", SITE, dump_of(files))
    server = config.servers()[0]
    location = server.locations()[0]
    nested = location.children("location")[0]
    headers = effective(config, enclosing_chain(config, location, server), "proxy_set_header")
    assert [d.args for d in headers] == [["Host", "$host"]]
    nested_headers = effective(config, enclosing_chain(config, nested, server), "proxy_set_header")
    assert [d.args for d in nested_headers] == [["X-Json", "1"]]


def test_syntax_error_names_file_and_line() -> None:
    with pytest.raises(ConfigSyntaxError) as error:
        load("/s.conf", b"server {\n    listen 80;\n    location / {\n}\n")
    assert str(error.value).startswith("/s.conf:")
    assert "nginx -t" in str(error.value)


def test_unterminated_block_and_stray_brace_are_refused() -> None:
    with pytest.raises(ConfigSyntaxError, match='unexpected end of file, expecting "}"'):
        load("/s.conf", b"server { listen 80;")
    with pytest.raises(ConfigSyntaxError, match=re.escape('/s.conf:1: unexpected "}". Fix the file')):
        load("/s.conf", b"server { listen 80 }")


def test_non_utf8_bytes_survive_parsing() -> None:
    data = b"server {\n    # \xe9\xff\n    listen 80;\n}\n"
    file = parse_bytes(data, "x")
    assert not file.is_utf8
    assert file.data is data


def test_every_corpus_file_loads() -> None:
    files = require_corpus()
    refused = []
    for path in files:
        try:
            load(str(path), path.read_bytes())
        except UnsupportedConfigError as error:
            refused.append(str(error))
    print(f"corpus: {len(files)} files loaded, {len(refused)} refused")
    assert len(files) >= 60
    assert refused == []
