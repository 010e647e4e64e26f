"""TABULAR_CATEGORICAL: one sub-column ``cat`` of category codes.

Codes: ``0`` = ``_RARE_`` (protected or unseen categories), ``1`` = NULL when the column has NULLs, then the
published categories in sorted order. Categories are kept as a list, so user values that look like our
reserved tokens need no escaping.

The rare code decodes to the literal ``_RARE_`` only where that string is a value of the column's type (a
string column with published categories); elsewhere (no published category; a bool, category or typed object
column) it decodes to NULL, so neither the internal token nor a wrong real value reaches the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .._dtypes import as_category_strings, holds_text
from ..domain import ModelEncodingType
from ..privacy._value_protection import rare_threshold, subject_counts
from ._base import ColumnEncoding, SequenceIndex, code_dtype
from ._common import RARE_TOKEN

__all__ = ["CategoricalEncoding", "RARE_TOKEN", "as_category_strings", "rare_decodes_to_token"]

SUB_COLUMN = "cat"

try:  # pandas' default string dtype (pandas >= 2.3); older versions decode to object
    _STRING_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
except TypeError:
    _STRING_DTYPE = None


def rare_decodes_to_token(stats: dict[str, Any]) -> bool:
    """Whether the rare code decodes to ``_RARE_`` (a string column with published categories), else to NULL."""
    return bool(stats["categories"]) and holds_text(stats.get("dtype", "object"))


class CategoricalEncoding(ColumnEncoding):
    encoding_type = ModelEncodingType.TABULAR_CATEGORICAL

    def analyze(self, values, subjects, *, sequence: SequenceIndex | None = None) -> dict[str, Any]:
        strings = as_category_strings(values)
        return {
            "has_nan": bool(strings.isna().any()),
            "subject_counts": subject_counts(strings, subjects),
        }

    def reduce(self, partials, *, value_protection, rng) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for partial in partials:
            for category, n in partial["subject_counts"].items():
                counts[category] = counts.get(category, 0) + n
        threshold = rare_threshold(rng) if value_protection else 0
        categories = sorted(c for c, n in counts.items() if n >= threshold)
        has_nan = any(p["has_nan"] for p in partials)
        return {
            "encoding_type": self.encoding_type.value,
            "value_protection": bool(value_protection),
            "has_nan": has_nan,
            "no_of_rare_categories": len(counts) - len(categories),
            "categories": categories,
            "cardinalities": {SUB_COLUMN: 1 + int(has_nan) + len(categories)},
        }

    def encode(self, values, stats, *, rng, sequence=None) -> dict[str, np.ndarray]:
        strings = as_category_strings(values)
        offset = 1 + int(stats["has_nan"])
        positions = pd.Index(stats["categories"], dtype=object).get_indexer(strings)
        codes = np.where(positions >= 0, positions + offset, 0)
        if stats["has_nan"]:
            codes[strings.isna().to_numpy()] = 1
        return {SUB_COLUMN: codes.astype(code_dtype(stats["cardinalities"][SUB_COLUMN]))}

    def null_codes(self, stats) -> dict[str, int]:
        return {SUB_COLUMN: 1} if stats["has_nan"] else {}

    def rare_codes(self, stats) -> dict[str, int]:
        return {SUB_COLUMN: 0}

    def decode(self, codes, stats, *, rng, sequence=None) -> pd.Series:
        rare = RARE_TOKEN if rare_decodes_to_token(stats) else None
        lookup = pa.array([rare] + ([None] if stats["has_nan"] else []) + list(stats["categories"]),
                          type=pa.large_string())
        # an Arrow take builds the string column without a Python object per row
        taken = lookup.take(pa.array(np.asarray(codes[SUB_COLUMN], dtype=np.int64)))
        if _STRING_DTYPE is None:
            return pd.Series(taken.to_pandas(), dtype=object)
        return pd.Series(pd.array(taken, dtype=_STRING_DTYPE))
