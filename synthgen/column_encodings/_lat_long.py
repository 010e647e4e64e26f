"""TABULAR_LAT_LONG: geo positions ``"latitude, longitude"`` as quadtile digits.

A position is rounded to 1e-5 degrees and shifted onto non-negative integers, ``lat + 90`` and
``long + 180`` in units of 1e-5 degrees (both below 2**26). Interleaving their bits, most significant first,
gives 26 base-4 quadtile digits ``P0`` … ``P25`` (``lat bit + 2 · long bit``), each of cardinality 4: every
digit halves the cell in both directions, so the model places a position coarse to fine. Decoding reads only
these digits back and writes ``f"{lat:.5f}, {long:.5f}"``.

Coarse categorical sub-columns ``QUAD<k>`` (the prefix of the first ``k`` digits, ``k`` in
:data:`QUAD_LEVELS`) let the model pick a region in one step. Their codes are ``_RARE_`` = 0 and then the
prefixes held by at least 20 subjects (with value protection 20 to 22, drawn per level), the
:data:`MAX_QUAD_VALUES` most common at most; a level with fewer than :data:`MIN_QUAD_VALUES` such prefixes is
left out. Without protection the threshold stays at 20: rarer regions are too thin to learn as categories.

Sub-column order: ``nan`` (only with NULLs; first, as in every synthgen encoding), the kept quads coarse to
fine, then ``P0`` … ``P25``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..domain import ModelEncodingType
from ._base import ColumnEncoding, SequenceIndex, code_dtype
from ._common import (
    RARE_TOKEN,
    all_null_codes,
    counted_keys,
    lookup_codes,
    merged_key_counts,
    merged_presence,
    n_rows,
    nan_codes,
    nan_flags,
    stats_header,
)
from ._impute import impute_from_observed

__all__ = ["LatLongEncoding", "QUAD_LEVELS"]

PRECISION = 100_000  # units per degree
N_DIGITS = 26
QUAD_LEVELS = (6, 8, 10, 12, 14, 16)
QUAD_RARE_THRESHOLD = 20
QUAD_RARE_THRESHOLD_SPREAD = 3
MIN_QUAD_VALUES = 5
MAX_QUAD_VALUES = 10_000

_LAT_OFFSET = 90 * PRECISION
_LONG_OFFSET = 180 * PRECISION
_DIGIT_SHIFTS = 2 * np.arange(N_DIGITS - 1, -1, -1)  # where digit i (coarse to fine) sits in a quadtile
_LEVEL_KEY = 1 << 40  # separates the levels in one key space; prefixes stay below 4**16
# spreading the bits of an integer onto the even bits (and back), in five mask-and-shift steps
_SPREAD_STEPS = ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
                 (2, 0x3333333333333333), (1, 0x5555555555555555))
_COMPACT_STEPS = ((1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F), (4, 0x00FF00FF00FF00FF),
                  (8, 0x0000FFFF0000FFFF), (16, 0x00000000FFFFFFFF))
_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_PAIR = rf"^\s*(?P<lat>{_NUMBER})\s*,\s*(?P<long>{_NUMBER})\s*$"


def _parse(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Positions as ``(rows, 2)`` int64 ``(lat + 90, long + 180)`` in 1e-5 degrees, and the NULL mask."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        raise ValueError(
            f"holds {values.dtype} values; a lat/long column needs strings 'latitude, longitude' "
            "such as '48.20849, 16.37208'."
        )
    is_null = values.isna().to_numpy()
    text = pa.array(values.astype("str").array)
    matches = pc.fill_null(pc.match_substring_regex(text, _PAIR), False)
    _check(~is_null & ~matches.to_numpy(zero_copy_only=False), values,
           "cannot parse {n} as 'latitude, longitude', e.g. {example!r}; expected two numbers separated by "
           "a comma, such as '48.20849, 16.37208'.")
    pairs = pc.extract_regex(pc.if_else(matches, text, "0,0"), _PAIR)
    lat, long = (pc.cast(pairs.field(name), pa.float64()).to_numpy(zero_copy_only=False) for name in ("lat", "long"))
    _check((np.abs(lat) > 90) | (np.abs(long) > 180), values,
           "has {n} outside |latitude| <= 90 and |longitude| <= 180, e.g. {example!r}.")
    units = np.stack([np.rint((lat + 90) * PRECISION), np.rint((long + 180) * PRECISION)], axis=1)
    return units.astype(np.int64), is_null


def _check(bad: np.ndarray, values: pd.Series, message: str) -> None:
    if bad.any():
        n_bad = int(bad.sum())
        n = f"{n_bad} value{'s' if n_bad > 1 else ''}"
        raise ValueError(message.format(n=n, example=values[bad].iloc[0]))


def _quadtiles(units: np.ndarray) -> np.ndarray:
    """Interleaved bits of ``(lat, long)`` units: 26 base-4 digits ``lat bit + 2 · long bit`` in an int64."""
    spread = units.copy()
    for shift, mask in _SPREAD_STEPS:
        spread = (spread | (spread << shift)) & mask
    return spread[:, 0] | (spread[:, 1] << 1)


def _units(quadtiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(lat, long)`` units of quadtiles: the inverse of :func:`_quadtiles`."""
    compact = np.stack([quadtiles, quadtiles >> 1], axis=1) & 0x5555555555555555
    for shift, mask in _COMPACT_STEPS:
        compact = (compact | (compact >> shift)) & mask
    return compact[:, 0], compact[:, 1]


