"""One frame, sampled and harmonised, with its sequence layout for two-table target data."""

from __future__ import annotations

import numpy as np
import pandas as pd
from attrs import frozen

from synthgen.evaluation._columns import ColumnKind, ColumnValues, harmonize


@frozen(eq=False)
class PreparedFrame:
    """Harmonised column values of one frame.

    For sequences the rows are grouped by sequence (the frame's row order is kept within a sequence, so it
    must be the step order) and ``lengths`` holds the number of rows of each sequence in that order.

    Attributes
    ----------
    name : str
        "original", "synthetic" or "holdout", for messages.
    values : dict of str to numpy.ndarray
        Harmonised values per column (see ``_columns.harmonize``).
    lengths : numpy.ndarray or None
        Sequence lengths, or None for a flat table.
    """

    name: str
    values: dict[str, ColumnValues]
    lengths: np.ndarray | None

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(next(iter(self.values.values())))

    @property
    def n_units(self) -> int:
        """Number of sequences, or of rows for a flat table: the unit that privacy metrics compare."""
        return self.n_rows if self.lengths is None else len(self.lengths)

    def select(self, columns: list[str]) -> PreparedFrame:
        """The same rows with only ``columns`` (the tabular figures leave out the text columns)."""
        return PreparedFrame(self.name, {c: self.values[c] for c in columns}, self.lengths)

    @property
    def row_weights(self) -> np.ndarray | None:
        """``1 / sequence length`` per row, so that each sequence weighs the same; None for flat tables."""
        if self.lengths is None:
            return None
        return np.repeat(1.0 / self.lengths, self.lengths)

    @property
    def sequence_ids(self) -> np.ndarray:
        """Index of the sequence of each row."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)

    def consecutive_steps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row positions of every (step t, step t + 1) pair and pair weights.

        Each sequence with at least two steps weighs the same in total.
        """
        ids = self.sequence_ids
        first = np.flatnonzero(ids[1:] == ids[:-1])
        weights = 1.0 / (self.lengths[ids[first]] - 1)
        return first, first + 1, weights


def prepare_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    columns: list[str],
    kinds: dict[str, ColumnKind],
    context_key: str | None,
    max_units: int,
    rng: np.random.RandomState,
) -> PreparedFrame:
    """Sample at most ``max_units`` rows (flat) or sequences, and harmonise the columns.

    The sample is drawn without replacement; the frame is not modified.
    """
    if context_key is None:
        positions = np.arange(len(frame))
        if len(frame) > max_units:
            positions = np.sort(rng.choice(len(frame), size=max_units, replace=False))
        lengths = None
    else:
        sequence_of_row, keys = pd.factorize(frame[context_key], sort=False)
        n_sequences = len(keys)
        if n_sequences > max_units:
            kept = np.zeros(n_sequences, dtype=bool)
            kept[rng.choice(n_sequences, size=max_units, replace=False)] = True
            rows = np.flatnonzero(kept[sequence_of_row])
            sequence_of_row = np.unique(sequence_of_row[rows], return_inverse=True)[1]
        else:
            rows = np.arange(len(frame))
        # A stable sort groups the rows by sequence and keeps the frame's step order inside each sequence.
        order = np.argsort(sequence_of_row, kind="stable")
        positions = rows[order]
        lengths = np.bincount(sequence_of_row)
    subset = frame.iloc[positions]
    values = {c: harmonize(subset[c], kinds[c], column=c, frame=name) for c in columns}
    return PreparedFrame(name, values, lengths)
