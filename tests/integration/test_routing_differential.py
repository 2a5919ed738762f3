"""The routing model against a real nginx: random location sets and URIs, 0 mismatches allowed.

Every generated location answers with its own id, nginx is asked for each URI (one server block per
location set, selected by Host), and the model's choice must be the same location.
"""

from __future__ import annotations

import http.client
import os
import random
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, Directive, Server, load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import route_info
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import name_table
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.processes import free_port, free_ports

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
    proxied: List[str] = field(default_factory=list)
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


# --------------------------------------------------------------------------------------------------
# Servers, Host headers and request lines: several servers per address:port, every kind of server_name
# (conflicting ones too), Host values nginx normalises or refuses, requests without Host, URIs nginx
# answers 400, merge_slashes off, the automatic 301, one-word `location ~` and POSIX classes.
# Each scenario listens on its own port of 127.0.0.1; a batch of scenarios is one configuration.

CASES = int(os.environ.get("AGAII_ROUTING_CASES", "1500"))
SCENARIOS_PER_BATCH = 40
REQUESTS_PER_SCENARIO = 12
HOSTNAME = socket.gethostname()
SERVER_NAMES = [
    "example.com",
    "EXAMPLE.com",
    ".example.com",
    "*.example.com",
    "www.example.com",
    "www.example.*",
    "www.*",
    "api.example.com",
    "*.api.example.com",
    ".api.example.com",
    "example.com.",
    "localhost",
    '""',
    "$hostname",
    "~^(?<sub>[a-z]+)\\.example\\.com$",
    "~^API[0-9]*\\.",
    "~^www\\.",
    "~^[[:alpha:]]+[[:digit:]]\\.test$",
]
PCRE_ONLY_NAME = "~^(?<x>.+)\\Kz$"  # the model answers unknown when it has to read it
VALID_HOSTS = [
    "example.com",
    "EXAMPLE.COM",
    "example.com.",
    "example.com:8080",
    "example.com.:8080",
    "www.example.com",
    "www.example.org",
    "a.example.com",
    "b.a.example.com",
    "api.example.com",
    "x.api.example.com",
    "api7.test",
    "API7.test",
    "ab7.test",
    "other.test",
    "localhost",
    HOSTNAME,
    HOSTNAME.upper() + ".",
    "[::1]:8080",
    "[::1]",
    "127.0.0.1",
]
INVALID_HOSTS = ["a..b", ".", "", "example..com", "a/b", ".:8080", "x:..", "a b"]
POSIX_TEMPLATES = ["^/{0}/[-_[:alnum:]]+$", "^/[^[:digit:]]+/{0}", "^/[[:upper:]]", "[[:punct:]]{1}$"]


@dataclass
class Request:
    host: Optional[str]  # None: HTTP/1.0 without Host
    uri: str
    classes: Tuple[str, ...]


@dataclass
class Scenario:
    port: int
    text: str
    classes: Set[str]
    requests: List[Request] = field(default_factory=list)


def _server_names(rng: random.Random) -> List[str]:
    roll = rng.random()
    if roll < 0.15:
        return []
    if roll < 0.16:
        return [PCRE_ONLY_NAME]
    return rng.sample(SERVER_NAMES, rng.randint(1, 3))


def _scenario_locations(rng: random.Random, gen: GeneratedSet, backend: int, classes: Set[str]) -> None:
    _locations(rng, gen, 0, None, "    ")
    used = {line.strip() for line in gen.lines}
    for _proxy in range(rng.randint(0, 2)):
        path = "/" + "/".join(rng.sample(SEGMENTS, rng.randint(1, 2))) + "/"
        if any(f'"{path}"' in line for line in used) or path in gen.prefixes:
            continue
        gen.prefixes.append(path)
        gen.proxied.append(path)
        kind = rng.choice(["", "", "^~", "="])
        head = f'location {kind} "{path}"' if kind else f'location "{path}"'
        gen.lines.append(f"    {head} {{")
        gen.lines.append(f"        proxy_pass http://127.0.0.1:{backend};")
        gen.lines.append(f'        proxy_set_header X-Loc "{gen.new_id()}";')
        gen.lines.append("    }")
        classes.add("proxied-prefix")
    if rng.random() < 0.15:
        template = rng.choice(POSIX_TEMPLATES)
        regex = template.format(rng.choice(SEGMENTS).replace(".", "\\."), rng.choice("._-"))
        gen.lines.append(f'    location ~ "{regex}" {{ return 200 "{gen.new_id()}"; }}')
        classes.add("posix-class")
    if rng.random() < 0.05:
        gen.lines.append(f'    location ~ {{ return 200 "{gen.new_id()}"; }}')
        classes.add("one-word-tilde")


