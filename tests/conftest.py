"""Shared fixtures: paths to the real traces and model configs beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MOONCAKE = SHARED / "traces" / "mooncake_conversation.jsonl"
AZURE = SHARED / "traces" / "azure_llm_2023_conv.csv"
VIDUR_CSV = SHARED / "anchors" / "vidur" / "splitwise_conv.csv"
MODEL_CONFIGS = SHARED / "models"


def require(path: Path) -> Path:
    """Skip the calling test, with a clear reason, when a shared data file is absent."""
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (tests read ../shared beside the repository)")
    return path


@pytest.fixture
def mooncake_trace() -> Path:
    return require(MOONCAKE)


@pytest.fixture
def azure_trace() -> Path:
    return require(AZURE)


@pytest.fixture
def model_configs() -> Path:
    return require(MODEL_CONFIGS)
