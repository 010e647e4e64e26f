"""Record the dtypes users give us and cast decoded columns back to them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

__all__ = ["dtype_name", "restore_dtype", "is_mixed_object"]

_log = logging.getLogger(__name__)


def dtype_name(dtype) -> str:
    """A string that :func:`pandas.api.types.pandas_dtype` turns back into ``dtype``."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    return str(dtype)


def is_mixed_object(values: pd.Series) -> str | None:
    """The mix of Python types in an object column (``"int, str"``), or ``None`` when it holds one kind."""
    if values.dtype != object:
        return None
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind.startswith("mixed") or kind == "unknown-array":
        kinds = sorted({type(v).__name__ for v in values.dropna().head(10_000)})
        if len(kinds) > 1:
            return ", ".join(kinds)
    return None


def _to_datetime(values: pd.Series, dtype) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = pd.to_datetime(values, errors="coerce", utc=getattr(dtype, "tz", None) is not None)
    tz = getattr(dtype, "tz", None)
    current_tz = getattr(values.dtype, "tz", None)
    if tz is not None and current_tz is None:
        values = values.dt.tz_localize("UTC").dt.tz_convert(tz)
    elif tz is None and current_tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    elif tz is not None:
        values = values.dt.tz_convert(tz)
    return values.astype(dtype)


def restore_dtype(values: pd.Series, name: str) -> pd.Series:
    """Cast decoded ``values`` to the recorded dtype ``name``; fall back to the decoded dtype with a warning."""
    try:
        if name == "category":
            return values.astype("category")
        dtype = pd.api.types.pandas_dtype(name)
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return _to_datetime(values, dtype)
        if pd.api.types.is_bool_dtype(dtype):
            textual = pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)
            mapped = values.astype(object).map(_parse_bool, na_action="ignore") if textual else values
            if values.isna().any():
                return mapped.astype("boolean")
            return mapped.astype(dtype)
        if pd.api.types.is_integer_dtype(dtype):
            numeric = pd.to_numeric(values, errors="coerce")
            if numeric.isna().any() and isinstance(dtype, np.dtype):
                return numeric.round().astype("Int64")
            return numeric.round().astype(dtype)
        if pd.api.types.is_float_dtype(dtype):
            return pd.to_numeric(values, errors="coerce").astype(dtype)
        if pd.api.types.is_object_dtype(dtype):
            return values.astype(object)
        return values.astype(dtype)
    except (TypeError, ValueError, OverflowError) as err:
        _log.warning("could not restore dtype %s of column %r (%s); kept %s", name, values.name, err, values.dtype)
        return values


def _parse_bool(value):
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return None
    return bool(value)
