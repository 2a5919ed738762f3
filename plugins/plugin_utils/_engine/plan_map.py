# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan the ``map $http_upgrade $var`` block: reuse any that is loaded, else exactly one new one. PRIVATE.

nginx does not catch a duplicate map (the last one silently wins), so the tool must never add a second.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, Directive, glob_match
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import MapConflictError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.layout import Layout
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.render import check_variable
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.splice import Edit, apply_edits

MAP_MARKER = "# managed by agaii.nginx.upgrade_map"
DEFAULT_VARIABLE = "connection_upgrade"
DEFAULT_MAP_FILE = "websocket-upgrade-map.conf"


@dataclass
class MapPlan:
    """The map variable to use, and the edit (if any) that defines it."""

    variable: str
    reused: Optional[str] = None
    edits: List[Edit] = field(default_factory=list)
    created: bool = False
    file: Optional[str] = None
    where: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    before: Dict[str, bytes] = field(default_factory=dict)
    after: Dict[str, bytes] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.edits)


def plan_map(config: Config, variable: Optional[str] = None, map_file: Optional[str] = None) -> MapPlan:
    """Reuse the loaded upgrade map, or plan one new map in ``map_file``, an http include dir, or http{}."""
    existing = config.upgrade_maps()
    if existing:
        return _reuse(existing, variable)
    name = check_variable("variable", variable) if variable else DEFAULT_VARIABLE
    if name in config.all_map_variables():
        raise MapConflictError(
            f"${name} is already defined by a map on another variable",
            filename=None,
            line=None,
            hint="Choose another variable name.",
        )
    plan = MapPlan(variable=name)
    if map_file:
        _plan_in_named_file(config, plan, config.absolute(map_file))
    else:
        _plan_default_place(config, plan)
    plan.after = apply_edits(plan.before, plan.edits)
    return plan


def _reuse(existing: List[Directive], variable: Optional[str]) -> MapPlan:
    last = existing[-1]
    plan = MapPlan(variable=last.args[1].lstrip("$"), reused=last.where)
    if len(existing) > 1:
        places = ", ".join(m.where for m in existing)
        plan.warnings.append(
            f"{len(existing)} `map $http_upgrade` blocks are loaded ({places}); nginx uses "
            f"the last one; remove the others"
        )
    if variable and variable.lstrip("$") != plan.variable:
        plan.warnings.append(
            f"reusing the existing map variable ${plan.variable} at {last.where} instead "
            f"of adding ${variable.lstrip('$')}: a second map would be a duplicate"
        )
    return plan


def _plan_in_named_file(config: Config, plan: MapPlan, path: str) -> None:
    if path in config.files:
        if path == config.main:
            _plan_in_http_block(config, plan)
        elif path in _files_in_http(config):
            _append_to_file(config, plan, path)
        else:
            raise MapConflictError(
                "map_file: this file is not included in http{}",
                filename=path,
                line=None,
                hint="Choose a file that an include inside http{} loads.",
            )
        return
    if not any(glob_match(pattern, path) or pattern == path for _include, pattern in config.http_includes()):
        patterns = ", ".join(p for _include, p in config.http_includes()) or "none"
        raise MapConflictError(
            "map_file: no include inside http{} would load this new file",
            filename=path,
            line=None,
            hint=f"Choose a path matched by one of: {patterns}.",
        )
    _create_file(config, plan, path)


def _plan_default_place(config: Config, plan: MapPlan) -> None:
    for _include, pattern in config.http_includes():
        directory, base = posixpath.split(pattern)
        candidate = posixpath.join(directory, DEFAULT_MAP_FILE)
        if posixpath.basename(directory) == "conf.d" and glob_match(pattern, candidate) and base != DEFAULT_MAP_FILE:
            _create_file(config, plan, candidate)
            return
    _plan_in_http_block(config, plan)


def _files_in_http(config: Config) -> List[str]:
    return [path for include, _pattern in config.http_includes() for path in config.included_files(include)]


def _create_file(config: Config, plan: MapPlan, path: str) -> None:
    text = b"\n".join(_indented_map(b"", b"    ", plan.variable)) + b"\n"
    plan.before[path] = b""
    plan.edits.append(Edit(path, 0, 0, text, why="create the upgrade map file"))
    plan.created = True
    plan.file = plan.where = path


def _append_to_file(config: Config, plan: MapPlan, path: str) -> None:
    file = config.files[path]
    layout = Layout(file)
    nl = layout.newline
    lines = _indented_map(b"", layout.unit, plan.variable)
    lead = b"" if not file.data or file.data.endswith(b"\n") else nl
    plan.before[path] = file.data
    plan.edits.append(
        Edit(path, len(file.data), len(file.data), lead + nl.join(lines) + nl, why="append the upgrade map")
    )
    plan.file = plan.where = path


def _plan_in_http_block(config: Config, plan: MapPlan) -> None:
    http = config.http_directive()
    if http is None or http.file != config.main:
        raise MapConflictError(
            "no http{} block found in the main configuration",
            filename=config.main,
            line=None,
            hint="Give map_file: a file included inside http{}.",
        )
    file = config.files[config.main]
    layout = Layout(file)
    nl = layout.newline
    target = next((d for d in http.block or () if d.name in ("include", "server") and layout.on_own_line(d)), None)
    if target is not None:
        offset = layout.insertion_range(target)[0]
        text = nl.join(_indented_map(layout.outer_indent(target), layout.unit, plan.variable)) + nl + nl
    elif file.indent_before(http.close_brace) is not None:
        offset = file.line_start(http.close_brace)
        text = nl.join(_indented_map(layout.inner_indent(http), layout.unit, plan.variable)) + nl
    else:
        offset = http.close_brace
        text = nl + nl.join(_indented_map(layout.inner_indent(http), layout.unit, plan.variable)) + nl
    plan.before[config.main] = file.data
    plan.edits.append(Edit(config.main, offset, offset, text, why="add the upgrade map to http{}"))
    plan.file = config.main
    plan.where = f"{config.main}:{http.line}"


def _indented_map(indent: bytes, unit: bytes, variable: str) -> List[bytes]:
    """The marker comment and the map block, one bytes object per line."""
    return [
        indent + MAP_MARKER.encode(),
        indent + f"map $http_upgrade ${variable} {{".encode(),
        indent + unit + b"default upgrade;",
        indent + unit + b"''      close;",
        indent + b"}",
    ]
