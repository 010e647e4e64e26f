"""Helpers shared by the benchmark scripts: data location, timing and peak memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pandas as pd

DATA_DIR = Path(os.environ.get("SYNTHGEN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def add_comparison_arguments(parser, sample_seeds: str) -> None:
    """The options shared by the side-by-side benchmarks (bench_tabular, bench_sequential): threads, the
    reference engine (skip or cache it), the DCR evaluations and synthgen's seed and extra settings (ablations)."""
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--dcr-evaluations", type=int, default=3,
                        help="evaluations (seeds 0..n-1) whose median DCR share is printed as dcr_share_median")
    parser.add_argument("--reference-cache", default=None,
                        help="folder for the reference engine's figures and sample: written after its run, reused "
                             "instead of rerunning it when the split and settings match (ablations of synthgen)")
    parser.add_argument("--seed", type=int, default=0,
                        help=f"synthgen's random_state (samples use {sample_seeds})")
    parser.add_argument("--synthgen-options", default="{}",
                        help="JSON of extra TabularSynthesizer keyword arguments (ablations)")


def load(name: str) -> pd.DataFrame:
    return pd.read_parquet(DATA_DIR / f"{name}.parquet")


class FlightsSplit(NamedTuple):
    trn_planes: pd.DataFrame
    holdout_planes: pd.DataFrame
    trn_flights: pd.DataFrame
    holdout_flights: pd.DataFrame


def flights_split() -> FlightsSplit:
    """The planes/flights benchmarks' split: a fifth of the planes (seed 0), with all their flights, held out."""
    planes, flights = load("planes"), load("flights")
    holdout_planes = planes.sample(frac=0.2, random_state=0)
    trn_planes = planes.drop(holdout_planes.index).reset_index(drop=True)
    trn_flights = flights[flights["tailnum"].isin(trn_planes["tailnum"])].reset_index(drop=True)
    holdout_flights = flights[flights["tailnum"].isin(holdout_planes["tailnum"])].reset_index(drop=True)
    return FlightsSplit(trn_planes, holdout_planes, trn_flights, holdout_flights)


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


def run_engine_cached(python: str, script: str, args: dict, threads: int, cache: str | None, key: dict,
                      outputs: list[str]) -> dict:
    """``run_engine``, or a cached earlier run's figures and output files when ``cache`` holds one for ``key``.

    The reference engine is the slow part of a side-by-side benchmark; ablations of synthgen rerun only synthgen
    against the reference's cached figures and sample. ``key`` (the settings and split) plus a hash of ``script``
    must match exactly, otherwise the engine runs and the cache is rewritten. ``outputs`` are the keys of
    ``args`` naming files the script writes; they are copied into (and later out of) the cache directory.
    """
    import hashlib
    import shutil

    if cache is None:
        return run_engine(python, script, args, threads)
    folder = Path(cache)
    key = {**key, "threads": threads, "script": hashlib.sha256(script.encode()).hexdigest()}
    stored = folder / "figures.json"
    if stored.exists():
        content = json.loads(stored.read_text())
        if content["key"] == key and all((folder / name).exists() for name in outputs):
            for name in outputs:
                shutil.copyfile(folder / name, args[name])
            print(f"reusing the cached run in {folder}", flush=True)
            return content["figures"]
    figures = run_engine(python, script, args, threads)
    folder.mkdir(parents=True, exist_ok=True)
    for name in outputs:
        shutil.copyfile(args[name], folder / name)
    stored.write_text(json.dumps({"key": key, "figures": figures}, indent=1))
    return figures


EQUAL_SIZE_PARTS = ("overall", "univariate", "bivariate", "trivariate", "coherence")


def equal_size_figures(training: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                       context_key: str | None = None, draws: int = 3) -> dict[str, float]:
    """Accuracy parts of synthetic samples of the holdout's size (rows, or sequences by ``context_key``).

    A holdout smaller than the synthetic sample reads less accurate from sampling noise alone (a 9,768-row
    holdout against 39,074 synthetic rows), so its "ceiling" can lie below a good model's figure. At equal
    size both carry the same noise and the gap to the ceiling is the model's. Median over ``draws`` samples;
    keys ``<part>_at_holdout_size``.
    """
    import numpy as np

    from synthgen import evaluate

    values: dict[str, list[float]] = {}
    for seed in range(draws):
        if context_key is None:
            part = synthetic.sample(n=min(len(holdout), len(synthetic)), random_state=seed)
        else:
            keys = pd.Series(synthetic[context_key].unique())
            chosen = keys.sample(n=min(holdout[context_key].nunique(), len(keys)), random_state=seed)
            part = synthetic[synthetic[context_key].isin(chosen)]
        figures = evaluate(training, part.reset_index(drop=True), holdout, context_key=context_key, privacy=False,
                           discriminator=False, random_state=seed).to_dict()
        for key in EQUAL_SIZE_PARTS:
            if isinstance(figures.get(key), float):
                values.setdefault(f"{key}_at_holdout_size", []).append(figures[key])
    return {key: float(np.median(found)) for key, found in values.items()}


