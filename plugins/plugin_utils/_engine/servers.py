# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How nginx matches ``server_name``, written once, and the server blocks an edit selects. PRIVATE to the
collection.

The matcher ports nginx 1.22: ``ngx_http_core_server_name`` (how a name is stored), ``ngx_hash_add_key``
as called by ``ngx_http_server_names`` in ``ngx_http.c`` (which names a server really gets on an
address:port; "conflicting server name ... ignored"), ``ngx_http_validate_host`` (the Host header) and
``ngx_http_find_virtual_server`` with ``ngx_hash_find_combined`` (the lookup). The edit-time
``candidates`` and the route-time ``select_server`` (``diagnosis.facts``) both use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import FrozenSet, List, Optional, Sequence, Set, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, Directive, Server
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError, ServerSelectionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.render import check_plain_value
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import (
    BACKEND_HANDLERS,
    RegexUnknown,
    compile_location_regex,
)

EXACT, HEAD, TAIL, REGEX = 0, 1, 2, 3  # the order in which ngx_hash_find_combined and the regex list are tried


class InvalidHost(ValueError):
    """A Host that ``ngx_http_validate_host`` declines: nginx answers 400 "client sent invalid host header"."""


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)  # ngx_strlow: ASCII only


def validate_host(host: str) -> str:
    """Port of ``ngx_http_validate_host``: the name nginx looks servers up by (port and one trailing dot
    dropped, ASCII lower-cased); InvalidHost for what nginx answers 400."""
    dot_pos, host_len, state = len(host), len(host), "usual"
    for i, ch in enumerate(host):
        if ch == ".":
            if dot_pos == i - 1:
                raise InvalidHost(f"the Host {host!r} has an empty label ('..')")
            dot_pos = i
        elif ch == ":":
            if state == "usual":
                host_len, state = i, "rest"
        elif ch == "[":
            if i == 0:
                state = "literal"
        elif ch == "]":
            if state == "literal":
                host_len, state = i + 1, "rest"
        elif ch == "/" or ch <= " " or ch == "\x7f":
            raise InvalidHost(f"the Host {host!r} contains {ch!r}")
    if dot_pos == host_len - 1:
        host_len -= 1
    if host_len == 0:
        raise InvalidHost(f"the Host {host!r} has no name")
    return _ascii_lower(host[:host_len])


@dataclass(frozen=True)
class ServerName:
    """One ``server_name`` entry as ``ngx_http_core_server_name`` stores it (lower-cased, ``$hostname``
    replaced), and its kind for ``ngx_hash_add_key``: exact, ``*.x``/``.x`` (head), ``x.*`` (tail), ``~``."""

    text: str  # as written
    name: str  # as stored
    kind: int
    key: str  # exact: the name; head: "example.com"; tail: "www.example."; regex: the pattern

    @property
    def dot_form(self) -> bool:
        """``.example.com``: also claims the exact name ``example.com``."""
        return self.kind == HEAD and self.name.startswith(".")


def parse_server_name(text: str, hostname: Optional[str] = None) -> Optional[ServerName]:
    """A ``server_name`` argument as nginx stores it; None for ``$hostname`` when the host name is unknown."""
    if text.startswith("~"):
        return ServerName(text, text, REGEX, text[1:])
    if text.lower() == "$hostname":
        if hostname is None:
            return None
        text_name = _ascii_lower(hostname)
    else:
        text_name = _ascii_lower(text)
    if len(text_name) > 1 and text_name.startswith("."):
        return ServerName(text, text_name, HEAD, text_name[1:])
    if len(text_name) > 2 and text_name.startswith("*."):
        return ServerName(text, text_name, HEAD, text_name[2:])
    if len(text_name) > 2 and text_name.endswith(".*"):
        return ServerName(text, text_name, TAIL, text_name[:-1])
    return ServerName(text, text_name, EXACT, text_name)


def _regex_matches(entry: ServerName, host: str) -> bool:
    # ngx_http_core_server_name compiles caseless only when the pattern has an upper-case letter; the
    # host is already lower-cased. RegexUnknown propagates: the caller says "unknown".
    caseless = any("A" <= c <= "Z" for c in entry.key)
    return compile_location_regex(entry.key, caseless=caseless).search(host.encode("utf-8", "surrogateescape"))


