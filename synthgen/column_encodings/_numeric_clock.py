"""Clock times written as HHMM integers (``dep_time`` 1517 = 15:17), coded as an hour and a minute.

Such columns hold 1000+ distinct values over four digit positions, so ``TABULAR_NUMERIC_AUTO`` would bin them:
a bin of quantiles straddles hours (so a column ``hour`` that equals the time's hour disagreed with it in a
quarter of the synthetic flights) and its values are drawn without regard to the minutes that go with them. As
an hour (0 … 24) and a minute (0 … 59) sub-column, every time the model emits is a real clock time, and other
columns can take their hour or minute from the time's parts at minute precision.

The resolved statistics are ``TABULAR_NUMERIC_DIGIT`` statistics with ``"clock": True`` (so the saved encoding
type names a type users can declare), sub-columns ``nan`` (if NULLs were seen), ``hour`` and ``minute``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..domain import ModelEncodingType
from ._base import code_dtype
from ._common import nan_codes, nan_flags
from ._impute import impute_from_observed
from ._numeric import MAX_EXPONENT, merged_has_nan, merged_range, to_float

__all__ = ["is_clock_column", "reduce_clock", "encode_clock", "decode_clock"]

# The largest HHMM value (24:00, which some sources write for midnight at the end of a day).
_LARGEST = 2400
_TENS = MAX_EXPONENT - 1  # index of the tens digit (E1) in the digit ranges of analyze_numeric
_UNITS = MAX_EXPONENT  # index of E0
_MINUTES = 60


def is_clock_column(partials: list[dict[str, Any]]) -> bool:
    """Whether every value of the column reads as an HHMM clock time, and minutes vary over the whole hour.

    From the partials of ``analyze_numeric(..., digits=True)``: integers (``min_decimal`` >= 0) in
    ``[0, 2400]`` whose tens digit is at most 5 (minute < 60) and reaches 5, with the units digit reaching 9, so
    numbers that merely never use the tens digits 6–9 (multiples of 100, small counts) are not taken for times.
    """
    filled = [p for p in partials if p["n_values"]]
    if not filled or any(p["min_decimal"] is None or p["min_decimal"] < 0 for p in filled):
        return False
    if max(p["max_abs"] for p in filled) > _LARGEST:
        return False
    if any(len(m) and np.min(m) < 0 for p in filled for m in [np.asarray(p["minima"])]):
        return False
    tens = max(int(p["digit_max"][_TENS]) for p in filled)
    units = max(int(p["digit_max"][_UNITS]) for p in filled)
    return tens == 5 and units == 9


def reduce_clock(
    partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
) -> dict[str, Any]:
    """Published clock statistics: the protected range and the hours it spans."""
    has_nan = merged_has_nan(partials)
    low, high = merged_range(partials, value_protection=value_protection, rng=rng)
    stats: dict[str, Any] = {
        "encoding_type": ModelEncodingType.TABULAR_NUMERIC_DIGIT.value,
        "value_protection": bool(value_protection),
        "clock": True,
        "has_nan": has_nan,
        "min": low,
        "max": high,
    }
    cardinalities = {"nan": 2} if has_nan else {}
    if low is None:
        return stats | {"cardinalities": {"nan": 2}, "min_hour": None}
    min_hour, max_hour = int(low) // 100, int(high) // 100
    cardinalities |= {"hour": max_hour - min_hour + 1, "minute": _MINUTES}
    return stats | {"cardinalities": cardinalities, "min_hour": min_hour}


def _clip(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    # The published bounds are observed times (protected subject extremes), so clipping keeps minutes < 60.
    return np.clip(x, stats["min"], stats["max"])


def encode_clock(values, stats: dict[str, Any], *, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Codes ``nan`` / ``hour`` / ``minute`` of HHMM ``values`` (NULLs take a drawn observed time)."""
    x, null = to_float(values)
    cardinalities = stats["cardinalities"]
    if stats["min"] is None:
        return {"nan": null.astype(code_dtype(2))}
    x = impute_from_observed(_clip(x, stats), null, rng, fallback=float(stats["min"]))
    n = np.rint(x).astype(np.int64)
    minute = np.minimum(n % 100, _MINUTES - 1)
    hour = np.clip(n // 100 - stats["min_hour"], 0, cardinalities["hour"] - 1)
    codes = nan_codes(null, cardinalities)
    codes["hour"] = hour.astype(code_dtype(cardinalities["hour"]))
    codes["minute"] = minute.astype(code_dtype(_MINUTES))
    return codes


def decode_clock(codes: dict[str, np.ndarray], stats: dict[str, Any]) -> np.ndarray:
    """HHMM values (float, NaN for NULL) from the codes of :func:`encode_clock`."""
    n = len(next(iter(codes.values())))
    if stats["min"] is None:
        return np.full(n, np.nan)
    hour = np.asarray(codes["hour"], dtype=np.int64) + stats["min_hour"]
    x = _clip((hour * 100 + np.asarray(codes["minute"], dtype=np.int64)).astype(np.float64), stats)
    x[nan_flags(codes, n)] = np.nan
    return x
