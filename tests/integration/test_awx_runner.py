"""agaii.nginx.fix_websocket run the way an AWX job template runs it, against a real nginx.

AWX syncs the project (installing ``collections/requirements.yml``), writes a private data directory
(``project/``, ``inventory/``, ``env/extravars`` with the survey answers - strings, ``env/envvars``) and
hands it to ansible-runner. This test does the same, without a container (AWX runs the same command
inside the execution environment), with every survey answer from the survey of docs/awx.md.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Dict, List

import ansible_runner
import pytest
import yaml

from ansible_collections.agaii.nginx.plugins.module_utils.ws_handshake import handshake
from tests.support.fleet.collection import BIN_DIR, REPO_ROOT, build_release, install_collection, survey_spec
from tests.support.nginx_sandbox import NginxSandbox
from tests.support.pytest_fixtures import Backend

pytestmark = [pytest.mark.nginx, pytest.mark.slow]

WS_PATH = "/api/mqtt/ws/hints/session-874q8t"
ECHO = "from an AWX job"
PROOF_TASK = "Prove the WebSocket path through nginx"
SITE = """\
server {{
    listen {listen};
    server_name app.example.com;

    location / {{
        root /var/www/html;
    }}

    location /api/ {{
        proxy_pass http://{upstream};
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
}}
"""
WRAPPER = """\
---
- name: Fix WebSocket proxying through nginx
  ansible.builtin.import_playbook: agaii.nginx.fix_websocket
"""


def documented_survey() -> Dict[str, Any]:
    text = (REPO_ROOT / "docs" / "awx.md").read_text()
    start = text.index("<!-- test: survey -->")
    match = re.compile(r"```json\n(.*?)```", re.DOTALL).search(text, start)
    assert match, "docs/awx.md has no survey"
    survey: Dict[str, Any] = json.loads(match.group(1))
    return survey


@pytest.fixture
def incident(nginx_sandbox: NginxSandbox, asgi_backend: Backend) -> Iterator[NginxSandbox]:
    nginx_sandbox.write_site("app", SITE.format(listen=nginx_sandbox.listen, upstream=asgi_backend.upstream))
    nginx_sandbox.start()
    yield nginx_sandbox
    nginx_sandbox.stop()


def test_documented_survey_is_the_role_argument_specs() -> None:
    survey = documented_survey()
    assert survey == survey_spec(), "docs/awx.md is stale: python -m tests.support.fleet.collection survey"
    specs = yaml.safe_load((REPO_ROOT / "roles/ws_proxy/meta/argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    assert [question["variable"] for question in survey["spec"]] == list(options)
    defaults = yaml.safe_load((REPO_ROOT / "roles/ws_proxy/defaults/main.yml").read_text())
    for question in survey["spec"]:
        default = defaults[question["variable"]]
        expected = ("true" if default else "false") if isinstance(default, bool) else str(default)
        assert question["default"] == expected, question["variable"]
        assert isinstance(question["default"], str)


def survey_answers(survey: Dict[str, Any], answers: Dict[str, str]) -> Dict[str, str]:
    """extra_vars as AWX builds them from a survey: every answer a string, defaults for the rest."""
    values = {question["variable"]: question["default"] for question in survey["spec"]}
    for variable, answer in answers.items():
        assert variable in values, f"{variable} is not a survey question"
        question = next(q for q in survey["spec"] if q["variable"] == variable)
        if question["type"] == "multiplechoice":
            assert answer in question["choices"].split("\n"), (variable, answer)
        values[variable] = answer
    assert all(isinstance(value, str) for value in values.values())
    return values


def events_of(runner: Any, event: str, task: str) -> List[Dict[str, Any]]:
    return [
        item["event_data"]
        for item in runner.events
        if item.get("event") == event and item.get("event_data", {}).get("task") == task
    ]


def test_fix_playbook_as_an_awx_job(incident: NginxSandbox, tmp_path: Path) -> None:
    private = tmp_path / "job"
    project = private / "project"
    (project / "collections").mkdir(parents=True)
    (private / "inventory").mkdir()
    (private / "env").mkdir()
    backups = tmp_path / "backups"

    # The project, and its sync: AWX installs collections/requirements.yml into the job's collections path.
    tarball = build_release(tmp_path / "release")
    requirements = {"collections": [{"name": str(tarball), "type": "file"}]}
    (project / "collections" / "requirements.yml").write_text(yaml.safe_dump(requirements))
    (project / "fix_websocket.yml").write_text(WRAPPER)
    collections = private / "requirements_collections"
    install_collection(tarball, collections)

    # The inventory: AWX writes it as a script or file; the host is the machine itself, already root.
    inventory = {
        "all": {
            "hosts": {
                "web1": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": str(BIN_DIR / "python"),
                    "ansible_become": False,
                }
            }
        }
    }
    (private / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))

    # The survey answers, as AWX passes them: strings ("true", "3600s", "").
    site = incident.root / "sites-enabled" / "app"
    extravars = survey_answers(
        documented_survey(),
        {
            "ws_proxy_site": str(site),
            "ws_proxy_nginx_conf": str(incident.conf),
            "ws_proxy_read_timeout": "3600s",
            "ws_proxy_send_timeout": "600s",
            "ws_proxy_reload_method": "signal",
            "ws_proxy_backup": "true",
            "ws_proxy_backup_dir": str(backups),
            "ws_proxy_verify_url": incident.ws_url(WS_PATH),
            "ws_proxy_verify_host": "app.example.com",
            "ws_proxy_verify_validate_certs": "false",
            "ws_proxy_verify_echo": "true",
        },
    )
    (private / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    # AWX points ansible at the synced collections (and nothing from the source tree here).
    envvars = {
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    (private / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    (private / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 300}))

    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("ANSIBLE_")}
    try:
        runner = ansible_runner.run(private_data_dir=str(private), playbook="fix_websocket.yml", quiet=True)
    finally:
        os.environ.update(saved)
    stdout = runner.stdout.read()

    assert runner.status == "successful", stdout
    assert runner.rc == 0
    assert runner.stats["failures"] == {} and runner.stats["dark"] == {}
    assert runner.stats["changed"].get("web1", 0) >= 3, stdout  # map, location, reload

    # The role's own proof ran and saw a 101 through nginx.
    (proof,) = events_of(runner, "runner_on_ok", PROOF_TASK)
    assert proof["res"]["status"] == 101
    # The string answers reached the role as what they mean.
    site_text = site.read_text()
    assert site_text.count("location ~ ^/api/mqtt/ws/ {") == 1
    assert "proxy_read_timeout 3600s;" in site_text and "proxy_send_timeout 600s;" in site_text
    assert len(list(backups.iterdir())) == 1  # ws_proxy_backup: "true"
    # The playbook came from the synced collection.
    assert str(collections / "ansible_collections" / "agaii" / "nginx" / "roles") in json.dumps(
        [item.get("event_data", {}).get("task_path", "") for item in runner.events]
    )

    # And, independently of Ansible: 101 and an echo through nginx.
    result = handshake(incident.ws_url(WS_PATH), host="app.example.com", echo=ECHO, timeout=10)
    assert result.status == 101, result
    assert result.echo_received == ECHO
