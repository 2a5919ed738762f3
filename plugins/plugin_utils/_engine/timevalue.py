# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nginx time values (``90``, ``90s``, ``1h30m``, ``1h 30m``, ``500ms``, ``1d``): the one grammar. PRIVATE.

A port of ``ngx_parse_time`` (nginx ``src/core/ngx_parse.c``). nginx reads a time in one of two kinds:

- a *msec* value (``ngx_conf_set_msec_slot``: ``proxy_read_timeout``, ``proxy_send_timeout``,
  ``proxy_connect_timeout``, ``keepalive_timeout``, ...): units ``w d h m s ms``; ``y`` and ``M`` are refused;
- a *sec* value (``ngx_conf_set_sec_slot``: ``expires``-like settings, ``ssl_session_timeout``): units
  ``y M w d h m s``; ``ms`` is refused.

Units must come from the largest to the smallest, each at most once; a number without a unit is seconds
(only as the last part, or before a space); parts may be separated by spaces (a quoted argument).
"""

from __future__ import annotations

from typing import Tuple

NGX_MAX_INT_T_VALUE = 2**63 - 1  # ngx_int_t on the 64-bit builds the collection supports

# The steps of ngx_parse_time's state machine, in the order units must appear.
_START, _YEAR, _MONTH, _WEEK, _DAY, _HOUR, _MIN, _SEC, _MSEC, _LAST = range(10)
_UNITS = {  # unit -> (step, seconds)
    "y": (_YEAR, 60 * 60 * 24 * 365),
    "M": (_MONTH, 60 * 60 * 24 * 30),
    "w": (_WEEK, 60 * 60 * 24 * 7),
    "d": (_DAY, 60 * 60 * 24),
    "h": (_HOUR, 60 * 60),
    "m": (_MIN, 60),
    "s": (_SEC, 1),
}
EXAMPLES = "such as 90, 90s, 2m, 1h30m, 1d or 500ms"


class TimeValueError(ValueError):
    """The text is not a time nginx accepts; ``why`` says which rule it breaks."""

    def __init__(self, text: str, why: str) -> None:
        self.text = text
        self.why = why
        super().__init__(f"{text!r} is not an nginx time ({why}); give one {EXAMPLES}")


def parse_time(text: str, is_sec: bool = False) -> int:
    """``text`` as nginx reads it: milliseconds (``is_sec`` False, a msec directive) or seconds (``is_sec``).

    Raises TimeValueError where ``ngx_parse_time`` returns NGX_ERROR (nginx -t: "invalid value")."""
    data = str(text)
    cutoff, cutlim = divmod(NGX_MAX_INT_T_VALUE, 10)
    valid, value, total = False, 0, 0
    step = _START if is_sec else _MONTH
    position = 0
    while position < len(data):
        char = data[position]
        if "0" <= char <= "9":
            if value >= cutoff and (value > cutoff or int(char) > cutlim):
                raise _invalid(text, "it is too large")
            value = value * 10 + int(char)
            valid = True
            position += 1
            continue
        position += 1
        step, scale, limit, position = _unit(data, char, position, step, is_sec, text)
        if step != _MSEC and not is_sec:
            scale *= 1000
            limit //= 1000
        if value > limit:
            raise _invalid(text, "it is too large")
        value *= scale
        if total > NGX_MAX_INT_T_VALUE - value:
            raise _invalid(text, "it is too large")
        total += value
        value = 0
        while position < len(data) and data[position] == " ":
            position += 1
    if not valid:
        raise _invalid(text, "it has no number")
    if not is_sec:
        if value > NGX_MAX_INT_T_VALUE // 1000:
            raise _invalid(text, "it is too large")
        value *= 1000
    if total > NGX_MAX_INT_T_VALUE - value:
        raise _invalid(text, "it is too large")
    return total + value


def _unit(data: str, char: str, position: int, step: int, is_sec: bool, text: str) -> Tuple[int, int, int, int]:
    """The unit at ``char`` (already consumed): (new step, scale, largest value allowed, next position)."""
    if char == "m" and position < len(data) and data[position] == "s":
        if is_sec or step >= _MSEC:
            raise _invalid(text, "ms is not allowed here" if is_sec else "units must go from large to small")
        return _MSEC, 1, NGX_MAX_INT_T_VALUE, position + 1
    if char == " ":
        if step >= _SEC:
            raise _invalid(text, "a plain number must come last")
        return _LAST, 1, NGX_MAX_INT_T_VALUE, position
    if char not in _UNITS:
        raise _invalid(text, f"{char!r} is not a unit (y M w d h m s ms)")
    new_step, scale = _UNITS[char]
    # ngx_parse_time: "y" only at the very start (so never in a msec value), every other unit after a larger one
    if (new_step == _YEAR and step > _START) or (new_step != _YEAR and step >= new_step):
        if char in "yM" and not is_sec:
            raise _invalid(text, f"{char} is not allowed in a timeout")
        raise _invalid(text, "units must go from large to small, each once")
    return new_step, scale, NGX_MAX_INT_T_VALUE // scale, position


def _invalid(text: str, why: str) -> TimeValueError:
    return TimeValueError(text, why)


def time_seconds(text: str) -> float:
    """Seconds in a timeout value such as ``proxy_read_timeout``'s (a msec value); TimeValueError otherwise."""
    return parse_time(text) / 1000


def seconds_text(seconds: float) -> str:
    """A number of seconds as an nginx time nginx reads back the same (``90s``, ``0.5s`` → ``500ms``)."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    return f"{int(seconds)}s"
