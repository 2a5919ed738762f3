# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A model of how nginx chooses a location for a URI, with the reasons. PRIVATE to the collection.

It follows ``ngx_http_core_find_location``: the longest prefix, ``=`` and ``^~`` that stop the regex
search, regexes in file order, nested locations searched inside the chosen one, named locations never
matched. Regexes are run with Python's ``re`` only when the pattern uses nothing that PCRE reads
differently; otherwise the answer is "unknown", never a guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import (
    Directive,
    location_match,
)

# PCRE syntax that Python's re rejects or reads differently. Each entry: (pattern, what it is).
_PCRE_ONLY: Tuple[Tuple[str, str], ...] = (
    (r"\\[QEKGRXhHvVNpPgkCzZeoc]", "a PCRE-only escape"),
    (r"\\x\{", r"a \x{...} escape"),
    (r"\(\*", "a PCRE verb"),
    (r"\(\?(?:\||\(|R\)|[+-]?\d|&|P>|C|>)", "a PCRE-only group"),
    (r"\(\?<[A-Za-z_]", None),  # named group: translated below, not unknown
    (r"\{,", "a {,n} quantifier (PCRE2 versions disagree on it)"),
    (r"\(\?[a-zA-Z]*[JUXx]", "an inline option PCRE and Python read differently"),
)
_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")


class RegexUnknown(Exception):
    """The regex uses PCRE syntax that the model will not emulate."""


@dataclass(frozen=True)
class CompiledRegex:
    source: str
    caseless: bool
    pattern: re.Pattern

    def search(self, uri: bytes) -> bool:
        return self.pattern.search(uri) is not None


_REGEX_CACHE: Dict[Tuple[str, bool], object] = {}


def compile_location_regex(source: str, caseless: bool) -> CompiledRegex:
    """Compile an nginx location regex for the model, or raise RegexUnknown with the reason."""
    key = (source, caseless)
    cached = _REGEX_CACHE.get(key)
    if cached is None:
        cached = _compile(source, caseless)
        _REGEX_CACHE[key] = cached
    if isinstance(cached, CompiledRegex):
        return cached
    raise cached  # type: ignore[misc]  # a cached RegexUnknown


def _compile(source: str, caseless: bool) -> object:
    for pattern, what in _PCRE_ONLY:
        if what and re.search(pattern, _without_escaped_backslashes(source)):
            return RegexUnknown(f"the regex {source!r} uses {what}, which the model does not emulate")
    try:
        translated = _NAMED_GROUP.sub("(?P<", translate_posix_classes(source))
    except RegexUnknown as exc:
        return exc
    flags = re.IGNORECASE if caseless else 0
    try:
        compiled = re.compile(translated.encode("utf-8", "surrogateescape"), flags)
    except re.error as exc:
        return RegexUnknown(f"the regex {source!r} does not compile in Python ({exc})")
    return CompiledRegex(source, caseless, compiled)


# PCRE's POSIX classes (pcre2_compile.c, posix_names) as ASCII ranges: PCRE reads ``[[:alnum:]]`` as a class,
# Python's re as the characters "[:alnu" and a "]".
_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "ascii": "\\x00-\\x7f",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "\\x21-\\x7e",
    "lower": "a-z",
    "print": "\\x20-\\x7e",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\x0b\\f\\r",
    "upper": "A-Z",
    "word": "\\w",
    "xdigit": "0-9A-Fa-f",
}
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]*):\]")


def translate_posix_classes(source: str) -> str:
    """Rewrite ``[:name:]`` inside a bracket expression as the ASCII ranges PCRE gives it; RegexUnknown for
    a negated (``[:^name:]``) or unknown class, and for ``[.`` and ``[=``, which PCRE refuses."""
    out: List[str] = []
    position, in_class = 0, False
    while position < len(source):
        char = source[position]
        if char == "\\":
            out.append(source[position : position + 2])
            position += 2
            continue
        if not in_class and char == "[":
            in_class = True
            start = position + 1 + (source[position + 1 : position + 2] == "^")
            if source[start : start + 1] == "]":
                start += 1  # a "]" first in the class is a literal
            out.append(source[position:start])
            position = start
            continue
        if in_class and char == "[" and source[position + 1 : position + 2] in (":", ".", "="):
            found = _POSIX_CLASS.match(source, position)
            if found is None or found.group(1) or found.group(2) not in _POSIX_CLASSES:
                raise RegexUnknown(
                    f"the regex {source!r} uses a negated or unknown POSIX class, which the model does not emulate"
                )
            out.append(_POSIX_CLASSES[found.group(2)])
            position = found.end()
            continue
        if in_class and char == "]":
            in_class = False
        out.append(char)
        position += 1
    return "".join(out)


