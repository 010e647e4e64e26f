"""Discretisation of columns into the buckets on which accuracies are measured.

The buckets follow mostlyai-qa's published definitions and are always fitted on the original data:

- numeric and datetime columns with at most ``n_bins`` distinct values get one bucket per value; otherwise
  about ``n_bins`` quantile buckets, found as the smallest set of evenly spaced order statistics that holds
  ``n_bins + 1`` distinct boundaries (so heavily tied columns, such as a mostly-zero amount, still get
  ``n_bins`` buckets). Buckets are closed on the left; values below the first or above the last boundary
  fall into the first or last bucket.
- categorical columns get one bucket for each of the ``n_bins`` most frequent categories plus one "(other)"
  bucket for everything else, including categories unseen in the original.
- NULL is a bucket of its own in every column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from attrs import frozen

from synthgen.evaluation._columns import ColumnKind, ColumnValues

NULL_LABEL = "(null)"
OTHER_LABEL = "(other)"
ANY_LABEL = "(any value)"

# mostlyai-qa caps its search for distinct boundaries at 1000 order statistics.
_MAX_ORDER_STATISTICS = 1000


@frozen(eq=False)
class ColumnBins:
    """Buckets of one column, fitted on the original data.

    Attributes
    ----------
    kind : {"numeric", "datetime", "categorical"}
        Kind of the column.
    bounds : numpy.ndarray
        Lower bounds of the value buckets (numeric and datetime kinds), or the categories that get a bucket
        of their own (categorical kind).
    labels : list of str
        One label per bucket, the NULL bucket last.
    """

    kind: ColumnKind
    bounds: np.ndarray
    labels: list[str]

    @property
    def n_bins(self) -> int:
        """Number of buckets, the NULL bucket included."""
        return len(self.labels)

    def codes(self, values: ColumnValues) -> np.ndarray:
        """Return the bucket index of each value as an int64 array."""
        null_code = self.n_bins - 1
        if self.kind == "categorical":
            codes = category_codes(values, self.bounds)
            is_null = pd.isna(values)
            codes[codes < 0] = null_code - 1  # the "(other)" bucket
            codes[is_null] = null_code
            return codes
        is_null = np.isnan(values)
        codes = np.searchsorted(self.bounds[1:], values, side="right").astype(np.int64)
        codes[is_null] = null_code
        return codes


def fit_bins(values: ColumnValues, kind: ColumnKind, n_bins: int = 10) -> ColumnBins:
    """Fit the buckets of one column on its original values."""
    if kind == "categorical":
        return _fit_categorical(values, n_bins)
    finite = np.sort(values[~np.isnan(values)])
    distinct = np.unique(finite)
    if len(distinct) == 0:
        # An all-NULL original column: any value the synthetic data puts there shares one bucket.
        return ColumnBins(kind, np.array([-np.inf]), [ANY_LABEL, NULL_LABEL])
    if len(distinct) <= n_bins:
        bounds = distinct
    else:
        bounds = _quantile_boundaries(finite, n_bins)[:-1]
    labels = [f"≥ {label}" for label in _format_bounds(bounds, kind)]
    return ColumnBins(kind, bounds, [*labels, NULL_LABEL])


def most_frequent(values: ColumnValues, n: int) -> np.ndarray:
    """The ``n`` most frequent non-NULL categories, most frequent first.

    Ties in frequency are broken by the category's text, so that the result does not depend on row order.
    """
    counts = pd.Series(values, dtype=object).value_counts(dropna=True)
    order = np.lexsort((counts.index.to_numpy(dtype=str), -counts.to_numpy()))
    return counts.index.to_numpy(dtype=object)[order[:n]]


def category_codes(values: ColumnValues, categories: np.ndarray) -> np.ndarray:
    """Position of each value in ``categories`` as int64, -1 for other values and NULL."""
    return pd.Index(categories, dtype=object).get_indexer(values).astype(np.int64)


def _fit_categorical(values: ColumnValues, n_bins: int) -> ColumnBins:
    categories = most_frequent(values, n_bins)
    return ColumnBins("categorical", categories, [*map(str, categories), OTHER_LABEL, NULL_LABEL])


def _quantile_boundaries(sorted_values: np.ndarray, n_bins: int) -> np.ndarray:
    n = len(sorted_values)
    boundaries = np.unique(sorted_values[[0, -1]])
    for n_points in range(n_bins + 1, min(_MAX_ORDER_STATISTICS, n) + 1):
        positions = np.linspace(0, n - 1, n_points).astype(np.int64)
        boundaries = np.unique(sorted_values[positions])
        if len(boundaries) > n_bins:
            break
    return boundaries


def _format_bounds(bounds: np.ndarray, kind: ColumnKind) -> list[str]:
    if kind == "datetime":
        stamps = pd.to_datetime(bounds.astype(np.int64), unit="us")
        for fmt in ("%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
            labels = list(stamps.strftime(fmt))
            if len(set(labels)) == len(labels):
                return labels
        return [str(stamp) for stamp in stamps]
    if np.all(bounds == np.round(bounds)) and np.all(np.abs(bounds) < 1e15):
        return [str(int(bound)) for bound in bounds]
    for digits in range(3, 17):
        labels = [f"{bound:.{digits}g}" for bound in bounds]
        if len(set(labels)) == len(labels):
            return labels
    return [repr(float(bound)) for bound in bounds]
