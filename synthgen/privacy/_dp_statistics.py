"""Differentially private column statistics: the DP counterpart of the encodings' analyze / reduce.

Under differential privacy, analyze keeps one row per subject (the unit of privacy), collects mergeable partial
statistics per partition with :func:`dp_partial` (value counts, counts on fixed grids, class counts) and turns
them into published statistics with :func:`dp_reduce`, spending the column's budget on the mechanisms of
:mod:`._dp_mechanisms`. The published statistics have exactly the format of the encoding's own ``reduce``: they
are built by calling it on *stand-in partials* made only of DP outputs and public facts (the schema, the number
of subjects), which is post-processing.

What each encoding type releases and how (the shares are of the column's epsilon; ``delta`` only pays for
category thresholds):

- categorical (``TABULAR_CATEGORICAL``, ``LANGUAGE_CATEGORICAL``) and ``TABULAR_NUMERIC_DISCRETE``: the values
  whose noisy subject count clears the threshold (all of epsilon and delta);
- ``TABULAR_NUMERIC_BINNED``: lower and upper bound (0.3 each), the finest decimal (0.1) and a noisy histogram
  whose quantiles become the bin edges (0.3);
- ``TABULAR_NUMERIC_DIGIT``: bounds (0.4 each) and the finest decimal (0.2);
- ``TABULAR_NUMERIC_AUTO``: the DISCRETE category threshold (0.4, all of delta; DISCRETE when the released
  values hold > 99 % of the noisy non-NULL count and are at most 100), else DIGIT or BINNED on the other 0.6
  (DIGIT when the DP bounds and decimal span at most 3 digit positions; it leaves the histogram's share unspent);
- datetimes (``TABULAR_DATETIME``, ``LANGUAGE_DATETIME``): bounds (0.35 each) and the resolution (0.3);
- ``TABULAR_DATETIME_RELATIVE`` (two-table targets): a subject holds a whole sequence, so it contributes one
  value to each of four histograms: its start (the datetime of its first event), its smallest and its largest
  inter-event time (ITT; the first event's 0 included), and its finest resolution. Start bounds (0.2 each),
  the ITT lower bound from the smallest ITTs and the upper bound from the largest (0.2 each), the resolution
  (0.2); the published ITT range always includes 0;
- ``LANGUAGE_NUMERIC``: bounds (0.4 each) and the decimals (0.2);
- ``TABULAR_CHARACTER`` and ``TABULAR_LAT_LONG``: the (position, character) or (level, quadtile) keys whose
  noisy subject count clears the threshold for subjects holding up to 50 (or one per level) keys;
- ``LANGUAGE_TEXT``: the maximum length (an upper bound, 0.5), and the mean length from a noisy clipped sum
  (0.25) over a noisy count (0.25), searched up to a declared ``max_text_length`` (:mod:`._dp_text_lengths`).

Every column may hold NULLs under DP (``has_nan`` is always true), so whether a column has NULLs is not released.
A declared domain (public knowledge: a category list or a ``(low, high)`` range) replaces the mechanism it makes
unnecessary at no cost. When a column's budget is too small to find bounds inside the data for the (public) number
of subjects, no range is published (the column is generated as NULL) and nothing is spent on it.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np
import pandas as pd

from .._dtypes import as_category_strings
from ..domain import ModelEncodingType
from ._dp_mechanisms import (
    ValueGrid,
    bound_rank,
    bounds_feasible,
    dp_bounds,
    dp_lower_bound,
    dp_upper_bound,
    finest_class,
    histogram_quantiles,
    log_grid,
    noisy_histogram,
    threshold_categories,
)
from ._dp_text_lengths import dp_text_lengths, text_length_counts
from ._ledger import LedgerEntry

__all__ = ["ColumnBudget", "DP_ENCODING_TYPES", "check_domain", "dp_partial", "dp_reduce", "needs_delta",
           "not_supported_message", "spends_nothing"]

_T = ModelEncodingType
_CATEGORICAL = {_T.TABULAR_CATEGORICAL.value, _T.LANGUAGE_CATEGORICAL.value}
_NUMERIC = {_T.TABULAR_NUMERIC_AUTO.value, _T.TABULAR_NUMERIC_DISCRETE.value, _T.TABULAR_NUMERIC_BINNED.value,
            _T.TABULAR_NUMERIC_DIGIT.value, _T.LANGUAGE_NUMERIC.value}
_DATETIME = {_T.TABULAR_DATETIME.value, _T.LANGUAGE_DATETIME.value}
_RELATIVE = {_T.TABULAR_DATETIME_RELATIVE.value}
_TEXT = {_T.LANGUAGE_TEXT.value}
# encodings that count subjects per key, several keys per subject (a character per position, a quadtile per level)
_KEYED = {_T.TABULAR_CHARACTER.value, _T.TABULAR_LAT_LONG.value}
DP_ENCODING_TYPES = frozenset(_CATEGORICAL | _NUMERIC | _DATETIME | _RELATIVE | _TEXT | _KEYED)
"""The encoding types whose statistics have a DP mechanism."""

_THRESHOLDED = {_T.TABULAR_CATEGORICAL.value, _T.LANGUAGE_CATEGORICAL.value, _T.TABULAR_NUMERIC_DISCRETE.value,
                _T.TABULAR_NUMERIC_AUTO.value} | _KEYED

# numbers: |x| < 2**64 in cells about 0.3 % wide; datetimes: 1800-01-01 to 2200-01-01 in 2**18 cells (~13 h)
_NUMBER_GRID = log_grid()
_DATETIME_DOMAIN = (np.datetime64("1800-01-01", "us").astype(np.int64),
                    np.datetime64("2200-01-01", "us").astype(np.int64))
_DATETIME_GRID = ValueGrid(np.linspace(*map(float, _DATETIME_DOMAIN), 2**18 + 1))
# decimal exponents of single values, finest first (a zero lies on every unit: the coarsest class)
_DECIMALS = tuple(range(-8, 19))
_NULL_KEY = object()
_AUTO_DISCRETE_SHARE = 0.4
_BINNED_SHARES = {"low": 0.3, "high": 0.3, "decimal": 0.1, "histogram": 0.3}
_DIGIT_SHARES = {"low": 0.4, "high": 0.4, "decimal": 0.2}
_DATETIME_SHARES = {"low": 0.35, "high": 0.35, "resolution": 0.3}
_RELATIVE_SHARES = {"low": 0.2, "high": 0.2, "itt_low": 0.2, "itt_high": 0.2, "resolution": 0.2}


def needs_delta(encoding_type: str, domain: Any = None) -> bool:
    """Whether the column's mechanisms include a category threshold (the only ones that spend delta)."""
    return encoding_type in _THRESHOLDED and domain is None


