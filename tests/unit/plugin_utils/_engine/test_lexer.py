"""The byte lexer reads what nginx reads, with exact spans."""

from __future__ import annotations

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import ConfigSyntaxError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.lexer import (
    COMMENT,
    QUOTED,
    WORD,
    lua_block_end,
    tokenize,
    unescape,
)


def words(data: bytes) -> list:
    return [(t.kind, t.value) for t in tokenize(data)]


def test_spans_cover_the_exact_bytes() -> None:
    data = b'location  ~* "\\.(js|css)$" {\n  return 200 ok; # done\n}'
    for token in tokenize(data):
        raw = data[token.start : token.end]
        assert raw.strip() == raw and raw
    assert [t.line for t in tokenize(data)] == [1, 1, 1, 1, 2, 2, 2, 2, 2, 3]


def test_quoted_and_escaped_arguments_unescape_like_nginx() -> None:
    assert words(b"a \"b c\" 'd;e' f\\;g;") == [
        (WORD, b"a"),
        (QUOTED, b"b c"),
        (QUOTED, b"d;e"),
        (WORD, b"f\\;g"),  # nginx keeps escapes other than quotes, backslash, t, r, n
        (";", b";"),
    ]
    assert unescape(b'\\"\\t\\.\\\\') == b'"\t\\.\\'


def test_closing_brace_inside_a_word_is_part_of_the_word() -> None:
    assert words(b"return 200 a};")[2] == (WORD, b"a}")


def test_variable_braces_do_not_open_a_block() -> None:
    assert words(b"set $x ${host}x;")[2] == (WORD, b"${host}x")


def test_hash_starts_a_comment_only_at_a_token_start() -> None:
    assert words(b"add_header X a#b; # real comment\n")[2] == (WORD, b"a#b")
    assert words(b"# real comment\n")[0][0] == COMMENT


def test_blocks_on_one_line() -> None:
    kinds = [t.kind for t in tokenize(b"location /a{}location /b{}")]
    assert kinds == [WORD, WORD, "{", "}", WORD, WORD, "{", "}"]


def test_unterminated_quote_is_a_syntax_error_with_line() -> None:
    with pytest.raises(ConfigSyntaxError) as error:
        list(tokenize(b'server {\n  return 200 "oops;\n}\n', "site.conf"))
    assert str(error.value).startswith("site.conf:2: unexpected end of file, expecting a closing quote")


def test_text_right_after_a_quote_is_an_error() -> None:
    with pytest.raises(ConfigSyntaxError, match='unexpected "x" after a quoted argument'):
        list(tokenize(b'return 200 "a"x;'))


def test_lua_block_braces_in_strings_and_comments_do_not_count() -> None:
    data = b'content_by_lua_block { local s = "}" -- }\n local t = [[ } ]] if x then y = {1} end }'
    open_brace = data.index(b"{")
    assert lua_block_end(data, open_brace, "f", 1) == len(data) - 1
