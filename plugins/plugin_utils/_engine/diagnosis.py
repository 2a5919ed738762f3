# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where nginx sends a request, what that location lacks for a WebSocket, and the verdict of the layered
diagnosis. PRIVATE to the collection.

Everything here is pure: it reads the loaded model (``_model``) and what the probes saw, and returns
sentences. The I/O (``nginx -T``, the pid file, the error log, the handshakes) is done by the
``route_info`` action plugin.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

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
    redirect_fix,
    route,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import (
    InvalidHost,
    NameTable,
    match_rank,
    name_table,
    parse_server_name,
    validate_host,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import (
    seconds_text,
    time_seconds,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.websocket import (
    NOTHING,
    WebSocketDirectives,
    breaking_phrases,
    directive_key,
    fix_lines,
    gaps,
    read_directives,
    requirement,
)

# Debian's and Ubuntu's compiled-in paths (nginx -V: --prefix, --pid-path, --error-log-path).
DEFAULT_PREFIX = "/usr/share/nginx"
DEFAULT_PID_FILE = "/run/nginx.pid"
DEFAULT_ERROR_LOG = "/var/log/nginx/error.log"
DEFAULT_READ_TIMEOUT = "60s"
DEFAULT_HTTP_VERSION = "1.0"  # nginx 1.29.7 and later default to 1.1
LOG_LINES_KEPT = 5
LOG_LINE_MAX = 400
BODY_SHOWN = 200

LAYERS = ("nginx", "backend", "routing", "handshake", "timeout")
OK, BROKEN, SKIPPED, UNKNOWN = "ok", "broken", "skipped", "unknown"

# ------------------------------------------------------------------------------------- small parsers


def normalize_uri(uri: str, merge_slashes: bool = True) -> str:
    """The URI as nginx matches locations against it (``_routing.parse_complex_uri``); ValueError when it
    does not start with "/", InvalidUri when nginx answers 400."""
    if not uri.startswith("/"):
        raise ValueError(f"the URI must start with '/', got {uri!r}")
    return parse_complex_uri(uri, merge_slashes)


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


# -------------------------------------------------------------------------------- server selection


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


# -------------------------------------------------------------------------------------- route info


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


# ------------------------------------------------------------------------------------------ backends


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


# ------------------------------------------------------------------------------------------- probes


@dataclass
class Probe:
    """What one WebSocket handshake saw (from agaii.nginx.ws_probe's result)."""

    url: str
    status: int
    status_line: str = ""
    error: Optional[str] = None
    body: str = ""
    headers: List[List[str]] = field(default_factory=list)

    @property
    def connect_failed(self) -> bool:
        return self.status == 0 and (self.error or "").startswith("connecting to ")

    @property
    def upgraded(self) -> bool:
        return self.status == 101

    def header(self, name: str) -> Optional[str]:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def outcome(self) -> str:
        return self.status_line or self.error or "no HTTP response"

    def connect_error(self) -> str:
        return (self.error or "").split(": ", 1)[-1]


def probe_from(url: str, result: Dict[str, Any]) -> Probe:
    status = int(result.get("status") or 0)
    error = None
    if status == 0:
        error = str(result.get("error") or result.get("msg") or "no HTTP response")
    return Probe(
        url=url,
        status=status,
        status_line=str(result.get("status_line") or ""),
        error=error,
        body=str(result.get("body") or ""),
        headers=[list(pair) for pair in result.get("headers") or []],
    )


# -------------------------------------------------------------------------------------- error log

_RELEVANT_LOG = re.compile(
    r"connect\(\) (?:to \S+ )?failed|upstream timed out|no live upstreams|upstream prematurely closed"
    r"|upstream sent (?:invalid|no valid|too big)|recv\(\) failed|send\(\) failed|host not found in upstream"
    r"|could not be resolved|worker_connections are not enough|SSL_do_handshake\(\) failed|\[emerg\]"
)


def relevant_log_lines(text: str, needles: Sequence[str] = (), limit: int = LOG_LINES_KEPT) -> List[str]:
    """The last ``limit`` error-log lines about upstream failures; those naming a needle (a backend
    address, the WebSocket path) are preferred when there are any."""
    lines = [line.strip() for line in text.splitlines() if _RELEVANT_LOG.search(line)]
    preferred = [line for line in lines if any(needle in line for needle in needles if needle)]
    kept = (preferred or lines)[-limit:]
    return [line if len(line) <= LOG_LINE_MAX else line[: LOG_LINE_MAX - 3] + "..." for line in kept]


# ---------------------------------------------------------------------------------- checks, verdict


@dataclass
class Check:
    """One layer's finding. ``evidence`` says what was seen, ``fix`` what to do (broken layers only)."""

    layer: str
    status: str
    message: str
    evidence: List[str] = field(default_factory=list)
    fix: Optional[str] = None
    warnings: List[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return self.status == BROKEN


@dataclass
class Process:
    """The nginx master named by the pid file, as seen on the host."""

    pid_file: str
    pid: Optional[int] = None
    name: Optional[str] = None
    problem: Optional[str] = None

    @property
    def running(self) -> bool:
        return self.pid is not None and self.name == "nginx"

    def describe(self) -> str:
        if self.running:
            return f"nginx runs (pid {self.pid} from {self.pid_file})"
        return f"nginx is not running ({self.problem or 'pid file ' + self.pid_file})"


def process_from(pid_file: str, pid_text: Optional[str], comm: Optional[str]) -> Process:
    """Interpret the pid file's text and /proc/<pid>/comm (None: unreadable)."""
    if pid_text is None:
        return Process(pid_file, problem=f"no pid file {pid_file}")
    if not pid_text.strip():  # `nginx -t` and `nginx -T` create an empty pid file when there is none
        return Process(pid_file, problem=f"pid file {pid_file} is empty")
    if not pid_text.strip().isdigit():
        return Process(pid_file, problem=f"pid file {pid_file} holds {pid_text.strip()[:40]!r}, not a pid")
    pid = int(pid_text.strip())
    if comm is None:
        return Process(pid_file, pid, problem=f"pid {pid} from {pid_file} is not running")
    name = comm.strip()
    problem = None if name == "nginx" else f"pid {pid} from {pid_file} is {name!r}, not nginx"
    return Process(pid_file, pid, name, problem)


_CONFIG_FIXES: Tuple[Tuple[str, Callable[[re.Match], str]], ...] = (
    (
        r'unknown "(?P<var>[^"]+)" variable',
        lambda m: (
            f"Add the map with agaii.nginx.upgrade_map (variable: {m['var']}): it defines ${m['var']} in http{{}} "
            "exactly once. nginx names no file or line for this error."
            if "upgrade" in m["var"] or m["var"] == "proxy_connection"
            else f"Define ${m['var']} (a map in http{{}}, or set) or correct the variable name."
        ),
    ),
    (
        r'"proxy_http_version" directive is duplicate',
        lambda m: "Keep exactly one `proxy_http_version 1.1;` in that location.",
    ),
    (
        r'"map" directive is not allowed here',
        lambda m: "Move the map into http{} (agaii.nginx.upgrade_map puts it in conf.d/ or in http{}).",
    ),
    (
        r'duplicate location "(?P<path>[^"]+)"',
        lambda m: f"Keep one location {m['path']} and edit it in place (agaii.nginx.ws_location converges it).",
    ),
    (
        r"cannot have URI part in location given by regular expression",
        lambda m: (
            "Drop the URI part of proxy_pass in the regex location, or use a `^~` prefix location "
            "(agaii.nginx.ws_location chooses the form)."
        ),
    ),
    (
        r"a duplicate default server",
        lambda m: (
            "Two server blocks claim the same default server, often a backup file loaded by "
            "`include sites-enabled/*;`: move backups out of every include glob."
        ),
    ),
    (
        r"host not found in upstream",
        lambda m: "nginx cannot resolve the upstream host name: correct it or use an IP address.",
    ),
)


def config_fix(error: str) -> str:
    """What to do about an ``nginx -t`` error."""
    for pattern, fix in _CONFIG_FIXES:
        found = re.search(pattern, error)
        if found:
            return fix(found)
    return "Fix the configuration until `nginx -t` passes (nginx names the file and line)."


def nginx_check(process: Process, test_rc: int, test_error: Optional[str], conf: str, binary: str) -> Check:
    """Layer 1: nginx running, and its configuration valid."""
    test = f"`{binary} -t -c {conf}`"
    if test_rc != 0:
        error = test_error or "no message"
        state = (
            f"{process.describe()} with its last good configuration; a reload or restart fails until this is fixed"
            if process.running
            else f"{process.describe()}; it cannot start with this configuration"
        )
        return Check(
            "nginx",
            BROKEN,
            f"nginx configuration is invalid: {error}",
            [f"{test} fails: {error}", state],
            config_fix(error),
        )
    if not process.running:
        return Check(
            "nginx",
            BROKEN,
            process.describe(),
            [f"{test} passes", process.problem or ""],
            f"Start nginx: `systemctl start nginx`, or `{binary} -c {conf}` where no service manager runs.",
        )
    return Check("nginx", OK, f"{process.describe()} and {test} passes")


def backend_check(info: RouteInfo, probes: Sequence[Probe], log_lines: Sequence[str]) -> Check:
    """Layer 2: the proxy_pass target answers TCP, then a WebSocket handshake, directly."""
    if not info.backends or not probes:
        return Check("backend", SKIPPED, f"backend not probed: {info.backend_note or 'nothing to probe'}")
    source = info.backends[0].source
    reached = [probe for probe in probes if not probe.connect_failed]
    if not reached:
        down = [_authority(probe.url) for probe in probes]
        evidence = [f"TCP connect to {_authority(p.url)} from the nginx host: {p.connect_error()}" for p in probes]
        return Check(
            "backend",
            BROKEN,
            f"backend down on {', '.join(down)}",
            [*evidence, f"nginx proxies to it: {source}", *(f"error.log: {line}" for line in log_lines)],
            f"Start the application so that it listens on {', '.join(down)}, or correct {source}.",
        )
    upgraded = next((probe for probe in reached if probe.upgraded), None)
    warnings = [f"backend {p.url} is down: {p.connect_error()}" for p in probes if p.connect_failed]
    if upgraded is None:
        probe = reached[0]
        evidence = [f"direct handshake to {probe.url}: {probe.outcome()}"]
        if probe.body:
            evidence.append(f"response body: {probe.body[:BODY_SHOWN]}")
        path = probe.url.split("/", 3)[-1]
        return Check(
            "backend",
            BROKEN,
            f"the backend at {_authority(probe.url)} refuses the WebSocket handshake for /{path}: {probe.outcome()}",
            [*evidence, f"nginx proxies to it: {source}"],
            f"The application has no WebSocket at /{path}: check its WebSocket route, and the URI nginx sends "
            f"({source} maps {info.path} to /{path}).",
            warnings,
        )
    return Check("backend", OK, f"the backend at {_authority(upgraded.url)} upgrades directly (101)", warnings=warnings)


def _authority(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def routing_check(info: RouteInfo) -> Check:
    """Layer 3: the location nginx picks for the WebSocket path carries what a WebSocket needs."""
    server = info.choice.server
    if info.status == 400:
        return Check(
            "routing",
            BROKEN,
            f"nginx answers 400 Bad Request before any location: {info.reasons[-1]}",
            info.reasons,
            "Send a Host header that is a valid name, and a path without a malformed %-escape, %00 or a '..' "
            "above the root: nginx refuses the request before it reaches a location.",
        )
    if info.unknown:
        return Check("routing", UNKNOWN, f"routing cannot be decided statically: {info.unknown}", info.reasons)
    if server is None:
        return Check(
            "routing",
            BROKEN,
            info.reasons[-1],
            info.reasons,
            "Set port/address to where the WebSocket clients connect, or add a server block that listens there.",
        )
    location = info.location
    if info.status == 301 and location is not None:
        return Check(
            "routing",
            BROKEN,
            f"nginx answers {info.path} with a 301 redirect to {info.redirect}: {named(location)} ends with / and "
            "passes requests on (its automatic redirect); a WebSocket client does not follow redirects",
            info.reasons,
            redirect_fix(info.path, info.route.location) if info.route and info.route.location else "",
        )
    if location is None:
        return Check(
            "routing",
            BROKEN,
            f"no location of {server.label()} matches {info.path}: nginx answers it as a static file",
            info.reasons,
            "Add a WebSocket location for the path with agaii.nginx.ws_location (or the ws_proxy role).",
        )
    missing = missing_phrases(info.websocket)
    if missing:
        return _routing_gap(info, location, missing)
    version = info.websocket.proxy_http_version if info.websocket else DEFAULT_HTTP_VERSION
    warnings = []
    if not speaks_http_1_1(info):
        warnings.append(
            f"{named(location)} speaks HTTP/{version} to the backend "
            "(no `proxy_http_version 1.1`): RFC-strict backends answer 505"
        )
    return Check(
        "routing",
        OK,
        f"{named(location)} takes the WebSocket path and carries the upgrade headers",
        info.reasons,
        warnings=warnings,
    )


def speaks_http_1_1(info: RouteInfo) -> bool:
    return info.websocket is not None and requirement("proxy_http_version").met(info.websocket.directives)


def _routing_gap(info: RouteInfo, location: Directive, missing: List[str]) -> Check:
    lacks = _join(missing)
    if info.shadowed:
        winner = info.shadowed[0]
        return Check(
            "routing",
            BROKEN,
            f"{named(location)} takes the WebSocket path ahead of {named(winner)} and has {lacks}",
            info.reasons,
            shadow_fix(location, winner),
        )
    is_websocket = info.websocket is not None and (info.websocket.upgrade or info.websocket.connection)
    fix = (
        f"Add {_join(missing_lines(info.websocket))} to {named(location)} "
        "(agaii.nginx.ws_location converges it in place)."
        if is_websocket
        else "Add a WebSocket location that nginx picks for this path with agaii.nginx.ws_location "
        "(or the ws_proxy role)."
    )
    return Check("routing", BROKEN, f"{named(location)} takes the WebSocket path and has {lacks}", info.reasons, fix)


def missing_phrases(report: Optional[WebSocketReport]) -> List[str]:
    """What the location lacks that breaks every WebSocket (proxy_http_version is judged by the handshake)."""
    return ["no proxy_pass"] if report is None else breaking_phrases(report.directives)


def missing_lines(report: Optional[WebSocketReport]) -> List[str]:
    """Every line the location lacks, for the fix."""
    return fix_lines(NOTHING if report is None else report.directives)


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def shadow_fix(chosen: Directive, websocket: Directive) -> str:
    chosen_modifier = location_match(chosen)[0]
    ws_modifier, ws_path = location_match(websocket)
    regex = ("~", "~*")
    if chosen_modifier == "^~" and ws_modifier in regex:
        return (
            f"{named(chosen)} is ^~, so nginx checks no regex for this path: make the WebSocket location a "
            "`^~` prefix location (agaii.nginx.ws_location with match auto does)."
        )
    if chosen_modifier in regex and ws_modifier in regex:
        return (
            f"Move `{location_text(websocket)}` above `{location_text(chosen)}`: regexes are tried in file order "
            "(agaii.nginx.ws_location places it there)."
        )
    if chosen_modifier in regex and ws_modifier == "":
        return (
            f"A matching regex beats a plain prefix: make it `location ^~ {ws_path}` "
            "(agaii.nginx.ws_location converges it in place)."
        )
    return "Make the WebSocket location win for this path (agaii.nginx.ws_location chooses a form nginx picks)."


_STATUS_FIXES: Dict[int, str] = {
    301: "nginx redirects the WebSocket path{location}: probe the final URL, or exempt the path from the redirect.",
    302: "nginx redirects the WebSocket path{location}: probe the final URL, or exempt the path from the redirect.",
    307: "nginx redirects the WebSocket path{location}: probe the final URL, or exempt the path from the redirect.",
    308: "nginx redirects the WebSocket path{location}: probe the final URL, or exempt the path from the redirect.",
    400: "The request was refused as malformed: check the Host header and large_client_header_buffers.",
    401: "Access control refuses the handshake: check auth_basic/auth_request in the location, or the app's auth.",
    403: "Access is denied: check allow/deny in the location, and the application's origin checks.",
    404: "Nothing answers this path: compare the URI nginx sends to the backend with the application's route.",
    426: "The backend wants an upgrade it did not get: the Upgrade/Connection headers are lost on the way.",
    500: "The application failed on the handshake: read its log.",
    502: "nginx got no valid answer from the backend: read the error log lines, and check the backend address.",
    503: "nginx has no live upstream (or a limit refused the request): check the upstream block and limits.",
    504: "The backend did not answer in time: check that it is not blocked, and proxy_connect_timeout.",
}


def handshake_check(info: RouteInfo, probe: Probe, log_lines: Sequence[str]) -> Check:
    """Layer 4: the handshake through nginx gets 101; otherwise say what the status means here."""
    if probe.upgraded:
        return Check("handshake", OK, f"101 Switching Protocols through nginx at {probe.url}")
    evidence = [f"handshake through nginx at {probe.url} (Host {info.host}): {probe.outcome()}"]
    if probe.body:
        evidence.append(f"response body: {probe.body[:BODY_SHOWN]}")
    evidence += [f"error.log: {line}" for line in log_lines]
    if probe.connect_failed:
        return Check(
            "handshake",
            BROKEN,
            f"nginx does not answer at {_authority(probe.url)}: {probe.connect_error()}",
            evidence,
            "Check the listen directive of the server block and that nothing blocks the port.",
        )
    version = info.websocket.proxy_http_version if info.websocket else DEFAULT_HTTP_VERSION
    if probe.status == 505 and not speaks_http_1_1(info) and info.location is not None:
        return Check(
            "handshake",
            BROKEN,
            f"505 from the backend: `proxy_http_version 1.1` missing in {named(info.location)}",
            evidence,
            f"Add `proxy_http_version 1.1;` to {named(info.location)}: nginx speaks HTTP/{version} to backends by "
            "default and RFC-strict servers refuse an HTTP/1.0 upgrade (agaii.nginx.ws_location adds it).",
        )
    redirect = probe.header("Location")
    fix = _STATUS_FIXES.get(probe.status, "Read the response body and the error log lines for the cause.")
    return Check(
        "handshake",
        BROKEN,
        f"the handshake through nginx gets {probe.outcome()} instead of 101 Switching Protocols",
        evidence,
        fix.format(location=f" (Location: {redirect})" if redirect else ""),
    )


def timeout_check(info: RouteInfo, silence: float) -> Check:
    """Layer 5: the effective proxy_read_timeout outlasts the application's longest silence."""
    timeout = info.read_timeout
    if silence <= 0 or timeout is None or info.location is None:
        return Check("timeout", SKIPPED, "no application silence given: the idle timeout was not compared")
    quiet = seconds_text(silence)
    where = "nginx's default" if timeout.at == "default" else f"set at {timeout.at}"
    if timeout.seconds > silence:
        return Check("timeout", OK, f"proxy_read_timeout {timeout.value} outlasts the application's {quiet} of silence")
    comparison = "is shorter than" if timeout.seconds < silence else "is not longer than"
    return Check(
        "timeout",
        BROKEN,
        f"proxy_read_timeout {timeout.value} ({where}) of {named(info.location)} {comparison} the application's "
        f"{quiet} of silence: nginx closes the idle WebSocket after {timeout.value}",
        [f"proxy_read_timeout {timeout.value} ({where}); the application may stay silent for {quiet}"],
        f"Set `proxy_read_timeout` above {quiet} in {named(info.location)} (agaii.nginx.ws_location read_timeout, "
        f"3600s by default), or have the application send a ping more often than every {timeout.value}.",
    )


def verdict(checks: Sequence[Check], healthy_message: str) -> Dict[str, Any]:
    """The first broken layer (the checks stop there), or healthy; with every check that ran."""
    broken = next((check for check in checks if check.broken), None)
    warnings = [warning for check in checks for warning in check.warnings]
    warnings += [check.message for check in checks if check.status == UNKNOWN]
    decided = broken or Check("none", OK, healthy_message)
    return {
        "status": "broken" if broken else "healthy",
        "layer": decided.layer,
        "message": decided.message,
        "evidence": [line for line in decided.evidence if line],
        "fix": decided.fix,
        "warnings": warnings,
        "checks": [{"layer": c.layer, "status": c.status, "message": c.message} for c in checks],
    }


def healthy_message(info: RouteInfo, backend: Optional[str]) -> str:
    location = named(info.location) if info.location is not None else "the server"
    target = f" to {backend}" if backend else ""
    return f"WebSocket works: 101 Switching Protocols through nginx, {location} proxies{target}"