def match_rank(entry: ServerName, host: str) -> Optional[Tuple[int, int]]:
    """(kind, -depth) when ``entry`` matches the validated ``host``, else None; lower ranks win, as in
    ``ngx_hash_find_combined`` (exact, then the longest head wildcard, then the longest tail wildcard)
    and ``ngx_http_find_virtual_server`` (then regexes in load order; never for an empty host)."""
    if entry.kind == EXACT:
        return (EXACT, 0) if host == entry.key else None
    if not host:
        return None
    if entry.kind == HEAD:
        if host.endswith("." + entry.key) or (entry.dot_form and host == entry.key):
            return (HEAD, -len(entry.key))
        return None
    if entry.kind == TAIL:
        return (TAIL, -len(entry.key)) if host.startswith(entry.key) and len(host) > len(entry.key) else None
    return (REGEX, 0) if _regex_matches(entry, host) else None


def name_matches(pattern: str, host: str) -> bool:
    """Does one ``server_name`` entry match ``host`` (a Host value: port, case and a trailing dot ignored)?"""
    entry = parse_server_name(pattern)
    try:
        name = validate_host(host)
    except InvalidHost:
        return False
    try:
        return entry is not None and match_rank(entry, name) is not None
    except RegexUnknown:
        return False


@dataclass
class NameTable:
    """The names of the servers on one address:port, as ``ngx_http_server_names`` keeps them."""

    entries: List[Tuple[Server, ServerName]] = field(default_factory=list)
    ignored: List[Tuple[Server, ServerName]] = field(default_factory=list)
    hostname_unknown: List[Server] = field(default_factory=list)

    def warnings(self, where: str) -> List[str]:
        return [
            f'conflicting server name "{entry.name}" on {where}, ignored (in {server.label()}; an earlier '
            "server block on that address:port claims it)"
            for server, entry in self.ignored
        ]

    def find(self, host: str) -> Optional[Tuple[Server, ServerName]]:
        """Port of ``ngx_http_find_virtual_server``: the server whose name wins for ``host`` (validated;
        "" for a request without Host). Raises RegexUnknown when a regex the model cannot read decides."""
        best: Optional[Tuple[Tuple[int, int], Server, ServerName]] = None
        for server, entry in self.entries:
            if entry.kind == REGEX and best is not None:
                continue  # regexes are tried only when no hash entry matched, and the first one wins
            rank = match_rank(entry, host)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, server, entry)
        return (best[1], best[2]) if best else None


def name_table(servers: Sequence[Server], hostname: Optional[str] = None) -> NameTable:
    """Port of the ``ngx_hash_add_key`` calls of ``ngx_http_server_names``: a name that an earlier
    server (or an earlier name) on the same address:port claims is ignored. ``.example.com`` claims the
    exact ``example.com`` and the head wildcard ``example.com`` (shared with ``*.example.com``);
    regexes never conflict and are kept in load order after the hashed names."""
    table = NameTable()
    exact_claimed: Set[str] = set()
    head_claimed: Set[str] = set()
    tail_claimed: Set[str] = set()
    regexes: List[Tuple[Server, ServerName]] = []
    for server in servers:
        names = server.names or [""]  # ngx_http_core_merge_srv_conf: no server_name is the name ""
        for text in names:
            entry = parse_server_name(text, hostname)
            if entry is None:
                table.hostname_unknown.append(server)
                continue
            if entry.kind == REGEX:
                regexes.append((server, entry))
                continue
            if not _claim(entry, exact_claimed, head_claimed, tail_claimed):
                table.ignored.append((server, entry))
                continue
            table.entries.append((server, entry))
    table.entries.extend(regexes)
    return table


def _claim(entry: ServerName, exact: Set[str], head: Set[str], tail: Set[str]) -> bool:
    if entry.kind == EXACT:
        if entry.key in exact:
            return False
        exact.add(entry.key)
        return True
    if entry.dot_form:
        if entry.key in exact:
            return False
        exact.add(entry.key)  # claimed even when the wildcard half below conflicts
    claimed = head if entry.kind == HEAD else tail
    if entry.key in claimed:
        return False
    claimed.add(entry.key)
    return True


# ----------------------------------------------------------------------------------- edit time


def servers_in_file(config: Config, path: str) -> List[Server]:
    return [server for server in config.servers() if server.file == path]


