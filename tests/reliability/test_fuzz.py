"""Fuzzing the engine: mutated corpus files and generated configurations through load, route, plan and splice.

For every input the engine either works or raises an ``NginxConfigError`` subclass with a message; any
other exception is a bug. A plan's output must be exactly its edits spliced into the input, and must
load again. Nothing is written anywhere while the engine runs (an audit hook watches), apart from the
temporary copy crossplane parses.

Each corpus file (``require_corpus()``) is mutated ``AGAII_FUZZ_MUTATIONS`` times (default 25) with a
seed derived from its name, and every mutant runs twice: as a file on its own, and as a site loaded
from an ``nginx -T`` dump (http context, includes). Hypothesis adds ``AGAII_FUZZ_EXAMPLES`` (default 300)
generated files built from nginx's own token classes and the hostile bytes (the same examples on every run;
``AGAII_FUZZ_RANDOM=1`` explores new ones).
"""

from __future__ import annotations

import os
import random
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.lexer import tokenize
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket, tree
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_map import plan_map
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.splice import apply_edits
from tests.reliability.conftest import Figures
from tests.reliability.writes import no_writes
from tests.support.corpus import require_corpus

MUTATIONS = int(os.environ.get("AGAII_FUZZ_MUTATIONS", "25"))
EXAMPLES = int(os.environ.get("AGAII_FUZZ_EXAMPLES", "300"))
LEXER_CASES = 5000
EXPLORE = bool(os.environ.get("AGAII_FUZZ_RANDOM"))  # fresh random examples instead of the reproducible set
SITE = "/etc/nginx/sites-enabled/fuzzed"
MAIN = "/etc/nginx/nginx.conf"
MAIN_TEXT = b"events {}\nhttp {\n    include /etc/nginx/conf.d/*.conf;\n    include /etc/nginx/sites-enabled/*;\n}\n"
URIS = ("/api/mqtt/ws/hints/session-874q8t", "/api/health", "/", "/static/app.js")
SETTINGS = (Settings(), Settings(state="absent"), Settings(match="prefix", before="/", location="^/ws/"))

HOSTILE_BYTES = (
    b";",
    b"{",
    b"}",
    b'"',
    b"'",
    b"#",
    b"\\",
    b"$",
    b"${",
    b"\x00",
    b"\n",
    b"\r\n",
    b"\r",
    b"\t",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xe9",
    b"\xc3",
    b"location ~ ^/api/ {",
    b"location /api/ {",
    b"location ^~ /api/ {",
    b"server {",
    b"http {",
    b"include x;",
    b"include /etc/nginx/conf.d/*.conf;",
    b"map $http_upgrade $connection_upgrade {",
    b"proxy_pass http://127.0.0.1:8000;",
    b"_by_lua_block {",
    b"if ($x) {",
    b"(",
    b"[",
    b"*",
)


@dataclass
class Tally:
    """What the fuzzer saw; ``unexpected`` holds (case, traceback) of every non-engine exception."""

    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: List[Tuple[str, str]] = field(default_factory=list)
    empty_messages: List[str] = field(default_factory=list)
    writes: List[Tuple[str, str]] = field(default_factory=list)
    temp_copies: int = 0


# --------------------------------------------------------------------------- mutations


def _cut(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data) + 1)
    return data[:start] + data[start + rng.randrange(1, 60) :]


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(HOSTILE_BYTES) + data[at:]


def _duplicate(rng: random.Random, data: bytes) -> bytes:
    start = rng.randrange(len(data) + 1)
    end = min(len(data), start + rng.randrange(1, 400))
    return data[:end] + data[start:end] + data[end:]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _flip_byte(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    at = rng.randrange(len(data))
    return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]


