"""Helpers shared by the benchmark scripts: data location, timing and peak memory."""

from __future__ import annotations

import os
import resource
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

DATA_DIR = Path(os.environ.get("SYNTHGEN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def load(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA_DIR / f"{name}.parquet")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timer(results: dict, key: str):
    start = time.perf_counter()
    yield
    results[key] = time.perf_counter() - start
