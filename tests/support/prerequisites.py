"""Prerequisites a test needs beyond the default setup (a Debian package, a PyPI package, an interpreter).

Outside CI a missing prerequisite skips the test with one line that says what is missing and how to get it.
Under ``CI=true`` it is a failure: a CI run must never go green by skipping what it was meant to prove.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest


def require(available: bool, missing: str, how: str) -> None:
    """Skip (or, under CI, fail) unless ``available``; ``missing`` names the thing, ``how`` how to get it."""
    if available:
        return
    message = f"{missing} is missing: {how}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(message)


def require_command(command: str, debian_package: str) -> str:
    """The path of ``command``; skip/fail with the Debian package that provides it."""
    path = shutil.which(command) or next(
        (p for p in (f"/usr/sbin/{command}", f"/usr/bin/{command}") if os.access(p, os.X_OK)), None
    )
    require(path is not None, f"the command {command!r}", f"apt-get install {debian_package} (or scripts/setup --all)")
    assert path is not None
    return path


def require_module(module: str, pypi_package: str) -> None:
    """Skip/fail unless the Python module can be imported; names the PyPI package that provides it."""
    require(
        importlib.util.find_spec(module) is not None,
        f"the Python module {module!r}",
        f"pip install {pypi_package} into .venv (or scripts/setup --all)",
    )
