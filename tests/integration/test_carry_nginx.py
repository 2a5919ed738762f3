"""What the WebSocket location carries from the anchor, on a real nginx and the RFC-strict backend.

For each kind of anchor (one that returns, hands on with ``try_files ... @app`` or ``error_page 404 = @app``,
rewrites with ``last``, passes to FastCGI, or checks access) the plan is made from the real ``nginx -T`` dump,
written and reloaded; then a WebSocket handshake through nginx gets 101 and its echo (or, where access
control is carried, the same refusal the anchor gives), and every plain GET answers exactly as before.
An anchor that only returns is refused and the file keeps every byte.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import HandshakeResult, handshake
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import AnchorNotFoundError, CannotWinError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import Plan, plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from tests.integration.test_ws_location import Ansible, Step
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend

pytestmark = pytest.mark.nginx

HOST = "app.example.test"
WS_URI = "/api/mqtt/ws/hints/session-874q8t"
ECHO = "hint 874q8t ✓"
USER, PASSWORD = "alice", "s3cret"
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}
DEAD_FASTCGI = "127.0.0.1:9"  # nothing listens: the FastCGI anchor answers 502, before and after


@dataclass
class Case:
    name: str
    location: str  # the anchor (and what it hands on to), inside the server block
    gets: List[Tuple[str, Dict[str, str]]]  # plain requests that must answer the same before and after
    carried: List[str]
    left_out: List[str]
    settings: Dict[str, str] = field(default_factory=dict)
    ws_headers: Dict[str, str] = field(default_factory=dict)


CASES = [
    Case(
        "return_in_if",
        "location /api/ {\n        if ($request_method = OPTIONS) { return 204; }\n"
        "        proxy_pass http://{upstream};\n    }",
        [("/api/health", {})],
        ["proxy_pass http://{upstream}"],
        ["if ($request_method = OPTIONS)"],
    ),
    Case(
        "try_files_named",
        "location /api/ {\n        root {root};\n        try_files $uri @app;\n    }\n"
        "    location @app {\n        proxy_pass http://{upstream};\n        proxy_set_header Host $host;\n    }",
        [("/api/health", {}), ("/api/static.txt", {}), ("/api/nothing-here", {})],
        ["proxy_pass http://{upstream}", "proxy_set_header Host $host"],
        ["root {root}", "try_files $uri @app"],
    ),
    Case(
        "rewrite_last",
        "location /api/ {\n        rewrite ^/api/mqtt/(.*)$ /retired/$1 last;\n        proxy_pass http://{upstream};\n"
        '    }\n    location /retired/ {\n        return 410 "retired\\n";\n    }',
        [("/api/health", {}), ("/api/mqtt/old-feed", {})],
        ["proxy_pass http://{upstream}"],
        ["rewrite ^/api/mqtt/(.*)$ /retired/$1 last"],
    ),
    Case(
        "fastcgi_pass",
        "location /api/ {\n        include fastcgi_params;\n        fastcgi_pass " + DEAD_FASTCGI + ";\n    }",
        [("/api/health", {})],
        [],
        ["include fastcgi_params", "fastcgi_pass " + DEAD_FASTCGI],
        settings={"proxy_pass": "http://{upstream}"},
    ),
    Case(
        "error_page_named",
        "location /api/ {\n        root {root};\n        error_page 404 = @app;\n    }\n"
        "    location @app {\n        proxy_pass http://{upstream};\n    }",
        [("/api/health", {}), ("/api/static.txt", {})],
        ["proxy_pass http://{upstream}"],
        ["root {root}", "error_page 404 = @app"],
    ),
    Case(
        "auth_basic_allow_deny",
        'location /api/ {\n        allow 127.0.0.1;\n        deny all;\n        auth_basic "API";\n'
        "        auth_basic_user_file {htpasswd};\n        proxy_pass http://{upstream};\n    }",
        [("/api/health", {}), ("/api/health", BASIC)],
        [
            "allow 127.0.0.1",
            "deny all",
            "auth_basic API",
            "auth_basic_user_file {htpasswd}",
            "proxy_pass http://{upstream}",
        ],
        [],
        ws_headers=BASIC,
    ),
]


def fill(text: str, sandbox: NginxSandbox, backend: Backend) -> str:
    values = {"upstream": backend.upstream, "root": str(sandbox.path("www")), "htpasswd": str(sandbox.path("htpasswd"))}
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def site_text(location: str, sandbox: NginxSandbox) -> str:
    return f"server {{\n    listen {sandbox.listen};\n    server_name {HOST};\n\n    {location}\n}}\n"


def prepare(sandbox: NginxSandbox) -> None:
    sandbox.write("www/api/static.txt", "a static file\n")
    sandbox.write("htpasswd", f"{USER}:{{PLAIN}}{PASSWORD}\n")
    sandbox.write("fastcgi_params", "fastcgi_param QUERY_STRING $query_string;\n")


def get(sandbox: NginxSandbox, path: str, headers: Dict[str, str]) -> Tuple[int, bytes]:
    request = urllib.request.Request(sandbox.url(path), headers={"Host": HOST, **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ws(sandbox: NginxSandbox, headers: Optional[Dict[str, str]] = None) -> HandshakeResult:
    return handshake(sandbox.ws_url(WS_URI), host=HOST, headers=headers, echo=ECHO, timeout=5)


def planned(sandbox: NginxSandbox, site: Path, settings: Dict[str, str]) -> Plan:
    config = load(str(site), site.read_bytes(), sandbox.dump().encode())
    return plan_websocket(config, str(site), Settings(**settings))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_websocket_is_proxied_and_the_anchor_answers_as_before(
    case: Case, nginx_sandbox: NginxSandbox, strict_backend: Backend
) -> None:
    prepare(nginx_sandbox)
    site = nginx_sandbox.write_site(
        "site.conf", site_text(fill(case.location, nginx_sandbox, strict_backend), nginx_sandbox), symlink=False
    )
    nginx_sandbox.start()
    answers_before = [get(nginx_sandbox, path, headers) for path, headers in case.gets]
    assert ws(nginx_sandbox, case.ws_headers).status != 101

    settings = {key: fill(value, nginx_sandbox, strict_backend) for key, value in case.settings.items()}
    plan = planned(nginx_sandbox, site, settings)
    (outcome,) = plan.servers
    assert [c["directive"] for c in outcome.carried] == [fill(d, nginx_sandbox, strict_backend) for d in case.carried]
    assert [c["directive"] for c in outcome.left_out] == [fill(d, nginx_sandbox, strict_backend) for d in case.left_out]
    site.write_bytes(plan.after[str(site)])
    nginx_sandbox.reload()

    after = ws(nginx_sandbox, case.ws_headers)
    assert (after.status, after.accept_ok, after.echo_received) == (101, True, ECHO), after
    assert [get(nginx_sandbox, path, headers) for path, headers in case.gets] == answers_before
    assert planned(nginx_sandbox, site, settings).changed is False


def test_access_control_is_carried_to_the_websocket(nginx_sandbox: NginxSandbox, strict_backend: Backend) -> None:
    """Without credentials the WebSocket gets the anchor's 401; from a denied address, its 403."""
    prepare(nginx_sandbox)
    (auth,) = [c for c in CASES if c.name == "auth_basic_allow_deny"]
    site = nginx_sandbox.write_site(
        "site.conf", site_text(fill(auth.location, nginx_sandbox, strict_backend), nginx_sandbox), symlink=False
    )
    nginx_sandbox.start()
    site.write_bytes(planned(nginx_sandbox, site, {}).after[str(site)])
    nginx_sandbox.reload()
    assert ws(nginx_sandbox).status == 401
    assert get(nginx_sandbox, "/api/health", {})[0] == 401

    denied = auth.location.replace("allow 127.0.0.1;\n        deny all;", "deny 127.0.0.1;")
    site.write_text(site_text(fill(denied, nginx_sandbox, strict_backend), nginx_sandbox))
    nginx_sandbox.reload()
    site.write_bytes(planned(nginx_sandbox, site, {}).after[str(site)])
    nginx_sandbox.reload()
    assert ws(nginx_sandbox, BASIC).status == 403
    assert get(nginx_sandbox, "/api/health", BASIC)[0] == 403


