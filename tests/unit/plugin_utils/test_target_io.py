"""The controller's side of the target round trip: refusals and failure messages (no host needed)."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._action_base import refuse_unsafe_paths
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import InvalidOptionError
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import (
    TaskFailed,
    failure_message,
    refuse_backup_dir_inside_config,
    refuse_backup_dir_under_include,
    snapshot_from,
)

MAIN = b"events {}\nhttp {\n    include /etc/nginx/conf.d/*.conf;\n    include /etc/nginx/sites-enabled/*;\n}\n"
SITE = b"server {\n    listen 80;\n    include snippets/*.conf;\n}\n"
DUMP = (
    b"# configuration file /etc/nginx/nginx.conf:\n" + MAIN + b"\n"
    b"# configuration file /etc/nginx/conf.d/app.conf:\n" + SITE + b"\n"
)


def with_backup(backup_dir: str, backup: bool = True) -> Dict[str, Any]:
    return {"backup": backup, "backup_dir": backup_dir, "nginx_conf": "/etc/nginx/nginx.conf"}


def include_patterns() -> list:
    return load("/etc/nginx/conf.d/app.conf", SITE, DUMP).include_patterns()


def test_include_patterns_are_absolute_from_every_file_and_context() -> None:
    assert include_patterns() == [
        "/etc/nginx/conf.d/*.conf",
        "/etc/nginx/sites-enabled/*",
        "/etc/nginx/snippets/*.conf",
    ]


@pytest.mark.parametrize(
    "backup_dir",
    [
        "/etc/nginx/sites-enabled",
        "/etc/nginx/sites-enabled/",
        "/etc/nginx/snippets",
        "/etc/nginx/conf.d",
        "/etc/nginx/sites-enabled/old",  # include sites-enabled/* would read the directory: nginx -t fails
        "/etc/nginx/sites-enabled/old/deeper",
        "/etc/nginx/conf.d/backups.conf",
    ],
)
def test_a_backup_dir_an_include_glob_reads_is_refused_even_when_empty(backup_dir: str) -> None:
    with pytest.raises(TaskFailed, match=r"is a directory nginx loads files from \(include /etc/nginx/"):
        refuse_backup_dir_under_include(with_backup(backup_dir), include_patterns())


@pytest.mark.parametrize("backup_dir", ["/var/backups/nginx", "/etc/nginx", "/etc/nginx/conf.d/old", "/etc/nginx/.b"])
def test_a_backup_dir_outside_every_include_glob_is_accepted(backup_dir: str) -> None:
    refuse_backup_dir_under_include(with_backup(backup_dir), include_patterns())


def test_no_backup_means_no_refusal() -> None:
    refuse_backup_dir_under_include(with_backup("/etc/nginx/sites-enabled", backup=False), include_patterns())


def test_a_backup_dir_holding_loaded_files_is_refused() -> None:
    with pytest.raises(TaskFailed, match=r"holds files nginx loads \(/etc/nginx/conf.d/app.conf\)"):
        refuse_backup_dir_inside_config(with_backup("/etc/nginx/conf.d"), {"/etc/nginx/conf.d/app.conf": "/x"})


def test_failure_message_prefers_the_module_message() -> None:
    assert failure_message({"failed": True, "msg": "Cannot write /a: full"}, "fallback") == "Cannot write /a: full"


def test_failure_message_of_a_crashed_module_is_the_last_line_of_its_traceback() -> None:
    crashed = {
        "failed": True,
        "msg": "MODULE FAILURE: No start of json char found\nSee stdout/stderr for the exact error",
        "exception": "Traceback (most recent call last):\n  ...\nOSError: [Errno 30] Read-only file system: '/a'",
    }
    assert failure_message(crashed, "the write failed") == (
        "the write failed: OSError: [Errno 30] Read-only file system: '/a'"
    )
    assert failure_message({"failed": True, "module_stderr": "boom\n"}, "the read failed") == "the read failed: boom"
    assert failure_message({"failed": True}, "the read failed") == "the read failed"


def test_a_failed_read_says_why() -> None:
    read = {"failed": True, "module_stderr": "PermissionError: [Errno 13] Permission denied: '/a'"}
    with pytest.raises(TaskFailed, match=r"^reading /a on the managed node failed: PermissionError"):
        snapshot_from(read, "/a", with_backup("/var/backups/nginx"))


@pytest.mark.parametrize("option", ["path", "backup_dir", "map_file", "nginx_binary", "nginx_conf"])
@pytest.mark.parametrize("value", ["/etc/nginx/a\nb.conf", "/etc/nginx/a\x00b", "/etc/nginx/a\rb"])
def test_control_characters_in_a_path_option_are_refused(option: str, value: str) -> None:
    with pytest.raises(InvalidOptionError, match=rf"^{option} contains a control character"):
        refuse_unsafe_paths({option: value})


def test_plain_paths_and_unset_options_pass() -> None:
    refuse_unsafe_paths({"path": "/etc/nginx/sites-enabled/my site", "map_file": None})


@pytest.mark.parametrize("backup_dir", ["backups", "./backups", "var/backups/nginx", ""])
def test_a_relative_backup_dir_is_refused_when_backups_are_asked_for(backup_dir: str) -> None:
    with pytest.raises(InvalidOptionError, match=r"^backup_dir must be an absolute path"):
        refuse_unsafe_paths({"backup": True, "backup_dir": backup_dir})
    refuse_unsafe_paths({"backup": False, "backup_dir": backup_dir})
