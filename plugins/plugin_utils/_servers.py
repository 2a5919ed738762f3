# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choose the server blocks to edit, the way nginx matches ``server_name`` and ``listen``. PRIVATE to the
collection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, FrozenSet, List, Optional, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._errors import InvalidOptionError, ServerSelectionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._model import Config, Directive, Server
from ansible_collections.agaii.nginx.plugins.plugin_utils._render import check_plain_value

if TYPE_CHECKING:  # _diagnose imports the planner, which imports this module: imported where used
    from ansible_collections.agaii.nginx.plugins.plugin_utils._diagnose import Listen


def name_matches(pattern: str, host: str) -> bool:
    """Does a ``server_name`` entry match a host name (exact, ``*.x``, ``x.*``, ``.x``, ``~regex``)?"""
    host = host.lower().rstrip(".")
    if pattern == host or pattern.lower() == host:
        return True
    if pattern.startswith("~"):
        try:
            return re.search(pattern[1:], host, re.IGNORECASE) is not None  # nginx matches regex names caselessly
        except re.error:
            return False
    pattern = pattern.lower()
    if pattern.startswith("."):
        return host == pattern[1:] or host.endswith(pattern)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1]) and len(host) > len(pattern) - 1
    return False


def servers_in_file(config: Config, path: str) -> List[Server]:
    return [server for server in config.servers() if server.file == path]


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
        chosen = [s for s in chosen if any(name == server_name or name_matches(name, server_name) for name in s.names)]
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
    from ansible_collections.agaii.nginx.plugins.plugin_utils._diagnose import parse_listen

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
    from ansible_collections.agaii.nginx.plugins.plugin_utils._diagnose import parse_listen, server_listens

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

# The content handlers that pass a request to a backend (ngx_http_proxy_module and its kin).
PROXY_HANDLERS = ("proxy_pass", "grpc_pass", "uwsgi_pass", "scgi_pass", "fastcgi_pass", "memcached_pass")


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
    handler = _first(level, PROXY_HANDLERS)
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
