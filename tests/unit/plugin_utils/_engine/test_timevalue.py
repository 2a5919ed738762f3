"""The one nginx time grammar (a port of ngx_parse_time), and the option checks and diagnosis that use it.

``tests/integration/test_timevalue_nginx.py`` runs the same table through a real ``nginx -t``."""

from __future__ import annotations

from typing import Optional

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis import checks, facts
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings, validate
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import (
    TimeValueError,
    parse_time,
    seconds_text,
    time_seconds,
)

# (value, milliseconds as a msec directive reads it or None when nginx refuses, seconds as a sec directive
# reads it or None). The nginx-backed test checks every row against nginx -t.
TIME_TABLE = [
    ("90", 90_000, 90),
    ("90s", 90_000, 90),
    ("2m", 120_000, 120),
    ("1h30m", 5_400_000, 5400),
    ("1h 30m", 5_400_000, 5400),
    ("1d", 86_400_000, 86400),
    ("1w2d", 777_600_000, 777600),
    ("500ms", 500, None),
    ("1s500ms", 1500, None),
    ("1h30", 3_630_000, 3630),
    ("1hm", 3_600_000, 3600),
    ("0", 0, 0),
    ("3600s", 3_600_000, 3600),
    ("1y", None, 31_536_000),
    ("1M", None, 2_592_000),
    ("2d1w", None, None),
    ("1m1m", None, None),
    ("5x", None, None),
    ("1.5s", None, None),
    ("-3", None, None),
    ("s", None, None),
    ("ms", None, None),
    ("1 hour", None, None),
    ("30 1h", None, None),
    ("5 ", 5000, 5),
    ("1h\t30m", None, None),
    ("99999999999999999999", None, None),
]


@pytest.mark.parametrize(("text", "msec", "sec"), TIME_TABLE, ids=[repr(row[0]) for row in TIME_TABLE])
def test_parse_time_follows_ngx_parse_time(text: str, msec: Optional[int], sec: Optional[int]) -> None:
    for is_sec, expected in ((False, msec), (True, sec)):
        if expected is None:
            with pytest.raises(TimeValueError, match="is not an nginx time"):
                parse_time(text, is_sec)
        else:
            assert parse_time(text, is_sec) == expected


def test_time_seconds_is_the_msec_reading_in_seconds() -> None:
    assert time_seconds("1h30m") == 5400
    assert time_seconds("500ms") == 0.5
    with pytest.raises(TimeValueError, match=r"'1y' is not an nginx time \(y is not allowed in a timeout\)"):
        time_seconds("1y")


def test_seconds_text_writes_a_time_nginx_reads_back() -> None:
    assert [seconds_text(s) for s in (300, 0.5, 5400.0)] == ["300s", "500ms", "5400s"]
    assert [parse_time(seconds_text(s)) for s in (300, 0.5)] == [300_000, 500]


def test_the_diagnosis_uses_the_same_grammar() -> None:
    assert facts.time_seconds is time_seconds
    assert checks.seconds_text is seconds_text


@pytest.mark.parametrize("value", ["1h30m", "1h 30m", "90", "2m", "1d", "500ms"])
def test_timeout_options_accept_every_nginx_time(value: str) -> None:
    assert validate(Settings(read_timeout=value, send_timeout=value)).read_timeout == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1y", "y is not allowed in a timeout"),
        ("2d1w", "units must go from large to small, each once"),
        ("1.5s", "'.' is not a unit (y M w d h m s ms)"),
        ("", "it has no number"),
    ],
)
def test_timeout_options_refuse_what_nginx_refuses_and_say_why(value: str, why: str) -> None:
    with pytest.raises(InvalidOptionError) as error:
        validate(Settings(read_timeout=value))
    assert str(error.value) == (
        f"read_timeout must be an nginx time such as 90, 90s, 2m, 1h30m, 1d or 500ms, got {value!r}: {why}. "
        "Plain numbers are seconds; units go from large to small (w d h m s ms)."
    )
