"""The collection as users get it: a built tarball, installed away from the source tree; and the AWX survey.

- :func:`export_checkout` copies what a fresh clone holds (tracked files, and new files git does not ignore)
  and :func:`plant_junk` adds what a developer's tree or a CI run leaves behind (test output, caches,
  virtualenvs, ``__pycache__``, old tarballs), so :func:`build_collection` proves ``galaxy.yml``'s
  ``build_ignore`` keeps them out of the artifact.
- :func:`survey_spec` turns the role's ``meta/argument_specs.yml`` (entry point ``main``) into an AWX job
  template survey; ``docs/awx.md`` shows its output and ``tests/integration/test_awx_runner.py`` checks
  the two agree. Print it with ``python -m tests.support.fleet.collection survey``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN_DIR = Path(sys.executable).parent
ARGUMENT_SPECS = REPO_ROOT / "roles" / "ws_proxy" / "meta" / "argument_specs.yml"

# What a checkout holds after setup, tests and builds; none of it may reach the tarball.
JUNK = (
    "tests/output/junit/result.xml",
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/0.0.0/cache",
    ".hypothesis/examples/example",
    ".venv/bin/python",
    ".build/collections/ansible_collections/agaii/README",
    "plugins/plugin_utils/__pycache__/_model.cpython-311.pyc",
    "tests/__pycache__/conftest.cpython-311.pyc",
    "agaii-nginx-0.0.9.tar.gz",
)
JUNK_PATTERNS = re.compile(
    r"(^|/)(tests/output|\.pytest_cache|\.ruff_cache|\.hypothesis|\.venv[^/]*|\.build|__pycache__)(/|$)|\.pyc$|\.tar\.gz$"
)


def isolated_env(collections_path: Optional[Path] = None) -> Dict[str, str]:
    """The environment without ANSIBLE_* settings; with ``collections_path``, the only place collections are found."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.pop("PYTHONPATH", None)
    if collections_path is not None:
        env.update(ANSIBLE_COLLECTIONS_PATH=str(collections_path), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false")
    return env


def run(argv: List[str], cwd: Path, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def export_checkout(dest: Path) -> Path:
    """Copy the files a fresh clone of this checkout would hold (plus new files git does not ignore)."""
    listing = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], REPO_ROOT).stdout
    for name in filter(None, listing.split("\0")):
        source = REPO_ROOT / name
        if not source.is_file() and not source.is_symlink():
            continue  # deleted in the work tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return dest


def plant_junk(tree: Path) -> List[str]:
    for name in JUNK:
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"junk\n")
    return list(JUNK)


def build_collection(tree: Path, output: Path) -> Path:
    """``ansible-galaxy collection build`` of ``tree``; returns the tarball."""
    output.mkdir(parents=True, exist_ok=True)
    run([str(BIN_DIR / "ansible-galaxy"), "collection", "build", str(tree), "--output-path", str(output)], tree)
    (tarball,) = output.glob("agaii-nginx-*.tar.gz")
    return tarball


def build_release(workdir: Path) -> Path:
    """Export the checkout, litter it like a used work tree, and build the tarball from it."""
    tree = export_checkout(workdir / "checkout")
    plant_junk(tree)
    return build_collection(tree, workdir / "dist")


def tarball_members(tarball: Path) -> List[str]:
    with tarfile.open(tarball) as archive:
        return [member.name for member in archive.getmembers()]


def install_collection(tarball: Path, collections_path: Path) -> Path:
    """Install the tarball into a fresh collections path; return the installed collection's directory."""
    galaxy = str(BIN_DIR / "ansible-galaxy")
    argv = [galaxy, "collection", "install", str(tarball), "-p", str(collections_path)]
    run(argv, collections_path.parent, isolated_env(collections_path))
    return collections_path / "ansible_collections" / "agaii" / "nginx"


# ------------------------------------------------------------------------------------------- survey

_MARKUP = re.compile(r"\b[CVOIRBEM]\(([^)]*)\)")


def plain(text: Any) -> str:
    """argument_specs description (a string or a list of them) as plain text for a survey."""
    parts = text if isinstance(text, list) else [text]
    return " ".join(_MARKUP.sub(r"\1", str(part)).strip() for part in parts)


def as_answer(value: Any) -> str:
    """A default as AWX hands it over: a string ("true", "3600s", "")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def survey_question(variable: str, option: Dict[str, Any]) -> Dict[str, Any]:
    question: Dict[str, Any] = {
        "question_name": variable.removeprefix("ws_proxy_").replace("_", " ").capitalize(),
        "question_description": plain(option.get("description", "")),
        "variable": variable,
        "required": bool(option.get("required", False)),
        "default": as_answer(option.get("default")),
    }
    choices = option.get("choices")
    if option.get("type") == "bool":
        choices = [True, False]
    if choices:
        question.update(type="multiplechoice", choices="\n".join(as_answer(choice) for choice in choices))
    else:
        question.update(type="text", min=0, max=1024)
    return question


def survey_spec(argument_specs: Path = ARGUMENT_SPECS, entry_point: str = "main") -> Dict[str, Any]:
    """The AWX survey of a job template running agaii.nginx.fix_websocket: one question per role option."""
    spec = yaml.safe_load(argument_specs.read_text())["argument_specs"][entry_point]
    return {
        "name": "Fix WebSocket proxying through nginx",
        "description": plain(spec.get("short_description", "")),
        "spec": [survey_question(name, option) for name, option in spec["options"].items()],
    }


def main(argv: List[str]) -> int:
    if argv != ["survey"]:
        print("usage: python -m tests.support.fleet.collection survey", file=sys.stderr)
        return 2
    print(json.dumps(survey_spec(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
