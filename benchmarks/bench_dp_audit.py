"""Membership-inference audit of DP training on adult: the attack's advantage without DP, at epsilon 10 and 1.

Protocol (seed 0): 1,000 adult rows are the members (the training data), 1,000 other rows the non-members, and
5,000 further rows the attacker's reference sample of the population. A TabularSynthesizer is trained on the
members without DP (to early stopping, up to 200 epochs, so that it may overfit a small table) and with DP at a
total epsilon of 10 and of 1; each generates 20,000 rows. Two distance attacks score every member and
non-member: ``dcr`` (closer to a synthetic row = member) and ``dcr_ratio`` (the distance to the nearest synthetic
row divided by the distance to the nearest reference row: closer to the synthetic data *than the population
is*, which corrects for rows that are merely typical). Distances are Euclidean on one-hot categories and
rank-scaled numbers. For each attack the script prints the AUC of member vs non-member and the advantage
max(TPR - FPR); a guarantee of (epsilon, delta) bounds the advantage by (e^epsilon - 1 + 2 delta) / (e^epsilon + 1).
The DP runs declare adult's public domains (``_adult_domains.py``; ``--no-domains`` leaves them out). It also
prints what an attack that only guesses reaches on this many rows (the noise floor of the figures).

    python benchmarks/bench_dp_audit.py
    python benchmarks/bench_dp_audit.py --members 2000 --epsilons 10 1 0.3
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _adult_domains import ADULT_DOMAINS  # noqa: E402
from _common import load  # noqa: E402


def _encode(frames: list, reference) -> list[np.ndarray]:
    """One-hot categories and numbers scaled to [0, 1] by their rank in ``reference``, for every frame."""
    import pandas as pd

    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for column in reference.columns:
        if pd.api.types.is_numeric_dtype(reference[column]):
            ranks = np.sort(reference[column].dropna().to_numpy(dtype=float))
            for block, frame in zip(blocks, frames, strict=True):
                values = frame[column].to_numpy(dtype=float, na_value=np.nan)
                scaled = np.searchsorted(ranks, values) / max(1, len(ranks))
                block.append(np.nan_to_num(scaled, nan=-1.0)[:, None])
        else:
            def strings(series):  # NULL is a category of its own
                return series.astype(object).where(series.notna(), "<NULL>").astype(str).to_numpy(dtype=object)

            categories = np.unique(strings(reference[column]))
            for block, frame in zip(blocks, frames, strict=True):
                values = strings(frame[column])
                block.append((values[:, None] == categories[None, :]).astype(float) / math.sqrt(2))
    return [np.hstack(b).astype(np.float32) for b in blocks]


def _auc_and_advantage(member_scores: np.ndarray, other_scores: np.ndarray) -> tuple[float, float]:
    """AUC of "member" for higher scores, and max over thresholds of TPR - FPR."""
    scores = np.concatenate([member_scores, other_scores])
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(other_scores))])
    order = np.argsort(-scores, kind="stable")
    labels = labels[order]
    tpr = np.cumsum(labels) / labels.sum()
    fpr = np.cumsum(1 - labels) / (1 - labels).sum()
    ranks = scores.argsort().argsort() + 1.0  # ties do not matter for continuous distances
    n_pos, n_neg = len(member_scores), len(other_scores)
    auc = (ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(auc), float(np.max(tpr - fpr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[10.0, 1.0])
    parser.add_argument("--dp-epochs", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-domains", action="store_true", help="do not declare adult's public domains")
    options = parser.parse_args()

    import warnings

    import torch

    from synthgen import TabularSynthesizer
    from synthgen.evaluation._distances import nearest_two

    warnings.filterwarnings("ignore")
    torch.set_num_threads(options.threads)
    adult = load("adult").sample(frac=1.0, random_state=0).reset_index(drop=True)
    n = options.members
    members, others, population = adult.iloc[:n], adult.iloc[n:2 * n], adult.iloc[2 * n:2 * n + 5000]
    members = members.reset_index(drop=True)
    domains = {} if options.no_domains else {"domains": ADULT_DOMAINS}
    settings = {"no DP": None} | {f"ε={eps:g}": {"epsilon": eps} | domains for eps in options.epsilons}
    rows = []
    for name, dp in settings.items():
        start = time.perf_counter()
        kwargs = {"max_epochs": 200.0} if dp is None else {"max_epochs": options.dp_epochs, "batch_size": 100}
        synth = TabularSynthesizer(model="MOSTLY_AI/Medium", differential_privacy=dp, random_state=0,
                                   **kwargs).fit(members)
        train_s = time.perf_counter() - start
        synthetic = synth.sample(20_000, random_state=1)
        m, o, p, s = _encode([members, others, population, synthetic], population)
        to_synth_m, to_synth_o = nearest_two(m, s)[0], nearest_two(o, s)[0]
        to_pop_m, to_pop_o = nearest_two(m, p)[0], nearest_two(o, p)[0]
        dcr = _auc_and_advantage(-to_synth_m, -to_synth_o)
        ratio = _auc_and_advantage(-to_synth_m / (to_pop_m + 1e-9), -to_synth_o / (to_pop_o + 1e-9))
        epsilon = float(synth.epsilon_) if dp is not None else math.inf
        delta = float(synth.delta_) if dp is not None else 0.0
        bound = 1.0 if not math.isfinite(epsilon) else min(1.0, (math.exp(epsilon) - 1 + 2 * delta)
                                                            / (math.exp(epsilon) + 1))
        rows.append((name, epsilon, bound, *dcr, *ratio, train_s))
        print(f"{name}: trained in {train_s:.0f} s; dcr AUC {dcr[0]:.4f} adv {dcr[1]:.4f}; "
              f"ratio AUC {ratio[0]:.4f} adv {ratio[1]:.4f}", flush=True)
    print(f"\nadult: {n} members, {n} non-members, 5,000 population reference rows, 20,000 synthetic rows")
    # an attack that only guesses: its AUC is 0.5 +- 1.96 sd (Mann-Whitney), its advantage the two-sample
    # Kolmogorov-Smirnov statistic, below 1.358 sqrt(2 / n) in 95 % of draws
    auc_sd = math.sqrt((2 * n + 1) / (12 * n * n))
    print(f"guessing: AUC 0.5 +- {1.96 * auc_sd:.4f}, advantage below {1.358 * math.sqrt(2 / n):.4f} (95 %)")
    print(f"{'setting':<10}{'epsilon':>9}{'adv bound':>11}{'dcr AUC':>9}{'dcr adv':>9}{'ratio AUC':>11}"
          f"{'ratio adv':>11}{'train s':>9}")
    for name, epsilon, bound, auc1, adv1, auc2, adv2, train_s in rows:
        print(f"{name:<10}{epsilon:>9.3f}{bound:>11.3f}{auc1:>9.4f}{adv1:>9.4f}{auc2:>11.4f}{adv2:>11.4f}"
              f"{train_s:>9.0f}")


if __name__ == "__main__":
    main()
