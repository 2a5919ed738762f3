"""The field set (``tests/data/field``): real nginx files edited by upgrade_map + ws_location on a real nginx.

Each file is placed once in its own sandbox by :mod:`tests.support.corpus_sandbox` with every proxied
request sent to the RFC-strict echo backend (``strict_backend``), and nginx is started once. Then, for
every server of the file with a proxied location (the anchor: an api-like one first, else ``/``, else
another prefix, else a regex), the way the action plugins run (the file's name and the ``nginx -T`` dump):

1. ``plan_map`` adds or reuses ``map $http_upgrade``; ``plan_websocket`` inserts the WebSocket location
   before the anchor; nginx is reloaded with the result, and a real handshake to the sample URI through
   nginx gets 101 and its echo back;
2. every probe (the anchor's path and ``/`` on every server of the file, by its own port, scheme and
   name) answers with the same status, ``Location`` and body before and after the edit;
3. every byte of the file outside the edits is kept (the edits only insert);
4. a second run of both steps changes nothing.

A refusal is acceptable when it leaves every byte alone (counted by error class). The state is restored
between cases. Product defects found here are ``xfail(strict=True)`` in ``KNOWN_DEFECTS``;
``test_field_summary`` prints the figures docs/field-set.md reports and pins them.
"""

from __future__ import annotations

import csv
import http.client
import re
import ssl
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Config,
    Directive,
    Server,
    load,
    location_match,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import Plan, plan_websocket, tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_map import plan_map
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings, literal_prefix
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from tests.support.corpus_sandbox import Prepared, prepare, skip_category
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend, nginx_available_or_skip

pytestmark = [pytest.mark.nginx, pytest.mark.full]

FIELD_DIR = Path(__file__).resolve().parents[1] / "data" / "field"
WS_LOCATION = "^/api/mqtt/ws/"
ECHO = "field-set echo ✓"
PROBE_TIMEOUT = 5.0
REDISTRIBUTABLE = {
    "Apache-2.0",
    "MIT",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "ISC",
    "MPL-2.0",
    "GPL-2.0-only",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "LGPL-3.0-only",
    "CC0-1.0",
    "Unlicense",
}

# Why a file cannot run stand-alone (skip categories).
NO_SERVER_BLOCK = "no server block in the file (a server-level fragment or a main file of includes)"
NO_PROXIED_LOCATION = "no server has a proxied location"
RESOLVES_AT_RUN_TIME = "proxies through variables resolved by `resolver` at run time (no DNS in the sandbox)"
NEWER_SYNTAX = "syntax newer than nginx 1.22"
TEMPLATE = "unfilled template placeholder"

# Product defects: case id -> "<defect class>: <what happens>" (the case is xfail(strict=True)).
KNOWN_DEFECTS: Dict[str, str] = {}

# Outcome of every case: "pass", "refused: <error class>"; anything else fails the case.
EXPECTED_OUTCOMES: Dict[str, str] = {
    "oauth2-proxy__oauth2-proxy__contrib__local-environment__nginx.conf:2|/": (
        "kept access control: auth_request answers the handshake like the anchor"
    ),
}

# Files that cannot run stand-alone: file -> reason category.
EXPECTED_SKIPS: Dict[str, str] = {
    "JonasAlfredsson__docker-nginx-certbot__src__nginx_conf.d__redirector.conf": NO_PROXIED_LOCATION,
    (
        "JonasAlfredsson__docker-nginx-certbot__tests__fixtures__nginx_config__single_files__"
        "multi_server_multi_cert_multi_name.conf"
    ): NO_PROXIED_LOCATION,
    "absmach__magistrala__docker__nginx__nginx-key.conf": NEWER_SYNTAX,
    "authelia__authelia__internal__suites__example__compose__nginx__backend__nginx.conf": NO_PROXIED_LOCATION,
    "authelia__authelia__internal__suites__example__compose__nginx__portal__nginx.conf": RESOLVES_AT_RUN_TIME,
    "cryptpad__cryptpad__docs__example-advanced.nginx.conf": NEWER_SYNTAX,
    "cryptpad__cryptpad__docs__example.nginx.conf": NEWER_SYNTAX,
    "graphite-project__docker-graphite-statsd__conf__etc__nginx__nginx.conf": NO_SERVER_BLOCK,
    "home-assistant__addons__vlc__rootfs__usr__share__tempio__nginx.conf": TEMPLATE,
    "linuxserver__reverse-proxy-confs__forgejo.subfolder.conf.sample": NO_SERVER_BLOCK,
    "linuxserver__reverse-proxy-confs__jenkins.subfolder.conf.sample": NO_SERVER_BLOCK,
    "mattermost__docker__nginx__conf.d__default.conf": NEWER_SYNTAX,
    "overleaf__overleaf__services__clsi__nginx.conf": NO_PROXIED_LOCATION,
}

