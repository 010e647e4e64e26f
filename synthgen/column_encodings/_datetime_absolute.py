"""TABULAR_DATETIME: a datetime as calendar parts, each part one sub-column.

Values are parsed to integer microseconds since the epoch (UTC for time-zone-aware input; the zone is kept in
the stats and restored at decoding). The resolution of the column is detected (date only, seconds,
milliseconds or microseconds) and decides the parts: ``year``, ``month``, ``day``, then ``hour``, ``minute``,
``second`` with time, then the digits ``ms_E2`` … ``ms_E0`` and ``us_E2`` … ``us_E0`` of the sub-second part.
Each part is coded as ``value − observed minimum`` (cardinality ``max − min + 1``), so parts that never vary
(e.g. an hourly series has no minutes) cost nothing and the model never emits an unseen part value.

Value protection publishes ``min``/``max`` (ISO strings) from the per-subject extremes without the most
extreme subjects; values are clipped into that range at encoding and decoding, and its years replace the
observed year range. With too few subjects no range, and so no value, is published: the column then holds
only its ``nan`` flag and decodes to NULL. Nanosecond parts of the input are truncated to microseconds.

The parsing and part arithmetic here are shared with ``TABULAR_DATETIME_RELATIVE``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import protected_range, subject_extremes
from ._base import ColumnEncoding, SequenceIndex, code_dtype
from ._common import all_null_codes, n_rows, nan_codes, nan_flags, stats_header
from ._impute import impute_from_observed

__all__ = ["DatetimeEncoding"]

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US

DATE_PARTS = ("year", "month", "day")
TIME_PARTS = ("hour", "minute", "second")
MS_PARTS = ("ms_E2", "ms_E1", "ms_E0")
US_PARTS = ("us_E2", "us_E1", "us_E0")
ALL_PARTS = DATE_PARTS + TIME_PARTS + MS_PARTS + US_PARTS

_TIME_PART_SCALES = {"hour": HOUR_US, "minute": MINUTE_US, "second": SECOND_US, "ms_E2": 100_000,
                     "ms_E1": 10_000, "ms_E0": 1_000, "us_E2": 100, "us_E1": 10, "us_E0": 1}
_NOT_A_TIME = np.iinfo(np.int64).min  # the int64 view of NaT


# ---------------------------------------------------------------------------------------------------------
# parsing and formatting


def parse_datetimes(values: pd.Series) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Microseconds since the epoch (UTC, int64), the NULL mask and the time zone (``None`` if naive).

    Accepts datetime64 of any unit, time-zone-aware datetimes, pyarrow timestamps and dates, Python
    datetime objects and strings that ``pandas.to_datetime(format="mixed")`` understands.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values)
    elif pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        raise ValueError(
            f"holds {values.dtype} values; a datetime column needs datetime values or strings such as "
            "'2024-01-31 12:30:00' (convert epoch numbers with pandas.to_datetime(..., unit=...) first)."
        )
    else:
        parsed = _parse_strings(values)
    tz = parsed.dt.tz
    if tz is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    is_null = parsed.isna().to_numpy()
    micros = parsed.astype("datetime64[us]").to_numpy().view(np.int64).copy()
    return micros, is_null, None if tz is None else str(tz)


def _parse_strings(values: pd.Series) -> pd.Series:
    try:
        parsed = pd.to_datetime(values, format="mixed", errors="coerce")
    except ValueError:  # differing UTC offsets: bring them onto one axis
        parsed = pd.to_datetime(values, format="mixed", errors="coerce", utc=True)
    unparsed = (parsed.isna() & values.notna()).to_numpy()
    if unparsed.any():
        n_bad = int(unparsed.sum())
        example = values[unparsed].iloc[0]
        raise ValueError(
            f"cannot parse {n_bad} value{'s' if n_bad > 1 else ''} as datetimes, e.g. {example!r}; "
            "use datetime values or strings that pandas.to_datetime understands, such as '2024-01-31 12:30:00'."
        )
    return parsed


def to_datetime_series(micros: np.ndarray, is_null: np.ndarray, tz: str | None) -> pd.Series:
    """A ``datetime64[us]`` Series (in ``tz`` when given) with NaT where ``is_null``."""
    micros = np.where(is_null, _NOT_A_TIME, micros)
    series = pd.Series(micros.view("M8[us]"))
    if tz is not None:
        series = series.dt.tz_localize("UTC").dt.tz_convert(tz)
    return series


def null_datetimes(n: int, tz: str | None) -> pd.Series:
    """``n`` NaT, as decoded from a column without publishable values."""
    return to_datetime_series(np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), tz)


def format_datetime(micros: int, tz: str | None, flags: tuple[bool, bool, bool]) -> str:
    """An ISO string of ``micros`` to the column's resolution, in its time zone."""
    has_time, has_ms, has_us = flags
    stamp = pd.Timestamp(int(micros), unit="us")
    if tz is not None:
        stamp = stamp.tz_localize("UTC").tz_convert(tz)
    elif not has_time:
        return stamp.date().isoformat()
    timespec = "microseconds" if has_us else "milliseconds" if has_ms else "seconds"
    return stamp.isoformat(timespec=timespec)


