# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the configuration says about one host name and URI: the server nginx chooses, the location,
what that location carries for a WebSocket, its backends, its timeouts, error logs and the pid file. PRIVATE.

Pure: it reads the loaded model; the I/O is done by the ``route_info`` action plugin.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Config,
    Directive,
    Server,
    effective,
    enclosing_chain,
    location_match,
    parse_bytes,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    NginxConfigError,
    ServerSelectionError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import (
    split_proxy_pass,
    tree,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import (
    InvalidUri,
    LocationNode,
    RegexUnknown,
    Route,
    parse_complex_uri,
    route,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import (
    InvalidHost,
    Listen,
    NameTable,
    match_rank,
    name_table,
    parse_listen,
    parse_server_name,
    server_listens,
    validate_host,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import time_seconds
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.websocket import (
    WebSocketDirectives,
    directive_key,
    gaps,
    read_directives,
)

# Debian's and Ubuntu's compiled-in paths (nginx -V: --prefix, --pid-path, --error-log-path).
DEFAULT_PREFIX = "/usr/share/nginx"
DEFAULT_PID_FILE = "/run/nginx.pid"
DEFAULT_ERROR_LOG = "/var/log/nginx/error.log"
DEFAULT_READ_TIMEOUT = "60s"
DEFAULT_HTTP_VERSION = "1.0"  # nginx 1.29.7 and later default to 1.1


def normalize_uri(uri: str, merge_slashes: bool = True) -> str:
    """The URI as nginx matches locations against it (``routing.parse_complex_uri``); ValueError when it
    does not start with "/", InvalidUri when nginx answers 400."""
    if not uri.startswith("/"):
        raise ValueError(f"the URI must start with '/', got {uri!r}")
    return parse_complex_uri(uri, merge_slashes)


@dataclass
class ServerChoice:
    """The server block nginx uses (None: no server listens there, or nginx refuses the request), why,
    and where the request arrives. ``status`` is 400 when nginx refuses the Host before any server."""

    server: Optional[Server]
    listen: Optional[Listen]
    reasons: List[str]
    unknown: Optional[str] = None
    status: Optional[int] = None
    default_server: Optional[Server] = None  # of the address:port: its settings parse the request line


Group = Tuple[str, int]


Entries = List[Tuple[Server, Listen]]


def listen_groups(config: Config) -> Dict[Group, Entries]:
    """Servers by the (address, port) they listen on, in load order (a server appears once per group)."""
    groups: Dict[Group, Entries] = {}
    for server in config.servers():
        for listen in server_listens(server):
            entries = groups.setdefault((listen.address, listen.port), [])
            if all(entry[0] is not server for entry in entries):
                entries.append((server, listen))
    return groups


def request_host(host: Optional[str]) -> str:
    """The name nginx looks servers up by: ``ngx_http_validate_host`` of the Host header; "" without a
    Host header (an HTTP/1.0 request; ``ngx_http_process_request_header`` then looks up the name "").
    Raises InvalidHost for what nginx answers 400."""
    return "" if host is None else validate_host(host)


def select_server(
    config: Config,
    host: Optional[str],
    port: Optional[int] = None,
    address: Optional[str] = None,
    hostname: Optional[str] = None,
) -> ServerChoice:
    """The server block nginx picks for a request to ``address:port`` with ``Host: host`` (None: an
    HTTP/1.0 request without Host).

    Like nginx: the servers listening on exactly that address (else on the wildcard address) of the
    port; among them the names ``ngx_http_server_names`` keeps (``_servers.name_table``), looked up as
    ``ngx_http_find_virtual_server`` does; otherwise the port's default server. ``hostname`` is the
    machine's name, for ``server_name $hostname``. Raises ServerSelectionError when the port or address
    must be given to decide.
    """
    try:
        name = request_host(host)
    except InvalidHost as exc:
        return ServerChoice(None, None, [f"nginx answers 400 (client sent invalid host header): {exc}"], status=400)
    groups = listen_groups(config)
    chosen_port, port_reason = _choose_port(groups, name, port)
    if chosen_port is None:
        return ServerChoice(None, None, [port_reason])
    group, group_reasons = _choose_group(groups, chosen_port, address)
    reasons = ([port_reason] if port_reason and port is None else []) + group_reasons
    if group is None:
        return ServerChoice(None, None, reasons)
    entries = groups[group]
    listen_text = "1 server block listens" if len(entries) == 1 else f"{len(entries)} server blocks listen"
    reasons.append(f"{listen_text} on {group[0]}:{group[1]}")
    table = name_table([server for server, _listen in entries], hostname)
    reasons += _ignored_reasons(table, name, group)
    default = _default_entry(entries)[0]
    found, reason, unknown = _match_name(table, entries, name)
    if unknown:
        return ServerChoice(None, None, reasons, unknown, default_server=default)
    if found is None:
        found, reason = _default_server(entries, name, group)
    reasons.append(reason)
    return ServerChoice(found[0], found[1], reasons, default_server=default)


def _ignored_reasons(table: NameTable, name: str, group: Group) -> List[str]:
    """The "conflicting server name" warnings nginx logs for names that would match this host."""
    relevant = []
    for server, entry in table.ignored:
        try:
            matches = match_rank(entry, name) is not None
        except RegexUnknown:  # pragma: no cover - regexes never conflict
            matches = False
        if matches:
            relevant.append((server, entry))
    return NameTable(ignored=relevant).warnings(f"{group[0]}:{group[1]}")


def _choose_port(groups: Dict[Group, Entries], name: str, port: Optional[int]) -> Tuple[Optional[int], str]:
    ports = sorted({group[1] for group in groups})
    listed = ", ".join(map(str, ports)) or "no port"
    if port is not None:
        if port not in ports:
            return None, f"no server block listens on port {port} (nginx listens on {listed})"
        return port, ""
    if len(ports) == 1:
        return ports[0], f"port {ports[0]}: the only port nginx listens on"
    named = sorted({group[1] for group, entries in groups.items() if any(_names_host(e[0], name) for e in entries)})
    if len(named) == 1:
        return named[0], f"port {named[0]}: the only port with a server_name that matches {name}"
    raise ServerSelectionError(
        f"{name} may arrive on port {', '.join(map(str, named or ports))}",
        None,
        None,
        "Set port to the port the WebSocket clients connect to.",
    )


def _names_host(server: Server, name: str) -> bool:
    for text in server.names:
        entry = parse_server_name(text)
        try:
            if entry is not None and match_rank(entry, name) is not None:
                return True
        except RegexUnknown:
            continue
    return False


def _choose_group(groups: Dict[Group, Entries], port: int, address: Optional[str]) -> Tuple[Optional[Group], List[str]]:
    on_port = [group for group in groups if group[1] == port]
    if address:
        wanted = parse_listen([f"[{address}]:{port}" if ":" in address else f"{address}:{port}"]) or Listen(
            address, port
        )
        wildcard = ("[::]" if wanted.ipv6 else "*", port)
        for group in ((wanted.address, port), wildcard):
            if group in groups:
                return group, []
        return None, [f"no server block listens on {wanted.text} (listening on port {port}: {_groups_text(on_port)})"]
    if ("*", port) in groups:
        return ("*", port), []
    if len(on_port) == 1:
        return on_port[0], []
    raise ServerSelectionError(
        f"several addresses listen on port {port} ({_groups_text(on_port)})",
        None,
        None,
        "Set address to the address the WebSocket clients connect to.",
    )


def _groups_text(groups: Sequence[Group]) -> str:
    return ", ".join(f"{address}:{port}" for address, port in groups)


_KIND_REASON = (
    "exact server_name {pattern}",
    "longest matching wildcard server_name {pattern}",
    "longest matching wildcard server_name {pattern}",
    "first matching regex server_name {pattern} (in load order)",
)


def _match_name(
    table: NameTable, entries: Entries, name: str
) -> Tuple[Optional[Tuple[Server, Listen]], str, Optional[str]]:
    if table.hostname_unknown:
        where = table.hostname_unknown[0].where
        return None, "", f"server_name $hostname at {where} depends on the nginx host's name, which was not given"
    try:
        found = table.find(name)
    except RegexUnknown as exc:
        return None, "", f"{exc}; a regex server_name is checked before the answer is known"
    if found is None:
        return None, "", None
    server, entry = found
    listen = next(listen for candidate, listen in entries if candidate is server)
    return (server, listen), f"{_KIND_REASON[entry.kind].format(pattern=entry.text)} selects {server.label()}", None


def _default_entry(entries: Entries) -> Tuple[Server, Listen]:
    marked = [entry for entry in entries if entry[1].default]
    return (marked or entries)[0]


def _default_server(entries: Entries, name: str, group: Group) -> Tuple[Tuple[Server, Listen], str]:
    entry = _default_entry(entries)
    why = "marked default_server" if entry[1].default else "the first server block that listens there"
    what = f"no server_name matches {name}" if name else 'no Host header and no server_name ""'
    return (
        entry,
        f"{what}: the default server of {group[0]}:{group[1]} answers, {entry[0].label()} ({why})",
    )


@dataclass
class WebSocketReport:
    """What the chosen location carries for a WebSocket (effective values, inheritance applied)."""

    ready: bool
    gaps: List[str]
    proxy_pass: Optional[str]
    proxy_http_version: str
    proxy_http_version_at: str
    upgrade: Optional[str]
    connection: Optional[str]
    map_variable: Optional[str]
    map_at: Optional[str]
    directives: WebSocketDirectives = field(repr=False, compare=False)

    def as_dict(self) -> Dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "directives"}
        return dict(data)


@dataclass
class Backend:
    """A proxy_pass target to probe directly: address, the WebSocket URL nginx would open, and why."""

    address: str
    url: Optional[str]
    source: str
    note: Optional[str] = None


@dataclass
class Timeout:
    value: str
    seconds: float
    at: str  # file:line, or "default"


@dataclass
class RouteInfo:
    """Everything the static half of the diagnosis knows about one host name and URI."""

    host: Optional[str]
    uri: str
    path: str
    choice: ServerChoice
    route: Optional[Route] = None
    location: Optional[Directive] = None
    websocket: Optional[WebSocketReport] = None
    shadowed: List[Directive] = field(default_factory=list)
    backends: List[Backend] = field(default_factory=list)
    backend_note: Optional[str] = None
    read_timeout: Optional[Timeout] = None
    error_logs: List[str] = field(default_factory=list)
    pid_file: str = DEFAULT_PID_FILE
    refused: Optional[str] = None  # why nginx answers 400 to the request line, before any server or location

    @property
    def reasons(self) -> List[str]:
        if self.refused:
            return [self.refused]
        return self.choice.reasons + (self.route.reasons if self.route else [])

    @property
    def status(self) -> Optional[int]:
        """400 or 301 when nginx answers so before any handler runs; None when the location's handler answers."""
        if self.refused or self.choice.status == 400:
            return 400
        return 301 if self.route is not None and self.route.redirect else None

    @property
    def redirect(self) -> Optional[str]:
        return self.route.redirect if self.route is not None and self.status == 301 else None

    @property
    def unknown(self) -> Optional[str]:
        return self.choice.unknown or (self.route.unknown if self.route else None)

    def as_dict(self) -> Dict[str, Any]:
        server, listen = self.choice.server, self.choice.listen
        return {
            "host": self.host,
            "uri": self.uri,
            "path": self.path,
            "status": self.status,
            "redirect": self.redirect,
            "server": None
            if server is None or listen is None
            else {
                "name": server.label(),
                "file": server.file,
                "line": server.line,
                "names": server.names,
                "listen": listen.text,
                "ssl": listen.ssl,
            },
            "location": None
            if self.location is None
            else {"name": location_text(self.location), "file": self.location.file, "line": self.location.line},
            "reasons": self.reasons,
            "known": self.unknown is None,
            "unknown": self.unknown,
            "websocket": self.websocket.as_dict() if self.websocket else None,
            "shadowed": [f"{location_text(d)} at {d.where}" for d in self.shadowed],
            "backends": [asdict(backend) for backend in self.backends],
            "proxy_read_timeout": asdict(self.read_timeout) if self.read_timeout else None,
            "error_logs": self.error_logs,
            "pid_file": self.pid_file,
        }


def location_text(directive: Directive) -> str:
    modifier, path = location_match(directive)
    return f"location {modifier} {path}" if modifier and modifier != "@" else f"location {path}"


def named(directive: Directive) -> str:
    """A location as the verdicts show it: `location ~ ^/api/` at /etc/nginx/sites-enabled/app:12."""
    return f"`{location_text(directive)}` at {directive.where}"


def route_info(
    config: Config,
    host: Optional[str],
    uri: str,
    port: Optional[int] = None,
    address: Optional[str] = None,
    hostname: Optional[str] = None,
) -> RouteInfo:
    """The server and location nginx uses for ``host`` (None: no Host header) and ``uri``, and what that
    location carries; or the 400 or 301 nginx answers before a handler runs."""
    choice = select_server(config, host, port, address, hostname)
    try:
        path = normalize_uri(uri, merge_slashes(config, choice.default_server))
    except InvalidUri as exc:
        refused = f"nginx answers 400 to the request line: {exc}"
        info = RouteInfo(host, uri, uri.split("?", 1)[0], choice, refused=refused)
        info.pid_file = main_file_setting(config, "pid") or DEFAULT_PID_FILE
        info.error_logs = error_logs(config, [None])
        return info
    info = RouteInfo(host, uri, path, choice)
    info.pid_file = main_file_setting(config, "pid") or DEFAULT_PID_FILE
    server = info.choice.server
    if server is None:
        info.error_logs = error_logs(config, [None])
        return info
    info.route = route(tree(config, server), path)
    node = info.route.location
    info.location = node.directive if node is not None else None
    chain = enclosing_chain(config, info.location, server) if info.location else [server.http, server.directive]
    info.error_logs = error_logs(config, [None, *chain])
    if info.location is None:
        return info
    info.websocket = websocket_report(config, server, info.location, chain)
    info.shadowed = shadowed_websocket_locations(config, server, info.location, path)
    info.read_timeout = read_timeout(config, chain)
    info.backends, info.backend_note = backend_targets(config, info)
    return info


def merge_slashes(config: Config, server: Optional[Server]) -> bool:
    """``merge_slashes`` as ngx_http_process_request_uri reads it: from the default server of the
    address:port (the request line is parsed before the Host header picks a server)."""
    if server is None:
        return True
    found = effective(config, [server.http, server.directive], "merge_slashes")
    return not (found and found[-1].args and found[-1].args[0].lower() == "off")


def websocket_report(
    config: Config, server: Server, location: Directive, chain: Sequence[Optional[Directive]]
) -> WebSocketReport:
    found = read_directives(config, server, location)
    versions = effective(config, chain, "proxy_http_version")
    variable = found.map_variable
    maps = {m.args[1].lstrip("$"): m for m in config.upgrade_maps()}
    lacking = gaps(found, found.usable_map_variable)
    return WebSocketReport(
        ready=not lacking,
        gaps=lacking,
        proxy_pass=found.proxy_pass or None,
        proxy_http_version=found.proxy_http_version or DEFAULT_HTTP_VERSION,
        proxy_http_version_at=versions[-1].where if versions else "default",
        upgrade=found.upgrade,
        connection=found.connection,
        map_variable=variable,
        map_at=maps[variable].where if variable else None,
        directives=found,
    )


def shadowed_websocket_locations(config: Config, server: Server, chosen: Directive, path: str) -> List[Directive]:
    """Locations that carry an Upgrade header and match ``path`` on their own, but nginx picks another."""
    found = []
    for node in _all_nodes(tree(config, server)):
        directive = node.directive
        if directive is None or directive is chosen or node.is_named:
            continue
        carries_upgrade = any(directive_key(d) == ("proxy_set_header", "upgrade") for d in config.level(directive))
        alone = route([LocationNode(node.modifier, node.path, None)], path)
        if carries_upgrade and alone.known and alone.location is not None:
            found.append(directive)
    return found


def _all_nodes(nodes: Sequence[LocationNode]) -> List[LocationNode]:
    flat: List[LocationNode] = []
    for node in nodes:
        flat.append(node)
        flat.extend(_all_nodes(node.children))
    return flat


def read_timeout(config: Config, chain: Sequence[Optional[Directive]]) -> Timeout:
    found = effective(config, chain, "proxy_read_timeout")
    if not found or not found[-1].args:
        return Timeout(DEFAULT_READ_TIMEOUT, time_seconds(DEFAULT_READ_TIMEOUT), "default")
    value = found[-1].args[0]
    return Timeout(value, time_seconds(value), found[-1].where)


def main_file_setting(config: Config, name: str) -> Optional[str]:
    """A main-context directive's path (``pid``, ``error_log``), absolute; None when it is not set."""
    found = [d for d in config.level(None) if d.name == name and d.args]
    return absolute_path(found[-1].args[0]) if found else None


def main_file_setting_from_bytes(path: str, data: bytes, name: str) -> Optional[str]:
    """The same from the main file alone, for a configuration that ``nginx -T`` refuses to dump."""
    try:
        directives = parse_bytes(data, path, check=False).directives
    except NginxConfigError:
        return None
    found = [d for d in directives if d.name == name and d.args]
    return absolute_path(found[-1].args[0]) if found else None


def absolute_path(value: str) -> str:
    return value if posixpath.isabs(value) else posixpath.join(DEFAULT_PREFIX, value)


def error_logs(config: Config, chain: Sequence[Optional[Directive]]) -> List[str]:
    """The files nginx logs this request's errors to, then the main error log (reload failures)."""
    files: List[str] = []
    for directive in effective(config, chain, "error_log") + effective(config, [None], "error_log"):
        target = directive.args[0] if directive.args else ""
        if target and target != "stderr" and not target.startswith(("syslog:", "memory:")):
            files.append(absolute_path(target))
    return list(dict.fromkeys(files)) or [DEFAULT_ERROR_LOG]


def backend_targets(config: Config, info: RouteInfo) -> Tuple[List[Backend], Optional[str]]:
    """The addresses behind the chosen location's proxy_pass (or, when it has none, behind the shadowed
    WebSocket location's), with the URL of a direct WebSocket handshake; or why there are none."""
    sources = [info.location, *info.shadowed] if info.location else []
    for location in sources:
        passes = [d for d in config.level(location) if d.name == "proxy_pass" and d.args]
        if passes:
            return _targets_of(config, location, passes[0], info.path, info.uri)
    return [], "no location for this path has a proxy_pass"


def _targets_of(
    config: Config, location: Directive, directive: Directive, path: str, uri: str
) -> Tuple[List[Backend], Optional[str]]:
    value = directive.args[0]
    source = f"proxy_pass {value} at {directive.where}"
    if "$" in value:
        return [], f"{source} uses variables; set the backend to probe it directly"
    scheme, host = _scheme_and_host(value)
    if host.startswith("unix:"):
        return [], f"{source} is a unix socket, which the probe cannot open"
    secure = scheme.lower() == "https"
    backend_uri = backend_request_uri(location, value, path, uri)
    servers = upstream_servers(config, host)
    addresses = servers if servers is not None else [_with_port(host, secure)]
    targets = []
    for address in addresses:
        if address.startswith("unix:"):
            targets.append(Backend(address, None, source, "a unix socket, which the probe cannot open"))
        else:
            targets.append(Backend(address, f"{'wss' if secure else 'ws'}://{address}{backend_uri}", source))
    return targets, None


def _scheme_and_host(proxy_pass: str) -> Tuple[str, str]:
    scheme, host = split_proxy_pass(proxy_pass)[0].split("://", 1)
    return scheme, host


def backend_request_uri(location: Directive, proxy_pass: str, path: str, uri: str) -> str:
    """The request URI nginx sends upstream: the client's URI, or with the location's prefix replaced
    by proxy_pass's URI part."""
    part = split_proxy_pass(proxy_pass)[1]
    modifier, prefix = location_match(location)
    if part is None or modifier in ("~", "~*", "@") or not path.startswith(prefix):
        return uri
    query = "?" + uri.split("?", 1)[1] if "?" in uri else ""
    return part + path[len(prefix) :] + query


def upstream_servers(config: Config, name: str) -> Optional[List[str]]:
    """The ``server`` addresses of ``upstream name`` (not ``down``), or None when there is no such block."""
    for http in config.http_levels():
        for directive in config.level(http):
            if directive.name == "upstream" and directive.args[:1] == [name]:
                entries = [d.args for d in config.level(directive) if d.name == "server" and d.args]
                return [_with_port(args[0], False) for args in entries if "down" not in args[1:]]
    return None


def _with_port(host: str, secure: bool) -> str:
    if host.startswith("unix:") or re.search(r"(^[^\[]*:\d+$)|(\]:\d+$)", host):
        return host
    return f"{host}:{443 if secure else 80}"


def direct_backend(value: str, path_uri: str) -> Backend:
    """A backend given by the operator (``host:port`` or a URL) for a proxy_pass the model cannot follow."""
    scheme, host = _scheme_and_host(value if "://" in value else f"http://{value}")
    secure = scheme.lower() in ("https", "wss")
    address = _with_port(host, secure)
    return Backend(address, f"{'wss' if secure else 'ws'}://{address}{path_uri}", f"the backend {value} given")
