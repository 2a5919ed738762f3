#!/usr/bin/python
# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Target-side helper of the agaii.nginx action plugins: read a site with the nginx -T dump, write it, or read
nginx's process status and error-log tail."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nginx_file
short_description: Read an nginx configuration file with the C(nginx -T) dump, or replace it transactionally
version_added: 0.1.0
description:
  - The target-side helper of the M(agaii.nginx.ws_location) action (and the other editing actions of
    this collection). It needs only Python and nginx on the managed node.
  - O(operation=read) returns, in one call, the exact bytes of O(path), its stat, and the output of
    C(nginx -T -c) O(nginx_conf), with the real path of every file nginx loaded.
  - O(operation=write) replaces O(path) with O(content) under an exclusive lock, but only when the file
    still has the checksum O(expected_sha256) the caller planned against. It writes atomically to the
    symlink target (the link stays a link), keeps owner, mode and SELinux context, optionally keeps a
    backup outside every nginx include glob, then runs C(nginx -t). When that test fails, the original
    bytes are put back (or the new file is removed) and the task fails with nginx's message.
  - O(operation=status) reads, without changing anything, what the diagnosis of M(agaii.nginx.route_info)
    needs from the managed node. That is the pid in O(pid_file), the name of that process, and the last
    O(tail_bytes) of each of O(error_logs). Every read is bounded.
  - Most users do not call this module directly.
author:
  - agaii.nginx contributors (@agaii)
options:
  operation:
    description:
      - V(read) returns the file and the C(nginx -T) dump, V(write) replaces the file, V(status) reads the
        pid file, the process name and the tails of error logs.
    type: str
    choices: [read, write, status]
    required: true
  path:
    description:
      - The configuration file. A symlink is followed; O(operation=write) edits its target.
      - Required with O(operation=read) and O(operation=write).
    type: path
  content:
    description:
      - The new bytes of the file, base64-encoded.
      - Required with O(operation=write).
    type: str
  expected_sha256:
    description:
      - The SHA-256 (hex) of the bytes the new content was computed from.
      - The write is refused, and nothing changes, when the file no longer has this checksum
        (someone else changed it since it was read). The result then has RV(stale=true).
      - V(absent) means the file must not exist yet; the write creates it.
      - Required with O(operation=write).
    type: str
  pid_file:
    description:
      - With O(operation=status), the nginx pid file to read (at most 64 bytes).
    type: path
  error_logs:
    description:
      - With O(operation=status), error logs whose last O(tail_bytes) to return (at most 4).
    type: list
    elements: path
    default: []
  tail_bytes:
    description:
      - With O(operation=status), how many bytes of the end of each error log to return (1 to 1048576).
    type: int
    default: 65536
