"""The synthesizer as a classifier and a density estimator on the adult census table.

Protocol: split the 48,842 rows 80/20 (seed 0). ``TabularSynthesizer`` trains with its defaults (Medium model,
early stopping, ``random_state=0``) on the 80 % (all 15 columns, ``income`` included, as a synthesizer is
trained). On the 20 % holdout, ``predict_proba(X, target="income")`` gives the exact conditional of income given
the other 14 columns (one forward pass, no sampling); ROC AUC and log loss are set next to
``HistGradientBoostingClassifier`` (native categorical support) and ``LogisticRegression`` (one-hot categories,
standardised numbers) trained on the same 80 %. Times are per 10,000 rows, averaged over the holdout. ``score``
(mean log-likelihood per row, nats, 8 column orders) of the holdout and of as many training rows gives the
generalisation gap. Then the same fitted model samples the training size without fairness and with ``income``
independent of ``sex`` and of ``sex`` x ``race`` (``bench_fairness.fairness_table``): parity difference,
disparate impact, overall accuracy, a downstream classifier's accuracy and parity, and rows/s on vs off.

    python benchmarks/bench_inference.py                  # defaults, as above
    python benchmarks/bench_inference.py --max-epochs 5 --model small      # a quick look
    python benchmarks/bench_inference.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load  # noqa: E402
from bench_fairness import fairness_table  # noqa: E402

TARGET = "income"
POSITIVE = ">50K"


def _per_10k(seconds: float, n: int) -> float:
    return seconds * 10_000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-epochs", type=float, default=100.0)
    parser.add_argument("--fairness-repeats", type=int, default=3,
                        help="timed sampling runs per fairness setting; 0 skips the fairness table")
    options = parser.parse_args()

    import numpy as np
    import pandas as pd
    import torch
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from synthgen import TabularSynthesizer

    torch.set_num_threads(options.threads)
    data = load("adult")
    trn, hol = train_test_split(data, test_size=0.2, random_state=0)
    trn, hol = trn.reset_index(drop=True), hol.reset_index(drop=True)
    X, y = trn.drop(columns=TARGET), (trn[TARGET] == POSITIVE).to_numpy()
    Xh, yh = hol.drop(columns=TARGET), (hol[TARGET] == POSITIVE).to_numpy()
    categorical = [c for c in X if not pd.api.types.is_numeric_dtype(X[c])]
    numeric = [c for c in X if c not in categorical]
    rows: dict[str, dict[str, float]] = {}

    start = time.perf_counter()
    synth = TabularSynthesizer(model=options.model, max_epochs=options.max_epochs, random_state=0).fit(trn)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    proba = synth.predict_proba(Xh, target=TARGET)
    proba_s = time.perf_counter() - start
    positive = list(synth.predict_classes(TARGET)).index(POSITIVE)
    rows["synthgen"] = {"roc_auc": roc_auc_score(yh, proba[:, positive]),
                        "log_loss": log_loss(yh, proba[:, positive]), "fit_s": fit_s,
                        "s_per_10k": _per_10k(proba_s, len(hol))}

    as_category = {c: "category" for c in categorical}
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    start = time.perf_counter()
    hgb.fit(X.astype(as_category), y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = hgb.predict_proba(Xh.astype(as_category))[:, 1]
    rows["hist_gradient_boosting"] = {"roc_auc": roc_auc_score(yh, p), "log_loss": log_loss(yh, p), "fit_s": fit_s,
                                      "s_per_10k": _per_10k(time.perf_counter() - start, len(hol))}

    encode = make_column_transformer((OneHotEncoder(handle_unknown="ignore"), categorical),
                                     (StandardScaler(), numeric))
    logistic = make_pipeline(encode, LogisticRegression(max_iter=2000))
    filled = {c: "missing" for c in categorical}
    start = time.perf_counter()
    logistic.fit(X.astype(object).fillna(filled), y)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    p = logistic.predict_proba(Xh.astype(object).fillna(filled))[:, 1]
    rows["logistic_regression"] = {"roc_auc": roc_auc_score(yh, p), "log_loss": log_loss(yh, p), "fit_s": fit_s,
                                   "s_per_10k": _per_10k(time.perf_counter() - start, len(hol))}

    print(f"predict_proba of {TARGET!r} on the adult holdout ({len(hol):,} rows; trained on {len(trn):,})")
    print(f"{'model':<24}{'ROC AUC':>10}{'log loss':>10}{'fit s':>10}{'s / 10k rows':>14}")
    for name, figures in rows.items():
        print(f"{name:<24}{figures['roc_auc']:>10.4f}{figures['log_loss']:>10.4f}{figures['fit_s']:>10.1f}"
              f"{figures['s_per_10k']:>14.3f}")

    start = time.perf_counter()
    holdout_ll = synth.score_samples(hol)
    score_s = time.perf_counter() - start
    training_ll = synth.score_samples(trn.sample(n=len(hol), random_state=0))
    print(f"\nscore (mean log-likelihood per row, nats; {score_s * 10_000 / len(hol):.2f} s per 10k rows)")
    print(f"training rows {training_ll.mean():.4f}   holdout rows {holdout_ll.mean():.4f}   "
          f"gap {training_ll.mean() - holdout_ll.mean():.4f}")
    accuracy = np.mean(synth.predict(Xh, target=TARGET) == hol[TARGET].to_numpy())
    print(f"predict accuracy on the holdout: {accuracy:.4f}")

    if options.fairness_repeats:  # the same fitted model samples with and without fairness
        fairness_table(synth, trn, hol, repeats=options.fairness_repeats, threads=options.threads)


if __name__ == "__main__":
    main()
