"""Accuracy = 1 - total variation distance between discretised distributions.

All functions take bucket codes (see ``_discretize``) and optional row weights. For flat tables every row
weighs the same; for sequences each row weighs ``1 / length of its sequence``, so that every sequence counts
once, which is what mostlyai-qa estimates by drawing one random row per sequence, without that draw's noise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import pandas as pd


def joint_distribution(
    codes: Sequence[np.ndarray], sizes: Sequence[int], weights: np.ndarray | None
) -> np.ndarray:
    """Return the (weighted) relative frequencies of all bucket combinations, flattened.

    An empty input gives an all-zero vector.
    """
    flat = np.ravel_multi_index(tuple(codes), tuple(sizes)) if len(codes) > 1 else codes[0]
    counts = np.bincount(flat, weights=weights, minlength=math.prod(sizes)).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def accuracy(p: np.ndarray, q: np.ndarray) -> float:
    """Return ``1 - TVD(p, q)``, with ``TVD = 0.5 * sum(|p - q|)``.

    If either distribution is empty (no rows to count), the accuracy is 0: nothing of the other is matched.
    """
    if p.sum() == 0 or q.sum() == 0:
        return 0.0
    return float(1.0 - 0.5 * np.abs(p - q).sum())


def accuracy_table(
    groups: Sequence[tuple[Hashable, ...]],
    width: int,
    sizes: Mapping[Hashable, int],
    codes: Mapping[str, Mapping[Hashable, np.ndarray]],
    weights: Mapping[str, np.ndarray | None],
) -> pd.DataFrame:
    """Accuracy of each group of columns for each frame compared with the original.

    Parameters
    ----------
    groups : sequence of tuple
        Groups of ``width`` columns whose joint distribution is compared (singles, pairs or triples).
    width : int
        Number of columns per group.
    sizes : mapping
        Number of buckets per column.
    codes : mapping
        Bucket codes per column for each frame, keyed by frame name; "original" is the reference, every other
        frame ("synthetic", "holdout") gets an accuracy column.
    weights : mapping
        Row weights per frame name; None means equal weights.

    Returns
    -------
    pandas.DataFrame
        One row per group, columns ``column_1 ... column_<width>`` and one accuracy column per compared frame.
    """
    table: dict[str, list] = {f"column_{i + 1}": [g[i] for g in groups] for i in range(width)}
    compared = [name for name in codes if name != "original"]
    for name in compared:
        table[name] = []
    for group in groups:
        group_sizes = [sizes[c] for c in group]
        p = joint_distribution([codes["original"][c] for c in group], group_sizes, weights["original"])
        for name in compared:
            q = joint_distribution([codes[name][c] for c in group], group_sizes, weights[name])
            table[name].append(accuracy(p, q))
    return pd.DataFrame(table, columns=[*(f"column_{i + 1}" for i in range(width)), *compared])


def column_pairs(columns: Sequence[str]) -> list[tuple[str, str]]:
    """All unordered pairs of columns."""
    return list(itertools.combinations(columns, 2))


def column_triples(
    columns: Sequence[str], max_triples: int, rng: np.random.RandomState
) -> list[tuple[str, ...]]:
    """All unordered triples of columns, or ``max_triples`` of them drawn at random when there are more."""
    n = len(columns)
    if math.comb(n, 3) <= max_triples:
        return list(itertools.combinations(columns, 3))
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < max_triples:
        chosen.add(tuple(sorted(rng.choice(n, size=3, replace=False).tolist())))
    return [tuple(columns[i] for i in triple) for triple in sorted(chosen)]
