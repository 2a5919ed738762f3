"""The routing model against a real nginx: random location sets and URIs, 0 mismatches allowed.

Every generated location answers with its own id, nginx is asked for each URI (one server block per
location set, selected by Host), and the model's choice must be the same location.
"""

from __future__ import annotations

import http.client
import os
import random
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Directive, load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = pytest.mark.nginx

SETS = int(os.environ.get("AGAII_ROUTING_SETS", "260"))
URIS_PER_SET = 10
SEED = int(os.environ.get("AGAII_ROUTING_SEED", "20261125"))
SEGMENTS = ["api", "ws", "mqtt", "a", "b", "API", "v1", "static", "x.js"]
REGEX_TEMPLATES = [
    "^/{0}",
    "^/{0}/{1}/",
    "\\.(js|css)$",
    "{0}$",
    "^/{0}/[a-z]+/",
    "/{0}/",
    "^/{0}/(?<name>[a-z0-9]+)",
    "^/({0}|{1})/",
    "[0-9]+$",
    "^/{0}/{1}",
]


@dataclass
class GeneratedSet:
    name: str
    lines: List[str] = field(default_factory=list)
    prefixes: List[str] = field(default_factory=list)
    next_id: int = 0

    def new_id(self) -> str:
        self.next_id += 1
        return f"{self.name}-L{self.next_id}"


def _random_path(rng: random.Random, parent: str = "/") -> str:
    parts = [rng.choice(SEGMENTS) for _segment in range(rng.randint(0, 2))]
    path = parent.rstrip("/") + "/" + "/".join(parts)
    if parts and rng.random() < 0.5:
        path += "/"
    return path


def _regex(rng: random.Random) -> str:
    template = rng.choice(REGEX_TEMPLATES)
    return template.format(rng.choice(SEGMENTS).replace(".", "\\."), rng.choice(SEGMENTS).replace(".", "\\."))


def _locations(rng: random.Random, gen: GeneratedSet, depth: int, parent: Optional[str], indent: str) -> None:
    used_static: Set[Tuple[bool, str]] = set()
    used_regex: Set[str] = set()
    for _attempt in range(rng.randint(2, 6) if depth == 0 else rng.randint(1, 3)):
        kind = rng.choice(["", "", "^~", "=", "~", "~*"])
        if kind in ("~", "~*"):
            path = _regex(rng)
            if path in used_regex:
                continue
            used_regex.add(path)
        else:
            path = _random_path(rng, parent or "/")
            key = (kind == "=", path)
            if key in used_static:
                continue
            used_static.add(key)
            gen.prefixes.append(path)
        ident = gen.new_id()
        head = f'location {kind} "{path}"' if kind else f'location "{path}"'
        gen.lines.append(f"{indent}{head} {{")
        gen.lines.append(f'{indent}    return 200 "{ident}";')
        if depth == 0 and kind in ("", "^~") and rng.random() < 0.3:
            _locations(rng, gen, depth + 1, path, indent + "    ")
        gen.lines.append(f"{indent}}}")
    if depth == 0 and rng.random() < 0.2:
        gen.lines.append(f'{indent}location @named {{ return 200 "{gen.new_id()}"; }}')


def _uris(rng: random.Random, gen: GeneratedSet) -> List[str]:
    uris: List[str] = []
    while len(uris) < URIS_PER_SET:
        roll = rng.random()
        if roll < 0.35 and gen.prefixes:
            base = rng.choice(gen.prefixes)
            uri = base if rng.random() < 0.4 else base.rstrip("/") + "/" + rng.choice(SEGMENTS)
        elif roll < 0.5 and gen.prefixes:
            uri = rng.choice(gen.prefixes).rstrip("/") or "/"
        else:
            uri = _random_path(rng) + ("" if rng.random() < 0.7 else rng.choice(["x.js", "123", "mqtt/ws/s-1"]))
        uri = uri.replace("//", "/")
        if uri.startswith("/"):
            uris.append(uri)
    return uris


def generate(rng: random.Random, count: int) -> Tuple[str, Dict[str, List[str]]]:
    servers, uris = [], {}
    for index in range(count):
        gen = GeneratedSet(f"s{index}")
        _locations(rng, gen, 0, None, "    ")
        servers.append(
            f"server {{\n    listen 127.0.0.1:{{port}};\n    server_name {gen.name};\n" + "\n".join(gen.lines) + "\n}\n"
        )
        uris[gen.name] = _uris(rng, gen)
    return "".join(servers), uris


def _id_of(directive: Optional[Directive]) -> str:
    if directive is None:
        return "404"
    returns = [d for d in directive.block or () if d.name == "return"]
    return returns[0].args[1]


def ask_nginx(port: int, host: str, uri: str, connection: http.client.HTTPConnection) -> str:
    connection.request("GET", uri, headers={"Host": host})
    response = connection.getresponse()
    body = response.read().decode()
    return body if response.status == 200 else str(response.status)


def test_model_matches_nginx_on_generated_locations(nginx_sandbox: NginxSandbox) -> None:
    rng = random.Random(SEED)
    text, uris = generate(rng, SETS)
    site = text.replace("{port}", str(nginx_sandbox.port))
    nginx_sandbox.write_site("routing", site)
    nginx_sandbox.start()
    config = load("/routing", site.encode())
    servers = {s.names[0]: s for s in config.servers()}
    connection = http.client.HTTPConnection("127.0.0.1", nginx_sandbox.port, timeout=10)
    cases, unknown, mismatches = 0, 0, []
    for name, server_uris in uris.items():
        locations = tree(config, servers[name])
        for uri in server_uris:
            predicted = route(locations, uri)
            actual = ask_nginx(nginx_sandbox.port, name, uri, connection)
            cases += 1
            if not predicted.known:
                unknown += 1
                continue
            expected = _id_of(predicted.location.directive if predicted.location else None)
            if expected != actual:
                mismatches.append(f"{name} {uri}: model {expected} ({predicted.explain()}), nginx {actual}")
    connection.close()
    print(
        f"routing differential: {cases} cases, {cases - unknown} compared, {unknown} unknown, "
        f"{len(mismatches)} mismatches (seed {SEED})"
    )
    assert mismatches == []
    assert cases - unknown >= 2000
    assert unknown <= cases // 100
