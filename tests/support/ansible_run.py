"""What every test that runs ``ansible-playbook`` on this checkout needs: the binary and its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

from tests.support.pytest_fixtures import REPO_ROOT

# scripts/setup links this checkout as ansible_collections/agaii/nginx under .build/collections
COLLECTIONS_PATH = REPO_ROOT / ".build" / "collections"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")
RUN_TIMEOUT = 300


def ansible_env(workdir: Path) -> Dict[str, str]:
    """This checkout as agaii.nginx, Ansible's temporary files under ``workdir``, plain output."""
    return {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
        "ANSIBLE_LOCAL_TEMP": str(workdir / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(workdir / "ansible-remote"),
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_FORCE_COLOR": "false",
    }


def ansible_playbook(workdir: Path, *argv: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``ansible-playbook argv`` in ``workdir`` with :func:`ansible_env`; output captured, never raises on rc."""
    return subprocess.run(
        [str(ANSIBLE_PLAYBOOK), *argv],
        cwd=workdir,
        env=ansible_env(workdir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
