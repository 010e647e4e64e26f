"""Fairness figures: statistical parity difference and disparate impact of a target among groups.

A group is a combination of values of the sensitive columns (NULL is a value of its own). For every target
class ``c`` and group ``g`` the share ``P(target = c | g)`` is computed over the rows (for sequences: over all
their rows). Groups with fewer than ``min_group_size`` rows are left out of the summary figures: their shares
are mostly noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["MIN_GROUP_SIZE", "disparate_impact", "parity_shares", "statistical_parity_difference"]

MIN_GROUP_SIZE = 30
_NULL = "<NULL>"


def _labels(values: pd.Series) -> pd.Series:
    labels = values.astype(object).where(values.notna(), _NULL)
    return labels.map(str)


def _check(data: pd.DataFrame, target_column: str, sensitive_columns: Sequence[str], min_group_size: int) -> list[str]:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame; got {type(data).__name__} instead.")
    sensitive = [sensitive_columns] if isinstance(sensitive_columns, str) else list(sensitive_columns)
    if not sensitive:
        raise ValueError("sensitive_columns must name at least one column.")
    missing = [c for c in [target_column, *sensitive] if c not in data.columns]
    if missing:
        raise ValueError(f"data lacks the fairness columns {missing}; its columns are {list(data.columns)}.")
    if target_column in sensitive:
        raise ValueError(f"target_column {target_column!r} must not be one of the sensitive_columns.")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise ValueError(
            f"The 'min_group_size' parameter must be an int in the range [1, inf). Got {min_group_size!r} instead."
        )
    return sensitive


def parity_shares(
    data: pd.DataFrame, target_column: str, sensitive_columns: str | Sequence[str]
) -> pd.DataFrame:
    """The share of every target class within every group.

    Parameters
    ----------
    data : pandas.DataFrame
    target_column : str
    sensitive_columns : str or list of str

    Returns
    -------
    pandas.DataFrame
        One row per group (indexed by the sensitive columns' values, as strings): ``n`` (rows of the group)
        and one column per target class with its share in the group.

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen.evaluation import parity_shares
    >>> df = pd.DataFrame({"sex": ["F", "F", "M", "M"], "income": ["lo", "hi", "hi", "hi"]})
    >>> parity_shares(df, "income", "sex")  # doctest: +NORMALIZE_WHITESPACE
         n   hi   lo
    sex
    F    2  0.5  0.5
    M    2  1.0  0.0
    """
    sensitive = _check(data, target_column, sensitive_columns, 1)
    keys = [_labels(data[c]) for c in sensitive]
    target = _labels(data[target_column])
    counts = pd.crosstab(keys, target)
    counts.index.names = sensitive
    counts.columns.name = None
    n = counts.sum(axis=1)
    shares = counts.div(n, axis=0)
    shares.insert(0, "n", n)
    return shares


def _extremes(shares: pd.DataFrame, min_group_size: int, positive) -> tuple[pd.Series, pd.Series] | None:
    kept = shares[shares["n"] >= min_group_size].drop(columns="n")
    if len(kept) < 2:
        return None
    if positive is not None:
        if str(positive) not in kept.columns:
            raise ValueError(f"positive class {positive!r} does not occur in the target; classes are "
                             f"{list(kept.columns)}.")
        kept = kept[[str(positive)]]
    return kept.min(axis=0), kept.max(axis=0)


def statistical_parity_difference(
    data: pd.DataFrame,
    target_column: str,
    sensitive_columns: str | Sequence[str],
    *,
    positive=None,
    min_group_size: int = MIN_GROUP_SIZE,
) -> float:
    """The largest gap between groups in the share of a target class: 0 is exact parity.

    ``max_g P(c | g) − min_g P(c | g)`` for the ``positive`` class, or the largest over all classes when
    ``positive`` is None (for a binary target both classes give the same figure).

    Parameters
    ----------
    data : pandas.DataFrame
    target_column : str
    sensitive_columns : str or list of str
        Their value combinations form the groups.
    positive : optional
        The class of interest (compared as a string).
    min_group_size : int, default=30
        Smaller groups are left out.

    Returns
    -------
    float
        NaN when fewer than two groups are large enough.

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen.evaluation import statistical_parity_difference
    >>> df = pd.DataFrame({"sex": ["F", "F", "M", "M"], "income": ["lo", "hi", "hi", "hi"]})
    >>> statistical_parity_difference(df, "income", "sex", min_group_size=1)
    0.5
    """
    _check(data, target_column, sensitive_columns, min_group_size)
    extremes = _extremes(parity_shares(data, target_column, sensitive_columns), min_group_size, positive)
    if extremes is None:
        return float("nan")
    low, high = extremes
    return float((high - low).max())


def disparate_impact(
    data: pd.DataFrame,
    target_column: str,
    sensitive_columns: str | Sequence[str],
    *,
    positive=None,
    min_group_size: int = MIN_GROUP_SIZE,
) -> float:
    """The smallest ratio between groups of the share of a target class: 1 is exact parity.

    ``min_g P(c | g) / max_g P(c | g)`` for the ``positive`` class, or the smallest over all classes when
    ``positive`` is None. The "four-fifths rule" flags values below 0.8.

    Parameters
    ----------
    data : pandas.DataFrame
    target_column : str
    sensitive_columns : str or list of str
    positive : optional
        The class of interest (compared as a string).
    min_group_size : int, default=30
        Smaller groups are left out.

    Returns
    -------
    float
        NaN when fewer than two groups are large enough.

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen.evaluation import disparate_impact
    >>> df = pd.DataFrame({"sex": ["F", "F", "M", "M"], "income": ["lo", "hi", "hi", "hi"]})
    >>> disparate_impact(df, "income", "sex", positive="hi", min_group_size=1)
    0.5
    """
    _check(data, target_column, sensitive_columns, min_group_size)
    extremes = _extremes(parity_shares(data, target_column, sensitive_columns), min_group_size, positive)
    if extremes is None:
        return float("nan")
    low, high = extremes
    ratios = (low / high.where(high > 0)).fillna(1.0)
    return float(ratios.min())
