"""The Ansible figures: a ws_location task against stat, the role against the hand-made equivalent,
and the fix playbook on 50 hosts against 1. Every nginx here is a private sandbox on 127.0.0.1."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from bench.ansible_runner import Ansible, inventory, local_host, play, task
from bench.genconf import TARGET_NAME, generate
from bench.paths import REPO
from bench.stats import Figure, median, spread
from tests.support.incident import INCIDENT_SITE
from tests.support.nginx_sandbox import NginxSandbox

Log = Callable[[str], None]
PYTHON = sys.executable
WS_SAMPLE_URI = "/api/mqtt/ws/agaii-probe/session-874q8t"
UNUSED_UPSTREAM = "127.0.0.1:9"  # nothing is proxied during the benchmark

# The incident's site (scripts/demo_incident.py): what the role and blockinfile are compared on.
# What users write today instead of the role: blockinfile twice, nginx -t, a reload handler.
MAP_BLOCK = """\
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}"""
LOCATION_BLOCK = """\
    location ~ ^/api/mqtt/ws/ {{
        proxy_pass http://{upstream};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_read_timeout 3600s;
        proxy_send_timeout 3600s;
    }}
"""


# --------------------------------------------------------------------------- sandboxes


@contextlib.contextmanager
def sandboxes(count: int, site: Callable[[NginxSandbox], bytes], start: bool) -> Iterator[List[NginxSandbox]]:
    """``count`` nginx sandboxes with the site ``site(sandbox)`` enabled as ``app``; stopped and removed after."""
    made: List[NginxSandbox] = []
    try:
        for _index in range(count):
            sandbox = NginxSandbox()
            made.append(sandbox)
            sandbox.write_site("app", site(sandbox))
            if start:
                sandbox.start()
        yield made
    finally:
        for sandbox in made:
            sandbox.remove_lock_files()
            sandbox.cleanup()


def incident_site(sandbox: NginxSandbox) -> bytes:
    return INCIDENT_SITE.format(listen=sandbox.listen, upstream=UNUSED_UPSTREAM).encode()


def host_for(sandbox: NginxSandbox, **extra: Any) -> Dict[str, Any]:
    return local_host(
        PYTHON,
        bench_root=str(sandbox.root),
        bench_site=str(sandbox.path("sites-enabled/app")),
        bench_site_real=str(sandbox.path("sites-available/app")),
        bench_conf=str(sandbox.conf),
        bench_nginx=sandbox.nginx_bin,
        **extra,
    )


def ws_routes(sandbox: NginxSandbox) -> Optional[str]:
    """Where nginx's rules send the WebSocket sample URI in the sandbox's site (per the engine)."""
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import tree
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.routing import route

    site = str(sandbox.path("sites-enabled/app"))
    config = load(site, Path(site).read_bytes(), sandbox.dump().encode())
    server = next(s for s in config.servers_in(site) if "app.example.com" in s.names or TARGET_NAME in s.names)
    chosen = route(tree(config, server), WS_SAMPLE_URI).location
    return chosen.describe() if chosen else None


# --------------------------------------------------------------------------- task vs stat

NGINX_ARGS = ("nginx_conf", "nginx_binary")
WS_TASK_ARGS = {
    "path": "{{ bench_site }}",
    "server_name": TARGET_NAME,
    "nginx_conf": "{{ bench_conf }}",
    "nginx_binary": "{{ bench_nginx }}",
}


def task_vs_stat(
    ansible: Ansible, connection: str, pairs: int, site_lines: int, ssh_vars: Optional[Dict[str, Any]] = None
) -> Figure:
    """Alternating ws_location (unchanged) and stat tasks of the same file in one play."""

    def site(sandbox: NginxSandbox) -> bytes:
        return generate(site_lines, listen=sandbox.listen, log_dir=str(sandbox.root / "logs"))

    with sandboxes(1, site, start=False) as (sandbox,):
        host = host_for(sandbox, **(ssh_vars or {}))
        tasks = [
            task("warm-up ws_location (changes the file)", "agaii.nginx.ws_location", WS_TASK_ARGS),
            task("warm-up stat", "ansible.builtin.stat", {"path": "{{ bench_site }}"}),
        ]
        read_args = {"operation": "read", "path": "{{ bench_site }}", **{k: WS_TASK_ARGS[k] for k in NGINX_ARGS}}
        for index in range(pairs):
            trio = [
                task(f"ws {index}", "agaii.nginx.ws_location", WS_TASK_ARGS),
                task(f"stat {index}", "ansible.builtin.stat", {"path": "{{ bench_site }}"}),
                task(f"read {index}", "agaii.nginx.nginx_file", read_args),
            ]
            tasks += trio if index % 2 == 0 else trio[::-1]
        timeline = ansible.run(
            f"task-vs-stat-{connection}", [play("task vs stat", "target", tasks)], inventory({"target": host})
        )
        routed = ws_routes(sandbox)
    unchanged = [r for r in timeline.results("ws ") if r["status"] == "ok" and not r["changed"]]
    if len(unchanged) != pairs or not routed or "mqtt/ws" not in routed:
        raise AssertionError(f"ws_location was not unchanged on every measured run ({timeline.log}); route {routed}")
    spans = dict(timeline.spans())
    ws = [spans[f"ws {i}"] for i in range(pairs)]
    stat = [spans[f"stat {i}"] for i in range(pairs)]
    read = [spans[f"read {i}"] for i in range(pairs)]
    ratios = [w / s for w, s in zip(ws, stat)]
    return Figure(
        f"task_vs_stat_{connection}",
        median(ratios),
        1.3,
        f"unchanged ws_location task vs stat of the same file, {connection} connection "
        f"(median of {pairs} back-to-back pairs)",
        [
            f"pair ratios: {spread(ratios, unit='')}",
            f"ws_location: {spread(ws)}",
            f"stat: {spread(stat)}",
            f"nginx_file read alone (the one module call ws_location makes, with nginx -T): {spread(read)}; "
            f"ws_location / read: {median([w / r for w, r in zip(ws, read)]):.2f}",
            f"site: generated, {site_lines} lines",
        ],
    )


# --------------------------------------------------------------------------- role vs builtin


def role_play(name: str, host: str) -> Dict[str, Any]:
    role = {
        "role": "agaii.nginx.ws_proxy",
        "vars": {
            "ws_proxy_site": "{{ bench_site }}",
            "ws_proxy_nginx_conf": "{{ bench_conf }}",
            "ws_proxy_nginx_binary": "{{ bench_nginx }}",
            "ws_proxy_reload_method": "signal",
        },
    }
    return play(name, host, roles=[role])


def builtin_play(name: str, host: str) -> Dict[str, Any]:
    tasks = [
        task(
            "Map $http_upgrade to $connection_upgrade",
            "ansible.builtin.blockinfile",
            {
                "path": "{{ bench_root }}/conf.d/websocket-map.conf",
                "create": True,
                "mode": "0644",
                "marker": "# {mark} ANSIBLE MANAGED BLOCK websocket map",
                "block": MAP_BLOCK,
            },
            notify="Reload nginx",
        ),
        task(
            "WebSocket location before location /api/",
            "ansible.builtin.blockinfile",
            {
                "path": "{{ bench_site_real }}",
                "insertbefore": r"^\s*location /api/ \{",
                "marker": "    # {mark} ANSIBLE MANAGED BLOCK websocket location",
                "block": LOCATION_BLOCK.format(upstream=UNUSED_UPSTREAM).rstrip("\n"),
            },
            notify="Reload nginx",
        ),
        task(
            "Test the nginx configuration",
            "ansible.builtin.command",
            {"argv": ["{{ bench_nginx }}", "-t", "-c", "{{ bench_conf }}"]},
            changed_when=False,
        ),
    ]
    handlers = [
        task(
            "Reload nginx",
            "ansible.builtin.command",
            {"argv": ["{{ bench_nginx }}", "-c", "{{ bench_conf }}", "-s", "reload"]},
        )
    ]
    return play(name, host, tasks, handlers=handlers)


def role_vs_builtin(ansible: Ansible, pairs: int) -> Figure:
    """Unchanged runs of the role and of the blockinfile play, as alternating plays on one machine."""
    with sandboxes(2, incident_site, start=True) as (role_box, builtin_box):
        hosts = {"role_host": host_for(role_box), "builtin_host": host_for(builtin_box)}
        plays = [
            role_play("warm-up role (fixes)", "role_host"),
            builtin_play("warm-up builtin (fixes)", "builtin_host"),
        ]
        for index in range(pairs):
            pair = [role_play(f"role {index}", "role_host"), builtin_play(f"builtin {index}", "builtin_host")]
            plays += pair if index % 2 == 0 else pair[::-1]
        timeline = ansible.run("role-vs-builtin", plays, inventory(hosts))
        routes = (ws_routes(role_box), ws_routes(builtin_box))
    measured = [(name, results) for name, results in timeline.results_by_play() if not name.startswith("warm-up")]
    changed = [name for name, results in measured if any(r["changed"] for r in results)]
    if not all(route and "mqtt/ws" in route for route in routes):
        raise AssertionError(f"a play did not fix routing: {routes}")
    plays_timed = dict(timeline.plays())
    role = [plays_timed[f"role {i}"] for i in range(pairs)]
    builtin = [plays_timed[f"builtin {i}"] for i in range(pairs)]
    ratios = [r / b for r, b in zip(role, builtin)]
    if changed:
        raise AssertionError(f"measured plays {changed} were not unchanged ({timeline.log})")
    role_results = next(results for name, results in measured if name.startswith("role "))
    ran = sum(1 for r in role_results if r["status"] != "skipped")
    return Figure(
        "role_vs_builtin_equivalent",
        median(ratios),
        1.0,
        f"unchanged ws_proxy role run vs blockinfile x2 + nginx -t + handler (median of {pairs} back-to-back pairs)",
        [
            f"pair ratios: {spread(ratios, unit='')}",
            f"role: {spread(role)}",
            f"blockinfile play: {spread(builtin)}",
            f"role: {ran} tasks ran, {len(role_results) - ran} skipped; blockinfile play: 3 tasks ran",
        ],
    )


# --------------------------------------------------------------------------- fleet


FIX_PLAYBOOK = REPO / "playbooks" / "fix_websocket.yml"


def fix_playbook() -> Tuple[List[Dict[str, Any]], str]:
    """The collection's fix playbook (playbooks/fix_websocket.yml), else the same role on all hosts."""
    if FIX_PLAYBOOK.exists():
        return [{"import_playbook": str(FIX_PLAYBOOK)}], "playbooks/fix_websocket.yml"
    return [play("Fix WebSocket proxying through nginx", "all", roles=["agaii.nginx.ws_proxy"])], "ws_proxy on all"


