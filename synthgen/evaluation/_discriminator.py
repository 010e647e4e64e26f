"""Discriminator AUC: how well a classifier tells original from synthetic records.

A ``HistGradientBoostingClassifier`` is cross-validated (3 stratified folds) on equally many original and
synthetic records; the mean out-of-fold ROC AUC is reported. 0.5 means indistinguishable, 1.0 means every
record is recognised.

Features: numeric and datetime values as numbers (NULL as missing), categorical values as native
categorical features over the original's 250 most frequent categories (others share one code, NULL is
missing). A sequence is one record: its length, the values at a random step t and those at step t + 1
(missing after the last step), as mostlyai-qa flattens sequences for its accuracy charts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

from synthgen.evaluation._columns import ColumnKind
from synthgen.evaluation._discretize import category_codes, most_frequent
from synthgen.evaluation._prepare import PreparedFrame

# HistGradientBoostingClassifier accepts at most 255 categories per feature; leave room for "other".
_MAX_CATEGORIES = 250
_N_FOLDS = 3


def discriminator_auc(
    original: PreparedFrame,
    other: PreparedFrame,
    kinds: dict[str, ColumnKind],
    *,
    max_rows: int,
    rng: np.random.RandomState,
) -> float | None:
    """Cross-validated AUC of a classifier separating ``original`` from ``other`` records.

    Returns None when either side has fewer records than folds.
    """
    categories = {
        c: most_frequent(v, _MAX_CATEGORIES) for c, v in original.values.items() if kinds[c] == "categorical"
    }
    features_original = _features(original, categories, rng)
    features_other = _features(other, categories, rng)
    n = min(len(features_original), len(features_other), max_rows)
    if n < _N_FOLDS:
        return None
    features = np.vstack(
        [
            features_original[np.sort(rng.choice(len(features_original), size=n, replace=False))],
            features_other[np.sort(rng.choice(len(features_other), size=n, replace=False))],
        ]
    )
    labels = np.repeat([0, 1], n)
    is_categorical = _categorical_mask(list(original.values), kinds, sequential=original.lengths is not None)
    classifier = HistGradientBoostingClassifier(
        categorical_features=is_categorical if is_categorical.any() else None,
        random_state=rng.randint(np.iinfo(np.int32).max),
    )
    folds = StratifiedKFold(n_splits=_N_FOLDS, shuffle=True, random_state=rng.randint(np.iinfo(np.int32).max))
    # The trees are small: with several OpenMP threads on a busy machine the boosting stalls in thread
    # barriers (seen: 37 s instead of 1.4 s on two shared cores), while one thread loses little when idle.
    with threadpool_limits(limits=1, user_api="openmp"):
        scores = cross_val_score(classifier, features, labels, cv=folds, scoring="roc_auc")
    return float(scores.mean())


def _row_features(frame: PreparedFrame, categories: dict[str, np.ndarray]) -> np.ndarray:
    columns = []
    for column, values in frame.values.items():
        if column in categories:
            codes = category_codes(values, categories[column]).astype(np.float64)
            codes[codes < 0] = len(categories[column])
            codes[pd.isna(values)] = np.nan
            columns.append(codes)
        else:
            columns.append(values)
    return np.column_stack(columns)


def _features(
    frame: PreparedFrame, categories: dict[str, np.ndarray], rng: np.random.RandomState
) -> np.ndarray:
    rows = _row_features(frame, categories)
    if frame.lengths is None:
        return rows
    starts = np.cumsum(frame.lengths) - frame.lengths
    step = starts + (rng.random_sample(len(frame.lengths)) * frame.lengths).astype(np.int64)
    has_next = step + 1 < starts + frame.lengths
    following = np.full((len(step), rows.shape[1]), np.nan)
    following[has_next] = rows[step[has_next] + 1]
    return np.hstack([frame.lengths[:, None].astype(np.float64), rows[step], following])


def _categorical_mask(columns: list[str], kinds: dict[str, ColumnKind], *, sequential: bool) -> np.ndarray:
    per_row = np.array([kinds[c] == "categorical" for c in columns])
    if not sequential:
        return per_row
    return np.concatenate([[False], per_row, per_row])
