"""What the new WebSocket location carries from the anchor, and what it leaves out (the table in _carry)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.carry import (
    ACCESS,
    FAMILIES,
    NEVER,
    UNKNOWN,
    families_markdown,
    family_of,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Directive, load_files
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    AnchorNotFoundError,
    CannotWinError,
    InvalidOptionError,
    UnsupportedConfigError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from tests.unit.plugin_utils._engine.test_plan_location import PATH, plan

DOCS = Path(__file__).resolve().parents[4] / "docs" / "how-it-works.md"


def named(name: str, *args: str) -> Directive:
    return Directive(name, list(args), PATH, 1, 0, 0)


def rows(items: List[Dict[str, object]]) -> List[tuple]:
    return [(item["directive"], item["line"], item["family"]) for item in items]


def test_the_docs_show_the_table_of_the_code() -> None:
    assert families_markdown() in DOCS.read_text()


@pytest.mark.parametrize(
    ("name", "args", "policy"),
    [
        ("proxy_buffering", ["off"], "carried"),
        ("proxy_set_header", ["Host", "$host"], "carried"),
        ("allow", ["10.0.0.0/8"], ACCESS),
        ("auth_request", ["/auth"], ACCESS),
        ("limit_req", ["zone=api"], ACCESS),
        ("limit_conn", ["addr", "10"], ACCESS),
        ("satisfy", ["any"], ACCESS),
        ("internal", [], ACCESS),
        ("limit_rate", ["100k"], "carried"),
        ("return", ["444"], NEVER),
        ("rewrite", ["^", "/x", "last"], NEVER),
        ("try_files", ["$uri", "@app"], NEVER),
        ("fastcgi_pass", ["unix:/run/php.sock"], NEVER),
        ("fastcgi_param", ["A", "b"], NEVER),
        ("uwsgi_pass", ["x"], NEVER),
        ("grpc_pass", ["x"], NEVER),
        ("scgi_pass", ["x"], NEVER),
        ("memcached_pass", ["x"], NEVER),
        ("root", ["/srv"], NEVER),
        ("index", ["index.html"], NEVER),
        ("error_page", ["404", "=", "@app"], NEVER),
        ("error_page", ["502", "/50x.html"], "carried"),
        ("content_by_lua_block", [], NEVER),
        # found by the field set (Plex): the handshake needs the client's headers and its GET
        ("proxy_pass_request_headers", ["off"], NEVER),
        ("proxy_method", ["POST"], NEVER),
        ("proxy_pass_request_body", ["off"], "carried"),
    ],
)
def test_family_policies(name: str, args: List[str], policy: str) -> None:
    assert family_of(named(name, *args)).policy == policy


def test_unknown_directives_are_carried_and_every_name_has_one_family() -> None:
    assert family_of(named("weird_module_directive", "on")) is UNKNOWN and UNKNOWN.carried
    names = [name for family in FAMILIES for name in family.names]
    assert len(names) == len(set(names))


HANDED_ON = """server {
    listen 80;
    location /api/ {
        allow 10.0.0.0/8;
        deny all;
        auth_basic "API";
        if ($request_method = OPTIONS) { return 204; }
        if ($ssl_client_verify != SUCCESS) { return 403; }
        rewrite ^/api/old/(.*)$ /api/$1 last;
        try_files $uri @app;
        error_page 404 = @app;
        proxy_read_timeout 60s;
        add_header X-Frame-Options DENY;
        weird_module_directive on;
    }
    location @app {
        proxy_pass http://127.0.0.1:8000;
        proxy_set_header Host $host;
        allow 10.0.0.0/8;
    }
}
"""

HANDED_ON_AFTER = """server {
    listen 80;
    # managed by agaii.nginx.ws_location
    location ~ ^/api/mqtt/ws/ {
        proxy_pass http://127.0.0.1:8000;
        allow 10.0.0.0/8;
        deny all;
        auth_basic "API";
        if ($ssl_client_verify != SUCCESS) { return 403; }
        weird_module_directive on;
        proxy_set_header Host $host;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
    }

"""


def test_handed_on_to_a_named_location_takes_its_proxy_settings_and_keeps_access_control() -> None:
    result = plan(HANDED_ON)
    assert result.after[PATH].decode().startswith(HANDED_ON_AFTER)
    outcome = result.servers[0]
    assert rows(outcome.carried) == [
        ("allow 10.0.0.0/8", 4, "access by address"),
        ("deny all", 5, "access by address"),
        ("auth_basic API", 6, "authentication and authorization"),
        ("if ($ssl_client_verify != SUCCESS)", 8, "conditions"),
        ("weird_module_directive on", 14, "unknown (any other directive)"),
        ("proxy_pass http://127.0.0.1:8000", 17, "proxy settings"),
        ("proxy_set_header Host $host", 18, "proxy settings"),
    ]
    assert rows(outcome.left_out) == [
        ("if ($request_method = OPTIONS)", 7, "conditions"),
        ("rewrite ^/api/old/(.*)$ /api/$1 last", 9, "ends or diverts the request"),
        ("try_files $uri @app", 10, "ends or diverts the request"),
        ("error_page 404 = @app", 11, "hands the request on"),
        ("proxy_read_timeout 60s", 12, "set by the module"),
        ("add_header X-Frame-Options DENY", 13, "response headers"),
    ]
    assert outcome.left_out[0]["why"] == f"it holds `return 204` ({PATH}:7), which ends, diverts or is not carried"
    assert outcome.left_out[5]["why"] == "the request is proxied in location @app; its settings are carried"
    assert (
        f"carried `weird_module_directive on` ({PATH}:14) into the WebSocket location: the module does not know "
        "this directive, and it could be access control; check the handshake"
    ) in result.warnings


def test_error_page_to_a_named_location_is_followed() -> None:
    site = (
        "server {\n    listen 80;\n    location /api/ {\n        root /srv/api;\n        error_page 404 = @app;\n"
        "    }\n    location @app {\n        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
    )
    outcome = plan(site).servers[0]
    assert rows(outcome.carried) == [("proxy_pass http://127.0.0.1:8000", 8, "proxy settings")]
    assert rows(outcome.left_out) == [
        ("root /srv/api", 4, "static files"),
        ("error_page 404 = @app", 5, "hands the request on"),
    ]


@pytest.mark.parametrize(
    ("body", "end", "how"),
    [
        ("return 444;", "return 444", "answers every request itself"),
        ("return 301 https://$host$request_uri;", "return 301 https://$host$request_uri", "answers every request"),
        ("rewrite ^ https://example.com$request_uri permanent;", "rewrite ^", "sends every request elsewhere"),
        ("return 200 'ok';\n        proxy_pass http://127.0.0.1:8000;", "return 200 ok", "answers every request"),
    ],
)
def test_an_anchor_that_only_returns_or_redirects_is_refused(body: str, end: str, how: str) -> None:
    site = f"server {{\n    listen 80;\n    location /api/ {{\n        {body}\n    }}\n}}\n"
    for settings in ({}, {"proxy_pass": "http://127.0.0.1:8000"}):
        with pytest.raises(AnchorNotFoundError) as error:
            plan(site, **settings)
        message = str(error.value)
        assert message.startswith(f"{PATH}:3: location /api/ proxies nothing: `{end}")
        assert f"({PATH}:4) {how}" in message
        assert message.endswith(
            "nothing was changed. Set before to the location that proxies your API (for an HTTP to HTTPS "
            "redirect, that of the HTTPS server, chosen with server_name)."
        )


MAIN = "/etc/nginx/nginx.conf"
SNIPPET = "/etc/nginx/snippets/api.conf"


def included_site(snippet: str) -> Dict[str, bytes]:
    return {
        MAIN: f"events {{}}\nhttp {{\n    include {PATH};\n}}\n".encode(),
        PATH: (
            b"server {\n    listen 80;\n    location /api/ {\n        include snippets/api.conf;\n"
            b"        proxy_pass http://127.0.0.1:8000;\n    }\n}\n"
        ),
        SNIPPET: snippet.encode(),
    }


def test_a_fastcgi_anchor_needs_proxy_pass_and_carries_none_of_its_handler() -> None:
    files = included_site("")
    files[PATH] = (
        b"server {\n    listen 80;\n    location /api/ {\n        deny 192.0.2.1;\n        include fastcgi_params;\n"
        b"        fastcgi_pass unix:/run/php/php-fpm.sock;\n    }\n}\n"
    )
    files["/etc/nginx/fastcgi_params"] = b"fastcgi_param QUERY_STRING $query_string;\n"
    with pytest.raises(AnchorNotFoundError) as error:
        plan_files(files)
    assert str(error.value) == (
        f"{PATH}:3: location /api/ has no proxy_pass to copy (its requests go to "
        f"`fastcgi_pass unix:/run/php/php-fpm.sock` at {PATH}:6, not to a proxy). Set proxy_pass to the "
        "WebSocket backend."
    )
    outcome = plan_files(files, proxy_pass="http://127.0.0.1:8000").servers[0]
    assert rows(outcome.carried) == [("deny 192.0.2.1", 4, "access by address")]
    assert rows(outcome.left_out) == [
        ("include fastcgi_params", 5, "includes"),
        ("fastcgi_pass unix:/run/php/php-fpm.sock", 6, "other content handlers and their settings"),
    ]
    assert outcome.left_out[0]["why"].startswith("it brings `fastcgi_param QUERY_STRING $query_string` (")


def plan_files(files: Dict[str, bytes], **settings: object):
    return plan_websocket(load_files(files, MAIN), PATH, Settings(**settings))


def test_an_include_that_brings_a_never_carried_directive_is_left_out_but_its_access_control_is_copied() -> None:
    result = plan_files(included_site('auth_basic "API";\ntry_files $uri $uri/ =404;\nproxy_buffering off;\n'))
    assert rows(result.servers[0].carried) == [
        ("auth_basic API", 1, "authentication and authorization"),
        ("proxy_pass http://127.0.0.1:8000", 5, "proxy settings"),
    ]
    assert result.servers[0].carried[0]["file"] == SNIPPET
    assert result.servers[0].left_out[0]["why"] == (
        f"it brings `try_files $uri $uri/ =404` ({SNIPPET}:2): they answer or re-route the request before "
        "proxy_pass acts, so the WebSocket would never reach the backend"
    )
    assert b'        auth_basic "API";\n' in result.after[PATH]


def test_an_included_conflicting_timeout_names_the_line_both_values_and_the_fix() -> None:
    with pytest.raises(CannotWinError) as error:
        plan_files(included_site("proxy_read_timeout 90s;\n"))
    assert str(error.value) == (
        f"{SNIPPET}:1: `proxy_read_timeout 90s` from an included file (brought by `include snippets/api.conf` at "
        f"{PATH}:4) conflicts with `proxy_read_timeout 3600s;` that the WebSocket location needs: nginx refuses "
        "the same setting twice in one location. Either set read_timeout to 90s, or move "
        "`include snippets/api.conf` out of location /api/."
    )


def test_an_included_timeout_equal_as_an_nginx_time_is_no_conflict() -> None:
    result = plan_files(included_site("proxy_read_timeout 1h;\nproxy_send_timeout 60m;\n"))
    assert result.changed
    after = result.after[PATH]
    assert after.count(b"include snippets/api.conf;") == 2
    assert b"proxy_read_timeout" not in after and b"proxy_send_timeout" not in after


def test_include_conflicts_inline_leaves_the_include_out_and_copies_the_rest() -> None:
    snippet = "proxy_read_timeout 90s;\nproxy_set_header X-Real-IP $remote_addr;\nallow 10.0.0.0/8;\nroot /srv;\n"
    result = plan_files(included_site(snippet), include_conflicts="inline")
    outcome = result.servers[0]
    assert rows(outcome.carried) == [
        ("proxy_set_header X-Real-IP $remote_addr", 2, "proxy settings"),
        ("allow 10.0.0.0/8", 3, "access by address"),
        ("proxy_pass http://127.0.0.1:8000", 5, "proxy settings"),
    ]
    assert rows(outcome.left_out) == [
        ("include snippets/api.conf", 4, "includes"),
        ("proxy_read_timeout 90s", 1, "set by the module"),
        ("root /srv", 4, "static files"),
    ]
    assert outcome.left_out[1]["why"] == (
        "conflicts with `proxy_read_timeout 3600s;` (read_timeout); left out as include_conflicts=inline asks"
    )
    new_location = result.after[PATH].split(b"location /api/ {")[0]
    assert b"include snippets/api.conf;" not in new_location
    assert b"        proxy_set_header X-Real-IP $remote_addr;\n        allow 10.0.0.0/8;\n" in new_location
    assert b"        proxy_read_timeout 3600s;\n" in new_location


def test_include_conflicts_must_be_refuse_or_inline() -> None:
    with pytest.raises(InvalidOptionError, match="include_conflicts must be one of refuse, inline, got 'drop'"):
        plan(
            "server {\n    listen 80;\n    location /api/ { proxy_pass http://127.0.0.1:8000; }\n}\n",
            include_conflicts="drop",
        )


def test_an_included_conflict_without_an_option_says_what_to_change() -> None:
    with pytest.raises(CannotWinError) as error:
        plan_files(included_site("proxy_http_version 1.0;\n"))
    assert str(error.value).endswith(
        "Either change it to `proxy_http_version 1.1;` there, or move `include snippets/api.conf` out of "
        "location /api/."
    )
    with pytest.raises(CannotWinError) as error:
        plan_files(included_site("proxy_set_header X-Real-IP $remote_addr;\n"), headers={"X-Real-IP": "$realip"})
    assert str(error.value).endswith(
        "Either set headers.X-Real-IP to $remote_addr, or move `include snippets/api.conf` out of location /api/."
    )


def test_a_blocked_include_keeps_its_conditional_refusals_and_unknown_lines() -> None:
    snippet = "if ($ssl_client_verify != SUCCESS) { return 403; }\nsecret_check on;\ntry_files $uri =404;\n"
    result = plan_files(included_site(snippet))
    assert rows(result.servers[0].carried) == [
        ("if ($ssl_client_verify != SUCCESS)", 1, "conditions"),
        ("secret_check on", 2, "unknown (any other directive)"),
        ("proxy_pass http://127.0.0.1:8000", 5, "proxy settings"),
    ]
    assert rows(result.servers[0].left_out) == [("include snippets/api.conf", 4, "includes")]
    assert (
        b"        if ($ssl_client_verify != SUCCESS) { return 403; }\n        secret_check on;\n" in result.after[PATH]
    )


def test_two_different_single_access_checks_are_refused_not_dropped() -> None:
    site = HANDED_ON.replace("        allow 10.0.0.0/8;\n    }", '        auth_basic "App";\n    }')
    with pytest.raises(UnsupportedConfigError) as error:
        plan(site)
    assert str(error.value) == (
        f"{PATH}:19: `auth_basic API` ({PATH}:6) and `auth_basic App` ({PATH}:19) both check requests on the way "
        "to the backend, and one WebSocket location can hold only one of them. Make the two the same, or set "
        "proxy_pass and before to a location that proxies by itself."
    )
    same = HANDED_ON.replace("        allow 10.0.0.0/8;\n    }", '        auth_basic "API";\n    }')
    assert [c["directive"] for c in plan(same).servers[0].carried].count("auth_basic API") == 1


FRAGMENT = "/etc/nginx/proxy-confs/app.subfolder.conf"


def test_an_anchor_in_a_fragment_the_server_includes_gets_its_location_in_front_of_the_include() -> None:
    # found by the field set: linuxserver's *.subfolder.conf fragments, included inside SWAG's server block
    files = {
        MAIN: f"events {{}}\nhttp {{\n    include {PATH};\n}}\n".encode(),
        PATH: b"server {\n    listen 80;\n    include /etc/nginx/proxy-confs/*.subfolder.conf;\n}\n",
        FRAGMENT: (
            b"location ^~ /api/ {\n    proxy_pass http://127.0.0.1:8000;\n}\n"
            b"location ~ ^/api/.*\\.json$ {\n    proxy_pass http://127.0.0.1:8000;\n}\n"
        ),
    }
    result = plan_websocket(load_files(files, MAIN), PATH, Settings())
    assert list(result.after) == [PATH]
    assert result.after[PATH].decode() == (
        "server {\n    listen 80;\n    # managed by agaii.nginx.ws_location\n    location ^~ /api/mqtt/ws/ {\n"
        "        proxy_pass http://127.0.0.1:8000;\n        proxy_http_version 1.1;\n"
        '        proxy_set_header Upgrade $http_upgrade;\n        proxy_set_header Connection "upgrade";\n'
        "        proxy_read_timeout 3600s;\n        proxy_send_timeout 3600s;\n    }\n\n"
        "    include /etc/nginx/proxy-confs/*.subfolder.conf;\n}\n"
    )
    assert result.servers[0].reasons[-1] == (
        f"inserted before include /etc/nginx/proxy-confs/*.subfolder.conf at {PATH}:3"
    )
