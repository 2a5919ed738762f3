"""Concurrency: ten runs of the ws_proxy role at once against one site file and one host.

Exactly one run changes the site (the others re-read it under the target's lock, find the WebSocket
location and change nothing), exactly one adds the upgrade map, and the result is one WebSocket location
and one ``map $http_upgrade`` that nginx accepts.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from ansible_collections.agaii.nginx.plugins.modules.nginx_file import LOCK_DIRS
from tests.reliability.conftest import Figures
from tests.reliability.harness import PlaybookRun, Playbooks
from tests.reliability.workspace import incident_site, is_upgrade_map, loaded_directives
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

RUNS = int(os.environ.get("AGAII_CONCURRENT_RUNS", "10"))
WS_HEAD = b"location ~ ^/api/mqtt/ws/ {"
REGISTERED = ("ws_proxy_result",)


def role_task(site: Path, conf: Path) -> Dict[str, Any]:
    return {
        "ansible.builtin.include_role": {"name": "agaii.nginx.ws_proxy"},
        "vars": {"ws_proxy_site": str(site), "ws_proxy_nginx_conf": str(conf), "ws_proxy_reload_method": "none"},
    }


def lock_waiters() -> int:
    """Processes waiting for an flock right now (``->`` lines of /proc/locks)."""
    return sum(1 for line in Path("/proc/locks").read_text().splitlines() if "->" in line and "FLOCK" in line)


def run_all_at_once(playbooks: Playbooks, task: Dict[str, Any]) -> Tuple[List[PlaybookRun], int]:
    began = time.monotonic()
    started = [playbooks.start([task], {}, REGISTERED) for _run in range(RUNS)]
    most_waiting = 0
    while any(popen.poll() is None for popen in started):
        most_waiting = max(most_waiting, lock_waiters())
        time.sleep(0.05)
    return [Playbooks.finish(popen, began) for popen in started], most_waiting


def test_ten_runs_at_once_make_one_change(nginx_sandbox: NginxSandbox, tmp_path: Path, figures: Figures) -> None:
    real = nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    link = nginx_sandbox.path("sites-enabled/app")
    original = real.read_bytes()

    runs, most_waiting = run_all_at_once(Playbooks(tmp_path), role_task(link, nginx_sandbox.conf))

    for run in runs:
        assert run.returncode == 0, run.output[-3000:]
    location_changes = sum(1 for run in runs if run.results["ws_proxy_result"]["location"]["changed"])
    map_changes = sum(1 for run in runs if run.results["ws_proxy_result"]["map"]["changed"])
    assert (location_changes, map_changes) == (1, 1)
    after = real.read_bytes()
    assert after.count(WS_HEAD) == 1 and len(re.findall(rb"(?m)^\s*location\s", after)) == 2
    assert after != original and link.is_symlink()
    loaded = loaded_directives(nginx_sandbox)
    assert sum(1 for d in loaded if is_upgrade_map(d)) == 1
    assert nginx_sandbox.test().returncode == 0
    assert os.listdir(nginx_sandbox.path("conf.d")) == ["websocket-upgrade-map.conf"]
    assert any(os.path.isdir(d) for d in LOCK_DIRS)
    section = "concurrency: runs of the role at once"
    figures.record(section, "runs", RUNS)
    figures.record(section, "runs that changed the site / added the map", f"{location_changes} / {map_changes}")
    figures.record(section, "WebSocket locations / upgrade maps after", "1 / 1")
    figures.record(section, "most runs seen waiting for the target's lock at once", most_waiting)
    figures.record(section, "seconds for all runs", round(max(run.elapsed for run in runs), 1))
