"""Faults on a real nginx: the write path of ``nginx_file`` (and the actions above it) when things go wrong.

- ``nginx -t`` fails after the write: the original bytes come back, every time (``AGAII_RESTORE_RUNS``,
  default 100), and a new file is removed again;
- the file changes between read and write: the write is refused and the other writer's bytes stay
  (module level), and the action plans again on the new bytes instead of overwriting them;
- permission denied, read-only filesystem, no space left (config filesystem, backup filesystem, the
  module's temporary directory, Ansible's remote temporary directory): nothing is written, no partial or
  temporary file is left;
- the module killed with SIGKILL at random points (``AGAII_KILL_RUNS``, default 50): the file is always
  the old or the new bytes;
- backups never land where an nginx include loads them.

Every refusal says what happened and that nothing was written (the module's own message, shown by the action).
"""

from __future__ import annotations

import base64
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from tests.reliability.conftest import Figures
from tests.reliability.harness import (
    NGINX_FILE_MODULE,
    Playbooks,
    converge,
    message,
    module_case,
    run_nginx_file,
    write_request,
)
from tests.reliability.workspace import incident_site
from tests.support.faults import (
    ROOT_REASON,
    SYSTEM_PYTHON,
    chmod_tree,
    fill,
    is_root,
    kill_group,
    readonly,
    run_module,
    slow_wrapper,
    start_module,
    tmpfs,
    tmpfs_on,
    unprivileged_user,
)
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = pytest.mark.nginx
needs_root = pytest.mark.skipif(not is_root(), reason=ROOT_REASON)

RESTORE_RUNS = int(os.environ.get("AGAII_RESTORE_RUNS", "100"))
KILL_RUNS = int(os.environ.get("AGAII_KILL_RUNS", "50"))
WATCHED_DIRS = ("sites-available", "sites-enabled", "conf.d")
# Each one makes `nginx -t` fail once it is in the server block.
BREAKAGES = (
    b"    bogus_directive on;\n",
    b"    add_header X-Unknown $no_such_variable;\n",
    b"    location /api/ {\n        return 204;\n    }\n",
    b"    server {\n    }\n",
    b'    return 200 "unterminated;\n',
    b"    listen 127.0.0.1:1 default_server;\n    listen 127.0.0.1:1 default_server;\n",
)


@dataclass
class Site:
    sandbox: NginxSandbox
    real: Path
    link: Path
    original: bytes

    @property
    def conf(self) -> str:
        return str(self.sandbox.conf)

    def listing(self) -> Dict[str, List[str]]:
        return {sub: sorted(os.listdir(self.sandbox.path(sub))) for sub in WATCHED_DIRS}

    def temp_files(self) -> List[str]:
        return [name for sub in WATCHED_DIRS for name in os.listdir(self.sandbox.path(sub)) if name.startswith(".")]


@pytest.fixture
def site(nginx_sandbox: NginxSandbox) -> Site:
    real = nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    return Site(nginx_sandbox, real, nginx_sandbox.path("sites-enabled/app"), real.read_bytes())


def write_args(site: Site, path: Path, old: Optional[bytes], new: bytes, **options: Any) -> Dict[str, Any]:
    return write_request(path, old, new, site.conf, **options)


def broken(original: bytes, index: int) -> bytes:
    """``original`` with one breakage inside its server block (a different one each time)."""
    cut = original.rindex(b"}")
    return original[:cut] + BREAKAGES[index % len(BREAKAGES)] + original[cut:]


# --------------------------------------------------------------------------- nginx -t fails after the write


def test_failed_nginx_t_restores_the_original_bytes_every_time(site: Site, figures: Figures) -> None:
    listing, restored, messages = site.listing(), 0, Counter()
    for index in range(RESTORE_RUNS):
        path = site.link if index % 2 else site.real
        result = run_nginx_file(write_args(site, path, site.original, broken(site.original, index)))
        assert (result["failed"], result["restored"], result["changed"]) == (True, True, False), result
        assert result["msg"].startswith(f"nginx -t failed after writing {site.real}, so the module restored")
        assert site.real.read_bytes() == site.original
        assert site.link.is_symlink() and os.readlink(site.link) == str(site.real)
        assert site.listing() == listing
        restored += 1
        messages[result["nginx_error"].split(" in /")[0]] += 1
    assert site.sandbox.test().returncode == 0
    figures.record("faults: nginx -t fails after the write", "writes", RESTORE_RUNS)
    figures.record("faults: nginx -t fails after the write", "original bytes restored", restored)
    figures.record("faults: nginx -t fails after the write", "nginx errors", dict(messages))