def fleet_host(sandbox: NginxSandbox) -> Dict[str, Any]:
    """A fleet member: an alias of this machine (local connection) with its own sandbox and nginx."""
    return host_for(
        sandbox,
        ansible_become=False,
        ws_proxy_site=str(sandbox.path("sites-enabled/app")),
        ws_proxy_nginx_conf=str(sandbox.conf),
        ws_proxy_nginx_binary=sandbox.nginx_bin,
        ws_proxy_reload_method="signal",
    )


def fleet(ansible: Ansible, runs: List[int], log: Log) -> Figure:
    """The fix playbook on broken sites: 1 host and ``max(runs)`` hosts, forks 10; per-host play time compared."""
    largest = max(runs)
    playbook, which = fix_playbook()
    log(f"fleet: starting {largest} private nginx sandboxes ...")
    with sandboxes(largest, incident_site, start=True) as boxes:
        names = [f"h{index:02d}" for index in range(1, largest + 1)]
        hosts = {name: fleet_host(box) for name, box in zip(names, boxes)}
        per_host: Dict[int, List[float]] = {}
        walls: Dict[int, List[float]] = {}
        for count in runs:
            for box in boxes:  # back to the broken state: the incident's site, no map
                box.write("sites-available/app", incident_site(box))
                for stale in box.path("conf.d").iterdir():
                    stale.unlink()
            log(f"fleet: {which} on {count} host(s), forks 10 ...")
            chosen = dict(list(hosts.items())[:count])
            timeline = ansible.run(f"fleet-{count}", playbook, inventory(chosen), forks=10)
            fixed = {r["host"] for r in timeline.results() if "the WebSocket location" in r["name"] and r["changed"]}
            if len(fixed) != count:
                raise AssertionError(f"the fix changed {len(fixed)} of {count} hosts ({timeline.log})")
            ((_name, seconds),) = timeline.plays()
            per_host.setdefault(count, []).append(seconds / count)
            walls.setdefault(count, []).append(timeline.wall / count)
        if not all(ws_routes(box) for box in boxes[:1]):
            raise AssertionError("the fix did not route the WebSocket path")
    one, many = per_host[1], per_host[largest]
    return Figure(
        f"fleet_per_host_{largest}_vs_1",
        median(many) / median(one),
        1.2,
        f"per-host play time of {which} (broken sites, fixed and reloaded) on {largest} hosts, forks 10, "
        "vs on 1 host (median of runs)",
        [
            f"1 host: {spread(one)} per host",
            f"{largest} hosts: {spread(many)} per host",
            f"with ansible-playbook start-up (wall / hosts): 1 host {median(walls[1]):.2f}s, "
            f"{largest} hosts {median(walls[largest]):.2f}s",
        ],
    )


def fleet_runs(quick: bool, hosts: int = 50) -> List[int]:
    return [1, hosts, 1] if quick else [1, hosts, 1, hosts, 1, hosts, 1]


def ssh_figure(ansible: Ansible, workdir: Path, pairs: int, site_lines: int, log: Log) -> Tuple[Figure, str]:
    from bench.sshd import LoopbackSshd, ensure_sshd

    available, how = ensure_sshd(log)
    if not available:
        return Figure("task_vs_stat_ssh", None, 1.3, "over SSH on loopback", skipped=how), how
    sshd = LoopbackSshd(workdir / "sshd")
    try:
        sshd.start()
    except (OSError, RuntimeError, TimeoutError, subprocess.SubprocessError) as error:
        sshd.stop()
        why = f"could not start a private sshd on 127.0.0.1: {error}"
        return Figure("task_vs_stat_ssh", None, 1.3, "over SSH on loopback", skipped=why), why
    log(f"ssh: private sshd on 127.0.0.1:{sshd.port} (pid {sshd.process.pid if sshd.process else '?'})")
    try:
        figure = task_vs_stat(ansible, "ssh", pairs, site_lines, sshd.host_vars())
    finally:
        ansible.close_ssh_masters()
        sshd.stop()
    return figure, how
