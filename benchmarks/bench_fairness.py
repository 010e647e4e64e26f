"""Fair generation on the adult census table: parity, accuracy and speed with and without fairness.

Protocol: split the 48,842 rows 80/20 (seed 0); train a TabularSynthesizer (defaults, early stopping) on the
80 %; generate samples of the training size without fairness and with ``income`` independent of ``sex``, and
of ``sex`` × ``race``. For each: the statistical parity difference of ``income`` (share of ">50K") between
the groups and the disparate impact (groups of 30 rows or more), the overall accuracy from
``synthgen.evaluate`` against the training part and the holdout, generation rows/s (best of ``--repeats``
runs, calibration included), and a downstream check: a gradient-boosting classifier trained on each sample
predicts the holdout; its accuracy and the parity difference of its predictions by sex.

    python benchmarks/bench_fairness.py
    python benchmarks/bench_fairness.py --max-epochs 10 --threads 2

Targets: fairness costs at most 1.5x the generation time; parity difference at most 0.01.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load, peak_rss_mb  # noqa: E402

SETTINGS = {
    "unfair": None,
    "fair: sex": {"target_column": "income", "sensitive_columns": ["sex"]},
    "fair: sex x race": {"target_column": "income", "sensitive_columns": ["sex", "race"]},
}


def downstream(train, holdout) -> tuple[float, float]:
    """Holdout accuracy of a classifier trained on ``train`` and the parity difference of its predictions."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from synthgen.evaluation import statistical_parity_difference

    features = [c for c in train.columns if c != "income"]

    def prepare(frame):
        out = frame[features].copy()
        for column in out.columns:
            if not pd.api.types.is_numeric_dtype(out[column]):
                out[column] = out[column].astype("category")
        return out

    x_train = prepare(train)
    x_holdout = prepare(holdout)
    for column in x_holdout.columns:
        if isinstance(x_train[column].dtype, pd.CategoricalDtype):
            x_holdout[column] = pd.Categorical(x_holdout[column], categories=x_train[column].cat.categories)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    model.fit(x_train, train["income"].astype(str))
    predicted = holdout.assign(income=model.predict(x_holdout))
    accuracy = float((predicted["income"] == holdout["income"].astype(str)).mean())
    return accuracy, statistical_parity_difference(predicted, "income", "sex", positive=">50K")


def fairness_table(synth, trn, holdout, *, repeats: int, threads: int) -> None:
    """Sample ``synth`` with and without fairness; print parity, accuracy, downstream figures and rows/s."""
    from synthgen import evaluate
    from synthgen.evaluation import disparate_impact, statistical_parity_difference

    def parity(frame, sensitive):
        return (statistical_parity_difference(frame, "income", sensitive, positive=">50K"),
                disparate_impact(frame, "income", sensitive, positive=">50K"))

    rows = {}
    for name, frame in {"original (training)": trn, "holdout": holdout}.items():
        spd, di = parity(frame, "sex")
        rows[name] = {"spd_sex": spd, "di_sex": di, "spd_sex_race": parity(frame, ["sex", "race"])[0]}
    rows["original (training)"]["clf_accuracy"], rows["original (training)"]["clf_spd_sex"] = downstream(trn, holdout)
    # the settings take turns, so that a change in the machine's load hits them alike
    seconds = {name: [] for name in SETTINGS}
    samples = {}
    for repeat in range(repeats):
        for name, fairness in SETTINGS.items():
            start = time.perf_counter()
            samples[name] = synth.sample(len(trn), fairness=fairness, random_state=10 + repeat)
            seconds[name].append(time.perf_counter() - start)
    for name, sample in samples.items():
        result = evaluate(trn, sample, holdout, privacy=False, discriminator=False, random_state=0)
        spd, di = parity(sample, "sex")
        accuracy, clf_spd = downstream(sample, holdout)
        rows[name] = {"spd_sex": spd, "di_sex": di, "spd_sex_race": parity(sample, ["sex", "race"])[0],
                      "overall": result.overall, "clf_accuracy": accuracy, "clf_spd_sex": clf_spd,
                      "rows_per_s": len(trn) / min(seconds[name])}
        print(f"{name}: done", flush=True)

    base = rows["unfair"]["rows_per_s"]
    for name in SETTINGS:
        rows[name]["time_ratio"] = base / rows[name]["rows_per_s"]
    keys = ["spd_sex", "di_sex", "spd_sex_race", "overall", "clf_accuracy", "clf_spd_sex", "rows_per_s", "time_ratio"]
    print(f"\nfairness on adult: {len(trn):,} training rows, samples of {len(trn):,} rows, torch threads = {threads}, "
          f"peak {peak_rss_mb():.0f} MB")
    print(f"{'':<22}" + "".join(f"{k:>14}" for k in keys))
    for name, figures in rows.items():
        cells = []
        for key in keys:
            value = figures.get(key)
            cells.append(f"{'':>14}" if value is None else f"{value:>14.4f}" if abs(value) < 100 else f"{value:>14,.0f}")
        print(f"{name:<22}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-epochs", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    import torch

    torch.set_num_threads(options.threads)
    from synthgen import TabularSynthesizer

    adult = load("adult")
    holdout = adult.sample(frac=0.2, random_state=0)
    trn = adult.drop(holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    start = time.perf_counter()
    synth = TabularSynthesizer(max_epochs=options.max_epochs, random_state=0).fit(trn)
    print(f"trained in {time.perf_counter() - start:.1f} s ({synth.history_['epoch'].iloc[-1]:.0f} epochs)",
          flush=True)
    fairness_table(synth, trn, holdout, repeats=options.repeats, threads=options.threads)


if __name__ == "__main__":
    main()