def test_failed_nginx_t_removes_a_new_file_again(site: Site, figures: Figures) -> None:
    listing, removed = site.listing(), 0
    for index in range(20):
        new = site.sandbox.path(f"conf.d/new-{index}.conf")
        result = run_nginx_file(write_args(site, new, None, b"bogus_directive on;\n"))
        assert (result["failed"], result["restored"]) == (True, True), result
        assert not new.exists() and site.listing() == listing
        removed += 1
    figures.record("faults: nginx -t fails after the write", "new files removed again", removed)


# --------------------------------------------------------------------------- the file changes between read and write

OTHER_WRITERS = {
    "appends a line": lambda site: site.real.write_bytes(site.original + b"# edited by someone else\n"),
    "rewrites it": lambda site: site.real.write_bytes(site.original.replace(b"/api/", b"/v2/")),
    "empties it": lambda site: site.real.write_bytes(b""),
    "deletes it": lambda site: site.real.unlink(),
    "replaces it by rename": lambda site: _replace_by_rename(site),  # pylint: disable=unnecessary-lambda  # defined below
}


def _replace_by_rename(site: Site) -> None:
    other = site.real.with_name(".other")
    other.write_bytes(site.original + b"# renamed into place\n")
    other.rename(site.real)


def test_change_between_read_and_write_is_refused(site: Site, figures: Figures) -> None:
    refused = 0
    for name, other_writer in OTHER_WRITERS.items():
        site.real.write_bytes(site.original)
        read = run_nginx_file({"operation": "read", "path": str(site.link), "nginx_conf": site.conf})
        other_writer(site)
        theirs = site.real.read_bytes() if site.real.exists() else None
        planned = base64.b64decode(read["content"]) + b"# our edit\n"
        result = run_nginx_file(write_args(site, site.link, base64.b64decode(read["content"]), planned))
        assert (result["failed"], result["stale"], result.get("changed", False)) == (True, True, False), (name, result)
        assert result["msg"].startswith(f"{site.real} changed since it was read"), result["msg"]
        assert (site.real.read_bytes() if site.real.exists() else None) == theirs, name
        refused += 1
    figures.record("faults: file changed between read and write", "kinds of concurrent change", len(OTHER_WRITERS))
    figures.record("faults: file changed between read and write", "writes refused as stale", refused)


def meddling_nginx(directory: Path, site: Path, times: int, nginx: str) -> Path:
    """An nginx wrapper that, on its first ``times`` ``-T`` runs, appends a line to ``site`` (another writer)."""
    counter = directory / "meddled"
    script = directory / "meddling-nginx"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = -T ] && [ "$(wc -l < {counter} 2>/dev/null || echo 0)" -lt {times} ]; then\n'
        f"    echo x >> {counter}\n"
        f"    printf '# edited by someone else\\n' >> {site}\n"
        "fi\n"
        f'exec {nginx} "$@"\n'
    )
    script.chmod(0o755)
    return script


def test_action_plans_again_instead_of_overwriting(site: Site, tmp_path: Path, figures: Figures) -> None:
    once = meddling_nginx(tmp_path, site.real, times=1, nginx=site.sandbox.nginx_bin)
    args = {"path": str(site.link), "nginx_conf": site.conf, "nginx_binary": str(once)}
    result = converge("ws_location", args)
    after = site.real.read_bytes()
    assert (result["failed"], result["changed"]) == (False, True), result
    assert after.endswith(b"# edited by someone else\n") and b"location ~ ^/api/mqtt/ws/ {" in after

    site.real.write_bytes(site.original)
    (tmp_path / "always").mkdir()
    always = meddling_nginx(tmp_path / "always", site.real, times=99, nginx=site.sandbox.nginx_bin)
    result = converge("ws_location", {**args, "nginx_binary": str(always)})
    assert result["failed"] and "changed on the managed node between every read and write" in result["msg"]
    assert site.real.read_bytes() == site.original + b"# edited by someone else\n" * 3  # only theirs
    figures.record("faults: file changed between read and write", "action: re-planned on the new bytes", 1)
    figures.record("faults: file changed between read and write", "action: gave up after 3 changed reads", 1)