EXPECTED_SUMMARY: Dict[str, int] = {
    "files": 44,
    "repositories": 11,
    "servers": 57,
    "servers without a proxied location": 16,
    "files run": 31,
    "cases": 41,
    "cases run": 31,
    "cases pass": 30,
    "cases pass, access control kept": 1,
    "cases fail": 0,
    "probes (GET before/after)": 32,
    "files skipped": 13,
    f"  files skipped: {NO_SERVER_BLOCK}": 3,
    f"  files skipped: {NO_PROXIED_LOCATION}": 4,
    f"  files skipped: {RESOLVES_AT_RUN_TIME}": 1,
    f"  files skipped: {NEWER_SYNTAX}": 4,
    f"  files skipped: {TEMPLATE}": 1,
}


def _normalise(text: str) -> str:
    return re.sub(r"/tmp/nginx-sandbox-[^/\s]+/(?:\S*/)?", "", text)


# --------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    file: str
    repository: str
    path: str
    commit: str
    license: str
    kind: str


def read_field_sources() -> Dict[str, Source]:
    with (FIELD_DIR / "SOURCES.tsv").open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return {row["file"]: Source(**row) for row in rows}


SOURCES = read_field_sources()
FILES = sorted(p for p in FIELD_DIR.iterdir() if p.name in SOURCES)


# ----------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One run: in ``file``, the server at ``server_line`` with ``anchor`` as ``before``."""

    file: str
    server_line: int
    server_name: Optional[str]
    anchor: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.server_line}|{self.anchor}"

    def settings(self) -> Settings:
        return Settings(before=self.anchor, server_name=self.server_name, location=WS_LOCATION, match="auto")


def _locations(config: Config, directives: Sequence[Directive]) -> Iterator[Directive]:
    for directive in directives:
        if directive.name == "location" and directive.block is not None:
            yield directive
            yield from _locations(config, config.level(directive))


def _before_of(location: Directive) -> str:
    modifier, path = location_match(location)
    return f"{modifier} {path}" if modifier else path


def _proxies(config: Config, location: Directive) -> bool:
    return any(d.name == "proxy_pass" for d in config.level(location))


def choose_anchor(config: Config, server: Server) -> Optional[Directive]:
    """The proxied location a user would name: api-like, else ``/``, else a prefix, else a regex."""
    proxied = [
        loc
        for loc in _locations(config, server.directives())
        if location_match(loc)[0] not in ("@", "=") and _proxies(config, loc)
    ]

    def rank(location: Directive) -> int:
        modifier, path = location_match(location)
        if "api" in path:
            return 0
        if path == "/" and modifier in ("", "^~"):
            return 1
        return 2 if modifier in ("", "^~") else 3

    return min(proxied, key=rank) if proxied else None


def _server_choice(servers: List[Server], server: Server) -> Optional[str]:
    if len(servers) == 1 or not server.names:
        return None
    return server.names[0]


@dataclass
class FileCases:
    file: str
    servers: int = 0
    unproxied_servers: int = 0
    cases: List[Case] = field(default_factory=list)
    static_skip: Optional[str] = None


