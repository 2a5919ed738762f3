"""Ways to run the collection from the reliability tests.

- :func:`run_nginx_file`: the target module ``nginx_file`` in this process (its real ``main()``, real
  ``nginx``), fast enough for hundreds of runs. The module's lock is released after each run, as it is
  when a module process exits.
- :func:`converge`: the ``ws_location`` / ``upgrade_map`` actions in this process: the argument spec
  is validated by Ansible's own validator, then ``converge()`` runs with ``nginx_file`` in process as
  the target, and refusals become results the way ``EditingAction.run`` makes them.
- :class:`Playbooks`: ``ansible-playbook`` on the implicit localhost, for the real end-to-end path
  (action plugins, AnsiballZ, the role and its handlers).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.agaii.nginx.plugins.action import upgrade_map as upgrade_map_action
from ansible_collections.agaii.nginx.plugins.action import ws_location as ws_location_action
from ansible_collections.agaii.nginx.plugins.modules import nginx_file
from ansible_collections.agaii.nginx.plugins.plugin_utils._action_base import refuse_unsafe_paths
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import TaskFailed
from tests.support.ansible_run import ANSIBLE_PLAYBOOK, ansible_env
from tests.support.pytest_fixtures import REPO_ROOT

NGINX_FILE_MODULE = REPO_ROOT / "plugins" / "modules" / "nginx_file.py"
RESULTS_MARKER = "RESULTS:"

ACTIONS: Dict[str, Any] = {"ws_location": ws_location_action, "upgrade_map": upgrade_map_action}


# --------------------------------------------------------------------------- nginx_file in process


def run_module_main(module: Any, args: Mapping[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """Run a module's ``main()`` with ``args`` in this process; return its JSON result.

    An exception that escapes the module becomes ``{"failed": True, "crashed": True, "exception": ...}``
    with no ``msg``: what an action plugin's ``_execute_module`` gets from Ansible 2.19 for a module that
    crashed (the task output later shows "Module failed: <exception>").
    """
    payload = {"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode}}
    out = io.StringIO()
    basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = json.dumps(payload).encode(), "legacy"
    try:
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            module.main()
    except Exception as exc:
        return {"failed": True, "changed": False, "crashed": True, "exception": f"{type(exc).__name__}: {exc}"}
    finally:
        basic._ANSIBLE_ARGS, basic._ANSIBLE_PROFILE = None, None
    result: Dict[str, Any] = json.loads(out.getvalue())
    return result


def run_nginx_file(args: Mapping[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """``nginx_file`` in this process; its flock is released after the run, as at a module process exit."""
    lock_fds: List[int] = []
    original_lock = nginx_file.acquire_lock

    def keep_fd(module: Any, realpath: str) -> int:
        fd = original_lock(module, realpath)
        lock_fds.append(fd)
        return fd

    nginx_file.acquire_lock = keep_fd  # type: ignore[assignment]
    try:
        return run_module_main(nginx_file, args, check_mode)
    finally:
        nginx_file.acquire_lock = original_lock  # type: ignore[assignment]
        for fd in lock_fds:
            os.close(fd)


def write_request(path: Path, old: Optional[bytes], new: bytes, nginx_conf: str, **options: Any) -> Dict[str, Any]:
    """The arguments of an ``nginx_file`` write of ``new`` over ``old`` (None: the file does not exist)."""
    return {
        "operation": "write",
        "path": str(path),
        "content": base64.b64encode(new).decode(),
        "expected_sha256": "absent" if old is None else hashlib.sha256(old).hexdigest(),
        "nginx_conf": nginx_conf,
        **options,
    }


# --------------------------------------------------------------------------- the actions in process


def validate_args(spec: Dict[str, Dict[str, Any]], args: Mapping[str, Any]) -> Dict[str, Any]:
    """Ansible's own argument validation (types, choices, path expansion); raises ValueError."""
    result = ArgumentSpecValidator(spec).validate(dict(args))
    if result.error_messages:
        raise ValueError("; ".join(result.error_messages))
    validated: Dict[str, Any] = result.validated_parameters
    return validated


def converge(action: str, args: Mapping[str, Any], check_mode: bool = False) -> Dict[str, Any]:
    """One task of ``agaii.nginx.<action>`` in this process; the result as the task would show it."""
    module = ACTIONS[action]
    try:
        validated = validate_args(module.ARGUMENT_SPEC, args)
    except ValueError as exc:
        return {"failed": True, "changed": False, "msg": f"argument spec: {exc}", "rejected_by": "argument spec"}
    plugin = module.ActionModule.__new__(module.ActionModule)
    plugin._task = SimpleNamespace(check_mode=check_mode, diff=False)
    try:
        refuse_unsafe_paths(validated)  # as EditingAction.run does
        result: Dict[str, Any] = plugin.converge(validated, lambda target_args: run_nginx_file(target_args, check_mode))
    except TaskFailed as failure:
        return failure.result
    except NginxConfigError as err:
        return TaskFailed(str(err)).result
    return {"failed": False, **result}


