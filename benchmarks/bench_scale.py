"""Scale: (a) cost against rows, (b) generation of many rows to parquet with flat memory, (c) training on 2
processes vs 1.

(a) is ``benchmarks/_scale_rows.py`` (split + analyze + encode and one training epoch at growing row counts).

(b) fits a small model on 5,000 adult rows, then writes N rows with ``sample_to_parquet`` (blocks of 100,000
rows) in a fresh process per run, and prints seconds, rows/s and the peak resident memory of every process
that generated: in-process (``n_jobs=1``), on 2 local joblib (loky) processes, and on a Dask ``LocalCluster``
of 2 worker processes (the peak of each worker, read on the worker). Memory is flat when the peak at 10M rows
is that at 1M.

(c) trains the small flat model on an adult slice with ``train(n_processes=2)`` (2 gloo ranks, a batch of
B/2 per rank) and with one process (batch B): the same samples seen per epoch, the same steps, the same
learning rate. Prints samples/s of the training loop and the best validation loss reached. On 2 busy cores a
speed gain is not expected; equal quality is.

    python benchmarks/bench_scale.py            # (a) 0.1M/1M/5M rows, (b) 1M and 10M rows, (c) 40,000 rows
    python benchmarks/bench_scale.py --quick    # (b) 100k and 1M rows, (c) 8,000 rows
    python benchmarks/bench_scale.py --part b   # one part only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load, peak_rss_mb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIT_ROWS = 5_000
BACKENDS = ("local-1", "loky-2", "dask-2")
BLOCK = 100_000


def _run_worker(kind: str, args: dict) -> dict:
    """Run ``kind`` in a fresh interpreter (its own peak memory); it prints one JSON line last."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, __file__, "--worker", kind, json.dumps(args)], capture_output=True,
                          text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-4000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- (b) generation ----------------------------------------------------------------------------------------

def _fit_model(path: str) -> None:
    import joblib
    import torch

    from synthgen import TabularSynthesizer

    torch.set_num_threads(1)
    data = load("adult").sample(n=FIT_ROWS, random_state=0)
    synth = TabularSynthesizer(model="small", max_epochs=1, random_state=0, verbose=False).fit(data)
    joblib.dump(synth, path)
    print(json.dumps({"columns": data.shape[1]}))


def _worker_peak(_: int) -> tuple[int, float]:
    time.sleep(0.2)  # spread the calls over the workers
    return os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _generate(model: str, folder: str, n: int, backend: str) -> None:
    import joblib

    synth = joblib.load(model)
    start = time.perf_counter()
    workers: list[float] = []
    if backend == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            start = time.perf_counter()
            synth.sample_to_parquet(folder, n, batch_size=BLOCK, random_state=1, client=client)
            seconds = time.perf_counter() - start
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            workers = sorted(peaks.values())
    else:
        synth.sample_to_parquet(folder, n, batch_size=BLOCK, random_state=1, n_jobs=1 if backend == "local-1" else 2)
        seconds = time.perf_counter() - start
        if backend == "loky-2":  # the peaks of the (still running, reusable) loky workers, read in them
            from joblib.externals.loky import get_reusable_executor

            executor = get_reusable_executor(max_workers=2)
            peaks = {pid: mb for pid, mb in executor.map(_worker_peak, range(8))}
            workers = sorted(peaks.values())
    import pyarrow.parquet as pq

    parts = sorted(Path(folder).glob("part.*.parquet"))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    print(json.dumps({"seconds": seconds, "rows": rows, "parts": len(parts), "peak_mb": peak_rss_mb(),
                      "worker_peak_mb": workers}))