extends_documentation_fragment:
  - agaii.nginx.nginx
  - agaii.nginx.nginx.edit
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - O(operation=read) and O(operation=status) never change anything and run in check mode.
      - O(operation=write) does nothing in check mode; it reports whether the content differs.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - The lock is an C(flock) on a file in C(/run/lock) (or C(/var/lock), else the system temporary
    directory), named after the SHA-256 of the real path, so it is outside every nginx include glob.
  - Temporary files are created in the directory of the target with a leading dot, which nginx's
    C(include dir/*) skips.
seealso:
  - module: agaii.nginx.ws_location
"""

EXAMPLES = r"""
- name: Read a site together with the nginx -T dump
  agaii.nginx.nginx_file:
    operation: read
    path: /etc/nginx/sites-enabled/app
  register: site

- name: Replace the site if nobody changed it meanwhile, then validate
  agaii.nginx.nginx_file:
    operation: write
    path: /etc/nginx/sites-enabled/app
    content: "{{ new_site_text | b64encode }}"
    expected_sha256: "{{ site.stat.sha256 }}"
    backup: true
"""

RETURN = r"""
exists:
  description: Whether O(path) exists (before a write).
  type: bool
  returned: always
  sample: true
content:
  description: The exact bytes of O(path), base64-encoded.
  type: str
  returned: O(operation=read) and the file exists
  sample: c2VydmVyIHsKfQo=
stat:
  description: The stat of O(path), following a symlink.
  type: dict
  returned: O(operation=read) and the file exists
  contains:
    path:
      description: O(path) as given.
      type: str
      sample: /etc/nginx/sites-enabled/app
    realpath:
      description: The path with every symlink resolved.
      type: str
      sample: /etc/nginx/sites-available/app
    islink:
      description: Whether O(path) itself is a symlink.
      type: bool
      sample: true
    mode:
      description: Permission bits of the real file, in octal.
      type: str
      sample: "0644"
    uid:
      description: Owner id.
      type: int
      sample: 0
    gid:
      description: Group id.
      type: int
      sample: 0
    size:
      description: Size in bytes.
      type: int
      sample: 412
    sha256:
      description: SHA-256 of the bytes, hex.
      type: str
      sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
nginx_cmd:
  description: The nginx command that was run.
  type: list
  elements: str
  returned: when nginx ran
  sample: [/usr/sbin/nginx, -T, -c, /etc/nginx/nginx.conf]
nginx_rc:
  description: Exit status of C(nginx -T) (read) or C(nginx -t) (write with O(validate)).
  type: int
  returned: when nginx ran
  sample: 0
nginx_stderr:
  description: The messages of the nginx test.
  type: str
  returned: when nginx ran
  sample: "nginx: configuration file /etc/nginx/nginx.conf test is successful"
nginx_error:
  description: nginx's error message (the text after C([emerg])), with file and line when nginx gives them.
  type: str
  returned: when the nginx test failed
  sample: unknown "nope" variable in /etc/nginx/sites-enabled/app:14
dump:
  description: The standard output of C(nginx -T), base64-encoded (empty when the test failed).
  type: str
  returned: O(operation=read)
dump_realpaths:
  description: For every file named in the dump, its real path (symlinks resolved).
  type: dict
  returned: O(operation=read)
  sample: {"/etc/nginx/sites-enabled/app": "/etc/nginx/sites-available/app"}
realpath:
  description: The file that was (or would be) written.
  type: str
  returned: O(operation=write)
  sample: /etc/nginx/sites-available/app
sha256:
  description: SHA-256 of the file after the write.
  type: str
  returned: O(operation=write) and the file was written
stale:
  description: Whether the write was refused because the file no longer had O(expected_sha256).
  type: bool
  returned: O(operation=write)
  sample: false
backup_file:
  description: The backup that was written.
  type: str
  returned: O(backup=true) and the file was replaced
  sample: /var/backups/nginx/app.4242.2026-11-25@20:24:19~
restored:
  description: Whether the original bytes were put back (or the new file removed) after a failed nginx test.
  type: bool
  returned: O(operation=write)
  sample: false
pid_text:
  description: The first 64 bytes of O(pid_file), or null when it cannot be read.
  type: str
  returned: O(operation=status) and O(pid_file) is set
  sample: "4242"
process_name:
  description: The name of the process whose pid O(pid_file) holds (C(/proc/PID/comm)), or null when none runs.
  type: str
  returned: O(operation=status) and O(pid_file) is set
  sample: nginx
logs:
  description: The tail of each of O(error_logs), in order; C(text) is null when the log cannot be read.
  type: list
  elements: dict
  returned: O(operation=status)
  sample: [{"path": "/var/log/nginx/error.log", "text": "2026/11/25 20:24:19 [error] ..."}]
"""

import base64
import fcntl
import os
import re
import shutil
import signal
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agaii.nginx.plugins.module_utils._nginx_file_protocol import (
    ABSENT,
    ARGUMENT_SPEC,
    DUMP_MARKER,
    MAX_ERROR_LOGS,
    MAX_TAIL_BYTES,
    PID_FILE_BYTES,
    PROCESS_NAME_BYTES,
    READ,
    REQUIRED_IF,
    STATUS,
    sha256_hex,
)

LOCK_DIRS = ("/run/lock", "/var/lock")
LOCK_TIMEOUT_SECONDS = 120
NGINX_ERROR = re.compile(r"\[(?:emerg|alert|crit|error)\]\s+(?:\d+#\d+:\s+)?(.*)")


# -- small helpers ---------------------------------------------------------------------------------


def read_bytes(path: str) -> Optional[bytes]:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def file_stat(path: str, data: bytes) -> Dict[str, Any]:
    real = os.path.realpath(path)
    info = os.stat(real)
    return {
        "path": path,
        "realpath": real,
        "islink": os.path.islink(path),
        "mode": "%04o" % (info.st_mode & 0o7777),
        "uid": info.st_uid,
        "gid": info.st_gid,
        "size": len(data),
        "sha256": sha256_hex(data),
    }


def nginx_error_text(stderr: str) -> str:
    """The text after ``[emerg]`` (and the pid#tid of Debian's format), one line per error."""
    found = [match.group(1).strip() for match in NGINX_ERROR.finditer(stderr)]
    if found:
        return "; ".join(found)
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "nginx gave no message"


def dump_realpaths(dump: bytes) -> Dict[str, str]:
    paths: Dict[str, str] = {}
    for match in DUMP_MARKER.finditer(dump):
        name = match.group(1).decode("utf-8", "replace")
        paths[name] = os.path.realpath(name)
    return paths


# -- nginx -----------------------------------------------------------------------------------------


def nginx_path(module: AnsibleModule) -> str:
    binary = module.params["nginx_binary"]
    if os.path.isabs(binary):
        if not os.access(binary, os.X_OK):
            module.fail_json(msg="nginx_binary %s is not an executable file." % binary)
        return binary
    found = module.get_bin_path(binary, opt_dirs=["/usr/sbin", "/usr/local/sbin", "/sbin"])
    if not found:
        module.fail_json(msg="Cannot find %r in PATH or the sbin directories; set nginx_binary." % binary)
    return found


def run_nginx(module: AnsibleModule, flag: str) -> Tuple[List[str], int, bytes, str]:
    """Run ``nginx <flag> -c <nginx_conf>``; return (argv, rc, stdout bytes, stderr text)."""
    argv = [nginx_path(module), flag, "-c", module.params["nginx_conf"]]
    rc, out, err = module.run_command(argv, encoding=None)
    return argv, rc, out, err.decode("utf-8", "replace")


def nginx_result(argv: List[str], rc: int, stderr: str) -> Dict[str, Any]:
    result: Dict[str, Any] = {"nginx_cmd": argv, "nginx_rc": rc, "nginx_stderr": stderr}
    if rc != 0:
        result["nginx_error"] = nginx_error_text(stderr)
    return result


# -- read ------------------------------------------------------------------------------------------


def read_operation(module: AnsibleModule) -> Dict[str, Any]:
    path = module.params["path"]
    data = read_bytes(path)
    result: Dict[str, Any] = {"changed": False, "exists": data is not None}
    if data is not None:
        result["content"] = base64.b64encode(data).decode("ascii")
        result["stat"] = file_stat(path, data)
    argv, rc, out, err = run_nginx(module, "-T")
    result.update(nginx_result(argv, rc, err))
    result["dump"] = base64.b64encode(out).decode("ascii") if rc == 0 else ""
    result["dump_realpaths"] = dump_realpaths(out) if rc == 0 else {}
    return result


# -- write -----------------------------------------------------------------------------------------


def lock_directory() -> str:
    for candidate in LOCK_DIRS:
        if os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return candidate
    return tempfile.gettempdir()


def lock_path(realpath: str) -> str:
    """The lock file of ``realpath``: outside every nginx include, named by the path's SHA-256."""
    key = sha256_hex(realpath.encode("utf-8", "surrogateescape"))[:24]
    return os.path.join(lock_directory(), "agaii-nginx-%s.lock" % key)


class LockTimeout(Exception):
    """The lock was not granted within LOCK_TIMEOUT_SECONDS."""


def _raise_lock_timeout(signum: int, frame: Any) -> None:
    raise LockTimeout()


def acquire_lock(module: AnsibleModule, realpath: str) -> int:
    """Wait for the exclusive flock of ``realpath``; it is held until the module process exits."""
    path = lock_path(realpath)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    previous = signal.signal(signal.SIGALRM, _raise_lock_timeout)
    signal.alarm(LOCK_TIMEOUT_SECONDS)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except LockTimeout:
        module.fail_json(
            msg="Another run has held the lock %s on %s for %d seconds; nothing was written."
            % (path, realpath, LOCK_TIMEOUT_SECONDS)
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return fd


def decoded_content(module: AnsibleModule) -> bytes:
    try:
        return base64.b64decode(module.params["content"], validate=True)
    except (ValueError, TypeError) as exc:
        module.fail_json(msg="content is not valid base64: %s." % exc)
        raise  # unreachable: fail_json exits


def refuse_if_stale(module: AnsibleModule, realpath: str, current: Optional[bytes]) -> None:
    expected = module.params["expected_sha256"].strip().lower()
    actual = ABSENT if current is None else sha256_hex(current)
    if actual == expected:
        return
    module.fail_json(
        msg="%s changed since it was read (expected sha256 %s, found %s); nothing was written. "
        "Run the task again to plan against the current file." % (realpath, expected, actual),
        stale=True,
        realpath=realpath,
        exists=current is not None,
        restored=False,
    )


def is_directory_of(directory: str, *paths: str) -> bool:
    real = os.path.realpath(directory)
    return any(real == os.path.realpath(os.path.dirname(os.path.abspath(path))) for path in paths)


def write_backup(module: AnsibleModule, realpath: str) -> str:
    backup_dir = module.params["backup_dir"]
    if not os.path.isabs(backup_dir):
        module.fail_json(
            msg="backup_dir must be an absolute path, got %r: a relative one would land in whatever directory "
            "the module happens to run in. Nothing was written." % backup_dir
        )
    if is_directory_of(backup_dir, realpath, module.params["path"]):
        module.fail_json(
            msg="backup_dir %s is the directory of the file, where nginx could load the backup; "
            "choose a directory outside every nginx include. Nothing was written." % backup_dir
        )
    if not os.path.isdir(backup_dir):
        os.makedirs(backup_dir, 0o700)
        os.chmod(backup_dir, 0o700)
    stamp = time.strftime("%Y-%m-%d@%H:%M:%S")
    name = "%s.%s.%s~" % (os.path.basename(realpath), os.getpid(), stamp)
    destination = os.path.join(backup_dir, name)
    copy_then_rename(realpath, destination)
    return destination


def copy_then_rename(source: str, destination: str) -> None:
    """Copy to a dot-file beside ``destination`` and rename it: a full disk never leaves a partial backup."""
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(destination), dir=os.path.dirname(destination))
    try:
        with os.fdopen(fd, "wb") as handle, open(source, "rb") as original:
            shutil.copyfileobj(original, handle)
            handle.flush()
            os.fsync(handle.fileno())
        shutil.copystat(source, tmp)
        os.rename(tmp, destination)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def replace_atomically(module: AnsibleModule, realpath: str, data: bytes) -> None:
    """Write ``data`` to a dot-file beside ``realpath`` and rename it over (owner, mode, SELinux kept)."""
    directory, base = os.path.split(realpath)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % base, suffix=".agaii~", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        module.atomic_move(tmp, realpath)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def undo_write(module: AnsibleModule, realpath: str, original: Optional[bytes]) -> None:
    if original is None:
        os.unlink(realpath)
    else:
        replace_atomically(module, realpath, original)


def write_operation(module: AnsibleModule) -> Dict[str, Any]:
    new = decoded_content(module)
    realpath = os.path.realpath(module.params["path"])
    if not os.path.isdir(os.path.dirname(realpath)):
        module.fail_json(msg="The directory of %s does not exist; nothing was written." % realpath)
    acquire_lock(module, realpath)  # released when the module process exits
    current = read_bytes(realpath)
    refuse_if_stale(module, realpath, current)
    result: Dict[str, Any] = {
        "realpath": realpath,
        "stale": False,
        "restored": False,
        "exists": current is not None,
        "changed": current != new,
    }
    if current == new or module.check_mode:
        return result
    try:
        if module.params["backup"] and current is not None:
            result["backup_file"] = write_backup(module, realpath)
        replace_atomically(module, realpath, new)
    except (OSError, ValueError) as exc:
        fail_nothing_written(module, "write", realpath, exc)
    result["sha256"] = sha256_hex(new)
    if module.params["validate"]:
        validate_or_undo(module, realpath, current, result)
    return result


def fail_nothing_written(module: AnsibleModule, verb: str, path: str, exc: Exception) -> None:
    module.fail_json(msg="Cannot %s %s: %s; nothing was written." % (verb, path, exc), realpath=path, restored=False)


def validate_or_undo(module: AnsibleModule, realpath: str, original: Optional[bytes], result: Dict[str, Any]) -> None:
    argv, rc, _out, err = run_nginx(module, "-t")
    result.update(nginx_result(argv, rc, err))
    if rc == 0:
        return
    try:
        undo_write(module, realpath, original)
    except (OSError, ValueError) as exc:
        module.fail_json(
            msg="nginx -t failed after writing %s (%s), and putting the original back failed too: %s. The file "
            "holds the new bytes; restore it by hand (from the backup if one was made) and run nginx -t."
            % (realpath, result["nginx_error"], exc),
            **result,
        )
    result.update(changed=False, restored=True, sha256=None)
    what = "removed it again" if original is None else "restored the original bytes"
    module.fail_json(
        msg="nginx -t failed after writing %s, so the module %s: %s" % (realpath, what, result["nginx_error"]), **result
    )


# -- status --------------------------------------------------------------------------------------


def read_head(path: str, limit: int) -> Optional[str]:
    """The first ``limit`` bytes of a file as text; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def read_tail(path: str, limit: int) -> Optional[str]:
    """The last ``limit`` bytes of a file as text; None when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - limit))
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def process_status(pid_file: str) -> Dict[str, Any]:
    pid_text = read_head(pid_file, PID_FILE_BYTES)
    name = None
    if pid_text is not None and pid_text.strip().isdigit():
        name = read_head(f"/proc/{int(pid_text.strip())}/comm", PROCESS_NAME_BYTES)
    return {"pid_text": pid_text, "process_name": name}


def status_operation(module: AnsibleModule) -> Dict[str, Any]:
    """Read-only and bounded: the pid file, the process it names, the tails of the error logs."""
    tail_bytes, logs = module.params["tail_bytes"], module.params["error_logs"]
    if not 1 <= tail_bytes <= MAX_TAIL_BYTES:
        module.fail_json(msg=f"tail_bytes must be between 1 and {MAX_TAIL_BYTES}, got {tail_bytes}.")
    if len(logs) > MAX_ERROR_LOGS:
        module.fail_json(msg=f"error_logs takes at most {MAX_ERROR_LOGS} files, got {len(logs)}.")
    result: Dict[str, Any] = {"changed": False, "logs": [{"path": p, "text": read_tail(p, tail_bytes)} for p in logs]}
    if module.params["pid_file"]:
        result.update(process_status(module.params["pid_file"]))
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, required_if=REQUIRED_IF, supports_check_mode=True)
    operation = module.params["operation"]
    if operation == STATUS:
        module.exit_json(**status_operation(module))
    try:
        outcome = read_operation(module) if operation == READ else write_operation(module)
    except (OSError, ValueError) as exc:  # before any write (the write itself handles its own failures)
        fail_nothing_written(module, operation, module.params["path"], exc)
        raise  # unreachable: fail_json exits
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()