def cases_of(source: Path) -> FileCases:
    result = FileCases(source.name)
    path = f"/field/{source.name}"
    try:
        config = load(path, source.read_bytes())
    except NginxConfigError as error:
        category = TEMPLATE if "{{" in source.read_text(errors="replace") else "invalid"
        result.static_skip = f"{category}: the engine cannot load it: {_normalise(str(error))}"
        return result
    servers = config.servers_in(path)
    result.servers = len(servers)
    if not servers:
        result.static_skip = NO_SERVER_BLOCK
        return result
    for server in servers:
        anchor = choose_anchor(config, server)
        if anchor is None:
            result.unproxied_servers += 1
            continue
        result.cases.append(Case(source.name, server.line, _server_choice(servers, server), _before_of(anchor)))
    return result


STATIC = {source.name: cases_of(source) for source in FILES}
CASES = [case for static in STATIC.values() for case in static.cases]


def _param(case: Case):
    reason = KNOWN_DEFECTS.get(case.id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


# ---------------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class Door:
    """How a client reaches one server of the placed file: port, TLS, and the Host it sends."""

    port: int
    tls: bool
    host: str


def _host_for(names: Sequence[str]) -> str:
    for name in names:
        if not name or name == "_" or name.startswith("~") or "$" in name:
            continue
        if name.startswith("*."):
            return "probe" + name[1:]
        if name.endswith(".*"):
            return name[:-2] + ".test"
        if name.startswith("."):
            return name[1:]
        return name
    return "localhost"


def door_of(server: Server) -> Optional[Door]:
    ssl_on = any(d.name == "ssl" and d.args == ["on"] for d in server.directives())
    for listen in server.listens:
        if not listen or "quic" in listen:
            continue
        match = re.fullmatch(r"127\.0\.0\.1:(\d+)", listen[0])
        if match:
            return Door(int(match.group(1)), ssl_on or "ssl" in listen[1:], _host_for(server.names))
    return None


Answer = Tuple[int, Optional[str], bytes]


def get(door: Door, uri: str) -> Answer:
    """A plain GET: status, Location and body (or the connection error as the status 0 body)."""
    if door.tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", door.port, timeout=PROBE_TIMEOUT, context=context
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", door.port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", uri, headers={"Host": door.host})
        response = conn.getresponse()
        return response.status, response.getheader("Location"), response.read()
    except (OSError, http.client.HTTPException) as error:
        return 0, None, type(error).__name__.encode()
    finally:
        conn.close()


def anchor_uri(config: Config, server: Server, anchor: Directive) -> Optional[str]:
    """A URI the routing model sends to ``anchor`` (None when no simple one is found)."""
    modifier, path = location_match(anchor)
    if modifier in ("~", "~*"):
        prefix, _exact = literal_prefix(path.lstrip("^"))
        candidates = ["/" + prefix.lstrip("/"), "/" + prefix.lstrip("/") + "x", "/" + prefix.lstrip("/") + "/x"]
    else:
        candidates = [path if path.startswith("/") else "/" + path]
    nodes = tree(config, server)
    for uri in candidates:
        answer = route(nodes, uri)
        if answer.known and answer.location is not None and answer.location.directive is anchor:
            return uri
    return None


# ------------------------------------------------------------------------------ evaluation


@dataclass
class CaseResult:
    case: Case
    outcome: str = "unknown"  # pass | refused: X | fail | skipped: X
    problems: List[str] = field(default_factory=list)
    edited: List[str] = field(default_factory=list)
    probes: int = 0


@dataclass
class FileResult:
    file: str
    skip: Optional[str] = None
    results: Dict[str, CaseResult] = field(default_factory=dict)


