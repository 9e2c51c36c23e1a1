"""Benchmarks: run with `make bench` (pytest-benchmark); figures are kept in README.md."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED_DATA = Path(
    os.environ.get("RETROSEARCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data in ../shared/data; the benchmark is skipped when it is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set RETROSEARCH_SHARED_DATA to point at it)")
    return SHARED_DATA
