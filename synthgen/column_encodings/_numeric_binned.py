"""TABULAR_NUMERIC_BINNED: a number as one of up to 100 quantile bins (sub-column ``bin``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import rare_threshold
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
    to_scaled_int,
)
from ._observed import merged_observed, rest_residues

__all__ = ["NumericBinnedEncoding", "reduce_binned"]

MAX_BINS = 100
# Finest quantile grid tried when heavy ties leave too few distinct edges.
MAX_QUANTILE_GRID = 2**17 + 1
UNK_TOKEN = "<<UNK>>"
MIN_TOKEN = "<<MIN>>"
MAX_TOKEN = "<<MAX>>"
# Common values published per bin at most (the most frequent ones); the rest of a bin is drawn uniformly.
MAX_VALUES_PER_BIN = 32
# When the published values hold at least this share of a bin's rows, the bin draws from them alone: its
# values form a lattice (clock times, whole minutes) and a uniform draw would invent impossible ones.
VALUES_ONLY_SHARE = 0.9
# The last two digits (in units of 10**min_decimal) of the common values constrain uniform draws when fewer
# than RESIDUE_MAX of the 100 possible pairs occur among at least RESIDUE_MIN_VALUES common values: clock
# times HHMM never end in 60–99, and neither may their synthetic values.
RESIDUE_MAX = 90
RESIDUE_MIN_VALUES = 300
RESIDUE_TRIES = 16


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


def _in_bin_values(
    partials: list[dict[str, Any]], edges: np.ndarray, *, value_protection: bool, rng: np.random.Generator
) -> dict[str, list]:
    """The common observed values inside each bin, with their shares of the bin's rows.

    Returns ``in_bin_values`` / ``in_bin_shares`` (one list per bin: up to ``MAX_VALUES_PER_BIN`` values
    held by at least ``rare_threshold`` subjects with protection, most frequent first, and each one's share
    of the bin's rows) and ``in_bin_rest`` (per bin, the share left to uniform draws: 0 when the values hold
    at least ``VALUES_ONLY_SHARE`` of the bin) and ``in_bin_residues`` (the last-two-digit pairs that uniform
    draws may end in; empty = any, see ``RESIDUE_MAX``; with sketched partitions the pairs of their unlisted
    values held by enough subjects count too). Values on the edges or outside them are not in a bin (they encode as
    ``<<MIN>>``/``<<MAX>>``). The counts come from :func:`~._observed.merged_observed`: exact when every
    partition has at most ``EXACT_VALUES`` distinct values, else from the partitions' bounded sketches.
    """
    n_bins = len(edges) - 1
    uniform = {"in_bin_values": [[] for _ in range(n_bins)], "in_bin_shares": [[] for _ in range(n_bins)],
               "in_bin_rest": [1.0] * n_bins, "in_bin_residues": []}
    filled = [p for p in partials if p["n_values"]]
    merged = merged_observed(filled, edges) if n_bins >= 1 and filled else None
    if merged is None:
        return uniform
    distinct, subjects, rows, index = merged["values"], merged["subjects"], merged["rows"], merged["bin"]
    bin_rows = merged["bin_rows"]
    min_subjects = rare_threshold(rng) if value_protection else 1
    keep = subjects >= min_subjects
    # Most frequent first within each bin, then the first MAX_VALUES_PER_BIN of every bin.
    order = np.lexsort((-rows[keep], index[keep]))
    kept_values, kept_rows, kept_bins = distinct[keep][order], rows[keep][order], index[keep][order]
    starts = np.searchsorted(kept_bins, np.arange(n_bins))
    ends = np.minimum(np.searchsorted(kept_bins, np.arange(n_bins), side="right"), starts + MAX_VALUES_PER_BIN)
    values, shares, rest = [], [], []
    for b in range(n_bins):
        share = kept_rows[starts[b]:ends[b]] / bin_rows[b] if bin_rows[b] else np.array([])
        left = 1.0 - float(share.sum())
        if len(share) and left <= 1.0 - VALUES_ONLY_SHARE:
            share, left = share / share.sum(), 0.0
        values.append(kept_values[starts[b]:ends[b]].tolist())
        shares.append(np.round(share, 6).tolist())
        rest.append(round(max(left, 0.0), 6))
    residues: list[int] = []
    if keep.sum() >= RESIDUE_MIN_VALUES:
        decimal = merged_min_decimal(partials)
        found = set((to_scaled_int(np.abs(kept_values), decimal) % 100).tolist()) | rest_residues(filled, decimal, min_subjects)
        residues = sorted(found) if len(found) < RESIDUE_MAX else []
    return {"in_bin_values": values, "in_bin_shares": shares, "in_bin_rest": rest, "in_bin_residues": residues}


def reduce_binned(
    partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
) -> dict[str, Any]:
    """Published BINNED statistics from partials that hold ``quantiles``."""
    has_nan = merged_has_nan(partials)
    low, high = merged_range(partials, value_protection=value_protection, rng=rng)
    codes = reserved_codes(UNK_TOKEN, has_nan)
    bins: list[float] = []
    in_bin: dict[str, list] = {"in_bin_values": [], "in_bin_shares": [], "in_bin_rest": [], "in_bin_residues": []}
    if low is not None:
        codes[MIN_TOKEN] = len(codes)
        codes[MAX_TOKEN] = len(codes)
        edges = _pooled_edges(partials, low, high)
        bins = edges.tolist()
        in_bin = _in_bin_values(partials, edges, value_protection=value_protection, rng=rng)
    return in_bin | {
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
    the maximum as ``<<MAX>>``, which decode to exactly those edges. A bin decodes to one of its published
    common values (``in_bin_values``, drawn by their ``in_bin_shares``: the training values' own shape
    inside the bin) or, with the remaining probability ``in_bin_rest``, to a uniform draw among the
    multiples of ``10**min_decimal`` inside it (integer columns stay integers). With fewer than 20
    subjects no range is published: there are no bins and every non-NULL value encodes as ``<<UNK>>``,
    which decodes to NULL, as does ``<<NULL>>``.
    """

    encoding_type = ModelEncodingType.TABULAR_NUMERIC_BINNED
    sub_column = "bin"
    rare_token = UNK_TOKEN

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        return analyze_numeric(values, subjects, quantiles=True, observed=True)

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
        x[in_bin] = self._draw_in_bins(edges, index, stats["min_decimal"], rng, stats.get("in_bin_residues"))
        if stats.get("in_bin_values"):
            x[in_bin] = _draw_observed(x[in_bin], index, stats, rng)
        return pd.Series(x)

    @staticmethod
    def _draw_in_bins(
        edges: np.ndarray,
        index: np.ndarray,
        decimal: int,
        rng: np.random.Generator,
        residues: list[int] | None = None,
    ) -> np.ndarray:
        """Uniform draws among the multiples of ``10**decimal`` in bins ``[edges[i], edges[i+1])``.

        With ``residues``, draws whose last two digits (in those units) are not among them are drawn again,
        up to ``RESIDUE_TRIES`` times (a bin without any allowed value keeps its last draw).
        """
        step = 10.0**decimal
        lower, upper = edges[index], edges[index + 1]
        # The first edge itself encodes as <<MIN>>, so the first bin starts one step above it when it can.
        lower = np.where((index == 0) & (lower + step < upper), lower + step, lower)
        n_points = np.maximum(np.ceil((upper - lower) / step - 1e-6), 1.0)
        drawn = lower + np.floor(rng.random(len(index)) * n_points) * step
        drawn = np.clip(round_to_decimal(drawn, decimal), lower, np.nextafter(upper, -np.inf))
        if residues:
            allowed = np.zeros(100, dtype=bool)
            allowed[residues] = True
            for _ in range(RESIDUE_TRIES):
                bad = ~allowed[to_scaled_int(np.abs(drawn), decimal) % 100]
                if not bad.any():
                    break
                again = lower[bad] + np.floor(rng.random(int(bad.sum())) * n_points[bad]) * step
                drawn[bad] = np.clip(round_to_decimal(again, decimal), lower[bad], np.nextafter(upper[bad], -np.inf))
        return drawn


