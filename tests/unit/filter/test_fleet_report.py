"""The fleet report filters (plugins/filter/fleet_report.py): exact rows, summaries and tables."""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.agaii.nginx.plugins.filter.fleet_report import (
    NO_AUDIT_RESULT,
    NO_VERDICT,
    FilterModule,
    audit_report,
    audit_row,
    diagnosis_report,
)

ROUTE = {"location": "/api/", "reason": "longest matching prefix, no regex matches"}
INSERTING: Dict[str, Any] = {
    "changed": True,
    "path": "/etc/nginx/sites-enabled/app",
    "sample_uri": "/api/mqtt/ws/x",
    "route_before": ROUTE,
    "servers": [
        {"action": "inserted", "location": "~ ^/api/mqtt/ws/", "form": "regex", "server": "app:3", "reasons": ["r1"]},
        {"action": "unchanged", "location": "~ ^/api/mqtt/ws/", "server": "other:9", "reasons": ["ignored"]},
    ],
}
NEW_MAP = {"changed": True, "variable": "connection_upgrade", "file": "/etc/nginx/conf.d/ws.conf", "created": True}


def test_a_host_that_needs_the_fix() -> None:
    row = audit_row(INSERTING, "web1", map_result=NEW_MAP)
    assert row == {
        "host": "web1",
        "status": "needs_fix",
        "routes_correctly": False,
        "why": "nginx sends /api/mqtt/ws/x to /api/ (longest matching prefix, no regex matches); "
        "that location has no WebSocket settings",
        "would_change": [
            "add map $http_upgrade $connection_upgrade in /etc/nginx/conf.d/ws.conf (a new file)",
            "insert ~ ^/api/mqtt/ws/ (regex form) in app:3",
        ],
        "reasons": ["r1"],
        "site": "/etc/nginx/sites-enabled/app",
        "sample_uri": "/api/mqtt/ws/x",
        "route": ROUTE,
        "map_variable": "connection_upgrade",
        "map_reused": None,
        "live": {},
    }


def test_a_correct_host_with_a_live_probe_and_a_repair() -> None:
    converging = {**INSERTING, "servers": [{**INSERTING["servers"][0], "action": "converged", "form": None}]}
    probe = {"status": 101, "echo_received": "agaii.nginx audit probe"}
    row = audit_row(converging, "web2", map_result={"changed": False}, probe=probe, verify_url="ws://h/x")
    assert row["why"].endswith("; that WebSocket location is incomplete")
    assert row["would_change"] == ["repair in place ~ ^/api/mqtt/ws/ in app:3"]
    assert row["live"] == {"url": "ws://h/x", "status": 101, "works": True, "message": ""}
    refused = {"status": 101, "stage": "subprotocol", "msg": "subprotocol refused: the server selected none"}
    assert audit_row(converging, "web2", probe=refused)["live"] == {
        "url": "",
        "status": 101,
        "works": False,
        "message": "subprotocol refused: the server selected none",
    }
    unchanged = audit_row({**INSERTING, "changed": False, "servers": []}, "web3", probe={"skipped": True})
    assert (unchanged["status"], unchanged["routes_correctly"], unchanged["live"]) == ("ok", True, {})


def test_an_error_row_keeps_the_message_and_the_site() -> None:
    row = audit_row({}, "web4", error="nginx -t fails", site="/etc/nginx/sites-enabled/default")
    assert (row["status"], row["routes_correctly"], row["why"], row["would_change"], row["site"]) == (
        "error",
        None,
        "nginx -t fails",
        [],
        "/etc/nginx/sites-enabled/default",
    )


def test_the_audit_report_adds_missing_hosts_sorts_and_counts() -> None:
    rows = [
        audit_row(INSERTING, "web1", map_result=NEW_MAP),
        audit_row({**INSERTING, "changed": False, "servers": []}, "a-ok", probe={"status": 502, "msg": "bad gateway"}),
    ]
    report = audit_report(rows, ["web1", "a-ok", "gone"], "/tmp/r.json")
    assert [row["host"] for row in report["hosts"]] == ["a-ok", "gone", "web1"]
    assert report["hosts"][1]["why"] == NO_AUDIT_RESULT
    assert report["summary"] == {"hosts": 3, "ok": 1, "needs_fix": 1, "error": 1, "report": "/tmp/r.json"}
    pad = " " * 37
    assert report["table"] == [
        "HOST                 STATUS    ROUTES WHY / WOULD CHANGE",
        "a-ok                 ok        yes    nginx sends /api/mqtt/ws/x to /api/ (longest matching prefix, no regex "
        "matches)",
        f"{pad} live: 502 (bad gateway)",
        f"gone                 error     -      {NO_AUDIT_RESULT}",
        "web1                 needs_fix no     nginx sends /api/mqtt/ws/x to /api/ (longest matching prefix, no regex "
        "matches); that location has no WebSocket settings",
        f"{pad} would add map $http_upgrade $connection_upgrade in /etc/nginx/conf.d/ws.conf (a new file)",
        f"{pad} would insert ~ ^/api/mqtt/ws/ (regex form) in app:3",
        "3 hosts: 1 ok, 1 need a fix, 1 in error; JSON report: /tmp/r.json",
    ]


def test_the_diagnosis_report_keeps_host_order_and_names_the_broken_layers() -> None:
    healthy = {"host": "h1", "status": "healthy", "layer": "none", "message": "works"}
    broken = {"host": "longer-name", "status": "broken", "layer": "routing", "message": "wrong location"}
    report = diagnosis_report([broken, {}, healthy], ["longer-name", "lost", "h1"])
    assert [row["host"] for row in report["hosts"]] == ["longer-name", "lost", "h1"]
    assert report["hosts"][1]["message"] == NO_VERDICT
    assert (report["healthy"], report["broken"]) == (1, 2)
    assert report["broken_at"] == "longer-name at routing, lost at diagnosis"
    assert report["table"] == [
        "HOST         STATUS   LAYER      VERDICT",
        "longer-name  broken   routing    wrong location",
        f"lost         error    diagnosis  {NO_VERDICT}",
        "h1           healthy  none       works",
    ]


def test_the_filters_are_published_under_their_names() -> None:
    assert set(FilterModule().filters()) == {"audit_row", "audit_report", "diagnosis_report"}
