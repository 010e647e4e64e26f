"""Which columns are free text, and which columns the text is asked to tell (its context).

A free-text column (a tweet, a comment, a note) is not a category: nearly every value is unique, so the
categorical buckets of the tabular figures would put almost all of it into "(other)" and report a
meaningless 100 %. Such columns are evaluated by the text figures instead (``_text.py``).

Detection (when ``text_columns`` is not given) is the project's one free-text rule, ``synthgen._free_text``
(the same that ``TabularSynthesizer`` infers ``LANGUAGE_TEXT`` columns with), applied to the original data.
"""

from __future__ import annotations

import pandas as pd

from synthgen._free_text import holds_strings, is_free_text
from synthgen.evaluation._columns import ColumnKind

# Default context columns: categorical columns with this many distinct non-NULL values, at most this many columns.
_CONTEXT_CATEGORIES = (2, 50)
_MAX_DEFAULT_CONTEXT_COLUMNS = 3


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
        if not holds_strings(original[column]):
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
