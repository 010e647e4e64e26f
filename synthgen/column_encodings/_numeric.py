"""Shared helpers of the numeric encodings: conversion to floats, decimal precision, digits, value ranges and
the reserved tokens of the single-sub-column encodings (DISCRETE and BINNED).

All numeric encodings see a column as a float64 array with a NULL mask. The *decimal exponent* of a digit
is its power of ten (``E2`` is the hundreds, ``E-1`` the tenths); ``min_decimal`` is the smallest exponent at
which some value has a non-zero digit (``0`` for integers, ``-2`` for cents, ``2`` for multiples of 100).
Digits are extracted from integers (``|x|`` scaled by ``10**-min_decimal``), never from formatted strings,
and the scaling is the same one the precision detection checks, so values round-trip exactly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..privacy._value_protection import protected_range, subject_counts, subject_extremes
from ._base import ColumnEncoding, code_dtype

__all__ = [
    "DIGIT_POSITIONS",
    "DIGIT_LIMIT",
    "MAX_SPAN",
    "NULL_TOKEN",
    "TokenCodedEncoding",
    "analyze_numeric",
    "decimal_exponent",
    "digit_of",
    "format_value",
    "from_scaled_int",
    "leading_exponent",
    "merged_has_nan",
    "merged_min_decimal",
    "merged_range",
    "reserved_codes",
    "round_to_decimal",
    "to_float",
    "to_scaled_int",
]

# Exponents of the digit positions that are analyzed, highest first (the reference engine's E18 … E-8).
DIGIT_POSITIONS = tuple(range(18, -9, -1))
MIN_EXPONENT = DIGIT_POSITIONS[-1]
MAX_EXPONENT = DIGIT_POSITIONS[0]
# Digits are only analyzed (and DIGIT-encoded) below this magnitude, so every integer part fits an int64.
DIGIT_LIMIT = 1e18
# At most this many digit positions are encoded: 10**18 still fits an int64 (up to 9.22e18).
MAX_SPAN = 18
N_QUANTILES = 1001
AUTO_DISCRETE_MAX_VALUES = 100
# AUTO counts the values of partitions with fewer distinct values than this (more cannot become DISCRETE).
AUTO_COUNTED_MAX_VALUES = 1000
NULL_TOKEN = "<<NULL>>"


def to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Convert a column to float64 with NaN for NULLs, and return it with its NULL mask.

    Accepts numpy, nullable and pyarrow-backed numbers, booleans (as 0/1) and strings or objects that
    parse as numbers. Raises ``ValueError`` (to be prefixed with the column name) for dates, non-numeric
    values and infinite values.
    """
    dtype = values.dtype
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or pd.api.types.is_timedelta64_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype)
    ):
        raise ValueError(
            f"has dtype {dtype}; numeric encodings accept numbers and booleans only "
            "(use TABULAR_DATETIME for dates)."
        )
    if pd.api.types.is_complex_dtype(dtype):
        raise ValueError(f"has dtype {dtype}; numeric encodings accept real numbers only.")
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(values.astype(object), errors="coerce")
        bad = (converted.isna() | ~np.isreal(converted.to_numpy())) & values.notna()
        if bad.any():
            examples = ", ".join(repr(v) for v in values[bad].unique()[:3])
            raise ValueError(
                f"contains {int(bad.sum())} non-numeric value(s) such as {examples}; numeric encodings "
                "accept numbers, booleans and strings that parse as numbers (use TABULAR_CATEGORICAL otherwise)."
            )
        x = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    infinite = np.isinf(x)
    if infinite.any():
        raise ValueError(
            f"contains {int(infinite.sum())} infinite value(s); numeric encodings accept finite numbers only."
        )
    # Adding +0.0 turns -0.0 into 0.0, so zero has one key and one digit representation.
    x = x + 0.0
    return x, np.isnan(x)


def _in_units(x: np.ndarray, decimal: int) -> np.ndarray:
    """``x`` in (unrounded) units of ``10**decimal``; multiplying by an exact power of ten for decimals."""
    return x / 10.0**decimal if decimal >= 0 else x * 10.0**-decimal


def to_scaled_int(a: np.ndarray, decimal: int) -> np.ndarray:
    """``a`` (non-negative, finite) in units of ``10**decimal``, rounded to the nearest int64."""
    return np.rint(_in_units(a, decimal)).astype(np.int64)