def parse_datetime(text: str) -> int:
    """Microseconds since the epoch (UTC) of an ISO string written by :func:`format_datetime`."""
    stamp = pd.Timestamp(text)
    if stamp.tz is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(np.datetime64(stamp.to_datetime64(), "us").astype(np.int64))


def published_bounds(stats: dict[str, Any]) -> tuple[int, int]:
    """The published range ``(min, max)`` of the stats in microseconds since the epoch (UTC)."""
    return parse_datetime(stats["min"]), parse_datetime(stats["max"])


# ---------------------------------------------------------------------------------------------------------
# parts


def resolution_flags(micros: np.ndarray) -> tuple[bool, bool, bool]:
    """``(has_time, has_ms, has_us)``: the finest non-zero unit of non-NULL values, each implying the coarser."""
    has_us = bool(np.any(micros % 1_000))
    has_ms = has_us or bool(np.any(micros % SECOND_US))
    has_time = has_ms or bool(np.any(micros % DAY_US))
    return has_time, has_ms, has_us


def part_names(flags: tuple[bool, bool, bool]) -> list[str]:
    """The datetime parts needed at the resolution ``(has_time, has_ms, has_us)``."""
    has_time, has_ms, has_us = flags
    return [
        *DATE_PARTS,
        *(TIME_PARTS if has_time else ()),
        *(MS_PARTS if has_ms else ()),
        *(US_PARTS if has_us else ()),
    ]


