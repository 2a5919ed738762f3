"""Make this checkout importable as ``ansible_collections.agaii.nginx`` and load the shared fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_COLLECTIONS_ROOT = REPO_ROOT / ".build" / "collections"


def _link_checkout_as_collection() -> None:
    namespace_dir = _COLLECTIONS_ROOT / "ansible_collections" / "agaii"
    namespace_dir.mkdir(parents=True, exist_ok=True)
    link = namespace_dir / "nginx"
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    if str(_COLLECTIONS_ROOT) not in sys.path:
        sys.path.insert(0, str(_COLLECTIONS_ROOT))


_link_checkout_as_collection()

pytest_plugins = ["tests.support.pytest_fixtures"]
