"""Record the dtypes users give us and cast decoded columns back to them.

A column's recorded dtype (its *dtype spec*, kept in ``dtypes.json`` and in the column stats) is a pandas dtype
name, or a dict where the name alone cannot restore the column:

- ``{"dtype": "category", "categories": [...], "categories_dtype": "int64", "ordered": bool}``: every category
  (unused ones too) in its order and of its type. At split the spec also lists the ``unused`` category positions;
  analyze publishes only the unused and the published categories, so a protected category never reaches the
  output dtype.
- ``{"dtype": "object", "values": "bool" | "int" | "float" | "Decimal"}``: an object column of one kind of Python
  value, restored as values of that type (an object column of strings is plain ``"object"``).

Object columns of other Python values (datetimes, dates, times, timedeltas, bytes, ...) cannot come back as they
went in and are refused at split with a message that says what to convert them to.
"""

from __future__ import annotations

import decimal
import logging
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "as_category_strings",
    "check_restorable",
    "dtype_name",
    "dtype_spec",
    "holds_text",
    "is_mixed_object",
    "published_dtype",
    "restore_dtype",
    "spec_name",
]

_log = logging.getLogger(__name__)

# infer_dtype kinds of object columns restored as Python values of one type
_OBJECT_KINDS = {"boolean": "bool", "integer": "int", "floating": "float", "decimal": "Decimal"}
# category dtypes whose categories round-trip through JSON (datetimes as strings)
_CATEGORY_KINDS = {"string", "integer", "floating", "boolean", "datetime64", "datetime", "empty"}


def dtype_name(dtype) -> str:
    """A string that :func:`pandas.api.types.pandas_dtype` turns back into ``dtype``."""
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    return str(dtype)


def as_category_strings(values: pd.Series) -> pd.Series:
    """Values as strings (NULLs kept missing), the form in which categories are counted and published."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    as_str = values.astype("string")
    return as_str.astype(object).where(values.notna().to_numpy(), None)


def is_mixed_object(values: pd.Series) -> str | None:
    """The mix of Python types in an object column (``"int, str"``), or ``None`` when it holds one kind."""
    if values.dtype != object:
        return None
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind.startswith("mixed") or kind == "unknown-array":
        kinds = _python_types(values)
        if len(kinds) > 1:
            return ", ".join(kinds)
    return None


def _python_types(values: pd.Series) -> list[str]:
    return sorted({type(v).__name__ for v in values.dropna().head(10_000)})


def _is_datetime_category(categories: pd.Index) -> bool:
    return pd.api.types.is_datetime64_any_dtype(categories.dtype)


def dtype_spec(values: pd.Series) -> str | dict[str, Any]:
    """The dtype spec of a column: a dtype name, or a dict for categories and typed object columns."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        stored = ([str(v) for v in categories.tz_convert("UTC")] if getattr(categories, "tz", None) is not None
                  else [str(v) for v in categories]) if _is_datetime_category(categories) else categories.tolist()
        used = np.zeros(len(categories), dtype=bool)
        used[np.unique(values.cat.codes.to_numpy()[values.notna().to_numpy()])] = True
        return {"dtype": "category", "categories": stored, "categories_dtype": dtype_name(categories.dtype),
                "ordered": bool(dtype.ordered), "unused": np.flatnonzero(~used).tolist()}
    if pd.api.types.is_object_dtype(dtype):
        kind = _OBJECT_KINDS.get(pd.api.types.infer_dtype(values, skipna=True))
        if kind is not None:
            return {"dtype": "object", "values": kind}
    return dtype_name(dtype)


def spec_name(spec: str | dict[str, Any]) -> str:
    """The pandas dtype name of a dtype spec."""
    return spec["dtype"] if isinstance(spec, dict) else spec


