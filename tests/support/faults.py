"""Filesystem and process faults for the reliability tests: small tmpfs mounts, read-only remounts,
full filesystems, an unprivileged user, and module runs that can be killed.

Everything mounted here is unmounted (and its mount point removed) when the ``with`` block ends,
even when the test fails. Mounting needs root: call :func:`require_root` first, which skips with a
clear reason otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest

ROOT_REASON = "needs root: mounts a tmpfs (mount -t tmpfs, mount -o remount,ro) or switches to an unprivileged user"
UNPRIVILEGED_USER = "nobody"
FILLER_NAME = ".agaii-filler"


def is_root() -> bool:
    return os.geteuid() == 0


def require_root() -> None:
    """Skip the calling test, with the reason, unless it runs as root."""
    if not is_root():
        pytest.skip(ROOT_REASON)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    if result.returncode != 0:
        raise OSError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")


def is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def unmount(path: Path) -> None:
    """Unmount ``path``; fall back to a lazy unmount when it is busy."""
    if not is_mountpoint(path):
        return
    try:
        _run(["umount", str(path)])
    except OSError:
        _run(["umount", "-l", str(path)])


@contextlib.contextmanager
def tmpfs_on(directory: Path, size: str = "1m", mode: int = 0o755) -> Iterator[Path]:
    """Mount a fresh tmpfs of ``size`` over the existing ``directory`` (hiding what it held) for the block."""
    _run(["mount", "-t", "tmpfs", "-o", f"size={size},mode={mode:o}", "tmpfs", str(directory)])
    try:
        yield directory
    finally:
        unmount(directory)


@contextlib.contextmanager
def tmpfs(size: str = "1m", mode: int = 0o755, base: Optional[Path] = None) -> Iterator[Path]:
    """A fresh tmpfs of ``size`` mounted on a new directory; unmounted and removed afterwards."""
    mountpoint = Path(tempfile.mkdtemp(prefix="agaii-tmpfs-", dir=base))
    try:
        with tmpfs_on(mountpoint, size, mode):
            yield mountpoint
    finally:
        with contextlib.suppress(OSError):
            mountpoint.rmdir()


def remount(mountpoint: Path, readonly: bool) -> None:
    _run(["mount", "-o", "remount,ro" if readonly else "remount,rw", str(mountpoint)])


@contextlib.contextmanager
def readonly(mountpoint: Path) -> Iterator[Path]:
    """Remount ``mountpoint`` read-only for the block, then read-write again."""
    remount(mountpoint, readonly=True)
    try:
        yield mountpoint
    finally:
        remount(mountpoint, readonly=False)


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` with one dot-file until it reports ENOSPC; return that file."""
    filler = directory / FILLER_NAME
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 1):
            _write_until_full(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def _write_until_full(fd: int, chunk: bytes) -> None:
    try:
        while os.write(fd, chunk) == len(chunk):
            pass
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int


def unprivileged_user(name: str = UNPRIVILEGED_USER) -> User:
    entry = pwd.getpwnam(name)
    return User(name, entry.pw_uid, entry.pw_gid)


def demote(user: User) -> Callable[[], None]:
    """A ``preexec_fn`` that drops to ``user`` (groups, gid, uid) in the child."""

    def switch() -> None:
        os.setgroups([])
        os.setgid(user.gid)
        os.setuid(user.uid)

    return switch


TRAVERSE = 0o001  # search (x) permission for others on a directory
LIST = 0o004  # read (list) permission for others on a directory


def chmod_tree(path: Path, add: int) -> None:
    """Add permission bits to ``path`` and every directory above it up to ``/`` (traversal for users)."""
    for current in (path, *path.parents):
        mode = stat.S_IMODE(current.stat().st_mode)
        if mode & add != add:
            current.chmod(mode | add)


# --------------------------------------------------------------------------- running a module file


@dataclass
class ModuleRun:
    """One run of an Ansible module file as a plain process (the way AnsiballZ ends up running it)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def result(self) -> Optional[Dict[str, Any]]:
        """The module's JSON result, or None when it printed none (it crashed or was killed)."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    parsed: Dict[str, Any] = json.loads(line)
                    return parsed
        return None


SYSTEM_PYTHON = Path("/usr/bin/python3")
COLLECTIONS_ROOT = Path(__file__).resolve().parents[2] / ".build" / "collections"


def module_argv(module_file: Path, args: Mapping[str, Any], workdir: Path, python: str) -> list[str]:
    """``python <module> <args.json>``: the module reads its arguments from the file (legacy profile)."""
    args_file = Path(tempfile.mkstemp(prefix="args-", suffix=".json", dir=workdir)[1])
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args)}))
    args_file.chmod(0o644)
    return [python, str(module_file), str(args_file)]


