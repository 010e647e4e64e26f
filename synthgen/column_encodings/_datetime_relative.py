"""TABULAR_DATETIME_RELATIVE: the datetimes of a sequence as its start plus inter-event times (ITTs).

For two-table targets only: every sequence (the events of one subject, in their given order) is encoded as
its start, the datetime of its first event, split into ``start_*`` calendar parts as in ``TABULAR_DATETIME``
and repeated on every row (the model learns to copy it), and per event the time since the previous event
(0 for the first): the sign ``itt_neg`` (only if events go back in time), whole weeks ``itt_week``, days
``itt_day`` and, at the column's resolution, ``itt_hour``, ``itt_minute``, ``itt_second`` and the sub-second
digits ``itt_ms_E2`` … ``itt_us_E0``. NULLs are filled forwards, then backwards within their sequence for this
arithmetic (so a NULL event has an ITT of 0) and flagged in ``nan``; a sequence without any value gets a start
drawn from the other sequences.

Decoding takes the start from each sequence's first row and adds the cumulative ITTs, the first forced to 0.

Value protection publishes the start range ``min``/``max`` (ISO strings) and the ITT range ``itt_min``/
``itt_max`` (microseconds) without their most extreme subjects; starts and ITTs are clipped into them, the
start years and the largest ITT week follow them. Without a publishable start range the column holds only its
``nan`` flag and decodes to NULL; without a publishable ITT range every event happens at its sequence's start.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import subject_extremes
from ._base import ColumnEncoding, SequenceIndex
from ._common import all_null_codes, n_rows, nan_codes, nan_flags, stats_header
from ._datetime_absolute import (
    DAY_US,
    HOUR_US,
    MINUTE_US,
    SECOND_US,
    WEEK_US,
    compose_datetime,
    decode_parts,
    encode_parts,
    first_tz,
    merge_ranges,
    merged_flags,
    null_datetimes,
    null_stats,
    parse_datetimes,
    part_names,
    part_ranges,
    protected_extremes,
    published_bounds,
    published_part_ranges,
    resolution_flags,
    resolution_stats,
    split_datetime,
    to_datetime_series,
)
from ._impute import impute_from_observed

__all__ = ["DatetimeRelativeEncoding"]

ITT_PARTS = ("week", "day", "hour", "minute", "second", "ms_E2", "ms_E1", "ms_E0", "us_E2", "us_E1", "us_E0")
_ITT_SCALES = {"week": WEEK_US, "day": DAY_US, "hour": HOUR_US, "minute": MINUTE_US, "second": SECOND_US,
               "ms_E2": 100_000, "ms_E1": 10_000, "ms_E0": 1_000, "us_E2": 100, "us_E1": 10, "us_E0": 1}
_ITT_MODULI = {"week": None, "day": 7, "hour": 24, "minute": 60, "second": 60,
               "ms_E2": 10, "ms_E1": 10, "ms_E0": 10, "us_E2": 10, "us_E1": 10, "us_E0": 10}


def _itt_part_names(flags: tuple[bool, bool, bool]) -> list[str]:
    # the ITT needs the same time parts as the datetimes it spans
    return ["week", "day", *part_names(flags)[3:]]


def _split_itt(magnitude: np.ndarray, names: list[str] | tuple[str, ...] = ITT_PARTS) -> dict[str, np.ndarray]:
    parts = {}
    for name in names:
        value = magnitude // _ITT_SCALES[name]
        parts[name] = value if _ITT_MODULI[name] is None else value % _ITT_MODULI[name]
    return parts


def _compose_itt(parts: dict[str, np.ndarray]) -> np.ndarray:
    return sum(values * _ITT_SCALES[name] for name, values in parts.items())


class _Layout:
    """Where the sequences of a column lie: sequence id per row and first row per sequence."""

    def __init__(self, sequence: SequenceIndex | None, n_rows: int):
        if sequence is None:
            raise ValueError(
                "needs the sequences of a two-table target (sequence=SequenceIndex(...)); "
                "use TABULAR_DATETIME for a flat table."
            )
        if len(sequence.group) != n_rows:
            raise ValueError(f"has {n_rows} rows but its sequence index covers {len(sequence.group)} rows.")
        self.is_first = sequence.starts
        self.sequence_of_row = np.cumsum(self.is_first) - 1
        self.first_rows = np.flatnonzero(self.is_first)
        self.last_rows = np.append(self.first_rows[1:], n_rows) - 1

    def fill(self, micros: np.ndarray, is_null: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values filled forwards, then backwards within their sequence, and which sequences have a value."""
        n_rows = len(micros)
        rows = np.arange(n_rows)
        previous = np.maximum.accumulate(np.where(is_null, -1, rows))
        following = np.minimum.accumulate(np.where(is_null, n_rows, rows)[::-1])[::-1]
        source = np.where(previous >= self.first_rows[self.sequence_of_row], previous, following)
        row_has_value = source <= self.last_rows[self.sequence_of_row]
        filled = np.where(row_has_value, micros[np.minimum(source, n_rows - 1)], 0)
        return filled, row_has_value[self.first_rows]

    def itts(self, filled: np.ndarray) -> np.ndarray:
        """Time since the previous event of the sequence; 0 for first events."""
        itts = np.zeros_like(filled)
        itts[1:] = filled[1:] - filled[:-1]
        itts[self.is_first] = 0
        return itts


