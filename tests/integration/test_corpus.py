"""The engine against 67 real-world nginx files (``tests/data/corpus``), judged by Debian's nginx 1.22.

Each corpus file is placed once in its own sandbox by :mod:`tests.support.corpus_sandbox` (stubs keep
every line where it was), then:

- it loads, and splicing zero edits gives its bytes back;
- every api-like location (a location whose path contains ``api``, not named) is used as ``before``
  for a plan of ``^/api/mqtt/ws/`` (match=auto) in its server, and ``before='/api/'`` is tried on
  every server. A plan must (a) pass ``nginx -t`` when the file passed it before, (b) send the
  sample URI to the WebSocket location by the routing model on the re-loaded output, (c) change
  nothing when planned again, (d) change no byte outside its edits (and only inside the changed
  server blocks), (e) give the WebSocket location every proxy header the anchor location sends, and
  (f) come back out with state=absent to the exact input bytes. A refusal must leave the bytes alone
  and say where (file and line) or what to set;
- each case runs twice: on the file alone (``load(path, data)``, mode ``file``) and, for files nginx
  accepts, the way the action plugin loads a site: under the name ``nginx -T`` lists it by, with the
  dump (mode ``dump``);
- the plan on the stubbed bytes matches the plan on the corpus bytes (stubs do not matter).

Engine defects found here are ``xfail(strict=True)`` with the reason in ``KNOWN_ENGINE_PROBLEMS``;
the summary test prints the counts and pins them.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Config,
    Directive,
    Server,
    load,
    location_match,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    NginxConfigError,
    UnsupportedConfigError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import Plan, plan_websocket, tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings, parse_location
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.splice import apply_edits, splice
from tests.support.corpus import corpus_files, require_corpus
from tests.support.corpus_sandbox import Prepared, prepare, read_sources
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = [pytest.mark.nginx, pytest.mark.full]

WS_LOCATION = "^/api/mqtt/ws/"
WS_PREFIX = "/api/mqtt/ws/"
WS_FORMS = {("~", WS_LOCATION), ("^~", WS_PREFIX), ("", WS_PREFIX)}
DEFAULT_BEFORE = "/api/"
COLLECTION_ROOT = "/corpus"
CORPUS_SIZE = 67
# Files SOURCES.tsv says pass `nginx -t` once stubbed (Debian's nginx, no extra module): 67 - 16.
STUBBED_PASS = 51

# --------------------------------------------------------------------------- expected results

# Outcome of every api-like case: "<action>/<form>" per changed server, or the refusal's class.
EXPECTED_API = {
    # these anchors hand their requests to `location @api` (try_files /dev/null @api): planned from it
    "Chocobozzz__PeerTube__support__nginx__peertube|= /api/v1/users/me/avatar/pick|-": "inserted/regex",
    "Chocobozzz__PeerTube__support__nginx__peertube|= /api/v1/videos/upload|-": "inserted/regex",
    # five servers named 127.0.0.1 on five ports, each with its own upstream: refused with the list (choose by listen)
    "LemmyNet__lemmy__docker__federation__nginx.conf|~ ^/(api|pictrs|feeds|nodeinfo|.well-known)|127.0.0.1": (
        "ServerSelectionError"
    ),
    "LemmyNet__lemmy__docker__nginx.conf|~ ^/(api|pictrs|feeds|nodeinfo|version|.well-known)|-": "inserted/regex",
    "NginxProxyManager__nginx-proxy-manager__docker__rootfs__etc__nginx__conf.d__dev.conf|/api|-": (
        "AnchorNotFoundError"
    ),
    "NginxProxyManager__nginx-proxy-manager__docker__rootfs__etc__nginx__conf.d__dev.conf|/api/|-": "inserted/prefix",
    "buqiyuan__nest-admin__deploy__web__default.conf|^~ /api/|-": "inserted/prefix",
    "buqiyuan__nest-admin__deploy__web__default.conf|^~ /ws-api/|-": "CannotWinError",
    "jitsi__jitsi-meet__doc__debian__jitsi-meet__jitsi-meet.example|= /external_api.js|jitsi-meet.example.com": (
        "AnchorNotFoundError"
    ),
    "linuxserver__reverse-proxy-confs__homeassistant.subdomain.conf.sample|~ ^/(api|local|media)/|-": (
        "inserted/regex"
    ),
    "linuxserver__reverse-proxy-confs__radarr.subdomain.conf.sample|~ (/radarr)?/api|-": "inserted/regex",
    "linuxserver__reverse-proxy-confs__vaultwarden.subdomain.conf.sample|~ (/vaultwarden)?/api|-": "inserted/regex",
    "mastodon__mastodon__dist__nginx.conf|^~ /api/v1/streaming|example.com": "inserted/regex",
    "yangzongzhuan__RuoYi-Cloud__docker__nginx__conf__nginx.conf|/prod-api/|-": "CannotWinError",
}

# Engine defects this test found: case id -> the precise reason (the case is xfail(strict=True)).
KNOWN_ENGINE_PROBLEMS: Dict[str, str] = {}

# Default before='/api/': the cases that plan (keyed by file and server_name); every other is AnchorNotFoundError.
EXPECTED_DEFAULT: Dict[Tuple[str, Optional[str]], str] = {
    ("CTFd__CTFd__conf__nginx__http.conf", None): "inserted/regex",
    # /api/ reaches a location that hands its requests to a named location (try_files ... @api, @discourse)
    ("Chocobozzz__PeerTube__support__nginx__peertube", None): "inserted/regex",
    ("discourse__discourse__config__nginx.sample.conf", None): "inserted/regex",
    ("LemmyNet__lemmy__docker__federation__nginx.conf", "127.0.0.1"): "ServerSelectionError",
    ("LemmyNet__lemmy__docker__nginx.conf", None): "inserted/regex",
    ("NginxProxyManager__nginx-proxy-manager__docker__rootfs__etc__nginx__conf.d__dev.conf", None): "inserted/prefix",
    ("Thingy-project-red__thingy-host__nginx__node.thingy-project-red.com", None): "inserted/regex",
    ("Thingy-project-red__thingy-host__nginx__websocket", None): "inserted/regex",
    ("UP-NextPush__server-app__reverse_proxy_examples__nginx.conf", "your.domain.tld"): "inserted/regex",
    ("Valian__docker-nginx-auto-ssl__snippets__server-proxy.conf", None): "inserted/regex",
    ("buqiyuan__nest-admin__deploy__web__default.conf", None): "inserted/prefix",
    (
        "certbot__certbot__certbot-compatibility-test__nginx__nginx-roundtrip-testdata__79-configs__site-23325",
        "random7381.example.org",
    ): "inserted/regex",
    (
        "certbot__certbot__certbot-compatibility-test__nginx__nginx-roundtrip-testdata__79-configs__site-9426",
        "random9123.example.org",
    ): "inserted/regex",
    (
        "certbot__certbot__certbot-compatibility-test__nginx__nginx-roundtrip-testdata__full-example__nginx.conf",
        "domain2.com",
    ): "inserted/regex",
    (
        "certbot__certbot__certbot-compatibility-test__nginx__nginx-roundtrip-testdata__full-example__nginx.conf",
        "big.server.com",
    ): "inserted/regex",
    (
        "certbot__certbot__certbot-compatibility-test__nginx__nginx-roundtrip-testdata__minio__sites-enabled__nginx.conf",
        None,
    ): "inserted/regex",
    ("gitlabhq__gitlabhq__lib__support__nginx__gitlab-ssl", "YOUR_SERVER_FQDN"): "inserted/regex",
    ("home-assistant__addons__deconz__rootfs__etc__nginx__nginx.conf", None): "inserted/regex",
    ("linuxserver__reverse-proxy-confs__code-server.subdomain.conf.sample", None): "inserted/regex",
    ("linuxserver__reverse-proxy-confs__homeassistant.subdomain.conf.sample", None): "inserted/regex",
    ("linuxserver__reverse-proxy-confs__nextcloud.subdomain.conf.sample", None): "inserted/regex",
    (
        "linuxserver__reverse-proxy-confs__openvscode-server.subdomain.conf.sample",
        "openvscode-server.*",
    ): "inserted/regex",
    (
        "linuxserver__reverse-proxy-confs__openvscode-server.subdomain.conf.sample",
        "~^(?<upstream_port>[0-9]{1,10})\\.openvscode-server\\..*$",
    ): "inserted/regex",
    (
        "linuxserver__reverse-proxy-confs__openvscode-server.subdomain.conf.sample",
        "~^(?<upstream_port>[0-9]{1,10})s\\.openvscode-server\\..*$",
    ): "inserted/regex",
    ("linuxserver__reverse-proxy-confs__radarr.subdomain.conf.sample", None): "inserted/regex",
    ("linuxserver__reverse-proxy-confs__synapse.subdomain.conf.sample", None): "inserted/regex",
    ("linuxserver__reverse-proxy-confs__vaultwarden.subdomain.conf.sample", None): "inserted/regex",
    ("mastodon__mastodon__dist__nginx.conf", "example.com"): "inserted/regex",
    ("misskey-dev__misskey__docs__examples__misskey.nginx", "example.tld"): "inserted/regex",
    ("netbox-community__netbox__contrib__nginx.conf", "netbox.example.com"): "inserted/regex",
    ("quantiota__AI-Agent-Farm__doc__it-admin__nginx__gpuserver__default", "hub.domain.tld"): "inserted/regex",
    ("quantiota__AI-Agent-Farm__doc__it-admin__nginx__gpuserver__default", "database.domain.tld"): "inserted/regex",
    ("quantiota__AI-Agent-Farm__doc__it-admin__nginx__gpuserver__default", "dashboard.domain.tld"): "inserted/regex",
    ("quantiota__AI-Agent-Farm__doc__it-admin__nginx__gpuserver__default", "vscode.domain.tld"): "inserted/regex",
    ("quantiota__AI-Agent-Farm__doc__it-admin__nginx__gpuserver__default", "questdb.domain.tld"): "inserted/regex",
    ("quantiota__AI-Agent-Farm__doc__it-admin__nginx__gpuserver__default", "grafana.domain.tld"): "inserted/regex",
    ("socketio__socket.io__examples__cluster-nginx__nginx.conf", None): "inserted/regex",
}
EXPECTED_SUMMARY: Dict[str, int] = {
    "files": 67,
    "files loaded": 67,
    "files passing nginx -t before any edit": 51,
    "servers": 104,
    "api-like locations": 18,
    "file/api cases": 14,
    "file/api planned": 9,
    "file/api planned, servers edited": 9,
    "file/api planned, nginx -t passed after edit": 7,
    "file/api planned, file failed nginx -t before": 2,
    "file/api unchanged": 0,
    "file/api refused: AnchorNotFoundError": 2,
    "file/api refused: CannotWinError": 2,
    "file/api refused: ServerSelectionError": 1,
    "file/api with engine problems": 0,
    "file/default cases": 84,
    "file/default planned": 36,
    "file/default planned, servers edited": 36,
    "file/default planned, nginx -t passed after edit": 32,
    "file/default planned, file failed nginx -t before": 4,
    "file/default unchanged": 0,
    "file/default refused: AnchorNotFoundError": 47,
    "file/default refused: ServerSelectionError": 1,
    "file/default with engine problems": 0,
    "dump/api cases": 12,
    "dump/api planned": 7,
    "dump/api planned, servers edited": 7,
    "dump/api planned, nginx -t passed after edit": 7,
    "dump/api planned, file failed nginx -t before": 0,
    "dump/api unchanged": 0,
    "dump/api refused: AnchorNotFoundError": 2,
    "dump/api refused: CannotWinError": 2,
    "dump/api refused: ServerSelectionError": 1,
    "dump/api with engine problems": 0,
    "dump/default cases": 54,
    "dump/default planned": 32,
    "dump/default planned, servers edited": 32,
    "dump/default planned, nginx -t passed after edit": 32,
    "dump/default planned, file failed nginx -t before": 0,
    "dump/default unchanged": 0,
    "dump/default refused: AnchorNotFoundError": 21,
    "dump/default refused: ServerSelectionError": 1,
    "dump/default with engine problems": 0,
    "skipped for sandbox reasons": 16,
    "  skipped: invalid as a stand-alone file": 2,
    "  skipped: invalid as a stand-alone file; also needs module lua (libnginx-mod-http-lua)": 2,
    "  skipped: needs definitions from other files": 7,
    "  skipped: needs module lua (libnginx-mod-http-lua, not installed)": 1,
    "  skipped: needs module stream (libnginx-mod-stream, not installed)": 1,
    "  skipped: syntax newer than nginx 1.22": 1,
    "  skipped: unfilled template placeholder": 1,
    "  skipped: unfilled template placeholder; also needs module lua (libnginx-mod-http-lua)": 1,
}


# --------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One plan to try: ``before`` and ``server_name`` in one corpus file."""

    file: str
    kind: str  # "api" (an api-like location as before) or "default" (before='/api/')
    before: str
    server_name: Optional[str]
    server_line: int

    @property
    def id(self) -> str:
        text = f"{self.file}|{self.before}|{self.server_name or '-'}"
        return text if self.kind == "api" else f"{self.kind}|{text}"

    def settings(self) -> Settings:
        return Settings(before=self.before, server_name=self.server_name, location=WS_LOCATION, match="auto")