def not_supported_message(encoding_type: str) -> str:
    """Why a column of ``encoding_type`` cannot be analyzed under differential privacy."""
    return (f"its encoding type {encoding_type} has no differentially private statistics yet; under "
            "differential_privacy declare it as TABULAR_CATEGORICAL, a TABULAR_NUMERIC_* or TABULAR_DATETIME type "
            "(or drop it).")


@attrs.define
class ColumnBudget:
    """The share of the statistics budget of one column (or of the sequence lengths), and what it spent."""

    column: str | None
    epsilon: float
    delta: float
    entries: list[LedgerEntry] = attrs.field(factory=list)
    notes: list[str] = attrs.field(factory=list)

    def spend(self, mechanism: str, epsilon: float, delta: float = 0.0) -> float:
        """Record one mechanism in the ledger; returns ``epsilon`` for the call that runs it."""
        self.entries.append(LedgerEntry(stage="analyze", column=self.column, mechanism=mechanism,
                                        epsilon=epsilon, delta=delta))
        return epsilon


# ---------------------------------------------------------------------------------------------------------
# partials (per partition, one row per subject)

def _decimal_classes(values: np.ndarray) -> np.ndarray:
    """Subjects per decimal exponent of their own non-zero value: the coarsest unit ``10**e`` it lies on (a value
    needing more than 8 decimals counts as the finest). Zeros lie on every unit and tell nothing: not counted."""
    from ..column_encodings._numeric import round_to_decimal

    a = np.abs(values[(np.abs(values) < 1e18) & (values != 0)])
    index = np.zeros(len(a), dtype=np.int64)
    assigned = np.zeros(len(a), dtype=bool)
    for position in range(len(_DECIMALS) - 1, -1, -1):  # coarse to fine: huge values lose precision at fine units
        match = ~assigned & (round_to_decimal(a, _DECIMALS[position]) == a)
        index[match] = position
        assigned |= match
    return np.bincount(index, minlength=len(_DECIMALS))


def _numeric_values(values: pd.Series, encoding_type: str) -> tuple[np.ndarray, np.ndarray]:
    if encoding_type == _T.LANGUAGE_NUMERIC.value:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        null = np.isnan(numbers)
        if not np.isfinite(numbers[~null]).all():
            raise ValueError("it holds infinite values, which a LANGUAGE_NUMERIC column cannot generate.")
        return numbers, null
    from ..column_encodings._numeric import to_float

    return to_float(values)


