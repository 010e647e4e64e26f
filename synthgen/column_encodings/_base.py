"""The contract every column encoding fulfils: analyze → reduce → encode → decode.

A column is turned into one or more integer *sub-columns* (codes ``0 .. cardinality-1``) that the models learn.

- ``analyze`` runs once per partition and returns partial statistics (plain Python / numpy objects kept
  in memory); subjects are the units of privacy (context keys for a two-table target, rows otherwise), and a
  subject lives in exactly one partition, so distinct-subject counts add up across partitions.
- ``reduce`` merges the partials of all partitions into the column's published statistics, a
  JSON-serializable dict that applies value protection. It always holds ``encoding_type`` (the resolved
  type) and ``cardinalities`` (``{sub_column: n_codes}`` in the fixed order of the sub-columns).
- ``encode`` maps values to codes with those statistics; ``decode`` maps codes back to values.

NULLs are always representable (a NULL code or a ``nan`` flag sub-column), so an all-NULL column is valid.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import attrs
import numpy as np
import pandas as pd

from ..domain import ModelEncodingType

__all__ = ["ColumnEncoding", "SequenceIndex", "code_dtype"]


@attrs.frozen
class SequenceIndex:
    """Where the sequences of a two-table target lie in a column: rows are contiguous per subject.

    ``group`` holds the subject ordinal of every row (non-decreasing), ``starts`` marks each sequence's first row.
    """

    group: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        starts = np.ones(len(self.group), dtype=bool)
        starts[1:] = self.group[1:] != self.group[:-1]
        return starts


def code_dtype(cardinality: int) -> np.dtype:
    """The smallest signed integer type that holds the codes 0 to ``cardinality - 1``."""
    if cardinality <= np.iinfo(np.int16).max:
        return np.dtype(np.int16)
    return np.dtype(np.int32)


class ColumnEncoding(ABC):
    """Analyze, reduce, encode and decode one column of one encoding type."""

    encoding_type: ClassVar[ModelEncodingType]

    @abstractmethod
    def analyze(
        self, values: pd.Series, subjects: np.ndarray, *, sequence: SequenceIndex | None = None
    ) -> dict[str, Any]:
        """Partial statistics of one partition; ``subjects[i]`` identifies the subject of ``values.iloc[i]``."""

    @abstractmethod
    def reduce(
        self, partials: list[dict[str, Any]], *, value_protection: bool, rng: np.random.Generator
    ) -> dict[str, Any]:
        """Merge partial statistics into published (protected when asked) JSON-serializable statistics."""

    @abstractmethod
    def encode(
        self,
        values: pd.Series,
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> dict[str, np.ndarray]:
        """Codes per sub-column, in the order of ``stats["cardinalities"]``, each within its cardinality."""

    def null_codes(self, stats: dict[str, Any]) -> dict[str, int]:
        """The code that means NULL, per sub-column (default: a ``nan`` flag sub-column set to 1)."""
        return {"nan": 1} if "nan" in stats["cardinalities"] else {}

    def rare_codes(self, stats: dict[str, Any]) -> dict[str, int]:
        """The code that stands for protected (rare or out-of-range) values, per sub-column; none by default."""
        return {}

    @abstractmethod
    def decode(
        self,
        codes: dict[str, np.ndarray],
        stats: dict[str, Any],
        *,
        rng: np.random.Generator,
        sequence: SequenceIndex | None = None,
    ) -> pd.Series:
        """Values from codes; NULLs come back as missing values."""
