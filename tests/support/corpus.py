"""The shared real-world corpus (``../shared/corpus`` beside the checkout).

``python -m tests.support.corpus`` prints the directory (scripts/ansible-test links it into its copy).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_corpus_dir() -> Path:
    """``shared/corpus`` beside this checkout, else beside the local repository it was cloned from (a clean
    clone in a temporary directory, as CI checks make)."""
    beside = REPO_ROOT.parent / "shared" / "corpus"
    if beside.is_dir():
        return beside
    origin = cloned_from()
    return beside if origin is None else origin.parent / "shared" / "corpus"


def cloned_from() -> Optional[Path]:
    """The local repository this checkout was cloned from, if any."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:  # no git
        return None
    return Path(url) if url.startswith("/") and Path(url).is_dir() else None


CORPUS_DIR = Path(os.environ.get("AGAII_CORPUS_DIR") or default_corpus_dir())


def corpus_files() -> List[Path]:
    """Every corpus config (names are ``owner__repo__path``); empty when the corpus is not there."""
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.iterdir() if "__" in p.name and p.is_file())


def require_corpus() -> List[Path]:
    files = corpus_files()
    if not files:
        raise RuntimeError(f"the shared corpus is missing at {CORPUS_DIR}; set AGAII_CORPUS_DIR")
    return files


if __name__ == "__main__":
    print(CORPUS_DIR)