class FieldRun:
    """One file in one running sandbox: state kept so that every case starts from the placed bytes."""

    def __init__(self, prepared: Prepared, backend: Backend) -> None:
        self.prepared = prepared
        self.sandbox = prepared.sandbox
        self.backend = backend
        self.baseline_files = self._snapshot()

    def _snapshot(self) -> Dict[Path, bytes]:
        root = self.sandbox.root
        return {p: p.read_bytes() for p in root.rglob("*.conf") if p.is_file()} | {
            self.prepared.path: self.prepared.data
        }

    def restore(self) -> bool:
        """Put every configuration file back; True when something had changed (a reload is due)."""
        changed = False
        current = {p for p in self.sandbox.root.rglob("*.conf") if p.is_file()}
        for extra in current - set(self.baseline_files):
            extra.unlink()
            changed = True
        for path, data in self.baseline_files.items():
            if path.read_bytes() != data:
                path.write_bytes(data)
                changed = True
        return changed

    def config(self) -> Tuple[str, Config]:
        dump = self.prepared.dump()
        name = self.prepared.loaded_name(dump)
        return name, load(name, Path(name).read_bytes(), dump)

    def write(self, after: Dict[str, bytes]) -> None:
        for name, data in after.items():
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            Path(name).write_bytes(data)

    def probes(self, config: Config, name: str, case: Case) -> List[Tuple[Door, str]]:
        result = []
        for server in config.servers_in(name):
            door = door_of(server)
            if door is None:
                continue
            uris = ["/"]
            if server.line == case.server_line:
                anchor = next(
                    (loc for loc in _locations(config, server.directives()) if _before_of(loc) == case.anchor), None
                )
                uri = anchor_uri(config, server, anchor) if anchor is not None else None
                if uri is not None and uri != "/":
                    uris.append(uri)
            result += [(door, uri) for uri in uris]
        return result

    def run(self, case: Case) -> CaseResult:
        result = CaseResult(case)
        if self.restore():
            self.sandbox.reload()
        name, config = self.config()
        server = next((s for s in config.servers_in(name) if s.line == case.server_line), None)
        door = door_of(server) if server is not None else None
        if door is None:
            result.outcome = "skipped: the server has no listen the sandbox can reach"
            return result
        probes = self.probes(config, name, case)
        result.probes = len(probes)
        before = {(d, uri): get(d, uri) for d, uri in probes}
        placed = Path(name).read_bytes()
        map_plan = plan_map(config)
        self.write(map_plan.after)
        try:
            name, config = self.config()
            plan = plan_websocket(config, name, case.settings())
        except NginxConfigError as error:
            self.restore()
            result.outcome = f"refused: {type(error).__name__}"
            if Path(name).read_bytes() != placed:
                result.problems.append("a refusal left the file changed")
            if not re.search(r":\d+|set |choose|give|add|remove", str(error)):
                result.problems.append(f"the refusal names no place nor fix: {error}")
            return result
        result.edited = [f"line {o.line} {o.action}" for o in plan.servers if o.action != "unchanged"]
        result.problems += self._byte_problems(name, placed, plan, map_plan.after)
        self.write(plan.after)
        answer = self.sandbox.test()
        if answer.returncode != 0:
            result.problems.append(f"nginx -t rejects the output: {answer.stderr.strip().splitlines()[-1]}")
            result.outcome = "fail"
            return result
        self.sandbox.reload()
        handshake_problems = self._handshake_problems(door, plan)
        guarded = _access_control(config, case)
        anchor_status = before.get((door, "/"), (None, None, b""))[0]
        if handshake_problems and guarded and f": {anchor_status} " in handshake_problems[0]:
            result.outcome = f"kept access control: {guarded} answers the handshake like the anchor"
            handshake_problems = []
        result.problems += handshake_problems
        result.problems += [
            f"(2) GET {uri} on port {d.port} ({d.host}) answered {before[(d, uri)][:2]} before, {now[:2]} after"
            for (d, uri), now in ((key, get(*key)) for key in before)
            if now != before[(d, uri)]
        ]
        result.problems += self._second_run_problems(case)
        if result.problems:
            result.outcome = "fail"
        elif result.outcome == "unknown":
            result.outcome = "pass"
        return result

    def _byte_problems(self, name: str, placed: bytes, plan: Plan, map_after: Dict[str, bytes]) -> List[str]:
        problems = []
        if set(plan.after) != {name}:
            problems.append(f"(3) the plan writes other files: {sorted(plan.after)}")
        edits = sorted((e for e in plan.edits if e.file == name), key=lambda e: e.start)
        if any(e.start != e.end for e in edits):
            problems.append(
                "(3) an edit replaces bytes of the file: " + "; ".join(e.why for e in edits if e.start != e.end)
            )
        kept = (
            b"".join(plan.after[name][start:end] for start, end in _gaps(edits, len(plan.after.get(name, placed))))
            if name in plan.after
            else placed
        )
        if name in plan.after and kept != placed:
            problems.append("(3) bytes outside the edits differ from the file")
        for path, data in map_after.items():
            if path == name:
                problems.append("(3) the map went into the site file")
            elif not data.startswith(b"# managed by agaii.nginx.upgrade_map"):
                original = self.baseline_files.get(Path(path), b"")
                if not data.startswith(original):
                    problems.append(f"(3) the map edit changed bytes of {path}")
        return problems

    def _handshake_problems(self, door: Door, plan: Plan) -> List[str]:
        scheme = "wss" if door.tls else "ws"
        url = f"{scheme}://127.0.0.1:{door.port}{plan.sample_uri}"
        answer = handshake(url, host=door.host, echo=ECHO, timeout=PROBE_TIMEOUT, verify_tls=False)
        if answer.status != 101 or answer.echo_received != ECHO:
            body = answer.body.strip().splitlines()[:1]
            return [f"(1) handshake {plan.sample_uri}: {answer.status} {answer.error or ''} {body}".rstrip()]
        return []

    def _second_run_problems(self, case: Case) -> List[str]:
        name, config = self.config()
        problems = []
        if plan_map(config).changed:
            problems.append("(4) a second upgrade_map run changes the configuration")
        try:
            again = plan_websocket(config, name, case.settings())
        except NginxConfigError as error:
            return [*problems, f"(4) the second ws_location run refuses: {error}"]
        if again.changed:
            problems.append("(4) a second ws_location run changes the file")
        return problems


