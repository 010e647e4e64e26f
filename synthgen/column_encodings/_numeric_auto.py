"""TABULAR_NUMERIC_AUTO: picks DISCRETE, DIGIT or BINNED for a numeric column at reduce time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ._base import ColumnEncoding, SequenceIndex
from ._numeric import AUTO_DISCRETE_MAX_VALUES, DIGIT_LIMIT, analyze_numeric
from ._numeric_binned import NumericBinnedEncoding, reduce_binned
from ._numeric_clock import is_clock_column, reduce_clock
from ._numeric_digit import NumericDigitEncoding, reduce_digit
from ._numeric_discrete import NumericDiscreteEncoding, reduce_discrete

__all__ = ["NumericAutoEncoding"]

AUTO_DISCRETE_MIN_SHARE = 0.99
AUTO_DIGIT_MAX_POSITIONS = 3
# A column that would be binned stays exact with up to this many published values: bins would draw values
# regardless of what they go with (a flight's distance regardless of its destination, 212 distances in all).
AUTO_DISCRETE_INSTEAD_OF_BINS = 256

_RESOLVED: dict[str, ColumnEncoding] = {
    ModelEncodingType.TABULAR_NUMERIC_DISCRETE.value: NumericDiscreteEncoding(),
    ModelEncodingType.TABULAR_NUMERIC_DIGIT.value: NumericDigitEncoding(),
    ModelEncodingType.TABULAR_NUMERIC_BINNED.value: NumericBinnedEncoding(),
}


class NumericAutoEncoding(ColumnEncoding):
    """Resolves to the numeric encoding that suits the column.

    - DISCRETE when at most 100 values are published (non-rare) and they hold more than 99 % of the
      non-NULL rows. The reference engine asks for fewer than 100 distinct values in every partition and
      99.9 %; counting published values instead keeps spiky columns such as capital gains (a hundred-odd
      exact amounts, a few of them rare) exact, where binning would invent amounts between the spikes;
    - else, for HHMM clock times (integers in [0, 2400] whose last two digits cover the minutes 0 … 59 and
      never more), DIGIT statistics marked ``clock``: an hour and a minute sub-column (see ``_numeric_clock``),
      so every value is a real time;
    - else DIGIT when at most 3 digit positions ever hold a non-zero digit (e.g. multiples of 100 below
      100,000) and every value is below 1e18 in absolute value;
    - else DISCRETE when at most 256 published values hold more than 99 % of the rows (a route's distance:
      binned, it would be drawn from its bin regardless of the route);
    - else BINNED.

    ``reduce`` returns the statistics of the resolved type, whose ``encoding_type`` names it; ``encode``
    and ``decode`` delegate to that type.
    """

    encoding_type = ModelEncodingType.TABULAR_NUMERIC_AUTO

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        return analyze_numeric(values, subjects, digits=True, counts=None, quantiles=True, observed=True)

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        discrete = None
        if all(p["values"] is not None for p in partials):
            stats, share = reduce_discrete(partials, value_protection=value_protection, rng=rng)
            n_published = len(stats["codes"]) - 1 - int(stats["has_nan"])
            if share > AUTO_DISCRETE_MIN_SHARE and n_published <= AUTO_DISCRETE_MAX_VALUES:
                return stats
            if share > AUTO_DISCRETE_MIN_SHARE and n_published <= AUTO_DISCRETE_INSTEAD_OF_BINS:
                discrete = stats
        if is_clock_column(partials):
            return reduce_clock(partials, value_protection=value_protection, rng=rng)
        filled = [p for p in partials if p["n_values"]]
        non_zero = np.any([p["digit_max"] > 0 for p in filled], axis=0) if filled else np.array([])
        max_abs = max((p["max_abs"] for p in partials), default=0.0)
        if int(np.sum(non_zero)) <= AUTO_DIGIT_MAX_POSITIONS and max_abs < DIGIT_LIMIT:
            return reduce_digit(partials, value_protection=value_protection, rng=rng)
        if discrete is not None:
            return discrete
        return reduce_binned(partials, value_protection=value_protection, rng=rng)

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        return _RESOLVED[stats["encoding_type"]].encode(values, stats, rng=rng, sequence=sequence)

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        return _RESOLVED[stats["encoding_type"]].decode(codes, stats, rng=rng, sequence=sequence)