# --------------------------------------------------------------------------- permissions, read-only, no space


def assert_nothing_written(site: Site, listing: Dict[str, List[str]]) -> None:
    assert site.real.read_bytes() == site.original
    assert site.link.is_symlink() and os.readlink(site.link) == str(site.real)
    assert site.listing() == listing, "a temporary or partial file was left behind"


@pytest.fixture
def open_workdir() -> Iterator[Path]:
    """A working directory an unprivileged user can read (pytest's tmp_path is 0700)."""
    path = Path(f"/tmp/agaii-reliability-{os.getpid()}-{time.monotonic_ns()}")
    path.mkdir(mode=0o755)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


@needs_root
@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason=f"runs the module as nobody with {SYSTEM_PYTHON}")
def test_permission_denied_writes_nothing(site: Site, open_workdir: Path, figures: Figures) -> None:
    chmod_tree(site.sandbox.root, 0o005)
    listing, user = site.listing(), unprivileged_user()
    new = site.original + b"# edit\n"
    read = run_module(
        NGINX_FILE_MODULE, {"operation": "read", "path": str(site.link), "nginx_conf": site.conf}, open_workdir, user
    )
    write = run_module(NGINX_FILE_MODULE, write_args(site, site.link, site.original, new), open_workdir, user)
    assert read.result is not None and base64.b64decode(read.result["content"]) == site.original
    assert write.returncode != 0
    assert "Permission denied" in write.stdout and "nothing was written" in write.stdout, write.stdout + write.stderr
    assert_nothing_written(site, listing)
    figures.record("faults: permission denied (as nobody)", "write refused, nothing written", 1)
    figures.record("faults: permission denied (as nobody)", "error", last_line(write.stdout + write.stderr))


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


@pytest.fixture
def site_on_tmpfs(site: Site) -> Iterator[Site]:
    """The site's real file (sites-available/) on a small tmpfs of its own."""
    if not is_root():
        pytest.skip(ROOT_REASON)
    with tmpfs_on(site.sandbox.path("sites-available"), size="256k"):
        site.real.write_bytes(site.original)
        site.real.chmod(0o644)
        yield site


def test_read_only_filesystem_writes_nothing(site_on_tmpfs: Site, figures: Figures) -> None:
    site, listing = site_on_tmpfs, site_on_tmpfs.listing()
    with readonly(site.sandbox.path("sites-available")):
        result = run_nginx_file(write_args(site, site.link, site.original, site.original + b"# edit\n"))
        action = converge("ws_location", {"path": str(site.link), "nginx_conf": site.conf})
    assert result["failed"] and "Read-only file system" in message(result), result
    assert action["failed"] and "Read-only file system" in message(action), action
    assert message(result).endswith("nothing was written.") and message(action).endswith("nothing was written.")
    assert_nothing_written(site, listing)
    figures.record("faults: read-only filesystem", "module and action writes refused, nothing written", 2)
    figures.record("faults: read-only filesystem", "module error", message(result))
    figures.record("faults: read-only filesystem", "action error", message(action))


def test_read_only_filesystem_through_ansible(site_on_tmpfs: Site, tmp_path: Path, figures: Figures) -> None:
    site, listing = site_on_tmpfs, site_on_tmpfs.listing()
    tasks = [module_case(0, "agaii.nginx.ws_location", ("path", "nginx_conf"))]
    with readonly(site.sandbox.path("sites-available")):
        run = Playbooks(tmp_path).run(tasks, {"cases": [{"path": str(site.link), "nginx_conf": site.conf}]}, ["case_0"])
    result = run.results["case_0"]
    assert run.returncode == 0 and result["failed"], run.output[-3000:]
    assert "Read-only file system" in result["msg"] and "nothing was written" in result["msg"], result
    assert_nothing_written(site, listing)
    figures.record("faults: read-only filesystem", "through ansible-playbook: error shown", result["msg"])