def _answers_to(server: Server, server_name: str) -> bool:
    """A server answers to what the user wrote: one of its entries as written, or a host it matches."""
    lowered = _ascii_lower(server_name)
    return any(_ascii_lower(text) == lowered or name_matches(text, server_name) for text in server.names)


def candidates(
    config: Config, path: str, server_name: Optional[str], listen: Optional[ListenSelector] = None
) -> List[Server]:
    """The server blocks of ``path`` that ``server_name`` and ``listen`` select (all of them when not given)."""
    servers = servers_in_file(config, path)
    if not servers:
        raise ServerSelectionError(
            "no server block is defined in this file",
            path,
            None,
            "Point path at the site file that holds the server block.",
        )
    chosen = servers
    if server_name is not None:
        chosen = [s for s in chosen if _answers_to(s, server_name)]
        if not chosen:
            listing = "; ".join(s.label() for s in servers)
            raise ServerSelectionError(
                f"no server block answers to server_name {server_name!r}", path, None, f"The file has: {listing}."
            )
    if listen is not None:
        named = chosen
        chosen = [s for s in named if listen.selects(s)]
        if not chosen:
            scope = f" with server_name {server_name}" if server_name is not None else ""
            raise ServerSelectionError(
                f"no server block{scope} listens on {listen.text}",
                path,
                None,
                f"The file has: {describe_candidates(named)}. Set listen to one of their listen values.",
            )
    return chosen


def describe_candidates(servers: List[Server]) -> str:
    return "; ".join(s.label() for s in servers)


# ------------------------------------------------------------------------------------- listen