def from_scaled_int(n: np.ndarray, decimal: int) -> np.ndarray:
    """The inverse of :func:`to_scaled_int`: float values of ``n`` units of ``10**decimal``.

    Dividing by an exact power of ten is correctly rounded, so this yields the float nearest to the decimal
    number, i.e. exactly the value a user typed with that many decimals.
    """
    n = np.asarray(n, dtype=np.float64)
    if decimal >= 0:
        return n * 10.0**decimal
    return n / 10.0**-decimal


def leading_exponent(magnitude: float) -> int:
    """The exponent of the leading digit of ``magnitude`` (``0`` below 10); exact, unlike ``log10``."""
    return len(str(int(magnitude))) - 1


def decimal_exponent(a: np.ndarray) -> int:
    """The smallest exponent in [-8, 18] at which some value of ``a`` (absolute values) has a non-zero digit.

    That is the coarsest unit ``10**e`` on which every value lies exactly (in the scaling of
    :func:`to_scaled_int`); ``-8`` when values need more decimals, ``0`` when there is no non-zero value.
    """
    largest = float(a.max()) if len(a) else 0.0
    if largest == 0.0:
        return 0
    # Scan from coarse to fine: for huge values the check can fail again at very fine units (the scaled
    # product loses precision), so the first passing exponent is the answer, not a bisection point.
    start = min(leading_exponent(largest), MAX_EXPONENT)
    for exponent in range(start, MIN_EXPONENT, -1):
        if np.array_equal(round_to_decimal(a, exponent), a):
            return exponent
    return MIN_EXPONENT


def round_to_decimal(x: np.ndarray, decimal: int) -> np.ndarray:
    """``x`` rounded to a multiple of ``10**decimal``, in float arithmetic (any magnitude, any sign)."""
    return from_scaled_int(np.rint(_in_units(x, decimal)), decimal)


