"""Validate input frames and resolve the encoding type of every column."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .._dtypes import dtype_spec, is_mixed_object
from ..domain import ModelEncodingType, ModelType

__all__ = ["example", "check_frame", "check_unique", "resolve_encoding_types", "resolve_model_type",
           "normalize_storage"]

_NUMERIC_TYPES = {
    ModelEncodingType.TABULAR_NUMERIC_AUTO,
    ModelEncodingType.TABULAR_NUMERIC_DISCRETE,
    ModelEncodingType.TABULAR_NUMERIC_BINNED,
    ModelEncodingType.TABULAR_NUMERIC_DIGIT,
    ModelEncodingType.LANGUAGE_NUMERIC,
}
_DATETIME_TYPES = {
    ModelEncodingType.TABULAR_DATETIME,
    ModelEncodingType.TABULAR_DATETIME_RELATIVE,
    ModelEncodingType.LANGUAGE_DATETIME,
}


def example(value) -> str:
    """``repr`` of a value for an error message, without numpy's type wrappers."""
    return repr(value.item() if isinstance(value, np.generic) else value)


_INT64 = (-(2**63), 2**63 - 1)


def _check_values(frame: pd.DataFrame, *, name: str, keys: Mapping[str, str | None]) -> None:
    """Values that parquet cannot store: complex numbers, and Python ints beyond 64 bits in object key columns.

    (Modelled object columns are stored as strings and come back as Python values, however large.)
    """
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_complex_dtype(values.dtype):
            raise ValueError(f"Complex data not supported: column {column!r} of {name} has dtype {values.dtype}. "
                             "Split it into real and imaginary columns (values.real, values.imag).")
        if values.dtype != object:
            continue
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind == "complex":
            raise ValueError(f"Complex data not supported: column {column!r} of {name} holds complex numbers. "
                             "Split it into real and imaginary columns.")
    for parameter, column in keys.items():
        values = frame[column] if column is not None else None
        if values is None or values.dtype != object or pd.api.types.infer_dtype(values, skipna=True) != "integer":
            continue
        too_large = [v for v in values if not _INT64[0] <= v <= _INT64[1]]
        if too_large:
            raise ValueError(
                f"{parameter} column {column!r} of {name} holds {len(too_large)} integers outside the 64-bit range "
                f"[-2**63, 2**63 - 1], e.g. {too_large[0]!r}. Convert it, e.g. df[{column!r}].astype(str)."
            )


