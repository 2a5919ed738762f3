# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the editing actions share: one read of the target through ``agaii.nginx.nginx_file``, the
transactional write, and task results. PRIVATE to the collection.

The target runs only ``nginx_file``; everything here runs on the controller.
"""

from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.agaii.nginx.plugins.module_utils._nginx_file_protocol import (
    READ,
    STATUS,
    WRITE,
    sha256_hex,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import glob_match

WRITE_ATTEMPTS = 3  # a file changed between read and write is read and planned again, this many times

RunTarget = Callable[[Dict[str, Any]], Dict[str, Any]]


class TaskFailed(Exception):
    """Stop the task with ``msg`` and extra result keys."""

    def __init__(self, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.result: Dict[str, Any] = {"failed": True, "changed": False, "msg": msg, **extra}


@dataclass(frozen=True)
class Snapshot:
    """What one read of the target returned: the file as nginx loads it, its bytes, and the dump."""

    path: str
    realpath: str
    data: bytes
    sha256: str
    dump: bytes


def loaded_name(path: str, realpath: str, dump_realpaths: Dict[str, str], nginx_conf: str) -> str:
    """The name nginx loaded ``path`` by: itself, else the dumped file with the same real path."""
    wanted = posixpath.normpath(path)
    if wanted in dump_realpaths:
        return wanted
    for name, real in dump_realpaths.items():
        if real == realpath:
            return name
    raise TaskFailed(
        f"{path} is not loaded by nginx: `nginx -T -c {nginx_conf}` lists neither it nor a link to "
        f"{realpath}. Enable the site (link it into sites-enabled/) or set nginx_conf; nothing was changed."
    )


def refuse_failing_config(read: Dict[str, Any], nginx_conf: str, path: str) -> None:
    if read.get("nginx_rc") != 0:
        raise TaskFailed(
            f"nginx -t already fails on {nginx_conf}, so {path} was left untouched: "
            f"{read.get('nginx_error', 'no message')}. Fix the configuration first.",
            nginx_stderr=read.get("nginx_stderr", ""),
        )


def refuse_backup_dir_inside_config(args: Dict[str, Any], dump_realpaths: Dict[str, str]) -> None:
    """A backup in a directory nginx loads files from (sites-enabled/, conf.d/) would be loaded too."""
    backup_dir = posixpath.normpath(args["backup_dir"])
    loaded = sorted(name for name in dump_realpaths if posixpath.dirname(name) == backup_dir)
    if args["backup"] and loaded:
        raise TaskFailed(
            f"backup_dir {backup_dir} holds files nginx loads ({', '.join(loaded)}), so nginx would load the "
            "backup too. Choose a directory outside every nginx include, such as /var/backups/nginx; "
            "nothing was changed."
        )


def refuse_backup_dir_under_include(args: Dict[str, Any], include_patterns: Sequence[str]) -> None:
    """Refuse a backup_dir an ``include`` glob reaches: nginx would load the backups in it (even when it is
    empty now), or, when the glob matches the directory itself or one above it, fail reading a directory."""
    if not args["backup"]:
        return
    backup_dir = posixpath.normpath(args["backup_dir"])
    for pattern in include_patterns:
        if any(ch in pattern for ch in "*?[") and _glob_reaches(pattern, backup_dir):
            raise TaskFailed(
                f"backup_dir {backup_dir} is a directory nginx loads files from (include {pattern}), so nginx "
                "would load the backups or fail on the directory. Choose a directory outside every nginx "
                "include, such as /var/backups/nginx; nothing was changed."
            )


def _glob_reaches(pattern: str, directory: str) -> bool:
    if glob_match(posixpath.dirname(pattern), directory):
        return True
    while directory not in ("/", ""):
        if glob_match(pattern, directory):
            return True
        directory = posixpath.dirname(directory)
    return False


def failure_message(result: Dict[str, Any], fallback: str) -> str:
    """Why a target call failed: its ``msg``, or for a crashed module the last line of its traceback."""
    msg = str(result.get("msg") or "").strip()
    crash = str(result.get("exception") or result.get("module_stderr") or "").strip()
    if crash and (not msg or msg.startswith("MODULE FAILURE")):
        return f"{fallback}: {crash.splitlines()[-1]}"
    return msg or fallback


def snapshot_from(read: Dict[str, Any], path: str, args: Dict[str, Any]) -> Snapshot:
    if read.get("failed"):
        raise TaskFailed(failure_message(read, f"reading {path} on the managed node failed"))
    if not read.get("exists"):
        raise TaskFailed(f"{path} does not exist on the managed node; nothing was changed.")
    refuse_failing_config(read, args["nginx_conf"], path)
    refuse_backup_dir_inside_config(args, read.get("dump_realpaths") or {})
    stat = read["stat"]
    name = loaded_name(path, stat["realpath"], read.get("dump_realpaths") or {}, args["nginx_conf"])
    data = base64.b64decode(read["content"])
    return Snapshot(name, stat["realpath"], data, sha256_hex(data), base64.b64decode(read["dump"]))


def read_snapshot(run: RunTarget, path: str, args: Dict[str, Any]) -> Snapshot:
    """One round trip: the file's bytes and stat, and the ``nginx -T`` dump."""
    read = run(
        {"operation": READ, "path": path, "nginx_binary": args["nginx_binary"], "nginx_conf": args["nginx_conf"]}
    )
    return snapshot_from(read, path, args)


def write_file(
    run: RunTarget, realpath: str, data: bytes, expected_sha256: str, args: Dict[str, Any]
) -> Dict[str, Any]:
    """Write under the target's lock, refusing a changed file; validate with nginx -t, undo on failure."""
    return run(
        {
            "operation": WRITE,
            "path": realpath,
            "content": base64.b64encode(data).decode("ascii"),
            "expected_sha256": expected_sha256,
            "backup": args["backup"],
            "backup_dir": args["backup_dir"],
            "validate": args["validate"],
            "nginx_binary": args["nginx_binary"],
            "nginx_conf": args["nginx_conf"],
        }
    )


def read_status(run: RunTarget, pid_file: Optional[str], error_logs: List[str], tail_bytes: int) -> Dict[str, Any]:
    """One round trip, read-only and bounded: the pid file, its process name, the tails of the error logs."""
    status = run({"operation": STATUS, "pid_file": pid_file, "error_logs": error_logs, "tail_bytes": tail_bytes})
    if status.get("failed"):
        raise TaskFailed(status.get("msg", "reading nginx's status on the managed node failed"))
    return status


def write_failure(write: Dict[str, Any], outcome: Dict[str, Any]) -> TaskFailed:
    details = {key: write[key] for key in ("nginx_error", "nginx_stderr", "restored", "backup_file") if key in write}
    kept = {key: outcome[key] for key in ("path", "realpath", "servers", "sample_uri", "variable") if key in outcome}
    return TaskFailed(failure_message(write, "the write on the managed node failed"), **kept, **details)


def as_display_text(data: bytes) -> str:
    """Text for the diff only; bytes that are not UTF-8 are shown escaped, never written back."""
    return data.decode("utf-8", "backslashreplace")


def file_diff(path: str, before: bytes, after: bytes, created: bool = False) -> Dict[str, str]:
    return {
        "before": "" if created else as_display_text(before),
        "after": as_display_text(after),
        "before_header": "/dev/null" if created else path,
        "after_header": path,
    }


def too_many_changes(path: str) -> TaskFailed:
    return TaskFailed(
        f"{path} changed on the managed node between every read and write ({WRITE_ATTEMPTS} attempts); "
        "nothing was written. Is another tool editing it?"
    )
