# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agaii.nginx.upgrade_map action: exactly one ``map $http_upgrade $var`` across all loaded files.

Runs on the controller. The target runs ``agaii.nginx.nginx_file``: one read of the main configuration
with the ``nginx -T`` dump and, only when a map must be added (and not in check mode), one write that is
validated with ``nginx -t`` and undone if the test fails.
"""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.agaii.nginx.plugins.module_utils._nginx_file_protocol import ABSENT
from ansible_collections.agaii.nginx.plugins.plugin_utils._action_base import FILE_OPTIONS, EditingAction, Proposal
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_map import DEFAULT_VARIABLE, MapPlan, plan_map
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import (
    RunTarget,
    file_diff,
    read_snapshot,
    refuse_backup_dir_under_include,
    sha256_hex,
)

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "variable": {"type": "str", "default": DEFAULT_VARIABLE},
    "map_file": {"type": "path"},
    **FILE_OPTIONS,
}


def map_result(plan: MapPlan, with_diff: bool) -> Dict[str, Any]:
    result: Dict[str, Any] = {
        "changed": plan.changed,
        "variable": plan.variable,
        "reused": plan.reused,
        "created": plan.created,
    }
    if plan.file:
        result["file"] = plan.file
    if plan.warnings:
        result["warnings"] = list(plan.warnings)
    if plan.changed and with_diff:
        result["diff"] = [
            file_diff(path, plan.before[path], after, created=plan.created) for path, after in plan.after.items()
        ]
    return result


class ActionModule(EditingAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    EDITED_PATH_OPTION = "nginx_conf"

    def propose(self, args: Dict[str, Any], run: RunTarget) -> Proposal:
        snapshot = read_snapshot(run, args["nginx_conf"], args)
        config = load(snapshot.path, snapshot.data, snapshot.dump, main=snapshot.path)
        refuse_backup_dir_under_include(args, config.include_patterns())
        plan = plan_map(config, args["variable"], args["map_file"])
        result = map_result(plan, bool(self._task.diff))
        if not plan.changed:
            return Proposal(result, None)
        ((path, after),) = plan.after.items()
        return Proposal(result, (path, after, ABSENT if plan.created else sha256_hex(plan.before[path])))
