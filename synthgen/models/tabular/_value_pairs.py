"""Pairs of sub-columns that code parts of one value, for the joint calibration of a sequential model.

A clock time (``dep_time`` 1517 = 15:17) is coded as an ``hour`` and a ``minute`` (:mod:`synthgen.column_encodings.
_numeric_clock`). Its distribution is their *joint* distribution read in that order (the CDF at hh:mm is
``P(hour < hh) + P(hour = hh, minute ≤ mm)``), but one calibration offset per code can fit only each part's
marginal: the minute's share of :15 over all hours, not how the minutes fall within each hour. Scheduled flight
times cluster on particular minutes that differ by hour (``sched_arr_time``: weighted total-variation distance
0.15 between the minutes of an hour and all minutes), a briefly trained network blurs that, and the value's KS
distance reads it directly (``docs/benchmarks.md``, issue 15, seventh round).

:func:`value_part_pairs` names the (hour, minute) sub-column pair of every clock column; :class:`ValuePairs` lays
their ``(hours, minutes)`` tables back to back in one flat buffer, counts code pairs into it, and reads the tables
back as views (see ``_calibration``). Other positional codings (a number's digits, a datetime's parts) are left
out: calibrating them jointly too (``air_time``'s digits, ``time_hour``'s month → day → hour on flights) lowered
the overall accuracy and coherence by 0.15-0.25 points with no KS gain that a target needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from ._spec import ColumnSpec

__all__ = ["ValuePairs", "value_part_pairs"]

# Sub-columns that flag a value instead of coding a part of it.
_FLAGS = ("nan", "neg")
_CLOCK_PARTS = ["hour", "minute"]


def value_part_pairs(columns: Sequence[ColumnSpec]) -> list[tuple[int, int]]:
    """The (hour, minute) sub-column indices of each clock column: a column whose value parts (its sub-columns
    but the ``nan`` flag) are exactly an ``hour`` and a ``minute``.

    Parameters
    ----------
    columns : sequence of ColumnSpec
        The columns, their sub-columns numbered back to back in this order (names may carry the encoder's
        prefix, ``"tgt:c3__minute"``).

    Returns
    -------
    list of (int, int)
        (parent, child) pairs in sub-column order.

    Examples
    --------
    >>> value_part_pairs([ColumnSpec("c", ("cat",), (4,)),
    ...                   ColumnSpec("t", ("nan", "hour", "minute"), (2, 24, 60)),
    ...                   ColumnSpec("d", ("year", "month", "day", "hour", "minute"), (2, 12, 31, 24, 60))])
    [(2, 3)]
    """
    pairs, start = [], 0
    for column in columns:
        parts = [(start + i, name.rsplit("__", 1)[-1]) for i, name in enumerate(column.sub_columns)]
        parts = [(index, name) for index, name in parts if name not in _FLAGS]
        if [name for _, name in parts] == _CLOCK_PARTS:
            pairs.append((parts[0][0], parts[1][0]))
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
