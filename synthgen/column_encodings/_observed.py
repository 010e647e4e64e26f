"""The observed values of a numeric column per partition, bounded, for the in-bin values that BINNED publishes.

A partition with at most ``EXACT_VALUES`` distinct values lists them all with their numbers of subjects and rows,
so the merge over partitions is exact (as for the whole table). A partition with more is *sketched*: it lists,
in each of ``LOCAL_BINS`` bins of its own quantiles, the ``PER_LOCAL_BIN`` most frequent values with their exact
counts in the partition, and summarises the rest by its number of rows, ``REST_QUANTILES`` quantiles (to spread
those rows over the published bins) and the set of last-two-digit pairs it holds. Either way a partial holds at
most ``max(EXACT_VALUES, LOCAL_BINS * PER_LOCAL_BIN)`` values, whatever the partition size, where listing every
distinct value held up to 200,000 per partition and column until the merge.

Why per local bin: the published bins are quantile bins, so the values worth publishing are the most frequent of
*each* bin, not of the whole column; a partition's own quantiles stand close to the merged edges (split deals
subjects to partitions at random). What the sketch can miss: a value listed in one partition but in another's
rest loses that partition's rows (its share is under-estimated; its number of subjects too, which only makes
protection stricter), and the rows of the rest are spread by quantiles, not counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..privacy._value_protection import subject_counts
from ._numeric import to_scaled_int

__all__ = ["EXACT_VALUES", "merged_observed", "observed_partial", "rest_residues"]

EXACT_VALUES = 4096
LOCAL_BINS = 100
PER_LOCAL_BIN = 64
REST_QUANTILES = 1001


def observed_partial(x: np.ndarray, subjects: np.ndarray, decimal: int | None) -> dict[str, Any]:
    """The bounded observed values of one partition's non-NULL values ``x`` (their ``subjects`` aligned).

    ``decimal`` is the partition's ``min_decimal`` (the unit of the residues of the rest). Keys: ``observed_values`` (ascending), ``observed_subjects``,
    ``observed_rows``, and for the unlisted rest ``observed_rest_rows``, ``observed_rest_quantiles`` and
    ``observed_rest_residue_subjects`` (per last-two-digit pair in units of ``10**observed_decimal``, the number
    of subjects of its most held unlisted value; zeros when every value is listed).
    """
    distinct, rows = np.unique(x, return_counts=True)
    held = subject_counts(pd.Series(x), subjects)
    by_subject = np.fromiter(held.values(), dtype=np.int64, count=len(held))
    by_subject = by_subject[np.argsort(np.fromiter(held.keys(), dtype=np.float64, count=len(held)))]
    partial = {"observed_values": distinct, "observed_subjects": by_subject, "observed_rows": rows,
               "observed_rest_rows": 0, "observed_rest_quantiles": np.array([]),
               "observed_rest_residue_subjects": np.zeros(100, dtype=np.int64), "observed_decimal": decimal}
    if len(distinct) <= EXACT_VALUES:
        return partial
    edges = np.quantile(x, np.linspace(0.0, 1.0, LOCAL_BINS + 1), method="inverted_cdf")
    local = np.clip(np.searchsorted(edges, distinct, side="right") - 1, 0, LOCAL_BINS - 1)
    order = np.lexsort((-rows, local))  # per local bin, most frequent first (ties: the smaller value)
    first_of_bin = np.searchsorted(local[order], np.arange(LOCAL_BINS))
    rank = np.arange(len(order)) - first_of_bin[local[order]]
    listed = np.zeros(len(distinct), dtype=bool)
    listed[order[rank < PER_LOCAL_BIN]] = True
    if listed.all():  # no local bin holds more than PER_LOCAL_BIN values: the list is complete
        return partial
    rest_values, rest_rows = distinct[~listed], rows[~listed]
    residue_subjects = np.zeros(100, dtype=np.int64)  # per last-two-digit pair, its most held unlisted value's
    np.maximum.at(residue_subjects, to_scaled_int(np.abs(rest_values), decimal) % 100, by_subject[~listed])
    cumulative = np.cumsum(rest_rows)
    picked = np.searchsorted(cumulative, np.linspace(0.0, 1.0, REST_QUANTILES) * cumulative[-1], side="left")
    return partial | {
        "observed_values": distinct[listed], "observed_subjects": by_subject[listed], "observed_rows": rows[listed],
        "observed_rest_rows": int(cumulative[-1]),
        "observed_rest_quantiles": rest_values[np.minimum(picked, len(rest_values) - 1)],
        "observed_rest_residue_subjects": residue_subjects,
    }


def merged_observed(partials: list[dict[str, Any]], edges: np.ndarray) -> dict[str, np.ndarray] | None:
    """The observed values of all partitions inside ``edges`` (exclusive), merged.

    Returns ``values`` (ascending), their ``subjects`` and ``rows`` summed over the partitions that list them,
    their ``bin`` index, and ``bin_rows``, every bin's rows (those of the listed values, plus the partitions'
    unlisted rows spread by their quantiles); None when a partition has no observed values (an older partial).
    """
    if any(p.get("observed_values") is None for p in partials):
        return None
    n_bins = len(edges) - 1
    values, inverse = np.unique(np.concatenate([p["observed_values"] for p in partials]), return_inverse=True)
    subjects = np.bincount(inverse, weights=np.concatenate([p["observed_subjects"] for p in partials]))
    rows = np.bincount(inverse, weights=np.concatenate([p["observed_rows"] for p in partials]))
    inside = (values > edges[0]) & (values < edges[-1])
    values, subjects, rows = values[inside], subjects[inside], rows[inside]
    index = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n_bins - 1)
    bin_rows = np.bincount(index, weights=rows, minlength=n_bins)
    for p in partials:
        atoms = p.get("observed_rest_quantiles")
        if atoms is None or not p.get("observed_rest_rows"):
            continue
        atoms = atoms[(atoms > edges[0]) & (atoms < edges[-1])]
        where = np.clip(np.searchsorted(edges, atoms, side="right") - 1, 0, n_bins - 1)
        weight = p["observed_rest_rows"] / len(p["observed_rest_quantiles"])
        bin_rows += np.bincount(where, minlength=n_bins) * weight
    return {"values": values, "subjects": subjects, "rows": rows, "bin": index, "bin_rows": bin_rows}


def rest_residues(partials: list[dict[str, Any]], decimal: int, min_subjects: int) -> set[int]:
    """The last-two-digit pairs, in units of ``10**decimal``, of the partitions' unlisted values held by at
    least ``min_subjects`` subjects in their partition (an under-count: protection only gets stricter).

    A partition's pairs are in units of its own ``10**observed_decimal`` (at least ``10**decimal``); a value
    of ``r`` such units ends in ``r * 10**(observed_decimal - decimal) mod 100`` units of ``10**decimal``.
    """
    found: set[int] = set()
    for p in partials:
        held = p.get("observed_rest_residue_subjects")
        if held is None:
            continue
        pairs = np.flatnonzero(np.asarray(held) >= max(min_subjects, 1))
        scale = 10 ** min(p["observed_decimal"] - decimal, 2)  # from 10**2 on every pair ends in 00
        found.update(((pairs * scale) % 100).tolist())
    return found
