# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render directives from option values without ever injecting one. PRIVATE to the collection.

Values are validated where their grammar is narrow (timeouts, header names, variables), quoted where
they may contain anything, and every rendered directive is read back with the byte lexer: if it does
not come back as exactly the intended words, it is refused.
"""

from __future__ import annotations

import re
from typing import Sequence

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.lexer import (
    COMMENT,
    OPEN,
    QUOTED,
    SEMICOLON,
    WORD,
    tokenize,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import EXAMPLES, TimeValueError, parse_time

_BARE_SAFE = re.compile(r"[^\s;{}\"'\\#]+")
_ESCAPE_IN_QUOTES = re.compile(r'\\(?=["\'\\tnr]|$)|"')
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_VALUE_LENGTH = 4096


def quote_arg(value: str) -> str:
    """One argument as nginx will read it back unchanged: bare when safe, else double-quoted."""
    if value and _BARE_SAFE.fullmatch(value) and "${" not in value:
        return value
    return '"' + _ESCAPE_IN_QUOTES.sub(lambda m: "\\" + m.group(0), value) + '"'


def render_directive(name: str, args: Sequence[str]) -> str:
    text = " ".join([name, *(quote_arg(arg) for arg in args)]) + ";"
    check_reads_back(text, [name, *args], block=False)
    return text


def render_block_head(name: str, args: Sequence[str]) -> str:
    text = " ".join([name, *(quote_arg(arg) for arg in args)]) + " {"
    check_reads_back(text, [name, *args], block=True)
    return text


def check_reads_back(text: str, words: Sequence[str], block: bool) -> None:
    """Refuse any rendering that nginx would read as anything but ``words`` and one terminator."""
    tokens = list(tokenize(text.encode("utf-8", "surrogateescape")))
    terminator = OPEN if block else SEMICOLON
    kinds_ok = all(t.kind in (WORD, QUOTED) for t in tokens[:-1]) and tokens and tokens[-1].kind == terminator
    read = [t.text for t in tokens[:-1]]
    if not kinds_ok or read != list(words) or any(t.kind == COMMENT for t in tokens):
        raise InvalidOptionError(
            f"the value {list(words)!r} cannot be written safely as one directive",
            hint="Remove ';', '{', '}', quotes or newlines from the option.",
        )


def as_bytes(text: str) -> bytes:
    """Text for the file: what was read from it (decoded with surrogateescape) goes back byte for byte."""
    return text.encode("utf-8", "surrogateescape")


def check_plain_value(option: str, value: str) -> str:
    """Any string option: no control characters (newline, NUL, ...), bounded length."""
    if not isinstance(value, str):
        raise InvalidOptionError(f"{option} must be a string, got {type(value).__name__}")
    if _FORBIDDEN.search(value):
        raise InvalidOptionError(
            f"{option} contains a control character (newline, NUL, ...): {value!r}",
            hint="Give a single-line value.",
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise InvalidOptionError(f"{option} is longer than {MAX_VALUE_LENGTH} characters")
    return value


def check_time(option: str, value: str) -> str:
    """A timeout option (a msec value such as proxy_read_timeout's), read by the one nginx time grammar."""
    value = check_plain_value(option, str(value)).strip()
    try:
        parse_time(value)
    except TimeValueError as exc:
        raise InvalidOptionError(
            f"{option} must be an nginx time {EXAMPLES}, got {value!r}: {exc.why}",
            hint="Plain numbers are seconds; units go from large to small (w d h m s ms).",
        ) from exc
    return value


def check_header_name(option: str, name: str) -> str:
    check_plain_value(option, name)
    if not _HEADER_NAME.match(name):
        raise InvalidOptionError(f"{option}: {name!r} is not a valid HTTP header name")
    return name


def check_variable(option: str, value: str) -> str:
    value = check_plain_value(option, value).lstrip("$")
    if not _VARIABLE.match(value):
        raise InvalidOptionError(f"{option} must be an nginx variable name such as connection_upgrade, got {value!r}")
    return value


_PROXY_PASS = re.compile(r"^(?:https?|grpcs?)://[^\s;{}\"'#\\]+$")


def check_proxy_pass(option: str, value: str) -> str:
    value = check_plain_value(option, value).strip()
    if not _PROXY_PASS.match(value):
        raise InvalidOptionError(f"{option} must be a URL such as http://127.0.0.1:8000, got {value!r}")
    return value


def check_location_regex(option: str, value: str) -> str:
    value = check_plain_value(option, value)
    if not value.strip():
        raise InvalidOptionError(f"{option} must not be empty")
    return value