@pytest.mark.parametrize("anchor", ["return 444;", "return 200 'closed';", "return 301 https://$host$request_uri;"])
def test_an_anchor_that_only_returns_is_refused_and_nothing_changes(
    anchor: str, nginx_sandbox: NginxSandbox, strict_backend: Backend
) -> None:
    location = f"location /api/ {{\n        {anchor}\n    }}"
    site = nginx_sandbox.write_site("site.conf", site_text(location, nginx_sandbox), symlink=False)
    original = site.read_bytes()
    for settings in ({}, {"proxy_pass": f"http://{strict_backend.upstream}"}):
        with pytest.raises(AnchorNotFoundError, match=r"location /api/ proxies nothing: `return "):
            planned(nginx_sandbox, site, settings)
    assert site.read_bytes() == original


def test_an_included_conflicting_timeout_is_named_or_inlined_on_request(
    nginx_sandbox: NginxSandbox, strict_backend: Backend
) -> None:
    snippet = nginx_sandbox.write(
        "snippets/api.conf", "proxy_read_timeout 90s;\nproxy_set_header X-Real-IP $remote_addr;\n"
    )
    location = (
        "location /api/ {\n        include snippets/api.conf;\n"
        f"        proxy_pass http://{strict_backend.upstream};\n    }}"
    )
    site = nginx_sandbox.write_site("site.conf", site_text(location, nginx_sandbox), symlink=False)
    nginx_sandbox.start()
    before = get(nginx_sandbox, "/api/health", {})
    with pytest.raises(CannotWinError) as error:
        planned(nginx_sandbox, site, {})
    assert str(error.value) == (
        f"{snippet}:1: `proxy_read_timeout 90s` from an included file (brought by `include snippets/api.conf` at "
        f"{site}:6) conflicts with `proxy_read_timeout 3600s;` that the WebSocket location needs: nginx refuses "
        "the same setting twice in one location. Either set read_timeout to 90s, or move "
        "`include snippets/api.conf` out of location /api/."
    )
    plan = planned(nginx_sandbox, site, {"include_conflicts": "inline"})
    site.write_bytes(plan.after[str(site)])
    nginx_sandbox.reload()
    after = ws(nginx_sandbox)
    assert (after.status, after.accept_ok, after.echo_received) == (101, True, ECHO), after
    assert get(nginx_sandbox, "/api/health", {}) == before
    assert planned(nginx_sandbox, site, {"include_conflicts": "inline"}).changed is False


