"""Pairs of sub-columns that code parts of one value, for the joint calibration of a sequential model.

A clock time is coded as an ``hour`` and a ``minute``, a digit-coded number as its digits, a datetime as its
year, month, day …: positional parts, most significant first. The value's distribution is their *joint*
distribution read in that order (a clock time's CDF at hh:mm is ``P(hour < hh) + P(hour = hh, minute ≤ mm)``),
but one calibration offset per code can fit only each part's marginal: the minute's share of 15 over all hours,
not how the minutes fall within each hour. Scheduled flight times cluster on particular minutes that differ by
hour (``sched_arr_time``: weighted total-variation distance 0.15 between the minutes of an hour and all minutes),
and a briefly trained network blurs that, which the value's KS distance reads directly (see
``docs/benchmarks.md``, issue 15, seventh round).

:func:`value_part_pairs` names every (parent, child) pair of consecutive value parts of a column, the flags
``nan`` and ``neg`` left out, whose joint table is small enough to calibrate; :class:`ValuePairs` lays their
``(parent cardinality, child cardinality)`` tables back to back in one flat buffer, counts code pairs into it,
and reads the tables back as views (see ``_calibration``).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from ._spec import ColumnSpec

__all__ = ["MAX_PAIR_CELLS", "ValuePairs", "value_part_pairs"]

# Sub-columns that flag a value instead of coding a part of it.
_FLAGS = ("nan", "neg")
# The largest joint table calibrated (a clock time: 25 hours x 60 minutes = 1,500 cells); a larger one would
# spread a pilot too thinly (about 70 pilot steps per cell at 100,000 steps). Changing it changes the size of the
# calibration buffers of saved models.
MAX_PAIR_CELLS = 2048


def value_part_pairs(columns: Sequence[ColumnSpec], max_cells: int = MAX_PAIR_CELLS) -> list[tuple[int, int]]:
    """The (parent, child) sub-column indices of consecutive value parts of each column.

    Parameters
    ----------
    columns : sequence of ColumnSpec
        The columns, their sub-columns numbered back to back in this order.
    max_cells : int, default=MAX_PAIR_CELLS
        The largest ``parent cardinality x child cardinality`` kept.

    Returns
    -------
    list of (int, int)
        In sub-column order; a child has exactly one parent (the part just before it).

    Examples
    --------
    >>> value_part_pairs([ColumnSpec("c", ("cat",), (4,)),
    ...                   ColumnSpec("t", ("nan", "hour", "minute"), (2, 24, 60))])
    [(2, 3)]
    """
    pairs, start = [], 0
    for column in columns:
        # sub-column names may carry the encoder's prefix ("tgt:c3__minute")
        parts = [start + i for i, name in enumerate(column.sub_columns) if name.rsplit("__", 1)[-1] not in _FLAGS]
        cards = dict(zip(range(start, start + column.n_sub_columns), column.cardinalities, strict=True))
        for parent, child in zip(parts, parts[1:], strict=False):
            if cards[parent] >= 2 and cards[child] >= 2 and cards[parent] * cards[child] <= max_cells:
                pairs.append((parent, child))
        start += column.n_sub_columns
    return pairs


@attrs.frozen
class ValuePairs:
    """The joint tables of value-part pairs, back to back in one flat vector of ``n_cells``.

    Parameters
    ----------
    pairs : sequence of (int, int)
        (parent, child) sub-column indices (:func:`value_part_pairs`).
    cardinalities : sequence of int
        Every sub-column's cardinality.
    """

    pairs: tuple[tuple[int, int], ...] = attrs.field(converter=lambda v: tuple((int(a), int(b)) for a, b in v))
    cardinalities: tuple[int, ...] = attrs.field(converter=lambda v: tuple(int(c) for c in v))

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """Per pair, ``(parent cardinality, child cardinality)``."""
        return [(self.cardinalities[a], self.cardinalities[b]) for a, b in self.pairs]

    @property
    def starts(self) -> list[int]:
        """Per pair, the first cell of its table in the flat vector."""
        sizes = [a * b for a, b in self.shapes]
        return [sum(sizes[:i]) for i in range(len(sizes))]

    @property
    def n_cells(self) -> int:
        return sum(a * b for a, b in self.shapes)

    def counts(self, steps: torch.Tensor) -> torch.Tensor:
        """``(n_cells,)`` int64: how often each (parent code, child code) occurs in the ``(n, n_sub_columns)``
        codes ``steps``; summable over parts of the data."""
        if not self.pairs:
            return torch.zeros(0, dtype=torch.long, device=steps.device)
        parents = torch.tensor([a for a, _ in self.pairs], device=steps.device)
        children = torch.tensor([b for _, b in self.pairs], device=steps.device)
        widths = torch.tensor([b for _, b in self.shapes], device=steps.device)
        starts = torch.tensor(self.starts, device=steps.device)
        index = starts + steps[:, parents].long() * widths + steps[:, children].long()
        return torch.bincount(index.reshape(-1), minlength=self.n_cells)

    def tables(self, flat: torch.Tensor) -> dict[int, tuple[int, torch.Tensor]]:
        """Per child sub-column, its parent and its ``(parent cardinality, child cardinality)`` view of
        ``flat``."""
        return {b: (a, flat[start : start + ka * kb].view(ka, kb))
                for (a, b), (ka, kb), start in zip(self.pairs, self.shapes, self.starts, strict=True)}