def _draw_observed(
    uniform: np.ndarray, index: np.ndarray, stats: dict[str, Any], rng: np.random.Generator
) -> np.ndarray:
    """Replace uniform in-bin draws by published common values, per bin with probability ``1 - in_bin_rest``.

    Each bin ``b`` owns the interval ``[b, b + 1)`` of one flat cumulative table holding its values' shares
    and, last, its rest; one ``searchsorted`` of ``bin + u`` picks a slot for every row at once.
    """
    values, shares, rest = stats["in_bin_values"], stats["in_bin_shares"], stats["in_bin_rest"]
    slot_values, cumulative = [], []
    for b in range(len(values)):
        weights = np.append(np.asarray(shares[b], dtype=np.float64), rest[b])
        total = weights.sum()
        cumulative.append(b + np.cumsum(weights / total) if total > 0 else np.array([b + 1.0]))
        slot_values.append(np.append(np.asarray(values[b], dtype=np.float64), np.nan)[-len(cumulative[-1]):])
    flat_values, flat_cumulative = np.concatenate(slot_values), np.concatenate(cumulative)
    flat_cumulative[np.cumsum([len(c) for c in cumulative]) - 1] = np.arange(1, len(values) + 1)
    slot = np.searchsorted(flat_cumulative, index + rng.random(len(index)), side="right")
    drawn = flat_values[np.minimum(slot, len(flat_values) - 1)]
    return np.where(np.isnan(drawn), uniform, drawn)