def digit_of(n: np.ndarray, position: int, decimal: int) -> np.ndarray:
    """The digit at exponent ``position`` of scaled integers ``n`` (units of ``10**decimal``)."""
    return (n // 10 ** (position - decimal)) % 10


def _digit_ranges(a: np.ndarray, decimal: int) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest digit per position of :data:`DIGIT_POSITIONS` over ``a`` (``|x| < 1e18``)."""
    lowest = np.zeros(len(DIGIT_POSITIONS), dtype=np.int64)
    highest = np.zeros(len(DIGIT_POSITIONS), dtype=np.int64)
    if len(a) == 0:
        return lowest, highest
    top = leading_exponent(float(a.max()))
    # Values spanning more than MAX_SPAN positions do not fit an int64 at full precision: the finest
    # positions are then recorded as "any digit" (0..9).
    exact_from = max(decimal, top - MAX_SPAN + 1)
    n = to_scaled_int(a, exact_from)
    top = exact_from + len(str(int(n.max()))) - 1  # rounding may carry into one more position
    for position in range(exact_from, top + 1):
        digits = digit_of(n, position, exact_from)
        index = MAX_EXPONENT - position
        lowest[index], highest[index] = digits.min(), digits.max()
    for position in range(decimal, exact_from):
        highest[MAX_EXPONENT - position] = 9
    return lowest, highest


def analyze_numeric(
    values: pd.Series,
    subjects: np.ndarray,
    *,
    digits: bool = False,
    counts: bool | None = False,
    quantiles: bool = False,
    observed: bool = False,
) -> dict[str, Any]:
    """Partial statistics of one partition of a numeric column.

    Always: ``n_values`` (non-NULL rows), ``has_nan``, ``max_abs``, ``min_decimal`` (``None`` without
    values), per-subject extremes ``minima``/``maxima`` and ``n_subjects``. Optionally: digit ranges per
    position (``digit_min``/``digit_max``, over values below 1e18), distinct values with their numbers of
    subjects and rows (``values``/``subject_counts``/``row_counts``; with ``counts=None`` only when the
    partition has fewer than 1000 distinct values, else ``None``), 1001 ``quantiles`` (observed values) and,
    with ``observed``, the distinct values with their numbers of subjects and rows, all of them or a bounded
    sketch (``observed_*``, see :mod:`._observed`), from which BINNED publishes the common values inside each
    bin.
    """
    x, null = to_float(values)
    subjects = np.asarray(subjects)
    present = ~null
    x_present, subjects_present = x[present], subjects[present]
    a = np.abs(x_present)
    decimal = decimal_exponent(a)
    minima, maxima, n_subjects = subject_extremes(x_present, subjects_present)
    partial: dict[str, Any] = {
        "n_values": int(present.sum()),
        "has_nan": bool(null.any()),
        "max_abs": float(a.max()) if len(a) else 0.0,
        "min_decimal": decimal if len(a) else None,
        "minima": minima,
        "maxima": maxima,
        "n_subjects": int(n_subjects),
    }
    if digits:
        small = a < DIGIT_LIMIT
        partial["digit_min"], partial["digit_max"] = _digit_ranges(
            a[small], decimal if small.all() else decimal_exponent(a[small])
        )
    if counts is not False:
        distinct, rows = np.unique(x_present, return_counts=True)
        if counts or len(distinct) < AUTO_COUNTED_MAX_VALUES:
            held = subject_counts(pd.Series(x_present), subjects_present)
            by_subject = np.fromiter(held.values(), dtype=np.int64, count=len(held))
            keys = np.fromiter(held.keys(), dtype=np.float64, count=len(held))
            partial["values"] = distinct
            partial["row_counts"] = rows
            partial["subject_counts"] = by_subject[np.argsort(keys)]
        else:
            partial["values"] = None
    if observed and len(x_present):
        from ._observed import observed_partial  # it builds on this module

        partial.update(observed_partial(x_present, subjects_present, decimal))
    if quantiles:
        partial["quantiles"] = (
            np.quantile(x_present, np.linspace(0.0, 1.0, N_QUANTILES), method="inverted_cdf")
            if len(x_present)
            else np.array([])
        )
    return partial


def merged_has_nan(partials: list[dict[str, Any]]) -> bool:
    """Whether any partition saw a NULL."""
    return any(p["has_nan"] for p in partials)


def merged_min_decimal(partials: list[dict[str, Any]]) -> int:
    """The smallest ``min_decimal`` over partitions with values (``0`` when there are none)."""
    found = [p["min_decimal"] for p in partials if p["min_decimal"] is not None]
    return int(min(found)) if found else 0


def merged_range(
    partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
) -> tuple[float | None, float | None]:
    """The published ``(min, max)``: protected over per-subject extremes, or ``(None, None)`` when hidden."""
    low, high = protected_range(
        [p["minima"] for p in partials],
        [p["maxima"] for p in partials],
        sum(p["n_subjects"] for p in partials),
        value_protection=value_protection,
        rng=rng,
    )
    if low is None:
        return None, None
    return float(low), float(high)


def format_value(value: float) -> str:
    """The key of a value in published codes: ``"17"`` for integral values, else the shortest exact repr."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def reserved_codes(rare_token: str, has_nan: bool) -> dict[str, int]:
    """The first codes of a token-coded sub-column: ``rare_token`` = 0, then ``<<NULL>>`` = 1 if NULLs were seen."""
    return {rare_token: 0} | ({NULL_TOKEN: 1} if has_nan else {})


class TokenCodedEncoding(ColumnEncoding):
    """A numeric encoding of one sub-column whose published ``codes`` start with :func:`reserved_codes`.

    ``rare_token`` stands for values without a code of their own (rare, unseen or unpublished ones), and
    ``<<NULL>>``, when present, for NULLs.
    """

    sub_column: ClassVar[str]
    rare_token: ClassVar[str]

    def null_codes(self, stats: dict[str, Any]) -> dict[str, int]:
        return {self.sub_column: stats["codes"][NULL_TOKEN]} if NULL_TOKEN in stats["codes"] else {}

    def rare_codes(self, stats: dict[str, Any]) -> dict[str, int]:
        return {self.sub_column: stats["codes"][self.rare_token]}

    def _with_nulls(self, code: np.ndarray, null: np.ndarray, stats: dict[str, Any]) -> dict[str, np.ndarray]:
        """The sub-column's codes: ``code`` (int64, changed in place) with NULL rows as ``<<NULL>>`` if published."""
        if NULL_TOKEN in stats["codes"]:
            code[null] = stats["codes"][NULL_TOKEN]
        return {self.sub_column: code.astype(code_dtype(stats["cardinalities"][self.sub_column]))}
