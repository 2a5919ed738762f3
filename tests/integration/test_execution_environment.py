"""The execution environment: the collection declares its controller-side Python dependencies, and
``ansible-builder create`` on the EE definition of docs/awx.md gives a build context that installs them.

No image is built (no container engine here): the test runs the context's own build steps that decide the
Python dependencies - ``ansible-galaxy collection install -r requirements.yml`` (the galaxy stage) and
``introspect.py introspect`` (the builder stage) - outside a container, on the context's files.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.fleet.collection import BIN_DIR, REPO_ROOT, build_release, isolated_env, run

pytestmark = pytest.mark.slow

DOC = REPO_ROOT / "docs" / "awx.md"
CONTROLLER_REQUIREMENT = "crossplane==0.5.8"


def doc_block(marker: str, language: str) -> str:
    """The first ```language block after ``<!-- marker -->`` in docs/awx.md."""
    text = DOC.read_text()
    start = text.index(f"<!-- {marker} -->")
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(text, start)
    assert match, f"no {language} block after <!-- {marker} --> in {DOC}"
    return match.group(1)


def requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_collection_declares_its_controller_dependencies() -> None:
    meta = yaml.safe_load((REPO_ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta["version"] == 1
    python = meta["dependencies"]["python"]
    assert not Path(python).is_absolute()  # ansible-builder refuses absolute paths from collections
    assert CONTROLLER_REQUIREMENT in requirement_lines(REPO_ROOT / python)
    assert "system" not in meta["dependencies"]  # managed nodes need only Python and nginx


def test_ansible_builder_context_installs_crossplane(tmp_path: Path) -> None:
    tarball = build_release(tmp_path / "release")
    definition = doc_block("test: execution-environment", "yaml")
    ee = yaml.safe_load(definition)
    (build_file,) = ee["additional_build_files"]
    workdir = tmp_path / "ee"
    workdir.mkdir()
    (workdir / "execution-environment.yml").write_text(definition)
    shutil.copy2(tarball, workdir / build_file["src"])  # the file name docs/awx.md uses

    run(
        [str(BIN_DIR / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", "context", "-v", "3"],
        workdir,
    )
    build = workdir / "context" / "_build"
    containerfile = next(
        path for path in (workdir / "context").iterdir() if path.name in ("Containerfile", "Dockerfile")
    )
    steps = containerfile.read_text()

    # The context holds the collection, byte for byte, and the galaxy requirements that install it ...
    copied = build / build_file["dest"] / build_file["src"]
    assert sha256(copied) == sha256(tarball)
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    assert galaxy["collections"] == ee["dependencies"]["galaxy"]["collections"]
    # ... and the image build installs it, then pip-installs what introspect.py finds in the collections.
    assert "ansible-galaxy collection install" in steps and "-r requirements.yml" in steps
    assert "introspect.py introspect" in steps and "--write-pip=/tmp/src/requirements.txt" in steps
    assert "/output/scripts/assemble" in steps

    # The galaxy stage: install from the context, as the Containerfile does in /build.
    collections = tmp_path / "usr-share-ansible" / "collections"
    galaxy_cli = [str(BIN_DIR / "ansible-galaxy"), "collection", "install", "-r", "requirements.yml"]
    run([*galaxy_cli, "--collections-path", str(collections)], build, isolated_env(collections))
    installed = collections / "ansible_collections" / "agaii" / "nginx"
    assert (installed / "meta" / "execution-environment.yml").is_file()

    # The builder stage: the context's introspect.py over the installed collections.
    pip_file = tmp_path / "requirements.txt"
    introspect = [sys.executable, str(build / "scripts" / "introspect.py"), "introspect"]
    result = subprocess.run(
        [*introspect, "--write-pip", str(pip_file), str(collections)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = yaml.safe_load(result.stdout.split("---", 1)[1])
    assert report["python"] == [f"{CONTROLLER_REQUIREMENT}  # from collection agaii.nginx"]
    assert requirement_lines(pip_file) == [CONTROLLER_REQUIREMENT]
    assert report.get("system") in (None, [])
