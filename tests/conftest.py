"""Shared fixtures: where the ../shared corpus is (tests that need it skip when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITMETA_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"


def require_corpus(sub: str = "") -> Path:
    """Return ../shared/corpus[/sub], or skip the test saying why."""
    path = CORPUS / sub if sub else CORPUS
    if not path.is_dir():
        pytest.skip(f"real NCBI corpus not found at {path} (../shared is absent; set LITMETA_SHARED to point at it)")
    return path


@pytest.fixture
def corpus() -> Path:
    return require_corpus()