def _without_escaped_backslashes(source: str) -> str:
    return source.replace("\\\\", "")


@dataclass
class LocationNode:
    """A location as the router sees it."""

    modifier: str
    path: str
    directive: Optional[Directive]
    children: List[LocationNode] = field(default_factory=list)
    label: str = ""
    auto_redirect: bool = False

    @property
    def is_regex(self) -> bool:
        return self.modifier in ("~", "~*")

    @property
    def is_named(self) -> bool:
        return self.modifier == "@"

    def describe(self) -> str:
        text = f"location {self.modifier} {self.path}" if self.modifier else f"location {self.path}"
        if self.directive is not None:
            text += f" at {self.directive.where}"
        return text


@dataclass
class Route:
    """The answer: the chosen location (None: no location matched), the chain of reasons, and
    ``unknown`` with a reason when a regex the model cannot evaluate stood in the way."""

    location: Optional[LocationNode]
    reasons: List[str]
    unknown: Optional[str] = None
    redirect: Optional[str] = None  # the Location of nginx's automatic 301 (``location`` is the one that asks it)

    @property
    def known(self) -> bool:
        return self.unknown is None

    def explain(self) -> str:
        return "; ".join(self.reasons)


def build_tree(
    directives: Sequence[Directive], children_of: Callable[[Directive], List[Directive]]
) -> List[LocationNode]:
    """Turn ``location`` directives (and, through ``children_of``, their nested ones) into nodes."""
    nodes = []
    for directive in directives:
        if directive.name != "location" or directive.block is None:
            continue
        modifier, path = location_match(directive)
        node = LocationNode(modifier, path, directive, auto_redirect=_auto_redirects(modifier, path, directive))
        node.children = build_tree(children_of(directive), children_of)
        nodes.append(node)
    return nodes


