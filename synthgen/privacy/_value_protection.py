"""Value protection: hide rare categories and extreme values from the published statistics.

The mechanisms count distinct *subjects* (the people whose data it is: context keys of a two-table target,
rows of a flat table), never rows, so one heavy contributor cannot make a value look common.

- A category is rare when fewer than ``rare_threshold()`` subjects hold it: a threshold drawn from
  {5, 6, 7} per column, so an attacker cannot tell from the stats whether a value had exactly 5 holders.
- A range (min/max) drops the ``k`` most extreme subjects on each side (``k`` drawn from {5, 6, 7}): the
  published minimum is the ``k+1``-th smallest per-subject minimum. With fewer than
  ``MIN_SUBJECTS_FOR_RANGE`` subjects no range is published at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "MIN_SUBJECTS_FOR_RANGE",
    "EXTREMES_KEPT_PER_PARTITION",
    "rare_threshold",
    "subject_counts",
    "subject_extremes",
    "protected_range",
]

RARE_THRESHOLD_MIN = 5
RARE_THRESHOLD_SPREAD = 3
MIN_SUBJECTS_FOR_RANGE = 20
EXTREMES_KEPT_PER_PARTITION = 1000


def rare_threshold(rng: np.random.Generator) -> int:
    """A stochastic threshold in {5, 6, 7}: categories held by fewer subjects are rare."""
    return RARE_THRESHOLD_MIN + int(rng.integers(0, RARE_THRESHOLD_SPREAD))


def subject_counts(values: pd.Series, subjects: np.ndarray) -> dict:
    """Number of distinct subjects per non-null value."""
    present = values.notna().to_numpy()
    if not present.any():
        return {}
    value_codes, uniques = pd.factorize(values[present], sort=False)
    subject_codes, subject_uniques = pd.factorize(np.asarray(subjects)[present], sort=False)
    if len(subject_uniques) < len(subject_codes):
        # several rows per subject: count each (value, subject) pair once, on packed int64 keys
        pairs = pd.unique(value_codes.astype(np.int64) * len(subject_uniques) + subject_codes)
        value_codes = pairs // len(subject_uniques)
    counts = np.bincount(value_codes, minlength=len(uniques))
    return dict(zip(uniques.tolist(), counts.tolist(), strict=True))


def subject_extremes(
    values: np.ndarray, subjects: np.ndarray, n: int = EXTREMES_KEPT_PER_PARTITION
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-subject minima (the ``n`` smallest, ascending), maxima (the ``n`` largest, descending) and #subjects.

    ``values`` must be numeric without NaNs (datetimes as int64); ``subjects`` aligned with it.
    """
    if len(values) == 0:
        empty = np.array([], dtype=values.dtype)
        return empty, empty, 0
    subjects = np.asarray(subjects)
    if subjects.dtype.kind in "iu" and bool((np.diff(subjects) > 0).all()):
        # one row per subject (a flat table's row numbers): the extremes are the values, no grouping needed
        minima = np.sort(values)
        maxima = minima[::-1]
    else:
        grouped = pd.DataFrame({"v": values, "s": subjects}).groupby("s", sort=False)["v"]
        minima = np.sort(grouped.min().to_numpy())
        maxima = np.sort(grouped.max().to_numpy())[::-1]
    # copies: a slice would keep every subject's extreme alive, i.e. memory growing with the whole table
    return minima[:n].copy(), maxima[:n].copy(), len(minima)


def protected_range(
    minima: list[np.ndarray],
    maxima: list[np.ndarray],
    n_subjects: int,
    *,
    value_protection: bool,
    rng: np.random.Generator,
):
    """Reduce per-partition extremes to a ``(min, max)`` range; ``(None, None)`` when hidden or empty.

    With protection, the ``k`` most extreme subjects per side (``k`` in {5, 6, 7}) fall outside the range,
    and fewer than ``MIN_SUBJECTS_FOR_RANGE`` subjects hide the range entirely.
    """
    lows = np.sort(np.concatenate(minima)) if minima else np.array([])
    highs = np.sort(np.concatenate(maxima))[::-1] if maxima else np.array([])
    if n_subjects == 0 or len(lows) == 0:
        return None, None
    if not value_protection:
        return lows[0], highs[0]
    if n_subjects < MIN_SUBJECTS_FOR_RANGE:
        return None, None
    k = rare_threshold(rng)
    k_low, k_high = min(k, len(lows) - 1), min(k, len(highs) - 1)
    low, high = lows[k_low], highs[k_high]
    if low > high:  # few distinct subjects around a tie: collapse onto the middle value
        low = high = lows[len(lows) // 2]
    return low, high
