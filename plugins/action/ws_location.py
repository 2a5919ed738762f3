# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agaii.nginx.ws_location action: read on the target, plan on the controller, write on the target.

This action runs on the controller. The managed node runs only ``agaii.nginx.nginx_file``: one call to
read the site, its stat and the ``nginx -T`` dump, and (when the plan changes the file and this is not
check mode) one call to write it under a lock, validate with ``nginx -t`` and roll back on failure.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from ansible_collections.agaii.nginx.plugins.plugin_utils._action_base import FILE_OPTIONS, EditingAction, Proposal
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import Plan, plan_websocket
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings, check_settings
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import (
    RunTarget,
    Snapshot,
    file_diff,
    read_snapshot,
    refuse_backup_dir_under_include,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "path": {"type": "path", "required": True},
    "server_name": {"type": "str"},
    "listen": {"type": "str"},
    "location": {"type": "str", "default": "^/api/mqtt/ws/"},
    "before": {"type": "str", "default": "/api/"},
    "proxy_pass": {"type": "str"},
    "read_timeout": {"type": "str", "default": "3600s"},
    "send_timeout": {"type": "str", "default": "3600s"},
    "headers": {"type": "dict", "default": {}},
    "map_variable": {"type": "str"},
    "match": {"type": "str", "choices": ["auto", "regex", "prefix"], "default": "auto"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "include_conflicts": {"type": "str", "choices": ["refuse", "inline"], "default": "refuse"},
    **FILE_OPTIONS,
}


def settings_from(args: Dict[str, Any]) -> Settings:
    headers = {str(name): str(value) for name, value in (args["headers"] or {}).items()}
    return Settings(
        location=args["location"],
        before=args["before"],
        proxy_pass=args["proxy_pass"],
        read_timeout=args["read_timeout"],
        send_timeout=args["send_timeout"],
        headers=headers,
        map_variable=args["map_variable"],
        match=args["match"],
        server_name=args["server_name"],
        state=args["state"],
        include_conflicts=args["include_conflicts"],
        listen=args["listen"],
    )


def first_edited_server(plan: Plan) -> Optional[Dict[str, Any]]:
    outcomes = [server.as_dict() for server in plan.servers]
    edited = [outcome for outcome in outcomes if outcome["action"] != "unchanged"]
    return (edited or outcomes or [None])[0]


def plan_result(snapshot: Snapshot, plan: Plan, with_diff: bool) -> Dict[str, Any]:
    first = first_edited_server(plan) or {}
    result: Dict[str, Any] = {
        "changed": plan.changed,
        "path": snapshot.path,
        "realpath": snapshot.realpath,
        "servers": [server.as_dict() for server in plan.servers],
        "edited": [server.server for server in plan.servers if server.action != "unchanged"],
        "route_before": first.get("route_before", {}),
        "route_after": first.get("route_after", {}),
        "sample_uri": plan.sample_uri,
        "map_variable": plan.map_variable,
    }
    if plan.warnings:
        result["warnings"] = list(plan.warnings)
    if plan.changed and with_diff:
        result["diff"] = [file_diff(snapshot.path, snapshot.data, plan.after[snapshot.path])]
    return result


class ActionModule(EditingAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def check_options(self, args: Dict[str, Any]) -> None:
        check_settings(settings_from(args))

    def propose(self, args: Dict[str, Any], run: RunTarget) -> Proposal:
        snapshot = read_snapshot(run, args["path"], args)
        config = load(snapshot.path, snapshot.data, snapshot.dump)
        refuse_backup_dir_under_include(args, config.include_patterns())
        plan = plan_websocket(config, snapshot.path, settings_from(args))
        result = plan_result(snapshot, plan, bool(self._task.diff))
        if not plan.changed:
            return Proposal(result, None)
        return Proposal(result, (snapshot.realpath, plan.after[snapshot.path], snapshot.sha256))
