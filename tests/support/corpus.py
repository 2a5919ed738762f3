"""The real-world corpus vendored under ``tests/data/corpus`` (sources and licences in its ``SOURCES.tsv``).

``AGAII_CORPUS_DIR`` points the tests at another copy (for example a larger local collection).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

REPO_ROOT = Path(__file__).resolve().parents[2]
VENDORED_CORPUS = REPO_ROOT / "tests" / "data" / "corpus"
CORPUS_DIR = Path(os.environ.get("AGAII_CORPUS_DIR") or VENDORED_CORPUS)


def corpus_files() -> List[Path]:
    """Every corpus config (names are ``owner__repo__path``); empty when the corpus is not there."""
    if not CORPUS_DIR.is_dir():
        return []
    return sorted(p for p in CORPUS_DIR.iterdir() if "__" in p.name and p.is_file())


def require_corpus() -> List[Path]:
    files = corpus_files()
    if not files:
        raise RuntimeError(f"the corpus is missing at {CORPUS_DIR} (vendored at {VENDORED_CORPUS})")
    return files