ACCESS_CONTROL = ("auth_request", "auth_basic", "deny", "satisfy")


def _access_control(config: Config, case: Case) -> Optional[str]:
    """The access-control directive the anchor applies (carried into the WebSocket location), if any."""
    for server in config.servers():
        if server.line != case.server_line:
            continue
        for location in _locations(config, server.directives()):
            if _before_of(location) == case.anchor:
                names = [d.name for d in config.level(location) if d.name in ACCESS_CONTROL]
                return names[0] if names else None
    return None


def _gaps(edits: Sequence, size: int) -> List[Tuple[int, int]]:
    """Byte ranges of the output that are not inserted text (edits are sorted insertions)."""
    gaps, cursor, shift = [], 0, 0
    for edit in edits:
        gaps.append((cursor + shift, edit.start + shift))
        shift += len(edit.text) - (edit.end - edit.start)
        cursor = edit.end
    gaps.append((cursor + shift, size))
    return gaps


_RESULTS: Dict[str, FileResult] = {}


def evaluate(name: str, backend: Backend) -> FileResult:
    if name not in _RESULTS:
        _RESULTS[name] = _evaluate(FIELD_DIR / name, backend)
    return _RESULTS[name]


def _evaluate(source: Path, backend: Backend) -> FileResult:
    result = FileResult(source.name)
    static = STATIC[source.name]
    if static.static_skip:
        result.skip = static.static_skip
        return result
    if not static.cases:
        result.skip = NO_PROXIED_LOCATION
        return result
    sandbox = NginxSandbox(nginx_bin=nginx_available_or_skip())
    try:
        prepared = prepare(source, sandbox, backend=backend.upstream)
        if not prepared.passes:
            result.skip = f"{skip_category(prepared.baseline_message)}: {_normalise(prepared.baseline_message)}"
            return result
        name, config = FieldRun(prepared, backend).config()
        if any(d.name in ("daemon", "master_process") for d in config.files[name].directives):
            result.skip = "sets daemon/master_process (the sandbox runs nginx with -g 'daemon off; master_process on;')"
            return result
        if _resolves_at_run_time(prepared):
            result.skip = RESOLVES_AT_RUN_TIME
            return result
        if any(not s.listens for s in config.servers_in(name)):
            result.skip = "a server without listen (nginx would bind *:80 outside the sandbox)"
            return result
        sandbox.start()
        run = FieldRun(prepared, backend)
        for case in static.cases:
            result.results[case.id] = run.run(case)
    finally:
        sandbox.stop()
        sandbox.cleanup()
    return result


