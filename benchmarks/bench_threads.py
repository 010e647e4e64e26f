"""Training and sampling speed per torch thread count, on an idle machine and under background load.

For each condition (``idle``; ``busy``: one bounded busy-loop process per core, started by this script) and
each thread setting (``auto``: ``n_threads=None``; ``default``: torch's own default, one thread per core;
``1``), a fresh process fits ``TabularSynthesizer`` on a bundled dataset and samples from it:

- ``census``: the 10,000-row census sample, ``--epochs`` epochs (default 3);
- ``flights``: the two-table planes/flights sample (400 planes, 35,560 flights), ``--flights-epochs`` epochs
  (default 1).

Training is capped at ``--cap`` seconds per run (the catastrophic settings are reported as seconds per epoch
over the epochs they reached). Sampling: 10,000 census rows; the flights of 100 planes.

    python benchmarks/bench_threads.py                       # both conditions, both datasets
    python benchmarks/bench_threads.py --conditions busy --data census --cap 60

Prints one line per run: dataset, condition, setting, threads used, epochs, training seconds, seconds per
epoch, sampling seconds, and the 1-minute load average when the run started.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

RUN = """
import json, logging, sys, time
import torch
args = json.loads(sys.argv[1])
from synthgen import TabularSynthesizer
from synthgen.datasets import load_census, load_flights

used = []
class Capture(logging.Handler):
    def emit(self, record):
        used.append(record.args[0])
logger = logging.getLogger("synthgen._threads")
logger.setLevel(logging.DEBUG)
logger.addHandler(Capture())

n_threads = {"auto": None, "default": torch.get_num_threads(), "1": 1}[args["setting"]]
budget = dict(max_epochs=args["epochs"], max_training_time=args["cap"] / 60, n_threads=n_threads, random_state=0,
              verbose=False)
if args["data"] == "census":
    data, fit_kw, sample_kw = load_census(), {}, {"n_samples": 10_000}
    synth = TabularSynthesizer(**budget)
else:
    planes, data = load_flights()
    fit_kw, sample_kw = {"context": planes}, {"n_samples": 100}
    synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum", **budget)
start = time.perf_counter()
synth.fit(data, **fit_kw)
fit_s = time.perf_counter() - start
start = time.perf_counter()
synth.sample(**sample_kw)
sample_s = time.perf_counter() - start
last = synth.history_.iloc[-1]
print(json.dumps({"threads": used[0], "sample_threads": used[-1], "epochs": float(last["epoch"]),
                  "train_s": float(last["total_time"]), "fit_s": fit_s, "sample_s": sample_s}))
"""


def _spin(deadline: float) -> None:
    while time.time() < deadline:
        pass


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run(data: str, setting: str, epochs: float, cap: float) -> dict:
    args = json.dumps({"data": data, "setting": setting, "epochs": epochs, "cap": cap})
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", RUN, args], capture_output=True, text=True, env=env, cwd=root)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-4000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", nargs="+", default=["idle", "busy"], choices=["idle", "busy"])
    parser.add_argument("--data", nargs="+", default=["census", "flights"], choices=["census", "flights"])
    parser.add_argument("--settings", nargs="+", default=["auto", "default", "1"], choices=["auto", "default", "1"])
    parser.add_argument("--epochs", type=float, default=3.0, help="census training epochs")
    parser.add_argument("--flights-epochs", type=float, default=1.0, help="flights training epochs")
    parser.add_argument("--cap", type=float, default=120.0, help="training seconds per run at most")
    parser.add_argument("--max-load-s", type=float, default=3600.0, help="the busy loops stop after this at most")
    args = parser.parse_args()

    print(f"{'data':<8}{'condition':<10}{'setting':<9}{'threads':>8}{'epochs':>8}{'train s':>9}{'s/epoch':>9}"
          f"{'sample s':>9}{'load':>6}", flush=True)
    for condition in args.conditions:
        loops = []
        if condition == "busy":
            deadline = time.time() + args.max_load_s
            loops = [multiprocessing.Process(target=_spin, args=(deadline,), daemon=True) for _ in range(_cores())]
            for loop in loops:
                loop.start()
            time.sleep(5)
        try:
            for data in args.data:
                epochs = args.epochs if data == "census" else args.flights_epochs
                for setting in args.settings:
                    load = os.getloadavg()[0]
                    r = run(data, setting, epochs, args.cap)
                    threads = f"{r['threads']}/{r['sample_threads']}"
                    print(f"{data:<8}{condition:<10}{setting:<9}{threads:>8}{r['epochs']:>8.2f}{r['train_s']:>9.1f}"
                          f"{r['train_s'] / max(r['epochs'], 1e-9):>9.2f}{r['sample_s']:>9.1f}{load:>6.1f}",
                          flush=True)
        finally:
            for loop in loops:
                loop.terminate()
            for loop in loops:
                loop.join()


if __name__ == "__main__":
    main()
