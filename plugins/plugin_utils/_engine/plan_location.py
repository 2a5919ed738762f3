# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan the WebSocket location edit for each selected server block, and prove it routes. PRIVATE.

The planner never writes: it returns byte-range edits against the original file, the routing of a
sample WebSocket URI before and after, and the reasons for every choice. Every plan is checked by
splicing it, loading the result again and routing the sample URI through the new model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.carry import (
    Carry,
    CarryPlanner,
    family_of,
    named_location_target,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Config,
    ConfigFile,
    Directive,
    Server,
    effective,
    enclosing_chain,
    location_match,
    parse_bytes,
    reparse_edited,
    walk_directives,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import (
    AnchorNotFoundError,
    CannotWinError,
    NginxConfigError,
    ServerSelectionError,
    UnsupportedConfigError,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.layout import Layout
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.render import (
    as_bytes,
    render_block_head,
    render_directive,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import (
    Settings,
    WebSocketPath,
    parse_before,
    parse_location,
    validate,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import (
    LocationNode,
    Route,
    build_tree,
    request_problem,
    route,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import (
    Answer,
    ListenSelector,
    candidates,
    describe_candidates,
    listen_texts,
    parse_listen_selector,
    proxy_answer,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.splice import Edit, apply_edits
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import TimeValueError, parse_time
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.websocket import directive_key, websocket_gaps

MARKER = "# managed by agaii.nginx.ws_location"
_OWN_SETTINGS = ("proxy_pass", "proxy_http_version", "proxy_read_timeout", "proxy_send_timeout")
_UPGRADE_HEADERS = ("upgrade", "connection")


@dataclass
class ServerOutcome:
    """What the plan does to one server block, and why."""

    server: str
    file: str
    line: int
    names: List[str]
    action: str
    form: Optional[str] = None
    location: Optional[str] = None
    reasons: List[str] = field(default_factory=list)
    route_before: Dict[str, Optional[str]] = field(default_factory=dict)
    route_after: Dict[str, Optional[str]] = field(default_factory=dict)
    carried: List[Dict[str, object]] = field(default_factory=list)
    left_out: List[Dict[str, object]] = field(default_factory=list)
    listen: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Plan:
    """The edits (against the original bytes), the new bytes, and the story of each server."""

    edits: List[Edit]
    before: Dict[str, bytes]
    after: Dict[str, bytes]
    servers: List[ServerOutcome]
    warnings: List[str]
    map_variable: Optional[str]
    sample_uri: str

    @property
    def changed(self) -> bool:
        return any(self.before.get(path) != data for path, data in self.after.items())


@dataclass
class _Desired:
    """One directive the WebSocket location must carry. ``accept`` says which existing values are fine."""

    key: Tuple[str, ...]
    text: str
    accept: Tuple[str, ...]
    option: str = ""  # the module option that sets it, for messages
    is_time: bool = False  # compare as nginx times (1h == 3600s)


def tree(config: Config, server: Server) -> List[LocationNode]:
    return build_tree(server.directives(), config.level)


def route_summary(result: Route) -> Dict[str, Optional[str]]:
    location = result.location
    return {
        "location": location.describe() if location else None,
        "reason": result.unknown or result.explain(),
    }


def plan_websocket(config: Config, path: str, settings: Settings) -> Plan:
    """Plan ``settings`` for the server blocks of ``path``; raise NginxConfigError if it cannot be done."""
    validate(settings)
    ws = parse_location(settings.location)
    if path not in config.files:
        raise UnsupportedConfigError(
            "this file is not part of the loaded nginx configuration",
            path,
            None,
            "Check that nginx includes it (`nginx -T` lists the loaded files).",
        )
    planner = _Planner(config, path, settings, ws)
    return planner.run()


class _Planner:
    def __init__(self, config: Config, path: str, settings: Settings, ws: WebSocketPath) -> None:
        self.config = config
        self.path = path
        self.settings = settings
        self.ws = ws
        self.file: ConfigFile = config.files[path]
        self.layout = Layout(self.file)
        self.warnings: List[str] = []
        self.listen: Optional[ListenSelector] = parse_listen_selector(settings.listen) if settings.listen else None
        self.map_variable = self._choose_map_variable()

    # -- orchestration -----------------------------------------------------------------------

    def run(self) -> Plan:
        servers = self._select_servers()
        outcomes: List[ServerOutcome] = []
        edits: List[Edit] = []
        for server in servers:
            outcome, server_edits = self._plan_server(server)
            outcomes.append(outcome)
            edits.extend(server_edits)
        after = apply_edits({self.path: self.file.data}, edits) if edits else {}
        self._verify(servers, outcomes, after, edits)
        return Plan(
            edits,
            {self.path: self.file.data},
            after,
            outcomes,
            self.warnings,
            self.map_variable,
            self.ws.sample_uri,
        )

    def _plan_server(self, server: Server) -> Tuple[ServerOutcome, List[Edit]]:
        outcome = ServerOutcome(server.label(), server.file, server.line, server.names, "unchanged")
        outcome.listen = listen_texts(server)
        outcome.route_before = route_summary(route(tree(self.config, server), self.ws.sample_uri))
        if self.settings.state == "absent":
            return outcome, self._plan_absent(server, outcome)
        existing = self._existing_location(server)
        if existing is not None:
            return outcome, self._plan_converge(server, existing, outcome)
        return outcome, self._plan_insert(server, outcome)

    def _verify(
        self, servers: List[Server], outcomes: List[ServerOutcome], after: Dict[str, bytes], edits: List[Edit]
    ) -> None:
        new_config = self._reloaded(after, edits, servers)
        new_servers = [s for s in new_config.servers() if s.file == self.path]
        if len(new_servers) != len(self.config.servers_in(self.path)):
            raise UnsupportedConfigError(
                "the planned edit changed the number of server blocks",
                self.path,
                None,
                "This is a bug in the planner; please report it with the file.",
            )
        index = {id(s.directive): i for i, s in enumerate(self.config.servers_in(self.path))}
        for server, outcome in zip(servers, outcomes):
            new_server = new_servers[index[id(server.directive)]]
            result = route(tree(new_config, new_server), self.ws.sample_uri)
            outcome.route_after = route_summary(result)
            if self.settings.state == "present":
                self._check_routes_to_websocket(new_config, new_server, result, outcome)

    def _reloaded(self, after: Dict[str, bytes], edits: List[Edit], servers: List[Server]) -> Config:
        """The configuration after the edits, as the check needs it: the statements holding an edit or a
        selected server are read again from the new bytes (see ``reparse_edited``)."""
        if not after:
            return self.config
        files = dict(self.config.files)
        keep = [server.directive for server in servers]
        for name, data in after.items():
            spans = [(e.start, e.end, len(e.text)) for e in edits if e.file == name]
            old = self.config.files.get(name)
            files[name] = reparse_edited(old, data, spans, keep) if old else parse_bytes(data, name, check=False)
        return Config(files=files, main=self.config.main, single_file=self.config.single_file)

    def _check_routes_to_websocket(self, config: Config, server: Server, result: Route, outcome: ServerOutcome) -> None:
        problem = request_problem(self.ws.sample_uri, result)
        if problem is not None:
            raise CannotWinError(problem[0], server.file, server.line, problem[1])
        if not result.known:
            raise CannotWinError(
                f"cannot prove where nginx sends {self.ws.sample_uri}: {result.unknown}",
                server.file,
                server.line,
                "Check the routing with a real handshake.",
            )
        chosen = result.location
        if chosen is None or chosen.directive is None or not self._is_websocket_form(chosen.directive):
            taken_by = chosen.describe() if chosen else "no location"
            raise CannotWinError(
                f"after the edit nginx would still send {self.ws.sample_uri} to {taken_by} ({result.explain()})",
                server.file,
                server.line,
                "Remove or change the location that takes the WebSocket path"
                + (", or use match=prefix." if self.settings.match == "regex" else "."),
            )
        missing = websocket_gaps(config, server, chosen.directive, self.map_variable)
        if missing:
            raise CannotWinError(
                f"the WebSocket location {chosen.describe()} still lacks: {', '.join(missing)}",
                chosen.directive.file,
                chosen.directive.line,
                "Fix the included file that sets it, or set it in the location.",
            )

    # -- choices -------------------------------------------------------------------------------

    def _choose_map_variable(self) -> Optional[str]:
        defined = [m.args[1].lstrip("$") for m in self.config.upgrade_maps()]
        if self.settings.map_variable:
            wanted = self.settings.map_variable.lstrip("$")
            if wanted not in defined:
                raise NginxConfigError(
                    f"map_variable {wanted!r} is not defined by a `map $http_upgrade ${wanted}` in http{{}}",
                    None,
                    None,
                    "Run agaii.nginx.upgrade_map first, or leave map_variable unset.",
                )
            return wanted
        if len(set(defined)) > 1:
            self.warnings.append(
                f"several `map $http_upgrade` blocks exist ({', '.join(defined)}); using the last one, ${defined[-1]}"
            )
        if defined:
            return defined[-1]
        if self.settings.state == "present":
            self.warnings.append(
                'no `map $http_upgrade $var` is loaded: the location sends Connection "upgrade"; run '
                "agaii.nginx.upgrade_map (the ws_proxy role does) and the next run switches to the map"
            )
        return None

    def _select_servers(self) -> List[Server]:
        chosen = candidates(self.config, self.path, self.settings.server_name, self.listen)
        serving = [s for s in chosen if self._anchor(s) is not None or self._existing_location(s) is not None]
        if not serving:
            raise AnchorNotFoundError(
                f"no selected server block has a location for {self.settings.before!r}",
                self.path,
                None,
                f"Candidates: {describe_candidates(chosen)}. Set before to the location that serves "
                "your API, or server_name to the right site.",
            )
        skipped = [s for s in chosen if s not in serving]
        for server in skipped:
            self.warnings.append(f"left alone: {server.label()} has no location for {self.settings.before}")
        present = self.settings.state == "present"
        answers = {id(server): self._answer(server) for server in serving} if present else {}
        if present and self.listen is None:
            serving = self._only_proxied(serving, answers)
        if self.settings.server_name is None and len({tuple(sorted(s.names)) for s in serving}) > 1:
            raise ServerSelectionError(
                "several server blocks with different names serve the anchor location",
                self.path,
                None,
                f"Set server_name to one of them: {describe_candidates(serving)}.",
            )
        if present:
            self._refuse_different_upstreams(serving, answers)
        return serving

    def _answer(self, server: Server) -> Answer:
        """How ``server`` answers the WebSocket path today: its WebSocket location when it has one, else the
        location nginx picks for the anchor path (else the anchor)."""
        location = self._existing_location(server)
        modifier, path = parse_before(self.settings.before)
        if location is None and modifier in (None, "", "^~", "=") and path.startswith("/"):
            result = route(tree(self.config, server), path)
            location = result.location.directive if result.known and result.location else None
        return proxy_answer(self.config, server, location or self._anchor(server))

    def _only_proxied(self, servers: List[Server], answers: Dict[int, Answer]) -> List[Server]:
        """Without a listen selector, the servers that only return or redirect the anchor path stay as
        they are; when none passes it to a backend, the task is refused."""
        proxied = [s for s in servers if answers[id(s)].upstream is not None]
        left = [s for s in servers if s not in proxied]
        if len(servers) == 1:
            # one candidate: planning it refuses with the anchor's own file:line and fix (see carry)
            return servers
        if not proxied:
            listing = "; ".join(f"{s.label()}: {answers[id(s)].why}" for s in left)
            raise AnchorNotFoundError(
                f"no selected server block passes {self.settings.before} to a backend: {listing}",
                self.path,
                None,
                "Set before to the location that proxies your API, or listen to the server block to edit "
                "(with proxy_pass).",
            )
        for server in left:
            self.warnings.append(
                f"left alone: {server.label()} does not proxy {self.settings.before} "
                f"({answers[id(server)].why}); set listen to choose it"
            )
        return proxied

    def _refuse_different_upstreams(self, servers: List[Server], answers: Dict[int, Answer]) -> None:
        if self.settings.proxy_pass or len({answers[id(s)].upstream for s in servers}) < 2:
            return
        listing = "; ".join(
            f"{s.where} listen {', '.join(listen_texts(s))} -> {answers[id(s)].upstream or answers[id(s)].why}"
            for s in servers
        )
        raise ServerSelectionError(
            f"{len(servers)} server blocks named {' '.join(servers[0].names) or '(no server_name)'} serve "
            f"{self.settings.before} with different upstreams: {listing}",
            self.path,
            None,
            "Set listen (for example the port of one of them) or server_name to choose the server to edit.",
        )

    def _anchor(self, server: Server) -> Optional[Directive]:
        modifier, path = parse_before(self.settings.before)
        nodes = list(_all_nodes(tree(self.config, server)))
        exact = [n for n in nodes if n.path == path and (modifier is None or n.modifier == modifier) and not n.is_named]
        if exact:
            exact.sort(key=lambda n: {"": 0, "^~": 1, "~": 2, "~*": 3, "=": 4}.get(n.modifier, 5))
            return exact[0].directive
        if modifier is None and path.startswith("/"):
            result = route(tree(self.config, server), path)
            serving = result.location.directive if result.known and result.location else None
            if serving is not None and self._proxy_source(server, serving) is not None:
                return serving
        return None

    def _is_websocket_form(self, directive: Directive) -> bool:
        match = location_match(directive)
        forms = [self.ws.regex_match]
        if self.ws.prefix is not None:
            forms += [("", self.ws.prefix), ("^~", self.ws.prefix)]
        return match in forms

    def _existing_location(self, server: Server) -> Optional[Directive]:
        found = [
            n.directive
            for n in _all_nodes(tree(self.config, server))
            if n.directive is not None and self._is_websocket_form(n.directive)
        ]
        if not found:
            return None
        winner = route(tree(self.config, server), self.ws.sample_uri).location
        for directive in found:
            if winner is not None and winner.directive is directive:
                return directive
        return found[0]

    # -- insert --------------------------------------------------------------------------------

    def _plan_insert(self, server: Server, outcome: ServerOutcome) -> List[Edit]:
        anchor = self._anchor(server)
        if anchor is None:  # pragma: no cover - _select_servers keeps only servers with an anchor
            raise AnchorNotFoundError(f"no location for {self.settings.before!r}", server.file, server.line)
        self._refuse_if_nothing_is_proxied(server, anchor)
        proxy_pass, form, why = self._choose_form(server, anchor)
        outcome.action, outcome.form = "inserted", form
        outcome.reasons.append(why)
        head = ["^~", self.ws.prefix] if form == "prefix" else list(self.ws.regex_args())
        outcome.location = " ".join(["location", *head])
        body = self._new_body(server, anchor, proxy_pass, outcome)
        target = self._insertion_point(server, anchor, form)
        text = self.layout.location_block(target, render_block_head("location", head), body, MARKER)
        outcome.reasons.append(f"inserted before {target.describe()} at {target.where}")
        return [Edit(self.path, *self.layout.insertion_range(target), text, why="insert the WebSocket location")]

    def _choose_form(self, server: Server, anchor: Directive) -> Tuple[str, str, str]:
        """(proxy_pass, 'regex' or 'prefix', why) for a new location."""
        mode = self.settings.match
        regex_pass, prefix_pass, pass_note = self._proxy_pass_forms(server, anchor)
        regex_reason = self._regex_cannot_win(server, anchor) or pass_note
        if mode == "prefix" or (mode == "auto" and regex_reason):
            needed = regex_reason or "match=prefix"
            if self.ws.prefix is None:
                raise CannotWinError(
                    f"a ^~ prefix location is needed ({needed}) but the location regex {self.ws.regex!r} "
                    "is not a plain prefix",
                    anchor.file,
                    anchor.line,
                    "Use a location such as ^/api/mqtt/ws/ whose regex is ^ followed by a literal path.",
                )
            if prefix_pass is None:
                raise CannotWinError(
                    f"a ^~ prefix location is needed ({needed}) but no proxy_pass for {self.ws.prefix} can be "
                    f"derived from {anchor.describe()}: its proxy_pass has a URI part and {self.ws.prefix} "
                    "is not under its path",
                    anchor.file,
                    anchor.line,
                    "Set proxy_pass to the WebSocket backend.",
                )
            why = "match=prefix" if mode == "prefix" else f"a regex location cannot win here: {regex_reason}"
            return prefix_pass, "prefix", f"^~ prefix form: {why}"
        if regex_reason:
            raise CannotWinError(
                f"a regex WebSocket location cannot win: {regex_reason}",
                anchor.file,
                anchor.line,
                "Use match=auto or match=prefix for the ^~ form.",
            )
        return regex_pass or "", "regex", "regex form: placed ahead of the anchor and every regex that matches"

    def _regex_cannot_win(self, server: Server, anchor: Directive) -> Optional[str]:
        """Why a regex at the anchor's level would never be checked for the sample URI (None: it would)."""
        nodes = tree(self.config, server)
        level = _level_nodes(nodes, anchor)
        static = [n for n in level if n.modifier in ("", "^~") and self.ws.sample_uri.startswith(n.path)]
        exact = [n for n in level if n.modifier == "=" and n.path == self.ws.sample_uri]
        if exact:
            return f"{exact[0].describe()} is an exact match for the WebSocket path"
        if static:
            longest = max(static, key=lambda n: len(n.path))
            if longest.modifier == "^~":
                return f"{longest.describe()} is the longest prefix and ^~ stops the regex search"
        return None

    def _proxy_pass_forms(
        self, server: Server, anchor: Directive
    ) -> Tuple[Optional[str], Optional[str], Optional[str]]:
        """proxy_pass for the regex form (None if impossible), for the prefix form, and why not regex."""
        if self.settings.proxy_pass:
            base, uri = split_proxy_pass(self.settings.proxy_pass)
            prefix_pass = self.settings.proxy_pass
            if uri is None or uri == self.ws.prefix:
                return base, prefix_pass, None
            return None, prefix_pass, f"proxy_pass {self.settings.proxy_pass} has a URI part"
        source = self._proxy_source(server, anchor)
        passes = [d for d in self.config.level(source) if d.name == "proxy_pass"] if source is not None else []
        if not passes or not passes[0].args:
            raise AnchorNotFoundError(
                f"{anchor.describe()} has no proxy_pass to copy{self._content_handler_note(anchor)}",
                anchor.file,
                anchor.line,
                "Set proxy_pass to the WebSocket backend.",
            )
        value = passes[0].args[0]
        if "$" in value:
            return value, None, None
        base, uri = split_proxy_pass(value)
        modifier, anchor_path = location_match(anchor)
        if uri is None:
            return value, value, None
        prefix_pass = None
        if self.ws.prefix is not None and modifier in ("", "^~") and self.ws.prefix.startswith(anchor_path):
            prefix_pass = base + uri + self.ws.prefix[len(anchor_path) :]
        if modifier in ("", "^~") and uri == anchor_path:
            return base, prefix_pass, None
        return (
            None,
            prefix_pass,
            (f"the anchor's proxy_pass {value} has a URI part that a regex location cannot carry"),
        )

    def _new_body(self, server: Server, anchor: Directive, proxy_pass: str, outcome: ServerOutcome) -> List[bytes]:
        source = self._proxy_source(server, anchor) or anchor
        carry = self._carry(anchor, source)
        outcome.carried, outcome.left_out = carry.carried, carry.left_out
        for directive in carry.unknown:
            self.warnings.append(
                f"carried `{directive.describe()}` ({directive.where}) into the WebSocket location: the module does "
                "not know this directive, and it could be access control; check the handshake"
            )
        level = carry.level
        lines = [as_bytes(render_directive("proxy_pass", [proxy_pass]))]
        lines += carry.lines
        if not any(d.name == "proxy_set_header" for d in level):
            chain = enclosing_chain(self.config, source, server)[:-1]
            inherited = [
                d
                for d in effective(self.config, chain, "proxy_set_header")
                if directive_key(d)[1] not in self._own_header_names()
            ]
            lines += [self.file_bytes(d) for d in inherited]
        for wanted in self._desired():
            present = [d for d in level if directive_key(d) == wanted.key]
            if not present:
                lines.append(as_bytes(wanted.text))
            elif not _accepts(present[0], wanted):
                raise self._included_conflict(present[0], wanted, anchor)
        return lines

    def _included_conflict(self, found: Directive, wanted: _Desired, anchor: Directive) -> CannotWinError:
        """An included file sets what the WebSocket location must set otherwise: where, both values, the fix."""
        include = next(
            (d for d in anchor.block or () if d.name == "include" and found in list(self.config.expand([d]))),
            None,
        )
        via = f" (brought by `{include.describe()}` at {include.where})" if include is not None else ""
        value = found.args[-1] if found.args else ""
        fixes = [f"set {wanted.option} to {value}" if wanted.option else f"change it to `{wanted.text}` there"]
        fixes.append(f"move `{include.describe()}` out of {anchor.describe()}" if include else "change that file")
        return CannotWinError(
            f"`{found.describe()}` from an included file{via} conflicts with `{wanted.text}` that the WebSocket "
            f"location needs: nginx refuses the same setting twice in one location",
            found.file,
            found.line,
            "Either " + ", or ".join(fixes) + ".",
        )

    def _carry(self, anchor: Directive, source: Directive) -> Carry:
        conflict = self._conflict if self.settings.include_conflicts == "inline" else None
        return CarryPlanner(self.config, self._is_ours, bool(self.settings.proxy_pass), conflict).run(anchor, source)

    def _conflict(self, directive: Directive) -> str:
        """Why ``directive`` (from an include) cannot stay in the WebSocket location ('' when it can)."""
        for wanted in self._desired():
            if directive_key(directive) == wanted.key and not _accepts(directive, wanted):
                option = f" ({wanted.option})" if wanted.option else ""
                return f"conflicts with `{wanted.text}`{option}; left out as include_conflicts=inline asks"
        return ""

    # -- where the anchor's requests are proxied --------------------------------------------------

    def _proxy_source(self, server: Server, anchor: Directive) -> Optional[Directive]:
        """The location whose proxy_pass serves the anchor's requests: the anchor, or the named location it
        hands them to (``try_files ... @app``, ``error_page 404 = @app``); None when nothing proxies them."""
        level = self.config.level(anchor)
        has_pass = any(d.name == "proxy_pass" for d in level)
        handoffs = sorted(
            (d for d in level if named_location_target(d)), key=lambda d: 0 if d.name == "try_files" else 1
        )
        if has_pass and not any(d.name == "try_files" for d in handoffs):
            return anchor
        for handoff in handoffs:
            named = self._named_location(server, named_location_target(handoff))
            if named is not None and any(d.name == "proxy_pass" for d in self.config.level(named)):
                return named
        return anchor if has_pass else None

    def _named_location(self, server: Server, name: str) -> Optional[Directive]:
        for node in _all_nodes(tree(self.config, server)):
            if node.directive is not None and location_match(node.directive) == ("@", name):
                return node.directive
        return None

    def _refuse_if_nothing_is_proxied(self, server: Server, anchor: Directive) -> None:
        """An anchor that only returns or redirects proxies nothing: a WebSocket location beside it would open
        a path the site does not serve (the HTTP server of an HTTP→HTTPS redirect, a closed API)."""
        level = self.config.level(anchor)
        ends = [d for d in level if d.name == "return"]
        if not ends and self._proxy_source(server, anchor) is None:
            ends = [d for d in level if d.name == "rewrite" and d.args[-1:] in (["redirect"], ["permanent"], ["last"])]
        if not ends:
            return
        end = ends[0]
        how = "answers every request itself" if end.name == "return" else "sends every request elsewhere"
        raise AnchorNotFoundError(
            f"{anchor.describe()} proxies nothing: `{end.describe()}` ({end.where}) {how}, so there is no backend "
            "for a WebSocket and a WebSocket location there would open a path the site does not serve; "
            "nothing was changed",
            anchor.file,
            anchor.line,
            "Set before to the location that proxies your API (for an HTTP to HTTPS redirect, that of the HTTPS "
            "server, chosen with server_name).",
        )

    def _content_handler_note(self, anchor: Directive) -> str:
        """Which other content handler answers the anchor's requests (its settings, fastcgi_param..., are not)."""
        handlers = [
            d
            for d in self.config.level(anchor)
            if family_of(d).name.startswith("other content handlers")
            and (d.name in family_of(d).names or d.name.startswith("content_by_lua"))
        ]
        if not handlers:
            return ""
        return f" (its requests go to `{handlers[0].describe()}` at {handlers[0].where}, not to a proxy)"

    def _insertion_point(self, server: Server, anchor: Directive, form: str) -> Directive:
        """The statement (in this file) the new location goes in front of."""
        container = anchor.parent
        raw_children = container.block if container is not None and container.block is not None else []
        competitors = {id(anchor)}
        if form == "regex":
            for node in _level_nodes(tree(self.config, server), anchor):
                if node.is_regex and node.directive is not None and self._matches_sample(node):
                    competitors.add(id(node.directive))
        for child in raw_children:
            covered = [child] if child.name != "include" else list(self.config.expand([child]))
            if any(id(d) in competitors for d in covered):
                return self._in_edited_file(server, child)
        return self._in_edited_file(server, anchor)

    def _in_edited_file(self, server: Server, statement: Directive) -> Directive:
        """``statement`` when it is in the edited file; else the ``include`` of the server block that brings it
        in (an anchor in a fragment the server includes, as SWAG's ``*.subfolder.conf``): the new location goes
        in front of that include, so it also comes before every regex of the fragment."""
        if statement.file == self.path:
            return statement
        for child in server.directive.block or []:
            if child.name == "include" and any(
                found is statement for found in walk_directives(self.config.expand([child]))
            ):
                return child
        return statement

    def _matches_sample(self, node: LocationNode) -> bool:
        result = route([LocationNode(node.modifier, node.path, None)], self.ws.sample_uri)
        return result.location is not None or not result.known

    # -- converge ------------------------------------------------------------------------------

    def _plan_converge(self, server: Server, existing: Directive, outcome: ServerOutcome) -> List[Edit]:
        outcome.location = existing.describe()
        edits: List[Edit] = []
        level = self.config.level(existing)
        if not any(d.name == "proxy_pass" for d in level):
            anchor = self._anchor(server)
            if anchor is None:
                raise AnchorNotFoundError(
                    f"{existing.describe()} has no proxy_pass and there is no anchor to copy it from",
                    existing.file,
                    existing.line,
                    "Set proxy_pass.",
                )
            regex_pass, prefix_pass, _why_not_regex = self._proxy_pass_forms(server, anchor)
            chosen = prefix_pass if location_match(existing)[0] in ("", "^~") else regex_pass
            if chosen is None:
                raise CannotWinError(
                    "cannot derive a proxy_pass for the existing WebSocket location",
                    existing.file,
                    existing.line,
                    "Set proxy_pass.",
                )
            edits.append(self._add(existing, as_bytes(render_directive("proxy_pass", [chosen]))))
        additions: List[bytes] = []
        for wanted in self._desired():
            present = [d for d in level if directive_key(d) == wanted.key]
            if not present:
                additions.append(as_bytes(wanted.text))
            elif not _accepts(present[0], wanted):
                edits.append(self._replace(present[0], wanted.text))
        if not any(d.name == "proxy_set_header" for d in level) or additions:
            additions += self._missing_inherited(server, existing, level)
        if additions:
            edits.append(self._add(existing, *additions))
        edits += self._make_it_win(server, existing)
        if edits:
            outcome.action = "converged"
            outcome.reasons.append(f"converged {existing.describe()} at {existing.where} in place")
        else:
            outcome.reasons.append(f"{existing.describe()} at {existing.where} already has everything")
        return edits

    def _missing_inherited(self, server: Server, existing: Directive, level: Sequence[Directive]) -> List[bytes]:
        """Headers the location would lose by declaring its own: the parent's, then the anchor's."""
        chain = enclosing_chain(self.config, existing, server)[:-1]
        sources = list(effective(self.config, chain, "proxy_set_header"))
        anchor = self._anchor(server)
        if anchor is not None and anchor is not existing:
            anchor_chain = enclosing_chain(self.config, anchor, server)
            sources += effective(self.config, anchor_chain, "proxy_set_header")
        have = {directive_key(d) for d in level}
        missing: List[bytes] = []
        for directive in sources:
            key = directive_key(directive)
            if key not in have and key[1] not in self._own_header_names():
                have.add(key)
                missing.append(self.file_bytes(directive))
        return missing

    def _make_it_win(self, server: Server, existing: Directive) -> List[Edit]:
        result = route(tree(self.config, server), self.ws.sample_uri)
        if result.location is not None and result.location.directive is existing:
            return []
        modifier, path = location_match(existing)
        if modifier == "" and self.settings.match in ("auto", "prefix"):
            start, end = existing.arg_spans[0][0], existing.arg_spans[-1][1]
            return [Edit(existing.file, start, end, as_bytes(f"^~ {path}"), why="make the prefix win")]
        taken = result.location.describe() if result.location else "no location"
        raise CannotWinError(
            f"{existing.describe()} exists but nginx sends {self.ws.sample_uri} to {taken} ({result.explain()})",
            existing.file,
            existing.line,
            "Move the WebSocket location above that regex, or use a ^~ prefix location.",
        )

    # -- absent --------------------------------------------------------------------------------

    def _plan_absent(self, server: Server, outcome: ServerOutcome) -> List[Edit]:
        edits = []
        for node in _all_nodes(tree(self.config, server)):
            directive = node.directive
            if directive is None or directive.file != self.path or not self._is_websocket_form(directive):
                continue
            span = self.layout.managed_block_range(directive, MARKER)
            if span is None:
                self.warnings.append(
                    f"{directive.describe()} at {directive.where} was not added by this "
                    "module (no marker comment); left in place"
                )
                continue
            edits.append(Edit(self.path, span[0], span[1], b"", why="remove the managed WebSocket location"))
            outcome.action = "removed"
            outcome.location = directive.describe()
            outcome.reasons.append(f"removed {directive.describe()} at {directive.where}")
        return edits

    # -- directive helpers ---------------------------------------------------------------------

    def _desired(self) -> List[_Desired]:
        s = self.settings
        connection = f"${self.map_variable}" if self.map_variable else "upgrade"
        connection_text = (
            render_directive("proxy_set_header", ["Connection", connection])
            if self.map_variable
            else 'proxy_set_header Connection "upgrade";'
        )
        upgrade_variables = {m.args[1].lstrip("$") for m in self.config.upgrade_maps()}
        accept_connection = tuple(f"${v}" for v in self.config.all_map_variables() if v in upgrade_variables)
        if not self.map_variable:
            accept_connection += ("upgrade",)
        wanted = [
            _Desired(("proxy_http_version",), render_directive("proxy_http_version", ["1.1"]), ("1.1",)),
            _Desired(
                ("proxy_set_header", "upgrade"),
                render_directive("proxy_set_header", ["Upgrade", "$http_upgrade"]),
                ("$http_upgrade",),
            ),
            _Desired(("proxy_set_header", "connection"), connection_text, accept_connection),
        ]
        for name, value in s.headers.items():
            wanted.append(
                _Desired(
                    ("proxy_set_header", name.lower()),
                    render_directive("proxy_set_header", [name, str(value)]),
                    (str(value),),
                    option=f"headers.{name}",
                )
            )
        wanted.append(
            _Desired(
                ("proxy_read_timeout",),
                render_directive("proxy_read_timeout", [s.read_timeout]),
                (s.read_timeout,),
                option="read_timeout",
                is_time=True,
            )
        )
        wanted.append(
            _Desired(
                ("proxy_send_timeout",),
                render_directive("proxy_send_timeout", [s.send_timeout]),
                (s.send_timeout,),
                option="send_timeout",
                is_time=True,
            )
        )
        return wanted

    def _own_header_names(self) -> Tuple[str, ...]:
        return _UPGRADE_HEADERS + tuple(name.lower() for name in self.settings.headers)

    def _is_ours(self, directive: Directive) -> bool:
        if directive.name in _OWN_SETTINGS:
            return True
        return directive.name == "proxy_set_header" and directive_key(directive)[1] in self._own_header_names()

    def file_bytes(self, directive: Directive) -> bytes:
        return self.config.files[directive.file].data[directive.start : directive.end]

    def _replace(self, directive: Directive, text: str) -> Edit:
        if directive.file != self.path:
            raise CannotWinError(
                f"{directive.describe()} must become {text}, but it is in an included file",
                directive.file,
                directive.line,
                "Change it in that file.",
            )
        return Edit(self.path, directive.start, directive.end, as_bytes(text), why=f"set {text}")

    def _add(self, location: Directive, *lines: bytes) -> Edit:
        start, text = self.layout.append_to_block(location, list(lines))
        return Edit(self.path, start, start, text, why="add missing directives")


def _accepts(directive: Directive, wanted: _Desired) -> bool:
    value = directive.args[-1] if directive.args else ""
    if wanted.is_time:
        return any(_same_time(value, accepted) for accepted in wanted.accept)
    accepted = {a.lower() for a in wanted.accept}
    return value.lower() in accepted


def _same_time(value: str, wanted: str) -> bool:
    try:
        return parse_time(value) == parse_time(wanted)
    except TimeValueError:
        return value == wanted


def split_proxy_pass(value: str) -> Tuple[str, Optional[str]]:
    """``http://host:port/uri`` → (``http://host:port``, ``/uri`` or None)."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value, None
    if rest.startswith("unix:"):
        socket_end = rest.find(":", len("unix:"))
        if socket_end < 0:
            return value, None
        return f"{scheme}://{rest[:socket_end]}", rest[socket_end + 1 :] or None
    slash = rest.find("/")
    if slash < 0:
        return value, None
    return f"{scheme}://{rest[:slash]}", rest[slash:]


def _all_nodes(nodes: Sequence[LocationNode]):
    for node in nodes:
        yield node
        yield from _all_nodes(node.children)


def _level_nodes(nodes: Sequence[LocationNode], anchor: Directive) -> List[LocationNode]:
    """The sibling list that holds ``anchor``."""
    if any(n.directive is anchor for n in nodes):
        return list(nodes)
    for node in nodes:
        found = _level_nodes(node.children, anchor)
        if found:
            return found
    return []
