"""Shared fixtures: where the real data lives (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    configured = os.environ.get("FAIRAUDIT_DATA")
    return Path(configured) if configured else (REPOSITORY / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "davidson-2017" / "labeled_data.csv").is_file():
        pytest.fail(f"real data not found at {path}; set FAIRAUDIT_DATA to the shared data folder")
    return path


@pytest.fixture(scope="session")
def davidson_csv(data_dir: Path) -> Path:
    return data_dir / "davidson-2017" / "labeled_data.csv"


@pytest.fixture(autouse=True)
def _score_cache_in_tmp(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the score cache of every test out of the user's home folder."""
    monkeypatch.setenv("FAIRAUDIT_CACHE", str(tmp_path_factory.getbasetemp() / "score-cache"))
