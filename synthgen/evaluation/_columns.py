"""Input validation and harmonised column values shared by all metrics.

Every metric looks at a column through one of four kinds, decided on the original data:
``numeric`` and ``datetime`` columns become float64 arrays with NaN for NULL (datetimes as microseconds
since the epoch, in UTC), ``categorical`` and ``text`` columns become object arrays of strings with None for
NULL. ``text`` (free text, see ``_text_columns``) is never returned by :func:`column_kind`: ``evaluate``
assigns it, and the tabular figures leave such columns to the text figures. The
other frames are converted to the original's kind, so that an ``int64`` column in the original and a
``Float64`` or ``str`` column of numbers in the synthetic data compare value by value.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

ColumnKind = Literal["numeric", "datetime", "categorical", "text"]

# Values of a column after harmonisation: float64 for numeric/datetime kinds, object (str | None) otherwise.
ColumnValues = np.ndarray


def column_kind(series: pd.Series) -> ColumnKind:
    """Return the kind under which a column of the original data is evaluated."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_timestamp(dtype.pyarrow_dtype) or pa.types.is_date(dtype.pyarrow_dtype)
    ):
        return "datetime"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "categorical"


def harmonize(series: pd.Series, kind: ColumnKind, *, column: str, frame: str) -> ColumnValues:
    """Convert one column to the array form of its kind.

    Raises
    ------
    ValueError
        If a column of numeric or datetime kind holds values that cannot be read as such.
    """
    if kind in ("categorical", "text"):
        return series.astype("string").to_numpy(dtype=object, na_value=None)
    if kind == "numeric":
        try:
            numbers = series if _is_plain_numeric(series) else pd.to_numeric(series, errors="raise")
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"Column {column!r} is numeric in the original data, but the {frame} data holds values that "
                f"are not numbers (dtype {series.dtype}): {error}"
            ) from error
        return numbers.to_numpy(dtype="float64", na_value=np.nan)
    try:
        stamps = pd.to_datetime(series, errors="raise")
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"Column {column!r} is a datetime in the original data, but the {frame} data holds values that "
            f"are not datetimes (dtype {series.dtype}): {error}"
        ) from error
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    micros = stamps.to_numpy(dtype="datetime64[us]")
    values = micros.view("int64").astype("float64")
    values[np.isnat(micros)] = np.nan
    return values


def _is_plain_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def validate_frames(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None,
    context_key: str | None,
) -> list[str]:
    """Check the frames against each other and return the columns to evaluate.

    The context key, when given, is not evaluated as a column: it only groups rows into sequences.

    Raises
    ------
    TypeError
        If a frame is not a pandas DataFrame.
    ValueError
        If a frame is empty, has duplicate column names, lacks the context key, or its columns differ from the
        original's.
    """
    frames = {"original": original, "synthetic": synthetic}
    if holdout is not None:
        frames["holdout"] = holdout
    for name, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"The {name} data must be a pandas DataFrame. Got {type(frame).__name__} instead."
            )
        duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
        if duplicated:
            raise ValueError(f"The {name} data has duplicate column names: {duplicated}.")
        if frame.shape[1] == 0:
            raise ValueError(f"The {name} data has no columns.")
        if len(frame) == 0:
            raise ValueError(f"The {name} data has no rows; evaluation needs at least one row in each frame.")
        if context_key is not None and context_key not in frame.columns:
            raise ValueError(
                f"The context key {context_key!r} is not a column of the {name} data. "
                f"Its columns are {list(map(str, frame.columns))}."
            )
    expected = list(original.columns)
    for name, frame in frames.items():
        if name == "original":
            continue
        missing = [c for c in expected if c not in frame.columns]
        extra = [c for c in frame.columns if c not in original.columns]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks the original's columns {missing}")
            if extra:
                parts.append(f"has columns the original lacks {extra}")
            raise ValueError(f"The {name} data {' and '.join(parts)}; all frames must have the same columns.")
    columns = [c for c in expected if c != context_key]
    if not columns:
        raise ValueError(
            f"The data has no column besides the context key {context_key!r}; there is nothing to evaluate."
        )
    if context_key is not None:
        for name, frame in frames.items():
            n_null = int(frame[context_key].isna().sum())
            if n_null:
                raise ValueError(
                    f"The context key {context_key!r} is NULL in {n_null} rows of the {name} data; "
                    "every row must belong to a sequence."
                )
    return columns
