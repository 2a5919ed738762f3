# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdicts of the layered diagnosis: one check per layer (nginx, backend, routing, handshake,
timeout), their fix texts, and the verdict that stops at the first broken layer. PRIVATE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Directive,
    location_match,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import (
    DEFAULT_HTTP_VERSION,
    RouteInfo,
    WebSocketReport,
    location_text,
    named,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.observations import Probe, Process
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import redirect_fix
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import seconds_text
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.websocket import (
    NOTHING,
    breaking_phrases,
    fix_lines,
    requirement,
)

BODY_SHOWN = 200
OK, BROKEN, SKIPPED, UNKNOWN = "ok", "broken", "skipped", "unknown"


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
