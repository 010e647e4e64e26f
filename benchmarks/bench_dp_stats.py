"""Differentially private statistics of analyze on adult: what a value of one subject risks, and what survives.

1. The chance that a category held by one subject is published, for the reference engine's rule (Laplace counts
   of the values present, kept from 5 up: NEXT-CAPABILITIES §2.2 flaw 1) and for synthgen's threshold with an
   accounted delta, at the engine's per-column epsilon on adult (1/16) — simulated draws.
2. ``analyze`` on 80 % of adult with a total epsilon of 1 and 10 (statistics share 0.1, delta from the data size):
   per column, the encoding, the published categories (of the distinct values) or bounds (against the data's),
   the ledger's total and the time; then the same with the public domains of adult declared (the categories
   that the UCI documentation ``adult.names`` lists, and generous ranges of the numbers).

    python benchmarks/bench_dp_stats.py
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _adult_domains import ADULT_DOMAINS  # noqa: E402
from _common import load  # noqa: E402


def leak_rates(epsilon: float = 1 / 16, delta: float = 1e-6, draws: int = 2_000_000) -> None:
    from synthgen.privacy._dp_mechanisms import threshold

    rng = np.random.default_rng(0)
    noisy = 1.0 + rng.laplace(0.0, 1.0 / epsilon, size=draws)
    tau = threshold(epsilon, delta)
    print(f"value held by one subject, epsilon {epsilon:.4g} per column, {draws:,} draws:")
    print(f"  reference rule (noisy count >= 5):       {np.mean(noisy >= 5):.2%} published "
          f"(theory 1/2 exp(-4 eps) = {0.5 * math.exp(-4 * epsilon):.2%})")
    print(f"  synthgen (noisy count >= tau = {tau:.0f}):   {np.mean(noisy >= tau):.2e} published "
          f"(bound: delta = {delta:g})")


def analyze_adult(epsilon: float, declared: bool = False) -> None:
    import synthgen as sg
    from synthgen.privacy._ledger import ledger_totals

    data = load("adult").sample(frac=0.8, random_state=0).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ws = sg.split(data, workspace_dir=folder, random_state=0)
        start = time.perf_counter()
        config = {"epsilon": epsilon} | ({"domains": ADULT_DOMAINS} if declared else {})
        sg.analyze(workspace_dir=ws, differential_privacy=config, random_state=0)
        seconds = time.perf_counter() - start
        stats, ledger = ws.read_stats("tgt")["columns"], ws.read_privacy_ledger()
    spent, delta = ledger_totals(ledger)
    domains = "declared domains" if declared else "no declared domain"
    print(f"\nadult 80 % ({len(data):,} rows), total epsilon {epsilon:g}, {domains}: statistics spent epsilon {spent:.4g}, "
          f"delta {delta:.3g}, analyze {seconds:.1f} s, {len(caught)} warnings")
    print(f"  {'column':<16}{'encoding':<28}published")
    for column, s in stats.items():
        kind = s["encoding_type"]
        if "categories" in s:
            shown = f"{len(s['categories'])} of {data[column].nunique()} categories"
        elif "codes" in s and kind.endswith("DISCRETE"):
            shown = f"{len(s['codes']) - 2} of {data[column].nunique()} values"
        elif kind.endswith("BINNED"):
            bins = s["bins"]
            shown = (f"[{bins[0]:g}, {bins[-1]:g}] in {len(bins) - 1} bins" if bins else "no range (NULL)")
            shown += f"; data [{data[column].min():g}, {data[column].max():g}]"
        elif kind.endswith("DIGIT"):
            shown = (f"[{s['min']:g}, {s['max']:g}]" if s["min"] is not None else "no range (NULL)")
            shown += f"; data [{data[column].min():g}, {data[column].max():g}]"
        else:
            shown = ""
        print(f"  {column:<16}{kind:<28}{shown}")


def main() -> None:
    leak_rates()
    for declared in (False, True):
        for epsilon in (1.0, 10.0):
            analyze_adult(epsilon, declared)


if __name__ == "__main__":
    main()