def with_equal_size_figures(figures: dict, training: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame,
                            context_key: str | None = None) -> dict:
    """``figures`` plus :func:`equal_size_figures`, each beside its holdout ceiling (``reference_<key>``)."""
    added = equal_size_figures(training, synthetic, holdout, context_key)
    ceilings = {f"reference_{key}": figures.get(f"reference_{key.removesuffix('_at_holdout_size')}") for key in added}
    return {**figures, **added, **ceilings}


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


def ks_distance(a, b) -> float:
    """The two-sample Kolmogorov–Smirnov distance of two numeric arrays (NaNs left out)."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = np.sort(a[~np.isnan(a)]), np.sort(b[~np.isnan(b)])
    if not len(a) or not len(b):
        return float("nan")
    grid = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, grid, "right") / len(a)
                               - np.searchsorted(b, grid, "right") / len(b))))


def numeric_columns(training: pd.DataFrame) -> list[str]:
    """The columns whose KS distance the benchmarks print: numeric, not boolean, more than two values."""
    return [c for c in training.columns if pd.api.types.is_numeric_dtype(training[c])
            and not pd.api.types.is_bool_dtype(training[c]) and training[c].nunique() > 2]


def numeric_ks(training: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Per column of :func:`numeric_columns`: the KS distance of ``synthetic`` to ``training`` and the holdout's."""
    import numpy as np

    def values(frame, column):
        return frame[column].to_numpy(dtype=float, na_value=np.nan)

    return {c: (ks_distance(values(synthetic, c), values(training, c)),
                ks_distance(values(holdout, c), values(training, c))) for c in numeric_columns(training)}


def print_numeric_ks(training: pd.DataFrame, synthetic: dict[str, pd.DataFrame], holdout: pd.DataFrame) -> None:
    """Per numeric column: KS distance of each synthetic frame to the training rows, next to the holdout's.

    ``new last 2`` is the share of a synthetic frame's integer values whose last two digits never occur in the
    training column (clock times HHMM ending in 60–99, say): values impossible in the original.
    """
    import numpy as np

    columns = numeric_columns(training)
    names = list(synthetic)
    print(f"\n{'KS vs training':<22}" + "".join(f"{n:>18}" for n in names) + f"{'holdout':>12}"
          + "".join(f"{'new last 2 ' + n[:7]:>20}" for n in names))
    for column in columns:
        real = training[column].to_numpy(dtype=float, na_value=np.nan)
        hol = ks_distance(holdout[column].to_numpy(dtype=float, na_value=np.nan), real)
        cells = []
        unseen = []
        integral = np.all(np.mod(real[~np.isnan(real)], 1) == 0)
        seen = np.unique(np.abs(real[~np.isnan(real)]) % 100) if integral else None
        for name in names:
            values = synthetic[name][column].to_numpy(dtype=float, na_value=np.nan)
            ks = ks_distance(values, real)
            cells.append(f"{ks:>12.4f} ({ks / hol if hol else float('nan'):>4.1f}x)")
            present = values[~np.isnan(values)]
            unseen.append(float(np.mean(~np.isin(np.abs(present) % 100, seen))) if integral and len(present)
                          else float("nan"))
        print(f"{column:<22}" + "".join(cells) + f"{hol:>12.4f}" + "".join(f"{u:>20.4f}" for u in unseen))


def print_losses(losses: dict[str, pd.DataFrame]) -> None:
    """The columns that lose most overall accuracy against the holdout, per engine (``diagnose(by="column")``)."""
    for name, table in losses.items():
        cells = ", ".join(f"{row.column} {100 * row.loss:.2f}" for row in table.itertuples())
        print(f"largest losses against the holdout, {name} (points of overall accuracy): {cells}")


def print_dependencies(training: pd.DataFrame, synthetic: dict[str, pd.DataFrame], *, max_values: int = 10_000,
                       min_rows_per_value: int = 5) -> None:
    """Per exact relation A -> B of the training rows (every row with the same A value has the same B value, A
    with at most ``max_values`` values and ``min_rows_per_value`` rows per value, B not constant): the share of
    each synthetic frame's rows whose B is the training's B of their A, among the rows whose A value occurs in
    the training rows (that share in brackets). The benchmark's own check, independent of synthgen's detection.
    """
    columns = [c for c in training.columns if training[c].nunique(dropna=False) > 1]
    pairs = []
    for a in columns:
        n_values = training[a].nunique(dropna=False)
        if n_values > max_values or len(training) < min_rows_per_value * n_values:
            continue
        grouped = training.groupby(a, dropna=False, sort=False)
        for b in columns:
            if b != a and grouped[b].nunique(dropna=False).max() == 1:
                pairs.append((a, b, grouped[b].first()))
    if not pairs:
        print("\nno exact relations A -> B in the training rows")
        return
    names = list(synthetic)
    print(f"\n{'relation A -> B':<34}" + "".join(f"{n:>28}" for n in names))
    for a, b, mapping in pairs:
        cells = []
        for name in names:
            frame = synthetic[name]
            known = frame[a].isin(mapping.index).to_numpy()
            expected = frame[a][known].map(mapping).astype(object).to_numpy()
            actual = frame[b][known].astype(object).to_numpy()
            same = (pd.Series(expected) == pd.Series(actual)) | (pd.isna(expected) & pd.isna(actual))
            cells.append(f"{same.mean() if known.any() else float('nan'):>18.4f} ({known.mean():.3f})")
        print(f"{a + ' -> ' + b:<34}" + "".join(cells))