def test_no_space_on_the_config_filesystem_leaves_no_partial_file(site_on_tmpfs: Site, figures: Figures) -> None:
    site = site_on_tmpfs
    filler = fill(site.sandbox.path("sites-available"))
    listing = site.listing()
    try:
        big = site.original + b"# " + b"x" * 200_000 + b"\n"
        result = run_nginx_file(write_args(site, site.link, site.original, big))
        action = converge("ws_location", {"path": str(site.link), "nginx_conf": site.conf})
        assert result["failed"] and "No space left on device" in message(result), result
        assert action["failed"] and "No space left on device" in message(action), action
        assert_nothing_written(site, listing)
    finally:
        filler.unlink()
    figures.record("faults: no space on the config filesystem", "writes refused, no partial file", 2)
    figures.record("faults: no space on the config filesystem", "module error", message(result))


@needs_root
def test_no_space_on_the_backup_filesystem_keeps_the_config(site: Site, figures: Figures) -> None:
    listing = site.listing()
    with tmpfs(size="64k") as backups:
        fill(backups)
        args = write_args(site, site.link, site.original, site.original + b"# edit\n")
        result = run_nginx_file({**args, "backup": True, "backup_dir": str(backups)})
        assert result["failed"] and "No space left on device" in message(result), result
        assert_nothing_written(site, listing)
        assert [name for name in os.listdir(backups) if not name.startswith(".agaii-filler")] == []
    figures.record("faults: no space on the backup filesystem", "config untouched", 1)


@needs_root
def test_full_temporary_directory_does_not_stop_the_module(site: Site, open_workdir: Path, figures: Figures) -> None:
    """The module writes its temporary file beside the target and locks in /run/lock: TMPDIR may be full."""
    with tmpfs(size="64k") as full_tmp:
        fill(full_tmp)
        new = site.original + b"# edit\n"
        run = run_module(
            NGINX_FILE_MODULE,
            write_args(site, site.link, site.original, new),
            open_workdir,
            env={"TMPDIR": str(full_tmp)},
        )
    assert run.result is not None, run
    assert run.result["changed"] and not run.result.get("failed"), run.result.get("msg")
    assert site.real.read_bytes() == new
    figures.record("faults: no space in the module's TMPDIR", "write succeeded (temp file beside the target)", 1)


@needs_root
def test_full_remote_temporary_directory_writes_nothing(site: Site, tmp_path: Path, figures: Figures) -> None:
    """Ansible cannot even copy the module to a full remote_tmp: the task fails, the file is untouched."""
    listing = site.listing()
    tasks = [module_case(0, "agaii.nginx.ws_location", ("path", "nginx_conf"))]
    with tmpfs(size="64k") as remote_tmp:
        fill(remote_tmp)
        run = Playbooks(tmp_path).run(
            tasks,
            {"cases": [{"path": str(site.link), "nginx_conf": site.conf}]},
            ["case_0"],
            env={"ANSIBLE_REMOTE_TEMP": str(remote_tmp / "ansible")},
        )
    result = run.results.get("case_0") or {}
    assert result.get("failed"), run.output[-3000:]
    assert_nothing_written(site, listing)
    figures.record("faults: no space in Ansible's remote temporary directory", "error", str(result.get("msg"))[:200])


# --------------------------------------------------------------------------- SIGKILL at random points


def test_sigkill_at_random_points_leaves_old_or_new_bytes(site: Site, tmp_path: Path, figures: Figures) -> None:
    """Half the kills land anywhere in the run; half land in the write/validate/restore phase (after the
    module's temporary file appears). nginx -t runs through a wrapper that sleeps, to widen that phase."""
    rng, outcomes = random.Random(8), Counter()
    # 2 MB in short comment lines (nginx refuses one comment longer than its 4 KB buffer: "too long parameter")
    valid = site.original.replace(b"# the API\n", b"# the API, edited\n") + b"# padding padding padding\n" * 80_000
    invalid = broken(site.original, 0)
    nginx = slow_wrapper(tmp_path, site.sandbox.nginx_bin, delay=0.1)
    duration = timed_run(site, tmp_path, valid, nginx)
    for index in range(KILL_RUNS):
        old = site.real.read_bytes()
        new = valid if index % 2 == 0 else invalid
        args = write_args(site, site.link, old, new, nginx_binary=str(nginx))
        process = start_module(NGINX_FILE_MODULE, args, tmp_path)
        where = kill_at_random_point(rng, process, site, duration, in_write_phase=index % 4 >= 2)
        now = site.real.read_bytes()
        assert now in (old, new), f"run {index}: partial file after SIGKILL ({where})"
        outcomes[f"{where}: {describe_kill(now, old, new, valid)}"] += 1
        outcomes[f"temporary files left: {len(site.temp_files())}"] += 1
        remove_temp_files(site)
        assert site.link.is_symlink()
    final = run_nginx_file(write_args(site, site.link, site.real.read_bytes(), site.original))
    assert not final.get("failed") and site.real.read_bytes() == site.original  # the lock was not left held
    figures.record("faults: SIGKILL at random points", "kills", KILL_RUNS)
    figures.record("faults: SIGKILL at random points", "unkilled run (s)", round(duration, 3))
    figures.record("faults: SIGKILL at random points", "outcomes", dict(sorted(outcomes.items())))


