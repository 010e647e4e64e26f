"""Cost against rows (part (a) of bench_scale.py): split + analyze + encode and one training epoch of a wide table.

The table (default 50 columns) is built by resampling and perturbing the census (adult) and flights columns, and
written as parquet parts in chunks, so building it never holds more than one chunk:

- every chunk draws its rows with replacement, independently from adult and from flights (the columns of one
  source stay jointly consistent within a row, the two sources are independent);
- the 50 columns cycle through the 33 non-key source columns (all adult columns and the flights columns
  except ``tailnum`` and ``time_hour``); the k-th copy of a column is perturbed: numbers get Gaussian noise of
  ``0.05 * k`` standard deviations (rounded back for integer columns, NULLs kept), categories are replaced by
  a category drawn from the column's own distribution with probability ``0.05 * k``; the first copy is exact.

Each size runs in a fresh subprocess reading the parquet folder (the out-of-core path), so its memory is its
own. Per stage the script reports seconds and the peak resident memory of that stage (the process's high-water
mark is reset before every stage through ``/proc/self/clear_refs``; where that is not allowed the peak so far is
reported, which then only grows). The growth is fitted on a log-log scale: a slope of 1 is linear.

    python benchmarks/_scale_rows.py                       # 0.1M and 1M rows
    python benchmarks/_scale_rows.py --sizes 100000 1000000 5000000
    python benchmarks/_scale_rows.py --sizes 1000000 --stages split analyze   # only the first stages
    python benchmarks/_scale_rows.py --sizes 1000000 --n-partitions 24        # at least 24 partitions

``bench_scale.py`` imports :func:`rows_cost_table` and :func:`growth_slopes`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load  # noqa: E402

__all__ = ["STAGES", "build_wide_table", "growth_slopes", "rows_cost_table"]

STAGES = ("split", "analyze", "encode", "train_1_epoch")
_REPO = Path(__file__).resolve().parents[1]
CHUNK_ROWS = 250_000
_PERTURBATION = 0.05


def _source_columns() -> list[tuple[str, pd.Series]]:
    adult = load("adult")
    flights = load("flights").drop(columns=["tailnum", "time_hour"])
    return [("adult", adult[c]) for c in adult.columns] + [("flights", flights[c]) for c in flights.columns]


def _perturbed(values: pd.Series, copy: int, rng: np.random.Generator, pool: pd.Series) -> pd.Series:
    if copy == 0:
        return values.reset_index(drop=True)
    strength = _PERTURBATION * copy
    values = values.reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(values.dtype):
        noisy = values.astype(float) + rng.normal(0.0, strength * float(pool.std() or 1.0), len(values))
        if pd.api.types.is_integer_dtype(values.dtype):
            return noisy.round().astype(values.dtype)
        return noisy.where(values.notna())
    replace = rng.random(len(values)) < strength
    replacement = pool.sample(n=int(replace.sum()), replace=True, random_state=rng).to_numpy()
    out = values.copy()
    out[replace] = replacement
    return out


def build_wide_table(folder: str | Path, n_rows: int, n_cols: int = 50, *, seed: int = 0,
                     chunk_rows: int = CHUNK_ROWS) -> Path:
    """Write an ``n_rows`` x ``n_cols`` table as parquet parts ``part-NNNN.parquet`` into ``folder``.

    Parameters
    ----------
    folder : str or Path
        Created if needed.
    n_rows, n_cols : int
        The shape of the table.
    seed : int, default=0
        Seed of the resampling and of the perturbations.
    chunk_rows : int, default=250000
        Rows per part file; the most rows held in memory at once.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sources = _source_columns()
    sizes = {"adult": len(sources[0][1]), "flights": len(sources[-1][1])}
    rng = np.random.default_rng(seed)
    for index, start in enumerate(range(0, n_rows, chunk_rows)):
        n = min(chunk_rows, n_rows - start)
        rows = {name: rng.integers(0, size, n) for name, size in sizes.items()}
        columns = {}
        for j in range(n_cols):
            source, values = sources[j % len(sources)]
            copy = j // len(sources)
            columns[f"{source}_{values.name}_{copy}"] = _perturbed(values.iloc[rows[source]], copy, rng, values)
        pq.write_table(pa.Table.from_pandas(pd.DataFrame(columns), preserve_index=False),
                       folder / f"part-{index:04d}.parquet")
    return folder


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _measure(folder: str, model: str, epochs: float, stages=STAGES, n_partitions: int = 1) -> list[dict]:
    """Run the stages (the first ones, in order, up to the last of ``stages``) on the parquet folder in this
    process; one record per stage."""
    import torch

    import synthgen as sg
    import synthgen.stages  # noqa: F401

    # one-off costs that are not the stages': the first optimizer imports torch._dynamo (15 s on a busy machine)
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])

    records = []
    with tempfile.TemporaryDirectory() as ws:
        steps = {
            "split": lambda: sg.split(folder, workspace_dir=ws, n_partitions=n_partitions, random_state=0,
                                      verbose=False),
            "analyze": lambda: sg.analyze(workspace_dir=ws, random_state=0, verbose=False),
            "encode": lambda: sg.encode(workspace_dir=ws, random_state=0, verbose=False),
            "train_1_epoch": lambda: sg.train(workspace_dir=ws, model=model, max_epochs=epochs, random_state=0,
                                              verbose=False, n_threads=1),
        }
        last = max(STAGES.index(stage) for stage in stages)
        for stage, step in list(steps.items())[:last + 1]:
            reset = _reset_peak()
            start = time.perf_counter()
            step()
            records.append({"stage": stage, "seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(),
                            "peak_is_per_stage": reset})
        n_partitions = len(sg.Workspace(ws).partitions(sg.Workspace(ws).data_dir("tgt"), "trn"))
    for record in records:
        record["n_partitions"] = n_partitions
    return records