# --------------------------------------------------------------------------- ansible-playbook


@dataclass
class PlaybookRun:
    returncode: int
    output: str
    results: Dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0


def results_task(names: Sequence[str]) -> Dict[str, Any]:
    """A debug task printing the registered ``names`` as base64 JSON after a marker."""
    body = ", ".join(f"{name!r}: {name} | default(None)" for name in names)
    return {
        "name": "report the results",
        "ansible.builtin.debug": {"msg": f"{RESULTS_MARKER}{{{{ {{{body}}} | to_json | b64encode }}}}"},
    }


class Playbooks:
    """Writes each playbook into its own directory under ``workdir`` and runs it on localhost."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0

    def prepare(self, tasks: List[Dict[str, Any]], extra_vars: Mapping[str, Any], registered: Sequence[str]) -> Path:
        self.count += 1
        run_dir = self.workdir / f"playbook-{self.count}"
        run_dir.mkdir(parents=True)
        play = {
            "name": "agaii.nginx reliability",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [*tasks, results_task(registered)],
        }
        (run_dir / "playbook.yml").write_text(json.dumps([play], indent=1))
        (run_dir / "vars.json").write_text(json.dumps(dict(extra_vars)))
        return run_dir

    def start(
        self,
        tasks: List[Dict[str, Any]],
        extra_vars: Mapping[str, Any],
        registered: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
    ) -> subprocess.Popen[str]:
        run_dir = self.prepare(tasks, extra_vars, registered)
        return subprocess.Popen(
            [str(ANSIBLE_PLAYBOOK), "playbook.yml", "-e", "@vars.json"],
            cwd=run_dir,
            env={**ansible_env(self.workdir), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def finish(popen: subprocess.Popen[str], began: float, timeout: float = 300) -> PlaybookRun:
        output, _stderr = popen.communicate(timeout=timeout)
        found = re.search(rf'"{RESULTS_MARKER}([A-Za-z0-9+/=]+)"', output)
        results = json.loads(base64.b64decode(found.group(1))) if found else {}
        return PlaybookRun(popen.returncode, output, results, time.monotonic() - began)

    def run(
        self,
        tasks: List[Dict[str, Any]],
        extra_vars: Mapping[str, Any],
        registered: Sequence[str],
        env: Optional[Mapping[str, str]] = None,
        timeout: float = 300,
    ) -> PlaybookRun:
        began = time.monotonic()
        return self.finish(self.start(tasks, extra_vars, registered, env), began, timeout)


def role_case(index: int, role_vars: Mapping[str, str]) -> Dict[str, Any]:
    """Include the ws_proxy role with ``role_vars`` (from extra vars ``cases[index]``); record any failure."""
    role_vars_expr = {name: f"{{{{ cases[{index}][{name!r}] }}}}" for name in role_vars}
    return {
        "name": f"case {index}",
        "block": [
            {"ansible.builtin.include_role": {"name": "agaii.nginx.ws_proxy"}, "vars": role_vars_expr},
            {"ansible.builtin.set_fact": {f"case_{index}": {"failed": False}}},
        ],
        "rescue": [
            {
                "ansible.builtin.set_fact": {
                    f"case_{index}": {
                        "failed": True,
                        "task": "{{ ansible_failed_task.name | default('') }}",
                        "msg": "{{ ansible_failed_result.msg | default('') }}",
                    }
                }
            }
        ],
    }


def module_case(index: int, module: str, options: Sequence[str], check: bool = False) -> Dict[str, Any]:
    """A task of ``module`` whose options come from extra vars ``cases[index]`` unchanged (omitted when absent)."""
    return {
        "name": f"case {index}",
        module: {name: f"{{{{ cases[{index}][{name!r}] | default(omit) }}}}" for name in options},
        "check_mode": check,
        "register": f"case_{index}",
        "ignore_errors": True,
    }


def message(result: Mapping[str, Any]) -> str:
    """What the task shows: ``msg``, or the exception of a crashed module."""
    return str(result.get("msg") or result.get("exception") or "")


def decoded(result: Mapping[str, Any], key: str = "content") -> bytes:
    return base64.b64decode(result[key])
