"""Properties of the planner over generated site files (hypothesis), checked with a real ``nginx -t``.

For any generated site the planner either refuses with a message, or its edit: leaves every byte
outside the edited ranges identical, follows the file's line endings, passes ``nginx -t``, routes the
WebSocket URI to the WebSocket location, is idempotent, and is undone exactly by state=absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, List

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket, tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = pytest.mark.nginx

EXAMPLES = int(os.environ.get("AGAII_PROPERTY_EXAMPLES", "150"))
PATH = "/etc/nginx/sites-enabled/generated"


@dataclass(frozen=True)
class Style:
    unit: str
    newline: str
    brace_on_next_line: bool
    final_newline: bool
    comments: bool


styles = st.builds(
    Style,
    unit=st.sampled_from(["    ", "  ", "\t", "        "]),
    newline=st.sampled_from(["\n", "\r\n"]),
    brace_on_next_line=st.booleans(),
    final_newline=st.booleans(),
    comments=st.booleans(),
)
anchors = st.sampled_from(["/api/", "^~ /api/", "~ ^/api/", "~* ^/api/", "/"])
proxy_passes = st.sampled_from(["http://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000/api/"])
others = st.lists(
    st.sampled_from(["/static/", "~* \\.(js|css)$", "= /health", "/api/v2/", "~ ^/api/v1/", "@fallback"]),
    max_size=3,
    unique=True,
)
server_headers = st.lists(
    st.sampled_from(["Host $host", "X-Forwarded-For $proxy_add_x_forwarded_for"]), max_size=2, unique=True
)
anchor_bodies = st.lists(
    st.sampled_from(
        [
            "proxy_set_header X-Real-IP $remote_addr;",
            "proxy_buffering off;",
            "include proxy_params;",
            'proxy_set_header X-App "a b";',
            "client_max_body_size 10m;",
        ]
    ),
    max_size=3,
    unique=True,
)


def render_site(
    style: Style, anchor: str, proxy_pass: str, other: List[str], headers: List[str], body: List[str], port: int
) -> bytes:
    nl, unit = style.newline, style.unit
    lines: List[str] = []

    def block(head: str, inner: List[str], depth: int) -> None:
        pad = unit * depth
        if style.brace_on_next_line:
            lines.extend([pad + head, pad + "{"])
        else:
            lines.append(f"{pad}{head} {{")
        lines.extend(pad + unit + line for line in inner)
        lines.append(pad + "}")

    server: List[str] = [f"listen 127.0.0.1:{port};", "server_name generated.test;"]
    server += [f"proxy_set_header {h};" for h in headers]
    lines.append("server {")
    lines.extend(unit + line for line in server)
    for location in other:
        if style.comments:
            lines.append(unit + "# another location")
        block(f"location {location}", ["return 200 other;"], 1)
    if style.comments:
        lines.append(unit + "# the API")
    uri_free = proxy_pass if anchor in ("/api/", "^~ /api/", "/") else "http://127.0.0.1:8000"
    block(
        f"location {anchor}",
        [f"proxy_pass {uri_free};  # backend" if style.comments else f"proxy_pass {uri_free};", *body],
        1,
    )
    lines.append("}")
    text = nl.join(lines)
    return (text + nl if style.final_newline else text).encode()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[NginxSandbox]:
    with NginxSandbox() as box:
        yield box


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(style=styles, anchor=anchors, proxy_pass=proxy_passes, other=others, headers=server_headers, body=anchor_bodies)
def test_planner_properties(
    sandbox: NginxSandbox,
    style: Style,
    anchor: str,
    proxy_pass: str,
    other: List[str],
    headers: List[str],
    body: List[str],
) -> None:
    before = render_site(style, anchor, proxy_pass, other, headers, body, sandbox.port)
    config = load(PATH, before)
    try:
        plan = plan_websocket(config, PATH, Settings())
    except NginxConfigError as error:
        event(f"refused: {type(error).__name__}")
        assert str(error).strip()
        return
    event(f"{plan.servers[0].action} ({plan.servers[0].form})")
    after = plan.after[PATH]
    _assert_only_edited_ranges_changed(before, after, plan.edits)
    if style.newline == "\r\n":
        assert after.count(b"\n") == after.count(b"\r\n")
    assert after.endswith(style.newline.encode()) == style.final_newline
    _assert_nginx_accepts(sandbox, after)
    reloaded = load(PATH, after)
    chosen = route(tree(reloaded, reloaded.servers()[0]), plan.sample_uri).location
    assert chosen is not None and chosen.path in ("^/api/mqtt/ws/", "/api/mqtt/ws/")
    assert not plan_websocket(reloaded, PATH, Settings()).changed
    if plan.servers[0].action == "inserted":
        assert plan_websocket(reloaded, PATH, Settings(state="absent")).after[PATH] == before


def _assert_only_edited_ranges_changed(before: bytes, after: bytes, edits: list) -> None:
    cursor, offset = 0, 0
    for edit in sorted(edits, key=lambda e: e.start):
        assert after[cursor + offset : edit.start + offset] == before[cursor : edit.start]
        offset += len(edit.text) - (edit.end - edit.start)
        cursor = edit.end
    assert after[cursor + offset :] == before[cursor:]


def _assert_nginx_accepts(sandbox: NginxSandbox, site: bytes) -> None:
    sandbox.write_site("generated", site)
    result = sandbox.test()
    assert result.returncode == 0, result.stderr + site.decode(errors="replace")
