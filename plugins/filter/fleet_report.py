# Copyright (c) 2026, agaii.nginx contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet playbooks' reports: one row per host, the summary, the printed table and the JSON report.

``audit_websocket`` and ``diagnose_websocket`` build their reports with these filters instead of Jinja.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

NO_AUDIT_RESULT = "no result: the host was unreachable or failed before the audit"
NO_VERDICT = "no verdict: the host was unreachable or the diagnosis did not run"
_VERBS = {"inserted": "insert", "converged": "repair in place", "removed": "remove"}
_FORMS = {"regex": " (regex form)", "prefix": " (prefix form)"}
_YES_NO = {True: "yes", False: "no"}


def audit_row(
    location: Mapping[str, Any],
    host: str,
    map_result: Optional[Mapping[str, Any]] = None,
    error: str = "",
    probe: Optional[Mapping[str, Any]] = None,
    site: str = "",
    verify_url: str = "",
) -> Dict[str, Any]:
    """One host's audit row from the role's check-mode results (``location`` from ws_location, ``map_result``
    from upgrade_map), the error that stopped it (if any) and the live probe (``None`` or skipped: no probe)."""
    map_result = map_result or {}
    edits = [server for server in location.get("servers", []) if server.get("action") != "unchanged"]
    changed = bool(map_result.get("changed") or location.get("changed"))
    return {
        "host": host,
        "status": "error" if error else ("needs_fix" if changed else "ok"),
        "routes_correctly": None if error else not location.get("changed"),
        "why": error or _why(location, edits),
        "would_change": [] if error else _would_change(map_result, edits),
        "reasons": [reason for server in edits for reason in server.get("reasons", [])],
        "site": location.get("path") or site,
        "sample_uri": location.get("sample_uri"),
        "route": location.get("route_before") or {},
        "map_variable": map_result.get("variable"),
        "map_reused": map_result.get("reused"),
        "live": _live(probe, verify_url),
    }


def _why(location: Mapping[str, Any], edits: Sequence[Mapping[str, Any]]) -> str:
    route = location.get("route_before") or {}
    text = (
        f"nginx sends {location.get('sample_uri')} to {route.get('location', 'no location')}"
        f" ({route.get('reason', 'no location matches')})"
    )
    if location.get("changed"):
        inserted = any(server.get("action") == "inserted" for server in edits)
        text += "; that location has no WebSocket settings" if inserted else "; that WebSocket location is incomplete"
    return text


def _would_change(map_result: Mapping[str, Any], edits: Sequence[Mapping[str, Any]]) -> List[str]:
    lines = []
    if map_result.get("changed"):
        created = " (a new file)" if map_result.get("created") else ""
        lines.append(f"add map $http_upgrade ${map_result.get('variable')} in {map_result.get('file')}{created}")
    for server in edits:
        verb = _VERBS.get(server.get("action", ""), server.get("action"))
        form = _FORMS.get(server.get("form") or "", "")
        lines.append(f"{verb} {server.get('location')}{form} in {server.get('server')}")
    return lines


def _live(probe: Optional[Mapping[str, Any]], verify_url: str) -> Dict[str, Any]:
    if not probe or probe.get("skipped"):
        return {}
    status = probe.get("status")
    return {
        "url": verify_url,
        "status": status,
        "works": (status or 0) == 101 and not probe.get("stage") and not probe.get("failed"),
        "message": probe.get("msg", probe.get("status_line", "")),
    }


def audit_report(rows: Sequence[Mapping[str, Any]], targets: Sequence[str], report_path: str) -> Dict[str, Any]:
    """The audit's report: a row for every target (an error row where a host gave none), sorted by host; the
    summary counts; and the table the playbook prints."""
    given = {row["host"]: dict(row) for row in rows}
    for host in targets:
        given.setdefault(host, _missing_audit_row(host))
    hosts = [given[name] for name in sorted(given)]
    summary = {
        "hosts": len(hosts),
        "ok": sum(row["status"] == "ok" for row in hosts),
        "needs_fix": sum(row["status"] == "needs_fix" for row in hosts),
        "error": sum(row["status"] == "error" for row in hosts),
        "report": report_path,
    }
    return {"summary": summary, "hosts": hosts, "table": _audit_table(hosts, summary)}


def _missing_audit_row(host: str) -> Dict[str, Any]:
    return {
        "host": host,
        "status": "error",
        "routes_correctly": None,
        "why": NO_AUDIT_RESULT,
        "would_change": [],
        "reasons": [],
        "live": {},
    }


def _audit_line(host: str, status: str, routes: str, why: str) -> str:
    return f"{host:<20} {status:<9} {routes:<6} {why}"


def _audit_table(hosts: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> List[str]:
    lines = [_audit_line("HOST", "STATUS", "ROUTES", "WHY / WOULD CHANGE")]
    indent = " " * 37
    for row in hosts:
        routes = _YES_NO.get(row.get("routes_correctly"), "-")  # type: ignore[arg-type]
        lines.append(_audit_line(row["host"], row["status"], routes, row["why"]))
        lines.extend(f"{indent} would {change}" for change in row.get("would_change", []))
        live = row.get("live")
        if live:
            outcome = " + echo" if live["works"] else f" ({live['message']})"
            lines.append(f"{indent} live: {live['status']}{outcome}")
    lines.append(
        f"{summary['hosts']} hosts: {summary['ok']} ok, {summary['needs_fix']} need a fix, "
        f"{summary['error']} in error; JSON report: {summary['report']}"
    )
    return lines


def diagnosis_report(verdicts: Sequence[Optional[Mapping[str, Any]]], hosts: Sequence[str]) -> Dict[str, Any]:
    """The fleet diagnosis from each host's verdict (``verdicts[i]`` is the verdict of ``hosts[i]``; empty where
    the host has none, which becomes an error verdict): the rows in ``hosts`` order, the healthy/broken counts,
    the broken hosts with their layer, and the table the playbook prints."""
    rows = [dict(verdict or _missing_verdict(host)) for host, verdict in zip(hosts, verdicts)]
    broken = [row for row in rows if row["status"] != "healthy"]
    return {
        "healthy": len(rows) - len(broken),
        "broken": len(broken),
        "hosts": rows,
        "broken_at": ", ".join(f"{row['host']} at {row['layer']}" for row in broken),
        "table": _diagnosis_table(rows, hosts),
    }


def _missing_verdict(host: str) -> Dict[str, Any]:
    return {
        "host": host,
        "status": "error",
        "layer": "diagnosis",
        "message": NO_VERDICT,
        "evidence": [],
        "fix": None,
        "warnings": [],
        "checks": [],
        "url": None,
        "log_lines": [],
    }


def _diagnosis_table(rows: Sequence[Mapping[str, Any]], hosts: Sequence[str]) -> List[str]:
    width = max(len(name) for name in ["host", *hosts])

    def line(host: str, status: str, layer: str, message: str) -> str:
        return f"{host:<{width}}  {status:<7}  {layer:<9}  {message}"

    return [line("HOST", "STATUS", "LAYER", "VERDICT")] + [
        line(row["host"], row["status"], row["layer"], row["message"]) for row in rows
    ]


class FilterModule:
    """The fleet report filters of agaii.nginx."""

    def filters(self) -> Dict[str, Any]:
        return {"audit_row": audit_row, "audit_report": audit_report, "diagnosis_report": diagnosis_report}