# The content handlers that pass a request to a backend: ngx_http_proxy_pass and its kin in the fastcgi,
# uwsgi, scgi, memcached and grpc modules. Each also sets ``clcf->auto_redirect`` when the location's name
# ends with "/".
BACKEND_HANDLERS = ("proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "memcached_pass", "grpc_pass")


def _auto_redirects(modifier: str, path: str, directive: Directive) -> bool:
    if modifier not in ("", "^~", "=") or not path.endswith("/"):
        return False
    return any(child.name in BACKEND_HANDLERS for child in directive.block or ())


def route(locations: Sequence[LocationNode], uri: str) -> Route:
    """Which location nginx uses for ``uri`` (already normalised, as nginx matches it)."""
    result = Route(None, [])
    raw = uri.encode("utf-8", "surrogateescape")
    _find(locations, uri, raw, result)
    if result.location is None and result.unknown is None:
        result.reasons.append("no location matches; the server's own settings answer")
    return result


def _find(locations: Sequence[LocationNode], uri: str, raw: bytes, result: Route) -> str:
    """Port of ngx_http_core_find_location. Returns 'ok' (final), 'again' or 'declined'."""
    status, prefix = _find_static(locations, uri, result)
    noregex = False
    if status == "again" and prefix is not None:
        noregex = prefix.modifier == "^~"
        if prefix.children:
            status = _find(prefix.children, uri, raw, result)
    if status in ("ok", "done"):
        return status
    if noregex:
        result.reasons.append(f"{prefix.describe() if prefix else 'it'} is ^~, so no regex is checked")
        return status
    return _find_regex(locations, uri, raw, result, status)


def _find_static(locations: Sequence[LocationNode], uri: str, result: Route) -> Tuple[str, Optional[LocationNode]]:
    exact = [n for n in locations if n.modifier == "=" and n.path == uri]
    if exact:
        result.location = exact[0]
        result.reasons.append(f"exact match {exact[0].describe()}; nothing else is checked")
        return "ok", exact[0]
    redirect = _auto_redirect(locations, uri)
    if redirect is not None:
        result.location, result.redirect = redirect, redirect.path
        result.reasons.append(
            f"{redirect.describe()} ends with / and passes the request on, so nginx answers {uri} with a 301 "
            f"redirect to {redirect.path}; no regex is checked"
        )
        return "done", redirect
    prefixes = [n for n in locations if n.modifier in ("", "^~") and uri.startswith(n.path)]
    if not prefixes:
        return "declined", None
    longest = max(prefixes, key=lambda n: len(n.path))
    result.location = longest
    result.reasons.append(f"longest matching prefix is {longest.describe()}")
    return "again", longest


def _auto_redirect(locations: Sequence[LocationNode], uri: str) -> Optional[LocationNode]:
    """The ``len + 1 == node->len && node->auto_redirect`` branch of ngx_http_core_find_static_location:
    a URI that lacks only the final "/" of such a location selects it, and nginx answers 301 (an exact
    location of the same name lends its configuration)."""
    if any(n.modifier in ("", "^~", "=") and n.path == uri for n in locations):
        return None  # a location named exactly the URI is found first in the tree and ends the search
    named = [n for n in locations if n.modifier in ("", "^~", "=") and n.path == uri + "/"]
    if not any(n.auto_redirect for n in named):
        return None
    return sorted(named, key=lambda n: n.modifier != "=")[0]


def _find_regex(locations: Sequence[LocationNode], uri: str, raw: bytes, result: Route, status: str) -> str:
    for node in locations:
        if not node.is_regex:
            continue
        try:
            regex = compile_location_regex(node.path, node.modifier == "~*")
        except RegexUnknown as exc:
            result.unknown = f"{exc}; {node.describe()} is checked before the answer is known"
            result.location = None
            return "ok"
        if regex.search(raw):
            result.location = node
            result.reasons.append(f"first matching regex in file order is {node.describe()}")
            if node.children:
                _find(node.children, uri, raw, result)
            return "ok"
    if any(node.is_regex for node in locations):
        result.reasons.append("no regex at this level matches")
    return status


# ------------------------------------------------------------------------------------ the request URI


class InvalidUri(ValueError):
    """A request URI that ``ngx_http_parse_complex_uri`` declines: nginx answers 400 before any location."""


_USUAL, _SLASH, _DOT, _DOT_DOT, _QUOTED, _QUOTED_SECOND = range(6)
_HEX = b"0123456789abcdef"


def parse_complex_uri(uri: str, merge_slashes: bool = True) -> str:
    """Port of ``ngx_http_parse_complex_uri`` (nginx 1.22, not Win32): the path that locations are
    matched against. Stops at ``?`` and ``#``, decodes %XX, merges slashes (unless ``merge_slashes off``),
    resolves ``.`` and ``..``. Raises InvalidUri for a bad %-escape, ``%00``, or a path above the root."""
    raw = uri.encode("utf-8", "surrogateescape")
    _check_request_line(raw, uri)
    data = raw + b"\n"  # nginx reads one byte past the URI: the line feed
    out = bytearray()
    state = quoted_state = _USUAL
    decoded = 0
    ch, p = data[0], 1
    while p <= len(raw):
        fetch = True
        if state == _QUOTED:
            value = _HEX.find(bytes([ch | 0x20])) if chr(ch).isascii() and chr(ch).isalnum() else -1
            if value < 0:
                raise InvalidUri(f"{uri!r} has a malformed %-escape (nginx answers 400)")
            decoded, state = value, _QUOTED_SECOND
        elif state == _QUOTED_SECOND:
            value = _HEX.find(bytes([ch | 0x20])) if chr(ch).isascii() and chr(ch).isalnum() else -1
            if value < 0:
                raise InvalidUri(f"{uri!r} has a malformed %-escape (nginx answers 400)")
            ch = (decoded << 4) + value
            if ch == 0:
                raise InvalidUri(f"{uri!r} encodes a NUL byte (%00; nginx answers 400)")
            kept_literal = chr(ch) in "%#" if value < 10 else chr(ch) == "?"
            if kept_literal:
                state = _USUAL  # a decoded "%", "#" or "?" (hex letter second) is kept as a literal character
                out.append(ch)
            else:
                state, fetch = quoted_state, False  # the decoded byte is read again in the state before "%"
        else:
            step = _STEP[state](ch, out, merge_slashes, uri)
            if step is None:
                return _finish(out, _USUAL, uri)
            if step == _QUOTED:
                quoted_state = state
            state = step
        if fetch:
            ch, p = data[p], p + 1
    if state in (_QUOTED, _QUOTED_SECOND):
        raise InvalidUri(f"{uri!r} ends inside a %-escape (nginx answers 400)")
    return _finish(out, state, uri)


def _check_request_line(raw: bytes, uri: str) -> None:
    """ngx_http_parse_request_line refuses a control character or DEL anywhere in the URI, and a space
    ends the URI (what follows is not "HTTP/x.y"): both are 400 before the path is parsed."""
    bad = next((byte for byte in raw if byte <= 0x20 or byte == 0x7F), None)
    if bad is not None:
        raise InvalidUri(f"{uri!r} contains {chr(bad)!r}, which the request line does not allow (nginx answers 400)")


def _finish(out: bytearray, state: int, uri: str) -> str:
    if state == _DOT:
        del out[-1]
    elif state == _DOT_DOT:
        _climb(out, uri)
    return bytes(out).decode("utf-8", "surrogateescape")


def _climb(out: bytearray, uri: str) -> None:
    """``u -= 4`` and back to the previous "/": drop the segment before "/..", or 400 above the root."""
    position = len(out) - 4
    while True:
        if position < 0:
            raise InvalidUri(f"{uri!r} climbs above the root (nginx answers 400)")
        if out[position] == ord("/"):
            del out[position + 1 :]
            return
        position -= 1


def _usual(ch: int, out: bytearray, merge: bool, uri: str) -> Optional[int]:
    if ch == ord("%"):
        return _QUOTED
    if chr(ch) in "?#":
        return None
    out.append(ch)
    return _SLASH if ch == ord("/") else _USUAL


def _slash(ch: int, out: bytearray, merge: bool, uri: str) -> Optional[int]:
    if ch == ord("/"):
        if not merge:
            out.append(ch)
        return _SLASH
    if ch == ord("."):
        out.append(ch)
        return _DOT
    return _usual(ch, out, merge, uri)


def _dot(ch: int, out: bytearray, merge: bool, uri: str) -> Optional[int]:
    if ch == ord("/"):
        del out[-1]
        return _SLASH
    if ch == ord("."):
        out.append(ch)
        return _DOT_DOT
    if chr(ch) in "?#":
        del out[-1]
        return None
    return _usual(ch, out, merge, uri)


def _dot_dot(ch: int, out: bytearray, merge: bool, uri: str) -> Optional[int]:
    if chr(ch) in "/?#":
        _climb(out, uri)
        return _SLASH if ch == ord("/") else None
    return _usual(ch, out, merge, uri)


_STEP: Dict[int, Callable[[int, bytearray, bool, str], Optional[int]]] = {
    _USUAL: _usual,
    _SLASH: _slash,
    _DOT: _dot,
    _DOT_DOT: _dot_dot,
}


def redirect_fix(uri: str, location: LocationNode) -> str:
    """What ends nginx's automatic 301 for a WebSocket path (route_info and ws_location say the same)."""
    return (
        f"Connect the WebSocket clients to {uri}/ (the URL with the slash), or give {uri} a location named "
        f"exactly so (`location = {uri}` or `location ^~ {uri}` with the WebSocket settings): a regex location "
        f"does not help, nginx redirects before it checks regexes ({location.describe()} asks the redirect)."
    )


def request_problem(uri: str, result: Route) -> Optional[Tuple[str, str]]:
    """Why nginx would not hand ``uri``, sent as written, to the chosen location's handler: (problem, fix);
    None when it would. ``result`` is the route of ``uri``. Used by ws_location for the WebSocket path."""
    try:
        paths = {parse_complex_uri(uri, merge) for merge in (True, False)}
    except InvalidUri as exc:
        return (
            f"nginx answers 400 to a WebSocket request for {uri}: {exc}",
            "Use a location path without '%', '..' or '.' segments, as clients send it.",
        )
    if paths != {uri}:
        seen = sorted(paths - {uri})[0]
        return (
            f"nginx matches locations against {seen}, not {uri} (it merges slashes, resolves dot segments and "
            "%-escapes first): a location written for that path is never reached as written",
            f"Write the location path the way nginx normalises it ({seen}).",
        )
    if result.redirect and result.location is not None:
        return (
            f"nginx answers {uri} with a 301 redirect to {result.redirect}: {result.location.describe()} ends with / "
            "and passes requests on; a WebSocket client does not follow redirects",
            redirect_fix(uri, result.location),
        )
    return None