class DatetimeRelativeEncoding(ColumnEncoding):
    """Datetimes of two-table sequences as start parts plus inter-event times (``TABULAR_DATETIME_RELATIVE``).

    Stats keys besides ``encoding_type``, ``value_protection`` and ``cardinalities``: ``has_nan``,
    ``has_neg``, ``has_time``, ``has_ms``, ``has_us``, ``tz``, ``min_values``/``max_values`` (ranges of the
    ``start_*`` and ``itt_*`` parts), ``min``/``max`` (protected start range, ISO strings or ``None``) and
    ``itt_min``/``itt_max`` (protected ITT range in microseconds or ``None``). Sub-columns: ``nan`` (only with
    NULLs), ``start_year`` … (as ``TABULAR_DATETIME``), ``itt_neg`` (only with negative ITTs), ``itt_week``,
    ``itt_day`` and the finer ITT parts at the column's resolution. Every method needs ``sequence``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from synthgen.column_encodings import SequenceIndex
    >>> enc = DatetimeRelativeEncoding()
    >>> values = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-09", "2023-05-02"]))
    >>> seq = SequenceIndex(group=np.array([0, 0, 1]))
    >>> rng = np.random.default_rng(0)
    >>> stats = enc.reduce([enc.analyze(values, np.array([0, 0, 1]), sequence=seq)],
    ...                    value_protection=False, rng=rng)
    >>> list(stats["cardinalities"])
    ['start_year', 'start_month', 'start_day', 'itt_week', 'itt_day']
    >>> codes = enc.encode(values, stats, rng=rng, sequence=seq)
    >>> enc.decode(codes, stats, rng=rng, sequence=seq).dt.strftime("%Y-%m-%d").tolist()
    ['2024-01-01', '2024-01-09', '2023-05-02']
    """

    encoding_type = ModelEncodingType.TABULAR_DATETIME_RELATIVE

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        micros, is_null, tz = parse_datetimes(values)
        layout = _Layout(sequence, len(micros))
        subjects = np.asarray(subjects)
        filled, sequence_has_value = layout.fill(micros, is_null)
        start_rows = layout.first_rows[sequence_has_value]
        starts = filled[start_rows]
        itt_rows = ~layout.is_first & sequence_has_value[layout.sequence_of_row]
        itts = layout.itts(filled)[itt_rows]
        return {
            "has_nan": bool(is_null.any()),
            "has_neg": bool(np.any(itts < 0)),
            "tz": tz,
            "flags": resolution_flags(micros[~is_null]),
            "start_ranges": part_ranges(split_datetime(starts)),
            "itt_ranges": part_ranges(_split_itt(np.abs(itts))),
            "start_extremes": subject_extremes(starts, subjects[start_rows]),
            "itt_extremes": subject_extremes(itts, subjects[itt_rows]),
        }

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        tz = first_tz(partials)
        low, high = protected_extremes(partials, "start_extremes", value_protection=value_protection, rng=rng)
        if low is None:
            return null_stats(self.encoding_type, value_protection, tz) | {
                "has_neg": False, "itt_min": None, "itt_max": None
            }
        flags = merged_flags(partials)
        itt_names = _itt_part_names(flags)
        start_min, start_max = published_part_ranges(partials, "start_ranges", part_names(flags), low, high)
        itt_low, itt_high = protected_extremes(partials, "itt_extremes", value_protection=value_protection, rng=rng)
        if itt_low is None:
            itt_min = itt_max = dict.fromkeys(itt_names, 0)
        else:
            itt_min, itt_max = merge_ranges(partials, "itt_ranges")
            # the published ITT range bounds the weeks: weeks of clipped extremes stay unpublished
            itt_max["week"] = min(itt_max["week"], int(max(abs(itt_low), abs(itt_high)) // WEEK_US))
        has_neg = bool(itt_low is not None and itt_low < 0)
        min_values = {f"start_{name}": value for name, value in start_min.items()}
        max_values = {f"start_{name}": value for name, value in start_max.items()}
        min_values |= {f"itt_{name}": itt_min[name] for name in itt_names}
        max_values |= {f"itt_{name}": itt_max[name] for name in itt_names}
        spans = {name: max_values[name] - min_values[name] + 1 for name in min_values}
        stats = stats_header(self.encoding_type, value_protection, any(partial["has_nan"] for partial in partials))
        stats["cardinalities"] |= {name: span for name, span in spans.items() if name.startswith("start_")}
        stats["cardinalities"] |= {"itt_neg": 2} if has_neg else {}
        stats["cardinalities"] |= {name: span for name, span in spans.items() if name.startswith("itt_")}
        stats["has_neg"] = has_neg
        return stats | resolution_stats(flags, tz, min_values, max_values, low, high) | {
            "itt_min": None if itt_low is None else int(itt_low),
            "itt_max": None if itt_high is None else int(itt_high),
        }

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        micros, is_null, _ = parse_datetimes(values)
        layout = _Layout(sequence, len(micros))
        if not stats["min_values"]:
            return all_null_codes(len(micros))
        cardinalities = stats["cardinalities"]
        codes = nan_codes(is_null, cardinalities)
        filled, sequence_has_value = layout.fill(micros, is_null)
        low, high = published_bounds(stats)
        starts = impute_from_observed(filled[layout.first_rows], ~sequence_has_value, rng, low)
        starts = np.clip(starts, low, high)
        start_names = [name.removeprefix("start_") for name in stats["min_values"] if name.startswith("start_")]
        start_parts = split_datetime(starts, start_names)
        codes |= encode_parts(
            {f"start_{name}": part[layout.sequence_of_row] for name, part in start_parts.items()},
            stats["min_values"],
            cardinalities,
        )
        itts = layout.itts(filled)
        if stats["itt_min"] is None:
            itts = np.zeros_like(itts)
        else:
            itts = np.clip(itts, stats["itt_min"], stats["itt_max"])
        if "itt_neg" in cardinalities:
            codes["itt_neg"] = (itts < 0).astype(np.int16)
        itt_names = [name.removeprefix("itt_") for name in stats["min_values"] if name.startswith("itt_")]
        itt_parts = _split_itt(np.abs(itts), itt_names)
        codes |= encode_parts(
            {f"itt_{name}": part for name, part in itt_parts.items()}, stats["min_values"], cardinalities
        )
        return {name: codes[name] for name in cardinalities}

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        n = n_rows(codes)
        layout = _Layout(sequence, n)
        if not stats["min_values"]:
            return null_datetimes(n, stats["tz"])
        names = list(stats["min_values"])
        first_codes = {name: codes[name][layout.first_rows] for name in names if name.startswith("start_")}
        start_parts = decode_parts(first_codes, stats["min_values"], list(first_codes))
        starts = compose_datetime({name.removeprefix("start_"): v for name, v in start_parts.items()})
        starts = np.clip(starts, *published_bounds(stats))
        itt_names = [name for name in names if name.startswith("itt_")]
        itt_parts = decode_parts(codes, stats["min_values"], itt_names)
        itts = _compose_itt({name.removeprefix("itt_"): v for name, v in itt_parts.items()})
        if "itt_neg" in codes:
            itts = np.where(codes["itt_neg"] == 1, -itts, itts)
        itts = np.where(layout.is_first, 0, itts)
        # a cumulative sum per sequence keeps the partial sums small (a global one could overflow int64)
        elapsed = pd.Series(itts).groupby(layout.sequence_of_row).cumsum().to_numpy()
        micros = starts[layout.sequence_of_row] + elapsed
        return to_datetime_series(micros, nan_flags(codes, n), stats["tz"])
