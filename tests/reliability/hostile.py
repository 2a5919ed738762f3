"""Hostile option values: nginx syntax, line breaks, quoting and escapes, variables, NUL, length,
unicode, and shell and path tricks. Every string option of every module and role variable gets all
of them (``{canary}`` is replaced by a file that must never come to exist; the path traversal leads
next to it, so whatever a value makes the modules write stays in the test's directory).

Whatever a value does, afterwards the configuration nginx loads must hold no directive that was not
asked for: the payloads all try to add one of ``INJECTED_DIRECTIVES`` or the ``X-Injected`` header.
"""

from __future__ import annotations

from typing import List

INJECTED_HEADER = "X-Injected"
INJECTED_DIRECTIVES = ("add_header", "return", "deny", "allow", "rewrite", "error_page")
VERY_LONG = "a" * 100_000

_TEMPLATES: List[str] = [
    # nginx syntax
    ";",
    "{",
    "}",
    "x; add_header X-Injected 1",
    "x; return 200 pwned",
    "x } server { listen 127.0.0.1:9; } location / {",
    "x { add_header X-Injected 1; }",
    "x;}",
    "a b c",
    # line breaks and control characters
    "a\nadd_header X-Injected 1;",
    "a\r\nadd_header X-Injected 1;",
    "a\radd_header X-Injected 1",
    "a\x00b",
    "\x00",
    "a\tb",
    "\x0b\x0c\x1b\x7f",
    # comments
    "# add_header X-Injected 1;",
    "x # add_header X-Injected 1;",
    "x;# comment",
    # quotes and backslashes
    '"',
    "'",
    '"; add_header X-Injected 1; "',
    "'; add_header X-Injected 1; '",
    "\\",
    "a\\",
    'a\\"; add_header X-Injected 1; \\"',
    "\\\\;",
    "\\n add_header X-Injected 1;",
    # variables
    "$",
    "$host",
    "${host}",
    "${x",
    "$http_authorization; add_header X-Injected 1",
    "$request_uri}",
    # size and unicode
    VERY_LONG,
    "ünïcødé ✓",
    "\u2028add_header X-Injected 1;",
    "\u0085add_header X-Injected 1;",
    "\u202eevil",
    "😀",
    "",
    " ",
    # shell, options and paths
    "$(touch {canary})",
    "`touch {canary}`",
    "; touch {canary}",
    "| touch {canary}",
    "&& touch {canary}",
    "-t",
    "--help",
    "../../../../../../../../..{canary}-escape",
    "*",
    "?[",
    "%s%n%x",
]


def hostile_values(canary: str) -> List[str]:
    """The hostile values with ``{canary}`` filled in (at least 30 of them)."""
    return [template.replace("{canary}", canary) for template in _TEMPLATES]


def short(value: str, limit: int = 40) -> str:
    """A printable label for a value (test ids and messages)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 12]}...({len(value)} chars)"