@dataclass(frozen=True)
class Listen:
    """One ``listen`` of a server block, reduced to what selects the server."""

    address: str  # "*", "[::]", "127.0.0.1", "[::1]" or a host name as written
    port: int
    default: bool = False
    ssl: bool = False

    @property
    def text(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def wildcard(self) -> bool:
        return self.address in ("*", "[::]")

    @property
    def ipv6(self) -> bool:
        return self.address.startswith("[")


_WILDCARD_ADDRESSES = {"*": "*", "0.0.0.0": "*", "[::]": "[::]", "[::0]": "[::]"}


def parse_listen(args: Sequence[str]) -> Optional[Listen]:
    """A ``listen`` directive's arguments as a Listen; None for a unix socket."""
    if not args or args[0].startswith("unix:"):
        return None
    spec, flags = args[0], set(args[1:])
    if spec.isdigit():
        address, port = "*", spec
    elif spec.startswith("["):
        address, rest = spec.split("]", 1)
        address, port = address + "]", rest[1:] if rest.startswith(":") else "80"
    elif ":" in spec:
        address, port = spec.rsplit(":", 1)
    else:
        address, port = spec, "80"
    address = _WILDCARD_ADDRESSES.get(address.lower(), address.lower())
    if address == "localhost":
        address = "127.0.0.1"
    return Listen(address, int(port), bool(flags & {"default_server", "default"}), "ssl" in flags)


def server_listens(server: Server) -> List[Listen]:
    """The TCP listens of a server; a server without ``listen`` listens on ``*:80``."""
    if not server.listens:
        return [Listen("*", 80)]
    return [listen for listen in map(parse_listen, server.listens) if listen is not None]


# ------------------------------------------------------------------------------------- listen selector

_SELECTOR_SPEC = re.compile(r"^(?:(?P<address>\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]*):)?[0-9]{1,5}$", re.ASCII)
_SELECTOR_FLAG = re.compile(r"^[a-z][a-z0-9_]*(?:=[A-Za-z0-9_.:,/-]+)?$")


@dataclass(frozen=True)
class ListenSelector:
    """The ``listen`` option: the servers that listen there, read with nginx's ``listen`` semantics.

    A bare port (``8443``) selects every server with a listen on that port, whatever its address; an
    ``address:port`` (``*:80``, ``[::]:443``, ``127.0.0.1:8443``) only the servers listening on exactly
    that address (``0.0.0.0`` is ``*``, ``localhost`` is ``127.0.0.1``, as in ``parse_listen``); flags
    (``443 ssl``) must all be on that listen (``default`` is ``default_server``).
    """

    text: str
    port: int
    address: Optional[str]
    flags: FrozenSet[str]

    def selects(self, server: Server) -> bool:
        return any(self._matches(listen, flags) for listen, flags in listen_entries(server))

    def _matches(self, listen: Listen, flags: FrozenSet[str]) -> bool:
        if listen.port != self.port or (self.address is not None and listen.address != self.address):
            return False
        return self.flags <= flags


def parse_listen_selector(value: str) -> ListenSelector:
    """The ``listen`` option as a selector; raises InvalidOptionError for what nginx's ``listen`` would not
    accept as a TCP address and port."""
    check_plain_value("listen", value)
    tokens = value.split()
    spec = _SELECTOR_SPEC.match(tokens[0]) if tokens else None
    listen = parse_listen(tokens) if spec else None
    if listen is None or not 0 < listen.port < 65536 or not all(map(_SELECTOR_FLAG.match, tokens[1:])):
        raise InvalidOptionError(
            "listen must be a port or address:port as nginx's listen reads it, optionally with flags "
            f"(8443, *:80, [::]:443, 127.0.0.1:8443, 443 ssl), got {value!r}",
            hint="Copy the listen value of the server block you mean.",
        )
    address = listen.address if spec and spec.group("address") else None
    return ListenSelector(" ".join(tokens), listen.port, address, _flags(tokens[1:]))


def listen_entries(server: Server) -> List[Tuple[Listen, FrozenSet[str]]]:
    """Each TCP listen of a server with its flags (a server without ``listen`` listens on ``*:80``)."""
    if not server.listens:
        return [(listen, frozenset()) for listen in server_listens(server)]
    entries = [(parse_listen(args), _flags(args[1:])) for args in server.listens]
    return [(listen, flags) for listen, flags in entries if listen is not None]


def _flags(words: List[str]) -> FrozenSet[str]:
    return frozenset("default_server" if word == "default" else word for word in words)


def listen_texts(server: Server) -> List[str]:
    """The server's ``listen`` values as written (``80`` when it has none, as nginx defaults)."""
    return [" ".join(args) for args in server.listens] or ["80"]


# ------------------------------------------------------------------------------- how a server answers


@dataclass(frozen=True)
class Answer:
    """How a server answers the requests a location takes: ``upstream`` (``proxy_pass http://...``) when
    a backend gets them, None when the server ends them itself; ``why`` names the directive and file:line."""

    upstream: Optional[str]
    why: str


def proxy_answer(config: Config, server: Server, location: Optional[Directive]) -> Answer:
    """Does ``location`` of ``server`` hand its requests to a backend, or only return or redirect?

    A ``return`` at server level runs in the server rewrite phase, before nginx looks for a location
    (ngx_http_rewrite_handler in NGX_HTTP_SERVER_REWRITE_PHASE); one in the location runs in the rewrite
    phase, before the content handler (proxy_pass) would. ``try_files ... @name`` and
    ``error_page ... @name`` hand the request to a named location, which is looked at in turn.
    """
    ended = _first(config.level(server.directive), ("return",))
    if ended is not None:
        return Answer(None, f"{ended.describe()} at {ended.where} answers every request of the server")
    if location is None:
        return Answer(None, "no location takes the path")
    return _location_answer(config, server, location, named_hops=1)


def _location_answer(config: Config, server: Server, location: Directive, named_hops: int) -> Answer:
    level = config.level(location)
    ended = _first(level, ("return",))
    if ended is not None:
        return Answer(None, f"{ended.describe()} at {ended.where} answers before any proxy")
    handler = _first(level, BACKEND_HANDLERS)
    if handler is not None:
        return Answer(handler.describe(), f"{handler.describe()} at {handler.where}")
    for directive in level:
        target = _named_target(directive)
        named = _named_location(config, server, target) if target and named_hops else None
        if named is not None:
            return _location_answer(config, server, named, named_hops - 1)
    return Answer(None, f"location {' '.join(location.args)} at {location.where} passes nothing to a backend")


def _first(level: List[Directive], names: Tuple[str, ...]) -> Optional[Directive]:
    return next((d for d in level if d.name in names), None)


def _named_target(directive: Directive) -> Optional[str]:
    if directive.name in ("try_files", "error_page") and directive.args and directive.args[-1].startswith("@"):
        return directive.args[-1]
    return None


def _named_location(config: Config, server: Server, name: str) -> Optional[Directive]:
    return next((d for d in server.locations() if d.args == [name]), None)