def rows_cost_table(sizes=(100_000, 1_000_000, 5_000_000), *, n_cols: int = 50, model: str = "MOSTLY_AI/Small",
                    epochs: float = 1.0, workdir: str | Path | None = None, stages=STAGES,
                    n_partitions: int = 1) -> pd.DataFrame:
    """Seconds and peak memory of every stage at every size (each size in a fresh subprocess).

    Parameters
    ----------
    sizes : sequence of int
        Numbers of rows.
    n_cols : int, default=50
        Columns of the wide table.
    model : str, default="MOSTLY_AI/Small"
        The model trained for one epoch.
    epochs : float, default=1.0
        Epochs of the training stage.
    workdir : str or Path, optional
        Where the tables are written (default: a temporary folder, removed afterwards).
    stages : sequence of str, default=STAGES
        The stages run: all up to the last one named (each needs the ones before it).
    n_partitions : int, default=1
        ``split``'s ``n_partitions``: the least number of partitions (more where one would exceed 256 MiB).

    Returns
    -------
    DataFrame
        One row per (rows, stage): ``rows``, ``cols``, ``stage``, ``seconds``, ``peak_rss_mb``,
        ``peak_is_per_stage``, ``n_partitions``, ``build_seconds``.
    """
    records = []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for n_rows in sizes:
            folder = Path(tmp) / f"wide-{n_rows}"
            start = time.perf_counter()
            build_wide_table(folder, n_rows, n_cols)
            build_seconds = time.perf_counter() - start
            # the repository's synthgen first, as when running from its root
            path = os.pathsep.join(p for p in (str(_REPO), os.environ.get("PYTHONPATH")) if p)
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": path}
            done = subprocess.run([sys.executable, __file__, "--measure", str(folder), "--model", model,
                                   "--epochs", str(epochs), "--n-partitions", str(n_partitions), "--stages", *stages],
                                  capture_output=True, text=True, env=env)
            if done.returncode != 0:
                raise RuntimeError(f"{n_rows} rows: {done.stderr[-4000:]}")
            for record in json.loads(done.stdout.strip().splitlines()[-1]):
                records.append({"rows": n_rows, "cols": n_cols, **record, "build_seconds": build_seconds})
            for part in folder.glob("*.parquet"):
                part.unlink()
    return pd.DataFrame(records)


def growth_slopes(table: pd.DataFrame) -> pd.DataFrame:
    """Per stage, the log-log slope of seconds and of peak memory against rows (1 = linear growth)."""
    out = []
    for stage, rows in table.groupby("stage", sort=False):
        if rows["rows"].nunique() < 2:
            continue
        x = np.log(rows["rows"].to_numpy(float))
        out.append({"stage": stage,
                    "seconds_slope": float(np.polyfit(x, np.log(rows["seconds"].to_numpy(float)), 1)[0]),
                    "peak_rss_slope": float(np.polyfit(x, np.log(rows["peak_rss_mb"].to_numpy(float)), 1)[0])})
    total = table.groupby("rows")["seconds"].sum()
    if len(total) >= 2:
        out.append({"stage": "total", "seconds_slope": float(np.polyfit(np.log(total.index.to_numpy(float)),
                                                                        np.log(total.to_numpy()), 1)[0]),
                    "peak_rss_slope": float("nan")})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--model", default="MOSTLY_AI/Small")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="run the stages up to the last one named")
    parser.add_argument("--n-partitions", type=int, default=1, help="split's n_partitions (a least number)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.measure, args.model, args.epochs, args.stages, args.n_partitions)))
        return
    table = rows_cost_table(args.sizes, n_cols=args.cols, model=args.model, epochs=args.epochs, stages=args.stages,
                            n_partitions=args.n_partitions)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(table.round(2).to_string(index=False))
        print()
        print("log-log growth (1 = linear):")
        print(growth_slopes(table).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
