# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where new text goes and how it looks: the file's own indentation and line endings. PRIVATE."""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import ConfigFile, Directive

_INDENTED_LINE = re.compile(rb"^([ \t]+)\S", re.M)
_DEFAULT_UNIT = b"    "


class Layout:
    """Formatting facts about one file, and the text of insertions that follow them."""

    def __init__(self, file: ConfigFile) -> None:
        self.file = file
        self.data = file.data
        self.newline = file.newline
        self.unit = self._indent_unit()

    def _indent_unit(self) -> bytes:
        for directive in self.file.walk():
            children = directive.block or []
            if not children:
                continue
            outer = self.file.indent_before(directive.start)
            inner = self.file.indent_before(children[0].start)
            if outer is not None and inner is not None and len(inner) > len(outer) and inner.startswith(outer):
                return inner[len(outer) :]
        indents = _INDENTED_LINE.findall(self.data)
        if indents and sum(1 for i in indents if i.startswith(b"\t")) * 2 > len(indents):
            return b"\t"
        return _DEFAULT_UNIT

    def inner_indent(self, block: Directive) -> bytes:
        """The indentation of the lines inside ``block``."""
        for child in block.block or ():
            found = self.file.indent_before(child.start)
            if found is not None and child.file == self.file.path:
                return found
        return self.outer_indent(block) + self.unit

    def outer_indent(self, directive: Directive) -> bytes:
        found = self.file.indent_before(directive.start)
        if found is not None:
            return found
        line_start = self.file.line_start(directive.start)
        line = self.data[line_start : directive.start]
        return line[: len(line) - len(line.lstrip(b" \t"))]

    def on_own_line(self, directive: Directive) -> bool:
        return self.file.indent_before(directive.start) is not None

    # -- inserting a block in front of a statement ----------------------------------------------

    def insertion_range(self, target: Directive) -> Tuple[int, int]:
        if not self.on_own_line(target):
            # in front of the blanks before ``target``: they would end the line the block breaks off
            at = target.start - len(self._blanks_before(target))
            return at, at
        start = self.file.line_start(target.start)
        while start > 0:
            previous = self.file.line_start(start - 1)
            stripped = self.data[previous:start].strip()
            if not stripped.startswith(b"#"):
                break
            start = previous
        return start, start

    def location_block(self, target: Directive, head: str, body: Sequence[bytes], marker: str) -> bytes:
        nl = self.newline
        if self.on_own_line(target):
            indent = self.outer_indent(target)
            lines = self._block_lines(indent, head, body, marker)
            return nl.join(lines) + nl + nl
        indent = self._enclosing_indent(target) + self.unit
        lines = self._block_lines(indent, head, body, marker)
        blanks = self._blanks_before(target)  # they stay, and now indent ``target``
        tail = indent[: len(indent) - len(blanks)] if indent.endswith(blanks) else indent
        return nl + nl.join(lines) + nl + tail

    def _blanks_before(self, target: Directive) -> bytes:
        before = self.data[self.file.line_start(target.start) : target.start]
        return before[len(before.rstrip(b" \t")) :]

    def _block_lines(self, indent: bytes, head: str, body: Sequence[bytes], marker: str) -> List[bytes]:
        inner = indent + self.unit
        lines = [indent + marker.encode(), indent + head.encode("utf-8", "surrogateescape")]
        lines += [inner + line for line in body]
        lines.append(indent + b"}")
        return lines

    def _enclosing_indent(self, target: Directive) -> bytes:
        return self.outer_indent(target.parent) if target.parent is not None else b""

    # -- adding directives at the end of a block ------------------------------------------------

    def append_to_block(self, block: Directive, lines: List[bytes]) -> Tuple[int, bytes]:
        """(offset, text) that adds ``lines`` just before the block's closing brace."""
        close = block.close_brace
        if self.file.indent_before(close) is not None:
            inner = self.inner_indent(block)
            text = b"".join(inner + line + self.newline for line in lines)
            return self.file.line_start(close), text
        before = self.data[close - 1 : close]
        lead = b"" if before in (b" ", b"\t") else b" "
        return close, lead + b" ".join(lines) + b" "

    # -- removing a block that this tool added --------------------------------------------------

    def managed_block_range(self, directive: Directive, marker: str) -> Optional[Tuple[int, int]]:
        """The byte range of the marker line, the block and the blank line after it (None: no marker)."""
        line_start = self.file.line_start(directive.start)
        if line_start == 0:
            return None
        marker_start = self.file.line_start(line_start - 1)
        if self.data[marker_start:line_start].strip() != marker.encode():
            return None
        end = self.data.find(b"\n", directive.end)
        end = len(self.data) if end < 0 else end + 1
        if self.data[directive.end : end].strip():
            return None
        blank_end = self.data.find(b"\n", end)
        if blank_end >= 0 and not self.data[end:blank_end].strip():
            end = blank_end + 1
        return marker_start, end