def _datetime_values(values: pd.Series, encoding_type: str) -> tuple[np.ndarray, np.ndarray, str | None]:
    if encoding_type == _T.LANGUAGE_DATETIME.value:
        from ..column_encodings._language import _as_datetimes

        stamps = _as_datetimes(values)
        null = stamps.isna().to_numpy()
        micros = stamps.to_numpy().astype("datetime64[us]").view(np.int64)
        return micros, null, None
    from ..column_encodings._datetime_absolute import parse_datetimes

    return parse_datetimes(values)


def _resolution_class(micros: np.ndarray) -> np.ndarray:
    """The resolution of every value, finest first: 0 microseconds, 1 milliseconds, 2 seconds, 3 days."""
    return np.where(micros % 1_000 != 0, 0, np.where(micros % 1_000_000 != 0, 1,
                                                     np.where(micros % 86_400_000_000 != 0, 2, 3)))


def _resolution_classes(micros: np.ndarray) -> np.ndarray:
    """Subjects per resolution of their own value, finest first: microseconds, milliseconds, seconds, days."""
    return np.bincount(_resolution_class(micros), minlength=4)


def _relative_partial(values: pd.Series, sequence) -> dict[str, Any]:
    """One value per subject (sequence) in each histogram: its start, its smallest and largest ITT (the first
    event's 0 included, so every subject's smallest is <= 0 <= its largest) and its finest resolution."""
    from ..column_encodings._datetime_absolute import parse_datetimes
    from ..column_encodings._datetime_relative import _Layout

    micros, null, tz = parse_datetimes(values)
    layout = _Layout(sequence, len(micros))
    filled, has_value = layout.fill(micros, null)
    itts = layout.itts(filled).astype(np.float64)
    if len(micros):
        smallest = np.minimum.reduceat(itts, layout.first_rows)[has_value]
        largest = np.maximum.reduceat(itts, layout.first_rows)[has_value]
        # a NULL row lies on every unit: it counts as the coarsest class (days) and never makes a subject finer
        classes = np.full(len(micros), 3, dtype=np.int64)
        classes[~null] = _resolution_class(micros[~null])
        finest = np.minimum.reduceat(classes, layout.first_rows)[has_value]
    else:
        smallest = largest = np.array([], dtype=np.float64)
        finest = np.array([], dtype=np.int64)
    starts = filled[layout.first_rows[has_value]].astype(np.float64)
    return {"n_null": int((~has_value).sum()), "tz": tz, "cells": _DATETIME_GRID.counts(starts),
            "itt_low_cells": _NUMBER_GRID.counts(smallest), "itt_high_cells": _NUMBER_GRID.counts(largest),
            "resolutions": np.bincount(finest, minlength=4)}


def dp_partial(encoding_type: str, values: pd.Series, *, sequence=None) -> dict[str, Any]:
    """Mergeable partial statistics of one partition, ``values`` holding one row per subject (all the rows of
    the subjects for ``TABULAR_DATETIME_RELATIVE``, with their ``sequence``).

    Raises
    ------
    ValueError
        If the encoding type has no DP statistics, or the values do not fit it.
    """
    if encoding_type in _CATEGORICAL:
        strings = as_category_strings(values)
        present = strings.notna().to_numpy()
        return {"counts": strings[present].value_counts(sort=False).to_dict(), "n_null": int((~present).sum())}
    if encoding_type in _NUMERIC:
        x, null = _numeric_values(values, encoding_type)
        present = x[~null]
        partial = {"n_null": int(null.sum()), "cells": _NUMBER_GRID.counts(present),
                   "decimals": _decimal_classes(present)}
        if encoding_type in (_T.TABULAR_NUMERIC_AUTO.value, _T.TABULAR_NUMERIC_DISCRETE.value):
            distinct, counts = np.unique(present, return_counts=True)
            partial["counts"] = dict(zip(distinct.tolist(), counts.tolist(), strict=True))
        return partial
    if encoding_type in _DATETIME:
        micros, null, tz = _datetime_values(values, encoding_type)
        present = micros[~null]
        return {"n_null": int(null.sum()), "tz": tz, "cells": _DATETIME_GRID.counts(present.astype(np.float64)),
                "resolutions": _resolution_classes(present)}
    if encoding_type in _RELATIVE:
        return _relative_partial(values, sequence)
    if encoding_type in _KEYED:
        from ..column_encodings import get_encoding

        return get_encoding(encoding_type).analyze(values, np.arange(len(values)))
    if encoding_type in _TEXT:
        from ..column_encodings._language import _as_texts

        lengths = np.array([len(t) for t in _as_texts(values) if t is not None], dtype=np.int64)
        return {"n_values": len(lengths), "lengths": text_length_counts(lengths)}
    raise ValueError(not_supported_message(encoding_type))


