"""Configurations and helpers shared by the diagnosis tests."""

from __future__ import annotations

from typing import Dict, Optional

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, load_files
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import (
    RouteInfo,
    route_info,
)

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