def _line_ends(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\n", b"\r\n") if rng.random() < 0.5 else data.replace(b"\r\n", b"\n").rstrip(b"\n")


def _swap_ranges(rng: random.Random, data: bytes) -> bytes:
    a, b = sorted(rng.randrange(len(data) + 1) for _cut in range(2))
    return data[:a] + data[b:] + data[a:b]


def _duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    at = rng.randrange(len(lines))
    return b"\n".join([*lines[: at + 1], lines[at], *lines[at + 1 :]])


MUTATORS = (_cut, _insert, _duplicate, _truncate, _flip_byte, _line_ends, _swap_ranges, _duplicate_line, _insert)


def mutate(name: str, index: int, data: bytes) -> bytes:
    rng = random.Random(zlib.crc32(name.encode()) * 1000 + index)
    for _step in range(rng.randrange(1, 4)):
        data = rng.choice(MUTATORS)(rng, data)
    return data


# --------------------------------------------------------------------------- one case


def as_dump(site: bytes) -> bytes:
    """An ``nginx -T`` dump in which ``site`` is included inside http{}."""
    return b"# configuration file %s:\n%s\n# configuration file %s:\n%s\n" % (
        MAIN.encode(),
        MAIN_TEXT,
        SITE.encode(),
        site,
    )


def exercise(config: Config, path: str, tally: Tally) -> str:
    """Route, plan every settings variant and the map, and check each plan's splice; return the outcome."""
    outcome = "loaded"
    for server in config.servers():
        nodes = tree(config, server)
        for uri in URIS:
            route(nodes, uri)
    for variant in SETTINGS:
        try:
            plan = plan_websocket(config, path, variant)
        except NginxConfigError as err:
            _check_message(err, tally)
            outcome = f"{outcome}, plan refused"
            continue
        if plan.changed:
            assert apply_edits(plan.before, plan.edits) == plan.after
            load(path, plan.after[path])  # the planned bytes load again
            outcome = f"{outcome}, planned"
    try:
        plan_map(config)
    except NginxConfigError as err:
        _check_message(err, tally)
    return outcome


def _check_message(err: NginxConfigError, tally: Tally) -> None:
    if not str(err).strip():
        tally.empty_messages.append(repr(err))


def run_case(label: str, data: bytes, dump: Optional[bytes], tally: Tally) -> None:
    tally.cases += 1
    with no_writes() as seen:
        try:
            config = load(SITE, data, dump, main=MAIN if dump else None)
            tally.outcomes[exercise(config, SITE, tally)] += 1
        except NginxConfigError as err:
            _check_message(err, tally)
            tally.outcomes[f"refused: {type(err).__name__}"] += 1
        except Exception as exc:
            _classify(label, exc, tally)
    tally.writes += seen.writes
    tally.temp_copies += seen.temp_copies


def _classify(label: str, exc: Exception, tally: Tally) -> None:
    tally.unexpected.append((label, traceback.format_exc()))


def assert_clean(tally: Tally) -> None:
    assert not tally.unexpected, f"{len(tally.unexpected)} uncaught exceptions; first:\n{tally.unexpected[0]}"
    assert not tally.empty_messages, tally.empty_messages[:5]
    assert not tally.writes, tally.writes[:5]


def record(figures: Figures, section: str, tally: Tally) -> None:
    figures.record(section, "cases run", tally.cases)
    figures.record(section, "outcomes", dict(tally.outcomes.most_common()))
    figures.record(section, "uncaught exceptions (not NginxConfigError)", len(tally.unexpected))
    figures.record(section, "errors with an empty message", len(tally.empty_messages))
    figures.record(section, "writes outside crossplane's temporary copy", len(tally.writes))
    figures.record(section, "crossplane temporary copies (the engine's only write)", tally.temp_copies)


# --------------------------------------------------------------------------- tests


def test_every_corpus_file_mutated(figures: Figures) -> None:
    files: List[Path] = require_corpus()
    tally = Tally()
    for path in files:
        original = path.read_bytes()
        run_case(f"{path.name} (original)", original, None, tally)
        for index in range(MUTATIONS):
            mutant = mutate(path.name, index, original)
            label = f"{path.name} mutation {index}"
            run_case(f"{label} (file)", mutant, None, tally)
            run_case(f"{label} (dump)", mutant, as_dump(mutant), tally)
    figures.record("fuzz: corpus mutations", "corpus files", len(files))
    figures.record("fuzz: corpus mutations", "mutations per file", MUTATIONS)
    record(figures, "fuzz: corpus mutations", tally)
    assert tally.cases == len(files) * (1 + 2 * MUTATIONS)
    assert_clean(tally)


# Generated files: nested blocks of real directive names whose arguments mix nginx words, quoted
# strings, variables and the hostile bytes, in any layout (indentation, CRLF, comments, no final newline).
_NAMES = st.sampled_from(
    ["listen", "server_name", "proxy_pass", "proxy_set_header", "proxy_http_version", "include", "return", "root"]
)
_BLOCK_NAMES = st.sampled_from(["server", "location", "if", "map", "http", "upstream", "content_by_lua_block"])
_ARGS = st.one_of(
    st.sampled_from(
        [
            "/api/",
            "^~",
            "~",
            "~*",
            "=",
            "^/api/",
            "^/api/mqtt/ws/",
            "/api/mqtt/ws/",
            "http://127.0.0.1:8000",
            "http://127.0.0.1:8000/",
            "$http_upgrade",
            "$connection_upgrade",
            "Upgrade",
            "Connection",
            "upgrade",
            "''",
            '"a b"',
            "'x y'",
            "default",
            "127.0.0.1:8080",
            "@named",
            "\\.(js|css)$",
            "${x}",
            "conf.d/*.conf",
        ]
    ),
    st.text(alphabet=st.characters(codec="latin-1", exclude_characters=" \t\r\n;{}\"'\\#"), min_size=1, max_size=8),
)


def _directive(name: str, args: List[str]) -> bytes:
    return (" ".join([name, *args]) + ";").encode("latin-1")


SKELETON = b"server {\nlisten 127.0.0.1:8080;\nlocation /api/ {\nproxy_pass http://127.0.0.1:8000;\n%s\n}\n%s\n}\n"
_STATEMENTS = st.recursive(
    st.builds(_directive, _NAMES, st.lists(_ARGS, max_size=3)),
    lambda inner: st.builds(
        lambda name, args, body: (" ".join([name, *args]) + " {\n").encode("latin-1") + b"\n".join(body) + b"\n}",
        _BLOCK_NAMES,
        st.lists(_ARGS, max_size=2),
        st.lists(inner, max_size=5),
    ),
    max_leaves=25,
)


@st.composite
def generated_files(draw: st.DrawFn) -> bytes:
    statements = draw(st.lists(_STATEMENTS, min_size=1, max_size=4))
    data = b"\n".join(statements)
    if draw(st.booleans()):
        data = SKELETON % (data, b"\n".join(draw(st.lists(_STATEMENTS, max_size=3))))
    if draw(st.booleans()):
        data = data.replace(b"\n", draw(st.sampled_from([b"\r\n", b"\n\t", b"\n    # comment\n"])))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from(HOSTILE_BYTES)) + data[at:]
    return data


def test_generated_configurations(figures: Figures) -> None:
    tally = Tally()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
        derandomize=not EXPLORE,
    )
    @given(data=generated_files(), with_dump=st.booleans())
    def check(data: bytes, with_dump: bool) -> None:
        run_case(f"generated {data!r}", data, as_dump(data) if with_dump else None, tally)
        assert_clean(tally)

    check()
    record(figures, "fuzz: hypothesis-generated files", tally)


def test_lexer_on_random_bytes(figures: Figures) -> None:
    """The tokenizer alone, on short random byte strings: tokens or a ConfigSyntaxError, nothing else."""
    rng, tally = random.Random(8), Tally()
    for _case in range(LEXER_CASES):
        data = bytes(rng.choice(b"ab ;{}\"'#\\$\n\r\t\x00\xe9") for _byte in range(rng.randrange(1, 40)))
        tally.cases += 1
        try:
            list(tokenize(data))
            tally.outcomes["tokens"] += 1
        except NginxConfigError as err:
            _check_message(err, tally)
            tally.outcomes["refused"] += 1
        except Exception as exc:
            _classify(repr(data), exc, tally)
    record(figures, "fuzz: lexer on random bytes", tally)
    assert_clean(tally)
