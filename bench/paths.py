"""Where things are, and making the checkout importable as the ``agaii.nginx`` collection."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".build" / "collections"
CALLBACK_PLUGINS = REPO / "bench" / "callback_plugins"
VENV_BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = VENV_BIN / "ansible-playbook"


def link_collection() -> None:
    """``.build/collections/ansible_collections/agaii/nginx`` -> the checkout (as tests/conftest.py does)."""
    namespace = COLLECTIONS / "ansible_collections" / "agaii"
    namespace.mkdir(parents=True, exist_ok=True)
    link = namespace / "nginx"
    if not link.is_symlink() and not link.exists():
        link.symlink_to(REPO, target_is_directory=True)
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
