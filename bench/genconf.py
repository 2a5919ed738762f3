"""A deterministic generator of realistic nginx site files (many servers, every kind of location).

The same seed and line budget always give the same bytes. Each server draws its shape from a seeded
``random.Random``: upstreams and maps in http context, redirect-only servers, ``=``/``^~``/prefix/regex/
named locations, nested locations, ``if`` blocks, quoted values, comments and blank lines. There are no
``include`` directives, so the whole configuration is the one file. One server, ``app.example.test``,
placed half-way, has the incident's shape: ``location /api/`` proxied to an upstream and no WebSocket
location, so planning it inserts one.
"""

from __future__ import annotations

import random
from typing import List

TARGET_NAME = "app.example.test"
UPGRADE_MAP = [
    "# WebSocket upgrade header, shared by every site",
    "map $http_upgrade $connection_upgrade {",
    "    default upgrade;",
    "    ''      close;",
    "}",
    "",
]

_STATIC_EXT = ["css|js", "png|jpg|jpeg|gif|svg|ico", "woff2?|ttf|eot", "mp4|webm", "pdf|docx?"]
_SECTIONS = ["admin", "account", "billing", "reports", "media", "search", "docs", "shop", "blog", "help"]
_COMMENTS = [
    "# TODO: move to the shared snippet once every site is migrated",
    "# ticket OPS-{n}: raised for the export job",
    "# do not cache: the app sets its own headers",
    "# {n} requests/s at peak (2025 traffic report)",
    "# keep in sync with the load balancer health check",
    "#location /old/ {{ return 410; }}",
]


class _Writer:
    def __init__(self) -> None:
        self.lines: List[str] = []

    def add(self, depth: int, text: str = "") -> None:
        self.lines.append(("    " * depth + text) if text else "")


def _comment(rng: random.Random) -> str:
    return rng.choice(_COMMENTS).format(n=rng.randint(100, 9999))


def _upstream(w: _Writer, rng: random.Random, name: str, port: int) -> None:
    w.add(0, f"upstream {name} {{")
    for k in range(rng.randint(1, 3)):
        extra = rng.choice(["", " max_fails=3 fail_timeout=10s", " weight=2", " backup" if k else ""])
        w.add(1, f"server 127.0.0.1:{port + k}{extra};")
    if rng.random() < 0.5:
        w.add(1, f"keepalive {rng.choice([8, 16, 32])};")
    w.add(0, "}")
    w.add(0)


def _map(w: _Writer, rng: random.Random, index: int) -> None:
    source = rng.choice(["$http_user_agent", "$request_uri", "$http_accept_language", "$cookie_plan"])
    w.add(0, f"map {source} $site{index}_flag {{")
    w.add(1, "default 0;")
    for token in rng.sample(_SECTIONS, rng.randint(1, 5)):  # distinct keys: nginx refuses a repeated one
        pattern = rng.choice([f"~*{token}", f'"~^/{token}/"', f"{token}", f"~*(bot|{token})"])
        w.add(1, f"{pattern} {rng.randint(1, 3)};")
    w.add(0, "}")
    w.add(0)


