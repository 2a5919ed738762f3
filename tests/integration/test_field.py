"""The field set (``tests/data/field``): real nginx files edited by upgrade_map + ws_location on a real nginx.

Each file is placed once in its own sandbox by :mod:`tests.support.corpus_sandbox` with every proxied
request sent to the RFC-strict echo backend (``strict_backend``) and ``http2 on;`` blanked out for nginx
1.22, and nginx is started once. A case is one server of the file and one anchor (``before``): every
location of the server that a URI can reach, in turn (plain proxies as much as locations that
``return``, ``rewrite``, ``try_files ... @named``, hold ``if`` blocks or ``error_page ... = @named``),
and ws_location's default ``/api/``. The way the action plugins run (the file's name, the ``nginx -T``
dump), each case checks:

1. ``plan_map`` adds or reuses ``map $http_upgrade``; ``plan_websocket`` inserts the WebSocket location;
   nginx is reloaded with the result, and a real handshake to the sample URI through every edited
   server gets 101 and its echo back;
2. every probe answers with the same status, ``Location`` and body before and after the edit: a plain
   GET of ``/`` and of a URI the routing model sends to each location, on every server of the file (by
   its own port, scheme and name);
3. every byte of the file outside the edits is kept (the edits only insert);
4. a second run of both steps changes nothing.

A refusal is acceptable when it leaves every byte alone and says where and what to do (counted by error
class). The state is restored and nginx reloaded between cases. Product defects found here are
``xfail(strict=True)`` in ``KNOWN_DEFECTS`` with their class; ``test_field_summary`` prints the figures
docs/field-set.md reports and pins them, and the exact set of defective cases.
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
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import name_matches
from tests.support.corpus_sandbox import Prepared, prepare, skip_category
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend, nginx_available_or_skip

try:  # the regex parser of the re module, used to write a URI a location regex matches
    from re import _parser as sre_parse  # type: ignore[attr-defined]  # Python >= 3.11
except ImportError:  # pragma: no cover - Python < 3.11
    import sre_parse  # type: ignore[no-redef]

pytestmark = [pytest.mark.nginx, pytest.mark.full]

FIELD_DIR = Path(__file__).resolve().parents[1] / "data" / "field"
WS_LOCATION = "^/api/mqtt/ws/"
DEFAULT_ANCHOR = Settings().before  # ws_location's default `before`, tried on every server
WRAPPER_SERVER_LINE = 1  # corpus_sandbox wraps a server-level fragment in `server {` on line 1 of a site
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
# What an anchor does besides proxying, by the directive family issue 17 names (figures of the docs).
ANCHOR_FEATURES: Dict[str, Tuple[str, ...]] = {
    "return": ("return",),
    "rewrite": ("rewrite",),
    "try_files": ("try_files",),
    "if": ("if",),
    "error_page": ("error_page",),
    "content (root/alias/fastcgi_pass/...)": (
        "root",
        "alias",
        "fastcgi_pass",
        "uwsgi_pass",
        "scgi_pass",
        "grpc_pass",
        "memcached_pass",
        "stub_status",
    ),
    "access control": ("auth_request", "auth_basic", "allow", "deny", "satisfy", "internal", "limit_req"),
    "proxy_pass": ("proxy_pass",),
}
ACCESS_CONTROL = ANCHOR_FEATURES["access control"]
LIVE_CONTENT = ("stub_status",)  # content that changes with every request: only status and Location compared

# Why a file cannot run stand-alone (skip categories).
NO_SERVER_BLOCK = "no server block in the file (a server-level fragment or a main file of includes)"
RESOLVES_AT_RUN_TIME = "proxies through variables resolved by `resolver` at run time (no DNS in the sandbox)"
TEMPLATE = "unfilled template placeholder"
INVALID = "fails nginx -t even stubbed"  # a test fixture of its project that repeats a directive on purpose
NEEDS_DEFINITIONS = "needs definitions from other files"

# Product defects: case id -> "<defect class>: <what happens>" (the case is xfail(strict=True): when the
# fix lands it XPASSes and fails, and the entry must go).
# Fixed so far: Plex's /library/streams/ anchor carried `proxy_pass_request_headers off;` (the backend got no
# client header and answered the handshake 400); the carry table now leaves it out ("breaks the handshake").
KNOWN_DEFECTS: Dict[str, str] = {}

# Files that cannot run stand-alone: file -> reason category.
EXPECTED_SKIPS: Dict[str, str] = {
    (
        "JonasAlfredsson__docker-nginx-certbot__tests__fixtures__nginx_config__single_files__"
        "multi_server_multi_cert_multi_name.conf"
    ): INVALID,
    "absmach__magistrala__docker__nginx__nginx-key.conf": NEEDS_DEFINITIONS,
    "authelia__authelia__internal__suites__example__compose__nginx__portal__nginx.conf": RESOLVES_AT_RUN_TIME,
    "graphite-project__docker-graphite-statsd__conf__etc__nginx__nginx.conf": NO_SERVER_BLOCK,
    "home-assistant__addons__vlc__rootfs__usr__share__tempio__nginx.conf": TEMPLATE,
}

EXPECTED_SUMMARY: Dict[str, int] = {
    "files": 44,
    "repositories": 11,
    "servers": 57,
    "locations (reachable by a URI)": 133,
    "  locations with return": 8,
    "  locations with rewrite": 5,
    "  locations with try_files": 4,
    "  locations with if": 14,
    "  locations with error_page": 4,
    "  locations with content (root/alias/fastcgi_pass/...)": 20,
    "  locations with access control": 12,
    "  locations with proxy_pass": 97,
    "files run": 39,
    "  of which server-level fragments, run inside a wrapper server": 2,
    "servers run": 47,
    "cases (server + anchor: each location, and /api/)": 191,
    "cases run": 149,
    "cases pass (101 + echo, answers unchanged, bytes kept, idempotent)": 101,
    "cases pass, access control kept": 2,
    "cases refused, every byte kept": 46,
    "  refused: AnchorNotFoundError": 45,
    "  refused: CannotWinError": 1,
    "cases fail (known defects)": 0,
    "probes per case (GET before/after), over the files run": 113,
    "GETs compared (probes x cases)": 737,
    "locations the model sends no URI to (not probed)": 1,
    "files skipped": 5,
    f"  files skipped: {INVALID}": 1,
    f"  files skipped: {NEEDS_DEFINITIONS}": 1,
    f"  files skipped: {NO_SERVER_BLOCK}": 1,
    f"  files skipped: {RESOLVES_AT_RUN_TIME}": 1,
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


def reachable_locations(config: Config, server: Server) -> List[Directive]:
    """Every location of the server a URI can reach (named ones are only reached by a redirect)."""
    return [loc for loc in _locations(config, server.directives()) if location_match(loc)[0] != "@"]


def _before_of(location: Directive) -> str:
    modifier, path = location_match(location)
    return f"{modifier} {path}" if modifier else path


def anchors_of(config: Config, server: Server) -> List[str]:
    """Every reachable location in file order as ``before``, then ws_location's default ``/api/``."""
    anchors = [_before_of(loc) for loc in reachable_locations(config, server)] + [DEFAULT_ANCHOR]
    return list(dict.fromkeys(anchors))


