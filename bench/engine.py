"""The engine against crossplane alone: time and peak memory of load + route + plan + splice.

Both sides get the same generated site file. The baseline is ``crossplane.parse`` of that file with the
options the engine itself uses (``single``, no context or argument checks, no comments). The engine side is
what the ws_location action does on the controller after its one read of the target: ``load`` (with an
``nginx -T`` dump made of a small nginx.conf and the site) and ``plan_websocket`` for the incident's server
(which routes, plans the insertion, splices it and proves the new routing).
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Tuple

from bench.genconf import TARGET_NAME, dump, generate, main_conf
from bench.stats import Figure, best, median, spread

Log = Callable[[str], None]


@dataclass
class Sample:
    """One generated configuration on disk, with the dump the engine loads it with."""

    lines: int
    site: Path
    data: bytes
    dump: bytes


def prepare(workdir: Path, lines: int, log_dir: str) -> Sample:
    workdir.mkdir(parents=True, exist_ok=True)
    site = workdir / f"site-{lines}.conf"
    data = generate(lines, log_dir=log_dir)
    site.write_bytes(data)
    main = workdir / "nginx.conf"
    text = main_conf(str(workdir), str(site))
    main.write_bytes(text)
    return Sample(data.count(b"\n"), site, data, dump({str(main): text, str(site): data}))


def crossplane_parse(sample: Sample) -> object:
    import crossplane

    return crossplane.parse(str(sample.site), single=True, check_ctx=False, check_args=False, comments=False)


def engine_plan(sample: Sample) -> object:
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.plan_location import plan_websocket
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.request import Settings

    path = str(sample.site)
    plan = plan_websocket(load(path, sample.data, sample.dump), path, Settings(server_name=TARGET_NAME))
    if not plan.changed or [s.action for s in plan.servers] != ["inserted"]:
        raise AssertionError(f"unexpected plan for {path}: {[s.as_dict() for s in plan.servers]}")
    return plan


def shape(sample: Sample) -> str:
    """What the generated file holds, for the report."""
    from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import location_match, parse_bytes

    file = parse_bytes(sample.data, str(sample.site), check=False)
    names = Counter(d.name for d in file.walk() if d.block is not None)
    kinds = Counter(location_match(d)[0] or "prefix" for d in file.walk() if d.name == "location")
    comments = sum(1 for line in sample.data.splitlines() if line.lstrip().startswith(b"#"))
    locations = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    return (
        f"{sample.lines} lines, {len(sample.data) // 1024} KiB: {names['server']} server blocks, "
        f"{names['upstream']} upstreams, {names['map']} maps, {names['if']} ifs, {comments} comment lines; "
        f"locations: {locations}"
    )


def timed(fn: Callable[[], object]) -> Tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call, garbage from earlier runs collected first."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    del result
    return cpu, wall


@dataclass
class Pair:
    """One crossplane.parse and one engine run of the same file, back to back (in alternating order)."""

    parse_cpu: float
    plan_cpu: float
    parse_wall: float
    plan_wall: float

    @property
    def ratio(self) -> float:
        return self.plan_cpu / self.parse_cpu


def pair(sample: Sample, plan_first: bool) -> Pair:
    if plan_first:
        plan_cpu, plan_wall = timed(lambda: engine_plan(sample))
        parse_cpu, parse_wall = timed(lambda: crossplane_parse(sample))
    else:
        parse_cpu, parse_wall = timed(lambda: crossplane_parse(sample))
        plan_cpu, plan_wall = timed(lambda: engine_plan(sample))
    return Pair(parse_cpu, plan_cpu, parse_wall, plan_wall)


def measure(small: Sample, large: Sample, rounds: int, small_pairs: int) -> Tuple[List[Pair], List[Pair], List[float]]:
    """Rounds of ``small_pairs`` pairs at 10k lines, one pair at 100k, ``small_pairs`` more at 10k.

    Returns the 10k pairs, the 100k pairs, and for each round the engine's 100k time over the mean of
    its 10k times in that same round (so a burst of load on the machine hits both sides of each ratio).
    """
    pair(small, False), pair(large, True)  # warm-up: imports, regex caches, allocator
    smalls: List[Pair] = []
    larges: List[Pair] = []
    scaling: List[float] = []
    flip = False
    for _round in range(rounds):
        around: List[Pair] = []
        for half in range(2):
            for _pair in range(small_pairs):
                flip = not flip
                around.append(pair(small, flip))
            if half == 0:
                flip = not flip
                larges.append(pair(large, flip))
        smalls += around
        scaling.append(larges[-1].plan_cpu / statistics.mean(p.plan_cpu for p in around))
    return smalls, larges, scaling


def peak_memory(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _current, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    gc.collect()
    return peak


def nginx_accepts(sample: Sample) -> str:
    """``nginx -t`` on the generated site in a sandbox: the configuration must be one nginx loads."""
    from tests.support.nginx_sandbox import NginxSandbox, find_nginx

    if find_nginx() is None:
        return "nginx -t not run (nginx missing)"
    with NginxSandbox() as sandbox:
        sandbox.write_site("generated", sample.data.replace(b"/var/log/nginx", str(sandbox.root / "logs").encode()))
        result = sandbox.test()
        if result.returncode != 0:
            raise AssertionError(f"nginx rejects the generated configuration:\n{result.stderr[-2000:]}")
    return "nginx -t accepts it"


def ratio_figure(key: str, sample: Sample, pairs: List[Pair]) -> Figure:
    ratios = [p.ratio for p in pairs]
    wall = best([p.plan_wall for p in pairs]) / best([p.parse_wall for p in pairs])
    return Figure(
        key,
        median(ratios),
        1.5,
        f"load + route + plan + splice vs crossplane.parse, {sample.lines} lines "
        f"(CPU time, median of {len(pairs)} back-to-back pairs)",
        [
            f"pair ratios: {spread(ratios, unit='')}",
            f"crossplane.parse CPU: {spread([p.parse_cpu for p in pairs])}",
            f"engine CPU: {spread([p.plan_cpu for p in pairs])}",
            f"wall-clock: ratio of the best times {wall:.2f}",
            shape(sample),
        ],
    )


def figures(workdir: Path, quick: bool, log: Log) -> List[Figure]:
    rounds, small_pairs = (3, 2) if quick else (7, 3)
    small = prepare(workdir / "engine", 10_000, "/var/log/nginx")
    large = prepare(workdir / "engine", 100_000, "/var/log/nginx")
    for sample in (small, large):
        log(f"engine: {shape(sample)}; {nginx_accepts(sample)}")
    log(f"engine: {rounds} rounds of {2 * small_pairs} pairs at 10k lines around one pair at 100k ...")
    smalls, larges, scaling = measure(small, large, rounds, small_pairs)
    out = [ratio_figure("plan_vs_parse_10k", small, smalls), ratio_figure("plan_vs_parse_100k", large, larges)]
    parse_scaling = [b.parse_cpu / statistics.mean(p.parse_cpu for p in smalls) for b in larges]
    out.append(
        Figure(
            "plan_scaling_100k_vs_10k",
            median(scaling),
            11.0,
            f"engine CPU time at {large.lines} lines / at {small.lines} lines (median of {rounds} rounds)",
            [
                f"per round: {spread(scaling, unit='')}",
                f"crossplane.parse alone, same runs: {median(parse_scaling):.2f}x",
            ],
        )
    )
    log("engine: peak memory (tracemalloc), 100k lines ...")
    parse_peak = peak_memory(lambda: crossplane_parse(large))
    plan_peak = peak_memory(lambda: engine_plan(large))
    out.append(
        Figure(
            "plan_memory_vs_parse_100k",
            plan_peak / parse_peak,
            2.0,
            "tracemalloc peak of load + plan vs of crossplane.parse, 100k lines",
            [f"crossplane.parse peak {parse_peak / 2**20:.1f} MiB, engine peak {plan_peak / 2**20:.1f} MiB"],
        )
    )
    return out
