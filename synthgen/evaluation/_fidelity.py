"""Fidelity figures: univariate, bivariate, trivariate, coherence and sequence-length accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
from attrs import frozen

from synthgen.evaluation._accuracy import (
    accuracy,
    accuracy_table,
    column_pairs,
    column_triples,
    joint_distribution,
)
from synthgen.evaluation._columns import ColumnKind
from synthgen.evaluation._discretize import fit_bins
from synthgen.evaluation._prepare import PreparedFrame

ACCURACY_PARTS = ("univariate", "bivariate", "trivariate", "coherence", "sequence_length")


@frozen(eq=False)
class Fidelity:
    """Fidelity figures of every frame compared with the original.

    Attributes
    ----------
    figures : dict of str to dict
        Per compared frame ("synthetic", "holdout"): the parts in ``ACCURACY_PARTS`` and "overall".
    univariates, bivariates, trivariates, coherences : pandas.DataFrame
        Per column (group) accuracy, one column per compared frame.
    distributions : dict of str to pandas.DataFrame
        Per column: share of each bucket (rows) in each frame (columns).
    sequence_lengths : dict of str to numpy.ndarray, or None
        Length of every sequence per frame; None for flat tables.
    """

    figures: dict[str, dict[str, float | None]]
    univariates: pd.DataFrame
    bivariates: pd.DataFrame
    trivariates: pd.DataFrame
    coherences: pd.DataFrame
    distributions: dict[str, pd.DataFrame]
    sequence_lengths: dict[str, np.ndarray] | None


def fidelity(
    frames: dict[str, PreparedFrame],
    kinds: dict[str, ColumnKind],
    *,
    max_triples: int,
    rng: np.random.RandomState,
) -> Fidelity:
    """Compare every frame in ``frames`` with ``frames["original"]`` on buckets fitted to the original."""
    original = frames["original"]
    columns = list(original.values)
    bins = {c: fit_bins(original.values[c], kinds[c]) for c in columns}
    sizes = {c: bins[c].n_bins for c in columns}
    codes = {name: {c: bins[c].codes(f.values[c]) for c in columns} for name, f in frames.items()}
    weights = {name: f.row_weights for name, f in frames.items()}
    compared = [name for name in frames if name != "original"]

    univariates = accuracy_table([(c,) for c in columns], 1, sizes, codes, weights).rename(
        columns={"column_1": "column"}
    )
    univariates.insert(1, "kind", [kinds[c] for c in columns])
    bivariates = accuracy_table(column_pairs(columns), 2, sizes, codes, weights)
    trivariates = accuracy_table(column_triples(columns, max_triples, rng), 3, sizes, codes, weights)
    distributions = {
        c: pd.DataFrame(
            {name: joint_distribution([codes[name][c]], [sizes[c]], weights[name]) for name in frames},
            index=pd.Index(bins[c].labels, name="bucket"),
        )
        for c in columns
    }
    tables = {"univariate": univariates, "bivariate": bivariates, "trivariate": trivariates}
    coherences = pd.DataFrame({"column": [], **{name: [] for name in compared}})
    sequence_lengths = None
    length_shares = None
    if original.lengths is not None:
        coherences = _coherence(frames, codes, sizes)
        tables["coherence"] = coherences
        sequence_lengths = {name: frame.lengths for name, frame in frames.items()}
        length_shares = _length_distributions(sequence_lengths)

    figures: dict[str, dict[str, float | None]] = {}
    for name in compared:
        parts = {part: _mean(table[name]) for part, table in tables.items()}
        parts.setdefault("coherence", None)
        parts["sequence_length"] = None
        if length_shares is not None:
            parts["sequence_length"] = accuracy(length_shares["original"], length_shares[name])
        available = [value for value in parts.values() if value is not None]
        parts["overall"] = float(np.mean(available)) if available else None
        figures[name] = parts
    return Fidelity(
        figures, univariates, bivariates, trivariates, coherences, distributions, sequence_lengths
    )


def _coherence(
    frames: dict[str, PreparedFrame], codes: dict[str, dict[str, np.ndarray]], sizes: dict[str, int]
) -> pd.DataFrame:
    """Accuracy of the (step t, step t + 1) joint distribution of each column."""
    pair_codes: dict[str, dict[tuple[str, int], np.ndarray]] = {}
    pair_weights: dict[str, np.ndarray] = {}
    for name, frame in frames.items():
        first, second, pair_weights[name] = frame.consecutive_steps()
        pair_codes[name] = {}
        for column, column_codes in codes[name].items():
            pair_codes[name][(column, 0)] = column_codes[first]
            pair_codes[name][(column, 1)] = column_codes[second]
    columns = list(codes["original"])
    if not len(pair_weights["original"]):
        # No original sequence has two steps: there is no step-to-step behaviour to compare.
        return pd.DataFrame({"column": [], **{name: [] for name in frames if name != "original"}})
    pair_sizes = {(c, step): sizes[c] for c in columns for step in (0, 1)}
    table = accuracy_table([((c, 0), (c, 1)) for c in columns], 2, pair_sizes, pair_codes, pair_weights)
    table = table.drop(columns="column_2")
    table["column_1"] = columns
    return table.rename(columns={"column_1": "column"})


def _length_distributions(lengths: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Share of each of the (about 10) length buckets, fitted on the original lengths, per frame."""
    bins = fit_bins(lengths["original"].astype(np.float64), "numeric")
    return {
        name: joint_distribution([bins.codes(values.astype(np.float64))], [bins.n_bins], None)
        for name, values in lengths.items()
    }


def _mean(values: pd.Series) -> float | None:
    return float(values.mean()) if len(values) else None