def _walk_locations(config: Config, directives: Sequence[Directive]):
    for directive in directives:
        if directive.name == "location" and directive.block is not None:
            yield directive
            yield from _walk_locations(config, config.level(directive))


def _server_choice(servers: List[Server], server: Server) -> Optional[str]:
    if len(servers) == 1 or not server.names:
        return None
    return server.names[0]


def _before_of(location: Directive) -> str:
    modifier, path = location_match(location)
    return f"{modifier} {path}" if modifier else path


def cases_of(config: Config, path: str, file: str) -> List[Case]:
    """Every api-like case and every default case of one file, deduplicated by (before, server_name)."""
    servers = config.servers_in(path)
    found: Dict[str, Case] = {}
    for server in servers:
        choice = _server_choice(servers, server)
        for location in _walk_locations(config, server.directives()):
            modifier, location_path = location_match(location)
            if "api" in location_path and modifier != "@":
                case = Case(file, "api", _before_of(location), choice, server.line)
                found.setdefault(case.id, case)
        default = Case(file, "default", DEFAULT_BEFORE, choice, server.line)
        found.setdefault(default.id, default)
    return list(found.values())


def _collect() -> Tuple[List[Path], List[Case]]:
    files = corpus_files()
    cases: List[Case] = []
    for corpus_file in files:
        path = f"{COLLECTION_ROOT}/{corpus_file.name}"
        try:
            config = load(path, corpus_file.read_bytes())
        except Exception:  # test_corpus_file_loads reports it
            continue
        cases += cases_of(config, path, corpus_file.name)
    return files, cases


