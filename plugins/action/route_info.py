# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The agaii.nginx.route_info action: where nginx sends a host name and URI, and (with ``diagnose``) the
layered diagnosis of a WebSocket path.

This action runs on the controller. The managed node runs ``agaii.nginx.nginx_file`` once (the main
configuration with the ``nginx -T`` dump and the ``nginx -t`` result); with ``diagnose`` it also reads
nginx's pid and process name and the tail of the error log (``nginx_file`` ``operation=status``: read-only
and bounded), and runs ``agaii.nginx.ws_probe`` against the backend and through nginx. The managed node runs
nothing else, and nothing on it is changed.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, List, Optional

from ansible_collections.agaii.nginx.plugins.plugin_utils._action_base import EditingAction
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import Config, load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.checks import (
    Check,
    backend_check,
    config_fix,
    handshake_check,
    healthy_message,
    nginx_check,
    routing_check,
    timeout_check,
    verdict,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.facts import (
    DEFAULT_PID_FILE,
    RouteInfo,
    direct_backend,
    main_file_setting_from_bytes,
    route_info,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.diagnosis.observations import (
    Probe,
    probe_from,
    process_from,
    relevant_log_lines,
)
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.servers import parse_listen_selector
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.timevalue import time_seconds
from ansible_collections.agaii.nginx.plugins.plugin_utils._target_io import (
    RunTarget,
    TaskFailed,
    loaded_name,
    read_status,
)

PROBE_MODULE = "agaii.nginx.ws_probe"
LOG_TAIL_BYTES = 65536
MAX_BACKEND_PROBES = 4

DIAGNOSE_OPTIONS: Dict[str, Dict[str, Any]] = {
    "url": {"type": "str"},
    "app_silence": {"type": "str", "default": "0"},
    "backend": {"type": "str"},
    "error_log": {"type": "path"},
    "pid_file": {"type": "path"},
    "timeout": {"type": "float", "default": 5.0},
    "validate_certs": {"type": "bool", "default": True},
    # What the application needs in a handshake (the ws_proxy role's proof passes its own): both probes send them.
    "subprotocols": {"type": "list", "elements": "str", "default": []},
    "headers": {"type": "dict", "default": {}},
}

ARGUMENT_SPEC: Dict[str, Dict[str, Any]] = {
    "host": {"type": "str", "required": True},
    "uri": {"type": "str", "required": True},
    "port": {"type": "int"},
    "address": {"type": "str"},
    "listen": {"type": "str"},
    "nginx_binary": {"type": "str", "default": "nginx"},
    "nginx_conf": {"type": "path", "default": "/etc/nginx/nginx.conf"},
    "diagnose": {"type": "dict", "options": DIAGNOSE_OPTIONS},
}


def read_main(run: RunTarget, args: Dict[str, Any]) -> Dict[str, Any]:
    """One round trip: the main configuration's bytes, ``nginx -t``'s result and the ``nginx -T`` dump."""
    conf = args["nginx_conf"]
    read = run({"operation": "read", "path": conf, "nginx_binary": args["nginx_binary"], "nginx_conf": conf})
    if read.get("failed"):
        raise TaskFailed(read.get("msg", f"reading {conf} failed"))
    if not read.get("exists"):
        raise TaskFailed(f"{conf} does not exist on the managed node; set nginx_conf.")
    return read


def loaded_config(read: Dict[str, Any], conf: str) -> Config:
    name = loaded_name(conf, read["stat"]["realpath"], read.get("dump_realpaths") or {}, conf)
    return load(name, base64.b64decode(read["content"]), base64.b64decode(read["dump"]), main=name)


def listen_as_port_and_address(args: Dict[str, Any]) -> Dict[str, Any]:
    """``listen`` (``443 ssl``, ``[::]:443``, ``*:80``) as the ``port`` and ``address`` it names; nginx picks
    the server by address and port, so flags do not change the choice."""
    if args["listen"] is None:
        return {}
    if args["port"] is not None or args["address"] is not None:
        raise TaskFailed("listen names the port and address itself: give either listen, or port and address.")
    try:
        selector = parse_listen_selector(args["listen"])
    except NginxConfigError as err:
        raise TaskFailed(str(err)) from err
    address = selector.address[1:-1] if selector.address and selector.address.startswith("[") else selector.address
    return {"port": selector.port, "address": address}


def static_result(info: RouteInfo) -> Dict[str, Any]:
    return {"changed": False, **info.as_dict()}


class ActionModule(EditingAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def _runner(self, task_vars: Dict[str, Any]) -> RunTarget:
        self._diagnose_task_vars = task_vars  # the probes run other modules with the same variables
        return super()._runner(task_vars)

    def converge(self, args: Dict[str, Any], run: RunTarget) -> Dict[str, Any]:
        self._check_options(args)
        args = {**args, **listen_as_port_and_address(args)}
        read = read_main(run, args)
        if args["diagnose"] is not None:
            return _Diagnosis(self, run, args, read).run()
        if read.get("nginx_rc") != 0:
            error = read.get("nginx_error", "no message")
            raise TaskFailed(
                f"nginx -t fails on {args['nginx_conf']}, so nginx's routing cannot be read: {error}. "
                f"{config_fix(error)}",
                nginx_stderr=read.get("nginx_stderr", ""),
            )
        config = loaded_config(read, args["nginx_conf"])
        return static_result(
            route_info(config, args["host"], args["uri"], args["port"], args["address"], self.nginx_hostname())
        )

    @staticmethod
    def _check_options(args: Dict[str, Any]) -> None:
        if not args["uri"].startswith("/"):
            raise TaskFailed(f"uri must be a path that starts with '/', got {args['uri']!r}.")
        if args["diagnose"] is not None:
            try:
                time_seconds(args["diagnose"]["app_silence"])
            except ValueError as exc:
                raise TaskFailed(f"diagnose.app_silence: {exc}.") from exc

    # -- target helpers used by the diagnosis ------------------------------------------------

    def nginx_hostname(self) -> Optional[str]:
        """The managed node's name as nginx reads it (gethostname) for ``server_name $hostname``: the
        ``nodename`` fact when facts were gathered, else None (such a name makes the answer unknown)."""
        task_vars: Dict[str, Any] = getattr(self, "_diagnose_task_vars", None) or {}
        facts = task_vars.get("ansible_facts") or {}
        name = facts.get("nodename") or task_vars.get("ansible_nodename")
        return str(name) if name else None

    def module(self, name: str, module_args: Dict[str, Any]) -> Dict[str, Any]:
        return self._execute_module(module_name=name, module_args=module_args, task_vars=self._diagnose_task_vars)


class _Diagnosis:
    """The layers, in order; the first broken one ends the diagnosis."""

    def __init__(self, action: ActionModule, run: RunTarget, args: Dict[str, Any], read: Dict[str, Any]) -> None:
        self.action = action
        self.run_target = run
        self.args = args
        self.options: Dict[str, Any] = args["diagnose"]
        self.read = read
        self.info: Optional[RouteInfo] = None
        self.log_lines: List[str] = []
        self.url: Optional[str] = None

    def run(self) -> Dict[str, Any]:
        checks = [self._nginx()]
        if not checks[0].broken:
            self.info = self._route_info()
            for layer in (self._backend, self._routing, self._handshake, self._timeout):
                checks.append(layer(self.info))
                if checks[-1].broken:
                    break
        return self._result(checks)

    def _result(self, checks: List[Check]) -> Dict[str, Any]:
        info = self.info
        backend = next((b.address for b in info.backends), None) if info else None
        outcome = verdict(checks, healthy_message(info, backend) if info else "")
        outcome.update({"url": self.url, "log_lines": self.log_lines})
        result: Dict[str, Any] = {"changed": False, **(info.as_dict() if info else {})}
        result["verdict"] = outcome
        return result

    # -- layer 1 -------------------------------------------------------------------------------

    def _nginx(self) -> Check:
        conf = self.args["nginx_conf"]
        pid_file = self.options["pid_file"] or self._pid_file_from_main()
        status = read_status(self.run_target, pid_file, [], LOG_TAIL_BYTES)
        process = process_from(pid_file, status.get("pid_text"), status.get("process_name"))
        return nginx_check(process, self.read.get("nginx_rc", 1), self.read.get("nginx_error"), conf, self._binary())

    def _pid_file_from_main(self) -> str:
        data = base64.b64decode(self.read.get("content") or b"")
        return main_file_setting_from_bytes(self.args["nginx_conf"], data, "pid") or DEFAULT_PID_FILE

    def _binary(self) -> str:
        return self.args["nginx_binary"]

    def _route_info(self) -> RouteInfo:
        config = loaded_config(self.read, self.args["nginx_conf"])
        args = self.args
        info = route_info(
            config, args["host"], args["uri"], args["port"], args["address"], self.action.nginx_hostname()
        )
        if self.options["backend"]:
            info.backends, info.backend_note = [direct_backend(self.options["backend"], args["uri"])], None
        if self.options["error_log"]:
            info.error_logs = [self.options["error_log"]]
        return info

    # -- layer 2 -------------------------------------------------------------------------------

    def _backend(self, info: RouteInfo) -> Check:
        urls = [backend.url for backend in info.backends if backend.url][:MAX_BACKEND_PROBES]
        if info.backends and not urls:
            info.backend_note = f"{info.backends[0].address} is {info.backends[0].note}"
        probes: List[Probe] = []
        for url in urls:
            probes.append(self._probe(url, None, validate_certs=False))
            if probes[-1].upgraded:
                break
        failed = any(not probe.upgraded for probe in probes)
        return backend_check(info, probes, self._logs(info, [b.address for b in info.backends]) if failed else [])

    # -- layer 3 -------------------------------------------------------------------------------

    @staticmethod
    def _routing(info: RouteInfo) -> Check:
        return routing_check(info)

    # -- layer 4 -------------------------------------------------------------------------------

    def _handshake(self, info: RouteInfo) -> Check:
        self.url = self.options["url"] or self._nginx_url(info)
        probe = self._probe(self.url, info.host, validate_certs=self.options["validate_certs"])
        logs = [] if probe.upgraded else self._logs(info, [b.address for b in info.backends] + [info.path])
        return handshake_check(info, probe, logs)

    def _nginx_url(self, info: RouteInfo) -> str:
        listen = info.choice.listen
        if listen is None:
            port = self.args["port"] or 80
            return f"ws://{self.args['address'] or '127.0.0.1'}:{port}{info.uri}"
        address = self.args["address"] or (
            ("[::1]" if listen.ipv6 else "127.0.0.1") if listen.wildcard else listen.address
        )
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"
        return f"{'wss' if listen.ssl else 'ws'}://{address}:{listen.port}{info.uri}"

    # -- layer 5 -------------------------------------------------------------------------------

    def _timeout(self, info: RouteInfo) -> Check:
        return timeout_check(info, time_seconds(self.options["app_silence"]))

    # -- probes and the error log -------------------------------------------------------------------

    def _probe(self, url: str, host: Optional[str], validate_certs: bool) -> Probe:
        module_args: Dict[str, Any] = {
            "url": url,
            "timeout": self.options["timeout"],
            "validate_certs": validate_certs,
        }
        if host:
            module_args["host"] = host
        if self.options["subprotocols"]:
            module_args["subprotocols"] = self.options["subprotocols"]
        if self.options["headers"]:
            module_args["headers"] = self.options["headers"]
        return probe_from(url, self.action.module(PROBE_MODULE, module_args))

    def _logs(self, info: RouteInfo, needles: List[str]) -> List[str]:
        lines: List[str] = []
        status = read_status(self.run_target, None, info.error_logs[:2], LOG_TAIL_BYTES)
        for log in status["logs"]:
            if log["text"]:
                lines += relevant_log_lines(log["text"], needles)
        self.log_lines = lines
        return lines