def _scenario(rng: random.Random, index: int, port: int, backend: int) -> Scenario:
    classes: Set[str] = set()
    servers: List[str] = []
    all_prefixes: List[str] = []
    proxied: List[str] = []
    count = rng.randint(2, 5)
    default = rng.randrange(count) if rng.random() < 0.5 else None
    for number in range(count):
        gen = GeneratedSet(f"c{index}s{number}")
        names = _server_names(rng)
        lines = [f"    listen 127.0.0.1:{port}{' default_server' if number == default else ''};"]
        if names:
            lines.append(f"    server_name {' '.join(names)};")
        lines.append(f'    add_header X-Server "{gen.name}" always;')
        lines.append("    root /nonexistent;")
        if rng.random() < 0.15:
            lines.append("    merge_slashes off;")
            classes.add("merge-slashes-off")
        _scenario_locations(rng, gen, backend, classes)
        servers.append("server {\n" + "\n".join(lines + gen.lines) + "\n}\n")
        all_prefixes += gen.prefixes
        proxied += gen.proxied
    scenario = Scenario(port, "".join(servers), classes)
    if name_table(load("/scenario", scenario.text.encode()).servers()).ignored:
        classes.add("conflicting-names")
    scenario.requests = [_request(rng, all_prefixes, proxied) for _request_number in range(REQUESTS_PER_SCENARIO)]
    return scenario


def _request(rng: random.Random, prefixes: List[str], proxied: List[str]) -> Request:
    classes: List[str] = []
    roll = rng.random()
    if roll < 0.08:
        host: Optional[str] = None
        classes.append("no-host")
    elif roll < 0.16:
        host = rng.choice(INVALID_HOSTS)
        classes.append("invalid-host")
    else:
        host = rng.choice(VALID_HOSTS)
        if host != host.lower() or host[-1:] == "." or ".:" in host or ":" in host:
            classes.append("normalised-host")
        if host.startswith("["):
            classes.append("ipv6-host")
    uri, uri_classes = _mutated_uri(rng, prefixes, proxied)
    return Request(host, uri, tuple(classes + uri_classes))


def _mutated_uri(rng: random.Random, prefixes: List[str], proxied: List[str]) -> Tuple[str, List[str]]:
    roll = rng.random()
    if roll < 0.12:
        base = rng.choice(proxied) if proxied and rng.random() < 0.7 else rng.choice(prefixes or ["/a/"])
        return (base.rstrip("/") or "/") + ("?x=1" if rng.random() < 0.2 else ""), ["auto-301"]
    base = rng.choice(prefixes) if prefixes and rng.random() < 0.7 else _random_path(rng)
    if rng.random() < 0.5:
        base = base.rstrip("/") + "/" + rng.choice([*SEGMENTS, "x_1", "Ab", "a-b"])
    if roll < 0.22:
        return base.replace("/", "//", rng.randint(1, 2)), ["merge-slashes"]
    if roll < 0.3:
        return rng.choice(["/./", "/x/../", "/%2e/"]).join(base.rsplit("/", 1)), ["dot-segments"]
    if roll < 0.38:
        return base + rng.choice(["%zz", "%", "%4", "%g1", "%%41"]), ["bad-escape"]
    if roll < 0.44:
        return base + rng.choice(["%00", "%00x"]), ["nul"]
    if roll < 0.5:
        return rng.choice(["/..", "/../", "/a/../.."]) + base, ["above-root"]
    if roll < 0.52:
        return base + rng.choice(["\x01", "\x7f", "?a\x1fb"]), ["control-character"]
    if roll < 0.58:
        return "/" + base[1:].replace("a", "%61", 1).replace("/", "%2F", 1), ["escaped"]
    if roll < 0.64:
        return base + "?x=1/../y", ["args"]
    return base, ["location"]


def _batch(rng: random.Random, backend: int, size: int) -> Tuple[str, List[Scenario]]:
    ports = free_ports(size, exclude=[backend])  # distinct: two groups on one port would be one group
    scenarios = [_scenario(rng, index, port, backend) for index, port in enumerate(ports)]
    head = "merge_slashes off;\n" if rng.random() < 0.25 else ""
    for scenario in scenarios:
        if head:
            scenario.classes.add("merge-slashes-off")
    backend_server = f'server {{\n    listen 127.0.0.1:{backend};\n    location / {{ return 200 "$http_x_loc"; }}\n}}\n'
    return head + backend_server + "".join(s.text for s in scenarios), scenarios


