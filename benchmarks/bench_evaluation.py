"""Benchmark of synthgen.evaluation: all figures for an independent-resampling baseline, and their cost.

Run ``python benchmarks/bench_evaluation.py``. Data comes from ``../shared/data`` next to the repository, or
from the folder in the environment variable ``SYNTHGEN_DATA_DIR``.

For each dataset the rows (adult) or the planes (planes/flights) are split 80/20 with seed 0. The baseline
synthesizer draws every column independently, with replacement, from the training part; for flights it also
draws the sequence lengths from the training planes. It keeps univariate distributions and nothing else, so
univariate accuracy should be near the holdout reference while bivariate, trivariate and coherence fall, the
discriminator spots it, and the privacy figures show no memorisation (DCR share near 50 %).

Printed: every figure with its holdout reference, the wall time of ``evaluate`` and the peak memory of the
process. A last run times the distance figures on 50,000 x 50,000 x 50,000 records.

``--seed-spread N`` instead evaluates the same adult and flights files with ``random_state`` 0 .. N-1 and
prints how much each figure moves across evaluation seeds (``evaluate``'s default is the fixed seed 0).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from synthgen.evaluation import evaluate

DATA_DIR = Path(
    os.environ.get("SYNTHGEN_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)
SEED = 0


def split_rows(frame: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = rng.permutation(len(frame))
    n_training = int(round(0.8 * len(frame)))
    return (
        frame.iloc[order[:n_training]].reset_index(drop=True),
        frame.iloc[order[n_training:]].reset_index(drop=True),
    )


def resample_columns(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """The baseline: every column drawn independently, with replacement, from ``frame``."""
    return pd.DataFrame({c: frame[c].to_numpy()[rng.integers(0, len(frame), n)] for c in frame}).astype(
        frame.dtypes
    )


def resample_sequences(training: pd.DataFrame, key: str, rng: np.random.Generator) -> pd.DataFrame:
    """Baseline sequences: lengths drawn from the training sequences, steps drawn column by column."""
    lengths = training.groupby(key, sort=False).size().to_numpy()
    synthetic_lengths = rng.choice(lengths, size=len(lengths))
    steps = resample_columns(training.drop(columns=key), int(synthetic_lengths.sum()), rng)
    keys = np.repeat([f"synthetic-{i}" for i in range(len(lengths))], synthetic_lengths)
    return steps.assign(**{key: keys})[list(training.columns)]


def timed_evaluate(title: str, *args, **kwargs) -> None:
    started = time.perf_counter()
    result = evaluate(*args, random_state=SEED, **kwargs)
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n=== {title} ===")
    print(result)
    print(f"evaluate took {elapsed:.1f} s (peak memory of the process so far: {peak_mib:,.0f} MiB)")


SPREAD_FIGURES = ("overall", "univariate", "bivariate", "trivariate", "coherence", "discriminator_auc", "dcr_share")


def seed_spread(title: str, n_seeds: int, *args, **kwargs) -> None:
    """Evaluate the same frames with ``n_seeds`` seeds; print each figure's mean, spread and range."""
    results = [evaluate(*args, random_state=seed, **kwargs) for seed in range(n_seeds)]
    print(f"\n=== {title}: {n_seeds} evaluation seeds ===")
    print(f"{'figure':<18} {'mean':>8} {'std':>8} {'min':>8} {'max':>8}   (percent)")
    for figure in SPREAD_FIGURES:
        values = np.array([getattr(r, figure) for r in results if getattr(r, figure) is not None], dtype=float)
        if len(values):
            values *= 100
            print(f"{figure:<18} {values.mean():8.2f} {values.std(ddof=1):8.2f} {values.min():8.2f} {values.max():8.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed-spread", type=int, default=0, metavar="N",
                        help="evaluate the same files with N seeds and print the spread of every figure")
    args = parser.parse_args()
    if not DATA_DIR.is_dir():
        print(f"Data folder {DATA_DIR} not found; set SYNTHGEN_DATA_DIR.", file=sys.stderr)
        return 1
    rng = np.random.default_rng(SEED)

    adult = pd.read_parquet(DATA_DIR / "adult.parquet")
    training, holdout = split_rows(adult, rng)
    synthetic = resample_columns(training, len(training), rng)
    if args.seed_spread:
        seed_spread("adult (flat), independent column resampling", args.seed_spread, training, synthetic, holdout)
    else:
        timed_evaluate("adult (flat), independent column resampling", training, synthetic, holdout)

    planes = pd.read_parquet(DATA_DIR / "planes.parquet")
    flights = pd.read_parquet(DATA_DIR / "flights.parquet")
    planes_training, planes_holdout = split_rows(planes, rng)
    in_training = flights["tailnum"].isin(planes_training["tailnum"])
    flights_training = flights[in_training].reset_index(drop=True)
    flights_holdout = flights[~in_training].reset_index(drop=True)
    flights_synthetic = resample_sequences(flights_training, "tailnum", rng)
    planes_synthetic = resample_columns(planes_training, len(planes_training), rng)
    planes_synthetic["tailnum"] = flights_synthetic["tailnum"].unique()
    if args.seed_spread:
        seed_spread("flights (sequences by tailnum), independent resampling", args.seed_spread,
                    flights_training, flights_synthetic, flights_holdout, context_key="tailnum")
        return 0
    timed_evaluate(
        "planes (context table, flat), independent column resampling",
        planes_training.drop(columns="tailnum"),
        planes_synthetic.drop(columns="tailnum"),
        planes_holdout.drop(columns="tailnum"),
    )
    timed_evaluate(
        "flights (sequences by tailnum), independent resampling of lengths and columns",
        flights_training,
        flights_synthetic,
        flights_holdout,
        context_key="tailnum",
    )

    n = 50_000
    timed_evaluate(
        f"distance figures at {n:,} x {n:,} x {n:,} records (adult rows drawn with replacement)",
        adult.iloc[rng.integers(0, len(adult), n)],
        resample_columns(adult, n, rng),
        adult.iloc[rng.integers(0, len(adult), n)],
        discriminator=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