def anchor_features(config: Config, location: Directive) -> List[str]:
    names = {d.name for d in config.level(location)}
    return [feature for feature, family in ANCHOR_FEATURES.items() if names & set(family)]


def _server_choice(servers: List[Server], server: Server) -> Optional[str]:
    if len(servers) == 1 or not server.names:
        return None
    return server.names[0]


@dataclass
class FileCases:
    file: str
    servers: int = 0
    locations: int = 0
    features: Counter = field(default_factory=Counter)
    cases: List[Case] = field(default_factory=list)
    static_skip: Optional[str] = None
    fragment: bool = False


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
    top_locations = [d for d in config.files[path].directives if d.name == "location" and d.block is not None]
    if not servers and top_locations:
        return _fragment_cases(result, config, top_locations)
    if not servers:
        result.static_skip = NO_SERVER_BLOCK
        return result
    for server in servers:
        locations = reachable_locations(config, server)
        result.locations += len(locations)
        for location in locations:
            result.features.update(anchor_features(config, location))
        choice = _server_choice(servers, server)
        result.cases += [Case(source.name, server.line, choice, anchor) for anchor in anchors_of(config, server)]
    return result


def _fragment_cases(result: FileCases, config: Config, top_locations: List[Directive]) -> FileCases:
    """A server-level fragment runs inside the sandbox's wrapper server (line 1 of its site file)."""
    result.fragment = True
    locations = [loc for top in top_locations for loc in _locations(config, [top]) if location_match(loc)[0] != "@"]
    result.locations = len(locations)
    for location in locations:
        result.features.update(anchor_features(config, location))
    anchors = list(dict.fromkeys([_before_of(loc) for loc in locations] + [DEFAULT_ANCHOR]))
    result.cases = [Case(result.file, WRAPPER_SERVER_LINE, None, anchor) for anchor in anchors]
    return result