def _location_id(directive: Directive) -> str:
    for child in directive.block or ():
        if child.name == "return" or (child.name == "proxy_set_header" and child.args[0] == "X-Loc"):
            return child.args[1]
    raise AssertionError(f"generated location without an id at {directive.where}")


def _server_id(server: Server) -> str:
    return next(d.args[1] for d in server.directives() if d.name == "add_header")


def model_answer(config: Config, request: Request, port: int) -> Tuple[Optional[str], Optional[str]]:
    """What the model says nginx answers, in ``ask_raw``'s form, or None and why it is unknown."""
    info = route_info(config, request.host, request.uri, port, "127.0.0.1", HOSTNAME)
    if info.status == 400:
        return "400", None
    if info.unknown or info.choice.server is None:
        return None, info.unknown or "; ".join(info.reasons)
    server_id = _server_id(info.choice.server)
    if info.status == 301:
        args = request.uri.split("?", 1)[1] if "?" in request.uri else ""
        return f"301 {server_id} {info.redirect}{'?' + args if args else ''}", None
    if info.location is None:
        return f"404 {server_id}", None
    return f"200 {server_id} {_location_id(info.location)}", None


def ask_raw(port: int, request: Request) -> str:
    """nginx's answer: the status, the X-Server header and the body (200) or the Location's path (301)."""
    lines = [f"GET {request.uri} HTTP/1.0" if request.host is None else f"GET {request.uri} HTTP/1.1"]
    if request.host is not None:
        lines.append(f"Host: {request.host}")
    lines += ["Connection: close", "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("\r\n".join(lines).encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _blank, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {k.strip().lower(): v.strip() for k, _colon, v in (h.partition(":") for h in header_lines)}
    if status == 400:
        return "400"
    server_id = headers.get("x-server", "-")
    if status == 301:
        location = urlsplit(headers["location"])
        return f"301 {server_id} {location.path}{'?' + location.query if location.query else ''}"
    if status == 200:
        return f"200 {server_id} {body.decode()}"
    return f"{status} {server_id}"


def test_model_matches_nginx_on_servers_hosts_and_request_lines(nginx_sandbox: NginxSandbox) -> None:
    rng = random.Random(SEED)
    backend = free_port()
    counts: Counter[str] = Counter()
    cases, mismatches = 0, []
    unknown: Counter[str] = Counter()
    started = False
    while cases < CASES:
        size = min(SCENARIOS_PER_BATCH, -(-(CASES - cases) // REQUESTS_PER_SCENARIO))
        text, scenarios = _batch(rng, backend, size)
        site = nginx_sandbox.write_site("routing", text, symlink=False)
        if started:
            nginx_sandbox.reload()
        else:
            nginx_sandbox.start(ports=[backend])
            started = True
        config = load(str(site), text.encode(), nginx_sandbox.dump().encode())
        for scenario in scenarios:
            for request in scenario.requests[: CASES - cases]:
                cases += 1
                counts.update(request.classes)
                counts.update(scenario.classes)
                expected, why = model_answer(config, request, scenario.port)
                actual = ask_raw(scenario.port, request)
                counts[f"nginx {actual.split()[0]}"] += 1
                if expected is None:
                    unknown[str(why)] += 1
                    continue
                if expected != actual:
                    mismatches.append(
                        f"port {scenario.port} Host {request.host!r} {request.uri!r} {request.classes}: "
                        f"model {expected!r}, nginx {actual!r}"
                    )
    summary = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    print(
        f"routing differential (servers): {cases} cases, {cases - sum(unknown.values())} compared, "
        f"{sum(unknown.values())} unknown, {len(mismatches)} mismatches (seed {SEED}); classes: {summary}"
    )
    assert mismatches[:20] == []
    assert [why for why in unknown if "which the model does not emulate" not in why] == []
    assert sum(unknown.values()) <= cases // 20
    generated = {"no-host", "invalid-host", "normalised-host", "ipv6-host", "nginx 301", "nginx 400", "merge-slashes"}
    generated |= {"merge-slashes-off", "bad-escape", "nul", "above-root", "one-word-tilde", "posix-class"}
    generated |= {"conflicting-names", "control-character"}
    assert generated <= set(counts), f"classes never generated: {sorted(generated - set(counts))}"
