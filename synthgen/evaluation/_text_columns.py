"""Which columns are free text, and which columns the text is asked to tell (its context).

A free-text column (a tweet, a comment, a note) is not a category: nearly every value is unique, so the
categorical buckets of the tabular figures would put almost all of it into "(other)" and report a
meaningless 100 %. Such columns are evaluated by the text figures instead (``_text.py``).

Detection rule (used when ``text_columns`` is not given), on the original data: a column is free text when

- its dtype holds strings (``str``, ``string``, or ``object`` whose values are all strings; not ``category``,
  not boolean), it has a non-NULL value, and
- its non-NULL values have on average at least :data:`MIN_MEAN_WORDS` whitespace-separated words, and
- at least :data:`MIN_DISTINCT_SHARE` of its non-NULL values are distinct.

Codes, names and labels ("Private", "New York", "Jane Doe") have fewer words; a handful of sentences repeated
over many rows (a questionnaire's fixed answers) are few distinct values: both stay categorical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.evaluation._columns import ColumnKind

MIN_MEAN_WORDS = 4.0
MIN_DISTINCT_SHARE = 0.5
# Detection looks at an evenly spaced sample of at most this many non-NULL values (enough for a mean and a share).
_DETECTION_SAMPLE = 10_000
# Default context columns: categorical columns with this many distinct non-NULL values, at most this many columns.
_CONTEXT_CATEGORIES = (2, 50)
_MAX_DEFAULT_CONTEXT_COLUMNS = 3


def is_string_column(series: pd.Series) -> bool:
    """Whether a column's dtype holds strings (``str``, ``string``, or ``object`` of strings only)."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(dtype):
        return False
    if isinstance(dtype, pd.ArrowDtype):
        import pyarrow as pa

        return pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    if pd.api.types.is_object_dtype(dtype):
        return pd.api.types.infer_dtype(series, skipna=True) == "string"
    return pd.api.types.is_string_dtype(dtype)


def is_free_text(series: pd.Series) -> bool:
    """Whether a column of the original data is free text by the rule in the module docstring."""
    if not is_string_column(series):
        return False
    values = series.dropna()
    if len(values) == 0:
        return False
    if len(values) > _DETECTION_SAMPLE:
        values = values.iloc[np.linspace(0, len(values) - 1, _DETECTION_SAMPLE).astype(np.int64)]
    values = values.astype("str")
    mean_words = float(values.str.count(r"\S+").mean())
    distinct_share = values.nunique() / len(values)
    return mean_words >= MIN_MEAN_WORDS and distinct_share >= MIN_DISTINCT_SHARE


def resolve_text_columns(
    text_columns: list[str] | None, original: pd.DataFrame, columns: list[str], context_key: str | None
) -> list[str]:
    """The text columns to evaluate: the given ones after checks, or the detected ones.

    Raises
    ------
    ValueError
        If ``text_columns`` is not a list of column names, names a column the data lacks, the context key, or
        a column of the original that does not hold strings.
    """
    if text_columns is None:
        return [c for c in columns if is_free_text(original[c])]
    names = _column_list(text_columns, "text_columns")
    _check_known(names, "text_columns", columns, context_key)
    for column in names:
        if not is_string_column(original[column]):
            raise ValueError(
                f"The 'text_columns' parameter of evaluate names column {column!r}, which does not hold strings "
                f"in the original data (dtype {original[column].dtype}); text figures need a free-text column."
            )
    return names


def resolve_context_columns(
    context_columns: list[str] | None,
    text_columns: list[str],
    kinds: dict[str, ColumnKind],
    original: pd.DataFrame,
    columns: list[str],
    context_key: str | None,
) -> list[str]:
    """The columns whose value the text is asked to predict (the context figures).

    By default the first three categorical, non-text columns (in column order) with 2 to 50 distinct
    non-NULL values in the original data; any non-text column may be named explicitly (numeric and datetime
    columns are predicted as their univariate buckets).

    Raises
    ------
    ValueError
        If ``context_columns`` is not a list of column names, names a column the data lacks, the context key,
        or a text column.
    """
    if not text_columns:
        return []
    if context_columns is None:
        low, high = _CONTEXT_CATEGORIES
        chosen = [
            c for c in columns
            if c not in text_columns and kinds[c] == "categorical" and low <= original[c].nunique() <= high
        ]
        return chosen[:_MAX_DEFAULT_CONTEXT_COLUMNS]
    names = _column_list(context_columns, "text_context_columns")
    _check_known(names, "text_context_columns", columns, context_key)
    texts = [c for c in names if c in text_columns]
    if texts:
        raise ValueError(
            f"The 'text_context_columns' parameter of evaluate names the text columns {texts}; a context column "
            "is a column the text is asked to predict, not a text column."
        )
    return names


def _column_list(value, parameter: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(
            f"The {parameter!r} parameter of evaluate must be a list of column names or None. Got {value!r} instead."
        )
    duplicated = sorted({c for c in value if list(value).count(c) > 1}, key=str)
    if duplicated:
        raise ValueError(f"The {parameter!r} parameter of evaluate names columns twice: {duplicated}.")
    return list(value)


def _check_known(names: list[str], parameter: str, columns: list[str], context_key: str | None) -> None:
    if context_key is not None and context_key in names:
        raise ValueError(
            f"The {parameter!r} parameter of evaluate names the context key {context_key!r}, which only groups "
            "rows into sequences and is not evaluated."
        )
    unknown = [c for c in names if c not in columns]
    if unknown:
        raise ValueError(
            f"The {parameter!r} parameter of evaluate names columns the data does not have: {unknown}. "
            f"Its columns are {list(columns)}."
        )