def check_frame(frame, *, name: str, keys: Mapping[str, str | None]) -> None:
    """Raise a clear error unless ``frame`` is a non-empty DataFrame with string columns holding ``keys``.

    Also rejects what parquet cannot store (complex numbers, key integers beyond 64 bits) and key columns that
    mix Python types, before anything is written.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame; got {type(frame).__name__} instead.")
    if len(frame) == 0:
        raise ValueError(f"{name} is empty (0 rows); there is nothing to learn from.")
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise ValueError(
            f"{name} column names must be strings; got {bad[0]!r} ({type(bad[0]).__name__}). "
            "Rename the columns, e.g. frame.columns = frame.columns.astype(str)."
        )
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"{name} has duplicate column names: {duplicated}.")
    for parameter, column in keys.items():
        if column is None:
            continue
        if column not in frame.columns:
            raise ValueError(f"{parameter} {column!r} is not a column of {name}; columns are {list(frame.columns)}.")
        if frame[column].isna().any():
            n = int(frame[column].isna().sum())
            raise ValueError(f"{parameter} column {column!r} of {name} has {n} NULL values; keys must not be NULL.")
        mix = is_mixed_object(frame[column])
        if mix is not None:
            raise ValueError(
                f"{parameter} column {column!r} of {name} mixes Python types ({mix}); keys must be of one type. "
                f"Convert it, e.g. df[{column!r}].astype(str)."
            )
    _check_values(frame, name=name, keys=keys)


def check_unique(values: pd.Series, *, parameter: str, column: str) -> None:
    """Refuse duplicates in the key ``column`` (named by its ``parameter``), counting them and showing one."""
    duplicated = values.duplicated()
    if duplicated.any():
        raise ValueError(f"{parameter} {column!r} is not unique: {int(duplicated.sum())} duplicate values, "
                         f"e.g. {example(values[duplicated].iloc[0])}.")


def _infer(values: pd.Series, model_type: ModelType) -> ModelEncodingType:
    dtype = values.dtype
    is_bool = pd.api.types.is_bool_dtype(dtype)
    if pd.api.types.is_numeric_dtype(dtype) and not is_bool:
        return ModelEncodingType.TABULAR_NUMERIC_AUTO if model_type == ModelType.TABULAR else (
            ModelEncodingType.LANGUAGE_NUMERIC
        )
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ModelEncodingType.TABULAR_DATETIME if model_type == ModelType.TABULAR else (
            ModelEncodingType.LANGUAGE_DATETIME
        )
    return ModelEncodingType.TABULAR_CATEGORICAL if model_type == ModelType.TABULAR else (
        ModelEncodingType.LANGUAGE_CATEGORICAL
    )


def resolve_model_type(model_type, encoding_types: Mapping | None) -> ModelType:
    if model_type is not None:
        return ModelType.parse(model_type, name="model_type")
    for column, value in (encoding_types or {}).items():
        parsed = ModelEncodingType.parse(value, name=f"tgt_encoding_types[{column!r}]")
        if parsed.model_type is not None:
            return parsed.model_type
    return ModelType.TABULAR


def resolve_encoding_types(
    frame: pd.DataFrame,
    declared: Mapping | None,
    *,
    name: str,
    parameter: str,
    key_columns: set[str],
    model_type: ModelType,
) -> dict[str, ModelEncodingType]:
    """Declared types (validated) merged with types inferred from dtypes, for every non-key column."""
    if declared is not None and not isinstance(declared, Mapping):
        raise TypeError(f"{parameter} must be a dict of column name to encoding type; got {type(declared).__name__}.")
    declared = dict(declared or {})
    unknown = [c for c in declared if c not in frame.columns]
    if unknown:
        raise ValueError(f"{parameter} names columns that {name} does not have: {unknown}.")
    keyed = [c for c in declared if c in key_columns]
    if keyed:
        raise ValueError(f"{parameter} must not include key columns; got {keyed}.")
    resolved: dict[str, ModelEncodingType] = {}
    for column in frame.columns:
        if column in key_columns:
            continue
        if column in declared:
            encoding = ModelEncodingType.parse(declared[column], name=f"{parameter}[{column!r}]")
            if encoding == ModelEncodingType.AUTO:
                encoding = _infer(frame[column], model_type)
            resolved[column] = encoding
            continue
        mix = is_mixed_object(frame[column])
        if mix is not None:
            raise ValueError(
                f"Column {column!r} of {name} mixes Python types ({mix}). Convert it to one type "
                f"(e.g. df[{column!r}].astype(str)) or declare its encoding in {parameter}."
            )
        resolved[column] = _infer(frame[column], model_type)
    return resolved


def normalize_storage(values: pd.Series, encoding: ModelEncodingType, *, column: str, name: str) -> pd.Series:
    """Values in a form that parquet stores and the encoding reads: numbers, datetimes or strings."""
    if encoding in _NUMERIC_TYPES:
        if pd.api.types.is_bool_dtype(values.dtype):
            return values.astype("Int64" if values.isna().any() else "int64")
        if pd.api.types.is_numeric_dtype(values.dtype):
            return values
        parsed = pd.to_numeric(values.astype(object), errors="coerce")
        failed = parsed.isna() & values.notna()
        if failed.any():
            raise ValueError(
                f"Column {column!r} of {name} is declared {encoding.value} but {int(failed.sum())} values are not "
                f"numbers, e.g. {example(values[failed].iloc[0])}."
            )
        return parsed
    if encoding in _DATETIME_TYPES:
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            return values
        parsed = pd.to_datetime(values.astype(object), errors="coerce", format="mixed", utc=True)
        failed = parsed.isna() & values.notna()
        if failed.any():
            raise ValueError(
                f"Column {column!r} of {name} is declared {encoding.value} but {int(failed.sum())} values are not "
                f"datetimes, e.g. {example(values[failed].iloc[0])}."
            )
        return parsed.dt.tz_localize(None)
    if values.dtype == object and (is_mixed_object(values) is not None or isinstance(dtype_spec(values), dict)):
        # typed Python values as their strings: parquet would store Decimals at one common scale ('1.5' -> '1.50')
        return values.astype("string").astype(object).where(values.notna(), None)
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(object).where(values.notna(), None).astype("string")
    return values
