# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply byte-range edits to a file's original bytes. PRIVATE to the collection.

Only the bytes inside an edit's range change; everything else is copied as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import UnsupportedConfigError


@dataclass(frozen=True)
class Edit:
    """Replace ``data[start:end]`` of ``file`` by ``text`` (an insertion when start == end)."""

    file: str
    start: int
    end: int
    text: bytes
    why: str = ""


def splice(data: bytes, edits: Sequence[Edit]) -> bytes:
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    _refuse_overlaps(ordered)
    pieces: List[bytes] = []
    cursor = 0
    for edit in ordered:
        pieces.append(data[cursor : edit.start])
        pieces.append(edit.text)
        cursor = edit.end
    pieces.append(data[cursor:])
    return b"".join(pieces)


def _refuse_overlaps(ordered: Sequence[Edit]) -> None:
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end:
            raise UnsupportedConfigError(
                f"two planned edits overlap ({before.why!r} and {after.why!r})",
                before.file,
                None,
                "This is a bug in the planner; please report it with the file.",
            )


def apply_edits(files: Dict[str, bytes], edits: Iterable[Edit]) -> Dict[str, bytes]:
    """The new bytes of every file an edit touches (a file missing from ``files`` starts empty)."""
    by_file: Dict[str, List[Edit]] = {}
    for edit in edits:
        by_file.setdefault(edit.file, []).append(edit)
    return {path: splice(files.get(path, b""), file_edits) for path, file_edits in by_file.items()}