def part_b(quick: bool, sizes: list[int] | None = None) -> None:
    sizes = sizes or ([100_000, 1_000_000] if quick else [1_000_000, 10_000_000])
    print(f"(b) generation to parquet: a small model of adult ({FIT_ROWS} rows fitted, 1 epoch), blocks of "
          f"{BLOCK:,} rows, one process per run")
    with tempfile.TemporaryDirectory() as tmp:
        model = str(Path(tmp) / "model.joblib")
        _run_worker("fit", {"path": model})
        print(f"{'backend':<10}{'rows':>12}{'parts':>7}{'seconds':>10}{'rows/s':>10}{'peak MB (main)':>16}"
              f"{'peak MB (workers)':>20}")
        for backend in BACKENDS:
            for n in sizes:
                folder = str(Path(tmp) / f"{backend}-{n}")
                try:
                    r = _run_worker("generate", {"model": model, "folder": folder, "n": n,
                                                 "backend": "dask" if backend == "dask-2" else backend})
                except RuntimeError as err:
                    print(f"{backend:<10}{n:>12,}  failed: {str(err).strip().splitlines()[-1]}")
                    continue
                workers = "/".join(f"{w:.0f}" for w in r["worker_peak_mb"]) or "-"
                print(f"{backend:<10}{r['rows']:>12,}{r['parts']:>7}{r['seconds']:>10.1f}"
                      f"{r['rows'] / r['seconds']:>10.0f}{r['peak_mb']:>16.0f}{workers:>20}", flush=True)
                for p in Path(folder).glob("*.parquet"):
                    p.unlink()


# -- (c) distributed training ------------------------------------------------------------------------------

def _prepare(ws: str, rows: int) -> None:
    import synthgen as sg

    data = load("adult").sample(n=rows, random_state=0).reset_index(drop=True)
    sg.split(data, workspace_dir=ws, random_state=0, verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    print(json.dumps({"rows": rows}))


def _train(ws: str, processes: int, batch: int, epochs: float) -> None:
    import torch

    import synthgen as sg
    from synthgen._workspace import Workspace

    torch.set_num_threads(1)
    sg.train(workspace_dir=ws, model="small", max_epochs=epochs, batch_size=batch // processes, n_threads=1,
             n_processes=processes if processes > 1 else None, random_state=0, verbose=False)
    history = Workspace(ws).read_progress()
    print(json.dumps({"samples": int(history["samples"].iloc[-1]), "steps": int(history["steps"].iloc[-1]),
                      "seconds": float(history["total_time"].iloc[-1]),
                      "best_val_loss": float(history["val_loss"].min()),
                      "val_loss": [round(float(v), 4) for v in history["val_loss"]]}))


def part_c(quick: bool) -> None:
    rows, batch, epochs = (8_000, 256, 2) if quick else (40_000, 512, 4)
    print(f"(c) data-parallel training: adult, {rows} rows (80 % training), small model, {epochs} epochs, "
          f"global batch {batch}, one torch thread per process")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        _run_worker("prepare", {"ws": str(base), "rows": rows})
        print(f"{'processes':<10}{'samples':>10}{'steps':>8}{'seconds':>10}{'samples/s':>11}{'best val loss':>15}"
              "  val loss per epoch")
        for processes in (1, 2):
            ws = Path(tmp) / f"p{processes}"
            subprocess.run(["cp", "-r", str(base), str(ws)], check=True)
            r = _run_worker("train", {"ws": str(ws), "processes": processes, "batch": batch, "epochs": epochs})
            print(f"{processes:<10}{r['samples']:>10,}{r['steps']:>8}{r['seconds']:>10.1f}"
                  f"{r['samples'] / r['seconds']:>11.0f}{r['best_val_loss']:>15.4f}  {r['val_loss']}", flush=True)


# -- (a) cost against rows ---------------------------------------------------------------------------------

def part_a(quick: bool) -> None:
    try:
        from _scale_rows import rows_cost_table
    except ImportError:
        print("(a) cost against rows is run by benchmarks/_scale_rows.py (not on this branch yet)")
        return
    sizes = (20_000, 100_000, 200_000) if quick else (100_000, 1_000_000, 5_000_000)
    table = rows_cost_table(sizes=sizes)
    if table is not None:
        print(table)


WORKERS = {"fit": lambda a: _fit_model(a["path"]),
           "generate": lambda a: _generate(a["model"], a["folder"], a["n"], a["backend"]),
           "prepare": lambda a: _prepare(a["ws"], a["rows"]),
           "train": lambda a: _train(a["ws"], a["processes"], a["batch"], a["epochs"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--part", choices=["a", "b", "c"], action="append", help="run only these parts")
    parser.add_argument("--sizes", type=int, nargs="+", help="(b): these row counts instead")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        WORKERS[args.worker[0]](json.loads(args.worker[1]))
        return
    for part in args.part or ["a", "b", "c"]:
        if part == "b":
            part_b(args.quick, args.sizes)
        else:
            {"a": part_a, "c": part_c}[part](args.quick)
        print()


if __name__ == "__main__":
    main()