def _merged_counts(partials: list[dict[str, Any]]) -> dict:
    merged: dict = {}
    for partial in partials:
        for key, n in partial["counts"].items():
            merged[key] = merged.get(key, 0) + n
    return merged


def _summed(partials: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.sum([partial[key] for partial in partials], axis=0)


# ---------------------------------------------------------------------------------------------------------
# declared domains

def check_domain(encoding_type: str, domain: Any) -> str:
    """What a declared domain gives the column: ``"categories"`` (a list) or ``"range"`` (a pair).

    Raises
    ------
    ValueError
        If the domain's kind does not fit the encoding type, or its values do not parse.
    """
    kind = "categories" if isinstance(domain, list) else "range"
    if kind == "categories" and len(domain) == 2 and encoding_type == _T.TABULAR_NUMERIC_AUTO.value:
        # A numeric AUTO column takes both kinds, and ``[low, high]`` (a range written as a list, or read back
        # from JSON) would silently become two categories: the one reading that is never guessed.
        low, high = domain
        raise ValueError(
            f"its declared domain {domain!r} is a list, which declares categories, not a range; for the range "
            f"declare the pair ({low!r}, {high!r}) (in JSON {{\"low\": {low!r}, \"high\": {high!r}}}), for two "
            "categories give the column the encoding type TABULAR_NUMERIC_DISCRETE.")
    allowed = {"categories": _CATEGORICAL | {_T.TABULAR_NUMERIC_DISCRETE.value, _T.TABULAR_NUMERIC_AUTO.value},
               "range": (_NUMERIC - {_T.TABULAR_NUMERIC_DISCRETE.value}) | _DATETIME | _RELATIVE}[kind]
    if encoding_type not in allowed:
        wanted = ("a (low, high) pair (a tuple; a list declares categories; in JSON {\"low\": ..., \"high\": ...})"
                  if kind == "categories" else "a list of categories")
        raise ValueError(f"its declared domain {domain!r} does not fit its encoding type {encoding_type}; "
                         f"declare {wanted} or no domain.")
    if kind == "categories" and encoding_type in _NUMERIC:
        _as_numbers(domain)
    if kind == "range":
        low, high = (_as_numbers(domain) if encoding_type in _NUMERIC else _as_micros(domain))
        if not low <= high:
            raise ValueError(f"its declared domain {domain!r} has low > high.")
    return kind


def _as_numbers(values) -> np.ndarray:
    try:
        numbers = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"its declared domain {values!r} holds values that are not numbers.") from None
    if not np.isfinite(numbers).all():
        raise ValueError(f"its declared domain {values!r} holds values that are not finite.")
    return numbers


