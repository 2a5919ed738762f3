"""``bench/run --quick --json`` runs end to end and prints one JSON object: every figure, as a number.

Only the shape of the output is checked. How fast anything is belongs in the benchmark's own table
(docs/benchmarks.md), never in a test: the suite runs on shared machines where timings are noise.
The large fleet is 5 hosts here instead of 50 (``--fleet-hosts 5``): the figure keeps its key and its
method, and the suite does not spend minutes on a number it does not judge.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from tests.support.pytest_fixtures import REPO_ROOT

pytestmark = [pytest.mark.nginx, pytest.mark.slow, pytest.mark.full]

BENCH = REPO_ROOT / "bench" / "run"
FLEET_HOSTS = 5
KEYS = {
    "plan_vs_parse_10k",
    "plan_vs_parse_100k",
    "plan_scaling_100k_vs_10k",
    "plan_memory_vs_parse_100k",
    "task_vs_stat_local",
    "task_vs_stat_ssh",
    "role_vs_builtin_equivalent",
    f"fleet_per_host_{FLEET_HOSTS}_vs_1",  # fleet_per_host_50_vs_1 with the default 50 hosts
}


def test_quick_json_prints_one_object_with_every_key_as_a_number() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", "--fleet-hosts", str(FLEET_HOSTS)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, done.stdout[-2000:]
    figures = json.loads(lines[0])
    assert isinstance(figures, dict)
    # A figure the machine cannot measure (no sshd and no way to install it) is left out, with its reason
    # on stderr; every other key must be there.
    skipped = {key for key in KEYS if f"skipped {key}:" in done.stderr}
    assert set(figures) == KEYS - skipped, done.stderr[-4000:]
    for key, value in figures.items():
        assert type(value) in (int, float), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
