# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the editing action plugins (ws_location, upgrade_map). PRIVATE to the collection."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple

from ansible.errors import AnsibleActionFail
from ansible.module_utils.basic import missing_required_lib
from ansible.plugins.action import ActionBase

from ansible_collections.agaii.nginx.plugins.module_utils._nginx_file_protocol import MODULE_NAME
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import CROSSPLANE_IMPORT_ERROR, HAS_CROSSPLANE
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError, NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.render import check_plain_value
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import (
    WRITE_ATTEMPTS,
    RunTarget,
    TaskFailed,
    too_many_changes,
    write_failure,
    write_file,
)

FILE_OPTIONS: Dict[str, Dict[str, Any]] = {
    "backup": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": "/var/backups/nginx"},
    "validate": {"type": "bool", "default": True},
    "nginx_binary": {"type": "str", "default": "nginx"},
    "nginx_conf": {"type": "path", "default": "/etc/nginx/nginx.conf"},
}

# Refused before any remote call: a line feed in a file name splits its `# configuration file` line in
# `nginx -T`, so such a file could not be found again; NUL cannot be in a path at all; a relative backup_dir
# would be resolved against the module's working directory on the host.
PATH_OPTIONS = ("path", "backup_dir", "map_file", "nginx_binary", "nginx_conf")


def refuse_unsafe_paths(args: Dict[str, Any]) -> None:
    for option in PATH_OPTIONS:
        if args.get(option) is not None:
            check_plain_value(option, args[option])
    if args.get("backup") and not posixpath.isabs(args["backup_dir"]):
        raise InvalidOptionError(
            f"backup_dir must be an absolute path, got {args['backup_dir']!r}: a relative one would land in "
            "whatever directory the module happens to run in on the host",
            hint="Give an absolute directory outside every nginx include, such as /var/backups/nginx.",
        )


@dataclass
class Proposal:
    """What an editing action planned on one read: the task result, and the one write it needs (None: none).

    ``write`` is (the real path on the target, the new bytes, the sha256 of the bytes the plan started from, or
    ``absent`` for a new file).
    """

    result: Dict[str, Any]
    write: Optional[Tuple[str, bytes, str]]


class EditingAction(ActionBase):
    """Validate the arguments, then ``converge``; engine refusals and target failures become ``failed``.

    An editing action implements ``propose`` (read the target once, plan on the controller) and names the option
    that holds the file it edits (``EDITED_PATH_OPTION``); ``converge`` owns read -> plan -> write -> retry.
    """

    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    ARGUMENT_SPEC: ClassVar[Dict[str, Dict[str, Any]]] = {}
    EDITED_PATH_OPTION: ClassVar[str] = "path"

    def run(self, tmp: Any = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        if not HAS_CROSSPLANE:
            raise AnsibleActionFail(missing_required_lib("crossplane"), orig_exc=CROSSPLANE_IMPORT_ERROR)
        try:
            refuse_unsafe_paths(args)
            result.update(self.converge(args, self._runner(task_vars or {})))
        except TaskFailed as failure:
            result.update(failure.result)
        except NginxConfigError as err:
            result.update(TaskFailed(str(err)).result)
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def check_options(self, args: Dict[str, Any]) -> None:
        """Refuse unsafe option values before any remote call (nothing by default)."""

    def propose(self, args: Dict[str, Any], run: RunTarget) -> Proposal:
        raise NotImplementedError

    def converge(self, args: Dict[str, Any], run: RunTarget) -> Dict[str, Any]:
        """Plan on one read and write what the plan changes; a file changed meanwhile is read and planned again.

        In check mode nothing is written. The write runs ``nginx -t`` on the target and undoes itself on failure.
        """
        self.check_options(args)
        for _attempt in range(WRITE_ATTEMPTS):
            proposal = self.propose(args, run)
            if proposal.write is None or self._task.check_mode:
                return proposal.result
            path, data, expected_sha256 = proposal.write
            write = write_file(run, path, data, expected_sha256, args)
            if write.get("stale"):
                continue
            if write.get("failed"):
                raise write_failure(write, proposal.result)
            if write.get("backup_file"):
                proposal.result["backup_file"] = write["backup_file"]
            return proposal.result
        raise too_many_changes(args[self.EDITED_PATH_OPTION])

    def _runner(self, task_vars: Dict[str, Any]) -> RunTarget:
        def run(module_args: Dict[str, Any]) -> Dict[str, Any]:
            return self._execute_module(module_name=MODULE_NAME, module_args=module_args, task_vars=task_vars)

        return run
