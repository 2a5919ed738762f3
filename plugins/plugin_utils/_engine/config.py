# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The loaded nginx configuration: files, directives with byte spans, servers, maps. PRIVATE.

A file is parsed twice: by crossplane (the reference parser, which decides whether the file is valid)
and by the byte lexer in ``_lexer`` (which knows where every directive starts and ends). Where the two
disagree the engine refuses to edit rather than guess.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import os
import posixpath
import sys
import tempfile
from array import array
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.module_utils._nginx_file_protocol import DUMP_MARKER
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    ConfigSyntaxError,
    UnsupportedConfigError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.lexer import (
    AFTER_QUOTE_OK,
    COMMENT,
    OPEN,
    SCAN,
    SEMICOLON,
    SIMPLE,
    Lexer,
    lua_block_end,
    unescape,
)

try:
    import crossplane

    HAS_CROSSPLANE = True
    CROSSPLANE_IMPORT_ERROR: Optional[Exception] = None
except ImportError as exc:  # pragma: no cover - reported by the action plugins
    HAS_CROSSPLANE = False
    CROSSPLANE_IMPORT_ERROR = exc

_LUA_BLOCK_SUFFIX = "_by_lua_block"


# Tens of thousands of directives per large file: no per-instance __dict__ (Python 3.10+, which every
# supported ansible-core controller has; plain classes on older interpreters).
_SLOTS: Dict[str, bool] = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclass(eq=False, **_SLOTS)
class Directive:
    """One directive as written: its words, where it is, and its block if it has one."""

    name: str
    args: List[str]
    file: str
    line: int
    start: int
    end: int
    block: Optional[List[Directive]] = None
    open_brace: int = -1
    close_brace: int = -1
    parent: Optional[Directive] = field(default=None, repr=False)
    source: Optional[bytes] = field(default=None, repr=False)  # the file's bytes, for arg_spans

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def arg_spans(self) -> List[Tuple[int, int]]:
        """The byte span of each argument, read again from the file's bytes when asked for."""
        if self.source is None:
            return []
        lexer = Lexer(self.source, self.file)
        lexer.jump_to(self.start)
        lexer.next_token()  # the name
        spans: List[Tuple[int, int]] = []
        token = lexer.next_token()
        while token is not None and token.kind not in (SEMICOLON, OPEN):
            if token.kind != COMMENT:
                spans.append((token.start, token.end))
            token = lexer.next_token()
        return spans

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
        yield from walk_directives(self.directives)


def walk_directives(directives: Iterable[Directive]) -> Iterator[Directive]:
    """Every directive of ``directives`` and of their blocks, depth first, in file order."""
    for directive in directives:
        yield directive
        if directive.block:
            yield from walk_directives(directive.block)


def parse_bytes(data: bytes, path: str, check: bool = True) -> ConfigFile:
    """Parse one file's bytes; with ``check``, crossplane must agree with the byte lexer.

    crossplane runs first and only its outline (names and lines) is kept, so its parse tree is freed
    before ours is built; our own syntax errors still take precedence over crossplane's, as before.
    """
    with paused_gc():
        reference = _crossplane_reference(data) if check and HAS_CROSSPLANE else None
        directives = _Parser(data, path).parse()
    if reference is not None:
        _compare_with_crossplane(reference, path, directives)
    return ConfigFile(path=path, data=data, directives=directives)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a parse tree is built.

    Building allocates one container per directive and frees almost nothing; every collection pass the
    allocations trigger walks the growing tree and finds no garbage. At 10k lines that doubled the time of
    our parse, and it grows faster than the file. The collector is restored as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def reparse_edited(
    old: ConfigFile, data: bytes, edits: Sequence[Tuple[int, int, int]], keep: Sequence[Directive] = ()
) -> ConfigFile:
    """``old`` after byte edits ``(start, end, length of the new text)`` that produced ``data``, for checking
    those edits: the top-level statements that hold an edit or one of ``keep`` are parsed again from
    ``data``; every other top-level statement is ``old``'s own object, with the offsets and line numbers
    it had before the edits (the check never reports those). A full parse when an edit is not inside a
    top-level block, or when the statement does not parse to exactly its new span."""
    tops = old.directives
    wanted = set()
    for start, end, _length in edits:
        holders = [
            i for i, d in enumerate(tops) if d.block is not None and d.open_brace < start <= end <= d.close_brace
        ]
        if not holders:
            return parse_bytes(data, old.path, check=False)
        wanted.add(holders[0])
    positions = {id(d): i for i, d in enumerate(tops)}
    for directive in keep:
        while directive.parent is not None:
            directive = directive.parent
        if id(directive) in positions:
            wanted.add(positions[id(directive)])
    new_tops = list(tops)
    for index in sorted(wanted):
        top = tops[index]
        shift = sum(length - (end - start) for start, end, length in edits if end <= top.start)
        grown = sum(length - (end - start) for start, end, length in edits if top.open_brace < start <= top.close_brace)
        start, end = top.start + shift, top.end + shift + grown
        with paused_gc():
            parsed = _Parser(data, old.path, start, end, data.count(b"\n", 0, start) + 1).parse()
        if len(parsed) != 1 or parsed[0].end != end:
            return parse_bytes(data, old.path, check=False)
        new_tops[index] = parsed[0]
    return ConfigFile(path=old.path, data=data, directives=new_tops)


