"""Regressions for the bugs the reliability tests found in the modules and actions (docs/reliability.md,
"Bugs found", 3 to 8), each as a minimal reproduction.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.config import load
from ansible_collections.agaii.nginx.plugins.plugin_utils._engine.errors import NginxConfigError
from tests.reliability.harness import converge, message, run_nginx_file, write_request
from tests.reliability.workspace import incident_site, loaded_directives
from tests.support.faults import ROOT_REASON, fill, is_root, readonly, tmpfs, tmpfs_on
from tests.support.nginx_sandbox import NginxSandbox

pytestmark = pytest.mark.nginx
needs_root = pytest.mark.skipif(not is_root(), reason=ROOT_REASON)


def upgrade_maps(sandbox: NginxSandbox) -> int:
    return sum(1 for d in loaded_directives(sandbox) if d.name == "map" and d.args[:1] == ["$http_upgrade"])


def test_map_file_with_a_line_feed_is_refused(nginx_sandbox: NginxSandbox) -> None:
    nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    conf = str(nginx_sandbox.conf)
    first = converge("upgrade_map", {"nginx_conf": conf, "map_file": "conf.d/a\nb.conf"})
    again = converge("upgrade_map", {"nginx_conf": conf})
    assert first["failed"] and "map_file contains a control character" in first["msg"], first
    assert again["changed"] and upgrade_maps(nginx_sandbox) == 1


def test_backup_in_an_empty_include_directory_is_refused(nginx_sandbox: NginxSandbox) -> None:
    site = nginx_sandbox.write("conf.d/app.conf", incident_site(nginx_sandbox))  # sites-enabled/ stays empty
    before = nginx_sandbox.dump().count("# configuration file ")
    args = {"path": str(site), "nginx_conf": str(nginx_sandbox.conf), "backup": True}
    backup_dir = nginx_sandbox.path("sites-enabled")
    result = converge("ws_location", {**args, "backup_dir": str(backup_dir)})
    assert result["failed"] and f"backup_dir {backup_dir} is a directory nginx loads files from" in result["msg"]
    assert nginx_sandbox.dump().count("# configuration file ") == before and not os.listdir(backup_dir)


@pytest.fixture
def read_only_site(nginx_sandbox: NginxSandbox) -> Iterator[tuple[NginxSandbox, Path]]:
    if not is_root():
        pytest.skip(ROOT_REASON)
    with tmpfs_on(nginx_sandbox.path("sites-available"), size="256k") as directory:
        real = nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
        with readonly(directory):
            yield nginx_sandbox, real


def test_nginx_file_fails_cleanly_on_a_read_only_filesystem(read_only_site: tuple[NginxSandbox, Path]) -> None:
    sandbox, real = read_only_site
    data = real.read_bytes()
    result = run_nginx_file(write_request(real, data, data + b"# edit\n", str(sandbox.conf)))
    assert result["failed"] and not result.get("crashed"), result
    assert str(real) in result["msg"] and "Read-only file system" in result["msg"]
    assert "nothing was written" in result["msg"].lower()


def test_ws_location_says_why_the_write_failed(read_only_site: tuple[NginxSandbox, Path]) -> None:
    sandbox, _real = read_only_site
    result = converge("ws_location", {"path": str(sandbox.path("sites-enabled/app")), "nginx_conf": str(sandbox.conf)})
    assert result["failed"] and "Read-only file system" in message(result), result


@needs_root
def test_no_partial_backup_on_a_full_backup_filesystem(nginx_sandbox: NginxSandbox) -> None:
    real = nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    data = real.read_bytes()
    with tmpfs(size="64k") as backups:
        fill(backups)
        conf = str(nginx_sandbox.conf)
        run_nginx_file(write_request(real, data, data + b"# edit\n", conf, backup=True, backup_dir=str(backups)))
        left = [name for name in os.listdir(backups) if not name.startswith(".agaii-filler")]
    assert left == []


@needs_root
def test_full_controller_tmpdir_is_a_clear_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with tmpfs(size="64k") as full:
        fill(full)
        monkeypatch.setattr(tempfile, "tempdir", str(full))
        with pytest.raises(NginxConfigError, match=r"TMPDIR|temporary|space"):
            load("/etc/nginx/sites-enabled/app", b"server {\n    listen 80;\n}\n" * 4000)


def test_nginx_file_refuses_a_relative_backup_dir(nginx_sandbox: NginxSandbox) -> None:
    real = nginx_sandbox.write_site("app", incident_site(nginx_sandbox))
    data = real.read_bytes()
    conf = str(nginx_sandbox.conf)
    result = run_nginx_file(write_request(real, data, data + b"# edit\n", conf, backup=True, backup_dir="backups"))
    assert result["failed"] and result["msg"].startswith("backup_dir must be an absolute path, got 'backups'"), result
    assert result["msg"].endswith("Nothing was written.") and real.read_bytes() == data