STATIC = {source.name: cases_of(source) for source in FILES}
CASES = [case for static in STATIC.values() for case in static.cases]


def _param(case: Case):
    reason = KNOWN_DEFECTS.get(case.id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


# ------------------------------------------------------------------------- example strings


def regex_example(regex: str, longer: bool = False) -> Optional[str]:
    """A string ``regex`` matches, written from its parse tree (None when it uses what is not written here).

    Optional parts and repeats are taken their least number of times, or once more with ``longer``;
    alternatives their first branch. The caller checks the answer against the regex (or the routing model).
    """
    try:
        parsed = sre_parse.parse(regex)
    except (re.error, OverflowError, RecursionError):
        return None
    return _write(list(parsed), longer)


def _write(items: Sequence[Tuple[object, object]], longer: bool) -> Optional[str]:
    out: List[str] = []
    for op, value in items:
        piece = _write_one(str(op), value, longer)
        if piece is None:
            return None
        out.append(piece)
    return "".join(out)


def _write_one(op: str, value: object, longer: bool) -> Optional[str]:
    if op == "LITERAL":
        return chr(value)  # type: ignore[arg-type]
    if op == "NOT_LITERAL":
        return "b" if chr(value) == "a" else "a"  # type: ignore[arg-type]
    if op == "ANY":
        return "a"
    if op == "IN":
        return _member(value)  # type: ignore[arg-type]
    if op == "BRANCH":
        return _write(list(value[1][0]), longer)  # type: ignore[index]
    if op in ("SUBPATTERN", "ATOMIC_GROUP"):
        return _write(list(value[-1] if op == "SUBPATTERN" else value), longer)  # type: ignore[index,arg-type]
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        least, most, body = value  # type: ignore[misc]
        text = _write(list(body), longer)
        count = min(least + 1, most) if longer else least
        return None if text is None else text * count
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return ""  # anchors and look-arounds: checked by matching the result afterwards
    return None


_CATEGORY_CHARS = {"CATEGORY_DIGIT": "0", "CATEGORY_WORD": "a", "CATEGORY_NOT_SPACE": "a", "CATEGORY_NOT_DIGIT": "a"}


def _member(items: Sequence[Tuple[object, object]]) -> Optional[str]:
    """A character of a ``[...]`` class: its first member, or for ``[^...]`` a letter it leaves out."""
    if items and str(items[0][0]) == "NEGATE":
        listed = "".join(_member([item]) or "" for item in items[1:])
        return next((c for c in "axz0-" if c not in listed), None)
    op, value = items[0]
    if str(op) == "LITERAL":
        return chr(value)  # type: ignore[arg-type]
    if str(op) == "RANGE":
        return chr(value[0])  # type: ignore[index]
    if str(op) == "CATEGORY":
        return _CATEGORY_CHARS.get(str(value))
    return None


def _limit_status(config: Config, location: Directive) -> Optional[int]:
    """The status ``limit_req`` answers with in ``location`` (``limit_req_status``, 503 by default), if limited."""
    level = config.level(location)
    if not any(d.name == "limit_req" for d in level):
        return None
    status = [d.args[0] for d in level if d.name == "limit_req_status" and d.args]
    return int(status[-1]) if status else 503


def location_uri(config: Config, server: Server, location: Directive) -> Optional[str]:
    """A URI the routing model sends to ``location`` (None when none of the tried ones is)."""
    modifier, path = location_match(location)
    if modifier in ("~", "~*"):
        written = [regex_example(path), regex_example(path, longer=True)]
        candidates = [f"{lead}{text.lstrip('/')}" for text in written if text is not None for lead in ("/", "/x")]
    else:
        rooted = path if path.startswith("/") else "/" + path
        candidates = [rooted, rooted + "x", rooted.rstrip("/") + "/x"]
    nodes = tree(config, server)
    for uri in candidates:
        answer = route(nodes, uri)
        if answer.known and answer.location is not None and answer.location.directive is location:
            return uri
    return None


# ---------------------------------------------------------------------------------- probes


@dataclass(frozen=True)
class Door:
    """How a client reaches one server of the placed file: port, TLS, and the Host it sends."""

    port: int
    tls: bool
    host: str


def _host_for(names: Sequence[str]) -> str:
    for name in names:
        if not name or name == "_" or "$" in name:
            continue
        if name.startswith("~"):
            example = regex_example(name[1:])
            if example and name_matches(name, example):
                return example
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


@dataclass(frozen=True)
class Probe:
    """A plain GET of ``uri`` through ``door``; ``location`` is where the model sends it ('' for ``/``).

    ``body_varies``: the location answers with live counters (``stub_status``), so only the status and
    ``Location`` are compared. ``limit_status``: the location is rate limited (``limit_req``), and an answer
    with this status says the probes came too fast, not how the location answers: such a pair is not compared.
    """

    door: Door
    uri: str
    server_line: int
    location: str
    body_varies: bool = False
    limit_status: Optional[int] = None

    def same(self, before: Answer, after: Answer) -> bool:
        if self.limit_status in (before[0], after[0]):
            return True
        return before[:2] == after[:2] if self.body_varies else before == after


@dataclass
class ProbePlan:
    probes: List[Probe]
    unprobed: List[str]  # locations for which no URI reaches them in the model (regexes it cannot run, ...)


def probe_plan(config: Config, name: str) -> ProbePlan:
    """``/`` and one URI per reachable location, on every server of the placed file that has a door."""
    probes: List[Probe] = []
    unprobed: List[str] = []
    for server in config.servers_in(name):
        door = door_of(server)
        if door is None:
            continue
        probes.append(Probe(door, "/", server.line, ""))
        for location in reachable_locations(config, server):
            uri = location_uri(config, server, location)
            if uri is None:
                unprobed.append(f"{server.line}|{_before_of(location)}")
            elif uri != "/":
                varies = any(d.name in LIVE_CONTENT for d in config.level(location))
                where = _before_of(location)
                probes.append(Probe(door, uri, server.line, where, varies, _limit_status(config, location)))
    return ProbePlan(list(dict.fromkeys(probes)), unprobed)


# ------------------------------------------------------------------------------ evaluation


@dataclass
class CaseResult:
    case: Case
    outcome: str = "unknown"  # pass | refused: X | fail | skipped: X | kept access control: X
    problems: List[str] = field(default_factory=list)
    edited: List[str] = field(default_factory=list)
    probes: int = 0
    message: str = ""


@dataclass
class FileResult:
    file: str
    skip: Optional[str] = None
    results: Dict[str, CaseResult] = field(default_factory=dict)
    probes: int = 0
    unprobed: List[str] = field(default_factory=list)


def loaded(prepared: Prepared) -> Tuple[str, Config]:
    """The file ws_location is pointed at, by the name nginx loads it by, and the model of what nginx loads
    (as the actions do). That is the placed file, or for a server-level fragment the site whose server
    includes it (the sandbox's wrapper, as SWAG's default site includes its ``*.subfolder.conf`` files)."""
    dump = prepared.dump()
    name = prepared.loaded_name(dump)
    config = load(name, Path(name).read_bytes(), dump)
    if config.servers_in(name):
        return name, config
    including = {s.file for s in config.servers() if any(d.file == name for d in s.directives())}
    if len(including) != 1:
        return name, config
    site = including.pop()
    return site, load(site, Path(site).read_bytes(), dump)


class FieldRun:
    """One file in one running sandbox: state kept so that every case starts from the placed bytes."""

    def __init__(self, prepared: Prepared, backend: Backend) -> None:
        self.prepared = prepared
        self.sandbox = prepared.sandbox
        self.backend = backend
        self.placed = self.config()
        name, config = self.placed
        self.baseline_files = self._snapshot() | {Path(name): Path(name).read_bytes()}
        self.probe_plan = probe_plan(config, name)
        self._mapped: Optional[Tuple[Dict[str, bytes], Tuple[str, Config]]] = None

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
        return loaded(self.prepared)

    def mapped_config(self, written: Dict[str, bytes]) -> Tuple[str, Config]:
        """The configuration with the map in place: the same for every case of the file, so loaded once."""
        if self._mapped is None or self._mapped[0] != written:
            self._mapped = (dict(written), self.config())
        return self._mapped[1]

    def write(self, after: Dict[str, bytes]) -> None:
        for name, data in after.items():
            Path(name).parent.mkdir(parents=True, exist_ok=True)
            Path(name).write_bytes(data)

    def answers(self) -> Dict[Probe, Answer]:
        return {probe: get(probe.door, probe.uri) for probe in self.probe_plan.probes}

    def run(self, case: Case) -> CaseResult:
        result = CaseResult(case)
        if self.restore():
            self.sandbox.reload(check=False)  # the placed bytes passed nginx -t before the start
        name, config = self.placed
        server = next((s for s in config.servers_in(name) if s.line == case.server_line), None)
        if server is None or door_of(server) is None:
            result.outcome = "skipped: the server has no listen the sandbox can reach"
            return result
        result.probes = len(self.probe_plan.probes)
        before = self.answers()
        placed = Path(name).read_bytes()
        map_plan = plan_map(config)
        self.write(map_plan.after)
        try:
            name, config = self.mapped_config(map_plan.after)
            plan = plan_websocket(config, name, case.settings())
        except NginxConfigError as error:
            return self._refused(result, error, name, placed)
        result.edited = [f"line {o.line} {o.action}" for o in plan.servers if o.action != "unchanged"]
        result.problems += self._byte_problems(name, placed, plan, map_plan.after)
        self.write(plan.after)
        answer = self.sandbox.test()
        if answer.returncode != 0:
            result.problems.append(f"nginx -t rejects the output: {answer.stderr.strip().splitlines()[-1]}")
            result.outcome = "fail"
            return result
        self.sandbox.reload(check=False)  # nginx -t passed just above
        result.problems += self._handshakes(config, name, plan, before, result)
        result.problems += [
            f"(2) GET {p.uri} on port {p.door.port} ({p.door.host}, server line {p.server_line}"
            f"{', ' + p.location if p.location else ''}) answered {_brief(before[p])} before, {_brief(now)} after"
            for p, now in self.answers().items()
            if not p.same(before[p], now)
        ]
        result.problems += self._second_run_problems(case)
        if result.problems:
            result.outcome = "fail"
        elif result.outcome == "unknown":
            result.outcome = "pass"
        return result

    def _refused(self, result: CaseResult, error: NginxConfigError, name: str, placed: bytes) -> CaseResult:
        self.restore()
        result.outcome = f"refused: {type(error).__name__}"
        result.message = _normalise(str(error)).splitlines()[0]
        if Path(name).read_bytes() != placed:
            result.problems.append("a refusal left the file changed")
        if not re.search(r":\d+|set |choose|give|add|remove", str(error)):
            result.problems.append(f"the refusal names no place nor fix: {error}")
        return result

    def _handshakes(
        self, config: Config, name: str, plan: Plan, before: Dict[Probe, Answer], result: CaseResult
    ) -> List[str]:
        """A real handshake through every edited server; an anchor's access control may answer instead."""
        problems: List[str] = []
        placed_name, placed_config = self.placed
        # The map may go into this file (a main file): lines shift, so servers are paired by their order.
        placed_line = {
            now.line: then.line for now, then in zip(config.servers_in(name), placed_config.servers_in(placed_name))
        }
        for outcome in plan.servers:
            if outcome.action == "unchanged" or outcome.file != name:
                continue
            server = next(s for s in config.servers_in(name) if s.line == outcome.line)
            door = door_of(server)
            if door is None:
                problems.append(f"(1) the edited server at line {outcome.line} has no door to shake hands through")
                continue
            status, detail = self._handshake(door, plan)
            if not detail:
                continue
            anchor = anchor_location(config, server, result.case.anchor)
            guard = _guard(config, anchor)
            anchor_status = {p.location: a[0] for p, a in before.items() if p.server_line == placed_line[outcome.line]}
            where = _before_of(anchor) if anchor is not None and _before_of(anchor) in anchor_status else ""
            if guard and anchor_status.get(where) == status:
                result.outcome = f"kept access control: {guard} answers the handshake like the anchor"
                continue
            problems.append(f"(1) handshake {plan.sample_uri} via line {outcome.line}: {detail}")
        return problems

    def _handshake(self, door: Door, plan: Plan) -> Tuple[int, str]:
        """(status, '' when 101 and the echo came back, else what went wrong)."""
        scheme = "wss" if door.tls else "ws"
        url = f"{scheme}://127.0.0.1:{door.port}{plan.sample_uri}"
        answer = handshake(url, host=door.host, echo=ECHO, timeout=PROBE_TIMEOUT, verify_tls=False)
        if answer.status == 101 and answer.echo_received == ECHO:
            return 101, ""
        body = answer.body.strip().splitlines()[:1]
        return answer.status, f"{answer.status} {answer.error or ''} {body}".strip()

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


def anchor_location(config: Config, server: Server, anchor: str) -> Optional[Directive]:
    """The location ``before=anchor`` names: one written so, else the one nginx uses for that path."""
    for location in reachable_locations(config, server):
        if _before_of(location) == anchor:
            return location
    answer = route(tree(config, server), anchor) if anchor.startswith("/") else None
    return answer.location.directive if answer is not None and answer.known and answer.location else None


def _guard(config: Config, location: Optional[Directive]) -> Optional[str]:
    """The access-control directive the anchor applies (a WebSocket location keeps it), if any."""
    names = [d.name for d in config.level(location) if d.name in ACCESS_CONTROL] if location is not None else []
    return names[0] if names else None


def _brief(answer: Answer) -> str:
    status, location, body = answer
    text = body[:60].decode("utf-8", "replace").replace("\n", " ")
    return f"{status} {location or ''} {text!r}".replace("  ", " ")


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
    sandbox = NginxSandbox(nginx_bin=nginx_available_or_skip())
    try:
        prepared = prepare(source, sandbox, backend=backend.upstream, newer_syntax=True)
        if not prepared.passes:
            result.skip = f"{skip_category(prepared.baseline_message)}: {_normalise(prepared.baseline_message)}"
            return result
        name, config = loaded(prepared)
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
        result.probes = len(run.probe_plan.probes)
        result.unprobed = run.probe_plan.unprobed
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


@pytest.mark.parametrize(
    ("regex", "expected"),
    [
        ("(/gitea)?/(api|info/lfs)", "/api"),
        (r"^/(?:register|login)$", "/register"),
        (r"\.(css|js)$", ".css"),
        (r"^/([0-9a-fA-F]{2})/x[^/]+$", "/00/xa"),
        (r"^(mx[1-2])\.mail\.example([0-9])*\.com$", "mx1.mail.example.com"),
        (r"^/(\d+)\s(?P<n>\w)", None),  # \s: no URI character is written for it
    ],
)
def test_regex_example(regex: str, expected: Optional[str]) -> None:
    assert regex_example(regex) == expected
    if expected is not None:
        assert re.search(regex, expected)
        longer = regex_example(regex, longer=True)
        assert longer is not None and re.search(regex, longer)


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
    assert result.outcome == "pass" or result.outcome.startswith(("refused: ", "kept access control: "))


def test_field_summary(strict_backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    results = [evaluate(f.name, strict_backend) for f in FILES]
    table = summary(results)
    with capsys.disabled():
        print("\n" + render(table))
    counts = {key: value for key, value in table.items() if not isinstance(value, list)}
    assert counts == EXPECTED_SUMMARY
    failing = {r.case.id for f in results for r in f.results.values() if r.problems}
    assert failing == set(KNOWN_DEFECTS), "KNOWN_DEFECTS must list exactly the cases that fail"


def summary(results: List[FileResult]) -> Dict[str, object]:
    cases = [r for f in results for r in f.results.values()]
    run = [f for f in results if f.skip is None]
    table: Dict[str, object] = {
        "files": len(results),
        "repositories": len({SOURCES[f.file].repository for f in results}),
        "servers": sum(STATIC[f.file].servers for f in results),
        "locations (reachable by a URI)": sum(STATIC[f.file].locations for f in results),
    }
    features: Counter = Counter()
    for f in results:
        features.update(STATIC[f.file].features)
    for feature in ANCHOR_FEATURES:
        table[f"  locations with {feature}"] = features[feature]
    table.update(
        {
            "files run": len(run),
            "  of which server-level fragments, run inside a wrapper server": sum(
                1 for f in run if STATIC[f.file].fragment
            ),
            "servers run": sum(STATIC[f.file].servers for f in run),
            "cases (server + anchor: each location, and /api/)": sum(len(STATIC[f.file].cases) for f in results),
            "cases run": len(cases),
            "cases pass (101 + echo, answers unchanged, bytes kept, idempotent)": sum(
                1 for r in cases if r.outcome == "pass"
            ),
            "cases pass, access control kept": sum(1 for r in cases if r.outcome.startswith("kept access control")),
            "cases refused, every byte kept": sum(1 for r in cases if r.outcome.startswith("refused")),
        }
    )
    for reason, count in sorted(Counter(r.outcome for r in cases if r.outcome.startswith("refused")).items()):
        table[f"  {reason}"] = count
    table["cases fail (known defects)"] = sum(1 for r in cases if r.problems)
    for reason, count in sorted(Counter(_defect_class(r.case.id) for r in cases if r.problems).items()):
        table[f"  {reason}"] = count
    for reason, count in sorted(Counter(r.outcome for r in cases if r.outcome.startswith("skipped")).items()):
        table[f"cases {reason}"] = count
    table["probes per case (GET before/after), over the files run"] = sum(f.probes for f in run)
    table["GETs compared (probes x cases)"] = sum(r.probes for r in cases)
    table["locations the model sends no URI to (not probed)"] = sum(len(f.unprobed) for f in run)
    skips = Counter(f.skip.split(":", 1)[0] for f in results if f.skip is not None)
    table["files skipped"] = sum(skips.values())
    for reason, count in sorted(skips.items()):
        table[f"  files skipped: {reason}"] = count
    table["failures"] = sorted(f"{r.case.id}: {p}" for r in cases for p in r.problems)
    table["refusals"] = sorted(f"{r.case.id}: {r.message}" for r in cases if r.outcome.startswith("refused"))
    table["not probed"] = sorted(f"{f.file}:{where}" for f in run for where in f.unprobed)
    table["skipped files"] = sorted(f"{f.file}: {f.skip}" for f in results if f.skip is not None)
    return table


def _defect_class(case_id: str) -> str:
    return "defect: " + KNOWN_DEFECTS.get(case_id, "unclassified: not in KNOWN_DEFECTS").split(":", 1)[0]


def render(table: Dict[str, object]) -> str:
    lines = ["agaii.nginx field-set summary", "-" * 72]
    for key, value in table.items():
        if isinstance(value, list):
            lines.append(f"{key}: {len(value)}")
            lines += [f"    {item}" for item in value]
        else:
            lines.append(f"{key:<72} {value}")
    return "\n".join(lines)
