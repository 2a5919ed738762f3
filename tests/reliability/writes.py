"""Catch any filesystem write made while the engine runs (a Python audit hook, installed once).

Inside ``with no_writes() as seen:`` every write-like event (``open`` for writing, rename, remove,
mkdir, chmod, ...) is recorded. The engine's one legitimate write is the temporary copy crossplane
parses (``tempfile.NamedTemporaryFile(suffix=".conf")`` in the system temporary directory): those are
counted apart as ``seen.temp_copies``; anything else is a violation in ``seen.writes``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_MUTATING_EVENTS = {
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.symlink",
    "os.link",
    "os.truncate",
    "os.utime",
    "shutil.copyfile",
    "shutil.move",
    "shutil.rmtree",
}


@dataclass
class Seen:
    writes: List[Tuple[str, str]] = field(default_factory=list)
    temp_copies: int = 0


_active: Optional[Seen] = None
_installed = False


def _is_temp_copy(path: Any) -> bool:
    if not isinstance(path, (str, bytes)):
        return False
    text = os.fsdecode(path)
    return os.path.dirname(text) == tempfile.gettempdir() and text.endswith(".conf")


def _is_temp_dir(path: Any) -> bool:
    return isinstance(path, (str, bytes)) and os.fsdecode(path) == tempfile.gettempdir()


def _path_of(event: str, args: Tuple[Any, ...]) -> Any:
    return args[0] if args else None


def _is_write_open(args: Tuple[Any, ...]) -> bool:
    mode = args[1] if len(args) > 1 else None
    flags = args[2] if len(args) > 2 else 0
    if isinstance(mode, str) and any(ch in mode for ch in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _hook(event: str, args: Tuple[Any, ...]) -> None:
    seen = _active
    if seen is None:
        return
    if event == "open" and not _is_write_open(args):
        return
    if event != "open" and event not in _MUTATING_EVENTS:
        return
    path = _path_of(event, args)
    if _is_temp_copy(path):
        seen.temp_copies += event == "open"
        return
    if event == "open" and _is_temp_dir(path):
        return  # NamedTemporaryFile's io.open(dir, opener=...): the named copy above is what it creates
    seen.writes.append((event, repr(path)))


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


@contextlib.contextmanager
def no_writes() -> Iterator[Seen]:
    """Record every write made inside the block (not thread-aware: run the engine in this thread)."""
    global _active
    _install()
    seen, previous = Seen(), _active
    _active = seen
    try:
        yield seen
    finally:
        _active = previous
