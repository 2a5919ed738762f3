# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The loaded nginx configuration: files, directives with byte spans, servers, maps. PRIVATE.

A file is parsed twice: by crossplane (the reference parser, which decides whether the file is valid)
and by the byte lexer in ``_lexer`` (which knows where every directive starts and ends). Where the two
disagree the engine refuses to edit rather than guess.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._errors import (
    ConfigSyntaxError,
    UnsupportedConfigError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._lexer import (
    CLOSE,
    COMMENT,
    OPEN,
    SEMICOLON,
    Lexer,
    Token,
    lua_block_end,
)

try:
    import crossplane

    HAS_CROSSPLANE = True
    CROSSPLANE_IMPORT_ERROR: Optional[Exception] = None
except ImportError as exc:  # pragma: no cover - reported by the action plugins
    HAS_CROSSPLANE = False
    CROSSPLANE_IMPORT_ERROR = exc

_DUMP_MARKER = re.compile(rb"^# configuration file (.+):\r?\n", re.M)
_LUA_BLOCK_SUFFIX = "_by_lua_block"


@dataclass(eq=False)
class Directive:
    """One directive as written: its words, where it is, and its block if it has one."""

    name: str
    args: List[str]
    file: str
    line: int
    start: int
    end: int
    arg_spans: List[Tuple[int, int]] = field(default_factory=list)
    block: Optional[List[Directive]] = None
    open_brace: int = -1
    close_brace: int = -1
    parent: Optional[Directive] = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def children(self, name: Optional[str] = None) -> List[Directive]:
        return [d for d in self.block or () if name is None or d.name == name]

    def describe(self) -> str:
        return " ".join([self.name, *self.args])


@dataclass(eq=False)
class ConfigFile:
    """One file's exact bytes and its parsed directives."""

    path: str
    data: bytes
    directives: List[Directive]

    @property
    def newline(self) -> bytes:
        crlf = self.data.count(b"\r\n")
        return b"\r\n" if crlf and crlf * 2 >= self.data.count(b"\n") else b"\n"

    @property
    def is_utf8(self) -> bool:
        try:
            self.data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    def line_start(self, offset: int) -> int:
        return self.data.rfind(b"\n", 0, offset) + 1

    def indent_before(self, offset: int) -> Optional[bytes]:
        """The indentation of the line holding ``offset`` when only whitespace precedes it, else None."""
        start = self.line_start(offset)
        prefix = self.data[start:offset]
        return prefix if prefix.strip(b" \t") == b"" else None

    def walk(self) -> Iterator[Directive]:
        yield from _walk(self.directives)


def _walk(directives: Sequence[Directive]) -> Iterator[Directive]:
    for directive in directives:
        yield directive
        if directive.block:
            yield from _walk(directive.block)


def parse_bytes(data: bytes, path: str, check: bool = True) -> ConfigFile:
    """Parse one file's bytes; with ``check``, crossplane must agree with the byte lexer."""
    directives = _Parser(data, path).parse()
    if check:
        _check_against_crossplane(data, path, directives)
    return ConfigFile(path=path, data=data, directives=directives)


class _Parser:
    def __init__(self, data: bytes, path: str) -> None:
        self.lexer = Lexer(data, path)
        self.data = data
        self.path = path

    def parse(self) -> List[Directive]:
        directives, closer = self._statements(None)
        if closer is not None:
            raise self.lexer.error('unexpected "}"', closer.line)
        return directives

    def _statements(self, parent: Optional[Directive]) -> Tuple[List[Directive], Optional[Token]]:
        """Read statements up to a ``}`` (returned) or the end of the data (None)."""
        statements: List[Directive] = []
        words: List[Token] = []
        while True:
            token = self.lexer.next_token()
            if token is None:
                if words:
                    raise self.lexer.error('unexpected end of file, expecting ";" or "}"', words[0].line)
                if parent is not None:
                    raise self.lexer.error('unexpected end of file, expecting "}"', parent.line)
                return statements, None
            if token.kind == COMMENT:
                continue
            if token.kind == CLOSE:
                if words:
                    raise self.lexer.error('unexpected "}"', token.line)
                return statements, token
            if token.kind in (SEMICOLON, OPEN):
                if not words:
                    raise self.lexer.error(f'unexpected "{token.kind}"', token.line)
                statements.append(self._directive(words, token, parent))
                words = []
                continue
            words.append(token)

    def _directive(self, words: List[Token], terminator: Token, parent: Optional[Directive]) -> Directive:
        head = words[0]
        directive = Directive(
            name=head.text,
            args=[word.text for word in words[1:]],
            file=self.path,
            line=head.line,
            start=head.start,
            end=terminator.end,
            arg_spans=[(word.start, word.end) for word in words[1:]],
            parent=parent,
        )
        if terminator.kind == OPEN:
            self._read_block(directive, terminator)
        return directive

    def _read_block(self, directive: Directive, brace: Token) -> None:
        directive.open_brace = brace.start
        if directive.name.endswith(_LUA_BLOCK_SUFFIX):
            close = lua_block_end(self.data, brace.start, self.path, directive.line)
            self.lexer.jump_to(close + 1)
            directive.block = []
        else:
            directive.block, closer = self._statements(directive)
            if closer is None:  # pragma: no cover - _statements raises at EOF inside a block
                raise self.lexer.error('unexpected end of file, expecting "}"', directive.line)
            close = closer.start
        directive.close_brace = close
        directive.end = close + 1


def _check_against_crossplane(data: bytes, path: str, directives: List[Directive]) -> None:
    if not HAS_CROSSPLANE:
        return
    payload = _crossplane_parse(data)
    if payload["errors"]:
        error = payload["errors"][0]
        message = (error.get("error") or "unexpected end of file").split(" in /")[0]
        raise ConfigSyntaxError(
            f"nginx syntax error: {message}",
            path,
            error.get("line"),
            "Fix the file so that `nginx -t` accepts it, then run again.",
        )
    theirs = list(_crossplane_outline(payload["config"][0]["parsed"]))
    ours = list(_outline(directives))
    if theirs != ours:
        line = _first_difference_line(theirs, ours)
        raise UnsupportedConfigError(
            "this file uses syntax that crossplane and the byte-exact lexer read differently",
            path,
            line,
            "The engine refuses to edit what it cannot locate exactly; simplify that line.",
        )


def _crossplane_parse(data: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".conf") as handle:
        handle.write(data)
        handle.flush()
        return crossplane.parse(handle.name, single=True, check_ctx=False, check_args=False, comments=False)


def _crossplane_outline(statements: list) -> Iterator[Tuple[str, int]]:
    for statement in statements:
        if statement["directive"] == "#":  # crossplane keeps comments that sit between arguments
            continue
        yield statement["directive"], statement["line"]
        if "block" in statement and not statement["directive"].endswith(_LUA_BLOCK_SUFFIX):
            yield from _crossplane_outline(statement["block"])


def _outline(directives: Sequence[Directive]) -> Iterator[Tuple[str, int]]:
    for directive in directives:
        yield directive.name, directive.line
        if directive.block:
            yield from _outline(directive.block)


def _first_difference_line(theirs: List[Tuple[str, int]], ours: List[Tuple[str, int]]) -> int:
    for mine, other in zip(ours, theirs):
        if mine != other:
            return min(mine[1], other[1])
    longer = ours if len(ours) > len(theirs) else theirs
    return longer[min(len(ours), len(theirs))][1]


def split_dump(dump: bytes) -> Dict[str, bytes]:
    """Split ``nginx -T`` output into {absolute path: text as written}, in the order nginx loaded them."""
    files: Dict[str, bytes] = {}
    markers = list(_DUMP_MARKER.finditer(dump))
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(dump)
        body = dump[marker.end() : end]
        # nginx writes one line feed after each file's text
        if body.endswith(b"\n"):
            body = body[:-1]
        files[marker.group(1).decode("utf-8", "surrogateescape")] = body
    return files


def glob_match(pattern: str, path: str) -> bool:
    """Match like glob(3), which nginx uses for ``include``: ``*`` stops at ``/`` and skips dot files."""
    pattern_parts = pattern.split("/")
    path_parts = path.split("/")
    if len(pattern_parts) != len(path_parts):
        return False
    for wanted, actual in zip(pattern_parts, path_parts):
        if actual.startswith(".") and not wanted.startswith("."):
            return False
        if not fnmatch.fnmatchcase(actual, wanted):
            return False
    return True


@dataclass
class Context:
    """Where a directive sits: the chain of enclosing blocks, outermost first, with includes expanded."""

    kind: str
    directive: Optional[Directive]
    parent: Optional[Context] = None


@dataclass(eq=False)
class Config:
    """The whole loaded configuration (or one file when no ``nginx -T`` dump was given)."""

    files: Dict[str, ConfigFile]
    main: str
    single_file: bool = False
    _include_cache: Dict[int, List[str]] = field(default_factory=dict, repr=False)

    @property
    def prefix(self) -> str:
        return posixpath.dirname(self.main)

    def included_files(self, include: Directive) -> List[str]:
        """The loaded files an ``include`` directive brings in, in nginx's order."""
        key = id(include)
        if key not in self._include_cache:
            self._include_cache[key] = self._resolve_include(include)
        return self._include_cache[key]

    def _resolve_include(self, include: Directive) -> List[str]:
        if self.single_file or not include.args:
            return []
        pattern = self.absolute(include.args[0])
        if not any(ch in pattern for ch in "*?["):
            return [pattern] if pattern in self.files else []
        return sorted((p for p in self.files if glob_match(pattern, p)), key=os.fsencode)

    def expand(self, directives: Sequence[Directive], _seen: Tuple[str, ...] = ()) -> Iterator[Directive]:
        """The directives of one level, with every ``include`` replaced by what it brings in."""
        for directive in directives:
            if directive.name != "include":
                yield directive
                continue
            for path in self.included_files(directive):
                if path in _seen:
                    continue
                yield from self.expand(self.files[path].directives, (*_seen, path))

    def level(self, block_owner: Optional[Directive]) -> List[Directive]:
        """The directives of a block (or of the main file when None), includes expanded."""
        if block_owner is None:
            return list(self.expand(self.files[self.main].directives, (self.main,)))
        return list(self.expand(block_owner.block or ()))

    def http_levels(self) -> List[Optional[Directive]]:
        """The blocks whose body is ``http`` context (None stands for a site file loaded on its own)."""
        top = self.level(None)
        https = [d for d in top if d.name == "http" and d.block is not None]
        if https:
            return list(https)
        if self.single_file:
            return [None]
        return []

    def servers(self) -> List[Server]:
        servers: List[Server] = []
        for http in self.http_levels():
            for directive in self.level(http):
                if directive.name == "server" and directive.block is not None:
                    servers.append(Server(self, directive, http))
        return servers

    def servers_in(self, path: str) -> List[Server]:
        return [server for server in self.servers() if server.file == path]

    def upgrade_maps(self) -> List[Directive]:
        """Every ``map $http_upgrade $var`` in http context, in load order."""
        maps = []
        for http in self.http_levels():
            for directive in self.level(http):
                if (
                    directive.name == "map"
                    and len(directive.args) == 2
                    and directive.args[0] == "$http_upgrade"
                    and directive.args[1].startswith("$")
                ):
                    maps.append(directive)
        return maps

    def all_map_variables(self) -> List[str]:
        names = []
        for http in self.http_levels():
            for directive in self.level(http):
                if directive.name == "map" and len(directive.args) == 2:
                    names.append(directive.args[1].lstrip("$"))
        return names

    def http_includes(self) -> List[Tuple[Directive, str]]:
        """Every ``include`` whose files land in http context, with its absolute pattern."""
        found: List[Tuple[Directive, str]] = []
        for http in self.http_levels():
            if http is None:
                continue
            self._collect_includes(http.block or [], found, ())
        return found

    def _collect_includes(
        self, directives: Sequence[Directive], found: List[Tuple[Directive, str]], seen: Tuple[str, ...]
    ) -> None:
        for directive in directives:
            if directive.name != "include" or not directive.args:
                continue
            found.append((directive, self.absolute(directive.args[0])))
            for path in self.included_files(directive):
                if path not in seen:
                    self._collect_includes(self.files[path].directives, found, (*seen, path))

    def absolute(self, pattern: str) -> str:
        if not posixpath.isabs(pattern):
            pattern = posixpath.join(self.prefix, pattern)
        return posixpath.normpath(pattern)

    def http_directive(self) -> Optional[Directive]:
        levels = self.http_levels()
        return levels[0] if levels else None


@dataclass(eq=False)
class Server:
    """A ``server`` block in http context."""

    config: Config
    directive: Directive
    http: Optional[Directive]

    @property
    def file(self) -> str:
        return self.directive.file

    @property
    def line(self) -> int:
        return self.directive.line

    @property
    def where(self) -> str:
        return self.directive.where

    def directives(self) -> List[Directive]:
        return self.config.level(self.directive)

    @property
    def names(self) -> List[str]:
        return [arg for d in self.directives() if d.name == "server_name" for arg in d.args]

    @property
    def listens(self) -> List[List[str]]:
        return [d.args for d in self.directives() if d.name == "listen"]

    def locations(self) -> List[Directive]:
        return [d for d in self.directives() if d.name == "location" and d.block is not None]

    def label(self) -> str:
        names = " ".join(self.names) or "(no server_name)"
        listens = ", ".join(" ".join(args) for args in self.listens) or "80"
        return f"server {names} (listen {listens}) at {self.where}"


def load(path: str, data: bytes, dump: Optional[bytes] = None, main: Optional[str] = None) -> Config:
    """Build the model from one file's exact bytes and, when given, the ``nginx -T`` dump."""
    if dump is None:
        return Config(files={path: parse_bytes(data, path)}, main=path, single_file=True)
    texts = split_dump(dump)
    if not texts:
        raise UnsupportedConfigError(
            "the `nginx -T` output lists no configuration file",
            path,
            None,
            "Check that `nginx -T` succeeds on the host.",
        )
    if path not in texts:
        raise UnsupportedConfigError(
            "this file is not loaded by nginx (`nginx -T` does not list it)",
            path,
            None,
            "Enable the site (link it into sites-enabled/) or point nginx_conf at the configuration that loads it.",
        )
    texts[path] = data
    files = {name: parse_bytes(text, name) for name, text in texts.items()}
    return Config(files=files, main=main or next(iter(texts)))


def load_files(files: Dict[str, bytes], main: str) -> Config:
    """Build the model from already split files (tests and the splice re-check use this)."""
    return Config(files={name: parse_bytes(text, name) for name, text in files.items()}, main=main)


def location_match(directive: Directive) -> Tuple[str, str]:
    """(modifier, path) of a ``location``: modifier is '', '=', '^~', '~', '~*' or '@'."""
    args = directive.args
    if len(args) >= 2 and args[0] in ("=", "^~", "~", "~*"):
        return args[0], args[1]
    if len(args) == 1:
        arg = args[0]
        if arg.startswith("@"):
            return "@", arg
        for modifier in ("=", "^~", "~*", "~"):
            if arg.startswith(modifier) and len(arg) > len(modifier):
                return modifier, arg[len(modifier) :]
        return "", arg
    return "", " ".join(args)


def effective(config: Config, chain: Sequence[Optional[Directive]], name: str) -> List[Directive]:
    """nginx's inheritance of array directives such as ``proxy_set_header``: the innermost level that
    declares any of ``name`` wins, and its declarations replace (not extend) the outer ones."""
    for owner in reversed(chain):
        found = [d for d in config.level(owner) if d.name == name]
        if found:
            return found
    return []


def enclosing_chain(config: Config, directive: Directive, server: Server) -> List[Optional[Directive]]:
    """The levels from http down to ``directive`` itself: [http, server, location..., directive]."""
    chain: List[Optional[Directive]] = [directive]
    node = directive.parent
    while node is not None and node is not server.directive:
        chain.append(node)
        node = node.parent
    chain.append(server.directive)
    chain.append(server.http)
    return list(reversed(chain))
