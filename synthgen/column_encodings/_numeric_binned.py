"""TABULAR_NUMERIC_BINNED: a number as one of up to 100 quantile bins (sub-column ``bin``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ._base import SequenceIndex
from ._numeric import (
    TokenCodedEncoding,
    analyze_numeric,
    merged_has_nan,
    merged_min_decimal,
    merged_range,
    reserved_codes,
    round_to_decimal,
    to_float,
)

__all__ = ["NumericBinnedEncoding", "reduce_binned"]

MAX_BINS = 100
# Finest quantile grid tried when heavy ties leave too few distinct edges.
MAX_QUANTILE_GRID = 2**17 + 1
UNK_TOKEN = "<<UNK>>"
MIN_TOKEN = "<<MIN>>"
MAX_TOKEN = "<<MAX>>"


def _pooled_edges(partials: list[dict[str, Any]], low: float, high: float) -> np.ndarray:
    """Up to ``MAX_BINS + 1`` distinct edges from the per-partition quantiles, clipped to ``[low, high]``.

    Each partition's quantiles stand for its share of the values. The quantile grid is refined until the
    edges are distinct enough (ties at heavy values collapse edges), then thinned evenly to the limit.
    """
    filled = [p for p in partials if p["n_values"]]
    atoms = np.concatenate([p["quantiles"] for p in filled])
    weights = np.concatenate(
        [np.full(len(p["quantiles"]), p["n_values"] / len(p["quantiles"])) for p in filled]
    )
    order = np.argsort(atoms, kind="stable")
    atoms = np.clip(atoms[order], low, high)
    cdf = np.cumsum(weights[order])
    cdf /= cdf[-1]
    edges = np.unique(atoms)
    size = MAX_BINS + 1
    while len(edges) > MAX_BINS + 1 and size <= MAX_QUANTILE_GRID:
        picked = np.minimum(np.searchsorted(cdf, np.linspace(0.0, 1.0, size)), len(atoms) - 1)
        candidate = np.unique(np.concatenate([[low], atoms[picked], [high]]))
        if len(candidate) > MAX_BINS:
            edges = candidate
            break
        size = 2 * size - 1  # the finer grid keeps every point of the coarser one
    if len(edges) > MAX_BINS + 1:
        edges = edges[np.round(np.linspace(0, len(edges) - 1, MAX_BINS + 1)).astype(np.int64)]
    return edges


def reduce_binned(
    partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
) -> dict[str, Any]:
    """Published BINNED statistics from partials that hold ``quantiles``."""
    has_nan = merged_has_nan(partials)
    low, high = merged_range(partials, value_protection=value_protection, rng=rng)
    codes = reserved_codes(UNK_TOKEN, has_nan)
    bins: list[float] = []
    if low is not None:
        codes[MIN_TOKEN] = len(codes)
        codes[MAX_TOKEN] = len(codes)
        bins = _pooled_edges(partials, low, high).tolist()
    return {
        "encoding_type": ModelEncodingType.TABULAR_NUMERIC_BINNED.value,
        "value_protection": bool(value_protection),
        "cardinalities": {"bin": len(codes) + max(len(bins) - 1, 0)},
        "codes": codes,
        "has_nan": has_nan,
        "min_decimal": merged_min_decimal(partials),
        "bins": bins,
    }


class NumericBinnedEncoding(TokenCodedEncoding):
    """Numbers as quantile bins: ``<<UNK>>`` = 0, ``<<NULL>>`` (if NULLs were seen), ``<<MIN>>``, ``<<MAX>>``,
    then one code per bin ``[bins[i], bins[i+1])``.

    The edges are up to 101 distinct quantiles pooled from 1001 quantiles per partition and clipped to the
    published ``[min, max]`` (with value protection the 5–7 most extreme subjects per side fall outside
    it, so no edge reveals them). Values are clipped to the range; the minimum encodes as ``<<MIN>>`` and
    the maximum as ``<<MAX>>``, which decode to exactly those edges. A bin decodes to a uniform draw among
    the multiples of ``10**min_decimal`` inside it (integer columns stay integers). With fewer than 20
    subjects no range is published: there are no bins and every non-NULL value encodes as ``<<UNK>>``,
    which decodes to NULL, as does ``<<NULL>>``.
    """

    encoding_type = ModelEncodingType.TABULAR_NUMERIC_BINNED
    sub_column = "bin"
    rare_token = UNK_TOKEN

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        return analyze_numeric(values, subjects, quantiles=True)

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        return reduce_binned(partials, value_protection=value_protection, rng=rng)

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        x, null = to_float(values)
        codes, edges = stats["codes"], np.asarray(stats["bins"], dtype=np.float64)
        code = np.full(len(x), codes[UNK_TOKEN], dtype=np.int64)
        if len(edges):
            clipped = np.clip(x, edges[0], edges[-1])
            n_bins = len(edges) - 1
            inner = np.clip(np.searchsorted(edges, clipped, side="right") - 1, 0, max(n_bins - 1, 0))
            code[:] = len(codes) + inner
            code[clipped == edges[0]] = codes[MIN_TOKEN]
            code[clipped == edges[-1]] = codes[MAX_TOKEN]
            code[null] = codes[UNK_TOKEN]
        return self._with_nulls(code, null, stats)

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        code = np.asarray(codes["bin"], dtype=np.int64)
        tokens, edges = stats["codes"], np.asarray(stats["bins"], dtype=np.float64)
        x = np.full(len(code), np.nan)
        if not len(edges):
            return pd.Series(x)
        x[code == tokens[MIN_TOKEN]] = edges[0]
        x[code == tokens[MAX_TOKEN]] = edges[-1]
        in_bin = code >= len(tokens)
        index = code[in_bin] - len(tokens)
        x[in_bin] = self._draw_in_bins(edges, index, stats["min_decimal"], rng)
        return pd.Series(x)

    @staticmethod
    def _draw_in_bins(
        edges: np.ndarray, index: np.ndarray, decimal: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Uniform draws among the multiples of ``10**decimal`` in bins ``[edges[i], edges[i+1])``."""
        step = 10.0**decimal
        lower, upper = edges[index], edges[index + 1]
        # The first edge itself encodes as <<MIN>>, so the first bin starts one step above it when it can.
        lower = np.where((index == 0) & (lower + step < upper), lower + step, lower)
        n_points = np.maximum(np.ceil((upper - lower) / step - 1e-6), 1.0)
        drawn = lower + np.floor(rng.random(len(index)) * n_points) * step
        return np.clip(round_to_decimal(drawn, decimal), lower, np.nextafter(upper, -np.inf))