def _as_micros(values) -> tuple[int, int]:
    try:
        stamps = [pd.Timestamp(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"its declared domain {values!r} holds values that are not datetimes.") from None
    stamps = [s.tz_convert("UTC").tz_localize(None) if s.tz is not None else s for s in stamps]
    low, high = (int(np.datetime64(s.to_datetime64(), "us").astype(np.int64)) for s in stamps)
    return low, high


def spends_nothing(encoding_type: str, domain: Any) -> bool:
    """Whether a declared domain makes the whole release of the column free (a category list)."""
    return domain is not None and isinstance(domain, list)


# ---------------------------------------------------------------------------------------------------------
# reduce

def dp_reduce(encoding_type: str, partials: list[dict[str, Any]], budget: ColumnBudget, n_subjects: int,
              rng: np.random.Generator, domain: Any = None, *, max_text_length: int | None = None) -> dict[str, Any]:
    """Published statistics of one column (the format of its encoding's ``reduce``) from DP mechanisms only.

    Spends at most ``budget.epsilon`` / ``budget.delta``, records every mechanism in ``budget.entries`` and what
    the user should know (a range too costly to find) in ``budget.notes``. A declared ``domain`` (checked by
    :func:`check_domain`) is published as it is, at no cost; a declared ``max_text_length`` caps the text lengths
    of a ``LANGUAGE_TEXT`` column.
    """
    if encoding_type in _CATEGORICAL:
        return _categorical(encoding_type, partials, budget, rng, domain)
    if encoding_type == _T.LANGUAGE_NUMERIC.value:
        return _language_numeric(partials, budget, n_subjects, rng, domain)
    if encoding_type in _NUMERIC:
        return _numeric(encoding_type, partials, budget, n_subjects, rng, domain)
    if encoding_type in _DATETIME:
        return _datetime(encoding_type, partials, budget, n_subjects, rng, domain)
    if encoding_type in _RELATIVE:
        return _relative(partials, budget, n_subjects, rng, domain)
    if encoding_type in _TEXT:
        return _text(partials, budget, n_subjects, rng, max_text_length)
    if encoding_type in _KEYED:
        return _keyed(encoding_type, partials, budget, rng)
    raise ValueError(not_supported_message(encoding_type))


def _keyed(encoding_type, partials, budget, rng):
    """Characters per position or quadtiles per level: thresholded keys, a subject holding one per position."""
    from ..column_encodings import get_encoding
    from ..column_encodings._character import MAX_LENGTH
    from ..column_encodings._common import merged_key_counts
    from ..column_encodings._lat_long import QUAD_LEVELS

    contributions = MAX_LENGTH if encoding_type == _T.TABULAR_CHARACTER.value else len(QUAD_LEVELS)
    keys, counts = merged_key_counts(partials) if partials else (np.array([], dtype=np.int64), np.array([]))
    what = "characters per position" if encoding_type == _T.TABULAR_CHARACTER.value else "quadtiles per level"
    released, noisy = threshold_categories(
        dict(zip(keys.tolist(), counts.tolist(), strict=True)),
        budget.spend(f"laplace threshold ({what})", budget.epsilon, budget.delta), budget.delta, rng, contributions)
    order = np.argsort(np.asarray(released, dtype=np.int64), kind="stable")
    stand_in = {"has_nan": True, "has_values": bool(released),
                "keys": np.asarray(released, dtype=np.int64)[order], "counts": np.asarray(noisy)[order]}
    return get_encoding(encoding_type).reduce([stand_in], value_protection=False, rng=rng)


def _categorical(encoding_type, partials, budget, rng, domain):
    from ..column_encodings._categorical import CategoricalEncoding

    if domain is not None:
        released = as_category_strings(pd.Series(domain, dtype=object)).dropna().tolist()
        budget.spend("declared domain (categories)", 0.0)
    else:
        released, _ = threshold_categories(_merged_counts(partials), budget.spend(
            "laplace threshold (categories)", budget.epsilon, budget.delta), budget.delta, rng)
    stand_in = {"has_nan": True, "subject_counts": dict.fromkeys(released, 1)}
    stats = CategoricalEncoding().reduce([stand_in], value_protection=False, rng=rng)
    if encoding_type == _T.LANGUAGE_CATEGORICAL.value:
        del stats["cardinalities"]
        stats["encoding_type"] = encoding_type
    return stats


def _decimal(partials, epsilon: float, budget: ColumnBudget, rng) -> int:
    index = finest_class(_summed(partials, "decimals"), budget.spend("laplace finest class (decimals)", epsilon),
                         rng)
    return _DECIMALS[index]


def _bounded_decimal(decimal: int, low: float, high: float) -> int:
    """The decimal exponent, never coarser than the bounds' leading digit (so rounding cannot collapse them)."""
    from ..column_encodings._numeric import leading_exponent

    magnitude = max(abs(low), abs(high))
    return min(decimal, leading_exponent(magnitude) if magnitude < 1e18 else 18)


def _rounded_bounds(low: float, high: float, decimal: int) -> tuple[float, float]:
    """Bounds on the column's decimal grid: the lower one down, the upper one up, never crossing.

    A DP lower bound is the upper edge of a cell that holds a value ``v``, so ``v`` (on the grid) lies at or
    below it and at or below its rounding down: rounding down stays inside the data and closer to it.
    """
    from ..column_encodings._numeric import round_to_decimal

    step = 10.0 ** decimal
    rounded_low = float(round_to_decimal(np.array([math.floor(low / step + 1e-9) * step]), decimal)[0])
    rounded_high = float(round_to_decimal(np.array([math.ceil(high / step - 1e-9) * step]), decimal)[0])
    if rounded_low > rounded_high:
        rounded_low = rounded_high = float(round_to_decimal(np.array([(low + high) / 2.0]), decimal)[0])
    return rounded_low, rounded_high


def _bounds(grid: ValueGrid, counts: np.ndarray, eps_low: float, eps_high: float, n_subjects: int,
            budget: ColumnBudget, rng, *, exact: bool = False) -> tuple[float, float] | None:
    """DP bounds, or ``None`` (nothing spent, a note for the user) when the budget is too small to find bounds
    inside the data for this many subjects; that is decided from public facts only."""
    if not bounds_feasible(n_subjects, grid.n_cells, min(eps_low, eps_high)):
        budget.notes.append(
            f"its epsilon of {min(eps_low, eps_high):.3g} per bound is too small to find bounds inside the data of "
            f"{n_subjects} subjects, so no range is published and it is generated as NULL; declare its domain "
            "(differential_privacy domains={column: (low, high)}) or raise epsilon or stats_share.")
        return None
    low, high, _ = dp_bounds(grid, counts, budget.spend("exponential mechanism (lower bound)", eps_low),
                             budget.spend("exponential mechanism (upper bound)", eps_high), n_subjects, rng,
                             exact=exact)
    return low, high


def _numeric(encoding_type, partials, budget, n_subjects, rng, domain):
    from ..column_encodings._numeric import DIGIT_POSITIONS, N_QUANTILES, leading_exponent, round_to_decimal
    from ..column_encodings._numeric_auto import AUTO_DIGIT_MAX_POSITIONS
    from ..column_encodings._numeric_binned import reduce_binned
    from ..column_encodings._numeric_digit import reduce_digit
    from ..column_encodings._numeric_discrete import reduce_discrete

    epsilon = budget.epsilon
    declared_range = domain is not None and not isinstance(domain, list)
    if not declared_range and encoding_type in (_T.TABULAR_NUMERIC_AUTO.value, _T.TABULAR_NUMERIC_DISCRETE.value):
        if domain is not None:
            values = sorted(set(_as_numbers(domain).tolist()))
            budget.spend("declared domain (values)", 0.0)
            clear_majority = True
        else:
            share = _AUTO_DISCRETE_SHARE if encoding_type == _T.TABULAR_NUMERIC_AUTO.value else 1.0
            counts = _merged_counts(partials) | {_NULL_KEY: int(sum(p["n_null"] for p in partials))}
            released, noisy = threshold_categories(
                counts, budget.spend("laplace threshold (values)", share * epsilon, budget.delta), budget.delta, rng)
            values = sorted(key for key in released if key is not _NULL_KEY)
            held = float(sum(n for key, n in zip(released, noisy, strict=True) if key is not _NULL_KEY))
            null_noisy = float(sum(n for key, n in zip(released, noisy, strict=True) if key is _NULL_KEY))
            # the share of the (public) subjects without a NULL that the released values hold, from noisy counts
            clear_majority = bool(values) and held / max(n_subjects - null_noisy, 1.0) > 0.99 and len(values) <= 100
            epsilon *= 1.0 - share
        stand_in = {"has_nan": True, "values": np.array(values, dtype=np.float64),
                    "subject_counts": np.ones(len(values)), "row_counts": np.ones(len(values)),
                    "n_values": len(values)}
        if encoding_type == _T.TABULAR_NUMERIC_DISCRETE.value or clear_majority:
            return reduce_discrete([stand_in], value_protection=False, rng=rng)[0]
    digit_type = encoding_type == _T.TABULAR_NUMERIC_DIGIT.value
    shares = dict(_DIGIT_SHARES if digit_type else _BINNED_SHARES)
    if declared_range:
        low, high = (float(v) for v in _as_numbers(domain))
        budget.spend("declared domain (bounds)", 0.0)
        rest = shares.pop("low") + shares.pop("high")
        shares = {name: share / (1.0 - rest) for name, share in shares.items()}
        bounds = (low, high)
    else:
        bounds = _bounds(_NUMBER_GRID, _summed(partials, "cells"), shares["low"] * epsilon,
                         shares["high"] * epsilon, n_subjects, budget, rng)
    empty = {"has_nan": True, "minima": np.array([]), "maxima": np.array([]), "n_subjects": 0, "n_values": 0,
             "min_decimal": 0, "quantiles": np.array([])}
    if bounds is None:
        return reduce_digit([empty], value_protection=False, rng=rng) if digit_type else reduce_binned(
            [empty], value_protection=False, rng=rng)
    decimal = _bounded_decimal(_decimal(partials, shares["decimal"] * epsilon, budget, rng), *bounds)
    low, high = _rounded_bounds(*bounds, decimal)
    magnitude = max(abs(low), abs(high))
    positions = max(leading_exponent(magnitude) if magnitude < 1e18 else 18, decimal) - decimal + 1
    digit = digit_type or (encoding_type == _T.TABULAR_NUMERIC_AUTO.value and positions <= AUTO_DIGIT_MAX_POSITIONS
                           and magnitude < 1e18)
    stand_in = {"has_nan": True, "minima": np.array([low]), "maxima": np.array([high]), "n_subjects": 1,
                "n_values": 1, "min_decimal": decimal}
    if digit:
        stand_in |= {"digit_min": np.zeros(len(DIGIT_POSITIONS), dtype=np.int64),
                     "digit_max": np.full(len(DIGIT_POSITIONS), 9, dtype=np.int64)}
        return reduce_digit([stand_in], value_protection=False, rng=rng)
    noisy = noisy_histogram(_summed(partials, "cells"),
                            budget.spend("laplace histogram (bin quantiles)", shares["histogram"] * epsilon), rng)
    quantiles = np.clip(round_to_decimal(histogram_quantiles(_NUMBER_GRID, noisy, low, high, N_QUANTILES), decimal),
                        low, high)
    return reduce_binned([stand_in | {"quantiles": quantiles}], value_protection=False, rng=rng)


def _language_numeric(partials, budget, n_subjects, rng, domain):
    from ..column_encodings._language import MAX_SCALE, LanguageNumericEncoding

    shares = dict(_DIGIT_SHARES)
    if domain is not None:
        bounds = tuple(float(v) for v in _as_numbers(domain))
        budget.spend("declared domain (bounds)", 0.0)
        shares["decimal"] = 1.0
    else:
        bounds = _bounds(_NUMBER_GRID, _summed(partials, "cells"), shares["low"] * budget.epsilon,
                         shares["high"] * budget.epsilon, n_subjects, budget, rng)
    if bounds is None:
        stand_in = {"has_nan": True, "minima": np.array([]), "maxima": np.array([]), "n_subjects": 0, "scale": 0}
        return LanguageNumericEncoding().reduce([stand_in], value_protection=False, rng=rng)
    decimal = _bounded_decimal(_decimal(partials, shares["decimal"] * budget.epsilon, budget, rng), *bounds)
    low, high = _rounded_bounds(*bounds, max(decimal, -MAX_SCALE))
    stand_in = {"has_nan": True, "minima": np.array([low]), "maxima": np.array([high]), "n_subjects": 1,
                "scale": int(min(max(-decimal, 0), MAX_SCALE))}
    return LanguageNumericEncoding().reduce([stand_in], value_protection=False, rng=rng)


def _datetime(encoding_type, partials, budget, n_subjects, rng, domain):
    from ..column_encodings._datetime_absolute import ALL_PARTS, DatetimeEncoding
    from ..column_encodings._language import LanguageDatetimeEncoding

    epsilon, shares = budget.epsilon, dict(_DATETIME_SHARES)
    if domain is not None:
        bounds = _as_micros(domain)
        budget.spend("declared domain (bounds)", 0.0)
        shares["resolution"] = 1.0
    else:
        bounds = _bounds(_DATETIME_GRID, _summed(partials, "cells"), shares["low"] * epsilon,
                         shares["high"] * epsilon, n_subjects, budget, rng)
    tz = next((p["tz"] for p in partials if p["tz"] is not None), None)
    if bounds is None:
        if encoding_type == _T.LANGUAGE_DATETIME.value:
            return LanguageDatetimeEncoding().reduce([{"has_nan": True, "minima": np.array([]),
                                                       "maxima": np.array([]), "n_subjects": 0, "has_time": False}],
                                                     value_protection=False, rng=rng)
        from ..column_encodings._datetime_absolute import null_stats

        return null_stats(_T.TABULAR_DATETIME, False, tz)
    low, high = bounds
    resolution = finest_class(_summed(partials, "resolutions"),
                              budget.spend("laplace finest class (resolution)", shares["resolution"] * epsilon), rng)
    flags = (resolution <= 2, resolution <= 1, resolution == 0)
    unit = (1, 1_000, 1_000_000, 86_400_000_000)[resolution]
    # onto the resolution, the lower bound down and the upper one up (see _rounded_bounds)
    low_us, high_us = math.floor(low / unit) * unit, math.ceil(high / unit) * unit
    if low_us > high_us:
        low_us = high_us = int((low + high) / 2) // unit * unit
    if encoding_type == _T.LANGUAGE_DATETIME.value:
        stand_in = {"has_nan": True, "minima": np.array([low_us]), "maxima": np.array([high_us]), "n_subjects": 1,
                    "has_time": bool(flags[0])}
        return LanguageDatetimeEncoding().reduce([stand_in], value_protection=False, rng=rng)
    full_min = dict.fromkeys(ALL_PARTS, 0) | {"year": 1, "month": 1, "day": 1}
    full_max = dict.fromkeys(ALL_PARTS, 9) | {"year": 9999, "month": 12, "day": 31, "hour": 23, "minute": 59,
                                              "second": 59}
    stand_in = {"has_nan": True, "tz": tz, "flags": flags, "ranges": (full_min, full_max),
                "extremes": (np.array([low_us]), np.array([high_us]), 1)}
    return DatetimeEncoding().reduce([stand_in], value_protection=False, rng=rng)


def _on_resolution(low: float, high: float, unit: int) -> tuple[int, int]:
    """Bounds onto the resolution, the lower one down and the upper one up (see :func:`_rounded_bounds`)."""
    low_us, high_us = math.floor(low / unit) * unit, math.ceil(high / unit) * unit
    if low_us > high_us:
        low_us = high_us = int((low + high) / 2) // unit * unit
    return int(low_us), int(high_us)


def _relative(partials, budget, n_subjects, rng, domain):
    """Start bounds, ITT bounds and resolution of TABULAR_DATETIME_RELATIVE (see :func:`_relative_partial`)."""
    from ..column_encodings._datetime_absolute import ALL_PARTS, null_stats
    from ..column_encodings._datetime_relative import ITT_PARTS, DatetimeRelativeEncoding

    epsilon, shares = budget.epsilon, dict(_RELATIVE_SHARES)
    if domain is not None:
        starts = _as_micros(domain)
        budget.spend("declared domain (start bounds)", 0.0)
        rest = shares.pop("low") + shares.pop("high")
        shares = {name: share / (1.0 - rest) for name, share in shares.items()}
    else:
        starts = _bounds(_DATETIME_GRID, _summed(partials, "cells"), shares["low"] * epsilon,
                         shares["high"] * epsilon, n_subjects, budget, rng)
    tz = next((p["tz"] for p in partials if p["tz"] is not None), None)
    if starts is None:
        return null_stats(_T.TABULAR_DATETIME_RELATIVE, False, tz) | {"has_neg": False, "itt_min": None,
                                                                      "itt_max": None}
    resolution = finest_class(_summed(partials, "resolutions"),
                              budget.spend("laplace finest class (resolution)", shares["resolution"] * epsilon), rng)
    flags = (resolution <= 2, resolution <= 1, resolution == 0)
    unit = (1, 1_000, 1_000_000, 86_400_000_000)[resolution]
    low_us, high_us = _on_resolution(*starts, unit)
    eps_low, eps_high = shares["itt_low"] * epsilon, shares["itt_high"] * epsilon
    if bounds_feasible(n_subjects, _NUMBER_GRID.n_cells, min(eps_low, eps_high)):
        rank = bound_rank(n_subjects, _NUMBER_GRID.n_cells, min(eps_low, eps_high))
        itt_low = dp_lower_bound(_NUMBER_GRID, _summed(partials, "itt_low_cells"), rank,
                                 budget.spend("exponential mechanism (ITT lower bound)", eps_low), rng)
        itt_high = dp_upper_bound(_NUMBER_GRID, _summed(partials, "itt_high_cells"), rank,
                                  budget.spend("exponential mechanism (ITT upper bound)", eps_high), rng)
        # every subject's smallest ITT is <= 0 <= its largest: 0 lies inside the data's ITT range
        itt_low, itt_high = _on_resolution(min(itt_low, 0.0), max(itt_high, 0.0), unit)
        itt_extremes = (np.array([itt_low]), np.array([itt_high]), 1)
    else:
        budget.notes.append(
            f"its epsilon of {min(eps_low, eps_high):.3g} per inter-event-time bound is too small to find bounds "
            f"inside the data of {n_subjects} subjects, so no time between events is published and every event of "
            "a sequence is generated at its start; raise epsilon or stats_share.")
        itt_extremes = (np.array([], dtype=np.int64), np.array([], dtype=np.int64), 0)
    full_min = dict.fromkeys(ALL_PARTS, 0) | {"year": 1, "month": 1, "day": 1}
    full_max = dict.fromkeys(ALL_PARTS, 9) | {"year": 9999, "month": 12, "day": 31, "hour": 23, "minute": 59,
                                              "second": 59}
    itt_max = dict.fromkeys(ITT_PARTS, 9) | {"week": 2**31 - 1, "day": 6, "hour": 23, "minute": 59, "second": 59}
    stand_in = {"has_nan": True, "tz": tz, "flags": flags, "start_ranges": (full_min, full_max),
                "itt_ranges": (dict.fromkeys(ITT_PARTS, 0), itt_max),
                "start_extremes": (np.array([low_us]), np.array([high_us]), 1), "itt_extremes": itt_extremes}
    return DatetimeRelativeEncoding().reduce([stand_in], value_protection=False, rng=rng)


def _text(partials, budget, n_subjects, rng, max_text_length):
    from ..column_encodings._language import LanguageTextEncoding

    if not sum(p["n_values"] for p in partials):
        raise ValueError("it is declared LANGUAGE_TEXT but every value is NULL, so there is no text to learn. "
                         "Drop the column or give it another encoding type.")
    limit, average = dp_text_lengths(_summed(partials, "lengths"), budget, n_subjects, rng,
                                     max_text_length=max_text_length)
    stand_in = {"has_nan": True, "minima": np.array([1]), "maxima": np.array([limit]), "n_subjects": 1,
                "n_values": 1, "n_chars": average}
    return LanguageTextEncoding().reduce([stand_in], value_protection=False, rng=rng)