def interpreter_for(user: Optional[User]) -> tuple[str, Dict[str, str]]:
    """The Python to run a module with, and extra environment.

    The collection root is on PYTHONPATH, so that the module finds this collection's module_utils (which
    AnsiballZ would ship with it). As root: this interpreter. As ``user``: the system's python3 with this
    environment's site-packages on PYTHONPATH too (a virtualenv's interpreter may live under an unreadable
    home directory).
    """
    if user is None:
        return sys.executable, {"PYTHONPATH": str(COLLECTIONS_ROOT)}
    site_packages = [path for path in sys.path if path.endswith("site-packages") and os.path.isdir(path)]
    return str(SYSTEM_PYTHON), {"PYTHONPATH": os.pathsep.join([str(COLLECTIONS_ROOT), *site_packages]), "HOME": "/tmp"}


def start_module(
    module_file: Path,
    args: Mapping[str, Any],
    workdir: Path,
    user: Optional[User] = None,
    env: Optional[Mapping[str, str]] = None,
) -> subprocess.Popen[str]:
    """Start the module file in its own process (optionally as ``user``); the caller waits or kills it."""
    python, python_env = interpreter_for(user)
    if user is not None:  # the checkout may sit in a private directory (a clone in a mktemp -d): let it in
        for directory in (module_file.parent, *python_env["PYTHONPATH"].split(os.pathsep)):
            chmod_tree(Path(directory), TRAVERSE)
        # Python's importer lists a package directory to find what is in it: the checkout (the collection
        # agaii.nginx, through .build/collections) must be listable too, not only traversable
        collection = (COLLECTIONS_ROOT / "ansible_collections" / "agaii" / "nginx").resolve()
        collection.chmod(stat.S_IMODE(collection.stat().st_mode) | LIST | TRAVERSE)
    return subprocess.Popen(
        module_argv(module_file, args, workdir, python),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workdir,
        env={**os.environ, **python_env, **(env or {})},
        preexec_fn=demote(user) if user is not None else None,
        start_new_session=True,  # its own process group: kill_group() takes nginx -t down with it
    )


def run_module(
    module_file: Path,
    args: Mapping[str, Any],
    workdir: Path,
    user: Optional[User] = None,
    env: Optional[Mapping[str, str]] = None,
    timeout: float = 120.0,
) -> ModuleRun:
    popen = start_module(module_file, args, workdir, user=user, env=env)
    try:
        stdout, stderr = popen.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        stdout, stderr = popen.communicate()
    return ModuleRun(popen.returncode, stdout, stderr)


def kill_group(popen: subprocess.Popen[str]) -> None:
    """SIGKILL the process and every process it started (its process group), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.communicate()


def slow_wrapper(directory: Path, binary: str, delay: float, name: str = "slow-nginx") -> Path:
    """An executable that sleeps ``delay`` seconds, then runs ``binary`` with the same arguments."""
    script = directory / name
    script.write_text(f'#!/bin/sh\nsleep {delay}\nexec {binary} "$@"\n')
    script.chmod(0o755)
    return script
