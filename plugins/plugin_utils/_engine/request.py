# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the operator asked for, validated: the WebSocket location, its forms, and a sample URI. PRIVATE."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.render import (
    check_header_name,
    check_location_regex,
    check_plain_value,
    check_proxy_pass,
    check_time,
    check_variable,
    quote_arg,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import (
    RegexUnknown,
    compile_location_regex,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import parse_listen_selector

MATCH_MODES = ("auto", "regex", "prefix")
INCLUDE_CONFLICTS = ("refuse", "inline")
SAMPLE_TAIL = "agaii-probe/session-874q8t"
_REGEX_META = set(".^$*+?()[]{}|\\")
_QUANTIFIERS = set("*+?{")


@dataclass(frozen=True)
class Settings:
    """The desired WebSocket location (the options of ws_location, already typed)."""

    location: str = "^/api/mqtt/ws/"
    before: str = "/api/"
    proxy_pass: Optional[str] = None
    read_timeout: str = "3600s"
    send_timeout: str = "3600s"
    headers: Dict[str, str] = field(default_factory=dict)
    map_variable: Optional[str] = None
    match: str = "auto"
    server_name: Optional[str] = None
    state: str = "present"
    include_conflicts: str = "refuse"
    listen: Optional[str] = None


@dataclass(frozen=True)
class WebSocketPath:
    """The WebSocket location in both forms it can take, and the URI used to check routing."""

    modifier: str
    regex: str
    prefix: Optional[str]
    sample_uri: str

    @property
    def regex_match(self) -> Tuple[str, str]:
        return self.modifier, self.regex

    def regex_args(self) -> Tuple[str, str]:
        return self.modifier, self.regex


def validate(settings: Settings) -> Settings:
    """Check every option; raise InvalidOptionError with a sentence that says what is wrong."""
    if settings.match not in MATCH_MODES:
        raise InvalidOptionError(f"match must be one of {', '.join(MATCH_MODES)}, got {settings.match!r}")
    if settings.state not in ("present", "absent"):
        raise InvalidOptionError(f"state must be present or absent, got {settings.state!r}")
    if settings.include_conflicts not in INCLUDE_CONFLICTS:
        raise InvalidOptionError(
            f"include_conflicts must be one of {', '.join(INCLUDE_CONFLICTS)}, got {settings.include_conflicts!r}"
        )
    check_location_regex("location", settings.location)
    check_before(settings.before)
    if settings.proxy_pass is not None:
        check_proxy_pass("proxy_pass", settings.proxy_pass)
    check_time("read_timeout", settings.read_timeout)
    check_time("send_timeout", settings.send_timeout)
    if settings.map_variable is not None:
        check_variable("map_variable", settings.map_variable)
    if settings.server_name is not None:
        check_plain_value("server_name", settings.server_name)
    if settings.listen is not None:
        parse_listen_selector(settings.listen)
    for name, value in settings.headers.items():
        check_header_name("headers", name)
        check_plain_value(f"headers[{name}]", str(value))
        quote_arg(str(value))
    return settings


def check_settings(settings: Settings) -> WebSocketPath:
    """Validate every option and return the WebSocket path they describe (raises InvalidOptionError)."""
    return parse_location(validate(settings).location)


_BEFORE = re.compile(r"^(?:(?:=|\^~|~\*?)\s+)?[^\s;{}\"'#]+$")


def check_before(value: str) -> str:
    check_plain_value("before", value)
    if not _BEFORE.match(value.strip()):
        raise InvalidOptionError(
            f"before must be a location path such as /api/, optionally with its modifier (^~ /api/), got {value!r}"
        )
    return value


def parse_location(value: str) -> WebSocketPath:
    """``^/api/mqtt/ws/``, ``~ ^/ws/`` or ``~* ^/ws/``: the regex, its modifier and its literal prefix."""
    modifier, regex = "~", value.strip()
    for candidate in ("~* ", "~ "):
        if regex.startswith(candidate):
            modifier, regex = candidate.strip(), regex[len(candidate) :].strip()
            break
    try:
        compiled = compile_location_regex(regex, modifier == "~*")
    except RegexUnknown as exc:
        raise InvalidOptionError(
            f"location: {exc}", hint="Use a regex without PCRE-only syntax so routing can be checked."
        ) from exc
    prefix, whole = literal_prefix(regex)
    sample = _sample_uri(prefix, compiled)
    if sample is None:
        raise InvalidOptionError(
            f"location {regex!r}: cannot derive a WebSocket URI to check routing with",
            hint="Start the regex with ^ and a literal path, such as ^/api/mqtt/ws/.",
        )
    exact_prefix = prefix if whole and prefix.startswith("/") and modifier == "~" else None
    return WebSocketPath(modifier, regex, exact_prefix, sample)


def literal_prefix(regex: str) -> Tuple[str, bool]:
    """The literal text an anchored regex requires first, and whether that is the whole regex."""
    if not regex.startswith("^"):
        return "", False
    out, index = [], 1
    while index < len(regex):
        char = regex[index]
        step, literal = 1, char
        if char == "\\" and index + 1 < len(regex) and not regex[index + 1].isalnum():
            step, literal = 2, regex[index + 1]
        elif char in _REGEX_META:
            break
        following = regex[index + step : index + step + 1]
        if following and following in _QUANTIFIERS:
            return "".join(out), False
        out.append(literal)
        index += step
    return "".join(out), index >= len(regex)


def _sample_uri(prefix: str, compiled: object) -> Optional[str]:
    for candidate in (prefix + SAMPLE_TAIL, prefix):
        if candidate.startswith("/") and re.search(compiled.pattern, candidate.encode()):  # type: ignore[attr-defined]
            return candidate
    return None


def parse_before(value: str) -> Tuple[Optional[str], str]:
    """``/api/`` (any modifier) or ``^~ /api/``, ``~ ^/api/``...: (modifier or None, path)."""
    parts = value.split(None, 1)
    if len(parts) == 2 and parts[0] in ("=", "^~", "~", "~*"):
        return parts[0], parts[1].strip()
    return None, value.strip()