FILES, CASES = _collect()
API_CASES = [case for case in CASES if case.kind == "api"]
DEFAULT_CASE_LIST = [case for case in CASES if case.kind == "default"]


def _param(case: Case):
    reason = KNOWN_ENGINE_PROBLEMS.get(case.id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


# ------------------------------------------------------------------------------ evaluation


@dataclass
class CaseResult:
    case: Case
    mode: str
    status: str = "unknown"  # planned | unchanged | refused | crashed
    outcome: str = ""
    error: Optional[NginxConfigError] = None
    plan: Optional[Plan] = None
    nginx_t: Optional[bool] = None
    problems: List[str] = field(default_factory=list)
    stub_mismatch: Optional[str] = None


@dataclass
class FileEvaluation:
    file: str
    prepared: Optional[Prepared] = None
    load_error: Optional[BaseException] = None
    servers: int = 0
    api_locations: int = 0
    results: Dict[str, CaseResult] = field(default_factory=dict)
    dump_error: Optional[str] = None

    def result(self, mode: str, case: Case) -> CaseResult:
        return self.results[f"{mode}:{case.id}"]


_EVALUATIONS: Dict[str, FileEvaluation] = {}


def evaluation(name: str) -> FileEvaluation:
    """Place the file in a fresh sandbox, run all its cases, and remove the sandbox (cached)."""
    if name not in _EVALUATIONS:
        corpus_file = next(f for f in FILES if f.name == name)
        _EVALUATIONS[name] = _evaluate(corpus_file)
    return _EVALUATIONS[name]


def _evaluate(corpus_file: Path) -> FileEvaluation:
    result = FileEvaluation(corpus_file.name)
    sandbox = NginxSandbox()
    try:
        prepared = prepare(corpus_file, sandbox, _SOURCES.get(corpus_file.name))
        result.prepared = prepared
        path = str(prepared.path)
        try:
            config = load(path, prepared.data)
        except Exception as exc:  # reported by test_corpus_file_loads
            result.load_error = exc
            return result
        servers = config.servers_in(path)
        result.servers = len(servers)
        result.api_locations = sum(
            1
            for server in servers
            for location in _walk_locations(config, server.directives())
            if "api" in location_match(location)[1] and location_match(location)[0] != "@"
        )
        cases = [c for c in CASES if c.file == corpus_file.name]
        for case in cases:
            outcome = run_case(prepared, config, case, "file", path)
            outcome.stub_mismatch = _compare_with_original(prepared, case, outcome)
            result.results[f"file:{case.id}"] = outcome
        if prepared.passes:
            _evaluate_with_dump(prepared, cases, result)
    finally:
        sandbox.cleanup()
    return result


_SOURCES = read_sources() if FILES else {}


def _evaluate_with_dump(prepared: Prepared, cases: List[Case], result: FileEvaluation) -> None:
    """The same cases the way the action plugin loads a site: with the `nginx -T` dump."""
    dump = prepared.dump()
    name = prepared.loaded_name(dump)
    try:
        config = load(name, prepared.data, dump)
    except NginxConfigError as error:
        result.dump_error = f"the dump does not load: {error}"
        return
    for case in cases:
        result.results[f"dump:{case.id}"] = run_case(prepared, config, case, "dump", name, dump)


def run_case(
    prepared: Prepared, config: Config, case: Case, mode: str, path: str, dump: Optional[bytes] = None
) -> CaseResult:
    """Plan ``case`` on ``config`` (``path`` is the file's name in it) and check everything."""
    data = prepared.data
    snapshot = bytes(data)
    result = CaseResult(case, mode)
    try:
        plan = plan_websocket(config, path, case.settings())
    except NginxConfigError as error:
        result.status, result.error, result.outcome = "refused", error, type(error).__name__
        if config.files[path].data != snapshot:
            result.problems.append("a refusal changed the loaded bytes")
        result.problems += _refusal_problems(error, path, data, config)
        return result
    except Exception as error:  # a crash is an engine defect, never a refusal
        result.status, result.outcome = "crashed", f"{type(error).__name__}: {error}"
        result.problems.append(f"crashed: {type(error).__name__}: {error}")
        return result
    result.plan = plan
    if config.files[path].data != snapshot or plan.before.get(path) != snapshot:
        result.problems.append("planning changed the input bytes")
    changed = [o for o in plan.servers if o.action != "unchanged"]
    result.outcome = _outcome_text(changed)
    if not plan.changed:
        result.status = "unchanged"
        if plan.after and plan.after.get(path) != data:
            result.problems.append("plan.changed is false but plan.after differs from the input")
        return result
    result.status = "planned"
    if set(plan.after) != {path}:
        result.problems.append(f"the plan writes other files: {sorted(plan.after)}")
    after = plan.after[path]
    result.problems += _byte_problems(config, path, data, after, plan, changed)
    if prepared.passes:
        answer = prepared.test(after)
        result.nginx_t = answer.returncode == 0
        if not result.nginx_t:
            result.problems.append(f"(a) nginx -t rejects the output: {_emerg(answer.stderr)}")
    try:
        new_config = load(path, after, dump)
    except NginxConfigError as error:
        result.problems.append(f"the output does not load again: {error}")
        return result
    result.problems += _routing_problems(config, new_config, path, plan, changed, case)
    try:
        again = plan_websocket(new_config, path, case.settings())
        if again.changed:
            result.problems.append(f"(c) not idempotent: a second plan edits {_describe_edits(again)}")
    except NginxConfigError as error:
        result.problems.append(f"(c) a second plan refuses: {error}")
    try:
        removed = plan_websocket(new_config, path, dataclasses.replace(case.settings(), state="absent"))
        if removed.after.get(path, after) != data:
            result.problems.append("(f) state=absent on the output does not give the input bytes back")
    except NginxConfigError as error:
        result.problems.append(f"(f) state=absent on the output refuses: {error}")
    return result


def _outcome_text(changed) -> str:
    kinds = Counter(f"{o.action}/{o.form}" if o.form else o.action for o in changed)
    if not kinds:
        return "unchanged"
    return ", ".join(f"{kind} x{count}" if count > 1 else kind for kind, count in sorted(kinds.items()))


def _refusal_problems(error: NginxConfigError, path: str, data: bytes, config: Config) -> List[str]:
    problems = []
    text = str(error)
    if len(error.message.split()) < 3:
        problems.append(f"the refusal is not a sentence: {text!r}")
    if not ((error.filename and error.line) or error.hint):
        problems.append(f"the refusal names no file and line and says nothing to set: {text!r}")
    if error.filename and error.filename not in config.files:
        problems.append(f"the refusal names a file nginx does not load: {error.filename}")
    if error.filename == path and error.line is not None and not 1 <= error.line <= data.count(b"\n") + 1:
        problems.append(f"the refusal names line {error.line}, outside the file")
    if "is not a plain prefix" in text and parse_location(WS_LOCATION).prefix is not None:
        problems.append(f"the refusal blames the location regex, which is a plain prefix: {text!r}")
    return problems


def _byte_problems(config, path, data, after, plan, changed) -> List[str]:
    """(d) every byte outside the edits is the input's, and edits stay inside the changed servers."""
    problems = []
    edits = sorted(plan.edits, key=lambda e: (e.start, e.end))
    rebuilt, cursor = [], 0
    for edit in edits:
        if edit.file != path or edit.start < cursor or edit.end > len(data):
            problems.append(f"(d) edit out of range or overlapping: {edit}")
            return problems
        rebuilt += [data[cursor : edit.start], edit.text]
        cursor = edit.end
    rebuilt.append(data[cursor:])
    if b"".join(rebuilt) != after:
        problems.append("(d) plan.after is not the input with plan.edits spliced in")
    first, last = edits[0], edits[-1]
    tail = len(data) - last.end
    if after[: first.start] != data[: first.start] or after[len(after) - tail :] != data[last.end :]:
        problems.append("(d) bytes before the first or after the last edit differ")
    spans = [
        (s.directive.open_brace, s.directive.close_brace)
        for s in config.servers_in(path)
        if s.line in {o.line for o in changed}
    ]
    for edit in edits:
        if not any(open_ < edit.start and edit.end <= close for open_, close in spans):
            problems.append(f"(d) edit {edit.why!r} at byte {edit.start} is outside every changed server block")
    return problems


def _routing_problems(config, new_config, path, plan, changed, case) -> List[str]:
    """(b) the sample URI reaches a WebSocket location that carries the settings; (e) headers kept."""
    problems = []
    old_servers = config.servers_in(path)
    new_servers = new_config.servers_in(path)
    if len(old_servers) != len(new_servers):
        return [f"(b) the output has {len(new_servers)} server blocks instead of {len(old_servers)}"]
    index = {server.line: i for i, server in enumerate(old_servers)}
    for outcome in changed:
        server = new_servers[index[outcome.line]]
        answer = route(tree(new_config, server), plan.sample_uri)
        chosen = answer.location
        where = f"server at line {outcome.line}"
        if not answer.known or chosen is None or (chosen.modifier, chosen.path) not in WS_FORMS:
            taken = chosen.describe() if chosen else answer.unknown or "no location"
            problems.append(f"(b) {where}: {plan.sample_uri} goes to {taken}")
            continue
        assert chosen.directive is not None
        problems += [f"(b) {where}: {gap}" for gap in _websocket_gaps(chosen.directive)]
        if outcome.action == "inserted":
            anchor = _anchor_in(new_config, server, case)
            if anchor is None:
                problems.append(f"(e) {where}: the anchor {case.before} is gone after the edit")
                continue
            missing = _header_names(new_config, anchor, server) - _header_names(new_config, chosen.directive, server)
            missing -= {"upgrade", "connection"}
            if missing:
                problems.append(f"(e) {where}: the WebSocket location drops the anchor's headers {sorted(missing)}")
    return problems


def _websocket_gaps(location: Directive) -> List[str]:
    own = {(d.name, d.args[0].lower() if d.name == "proxy_set_header" and d.args else "") for d in location.block or ()}
    gaps = []
    for name, arg in (("proxy_pass", ""), ("proxy_http_version", ""), ("proxy_set_header", "upgrade")):
        if (name, arg) not in own:
            gaps.append(f"the WebSocket location lacks {name} {arg}".rstrip())
    if ("proxy_set_header", "connection") not in own:
        gaps.append("the WebSocket location lacks proxy_set_header Connection")
    versions = [d.args for d in location.block or () if d.name == "proxy_http_version"]
    if versions and versions[-1] != ["1.1"]:
        gaps.append(f"proxy_http_version is {versions[-1]}")
    return gaps


def _anchor_in(config: Config, server: Server, case: Case) -> Optional[Directive]:
    if case.kind == "default":
        answer = route(tree(config, server), DEFAULT_BEFORE)
        return answer.location.directive if answer.known and answer.location else None
    for location in _walk_locations(config, server.directives()):
        if _before_of(location) == case.before:
            return location
    return None


def _header_names(config: Config, location: Directive, server: Server) -> set:
    """Names of the proxy_set_header lines nginx applies in ``location`` (innermost declaring level)."""
    levels: List[Optional[Directive]] = []
    node: Optional[Directive] = location
    while node is not None and node is not server.directive:
        levels.append(node)
        node = node.parent
    levels += [server.directive, server.http]
    for level in levels:
        names = {d.args[0].lower() for d in config.level(level) if d.name == "proxy_set_header" and d.args}
        if names:
            return names
    return set()


def _describe_edits(plan: Plan) -> str:
    return "; ".join(f"{edit.why} at byte {edit.start}" for edit in plan.edits)


def _emerg(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "[emerg]" in line]
    return lines[0] if lines else stderr.strip()


def _compare_with_original(prepared: Prepared, case: Case, stubbed: CaseResult) -> Optional[str]:
    """Plan the same case on the corpus bytes: same outcome, same edits (mapped through the stubs)."""
    path = str(prepared.path)
    try:
        plan = plan_websocket(load(path, prepared.original), path, case.settings())
    except NginxConfigError as error:
        if stubbed.error is None:
            return f"the original refuses ({error}) but the stubbed file plans"
        if (type(error), error.line) != (type(stubbed.error), stubbed.error.line):
            return f"the original refuses differently: {error}"
        return None
    if stubbed.plan is None:
        return f"the original plans but the stubbed file does not ({stubbed.outcome})"
    mine = [(o.line, o.action, o.form, o.location) for o in stubbed.plan.servers]
    theirs = [(o.line, o.action, o.form, o.location) for o in plan.servers]
    if mine != theirs:
        return f"outcomes differ: {theirs} (original) vs {mine} (stubbed)"
    mapped = [(prepared.to_placed(e.start), prepared.to_placed(e.end), e.text.count(b"\n")) for e in plan.edits]
    placed = [(e.start, e.end, e.text.count(b"\n")) for e in stubbed.plan.edits]
    if sorted(mapped) != sorted(placed):
        return f"edits differ: {mapped} (original, mapped) vs {placed} (stubbed)"
    return None


# ------------------------------------------------------------------------------------ tests


def test_corpus_is_present() -> None:
    files = require_corpus()
    assert len(files) == CORPUS_SIZE
    assert set(_SOURCES) == {f.name for f in files}, "SOURCES.tsv and the corpus files disagree"


@pytest.mark.parametrize("corpus_file", FILES, ids=[f.name for f in FILES])
def test_corpus_file_loads(corpus_file: Path) -> None:
    data = corpus_file.read_bytes()
    path = f"{COLLECTION_ROOT}/{corpus_file.name}"
    try:
        config = load(path, data)
    except UnsupportedConfigError as error:
        assert error.message.strip(), "an UnsupportedConfigError must say why"
        pytest.fail(f"the engine refuses to load {corpus_file.name}: {error}")
    assert config.files[path].data is data
    assert evaluation(corpus_file.name).load_error is None, "the stubbed file does not load"


@pytest.mark.parametrize("corpus_file", FILES, ids=[f.name for f in FILES])
def test_zero_edits_round_trip(corpus_file: Path) -> None:
    data = corpus_file.read_bytes()
    path = f"{COLLECTION_ROOT}/{corpus_file.name}"
    assert splice(data, []) == data
    assert apply_edits({path: data}, []) == {}
    assert load(path, data).files[path].data == data


@pytest.mark.parametrize("corpus_file", FILES, ids=[f.name for f in FILES])
def test_placed_file_passes_nginx_t(corpus_file: Path) -> None:
    prepared = evaluation(corpus_file.name).prepared
    assert prepared is not None
    if prepared.expected_to_pass:
        assert prepared.passes, (
            f"SOURCES.tsv says the stubbed file passes nginx -t, the harness got: {prepared.baseline_message}"
        )
    elif not prepared.passes:
        pytest.skip(prepared.skip_reason or "fails nginx -t")


@pytest.mark.parametrize("corpus_file", FILES, ids=[f.name for f in FILES])
def test_stubs_keep_lines_and_plans(corpus_file: Path) -> None:
    result = evaluation(corpus_file.name)
    prepared = result.prepared
    assert prepared is not None
    assert prepared.data.count(b"\n") == prepared.original.count(b"\n")
    for stub in prepared.stubs:
        assert b"\n" not in stub.original + stub.replacement
        assert prepared.original[stub.start : stub.end] == stub.original
        placed = prepared.to_placed(stub.start)
        assert prepared.data[placed : placed + len(stub.replacement)] == stub.replacement
        assert prepared.to_original(placed + len(stub.replacement)) == stub.end
    mismatches = {key: r.stub_mismatch for key, r in result.results.items() if r.stub_mismatch}
    assert not mismatches, "the stubs change what the engine plans"


MODES = ("file", "dump")


def _check_case(mode: str, case: Case) -> CaseResult:
    file_result = evaluation(case.file)
    assert file_result.load_error is None, f"the placed file does not load: {file_result.load_error}"
    if mode == "dump":
        prepared = file_result.prepared
        if prepared is None or not prepared.passes:
            pytest.skip(f"no nginx -T dump: {prepared.skip_reason if prepared else 'not placed'}")
        assert file_result.dump_error is None, file_result.dump_error
    result = file_result.result(mode, case)
    assert result.status != "crashed", result.outcome
    assert not result.problems, "\n".join(result.problems)
    return result


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", [_param(case) for case in API_CASES])
def test_api_like_location(mode: str, case: Case) -> None:
    result = _check_case(mode, case)
    assert result.outcome == EXPECTED_API.get(case.id), f"{case.id}: {result.outcome} ({result.error})"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", [_param(case) for case in DEFAULT_CASE_LIST])
def test_default_before(mode: str, case: Case) -> None:
    result = _check_case(mode, case)
    assert result.outcome == EXPECTED_DEFAULT.get((case.file, case.server_name), "AnchorNotFoundError"), (
        f"{case.id}: {result.outcome} ({result.error})"
    )


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    evaluations = [evaluation(f.name) for f in require_corpus()]
    table = _summary(evaluations)
    with capsys.disabled():
        print("\n" + _render(table))
    counts = {key: value for key, value in table.items() if not isinstance(value, list)}
    assert counts == EXPECTED_SUMMARY


def _summary(evaluations: List[FileEvaluation]) -> Dict[str, object]:
    results = [r for e in evaluations for r in e.results.values()]
    table: Dict[str, object] = {
        "files": len(evaluations),
        "files loaded": sum(1 for e in evaluations if e.load_error is None),
        "files passing nginx -t before any edit": sum(1 for e in evaluations if e.prepared and e.prepared.passes),
        "servers": sum(e.servers for e in evaluations),
        "api-like locations": sum(e.api_locations for e in evaluations),
    }
    for mode in MODES:
        for kind in ("api", "default"):
            mine = [r for r in results if r.case.kind == kind and r.mode == mode]
            head = f"{mode}/{kind}"
            table[f"{head} cases"] = len(mine)
            table[f"{head} planned"] = sum(1 for r in mine if r.status == "planned")
            table[f"{head} planned, servers edited"] = sum(
                sum(1 for o in r.plan.servers if o.action != "unchanged")
                for r in mine
                if r.status == "planned" and r.plan
            )
            table[f"{head} planned, nginx -t passed after edit"] = sum(1 for r in mine if r.nginx_t)
            table[f"{head} planned, file failed nginx -t before"] = sum(
                1 for r in mine if r.status == "planned" and r.nginx_t is None
            )
            table[f"{head} unchanged"] = sum(1 for r in mine if r.status == "unchanged")
            for reason, count in sorted(Counter(r.outcome for r in mine if r.status == "refused").items()):
                table[f"{head} refused: {reason}"] = count
            table[f"{head} with engine problems"] = sum(1 for r in mine if r.problems)
    skips = Counter(_skip_category(e.prepared.skip_reason) for e in evaluations if e.prepared and not e.prepared.passes)
    table["skipped for sandbox reasons"] = sum(skips.values())
    for reason, count in sorted(skips.items()):
        table[f"  skipped: {reason}"] = count
    table["refusals of api-like cases (file mode)"] = sorted(
        f"{r.case.id}: {_normalise(str(r.error))}"
        for r in results
        if r.status == "refused" and r.case.kind == "api" and r.mode == "file"
    )
    table["engine problems"] = sorted(f"{r.mode}:{r.case.id}: {_normalise(p)}" for r in results for p in r.problems)
    return table


def _skip_category(reason: Optional[str]) -> str:
    return (reason or "unexplained").split(":", 1)[0]


def _normalise(text: str) -> str:
    return re.sub(r"/tmp/nginx-sandbox-[^/\s]+/(?:\S*/)?", "", text)


def _render(table: Dict[str, object]) -> str:
    lines = ["agaii.nginx corpus summary", "-" * 72]
    for key, value in table.items():
        if isinstance(value, list):
            lines.append(f"{key}: {len(value)}")
            lines += [f"    {item}" for item in value]
        else:
            lines.append(f"{key:<64} {value}")
    return "\n".join(lines)
