"""Run the ws_proxy role with ansible-playbook on localhost, against an nginx sandbox, and read its outcome."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from tests.support.ansible_run import ansible_playbook
from tests.support.nginx_sandbox import NginxSandbox

PROOF_FILE = "proof.json"
# The role's registered proof, kept for the test (the role's own tasks are what is under test).
PLAYBOOK = """\
- name: Fix WebSocket proxying and prove it
  hosts: localhost
  gather_facts: false
  roles:
    - role: agaii.nginx.ws_proxy
  post_tasks:
    - name: Keep the proof for the test
      ansible.builtin.copy:
        content: "{{ (ws_proxy_result | default({})).proof | default({}) | to_json }}"
        dest: "{{ proof_file }}"
        mode: "0600"
      changed_when: false
      delegate_to: localhost
"""
_RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class RoleRun:
    """One ansible-playbook run: exit status, output, the play recap's counts and the proof's result."""

    rc: int
    output: str
    changed: int
    failed: int
    proof: Optional[Dict[str, Any]]


def role_vars(sandbox: NginxSandbox, site: Path, **variables: Any) -> Dict[str, Any]:
    """The role's variables for a site of the sandbox; reload with a signal (no service manager here)."""
    return {
        "ws_proxy_site": str(site),
        "ws_proxy_nginx_conf": str(sandbox.conf),
        "ws_proxy_reload_method": "signal",
        **variables,
    }


def run_role(workdir: Path, variables: Dict[str, Any]) -> RoleRun:
    """Run the role once; ``variables`` go in as extra vars (JSON, so lists and dictionaries keep their type)."""
    workdir.mkdir(parents=True, exist_ok=True)
    proof_path = workdir / PROOF_FILE
    proof_path.unlink(missing_ok=True)
    (workdir / "play.yml").write_text(PLAYBOOK)
    extra = {**variables, "proof_file": str(proof_path), "ansible_python_interpreter": sys.executable}
    (workdir / "vars.json").write_text(json.dumps(extra))
    result = ansible_playbook(workdir, "-i", "localhost,", "-c", "local", "play.yml", "-e", "@vars.json")
    output = result.stdout + result.stderr
    recap = _RECAP.search(output)
    assert recap is not None, output
    proof = json.loads(proof_path.read_text()) if proof_path.exists() else None
    return RoleRun(result.returncode, output, int(recap.group(2)), int(recap.group(4)), proof)