class _Parser:
    """One pass over the bytes with ``SCAN``: a stack of open blocks, no token objects.

    Line numbers are counted only for the directives (and errors) that need one, and each distinct word
    is decoded once per file: the model then shares one string per distinct name or argument.
    """

    def __init__(self, data: bytes, path: str, start: int = 0, end: Optional[int] = None, line: int = 1) -> None:
        self.data = data
        self.path = path
        self.start = start
        self.end = len(data) if end is None else end
        self._line = line  # the line of offset ``start``
        self._counted = start

    def line_at(self, offset: int) -> int:
        """The line of ``offset``; offsets must not go backwards between calls (errors excepted)."""
        if offset < self._counted:
            return self.data.count(b"\n", 0, offset) + 1
        self._line += self.data.count(b"\n", self._counted, offset)
        self._counted = offset
        return self._line

    def error(self, message: str, offset: int) -> ConfigSyntaxError:
        return ConfigSyntaxError(
            message, self.path, self.line_at(offset), "Fix the file so that `nginx -t` accepts it, then run again."
        )

    def parse(self) -> List[Directive]:
        data, path, size = self.data, self.path, self.end
        scan, simple = SCAN.match, SIMPLE.match
        texts: Dict[bytes, str] = {}
        top: List[Directive] = []
        statements = top
        parent: Optional[Directive] = None
        stack: List[Tuple[Optional[Directive], List[Directive]]] = []
        words: List[str] = []
        head = -1  # offset of the first word of the statement being read
        pos = self.start
        while True:
            if not words:
                match = simple(data, pos, size)
                if match is not None:
                    head, pos = match.start(1), match.end()
                    for raw in (match.group(1), *match.group(2).split()):
                        text = texts.get(raw)
                        if text is None:
                            text = texts[raw] = raw.decode("utf-8", "surrogateescape")
                        words.append(text)
                    punct = data[pos - 1]
                    parent, statements = self._statement(words, head, pos, punct, parent, statements, stack)
                    words = []
                    if punct == 0x7B and parent is not None and parent.close_brace >= 0:  # a Lua body was skipped
                        pos = parent.end
                        parent, statements = stack.pop()
                    continue
            match = scan(data, pos, size)
            kind = match.lastindex
            if kind is None:
                at = match.end()
                if at >= size:
                    break
                if data[at] in b"\"'":
                    raise self.error("unexpected end of file, expecting a closing quote", at)
                # a lone backslash at the end of the data: a one-byte word, as the lexer reads it
                kind, pos, raw = 5, at + 1, data[at : at + 1]
            else:
                pos = match.end()
                raw = match.group(kind) if kind >= 3 else b""
            if kind >= 3:
                if kind != 5 and pos < size and data[pos] not in AFTER_QUOTE_OK:
                    raise self.error(f'unexpected "{chr(data[pos])}" after a quoted argument', pos)
                text = texts.get(raw)
                if text is None:
                    text = texts[raw] = unescape(raw).decode("utf-8", "surrogateescape")
                if not words:
                    head = pos - len(raw) - (kind != 5) * 2
                words.append(text)
                continue
            if kind == 2:
                continue
            punct = data[pos - 1]
            if punct == 0x7D:  # "}"
                if words or parent is None:
                    raise self.error('unexpected "}"', pos - 1)
                parent.close_brace = pos - 1
                parent.end = pos
                parent, statements = stack.pop()
                continue
            if not words:
                raise self.error(f'unexpected "{chr(punct)}"', pos - 1)
            parent, statements = self._statement(words, head, pos, punct, parent, statements, stack)
            words = []
            if punct == 0x7B and parent is not None and parent.close_brace >= 0:  # a Lua body was skipped
                pos = parent.end
                parent, statements = stack.pop()
        if words:
            raise self.error('unexpected end of file, expecting ";" or "}"', head)
        if parent is not None:
            raise ConfigSyntaxError(
                'unexpected end of file, expecting "}"',
                path,
                parent.line,
                "Fix the file so that `nginx -t` accepts it, then run again.",
            )
        return top

    def _statement(
        self,
        words: List[str],
        head: int,
        end: int,
        punct: int,
        parent: Optional[Directive],
        statements: List[Directive],
        stack: List[Tuple[Optional[Directive], List[Directive]]],
    ) -> Tuple[Optional[Directive], List[Directive]]:
        """Add the directive ``words`` ended by ``punct`` at ``end``; return the (parent, statements) to
        continue in: the new block after a "{" (already closed when it is a Lua body)."""
        self._line += self.data.count(b"\n", self._counted, head)
        self._counted = head
        directive = Directive(words[0], words[1:], self.path, self._line, head, end, None, -1, -1, parent, self.data)
        statements.append(directive)
        if punct != 0x7B:  # ";"
            return parent, statements
        directive.open_brace = end - 1
        directive.block = []
        stack.append((parent, statements))
        if directive.name.endswith(_LUA_BLOCK_SUFFIX):
            close = lua_block_end(self.data, end - 1, self.path, directive.line)
            directive.close_brace = close
            directive.end = close + 1
        return directive, directive.block


