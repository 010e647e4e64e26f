"""TABULAR_CHARACTER: short strings as one categorical sub-column per character position.

Strings are cut to their first :data:`MAX_LENGTH` (50) characters; longer values lose their tail, shorter
ones round-trip exactly, whatever their alphabet (accents, emoji: one code point is one character). Position
``i`` becomes sub-column ``P<i>`` whose codes are ``"\\0"`` = 0 (padding, unknown or rare character) and then
the position's characters in code-point order. With value protection a character held at a position by
fewer subjects than the rare threshold maps to 0 and is dropped at decoding, and trailing positions without
any published character are not published at all, so a few long values do not reveal their length. The
character ``"\\0"`` itself is reserved for padding and never round-trips.

Strings are handled as fixed-width UTF-32 numpy arrays viewed as ``(rows, positions)`` code points, so
analysis, encoding and decoding work on whole columns at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import rare_threshold
from ._base import ColumnEncoding, SequenceIndex, code_dtype
from ._common import (
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

__all__ = ["CharacterEncoding", "MAX_LENGTH"]

MAX_LENGTH = 50
_CODE_POINTS = 0x110000  # one more than the largest Unicode code point
_PADDING = "\0"


def _code_points(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Code points ``(rows, positions)`` of the strings cut to :data:`MAX_LENGTH` (0 pads) and the NULL mask."""
    is_null = values.isna().to_numpy()
    # cut before widening to UTF-32: a few long texts would otherwise blow up the fixed-width array
    text = values.astype("str").str.slice(0, MAX_LENGTH)
    width = max(int(text.str.len().max()), 1) if not is_null.all() else 1
    strings = text.to_numpy(dtype=object, na_value="").astype(f"<U{width}")
    points = strings.view(np.uint32).reshape(len(strings), width)
    used = np.flatnonzero(points.any(axis=0))
    return points[:, : used[-1] + 1 if len(used) else 0], is_null


def _fit_width(points: np.ndarray, width: int) -> np.ndarray:
    """Cut or zero-pad the positions of ``points`` to ``width``."""
    if points.shape[1] >= width:
        return points[:, :width]
    return np.pad(points, ((0, 0), (0, width - points.shape[1])))


def _alphabets(stats: dict[str, Any]) -> list[np.ndarray]:
    """Per position, the published code points (sorted; code = index + 1)."""
    return [
        np.array(sorted(ord(char) for char in codes if char != _PADDING), dtype=np.uint32)
        for codes in stats["codes"].values()
    ]


class CharacterEncoding(ColumnEncoding):
    """Strings of at most 50 characters as per-position characters (``TABULAR_CHARACTER``).

    Stats keys besides ``encoding_type``, ``value_protection`` and ``cardinalities``: ``has_nan``,
    ``max_string_length`` (number of positions) and ``codes`` (``{"P<i>": {char: code}}`` with ``"\\0"`` = 0).
    Sub-columns: ``nan`` (only with NULLs), then ``P0`` … ``P<max_string_length − 1>``; a column without
    non-NULL values has the ``nan`` flag only and decodes to NULL.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> enc = CharacterEncoding()
    >>> values = pd.Series(["ab", "b ", None])
    >>> rng = np.random.default_rng(0)
    >>> stats = enc.reduce([enc.analyze(values, np.arange(3))], value_protection=False, rng=rng)
    >>> stats["codes"]["P1"]
    {'\\x00': 0, ' ': 1, 'b': 2}
    >>> enc.decode(enc.encode(values, stats, rng=rng), stats, rng=rng).tolist()
    ['ab', 'b ', nan]
    """

    encoding_type = ModelEncodingType.TABULAR_CHARACTER

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        points, is_null = _code_points(values)
        present = points != 0
        # one key per (position, character): a single distinct-subject count covers all positions
        keys = (np.arange(points.shape[1], dtype=np.int64) * _CODE_POINTS + points)[present]
        holders = np.broadcast_to(np.asarray(subjects)[:, None], points.shape)[present]
        return counted_keys(keys, holders, is_null)

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        has_values, has_nan = merged_presence(partials)
        stats = stats_header(self.encoding_type, value_protection, has_nan) | {"max_string_length": 0, "codes": {}}
        if not has_values:
            return stats
        keys, counts = merged_key_counts(partials)
        positions, points = np.divmod(keys, _CODE_POINTS)
        n_positions = int(positions.max()) + 1 if len(positions) else 0
        if value_protection:
            thresholds = np.array([rare_threshold(rng) for _ in range(n_positions)], dtype=np.int64)
            kept = counts >= thresholds[positions]
            positions, points = positions[kept], points[kept]
            n_positions = int(positions.max()) + 1 if len(positions) else 0
        # keys are sorted by (position, code point), so each position's characters come out in order
        for position in range(max(n_positions, 1)):
            chars = [chr(point) for point in points[positions == position]]
            stats["codes"][f"P{position}"] = {_PADDING: 0} | {char: i + 1 for i, char in enumerate(chars)}
        stats["max_string_length"] = len(stats["codes"])
        stats["cardinalities"] |= {name: len(codes) for name, codes in stats["codes"].items()}
        return stats

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        points, is_null = _code_points(values)
        if not stats["codes"]:
            return all_null_codes(len(points))
        points = _fit_width(points, stats["max_string_length"])
        points = impute_from_observed(points, is_null, rng, 0)
        cardinalities = stats["cardinalities"]
        codes = nan_codes(is_null, cardinalities)
        for position, alphabet in enumerate(_alphabets(stats)):
            cardinality = cardinalities[f"P{position}"]
            codes[f"P{position}"] = lookup_codes(alphabet, points[:, position]).astype(code_dtype(cardinality))
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
        is_null = nan_flags(codes, n) if stats["codes"] else np.ones(n, dtype=bool)
        width = max(stats["max_string_length"], 1)
        points = np.zeros((n, width), dtype=np.uint32)
        for position, alphabet in enumerate(_alphabets(stats)):
            lookup = np.concatenate([[0], alphabet]).astype(np.uint32)
            points[:, position] = lookup[codes[f"P{position}"]]
        if np.any((points[:, :-1] == 0) & (points[:, 1:] != 0)):
            # dropped characters inside a string: move the padding behind the kept characters
            order = np.argsort(points == 0, axis=1, kind="stable")
            points = np.take_along_axis(points, order, axis=1)
        strings = np.ascontiguousarray(points).view(f"<U{width}").ravel()
        decoded = pd.Series(strings, dtype="str")
        decoded[is_null] = np.nan
        return decoded
