"""TABULAR_NUMERIC_DISCRETE: every distinct number is a category of one sub-column ``cat``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..domain import ModelEncodingType
from ..privacy._value_protection import rare_threshold
from ._base import SequenceIndex
from ._common import RARE_TOKEN, lookup_codes
from ._numeric import (
    NULL_TOKEN,
    TokenCodedEncoding,
    analyze_numeric,
    decimal_exponent,
    format_value,
    merged_has_nan,
    reserved_codes,
    to_float,
)

__all__ = ["NumericDiscreteEncoding", "reduce_discrete"]


def reduce_discrete(
    partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
) -> tuple[dict[str, Any], float]:
    """Published DISCRETE statistics, and the share of non-NULL rows whose value is a (non-rare) category.

    Every partial must hold its distinct ``values`` (not ``None``). Subject counts add up across partitions
    because a subject lives in exactly one partition.
    """
    has_nan = merged_has_nan(partials)
    filled = [p for p in partials if len(p["values"])]
    if filled:
        distinct, inverse = np.unique(np.concatenate([p["values"] for p in filled]), return_inverse=True)
        subjects = np.bincount(inverse, weights=np.concatenate([p["subject_counts"] for p in filled]))
        rows = np.bincount(inverse, weights=np.concatenate([p["row_counts"] for p in filled]))
    else:
        distinct, subjects, rows = np.array([]), np.array([]), np.array([])
    keep = subjects >= rare_threshold(rng) if value_protection else np.ones(len(distinct), dtype=bool)
    categories = distinct[keep]
    n_values = sum(p["n_values"] for p in partials)
    share = float(rows[keep].sum() / n_values) if n_values else 1.0
    codes = reserved_codes(RARE_TOKEN, has_nan)
    offset = len(codes)
    codes.update((format_value(v), offset + i) for i, v in enumerate(categories.tolist()))
    stats = {
        "encoding_type": ModelEncodingType.TABULAR_NUMERIC_DISCRETE.value,
        "value_protection": bool(value_protection),
        "cardinalities": {"cat": len(codes)},
        "codes": codes,
        "has_nan": has_nan,
        # From the published categories only, so a rare value's decimals are not disclosed.
        "min_decimal": decimal_exponent(np.abs(categories)),
    }
    return stats, share


def _categories(stats: dict[str, Any]) -> tuple[np.ndarray, int]:
    """The category values in code order (ascending) and the code of the first one."""
    offset = 2 if NULL_TOKEN in stats["codes"] else 1
    keys = list(stats["codes"])[offset:]
    return np.array([float(k) for k in keys], dtype=np.float64), offset


class NumericDiscreteEncoding(TokenCodedEncoding):
    """Numbers as categories: ``_RARE_`` = 0, ``<<NULL>>`` = 1 (if NULLs were seen), then sorted values.

    With value protection, a value is a category only if at least ``rare_threshold`` (5–7) distinct
    subjects hold it; other values and values unseen at analysis encode as ``_RARE_``. A decoded
    ``_RARE_`` becomes NULL when the column has NULLs, else a uniformly drawn category. Decoding returns
    float64 with NaN for NULL; the caller casts to the recorded input dtype (``min_decimal >= 0`` means the
    categories are integers).
    """

    encoding_type = ModelEncodingType.TABULAR_NUMERIC_DISCRETE
    sub_column = "cat"
    rare_token = RARE_TOKEN

    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        return analyze_numeric(values, subjects, counts=True)

    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        return reduce_discrete(partials, value_protection=value_protection, rng=rng)[0]

    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        x, null = to_float(values)
        categories, offset = _categories(stats)
        return self._with_nulls(lookup_codes(categories, x, offset), null, stats)

    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        cat = np.asarray(codes["cat"], dtype=np.int64)
        categories, offset = _categories(stats)
        lookup = np.concatenate([np.full(offset, np.nan), categories])
        x = lookup[cat]
        rare = cat == stats["codes"][RARE_TOKEN]
        if NULL_TOKEN not in stats["codes"] and len(categories) and rare.any():
            x[rare] = categories[rng.integers(0, len(categories), size=int(rare.sum()))]
        return pd.Series(x, dtype=np.float64)
