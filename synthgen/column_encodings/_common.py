"""Pieces several encodings share: the stats header, ``nan`` flag codes, keyed subject counts and code lookups.

Encodings with a ``nan`` flag sub-column put it first and set it to 1 on NULL rows; a column without
publishable values holds that flag only. Encodings that count subjects per integer key (a character at a
position, a quadtile prefix at a level) keep the counts as parallel ``keys``/``counts`` arrays, which
partitions merge by adding up (a subject lives in exactly one partition).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import subject_counts

__all__ = [
    "RARE_TOKEN",
    "all_null_codes",
    "counted_keys",
    "lookup_codes",
    "merged_key_counts",
    "merged_presence",
    "n_rows",
    "nan_codes",
    "nan_flags",
    "stats_header",
]

RARE_TOKEN = "_RARE_"


def stats_header(encoding_type: ModelEncodingType, value_protection: bool, has_nan: bool) -> dict[str, Any]:
    """The leading stats keys of an encoding with an optional ``nan`` flag sub-column."""
    return {
        "encoding_type": encoding_type.value,
        "value_protection": value_protection,
        "cardinalities": {"nan": 2} if has_nan else {},
        "has_nan": has_nan,
    }


def n_rows(codes: dict[str, np.ndarray]) -> int:
    """The number of rows of a batch of codes."""
    return len(next(iter(codes.values())))


def all_null_codes(n: int) -> dict[str, np.ndarray]:
    """Codes of ``n`` rows of a column without publishable values: the ``nan`` flag set everywhere."""
    return {"nan": np.ones(n, dtype=np.int16)}


def nan_codes(is_null: np.ndarray, cardinalities: dict[str, int]) -> dict[str, np.ndarray]:
    """The ``nan`` flag codes when the column has that sub-column, else nothing."""
    return {"nan": is_null.astype(np.int16)} if "nan" in cardinalities else {}


def nan_flags(codes: dict[str, np.ndarray], n: int) -> np.ndarray:
    """The NULL mask of ``n`` rows to decode: the ``nan`` flag where the column has one, else all False."""
    return codes["nan"] == 1 if "nan" in codes else np.zeros(n, dtype=bool)


def lookup_codes(known: np.ndarray, values: np.ndarray, offset: int = 1) -> np.ndarray:
    """Codes ``offset + position`` of ``values`` in the sorted array ``known``, 0 where a value is not in it."""
    if len(known) == 0:
        return np.zeros(len(values), dtype=np.int64)
    position = np.minimum(np.searchsorted(known, values), len(known) - 1)
    return np.where(known[position] == values, position + offset, 0)


def counted_keys(keys: np.ndarray, holders: np.ndarray, is_null: np.ndarray) -> dict[str, Any]:
    """Partial statistics: distinct subjects (``holders``) per int64 key, and whether NULLs and values occur."""
    counts = subject_counts(pd.Series(keys), holders)
    return {
        "has_nan": bool(is_null.any()),
        "has_values": bool((~is_null).any()),
        "keys": np.fromiter(counts.keys(), dtype=np.int64, count=len(counts)),
        "counts": np.fromiter(counts.values(), dtype=np.int64, count=len(counts)),
    }


def merged_presence(partials: list[dict[str, Any]]) -> tuple[bool, bool]:
    """``(has_values, has_nan)`` over partitions; a column without values counts as having NULLs."""
    has_values = any(partial["has_values"] for partial in partials)
    has_nan = not has_values or any(partial["has_nan"] for partial in partials)
    return has_values, has_nan


def merged_key_counts(partials: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct keys of all partitions and their summed subject counts (float64)."""
    keys, inverse = np.unique(np.concatenate([partial["keys"] for partial in partials]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([partial["counts"] for partial in partials]))
    return keys, counts
