# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record when each play, task and handler starts, each host result, and the end, for bench/run.

Enabled by bench/run only (``ANSIBLE_CALLBACKS_ENABLED=bench_timer``); writes JSON lines to the file
named by ``$BENCH_TIMINGS``. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, List

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_timer
type: aggregate
short_description: timings for bench/run
description: Writes play, task and result times as JSON lines to $BENCH_TIMINGS.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._events: List[Dict[str, Any]] = []

    def _event(self, kind: str, **data: Any) -> None:
        self._events.append({"event": kind, "t": time.monotonic(), **data})

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._event("play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._event("task", name=task.get_name())

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._event("handler", name=task.get_name())

    def _result(self, status: str, result: Any) -> None:
        self._event(
            "result",
            status=status,
            host=result._host.get_name(),
            name=result._task.get_name(),
            changed=bool(result._result.get("changed")),
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("failed", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._event("end")
        path = os.environ.get("BENCH_TIMINGS")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                for event in self._events:
                    handle.write(json.dumps(event) + "\n")
