"""The shared real-world corpus (``../shared/corpus`` beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS_DIR = Path(os.environ.get("AGAII_CORPUS_DIR", REPO_ROOT.parent / "shared" / "corpus"))


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
