# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wire protocol of the target-side module agaii.nginx.nginx_file, defined once.

The module imports it on the managed node; the controller side (plugin_utils) imports it to build requests
and read answers. Standard library only: it runs on every supported managed-node Python (3.9 and newer).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, List, Tuple

MODULE_NAME = "agaii.nginx.nginx_file"
# expected_sha256 of a file that must not exist yet (the write creates it)
ABSENT = "absent"
# how `nginx -T` starts each loaded file in its dump
DUMP_MARKER = re.compile(rb"^# configuration file (.+):\r?\n", re.M)

READ, WRITE, STATUS = "read", "write", "status"
# status reads at most this much of a pid file and of a process name, and at most MAX_TAIL_BYTES of a log
PID_FILE_BYTES = 64
PROCESS_NAME_BYTES = 64
DEFAULT_TAIL_BYTES = 65536
MAX_TAIL_BYTES = 1048576
MAX_ERROR_LOGS = 4

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "operation": {"type": "str", "choices": [READ, WRITE, STATUS], "required": True},
    "path": {"type": "path"},
    "content": {"type": "str"},
    "expected_sha256": {"type": "str"},
    "backup": {"type": "bool", "default": False},
    "backup_dir": {"type": "path", "default": "/var/backups/nginx"},
    "validate": {"type": "bool", "default": True},
    "nginx_binary": {"type": "str", "default": "nginx"},
    "nginx_conf": {"type": "path", "default": "/etc/nginx/nginx.conf"},
    "pid_file": {"type": "path"},
    "error_logs": {"type": "list", "elements": "path", "default": []},
    "tail_bytes": {"type": "int", "default": DEFAULT_TAIL_BYTES},
}
REQUIRED_IF: List[Tuple[str, str, Tuple[str, ...]]] = [
    ("operation", READ, ("path",)),
    ("operation", WRITE, ("path", "content", "expected_sha256")),
]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
