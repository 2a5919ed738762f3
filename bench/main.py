"""``bench/run``: measure every figure of issue 7 and print a table, or one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from bench.paths import link_collection
from bench.stats import Figure, as_json_numbers

GROUPS = ("engine", "local", "ssh", "role", "fleet")
SITE_LINES = 1000  # the generated site the task figures plan against


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: about two minutes on 2 cores")
    parser.add_argument("--json", action="store_true", help="print one JSON object {key: number} on stdout")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--fleet-hosts", type=int, default=50, help="hosts of the large fleet run (default 50)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (playbooks, logs)")
    args = parser.parse_args(argv)
    args.groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = sorted(set(args.groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    return args


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def environment() -> List[str]:
    import ansible
    import crossplane

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False).stderr.strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load}",
        f"python {platform.python_version()}, ansible-core {ansible.__version__}, crossplane {crossplane.__version__}, "
        f"{version}",
    ]


def table(figures: Sequence[Figure], header: Sequence[str], elapsed: float, quick: bool) -> str:
    lines = [f"agaii.nginx benchmarks ({'--quick' if quick else 'full'} run, {elapsed:.0f}s)", *header, ""]
    lines += ["| key | value | goal | met | what |", "|---|---:|---:|---|---|"]
    for f in figures:
        if f.value is None:
            lines.append(f"| `{f.key}` | skipped | <= {f.goal:g} | - | {f.skipped} |")
        else:
            lines.append(f"| `{f.key}` | {f.value:.2f} | <= {f.goal:g} | {'yes' if f.met else 'NO'} | {f.what} |")
    lines.append("")
    for f in figures:
        for detail in f.details:
            lines.append(f"- {f.key}: {detail}")
    return "\n".join(lines)


def run_group(name: str, action: Callable[[], List[Figure]], figures: List[Figure]) -> None:
    started = time.monotonic()
    figures.extend(action())
    log(f"{name}: done in {time.monotonic() - started:.0f}s")


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(list(argv or []))
    link_collection()
    from bench import engine, scenarios
    from bench.ansible_runner import Ansible

    workdir = Path(tempfile.mkdtemp(prefix="agaii-bench-"))
    ansible = Ansible(workdir / "ansible")
    figures: List[Figure] = []
    header = environment()
    started = time.monotonic()
    pairs = 6 if args.quick else 20
    try:
        if "engine" in args.groups:
            run_group("engine", lambda: engine.figures(workdir, args.quick, log), figures)
        if "local" in args.groups:
            log("local: ws_location vs stat over the local connection ...")
            run_group("local", lambda: [scenarios.task_vs_stat(ansible, "local", pairs, SITE_LINES)], figures)
        if "ssh" in args.groups:
            log("ssh: ws_location vs stat over SSH on 127.0.0.1 ...")
            figure, _how = scenarios.ssh_figure(ansible, workdir, pairs, SITE_LINES, log)
            if figure.skipped:
                log(f"skipped task_vs_stat_ssh: {figure.skipped}")
            figures.append(figure)
        if "role" in args.groups:
            log("role: ws_proxy role vs blockinfile + nginx -t + handler ...")
            role_pairs = 3 if args.quick else 10
            run_group("role", lambda: [scenarios.role_vs_builtin(ansible, role_pairs)], figures)
        if "fleet" in args.groups:
            runs = scenarios.fleet_runs(args.quick, args.fleet_hosts)
            run_group("fleet", lambda: [scenarios.fleet(ansible, runs, log)], figures)
    finally:
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps(as_json_numbers(figures), sort_keys=True))
    else:
        print(table(figures, [*header, f"load average at the end: {os.getloadavg()[0]:.2f}"], elapsed, args.quick))
    return 0