def _refusal(values: pd.Series) -> str | None:
    """Why a column cannot come back as it went in, and what to convert it to; ``None`` when it can."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        kind = pd.api.types.infer_dtype(dtype.categories, skipna=True)
        if kind not in _CATEGORY_KINDS:
            return (f"is a category column whose categories are {kind} values ({dtype.categories.dtype}), which "
                    "cannot be restored; convert them to strings, e.g. "
                    f"df[{values.name!r}] = df[{values.name!r}].cat.rename_categories(str).")
        return None
    if not pd.api.types.is_object_dtype(dtype) or is_mixed_object(values) is not None:
        return None  # mixes are reported by the encoding-type resolution
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind in ("string", "empty") or kind in _OBJECT_KINDS:
        return None
    column = values.name
    if kind in ("datetime", "datetime64", "date"):
        zones = sorted({str(getattr(v, "tzinfo", None)) for v in values.dropna().head(10_000)})
        found = f"Python datetimes (time zones {', '.join(zones)})" if len(zones) > 1 else f"Python {kind}s"
        return (f"holds {found} in an object column, which cannot come back as they went in; convert it to a "
                f"datetime64 column, e.g. df[{column!r}] = pd.to_datetime(df[{column!r}], utc=True).")
    if kind in ("timedelta", "timedelta64"):
        return (f"holds Python timedeltas in an object column, which cannot come back as they went in; convert "
                f"it to numbers, e.g. df[{column!r}] = pd.to_timedelta(df[{column!r}]).dt.total_seconds().")
    return (f"holds Python {', '.join(_python_types(values))} values in an object column, which cannot come back "
            f"as they went in; convert it to strings (df[{column!r}] = df[{column!r}].astype(str)) or to numbers.")


def check_restorable(frame: pd.DataFrame, encoding_types: dict, *, name: str, parameter: str) -> None:
    """Raise a ``ValueError`` naming the first column of ``frame`` whose values cannot come back as they went in.

    ``encoding_types`` maps the modelled columns to their resolved encoding types: a category column must be
    ``TABULAR_CATEGORICAL``, the only encoding that knows which of its categories are published.
    """
    for column, encoding in encoding_types.items():
        values = frame[column]
        reason = _refusal(values)
        if reason is not None:
            raise ValueError(f"Column {column!r} of {name} {reason}")
        if isinstance(values.dtype, pd.CategoricalDtype) and encoding.value != "TABULAR_CATEGORICAL":
            raise ValueError(
                f"Column {column!r} of {name} has a category dtype, so {parameter} must leave it "
                f"TABULAR_CATEGORICAL (its categories, their order and 'ordered' come back); got {encoding.value}. "
                f"To encode it as {encoding.value}, convert it first, e.g. "
                f"df[{column!r}] = df[{column!r}].astype({str(values.dtype.categories.dtype)!r})."
            )


def _categories(spec: dict[str, Any]) -> pd.Index:
    dtype = pd.api.types.pandas_dtype(spec["categories_dtype"])
    if pd.api.types.is_datetime64_any_dtype(dtype):
        tz = getattr(dtype, "tz", None)
        parsed = pd.DatetimeIndex(pd.to_datetime(spec["categories"], utc=tz is not None))
        return (parsed.tz_convert(tz) if tz is not None else parsed).astype(dtype)
    return pd.Index(spec["categories"], dtype=dtype)


def published_dtype(spec: str | dict[str, Any], published: list[str] | None) -> str | dict[str, Any]:
    """The spec to publish with a column's stats: a category dtype keeps its unused and published categories.

    ``published`` are the category strings that value protection let through (``None`` keeps all).
    """
    if not (isinstance(spec, dict) and spec["dtype"] == "category"):
        return spec
    unused = set(spec.get("unused", []))
    strings = as_category_strings(pd.Series(_categories(spec), dtype=object)).tolist()
    keep = [i for i, s in enumerate(strings) if published is None or i in unused or s in set(published)]
    return {key: value for key, value in spec.items() if key != "unused"} | {
        "categories": [spec["categories"][i] for i in keep]}


def holds_text(spec: str | dict[str, Any]) -> bool:
    """Whether a column of this dtype spec holds strings, so that a literal ``_RARE_`` is a value of its type."""
    if isinstance(spec, dict) or spec == "category":
        return False
    try:
        dtype = pd.api.types.pandas_dtype(spec)
    except TypeError:
        return False
    return pd.api.types.is_string_dtype(dtype)


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


def _restore_category(values: pd.Series, spec: dict[str, Any]) -> pd.Series:
    categories = _categories(spec)
    if pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype):
        strings = as_category_strings(pd.Series(categories, dtype=object))
        codes = pd.Index(strings.to_numpy(dtype=object)).get_indexer(values.astype(object))
    else:
        codes = categories.get_indexer(values)
    dtype = pd.CategoricalDtype(categories, ordered=spec["ordered"])
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=values.index, name=values.name)


def _parse_int(value):
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return _parse_int(_parse_float(value))
    if value is None or not np.isfinite(value):
        return None
    return int(round(value))


def _parse_float(value):
    try:
        return float(value)
    except ValueError:
        return None


def _parse_decimal(value):
    try:
        return decimal.Decimal(value if isinstance(value, str) else str(value))
    except decimal.InvalidOperation:
        return None


def _parse_bool(value):
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        return None
    return bool(value)


_PARSERS = {"bool": _parse_bool, "int": _parse_int, "float": _parse_float, "Decimal": _parse_decimal}


def _restore_objects(values: pd.Series, kind: str) -> pd.Series:
    """Python values of one ``kind``, parsed once per distinct decoded value; NULLs as ``None``."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parse = _PARSERS[kind]
    restored = np.array([parse(u) for u in uniques.tolist()] + [None], dtype=object)
    return pd.Series(restored[codes], index=values.index, name=values.name, dtype=object)


def restore_dtype(values: pd.Series, spec: str | dict[str, Any]) -> pd.Series:
    """Cast decoded ``values`` to the recorded dtype spec; fall back to the decoded dtype with a warning."""
    name = spec_name(spec)
    try:
        if isinstance(spec, dict) and name == "category":
            return _restore_category(values, spec)
        if isinstance(spec, dict) and name == "object":
            return _restore_objects(values, spec["values"])
        if name == "category":
            return values.astype("category")
        dtype = pd.api.types.pandas_dtype(name)
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return _to_datetime(values, dtype)
        if pd.api.types.is_bool_dtype(dtype):
            textual = pd.api.types.is_object_dtype(values.dtype) or pd.api.types.is_string_dtype(values.dtype)
            mapped = _restore_objects(values, "bool") if textual else values
            if mapped.isna().any():
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