def test_the_module_lists_what_it_carried_and_refuses_a_return_only_anchor_byte_for_byte(
    nginx_sandbox: NginxSandbox, strict_backend: Backend, tmp_path: Path
) -> None:
    """Through ansible-playbook: servers[].carried / left_out with file:line; a return-only anchor fails the
    task with the message and the file keeps every byte."""
    prepare(nginx_sandbox)
    (case,) = [c for c in CASES if c.name == "try_files_named"]
    site = nginx_sandbox.write_site(
        "site.conf", site_text(fill(case.location, nginx_sandbox, strict_backend), nginx_sandbox), symlink=False
    )
    closed = nginx_sandbox.write_site(
        "closed.conf",
        f"server {{\n    listen {nginx_sandbox.listen};\n    server_name closed.example.test;\n"
        "    location /api/ {\n        return 444;\n    }\n}\n",
        symlink=False,
    )
    closed_bytes = closed.read_bytes()
    steps = [
        Step({"path": str(closed), "nginx_conf": str(nginx_sandbox.conf)}),
        Step({"path": str(site), "nginx_conf": str(nginx_sandbox.conf)}),
    ]
    run = Ansible(tmp_path).run(steps, closed)
    refused, applied = run.results
    assert refused["failed"] is True and refused["changed"] is False
    assert refused["msg"].startswith(
        f"{closed}:4: location /api/ proxies nothing: `return 444` ({closed}:5) answers every request itself"
    )
    assert run.files == [closed_bytes, closed_bytes]
    assert applied["changed"] is True
    (server,) = applied["servers"]
    assert [(c["directive"], c["file"], c["line"], c["family"]) for c in server["carried"]] == [
        (f"proxy_pass http://{strict_backend.upstream}", str(site), 10, "proxy settings"),
        ("proxy_set_header Host $host", str(site), 11, "proxy settings"),
    ]
    assert [(c["directive"], c["line"], c["family"]) for c in server["left_out"]] == [
        (f"root {nginx_sandbox.path('www')}", 6, "static files"),
        ("try_files $uri @app", 7, "ends or diverts the request"),
    ]
