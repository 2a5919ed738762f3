"""Map planning: reuse any loaded upgrade map, otherwise exactly one new map in the right place."""

from __future__ import annotations

import re

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load_files
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import MapConflictError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_map import plan_map

DEBIAN_MAIN = b"""user www-data;
events {
\tworker_connections 768;
}

http {
\tsendfile on;

\tinclude /etc/nginx/conf.d/*.conf;
\tinclude /etc/nginx/sites-enabled/*;
}
"""
SITE = b"server {\n    listen 80;\n    location /api/ { proxy_pass http://127.0.0.1:8000; }\n}\n"
GITLAB_MAP = b"map $http_upgrade $connection_upgrade_gitlab_ssl {\n    default upgrade;\n    ''      close;\n}\n"


def config(**extra: bytes):
    files = {"/etc/nginx/nginx.conf": DEBIAN_MAIN, "/etc/nginx/sites-enabled/site": SITE}
    files.update({f"/etc/nginx/{k.replace('__', '/')}": v for k, v in extra.items()})
    return load_files(files, "/etc/nginx/nginx.conf")


def test_existing_map_under_another_name_is_reused() -> None:
    plan = plan_map(config(**{"conf.d__gitlab.conf": GITLAB_MAP}))
    assert plan.variable == "connection_upgrade_gitlab_ssl"
    assert plan.reused == "/etc/nginx/conf.d/gitlab.conf:1"
    assert not plan.changed


def test_a_second_variable_name_is_not_added_next_to_an_existing_map() -> None:
    plan = plan_map(config(**{"conf.d__gitlab.conf": GITLAB_MAP}), variable="connection_upgrade")
    assert plan.variable == "connection_upgrade_gitlab_ssl" and not plan.changed
    assert "instead of adding $connection_upgrade" in plan.warnings[0]


def test_duplicates_already_loaded_are_reported_and_the_last_one_is_used() -> None:
    other = GITLAB_MAP.replace(b"_gitlab_ssl", b"")
    plan = plan_map(config(**{"conf.d__a.conf": GITLAB_MAP, "conf.d__b.conf": other}))
    assert plan.variable == "connection_upgrade"
    assert "2 `map $http_upgrade` blocks are loaded" in plan.warnings[0]


def test_new_map_goes_into_a_new_conf_d_file() -> None:
    plan = plan_map(config())
    assert plan.created and plan.where == "/etc/nginx/conf.d/websocket-upgrade-map.conf"
    assert plan.after == {
        "/etc/nginx/conf.d/websocket-upgrade-map.conf": (
            b"# managed by agaii.nginx.upgrade_map\n"
            b"map $http_upgrade $connection_upgrade {\n    default upgrade;\n    ''      close;\n}\n"
        )
    }


def test_without_a_conf_d_include_the_map_goes_into_http_before_the_first_include() -> None:
    main = DEBIAN_MAIN.replace(b"\tinclude /etc/nginx/conf.d/*.conf;\n", b"")
    cfg = load_files({"/etc/nginx/nginx.conf": main, "/etc/nginx/sites-enabled/site": SITE}, "/etc/nginx/nginx.conf")
    plan = plan_map(cfg)
    assert plan.after["/etc/nginx/nginx.conf"] == main.replace(
        b"\tinclude /etc/nginx/sites-enabled/*;",
        b"\t# managed by agaii.nginx.upgrade_map\n\tmap $http_upgrade $connection_upgrade {\n"
        b"\t\tdefault upgrade;\n\t\t''      close;\n\t}\n\n\tinclude /etc/nginx/sites-enabled/*;",
    )
    files = {path: file.data for path, file in cfg.files.items()}
    again = plan_map(load_files({**files, **plan.after}, "/etc/nginx/nginx.conf"))
    assert not again.changed and again.variable == "connection_upgrade"


def test_named_map_file_must_be_loaded_in_http() -> None:
    with pytest.raises(MapConflictError, match=re.escape("no include inside http{} would load this new file")):
        plan_map(config(), map_file="/etc/nginx/snippets/map.conf")
    plan = plan_map(config(), map_file="conf.d/00-map.conf")
    assert list(plan.after) == ["/etc/nginx/conf.d/00-map.conf"]


def test_named_existing_file_gets_the_map_appended() -> None:
    plan = plan_map(
        config(**{"conf.d__misc.conf": b"client_max_body_size 10m;"}), map_file="/etc/nginx/conf.d/misc.conf"
    )
    assert plan.after["/etc/nginx/conf.d/misc.conf"].startswith(b"client_max_body_size 10m;\n# managed by")