def kill_at_random_point(
    rng: random.Random, process: subprocess.Popen[str], site: Site, duration: float, in_write_phase: bool
) -> str:
    """SIGKILL the module (and its nginx) at a random moment; say which kind of moment it was."""
    where = "anywhere"
    if in_write_phase:
        deadline = time.monotonic() + duration * 2
        while not site.temp_files() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        where = "after the write began" if site.temp_files() else "anywhere (write not seen)"
        time.sleep(rng.uniform(0, 0.3))
    else:
        time.sleep(rng.uniform(0, duration * 1.2))
    kill_group(process)
    return where


def timed_run(site: Site, workdir: Path, new: bytes, nginx: Path) -> float:
    """Seconds one unkilled write takes (then the original bytes are put back)."""
    started = time.monotonic()
    run = run_module(
        NGINX_FILE_MODULE, write_args(site, site.link, site.original, new, nginx_binary=str(nginx)), workdir
    )
    elapsed = time.monotonic() - started
    assert run.result is not None and run.result["changed"], run
    site.real.write_bytes(site.original)
    return elapsed


def describe_kill(now: bytes, old: bytes, new: bytes, valid: bytes) -> str:
    if now == old:
        return "old bytes"
    return "new bytes" if new == valid else "new bytes that fail nginx -t (killed before the restore)"


def remove_temp_files(site: Site) -> None:
    for sub in WATCHED_DIRS:
        for name in os.listdir(site.sandbox.path(sub)):
            if name.startswith("."):
                os.unlink(site.sandbox.path(sub) / name)


# --------------------------------------------------------------------------- backups and include globs


def loaded_files(sandbox: NginxSandbox) -> List[str]:
    return sorted(
        line[len("# configuration file ") : -1]
        for line in sandbox.dump().splitlines()
        if line.startswith("# configuration file ")
    )


@pytest.mark.parametrize(
    ("backup_dir", "expect"),
    [
        ("sites-enabled", "refused"),  # nginx loads the site from there
        ("sites-available", "refused"),  # the directory of the real file
        # `include conf.d/*.conf` does not match `app.PID.DATE~` today, but a glob's directory is refused
        # whatever the glob: one edit of the include (`*`) and nginx would load every backup
        ("conf.d", "refused"),
        ("modules-enabled", "refused"),
        ("sites-enabled/old", "refused"),  # `include sites-enabled/*` would read the directory: nginx -t fails
        ("conf.d/old", "written, not loaded"),  # `conf.d/*.conf` does not match the directory `old`
        ("backups", "written, not loaded"),  # a directory no include names
    ],
)
def test_backups_never_land_where_nginx_loads_them(site: Site, backup_dir: str, expect: str, figures: Figures) -> None:
    directory = site.sandbox.path(backup_dir)
    before = loaded_files(site.sandbox)
    args = {"path": str(site.link), "nginx_conf": site.conf, "backup": True, "backup_dir": str(directory)}
    result = converge("ws_location", args)
    if expect == "refused":
        assert (result["failed"], site.real.read_bytes()) == (True, site.original), result
    else:
        assert not result["failed"] and Path(result["backup_file"]).parent == directory, result
    assert loaded_files(site.sandbox) == before
    figures.record("faults: backups and include globs", f"backup_dir {backup_dir}", expect)
