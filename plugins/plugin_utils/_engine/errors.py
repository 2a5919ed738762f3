# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors of the config engine. PRIVATE to the collection.

Every error carries the file and line it is about (when there is one) and a sentence that tells the
operator what to do, so the Ansible glue can show ``str(error)`` as it is.
"""

from __future__ import annotations

from typing import Optional


class NginxConfigError(Exception):
    """Base class: something about the configuration stops the engine; nothing was changed."""

    def __init__(
        self,
        message: str,
        filename: Optional[str] = None,
        line: Optional[int] = None,
        hint: Optional[str] = None,
    ) -> None:
        self.message = message
        self.filename = filename
        self.line = line
        self.hint = hint
        super().__init__(self.render())

    def where(self) -> str:
        if self.filename and self.line:
            return f"{self.filename}:{self.line}"
        return self.filename or ""

    def render(self) -> str:
        text = self.message
        where = self.where()
        if where:
            text = f"{where}: {text}"
        if self.hint:
            separator = " " if text.endswith((".", "!", "?", ":")) else ". "
            text = f"{text}{separator}{self.hint}"
        return text


class ConfigSyntaxError(NginxConfigError):
    """The file cannot be parsed the way nginx would parse it."""


class UnsupportedConfigError(NginxConfigError):
    """The file uses something the engine cannot edit safely (it refuses rather than guesses)."""


class ServerSelectionError(NginxConfigError):
    """No server block, or more than one, matches the request and the choice is not obvious."""


class AnchorNotFoundError(NginxConfigError):
    """The location the WebSocket location must sit beside does not exist in the server."""


class CannotWinError(NginxConfigError):
    """No form of the WebSocket location would be chosen by nginx for the WebSocket path."""


class InvalidOptionError(NginxConfigError):
    """An option value is unsafe (it could inject directives) or malformed."""


class MapConflictError(NginxConfigError):
    """The upgrade map cannot be placed or reused without a duplicate."""
