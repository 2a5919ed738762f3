# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a new WebSocket location carries over from the anchor location: the one table. PRIVATE.

Each directive of the anchor belongs to one family. *Carried* families are what a proxied request needs
(proxy settings, headers, variables, logging, limits of the request); *access control* is always carried,
because dropping it opens the WebSocket endpoint to clients the site keeps out; *never carried* families end
or divert the request, or produce content, before ``proxy_pass`` could act. docs/how-it-works.md shows
this table (``families_markdown``; a unit test keeps the two the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, Directive
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import UnsupportedConfigError

CARRIED = "carried"
ACCESS = "always carried"
NEVER = "never carried"


@dataclass(frozen=True)
class Family:
    """Directives nginx handles alike, what the WebSocket location does with them, and why."""

    name: str
    policy: str
    why: str
    names: FrozenSet[str] = frozenset()
    prefixes: Tuple[str, ...] = ()

    @property
    def carried(self) -> bool:
        return self.policy != NEVER

    def listing(self) -> str:
        words = sorted(self.names) + [f"{prefix}*" for prefix in self.prefixes]
        return ", ".join(f"`{word}`" for word in words)


def _family(name: str, policy: str, why: str, names: str = "", prefixes: str = "") -> Family:
    return Family(name, policy, why, frozenset(names.split()), tuple(prefixes.split()))


FAMILIES: Tuple[Family, ...] = (
    _family(
        "access by address",
        ACCESS,
        "who may connect; without it the WebSocket path would be open to every address",
        "allow deny set_real_ip_from real_ip_header real_ip_recursive",
    ),
    _family(
        "authentication and authorization",
        ACCESS,
        "the site's login or token check; the WebSocket endpoint is as private as the API",
        "satisfy internal limit_except",
        "auth_ access_by_lua secure_link modsecurity",
    ),
    _family(
        "request and connection limits",
        ACCESS,
        "rate and connection limits protect the backend; a WebSocket is a connection like any other",
        "",
        "limit_req limit_conn",
    ),
    _family(
        "proxy settings",
        CARRIED,
        "how nginx talks to the backend (headers, buffering, timeouts, TLS to the backend, cookies); the "
        "WebSocket goes to the same backend. proxy_pass, proxy_http_version, the timeouts and the Upgrade and "
        "Connection headers are the module's own and replace the anchor's",
        "",
        "proxy_",
    ),
    _family(
        "response headers",
        CARRIED,
        "headers the site adds to every answer (HSTS, CORS, security headers)",
        "add_header add_trailer expires more_set_headers more_clear_headers more_set_input_headers "
        "more_clear_input_headers",
    ),
    _family(
        "variables and name resolution",
        CARRIED,
        "a proxy_pass with variables needs the variables and the resolver",
        "set resolver resolver_timeout",
        "set_by_lua",
    ),
    _family(
        "request body and connection",
        CARRIED,
        "limits and timeouts of the client connection the WebSocket uses",
        "client_max_body_size client_body_buffer_size client_body_timeout client_body_in_file_only "
        "client_body_in_single_buffer client_body_temp_path keepalive_timeout keepalive_requests send_timeout "
        "lingering_close lingering_time lingering_timeout limit_rate limit_rate_after tcp_nodelay "
        "postpone_output chunked_transfer_encoding",
    ),
    _family(
        "logging",
        CARRIED,
        "the site's logs keep recording the WebSocket requests",
        "access_log error_log log_not_found log_subrequest open_log_file_cache rewrite_log",
        "log_by_lua",
    ),
    _family(
        "response filters",
        CARRIED,
        "they change answers, never where a request goes; a 101 passes through them unchanged",
        "gzip charset source_charset override_charset",
        "gzip_ sub_filter header_filter_by_lua body_filter_by_lua",
    ),
    _family(
        "error pages to a URI",
        CARRIED,
        "nginx's own errors (502 when the backend is down) keep the site's pages; "
        "error_page to a named location is in 'hands the request on'",
        "recursive_error_pages",
    ),
    _family(
        "ends or diverts the request",
        NEVER,
        "they answer or re-route the request before proxy_pass acts, so the WebSocket would never reach the backend",
        "return rewrite try_files break",
        "rewrite_by_lua",
    ),
    _family(
        "breaks the handshake",
        NEVER,
        "the backend must get the client's GET with its headers (Sec-WebSocket-Key, Sec-WebSocket-Version, "
        "Origin, cookies); `proxy_pass_request_headers off` drops them (400 from the backend, seen on Plex's "
        "configuration) and `proxy_method` changes the GET",
        "proxy_pass_request_headers proxy_method",
    ),
    _family(
        "hands the request on",
        NEVER,
        "`error_page ... @name` and `try_files ... @name` pass the request to a named location; the "
        "WebSocket location takes its proxy settings from that named location instead",
        "error_page",
    ),
    _family(
        "other content handlers and their settings",
        NEVER,
        "another handler would answer instead of proxy_pass (a location has one content handler)",
        "fastcgi_pass uwsgi_pass grpc_pass scgi_pass memcached_pass js_content perl stub_status empty_gif mp4 "
        "flv hls random_index dav_methods dav_access create_full_put_path passenger_enabled",
        "fastcgi_ uwsgi_ grpc_ scgi_ memcached_ content_by_lua echo passenger_ autoindex",
    ),
    _family(
        "static files",
        NEVER,
        "the WebSocket location serves no file: root, alias and index only matter to a file handler",
        "root alias index types default_type disable_symlinks",
        "open_file_cache",
    ),
    _family(
        "nested locations and subrequests",
        NEVER,
        "a nested location would take part of the WebSocket path; a mirror would open a second WebSocket",
        "location mirror mirror_request_body",
    ),
)

# Access control nginx takes once per location ("... directive is duplicate"): when the anchor and the named
# location it hands on to set one differently, one location cannot keep both checks.
_ONCE_PER_LOCATION = frozenset(
    [
        "auth_basic",
        "auth_basic_user_file",
        "auth_request",
        "satisfy",
        "limit_except",
        "limit_req_status",
        "limit_conn_status",
    ]
)

UNKNOWN = Family(
    "unknown (any other directive)",
    CARRIED,
    "carried, with a warning naming it: an unknown directive may be access control from a third-party "
    "module, and dropping that would open the endpoint; one that stops the WebSocket shows in the handshake check",
)


def family_of(directive: Directive) -> Family:
    """The family of one directive (``if`` and ``include`` are decided by the planner, from their contents)."""
    if directive.name == "error_page" and not (directive.args and directive.args[-1].startswith("@")):
        return _by_name("error pages to a URI")
    exact = [family for family in FAMILIES if directive.name in family.names]
    if exact:
        return exact[0]
    by_prefix = [
        (len(prefix), family) for family in FAMILIES for prefix in family.prefixes if directive.name.startswith(prefix)
    ]
    if by_prefix:
        return max(by_prefix, key=lambda pair: pair[0])[1]
    return UNKNOWN


def _by_name(name: str) -> Family:
    return next(family for family in FAMILIES if family.name == name)


def refuses_only(directive: Directive) -> bool:
    """``return 403;`` and the like: a refusal, which an ``if`` block may carry as a conditional check."""
    if directive.name != "return" or not directive.args:
        return False
    code = directive.args[0]
    return code.isdigit() and 400 <= int(code) <= 599


def named_location_target(directive: Directive) -> str:
    """The ``@name`` a ``try_files`` or ``error_page`` hands the request to ('' when none)."""
    if directive.name in ("try_files", "error_page") and directive.args and directive.args[-1].startswith("@"):
        return directive.args[-1]
    return ""


# Rows of the table decided from a block's or a file's contents, and their listing where it is not the names.
CONDITIONS = "conditions"
INCLUDES = "includes"
_CONTENT_ROWS = (
    (
        CONDITIONS,
        "`if`",
        f"{CARRIED} when all it holds is carried or refuses",
        "`if ($ssl_client_verify != SUCCESS) { return 403; }` is a client-certificate check (access control); "
        "an `if` that redirects, rewrites or answers 2xx/3xx ends the request and is left out",
    ),
    (
        INCLUDES,
        "`include`",
        f"{CARRIED} when all it brings is carried",
        "an include that brings a never-carried directive (`include fastcgi_params;`, a snippet with "
        "`try_files`) is left out, and what it brings that may be access control (the always-carried families, "
        "refusing `if` blocks, unknown directives) is copied in line by line",
    ),
)
_LISTINGS = {
    "error pages to a URI": "`error_page` to a URI, `recursive_error_pages`",
    "hands the request on": "`error_page` to `@name` (and `try_files ... @name`, above)",
    UNKNOWN.name: "anything not listed here",
}


def families_markdown() -> str:
    """The table of docs/how-it-works.md, from ``FAMILIES``."""
    rows = ["| Family | Directives | The WebSocket location | Why |", "|---|---|---|---|"]
    for family in (*FAMILIES, UNKNOWN):
        listing = _LISTINGS.get(family.name) or family.listing()
        rows.append(f"| {family.name} | {listing} | {family.policy} | {family.why} |")
    rows += [f"| {name} | {listing} | {policy} | {why} |" for name, listing, policy, why in _CONTENT_ROWS]
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------------- the decision


@dataclass
class Carry:
    """What the new location takes from the anchor (and from the named location the anchor hands on to)."""

    lines: List[bytes] = field(default_factory=list)
    level: List[Directive] = field(default_factory=list)  # the carried directives, includes expanded
    carried: List[Dict[str, object]] = field(default_factory=list)
    left_out: List[Dict[str, object]] = field(default_factory=list)
    unknown: List[Directive] = field(default_factory=list)


def entry(directive: Directive, family: str, why: str = "") -> Dict[str, object]:
    item: Dict[str, object] = {
        "directive": directive.describe(),
        "file": directive.file,
        "line": directive.line,
        "family": family,
    }
    if why:
        item["why"] = why
    return item


class CarryPlanner:
    """Decide, directive by directive, what goes into the new location (see ``FAMILIES``)."""

    def __init__(
        self,
        config: Config,
        is_own: Callable[[Directive], bool],
        own_pass: bool,
        conflict: Optional[Callable[[Directive], str]] = None,
    ) -> None:
        """``is_own``: what the module sets itself; ``own_pass``: proxy_pass comes from the options;
        ``conflict``: given (include_conflicts=inline), why an included own setting cannot stay ('' if it can)."""
        self.config = config
        self.is_own = is_own
        self.own_pass = own_pass
        self.conflict = conflict
        self.result = Carry()
        self._seen: List[bytes] = []
        self._kept: List[Directive] = []

    def text(self, directive: Directive) -> bytes:
        return self.config.files[directive.file].data[directive.start : directive.end]

    def run(self, anchor: Directive, source: Optional[Directive]) -> Carry:
        """``source``: the named location the anchor hands its requests to (None: the anchor proxies itself)."""
        handed_on = source is not None and source is not anchor
        why_handed = f"the request is proxied in {source.describe()}; its settings are carried" if handed_on else ""
        for directive in anchor.block or ():
            self.consider(directive, access_only=handed_on, why_not=why_handed)
        if handed_on and source is not None:
            for directive in source.block or ():
                self.consider(directive, access_only=False, why_not="")
        return self.result

    def consider(self, directive: Directive, access_only: bool, why_not: str) -> None:
        if directive.name == "proxy_pass" and not self.own_pass and not access_only:
            self.result.carried.append(entry(directive, "proxy settings"))
        elif self.is_own(directive):
            self.leave_out(directive, "set by the module", "the WebSocket location sets its own (the module's options)")
        elif directive.name == "include":
            self._include(directive, access_only, why_not)
        elif directive.name == "if":
            self._condition(directive, access_only)
        else:
            family = family_of(directive)
            if family.policy == ACCESS or family is UNKNOWN or (family.carried and not access_only):
                self.carry(directive, family.name, [directive])
                if family is UNKNOWN:
                    self.result.unknown.append(directive)
            else:
                self.leave_out(directive, family.name, why_not if family.carried else family.why)

    def carry(self, directive: Directive, family: str, expanded: Sequence[Directive]) -> None:
        text = self.text(directive)
        if text in self._seen:  # the same line in the anchor and its named location
            return
        self._refuse_a_second(directive)
        self._seen.append(text)
        self._kept.append(directive)
        self.result.lines.append(text)
        self.result.level.extend(expanded)
        self.result.carried.append(entry(directive, family))

    def _refuse_a_second(self, directive: Directive) -> None:
        if directive.name not in _ONCE_PER_LOCATION:
            return
        first = next((d for d in self._kept if d.name == directive.name), None)
        if first is None:
            return
        raise UnsupportedConfigError(
            f"`{first.describe()}` ({first.where}) and `{directive.describe()}` ({directive.where}) both check "
            "requests on the way to the backend, and one WebSocket location can hold only one of them",
            directive.file,
            directive.line,
            "Make the two the same, or set proxy_pass and before to a location that proxies by itself.",
        )

    def leave_out(self, directive: Directive, family: str, why: str) -> None:
        self.result.left_out.append(entry(directive, family, why))

    def _include(self, include: Directive, access_only: bool, why_not: str) -> None:
        brought = list(self.config.expand([include]))
        clashes = [d for d in brought if self.conflict is not None and self.conflict(d)]
        if clashes:
            self._inline(include, brought, clashes, access_only)
            return
        blocking = [d for d in brought if not self._carried_alone(d, access_only)]
        if not blocking:
            self.carry(include, INCLUDES, brought)
            self.result.unknown.extend(d for d in brought if family_of(d) is UNKNOWN)
            return
        first = blocking[0]
        reason = why_not if access_only and family_of(first).carried else family_of(first).why
        self.leave_out(include, INCLUDES, f"it brings `{first.describe()}` ({first.where}): {reason}")
        for directive in brought:  # what may be access control stays, line by line
            if self._carried_alone(directive, access_only=True):
                self._carry_one(directive)

    def _inline(
        self, include: Directive, brought: List[Directive], clashes: List[Directive], access_only: bool
    ) -> None:
        """include_conflicts=inline: the include stays out; what it brings is copied in, but for the clashes."""
        conflict = self.conflict or (lambda _directive: "")
        first = clashes[0]
        self.leave_out(include, INCLUDES, f"it brings `{first.describe()}` ({first.where}): {conflict(first)}")
        for directive in brought:
            if directive in clashes:
                self.leave_out(directive, "set by the module", conflict(directive))
            elif self._carried_alone(directive, access_only):
                self._carry_one(directive)
            else:
                self.leave_out(directive, family_of(directive).name, family_of(directive).why)

    def _carry_one(self, directive: Directive) -> None:
        """One line an include brings, copied in on its own."""
        if directive.name == "if":
            self.carry(directive, CONDITIONS, list(self.config.expand(directive.block or ())))
            return
        self.carry(directive, family_of(directive).name, [directive])
        if family_of(directive) is UNKNOWN:
            self.result.unknown.append(directive)

    def _carried_alone(self, directive: Directive, access_only: bool) -> bool:
        if self.is_own(directive):  # from an include: the planner accepts its value or names the conflict
            return not access_only
        if directive.name == "if":
            return self._condition_carried(directive, access_only)
        family = family_of(directive)
        return family.policy == ACCESS or family is UNKNOWN or (family.carried and not access_only)

    def _condition(self, directive: Directive, access_only: bool) -> None:
        if self._condition_carried(directive, access_only):
            self.carry(directive, CONDITIONS, list(self.config.expand(directive.block or ())))
            return
        inside = [d for d in self.config.expand(directive.block or ()) if not self._inside_ok(d, access_only)]
        what = f"`{inside[0].describe()}` ({inside[0].where})" if inside else "nothing"
        self.leave_out(directive, CONDITIONS, f"it holds {what}, which ends, diverts or is not carried")

    def _condition_carried(self, directive: Directive, access_only: bool) -> bool:
        inside = list(self.config.expand(directive.block or ()))
        return bool(inside) and all(self._inside_ok(d, access_only) for d in inside)

    def _inside_ok(self, directive: Directive, access_only: bool) -> bool:
        return refuses_only(directive) or self._carried_alone(directive, access_only)
