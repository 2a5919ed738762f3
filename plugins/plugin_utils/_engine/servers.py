# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Choose the server blocks to edit, the way nginx matches ``server_name``. PRIVATE to the collection."""

from __future__ import annotations

import re
from typing import List, Optional

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, Server
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import ServerSelectionError


def name_matches(pattern: str, host: str) -> bool:
    """Does a ``server_name`` entry match a host name (exact, ``*.x``, ``x.*``, ``.x``, ``~regex``)?"""
    host = host.lower().rstrip(".")
    if pattern == host or pattern.lower() == host:
        return True
    if pattern.startswith("~"):
        try:
            return re.search(pattern[1:], host, re.IGNORECASE) is not None  # nginx matches regex names caselessly
        except re.error:
            return False
    pattern = pattern.lower()
    if pattern.startswith("."):
        return host == pattern[1:] or host.endswith(pattern)
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1]) and len(host) > len(pattern) - 1
    return False


def servers_in_file(config: Config, path: str) -> List[Server]:
    return [server for server in config.servers() if server.file == path]


def candidates(config: Config, path: str, server_name: Optional[str]) -> List[Server]:
    """The server blocks of ``path`` that ``server_name`` selects (all of them when it is not given)."""
    servers = servers_in_file(config, path)
    if not servers:
        raise ServerSelectionError(
            "no server block is defined in this file",
            path,
            None,
            "Point path at the site file that holds the server block.",
        )
    if server_name is None:
        return servers
    chosen = [s for s in servers if any(name == server_name or name_matches(name, server_name) for name in s.names)]
    if not chosen:
        listing = "; ".join(s.label() for s in servers)
        raise ServerSelectionError(
            f"no server block answers to server_name {server_name!r}", path, None, f"The file has: {listing}."
        )
    return chosen


def describe_candidates(servers: List[Server]) -> str:
    return "; ".join(s.label() for s in servers)
