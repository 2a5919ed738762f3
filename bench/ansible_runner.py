"""Run ansible-playbook with the bench_timer callback and read back when each play and task ran."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bench.paths import ANSIBLE_PLAYBOOK, CALLBACK_PLUGINS, COLLECTIONS

BOUNDARIES = ("play", "task", "handler", "end")


class AnsibleRunError(RuntimeError):
    """ansible-playbook failed or a task failed."""


@dataclass
class Timeline:
    """The events bench_timer recorded, and the wall time of the whole ansible-playbook process."""

    events: List[Dict[str, Any]]
    wall: float
    log: Path
    extra: Dict[str, Any] = field(default_factory=dict)

    def spans(self, kinds: Sequence[str] = ("task", "handler")) -> List[Tuple[str, float]]:
        """(name, seconds) of each task: from its start to the start of whatever comes next."""
        marks = [e for e in self.events if e["event"] in BOUNDARIES]
        out = []
        for here, following in zip(marks, marks[1:]):
            if here["event"] in kinds:
                out.append((here["name"], following["t"] - here["t"]))
        return out

    def plays(self) -> List[Tuple[str, float]]:
        """(name, seconds) of each play, from its start to the next play's start or the end."""
        marks = [e for e in self.events if e["event"] in ("play", "end")]
        return [(here["name"], nxt["t"] - here["t"]) for here, nxt in zip(marks, marks[1:]) if here["event"] == "play"]

    def results(self, name_prefix: str = "") -> List[Dict[str, Any]]:
        return [e for e in self.events if e["event"] == "result" and e["name"].startswith(name_prefix)]

    def results_by_play(self) -> List[Tuple[str, List[Dict[str, Any]]]]:
        """Each play's name with the host results reported during it."""
        out: List[Tuple[str, List[Dict[str, Any]]]] = []
        for event in self.events:
            if event["event"] == "play":
                out.append((event["name"], []))
            elif event["event"] == "result" and out:
                out[-1][1].append(event)
        return out


class Ansible:
    """Writes each run's playbook and inventory under ``workdir`` and runs ansible-playbook there."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count = 0
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "ansible.cfg").write_text("[defaults]\n")
        self.control_path_dir = workdir / "cp"
        self.control_path_dir.mkdir(exist_ok=True)

    def env(self, timings: Path) -> Dict[str, str]:
        return {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.workdir / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_PLUGINS),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "BENCH_TIMINGS": str(timings),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible-local"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.control_path_dir),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }

    def run(
        self,
        name: str,
        playbook: List[Dict[str, Any]],
        inventory: Dict[str, Any],
        forks: int = 5,
        timeout: float = 1200.0,
        check_failures: bool = True,
    ) -> Timeline:
        self.count += 1
        run_dir = self.workdir / f"{self.count:02d}-{name}"
        run_dir.mkdir(parents=True)
        (run_dir / "playbook.yml").write_text(json.dumps(playbook, indent=1))
        (run_dir / "inventory.yml").write_text(json.dumps(inventory, indent=1))
        timings = run_dir / "timings.jsonl"
        log = run_dir / "output.log"
        argv = [str(ANSIBLE_PLAYBOOK), "-i", "inventory.yml", "-f", str(forks), "playbook.yml"]
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.run(
                argv,
                cwd=run_dir,
                env=self.env(timings),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        wall = time.monotonic() - started
        tail = log.read_bytes()[-3000:].decode("utf-8", "replace")
        if proc.returncode != 0:
            raise AnsibleRunError(f"ansible-playbook {name} exited with {proc.returncode}; see {log}:\n{tail}")
        events = [json.loads(line) for line in timings.read_text().splitlines()]
        timeline = Timeline(events, wall, log)
        failed = [e for e in timeline.results() if e["status"] in ("failed", "unreachable")]
        if check_failures and failed:
            raise AnsibleRunError(f"{name}: {len(failed)} task(s) failed, first {failed[0]}; see {log}:\n{tail}")
        return timeline

    def close_ssh_masters(self) -> None:
        """Ask every SSH ControlPersist master ansible left in our control path dir to exit."""
        for socket_path in self.control_path_dir.iterdir():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "bench-control-master"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )


def local_host(python: str, **host_vars: Any) -> Dict[str, Any]:
    return {"ansible_connection": "local", "ansible_python_interpreter": python, **host_vars}


def inventory(hosts: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    return {"all": {"hosts": hosts}}


def task(name: str, module: str, args: Dict[str, Any], **keywords: Any) -> Dict[str, Any]:
    return {"name": name, module: args, **keywords}


def play(name: str, hosts: str, tasks: Optional[List[Dict[str, Any]]] = None, **keywords: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"name": name, "hosts": hosts, "gather_facts": False, **keywords}
    if tasks is not None:
        out["tasks"] = tasks
    return out