def _proxy_headers(w: _Writer, depth: int, rng: random.Random) -> None:
    w.add(depth, "proxy_set_header Host $host;")
    w.add(depth, "proxy_set_header X-Real-IP $remote_addr;")
    w.add(depth, "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
    if rng.random() < 0.7:
        w.add(depth, "proxy_set_header X-Forwarded-Proto $scheme;")


def _locations(w: _Writer, rng: random.Random, index: int, upstream: str, api: bool, headers_in_api: bool) -> None:
    kinds = ["exact", "root", "caret", "static", "named", "legacy", "section", "nested"]
    rng.shuffle(kinds)
    if api:
        kinds.insert(rng.randrange(len(kinds) + 1), "api")
    for kind in kinds[: rng.randint(4, len(kinds))] if not api else kinds:
        if kind != "api" and rng.random() < 0.25:
            continue
        if rng.random() < 0.3:
            w.add(1, _comment(rng))
        if kind == "exact":
            w.add(1, "location = /healthz {")
            w.add(2, "access_log off;")
            w.add(2, 'return 200 "ok\\n";')
            w.add(1, "}")
        elif kind == "root":
            w.add(1, "location / {")
            w.add(2, "try_files $uri $uri/ /index.html;")
            if rng.random() < 0.4:
                w.add(2, "if ($request_method = OPTIONS) {")
                w.add(3, "add_header Access-Control-Allow-Origin '*';")
                w.add(3, "return 204;")
                w.add(2, "}")
            w.add(1, "}")
        elif kind == "caret":
            w.add(1, f"location ^~ /{rng.choice(['static', 'assets', 'media'])}/ {{")
            w.add(2, f"alias /srv/site{index}/public/;")
            w.add(2, f"expires {rng.choice(['1h', '7d', '30d'])};")
            w.add(1, "}")
        elif kind == "static":
            w.add(1, f"location ~* \\.({rng.choice(_STATIC_EXT)})$ {{")
            w.add(2, "expires 30d;")
            w.add(2, 'add_header Cache-Control "public, immutable";')
            w.add(1, "}")
        elif kind == "named":
            w.add(1, "location @backend {")
            w.add(2, f"proxy_pass http://{upstream};")
            w.add(1, "}")
        elif kind == "legacy":
            w.add(1, "location /legacy/ {")
            w.add(2, "rewrite ^/legacy/(.*)$ /$1 permanent;")
            w.add(1, "}")
        elif kind == "section":
            section = rng.choice(_SECTIONS)
            w.add(1, f"location ~ ^/{section}/(?<page>[a-z0-9-]+)$ {{")
            w.add(2, f"proxy_pass http://{upstream};")
            if rng.random() < 0.5:
                w.add(2, "allow 10.0.0.0/8;")
                w.add(2, "deny all;")
            w.add(1, "}")
        elif kind == "nested":
            w.add(1, "location /docs/ {")
            w.add(2, f"root /srv/site{index};")
            w.add(2, "location ~ \\.pdf$ {")
            w.add(3, 'add_header Content-Disposition "attachment";')
            w.add(2, "}")
            w.add(1, "}")
        elif kind == "api":
            w.add(1, "# the API")
            w.add(1, "location /api/ {")
            w.add(2, f"proxy_pass http://{upstream};")
            if headers_in_api:
                _proxy_headers(w, 2, rng)
            if rng.random() < 0.5:
                w.add(2, f"proxy_read_timeout {rng.choice(['30s', '60s', '120s'])};")
            if rng.random() < 0.3:
                w.add(2, "proxy_buffering off;")
            w.add(1, "}")
        w.add(0)


def _server(w: _Writer, rng: random.Random, index: int, name: str, listen: str, log_dir: str, target: bool) -> None:
    upstream = f"site{index}_backend"
    port = 20000 + (index * 7) % 20000
    _upstream(w, rng, upstream, port)
    if rng.random() < 0.35:
        _map(w, rng, index)
    if not target and rng.random() < 0.2:
        w.add(0, "server {")
        w.add(1, f"listen {listen};")
        w.add(1, f"server_name old-{name};")
        w.add(1, f"return 301 http://{name}$request_uri;")
        w.add(0, "}")
        w.add(0)
    w.add(0, f"# site {index}: {name}" + ("" if not target else " (the incident's shape)"))
    w.add(0, "server {")
    w.add(1, f"listen {listen};")
    w.add(1, f"server_name {name} www.{name};")
    w.add(1, f"root /srv/site{index}/public;")
    w.add(1, "index index.html;")
    if rng.random() < 0.5:
        w.add(1, f"access_log {log_dir}/access.log combined;")
    w.add(1, f"error_log {log_dir}/error.log warn;")
    w.add(1, f"client_max_body_size {rng.choice(['1m', '10m', '50m'])};")
    if rng.random() < 0.5:
        w.add(1, 'add_header X-Frame-Options "SAMEORIGIN" always;')
    w.add(1, "error_page 502 503 504 /50x.html;")
    headers_in_server = target or rng.random() < 0.5
    if headers_in_server:
        _proxy_headers(w, 1, rng)
    w.add(0)
    api = target or rng.random() < 0.6
    _locations(w, rng, index, upstream, api, headers_in_api=not headers_in_server)
    if w.lines[-1] == "":
        w.lines.pop()
    w.add(0, "}")
    w.add(0)


def generate(lines: int, seed: int = 7, listen: str = "127.0.0.1:8080", log_dir: str = "/var/log/nginx") -> bytes:
    """A site file of about ``lines`` lines (whole servers; at most one server more)."""
    rng = random.Random(seed)
    w = _Writer()
    w.add(0, f"# generated by bench/genconf.py (seed {seed}, {lines} lines): many sites behind one nginx")
    w.lines += UPGRADE_MAP
    index = 0
    target_done = False
    while len(w.lines) < lines:
        index += 1
        target = not target_done and len(w.lines) >= lines // 2
        name = TARGET_NAME if target else f"site{index}.example.test"
        _server(w, rng, index, name, listen, log_dir, target)
        target_done = target_done or target
    if not target_done:  # pragma: no cover - only for tiny budgets
        _server(w, rng, index + 1, TARGET_NAME, listen, log_dir, True)
    return ("\n".join(w.lines) + "\n").encode()


def main_conf(root: str, site: str) -> bytes:
    """A main nginx.conf that loads ``site`` in http{} (used to build an ``nginx -T`` dump)."""
    return (
        f"worker_processes 1;\npid {root}/nginx.pid;\nevents {{\n    worker_connections 256;\n}}\n"
        f"http {{\n    include {site};\n}}\n"
    ).encode()


def dump(files: dict[str, bytes]) -> bytes:
    """The text ``nginx -T`` prints for these files, in order."""
    return b"".join(b"# configuration file " + name.encode() + b":\n" + data + b"\n" for name, data in files.items())