Outline = Tuple[List[str], "array[int]"]  # every directive's name and line, in file order


@dataclass(frozen=True)
class _Reference:
    """What crossplane said about a file: its first error, or its outline."""

    error: Optional[dict]
    outline: Outline


def _crossplane_reference(data: bytes) -> _Reference:
    payload = _crossplane_parse(data)
    try:
        if payload["errors"]:
            return _Reference(payload["errors"][0], ([], array("i")))
        return _Reference(None, _crossplane_outline(payload["config"][0]["parsed"]))
    finally:
        # crossplane.parse leaves its payload in a reference cycle (a closure refers to it), so dropping it
        # frees nothing until a full collection: empty it to free the parse tree now.
        payload.clear()


def _compare_with_crossplane(reference: _Reference, path: str, directives: List[Directive]) -> None:
    if reference.error is not None:
        error = reference.error
        message = (error.get("error") or "unexpected end of file").split(" in /")[0]
        raise ConfigSyntaxError(
            f"nginx syntax error: {message}",
            path,
            error.get("line"),
            "Fix the file so that `nginx -t` accepts it, then run again.",
        )
    ours = _outline(directives)
    if ours == reference.outline:
        return
    line = _first_difference_line(list(zip(*reference.outline)), list(zip(*ours)))
    raise UnsupportedConfigError(
        "this file uses syntax that crossplane and the byte-exact lexer read differently",
        path,
        line,
        "The engine refuses to edit what it cannot locate exactly; simplify that line.",
    )


def _crossplane_parse(data: bytes) -> dict:
    try:
        with tempfile.NamedTemporaryFile(suffix=".conf") as handle:
            handle.write(data)
            handle.flush()
            return crossplane.parse(handle.name, single=True, check_ctx=False, check_args=False, comments=False)
    except OSError as exc:  # crossplane reads files only: the controller's TMPDIR is full or not writable
        raise UnsupportedConfigError(
            f"cannot write the temporary copy crossplane parses in {tempfile.gettempdir()}: {exc}",
            None,
            None,
            "Free space in the controller's TMPDIR, or point TMPDIR elsewhere, then run again.",
        ) from exc


def _crossplane_outline(statements: list) -> Outline:
    """Names (interned, so the lists stay small) and lines of crossplane's statements, depth first."""
    names: List[str] = []
    lines = array("i")
    stack = [iter(statements)]
    while stack:
        for statement in stack[-1]:
            name = statement["directive"]
            if name == "#":  # crossplane keeps comments that sit between arguments
                continue
            names.append(sys.intern(name))
            lines.append(statement["line"])
            if "block" in statement and not name.endswith(_LUA_BLOCK_SUFFIX):
                stack.append(iter(statement["block"]))
                break
        else:
            stack.pop()
    return names, lines


def _outline(directives: Sequence[Directive]) -> Outline:
    names: List[str] = []
    lines = array("i")
    stack = [iter(directives)]
    while stack:
        for directive in stack[-1]:
            names.append(sys.intern(directive.name))
            lines.append(directive.line)
            if directive.block:
                stack.append(iter(directive.block))
                break
        else:
            stack.pop()
    return names, lines


def _first_difference_line(theirs: List[Tuple[str, int]], ours: List[Tuple[str, int]]) -> int:
    for mine, other in zip(ours, theirs):
        if mine != other:
            return min(mine[1], other[1])
    longer = ours if len(ours) > len(theirs) else theirs
    return longer[min(len(ours), len(theirs))][1]


def split_dump(dump: bytes) -> Dict[str, bytes]:
    """Split ``nginx -T`` output into {absolute path: text as written}, in the order nginx loaded them."""
    files: Dict[str, bytes] = {}
    markers = list(DUMP_MARKER.finditer(dump))
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

    def include_patterns(self) -> List[str]:
        """The absolute pattern of every ``include`` in every loaded file, whatever its context."""
        patterns: List[str] = []
        for loaded in self.files.values():
            stack = list(loaded.directives)
            while stack:
                directive = stack.pop()
                if directive.name == "include" and directive.args:
                    patterns.append(self.absolute(directive.args[0]))
                stack.extend(directive.block or ())
        return sorted(set(patterns))

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
        # ngx_http_core_location: a one-word "~" is an empty regex (it matches everything), "=" an empty name
        for modifier in ("=", "^~", "~*", "~"):
            if arg.startswith(modifier):
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
