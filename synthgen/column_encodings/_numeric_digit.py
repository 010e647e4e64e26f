"""TABULAR_NUMERIC_DIGIT: a number as its decimal digits, one sub-column per digit position."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ._base import ColumnEncoding, SequenceIndex, code_dtype
from ._common import n_rows, nan_codes, nan_flags
from ._impute import impute_from_observed
from ._numeric import (
    DIGIT_LIMIT,
    DIGIT_POSITIONS,
    MAX_SPAN,
    analyze_numeric,
    digit_of,
    from_scaled_int,
    leading_exponent,
    merged_has_nan,
    merged_min_decimal,
    merged_range,
    to_float,
    to_scaled_int,
)
from ._numeric_clock import decode_clock, encode_clock

__all__ = ["NumericDigitEncoding", "reduce_digit"]


def _position_name(exponent: int) -> str:
    return f"E{exponent}"


def reduce_digit(
    partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
) -> dict[str, Any]:
    """Published DIGIT statistics from partials that hold digit ranges (values below 1e18)."""
    has_nan = merged_has_nan(partials)
    decimal = merged_min_decimal(partials)
    low, high = merged_range(partials, value_protection=value_protection, rng=rng)
    stats: dict[str, Any] = {
        "encoding_type": ModelEncodingType.TABULAR_NUMERIC_DIGIT.value,
        "value_protection": bool(value_protection),
        "has_nan": has_nan,
    }
    if low is None:
        return stats | {
            "cardinalities": {"nan": 2},
            "has_neg": False,
            "min": None,
            "max": None,
            "min_decimal": decimal,
            "max_decimal": decimal,
            "min_digits": {},
            "max_digits": {},
        }
    magnitude = max(abs(low), abs(high))
    max_decimal = max(leading_exponent(magnitude), decimal)
    # More positions than an int64 holds only arise when huge and tiny values mix; the finest digits go.
    exact_decimal = decimal
    decimal = max(decimal, max_decimal - MAX_SPAN + 1)
    filled = [p for p in partials if p["n_values"]]
    lowest = np.min([p["digit_min"] for p in filled], axis=0)
    highest = np.max([p["digit_max"] for p in filled], axis=0)
    if decimal > exact_decimal:
        lowest, highest = np.zeros_like(lowest), np.full_like(highest, 9)
    # The leading digit comes from the protected range alone, so it cannot reveal the clipped extremes.
    smallest = 0.0 if low <= 0.0 <= high else min(abs(low), abs(high))
    lead = np.minimum(
        to_scaled_int(np.array([smallest, magnitude]), decimal) // 10 ** (max_decimal - decimal), 9
    )
    top = DIGIT_POSITIONS[0] - max_decimal
    lead_min, lead_max = max(int(lowest[top]), int(lead[0])), min(int(highest[top]), int(lead[1]))
    if lead_min > lead_max:
        lead_min, lead_max = int(lead[0]), int(lead[1])
    min_digits, max_digits = {}, {}
    for exponent in range(max_decimal, decimal - 1, -1):
        index = DIGIT_POSITIONS[0] - exponent
        min_digits[_position_name(exponent)] = int(lowest[index])
        max_digits[_position_name(exponent)] = int(highest[index])
    min_digits[_position_name(max_decimal)], max_digits[_position_name(max_decimal)] = lead_min, lead_max
    has_neg = low < 0.0
    cardinalities = {}
    if has_nan:
        cardinalities["nan"] = 2
    if has_neg:
        cardinalities["neg"] = 2
    cardinalities.update((name, max_digits[name] - min_digits[name] + 1) for name in min_digits)
    return stats | {
        "cardinalities": cardinalities,
        "has_neg": bool(has_neg),
        "min": low,
        "max": high,
        "min_decimal": int(decimal),
        "max_decimal": int(max_decimal),
        "min_digits": min_digits,
        "max_digits": max_digits,
    }


class NumericDigitEncoding(ColumnEncoding):
    """Numbers as digits: sub-columns ``nan`` (2; if NULLs were seen), ``neg`` (2; if the published minimum
    is negative), then ``E<max_decimal>`` … ``E<min_decimal>``, each coding ``digit - min_digit``.

    Values are clipped to the published ``[min, max]`` (with value protection the 5–7 most extreme subjects
    per side fall outside it) and round-trip exactly inside it: ``|x|`` is scaled by ``10**-min_decimal`` to
    an int64 whose digits are taken by integer division, and decoding divides by the same power of ten.
    A NULL gets ``nan`` = 1 and the digits of a value drawn from the non-NULL values being encoded, so the
    digit sub-columns stay realistic. With fewer than 20 subjects no range is published: the only
    sub-column is ``nan`` and every value decodes to NULL. Values of 1e18 or more are rejected.
    Statistics marked ``clock`` (resolved by ``TABULAR_NUMERIC_AUTO`` for HHMM clock times) code an hour and a
    minute instead of digits (see ``_numeric_clock``).
    """

    encoding_type = ModelEncodingType.TABULAR_NUMERIC_DIGIT

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        partial = analyze_numeric(values, subjects, digits=True)
        if partial["max_abs"] >= DIGIT_LIMIT:
            raise ValueError(
                f"holds values as large as {partial['max_abs']:.6g} in absolute value, which "
                f"TABULAR_NUMERIC_DIGIT cannot represent (the limit is below {DIGIT_LIMIT:.0e}); "
                "use TABULAR_NUMERIC_BINNED instead."
            )
        return partial

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        return reduce_digit(partials, value_protection=value_protection, rng=rng)

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        if stats.get("clock"):
            return encode_clock(values, stats, rng=rng)
        x, null = to_float(values)
        cardinalities = stats["cardinalities"]
        if stats["min"] is None:
            return {"nan": null.astype(code_dtype(2))}
        # Without any value to draw from, NULLs take the in-range value closest to zero.
        x = impute_from_observed(
            np.clip(x, stats["min"], stats["max"]),
            null,
            rng,
            fallback=np.clip(0.0, stats["min"], stats["max"]),
        )
        decimal, max_decimal = stats["min_decimal"], stats["max_decimal"]
        scaled = to_scaled_int(np.abs(x), decimal)
        codes = nan_codes(null, cardinalities)
        if "neg" in cardinalities:
            codes["neg"] = (x < 0.0).astype(code_dtype(2))
        for exponent in range(max_decimal, decimal - 1, -1):
            name = _position_name(exponent)
            # The leading position takes the whole quotient: a rounding carry must clamp, not wrap to 0.
            digits = (
                scaled // 10 ** (exponent - decimal)
                if exponent == max_decimal
                else digit_of(scaled, exponent, decimal)
            )
            code = np.clip(digits - stats["min_digits"][name], 0, cardinalities[name] - 1)
            codes[name] = code.astype(code_dtype(cardinalities[name]))
        return codes

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        if stats.get("clock"):
            return pd.Series(decode_clock(codes, stats), dtype=np.float64)
        if stats["min"] is None:
            return pd.Series(np.full(n_rows(codes), np.nan))
        decimal, max_decimal = stats["min_decimal"], stats["max_decimal"]
        scaled = np.zeros(len(codes[_position_name(decimal)]), dtype=np.int64)
        for exponent in range(max_decimal, decimal - 1, -1):
            name = _position_name(exponent)
            digits = np.asarray(codes[name], dtype=np.int64) + stats["min_digits"][name]
            scaled += digits * 10 ** (exponent - decimal)
        x = from_scaled_int(scaled, decimal)
        if "neg" in stats["cardinalities"]:
            # Adding +0.0 keeps a negated zero from printing as -0.0.
            x = np.where(np.asarray(codes["neg"]) == 1, -x, x) + 0.0
        x = np.clip(x, stats["min"], stats["max"])
        x[nan_flags(codes, len(x))] = np.nan
        return pd.Series(x, dtype=np.float64)