def _prefix_strings(prefixes: np.ndarray, level: int) -> list[str]:
    digits = (prefixes[:, None] >> (2 * np.arange(level - 1, -1, -1))) & 3
    return np.ascontiguousarray(digits + ord("0"), dtype=np.uint32).view(f"<U{level}").ravel().tolist()


def _format(units: np.ndarray, offset: int) -> pd.Series:
    """Degrees with 5 decimals from units, by integer arithmetic (exact and vectorized)."""
    signed = units - offset
    whole, fraction = np.divmod(np.abs(signed), PRECISION)
    sign = pd.Series(np.where(signed < 0, "-", ""))
    return sign + pd.Series(whole).astype(str) + "." + pd.Series(fraction).astype(str).str.zfill(5)


class LatLongEncoding(ColumnEncoding):
    """Geo positions ``"latitude, longitude"`` as quadtile digits and coarse quads (``TABULAR_LAT_LONG``).

    Stats keys besides ``encoding_type``, ``value_protection`` and ``cardinalities``: ``has_nan`` and
    ``quad_codes`` (``{"QUAD<k>": {"_RARE_": 0, prefix: code}}``, prefixes as base-4 digit strings). A column
    without non-NULL values has the ``nan`` flag only and decodes to NULL.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> enc = LatLongEncoding()
    >>> values = pd.Series(["48.20849, 16.37208", "-33.8688,151.2093", None])
    >>> rng = np.random.default_rng(0)
    >>> stats = enc.reduce([enc.analyze(values, np.arange(3))], value_protection=False, rng=rng)
    >>> enc.decode(enc.encode(values, stats, rng=rng), stats, rng=rng).tolist()
    ['48.20849, 16.37208', '-33.86880, 151.20930', nan]
    """

    encoding_type = ModelEncodingType.TABULAR_LAT_LONG

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        units, is_null = _parse(values)
        quadtiles = _quadtiles(units[~is_null])
        keys = np.concatenate(
            [i * _LEVEL_KEY + (quadtiles >> 2 * (N_DIGITS - level)) for i, level in enumerate(QUAD_LEVELS)]
        )
        holders = np.tile(np.asarray(subjects)[~is_null], len(QUAD_LEVELS))
        return counted_keys(keys, holders, is_null)

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        has_values, has_nan = merged_presence(partials)
        stats = stats_header(self.encoding_type, value_protection, has_nan) | {"quad_codes": {}}
        if not has_values:
            return stats
        keys, counts = merged_key_counts(partials)
        levels, prefixes = np.divmod(keys, _LEVEL_KEY)
        for i, level in enumerate(QUAD_LEVELS):
            threshold = QUAD_RARE_THRESHOLD
            if value_protection:
                threshold += int(rng.integers(0, QUAD_RARE_THRESHOLD_SPREAD))
            at_level = (levels == i) & (counts >= threshold)
            level_prefixes, level_counts = prefixes[at_level], counts[at_level]
            if len(level_prefixes) < MIN_QUAD_VALUES:
                continue
            most_common = np.sort(level_prefixes[np.argsort(-level_counts, kind="stable")[:MAX_QUAD_VALUES]])
            names = _prefix_strings(most_common, level)
            stats["quad_codes"][f"QUAD{level}"] = {RARE_TOKEN: 0} | {name: j + 1 for j, name in enumerate(names)}
        stats["cardinalities"] |= {quad: len(codes) for quad, codes in stats["quad_codes"].items()}
        stats["cardinalities"] |= {f"P{i}": 4 for i in range(N_DIGITS)}
        return stats

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        units, is_null = _parse(values)
        if "P0" not in stats["cardinalities"]:
            return all_null_codes(len(units))
        units = impute_from_observed(units, is_null, rng, [_LAT_OFFSET, _LONG_OFFSET])
        quadtiles = _quadtiles(units)
        codes = nan_codes(is_null, stats["cardinalities"])
        for quad, quad_codes in stats["quad_codes"].items():
            level = int(quad.removeprefix("QUAD"))
            known = np.array([int(name, 4) for name in quad_codes if name != RARE_TOKEN], dtype=np.int64)
            prefixes = quadtiles >> 2 * (N_DIGITS - level)
            codes[quad] = lookup_codes(known, prefixes).astype(code_dtype(len(quad_codes)))
        codes |= {f"P{i}": ((quadtiles >> shift) & 3).astype(np.int16) for i, shift in enumerate(_DIGIT_SHIFTS)}
        return codes

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        n = n_rows(codes)
        if "P0" not in stats["cardinalities"]:
            return pd.Series(np.full(n, np.nan), dtype="str")
        quadtiles = np.zeros(n, dtype=np.int64)
        for i, shift in enumerate(_DIGIT_SHIFTS):
            quadtiles |= codes[f"P{i}"].astype(np.int64) << shift
        lat, long = _units(quadtiles)
        # digits can address up to 2**26 units per axis, beyond the poles and the date line
        lat, long = np.minimum(lat, 2 * _LAT_OFFSET), np.minimum(long, 2 * _LONG_OFFSET)
        decoded = _format(lat, _LAT_OFFSET) + ", " + _format(long, _LONG_OFFSET)
        decoded = decoded.astype("str")
        decoded[nan_flags(codes, n)] = np.nan
        return decoded
