"""Helpers shared by the benchmark scripts: data location, timing and peak memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
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


def run_engine(python: str, script: str, args: dict, threads: int) -> dict:
    """Run an engine's benchmark ``script`` in a fresh process with ``threads`` compute threads.

    The script gets ``args`` as JSON in ``sys.argv[1]`` and prints one JSON line of figures last.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    result = subprocess.run([python, "-c", script, json.dumps(args)], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-4000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_side_by_side(rows: dict[str, dict], keys: list[str], ceiling_of: str = "synthgen") -> None:
    """One line per figure: each engine's value and the holdout ceiling (``reference_<figure>``)."""
    print(f"{'figure':<22}" + "".join(f"{n:>18}" for n in rows) + f"{'holdout ceiling':>18}")
    for key in keys:
        cells = []
        for figures in rows.values():
            value = figures.get(key)
            cells.append(f"{value:>18.4f}" if isinstance(value, float) else f"{'' if value is None else value!s:>18}")
        ceiling = rows[ceiling_of].get(f"reference_{key}")
        cells.append(f"{ceiling:>18.4f}" if isinstance(ceiling, float) else f"{'':>18}")
        print(f"{key:<22}" + "".join(cells))