def _digits(number: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    return {f"{prefix}_E2": number // 100, f"{prefix}_E1": number // 10 % 10, f"{prefix}_E0": number % 10}


def split_datetime(micros: np.ndarray, names: list[str] | tuple[str, ...] = ALL_PARTS) -> dict[str, np.ndarray]:
    """The calendar parts ``names`` (int64 arrays) of microseconds since the epoch."""
    stamps = micros.view("M8[us]")
    months = stamps.astype("M8[M]")
    days = stamps.astype("M8[D]")
    month_index = months.view(np.int64)
    time_of_day = micros - days.astype("M8[us]").view(np.int64)
    sub_second = time_of_day % SECOND_US
    parts = {
        "year": month_index // 12 + 1970,
        "month": month_index % 12 + 1,
        "day": (days - months.astype("M8[D]")).view(np.int64) + 1,
        "hour": time_of_day // HOUR_US,
        "minute": time_of_day // MINUTE_US % 60,
        "second": time_of_day // SECOND_US % 60,
        **_digits(sub_second // 1_000, "ms"),
        **_digits(sub_second % 1_000, "us"),
    }
    return {name: parts[name] for name in names}


def compose_datetime(parts: dict[str, np.ndarray]) -> np.ndarray:
    """Microseconds since the epoch from calendar parts; missing time parts are 0.

    Days beyond the end of their month (Feb 30, Apr 31) become the month's last day.
    """
    month_start = ((parts["year"] - 1970) * 12 + np.clip(parts["month"], 1, 12) - 1).astype("M8[M]")
    first_day = month_start.astype("M8[D]")
    days_in_month = ((month_start + np.timedelta64(1, "M")).astype("M8[D]") - first_day).view(np.int64)
    day = np.clip(parts["day"], 1, days_in_month)
    micros = (first_day + (day - 1)).astype("M8[us]").view(np.int64).copy()
    for name, scale in _TIME_PART_SCALES.items():
        if name in parts:
            micros += parts[name] * scale
    return micros


def part_ranges(parts: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, int]]:
    """Observed minimum and maximum of every part (empty when there are no values)."""
    if not parts or len(next(iter(parts.values()))) == 0:
        return {}, {}
    return (
        {name: int(values.min()) for name, values in parts.items()},
        {name: int(values.max()) for name, values in parts.items()},
    )


def merge_ranges(partials: list[dict[str, Any]], key: str) -> tuple[dict[str, int], dict[str, int]]:
    """Merge the per-part ranges ``partials[i][key] = (minima, maxima)`` of the partitions that have values."""
    ranges = [partial[key] for partial in partials if partial[key][0]]
    names = ranges[0][0].keys()
    return (
        {name: min(low[name] for low, _ in ranges) for name in names},
        {name: max(high[name] for _, high in ranges) for name in names},
    )


def encode_parts(
    parts: dict[str, np.ndarray], min_values: dict[str, int], cardinalities: dict[str, int]
) -> dict[str, np.ndarray]:
    """Codes ``part − minimum``, clamped into each part's cardinality."""
    codes = {}
    for name, values in parts.items():
        cardinality = cardinalities[name]
        codes[name] = np.clip(values - min_values[name], 0, cardinality - 1).astype(code_dtype(cardinality))
    return codes


def decode_parts(codes: dict[str, np.ndarray], min_values: dict[str, int], names: list[str]) -> dict[str, np.ndarray]:
    """Part values ``code + minimum`` (int64) of the parts ``names``."""
    return {name: codes[name].astype(np.int64) + min_values[name] for name in names}


def published_part_ranges(
    partials: list[dict[str, Any]], key: str, names: list[str], low: int, high: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Merged ranges (as :func:`merge_ranges`) of the parts ``names``, their years from the published ``[low, high]``.

    Taking the years from the protected range keeps the years of clipped extreme subjects unpublished.
    """
    all_min, all_max = merge_ranges(partials, key)
    years = split_datetime(np.array([low, high], dtype=np.int64), ["year"])["year"]
    min_values = {name: all_min[name] for name in names} | {"year": int(years[0])}
    max_values = {name: all_max[name] for name in names} | {"year": int(years[1])}
    return min_values, max_values


def resolution_stats(
    flags: tuple[bool, bool, bool],
    tz: str | None,
    min_values: dict[str, int],
    max_values: dict[str, int],
    low: int | None,
    high: int | None,
) -> dict[str, Any]:
    """The stats keys ``has_time`` … ``max``: resolution, time zone, part ranges and the published ISO range."""
    return {
        "has_time": flags[0],
        "has_ms": flags[1],
        "has_us": flags[2],
        "tz": tz,
        "min_values": min_values,
        "max_values": max_values,
        "min": None if low is None else format_datetime(low, tz, flags),
        "max": None if high is None else format_datetime(high, tz, flags),
    }


def null_stats(encoding_type: ModelEncodingType, value_protection: bool, tz: str | None) -> dict[str, Any]:
    """Stats of a column without publishable values: a ``nan`` flag only, decoding to NULL."""
    return stats_header(encoding_type, value_protection, True) | resolution_stats(
        (False, False, False), tz, {}, {}, None, None
    )


def protected_extremes(
    partials: list[dict[str, Any]], key: str, *, value_protection: bool, rng: np.random.Generator
) -> tuple[int | None, int | None]:
    """The published range over the per-subject extremes ``partials[i][key] = (minima, maxima, n_subjects)``."""
    return protected_range(
        [partial[key][0] for partial in partials],
        [partial[key][1] for partial in partials],
        sum(partial[key][2] for partial in partials),
        value_protection=value_protection,
        rng=rng,
    )


def first_tz(partials: list[dict[str, Any]]) -> str | None:
    """The time zone of the first partition that has one."""
    return next((partial["tz"] for partial in partials if partial["tz"] is not None), None)


def merged_flags(partials: list[dict[str, Any]]) -> tuple[bool, bool, bool]:
    """The finest resolution over all partitions."""
    return tuple(any(partial["flags"][i] for partial in partials) for i in range(3))


# ---------------------------------------------------------------------------------------------------------
# the encoding


class DatetimeEncoding(ColumnEncoding):
    """Datetimes as calendar-part sub-columns (``TABULAR_DATETIME``).

    Stats keys besides ``encoding_type``, ``value_protection`` and ``cardinalities``: ``has_nan``,
    ``has_time``, ``has_ms``, ``has_us`` (the detected resolution), ``tz`` (time zone or ``None``),
    ``min_values``/``max_values`` (range of every used part), ``min``/``max`` (protected ISO range or
    ``None``). Sub-columns: ``nan`` (only with NULLs), then the parts in the order of :data:`ALL_PARTS`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> enc = DatetimeEncoding()
    >>> values = pd.Series(pd.to_datetime(["2024-01-31 10:00", "2024-02-29 12:30", None]))
    >>> rng = np.random.default_rng(0)
    >>> stats = enc.reduce([enc.analyze(values, np.arange(3))], value_protection=False, rng=rng)
    >>> list(stats["cardinalities"])
    ['nan', 'year', 'month', 'day', 'hour', 'minute', 'second']
    >>> enc.decode(enc.encode(values, stats, rng=rng), stats, rng=rng).equals(values.astype("datetime64[us]"))
    True
    """

    encoding_type = ModelEncodingType.TABULAR_DATETIME

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        micros, is_null, tz = parse_datetimes(values)
        observed = micros[~is_null]
        return {
            "has_nan": bool(is_null.any()),
            "tz": tz,
            "flags": resolution_flags(observed),
            "ranges": part_ranges(split_datetime(observed)),
            "extremes": subject_extremes(observed, np.asarray(subjects)[~is_null]),
        }

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        tz = first_tz(partials)
        low, high = protected_extremes(partials, "extremes", value_protection=value_protection, rng=rng)
        if low is None:
            return null_stats(self.encoding_type, value_protection, tz)
        flags = merged_flags(partials)
        names = part_names(flags)
        min_values, max_values = published_part_ranges(partials, "ranges", names, low, high)
        stats = stats_header(self.encoding_type, value_protection, any(partial["has_nan"] for partial in partials))
        stats["cardinalities"] |= {name: max_values[name] - min_values[name] + 1 for name in names}
        return stats | resolution_stats(flags, tz, min_values, max_values, low, high)

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        micros, is_null, _ = parse_datetimes(values)
        if not stats["min_values"]:
            return all_null_codes(len(micros))
        cardinalities = stats["cardinalities"]
        low, high = published_bounds(stats)
        micros = np.clip(impute_from_observed(micros, is_null, rng, low), low, high)
        parts = split_datetime(micros, list(stats["min_values"]))
        return nan_codes(is_null, cardinalities) | encode_parts(parts, stats["min_values"], cardinalities)

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        n = n_rows(codes)
        if not stats["min_values"]:
            return null_datetimes(n, stats["tz"])
        parts = decode_parts(codes, stats["min_values"], list(stats["min_values"]))
        micros = np.clip(compose_datetime(parts), *published_bounds(stats))
        return to_datetime_series(micros, nan_flags(codes, n), stats["tz"])