def _resolves_at_run_time(prepared: Prepared) -> bool:
    """A ``proxy_pass`` through variables that the backend stubs did not set to an address."""
    variable_pass = re.search(rb"^\s*proxy_pass\s+[^;]*\$", prepared.data, re.M) is not None
    return variable_pass and not any(stub.kind == "backend-set" for stub in prepared.stubs)


# ----------------------------------------------------------------------------------- tests


def test_field_sources() -> None:
    on_disk = {p.name for p in FIELD_DIR.iterdir() if p.name != "SOURCES.tsv"}
    assert on_disk == set(SOURCES), "SOURCES.tsv and the vendored files disagree"
    assert len(SOURCES) >= 40
    for source in SOURCES.values():
        assert source.license in REDISTRIBUTABLE, f"{source.file}: {source.license}"
        assert re.fullmatch(r"[0-9a-f]{40}", source.commit), source.file
        assert source.file == source.repository.replace("/", "__") + "__" + source.path.replace("/", "__")


@pytest.mark.parametrize("source", FILES, ids=[f.name for f in FILES])
def test_field_file(source: Path, strict_backend: Backend) -> None:
    result = evaluate(source.name, strict_backend)
    expected = EXPECTED_SKIPS.get(source.name)
    if result.skip is None:
        assert expected is None, f"expected a skip ({expected}), but the file runs"
        return
    assert expected is not None and result.skip.startswith(expected), result.skip
    pytest.skip(result.skip)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_field_case(case: Case, strict_backend: Backend) -> None:
    file_result = evaluate(case.file, strict_backend)
    if file_result.skip is not None:
        pytest.skip(file_result.skip)
    result = file_result.results[case.id]
    if result.outcome.startswith("skipped"):
        pytest.skip(result.outcome)
    assert not result.problems, "\n".join(result.problems)
    assert result.outcome == EXPECTED_OUTCOMES.get(case.id, "pass")


def test_field_summary(strict_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    results = [evaluate(f.name, strict_backend) for f in FILES]
    table = summary(results)
    with capsys.disabled():
        print("\n" + render(table))
    counts = {key: value for key, value in table.items() if not isinstance(value, list)}
    assert counts == EXPECTED_SUMMARY


def summary(results: List[FileResult]) -> Dict[str, object]:
    cases = [r for f in results for r in f.results.values()]
    table: Dict[str, object] = {
        "files": len(results),
        "repositories": len({SOURCES[f.file].repository for f in results}),
        "servers": sum(STATIC[f.file].servers for f in results),
        "servers without a proxied location": sum(STATIC[f.file].unproxied_servers for f in results),
        "files run": sum(1 for f in results if f.skip is None),
        "cases": sum(len(STATIC[f.file].cases) for f in results),
        "cases run": len(cases),
        "cases pass": sum(1 for r in cases if r.outcome == "pass"),
        "cases pass, access control kept": sum(1 for r in cases if r.outcome.startswith("kept access control")),
        "cases fail": sum(1 for r in cases if r.outcome == "fail"),
        "probes (GET before/after)": sum(r.probes for r in cases),
    }
    for reason, count in sorted(
        Counter(r.outcome for r in cases if r.outcome.startswith(("refused", "skipped"))).items()
    ):
        table[f"cases {reason}"] = count
    skips = Counter(f.skip.split(":", 1)[0] for f in results if f.skip is not None)
    table["files skipped"] = sum(skips.values())
    for reason, count in sorted(skips.items()):
        table[f"  files skipped: {reason}"] = count
    table["failures"] = sorted(f"{r.case.id}: {p}" for r in cases for p in r.problems)
    table["skipped files"] = sorted(f"{f.file}: {f.skip}" for f in results if f.skip is not None)
    return table


def render(table: Dict[str, object]) -> str:
    lines = ["agaii.nginx field-set summary", "-" * 72]
    for key, value in table.items():
        if isinstance(value, list):
            lines.append(f"{key}: {len(value)}")
            lines += [f"    {item}" for item in value]
        else:
            lines.append(f"{key:<64} {value}")
    return "\n".join(lines)
