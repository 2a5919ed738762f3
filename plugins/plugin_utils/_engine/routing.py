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
    (r"\[\[:", "a POSIX character class"),
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
    translated = _NAMED_GROUP.sub("(?P<", source)
    flags = re.IGNORECASE if caseless else 0
    try:
        compiled = re.compile(translated.encode("utf-8", "surrogateescape"), flags)
    except re.error as exc:
        return RegexUnknown(f"the regex {source!r} does not compile in Python ({exc})")
    return CompiledRegex(source, caseless, compiled)


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
        node = LocationNode(modifier, path, directive)
        node.children = build_tree(children_of(directive), children_of)
        nodes.append(node)
    return nodes


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
    if status == "ok":
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
    prefixes = [n for n in locations if n.modifier in ("", "^~") and uri.startswith(n.path)]
    if not prefixes:
        return "declined", None
    longest = max(prefixes, key=lambda n: len(n.path))
    result.location = longest
    result.reasons.append(f"longest matching prefix is {longest.describe()}")
    return "again", longest


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
