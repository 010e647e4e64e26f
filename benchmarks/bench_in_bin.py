"""How BINNED numerics decode inside their bins, without a model: uniform draws against published values.

Each binned column of adult and flights (training part of the usual 80/20 split, value protection on) is encoded
and decoded again; the KS distance of the decoded values to the training values is what in-bin sampling alone
costs, printed next to the holdout's KS (real data's own spread). ``min60`` is the share of decoded clock
times (``*_time`` columns, HHMM) ending in 60–99, which no real row has. A second or so:

    python benchmarks/bench_in_bin.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

# The checkout's synthgen first (not an installed one), then the benchmark helpers.
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from _common import ks_distance, load  # noqa: E402

from synthgen.column_encodings import get_encoding  # noqa: E402


def run(trn: pd.DataFrame, hol: pd.DataFrame, col: str, subj: np.ndarray) -> dict | None:
    enc = get_encoding("TABULAR_NUMERIC_AUTO")
    st = enc.reduce([enc.analyze(trn[col].reset_index(drop=True), subj)], value_protection=True, rng=np.random.default_rng(0))
    if st["encoding_type"] != "TABULAR_NUMERIC_BINNED":
        return None
    codes = enc.encode(trn[col].reset_index(drop=True), st, rng=np.random.default_rng(0))
    x = trn[col].to_numpy(float)
    new = enc.decode(codes, st, rng=np.random.default_rng(1)).to_numpy()
    old_st = {k: v for k, v in st.items() if not k.startswith("in_bin")}
    old = enc.decode(codes, old_st, rng=np.random.default_rng(1)).to_numpy()

    def bad(v: np.ndarray) -> float:
        return float(np.mean((np.abs(v[~np.isnan(v)]) % 100) >= 60)) if "time" in col else float("nan")

    return dict(column=col, ks_uniform=ks_distance(old, x), ks_published=ks_distance(new, x),
                ks_holdout=ks_distance(hol[col].to_numpy(float), x), min60_uniform=bad(old), min60_published=bad(new),
                rest=float(np.mean(st["in_bin_rest"])))

def main() -> None:
    rows = []
    adult = load("adult")
    hol = adult.sample(frac=0.2, random_state=0)
    trn = adult.drop(hol.index)
    for column in adult.select_dtypes("number").columns:
        result = run(trn, hol, column, np.arange(len(trn)))
        if result:
            rows.append({"data": "adult", **result})
    planes, flights = load("planes"), load("flights")
    holdout_planes = planes.sample(frac=0.2, random_state=0)
    trn = flights[~flights.tailnum.isin(holdout_planes.tailnum)]
    hol = flights[flights.tailnum.isin(holdout_planes.tailnum)]
    for column in flights.select_dtypes("number").columns:
        result = run(trn, hol, column, trn.tailnum.to_numpy())
        if result:
            rows.append({"data": "flights", **result})
    print(pd.DataFrame(rows).round(4).to_string(index=False))


if __name__ == "__main__":
    main()
