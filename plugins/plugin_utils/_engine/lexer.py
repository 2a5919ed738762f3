# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A byte-exact tokenizer that follows nginx's own ``ngx_conf_read_token``. PRIVATE to the collection.

crossplane decides whether a file is valid and what it means, but it records only start lines.
Splicing needs the exact byte offset of every token, ``;``, ``{`` and ``}``; this lexer gives them
without decoding the file, so bytes that are not UTF-8 are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import ConfigSyntaxError

WORD = "word"
QUOTED = "quoted"
SEMICOLON = ";"
OPEN = "{"
CLOSE = "}"
COMMENT = "#"

# One token after optional whitespace (the rules of ngx_conf_read_token):
# 1 ";" "{" "}", 2 a comment, 3 a double-quoted body, 4 a single-quoted body, 5 a bare word: "\x" escapes
# any byte, "${" keeps going (a variable), and only whitespace, ";" and "{" end it; a "}" inside a word is
# part of the word, exactly as nginx reads it. No group matches at a quote that is never closed (or a lone
# backslash at the end of the data).
SCAN = re.compile(
    rb"[ \t\r\n]*(?:"
    rb"([;{}])"
    rb"|(#[^\n]*)"
    rb'|"((?:\\[\s\S]|[^"\\])*)"'
    rb"|'((?:\\[\s\S]|[^'\\])*)'"
    rb"|((?:\\[\s\S]|\$\{|[^ \t\r\n;{}#\"'\\])(?:\\[\s\S]|\$\{|[^ \t\r\n;{\\])*)"
    rb")?"
)
AFTER_QUOTE_OK = frozenset(b" \t\r\n;{)")
# A whole statement in one match when every word is plain (no quote, escape, "#", "$", "{", "}", or other
# control byte): most directives are. 1 the name, 2 the arguments with their separating whitespace,
# 3 ";" or "{". Anything else fails to match here and is read token by token with SCAN, same result.
SIMPLE = re.compile(rb"[ \t\r\n]*([^\x00-\x20;{}#\"'\\$]+)((?:[ \t\r\n]+[^\x00-\x20;{}#\"'\\$]+)*)[ \t\r\n]*([;{])")
_LUA_LONG_BRACKET = re.compile(rb"\[(=*)\[")
_UNESCAPE = re.compile(rb"\\(.)", re.S)
_UNESCAPED = {b'"': b'"', b"'": b"'", b"\\": b"\\", b"t": b"\t", b"r": b"\r", b"n": b"\n"}


@dataclass(frozen=True)
class Token:
    kind: str
    value: bytes
    start: int
    end: int
    line: int

    @property
    def text(self) -> str:
        return self.value.decode("utf-8", "surrogateescape")


def unescape(raw: bytes) -> bytes:
    """Apply nginx's unescaping (quotes, backslash, t, r, n after a backslash); keep other escapes."""
    if b"\\" not in raw:
        return raw
    return _UNESCAPE.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(0)), raw)


class Lexer:
    """Reads tokens one at a time; the parser can jump over a body it reads differently (Lua)."""

    def __init__(self, data: bytes, filename: str = "<config>") -> None:
        self.data = data
        self.filename = filename
        self.pos = 0
        self.line = 1

    def next_token(self) -> Optional[Token]:
        """Return the next token, or None at the end of the data."""
        match = SCAN.match(self.data, self.pos)
        kind = match.lastindex
        if kind is None:
            return self._read_unmatched(match.end())
        start = match.start(kind) - (1 if kind in (3, 4) else 0)  # a quoted token starts at its quote
        self._advance_to(start)
        line, end = self.line, match.end()
        self._advance_to(end)
        raw = match.group(kind)
        if kind == 1:
            return Token(raw.decode(), raw, start, end, line)
        if kind == 2:
            return Token(COMMENT, raw, start, end, line)
        if kind == 5:
            return Token(WORD, unescape(raw), start, end, line)
        if end < len(self.data) and self.data[end] not in AFTER_QUOTE_OK:
            raise self.error(f'unexpected "{chr(self.data[end])}" after a quoted argument')
        return Token(QUOTED, unescape(raw), start, end, line)

    def jump_to(self, offset: int) -> None:
        self._advance_to(offset)

    def error(self, message: str, line: Optional[int] = None) -> ConfigSyntaxError:
        return ConfigSyntaxError(
            message,
            self.filename,
            line or self.line,
            "Fix the file so that `nginx -t` accepts it, then run again.",
        )

    def _advance_to(self, end: int) -> None:
        self.line += self.data.count(b"\n", self.pos, end)
        self.pos = end

    def _read_unmatched(self, at: int) -> Optional[Token]:
        """Where SCAN matches no token: the end of the data, a quote never closed, or a lone backslash
        at the very end (a one-byte word, as nginx reads it)."""
        self._advance_to(at)
        if at >= len(self.data):
            return None
        if self.data[at] in b"\"'":
            raise self.error("unexpected end of file, expecting a closing quote")
        self._advance_to(at + 1)
        return Token(WORD, self.data[at : at + 1], at, at + 1, self.line)


def tokenize(data: bytes, filename: str = "<config>") -> Iterator[Token]:
    """Yield every token of ``data`` with its byte span, as nginx would split it."""
    lexer = Lexer(data, filename)
    token = lexer.next_token()
    while token is not None:
        yield token
        token = lexer.next_token()


def lua_block_end(data: bytes, open_brace: int, filename: str, line: int) -> int:
    """Return the offset of the ``}`` that closes a ``*_by_lua_block`` body opened at ``open_brace``.

    Lua bodies are not nginx syntax; braces inside Lua strings, long brackets and comments do not count.
    """
    depth, pos, size = 1, open_brace + 1, len(data)
    while pos < size:
        byte = data[pos : pos + 1]
        if byte in (b'"', b"'"):
            pos = _skip_lua_string(data, pos)
            continue
        if data.startswith(b"--", pos):
            pos = _skip_lua_comment(data, pos)
            continue
        long_end = _skip_lua_long_bracket(data, pos)
        if long_end is not None:
            pos = long_end
            continue
        if byte == b"{":
            depth += 1
        elif byte == b"}":
            depth -= 1
            if depth == 0:
                return pos
        pos += 1
    raise ConfigSyntaxError("unexpected end of file in a Lua block", filename, line, "Close the *_by_lua_block body.")


def _skip_lua_string(data: bytes, pos: int) -> int:
    quote = data[pos]
    pos += 1
    while pos < len(data) and data[pos] != quote:
        pos += 2 if data[pos] == 0x5C else 1
    return pos + 1


def _skip_lua_long_bracket(data: bytes, pos: int) -> Optional[int]:
    match = _LUA_LONG_BRACKET.match(data, pos)
    if match is None:
        return None
    closing = b"]" + match.group(1) + b"]"
    end = data.find(closing, match.end())
    return len(data) if end < 0 else end + len(closing)


def _skip_lua_comment(data: bytes, pos: int) -> int:
    long_end = _skip_lua_long_bracket(data, pos + 2)
    if long_end is not None:
        return long_end
    newline = data.find(b"\n", pos)
    return len(data) if newline < 0 else newline
