# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a WebSocket location needs: ONE table, read by the planner and by the diagnosis. PRIVATE.

Each requirement says how it is checked on the location's effective directives (inheritance applied),
the gap line the planner reports, the phrase and the fix line the diagnosis prints, and whether its
absence breaks every handshake (proxy_http_version does not: only RFC-strict backends refuse HTTP/1.0,
so the diagnosis lets the handshake judge it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Config,
    Directive,
    Server,
    effective,
    enclosing_chain,
)

# `$name` or `${name}`, as ngx_http_script_compile reads a variable.
_VARIABLE = re.compile(r"^\$(?:\{(?P<braced>[A-Za-z0-9_]+)\}|(?P<plain>[A-Za-z0-9_]+))$")


def variable_name(value: Optional[str]) -> Optional[str]:
    """The variable ``value`` consists of, lower-cased (nginx compares variable names case-insensitively
    in ngx_http_get_variable_index), or None when it is not exactly one variable."""
    found = _VARIABLE.match(value or "")
    return (found["braced"] or found["plain"]).lower() if found else None


def directive_key(directive: Directive) -> Tuple[str, ...]:
    """``(name,)``, or ``("proxy_set_header", header name lower-cased)``: one key per header."""
    if directive.name == "proxy_set_header":  # without arguments nginx -t fails, but the key must exist
        return (directive.name, directive.args[0].lower() if directive.args else "")
    return (directive.name,)


@dataclass(frozen=True)
class WebSocketDirectives:
    """What a location proxies with, inheritance applied (None: not set)."""

    proxy_pass: Optional[str]
    proxy_http_version: Optional[str]
    upgrade: Optional[str]
    connection: Optional[str]
    upgrade_variables: Tuple[str, ...]  # every `map $http_upgrade $var` in http{}, in load order, without `$`

    @property
    def map_variable(self) -> Optional[str]:
        """The upgrade map's variable (as the map spells it) that the Connection header sends, if any."""
        name = variable_name(self.connection)
        return next((v for v in self.upgrade_variables if v.lower() == name), None) if name else None

    @property
    def usable_map_variable(self) -> Optional[str]:
        """The variable a new Connection header uses: the last upgrade map, as the planner chooses."""
        return self.upgrade_variables[-1] if self.upgrade_variables else None


NOTHING = WebSocketDirectives(None, None, None, None, ())


def read_directives(config: Config, server: Server, location: Directive) -> WebSocketDirectives:
    chain = enclosing_chain(config, location, server)
    passes = [d for d in config.level(location) if d.name == "proxy_pass"]
    versions = effective(config, chain, "proxy_http_version")
    headers = {directive_key(d)[1]: d.args[-1] for d in effective(config, chain, "proxy_set_header") if d.args}
    return WebSocketDirectives(
        proxy_pass=(passes[0].args[0] if passes[0].args else "") if passes else None,
        proxy_http_version=versions[-1].args[-1] if versions and versions[-1].args else None,
        upgrade=headers.get("upgrade"),
        connection=headers.get("connection"),
        upgrade_variables=tuple(m.args[1].lstrip("$") for m in config.upgrade_maps()),
    )


def _connection_fix(map_variable: Optional[str]) -> str:
    if map_variable:
        return f"`proxy_set_header Connection ${map_variable};`"
    return "`proxy_set_header Connection $connection_upgrade;` (and the map: agaii.nginx.upgrade_map)"


def _connects(found: WebSocketDirectives) -> bool:
    connection = found.connection
    return connection is not None and (connection.lower() == "upgrade" or found.map_variable is not None)


def _connection_phrase(found: WebSocketDirectives) -> str:
    if found.connection is None:
        return "no Connection header"
    if not found.connection:  # `proxy_set_header Connection "";` (keepalive upstreams) removes the header
        return 'Connection "" (nginx sends no Connection header)'
    return f"Connection {found.connection}, which no `map $http_upgrade` defines"


@dataclass(frozen=True)
class Requirement:
    name: str
    met: Callable[[WebSocketDirectives], bool]
    gap: Callable[[Optional[str]], str]  # the planner's line, given the map variable it uses
    phrase: Callable[[WebSocketDirectives], str]  # the diagnosis' "... and has <phrase>"
    fix: Callable[[Optional[str]], str]  # the diagnosis' line to add, given the map variable to use
    breaks_every_handshake: bool


REQUIREMENTS: Tuple[Requirement, ...] = (
    Requirement(
        "proxy_pass",
        lambda found: found.proxy_pass is not None,
        lambda variable: "proxy_pass",
        lambda found: "no proxy_pass",
        lambda variable: "`proxy_pass`",
        breaks_every_handshake=True,
    ),
    Requirement(
        "proxy_http_version",
        lambda found: found.proxy_http_version == "1.1",
        lambda variable: "proxy_http_version 1.1",
        lambda found: f"proxy_http_version {found.proxy_http_version or 'unset'} instead of 1.1",
        lambda variable: "`proxy_http_version 1.1;`",
        breaks_every_handshake=False,
    ),
    Requirement(
        "upgrade",
        lambda found: variable_name(found.upgrade) == "http_upgrade",
        lambda variable: "proxy_set_header Upgrade $http_upgrade",
        lambda found: (
            "no Upgrade header" if found.upgrade is None else f"Upgrade {found.upgrade} instead of $http_upgrade"
        ),
        lambda variable: "`proxy_set_header Upgrade $http_upgrade;`",
        breaks_every_handshake=True,
    ),
    Requirement(
        "connection",
        _connects,
        lambda variable: f"proxy_set_header Connection ${variable or 'connection_upgrade'}",
        _connection_phrase,
        _connection_fix,
        breaks_every_handshake=True,
    ),
)


def requirement(name: str) -> Requirement:
    return next(r for r in REQUIREMENTS if r.name == name)


def unmet(found: WebSocketDirectives) -> List[Requirement]:
    return [r for r in REQUIREMENTS if not r.met(found)]


def gaps(found: WebSocketDirectives, map_variable: Optional[str]) -> List[str]:
    """The planner's lines for what the location lacks (empty: it has everything)."""
    return [r.gap(map_variable) for r in unmet(found)]


def breaking_phrases(found: WebSocketDirectives) -> List[str]:
    """What the location lacks that breaks every WebSocket handshake."""
    return [r.phrase(found) for r in unmet(found) if r.breaks_every_handshake]


def fix_lines(found: WebSocketDirectives) -> List[str]:
    """Every line the location lacks, as the diagnosis tells to add it."""
    return [r.fix(found.usable_map_variable) for r in unmet(found)]


def websocket_gaps(config: Config, server: Server, location: Directive, map_variable: Optional[str]) -> List[str]:
    """What a location lacks to proxy a WebSocket (empty: it has everything)."""
    return gaps(read_directives(config, server, location), map_variable)
