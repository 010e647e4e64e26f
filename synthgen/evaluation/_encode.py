"""Numeric encoding of mixed-type rows for nearest-neighbour distances.

Each column contributes comparable amounts to a squared Euclidean distance:

- numeric and datetime values are mapped through the training data's empirical CDF to [0, 1] (ties get
  their mid rank; values outside the training range are clipped to its ends), so one heavy outlier cannot
  squash all other differences; a NULL flag adds a second dimension. Two values differ by at most 1, and a
  NULL differs from a value by at least 1.
- categorical values are one-hot encoded over the training data's ``max_categories`` most frequent
  categories plus "(other)" and NULL, scaled by ``1 / sqrt(2)`` so that any two different buckets are at
  squared distance exactly 1 (categories outside the top ones share the "(other)" bucket).

Free-text columns are left out (they are evaluated by the text figures), but exact copies (``unit_hashes``)
compare whole records, text included.

Sequences are compared by their profile: the mean of their rows' encodings (category shares, mean CDF
position, NULL share per column) plus their length mapped through the training lengths' CDF.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from attrs import frozen

from synthgen.evaluation._columns import ColumnKind
from synthgen.evaluation._discretize import category_codes, most_frequent
from synthgen.evaluation._prepare import PreparedFrame

_ONE_HOT_SCALE = np.float32(1.0 / np.sqrt(2.0))


@frozen(eq=False)
class _EmpiricalCdf:
    values: np.ndarray
    positions: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> _EmpiricalCdf:
        finite = values[~np.isnan(values)]
        if len(finite) == 0:
            return cls(np.array([0.0]), np.array([0.5]))
        distinct, counts = np.unique(finite, return_counts=True)
        positions = (np.cumsum(counts) - counts / 2) / len(finite)
        return cls(distinct, positions)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.interp(values, self.values, self.positions)


@frozen(eq=False)
class DistanceEncoder:
    """Encoding fitted on the training data; see the module docstring."""

    kinds: dict[str, ColumnKind]
    cdfs: dict[str, _EmpiricalCdf]
    categories: dict[str, np.ndarray]
    length_cdf: _EmpiricalCdf | None

    @classmethod
    def fit(
        cls, training: PreparedFrame, kinds: dict[str, ColumnKind], max_categories: int = 20
    ) -> DistanceEncoder:
        """Fit the encoding on the training frame."""
        cdfs: dict[str, _EmpiricalCdf] = {}
        categories: dict[str, np.ndarray] = {}
        for column, values in training.values.items():
            if kinds[column] == "text":
                continue  # free text has no useful distance here; the text figures count its copies
            if kinds[column] == "categorical":
                categories[column] = most_frequent(values, max_categories)
            else:
                cdfs[column] = _EmpiricalCdf.fit(values)
        length_cdf = None
        if training.lengths is not None:
            length_cdf = _EmpiricalCdf.fit(training.lengths.astype(np.float64))
        return cls(kinds, cdfs, categories, length_cdf)

    def encode_rows(self, frame: PreparedFrame) -> np.ndarray:
        """Encode every row of the frame as a float32 matrix."""
        blocks = []
        for column, values in frame.values.items():
            if column not in self.cdfs and column not in self.categories:
                continue  # a text column
            if column in self.cdfs:
                is_null = np.isnan(values)
                block = np.empty((len(values), 2), dtype=np.float32)
                block[:, 0] = np.where(is_null, 0.5, self.cdfs[column](np.where(is_null, 0.0, values)))
                block[:, 1] = is_null
            else:
                n_categories = len(self.categories[column])
                codes = category_codes(values, self.categories[column])
                codes[codes < 0] = n_categories
                codes[pd.isna(values)] = n_categories + 1
                block = np.zeros((len(values), n_categories + 2), dtype=np.float32)
                block[np.arange(len(values)), codes] = _ONE_HOT_SCALE
            blocks.append(block)
        return np.ascontiguousarray(np.hstack(blocks))

    def encode_units(self, frame: PreparedFrame) -> np.ndarray:
        """Encode rows (flat tables) or sequence profiles (sequences) as a float32 matrix."""
        rows = self.encode_rows(frame)
        if frame.lengths is None:
            return rows
        starts = np.cumsum(frame.lengths) - frame.lengths
        means = np.add.reduceat(rows.astype(np.float64), starts, axis=0) / frame.lengths[:, None]
        lengths = self.length_cdf(frame.lengths.astype(np.float64))[:, None]
        return np.ascontiguousarray(np.hstack([means, lengths]), dtype=np.float32)


def unit_hashes(frame: PreparedFrame) -> np.ndarray:
    """64-bit hash of each row (flat tables) or each whole sequence, steps in order.

    Equal hashes mean equal harmonised values (NULL equals NULL), up to negligible collision chance.
    """
    row_hashes = pd.util.hash_pandas_object(pd.DataFrame(frame.values), index=False).to_numpy()
    if frame.lengths is None:
        return row_hashes
    ids = frame.sequence_ids
    steps = np.arange(len(ids)) - (np.cumsum(frame.lengths) - frame.lengths)[ids]
    step_hashes = pd.util.hash_pandas_object(pd.DataFrame({"row": row_hashes, "step": steps}), index=False)
    starts = np.cumsum(frame.lengths) - frame.lengths
    # Summing with uint64 wrap-around combines the step hashes independently of summation order.
    sequence_hashes = np.add.reduceat(step_hashes.to_numpy(), starts)
    return pd.util.hash_pandas_object(
        pd.DataFrame({"steps": sequence_hashes, "length": frame.lengths}), index=False
    ).to_numpy()
