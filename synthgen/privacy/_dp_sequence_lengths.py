"""Differentially private sequence lengths of two-table data: the bounds and median of the events per subject.

The lengths are whole numbers searched on a grid of one cell per length, from 0 to a public maximum: the
user's declared ``max_sequence_length``, else 65,536. When the budget is too small for the exponential mechanism
to keep the bounds inside the data, the upper bound may land anywhere on that grid; a sequential model whose
sequences may be 65,536 events long is unusable, so that case is refused before anything is read unless a
maximum is declared (which caps it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._user_warnings import warn
from ..domain import MAX_SEQUENCE_LENGTH_LIMIT
from ._dp_mechanisms import ValueGrid, bounds_feasible, dp_bounds, exponential_rank
from ._dp_statistics import ColumnBudget

__all__ = ["DEFAULT_MAX_SEQUENCE_LENGTH", "check_sequence_length_budget", "dp_sequence_length_stats"]

# the grid's end without a declared maximum (and the largest maximum one may declare)
DEFAULT_MAX_SEQUENCE_LENGTH = MAX_SEQUENCE_LENGTH_LIMIT

# the shares of the sequence lengths' epsilon
_BOUND_SHARE, _MEDIAN_SHARE = 0.3, 0.4


def _grid(max_sequence_length: int | None) -> ValueGrid:
    # one cell per length 0..top, the last one [top, inf): a bound can be the maximum itself
    top = DEFAULT_MAX_SEQUENCE_LENGTH if max_sequence_length is None else int(max_sequence_length)
    return ValueGrid(np.arange(0, top + 2, dtype=np.float64))


def _feasible(epsilon: float, n_subjects: int, max_sequence_length: int | None) -> bool:
    return bounds_feasible(n_subjects, _grid(max_sequence_length).n_cells, _BOUND_SHARE * epsilon)


def check_sequence_length_budget(epsilon: float, n_subjects: int, max_sequence_length: int | None) -> None:
    """Refuse, from public facts only, a budget that cannot bound the sequence lengths of a sequential model.

    Raises
    ------
    ValueError
        If ``epsilon`` (the sequence lengths' share) is too small for ``n_subjects`` to keep the bounds inside
        the data and no ``max_sequence_length`` caps them.
    """
    if max_sequence_length is None and not _feasible(epsilon, n_subjects, None):
        raise ValueError(
            f"the sequence lengths get an epsilon of {_BOUND_SHARE * epsilon:.3g} per bound, too small to find "
            f"bounds inside the data of {n_subjects} subjects: the upper bound could reach "
            f"{DEFAULT_MAX_SEQUENCE_LENGTH:,} events per sequence. Declare the public maximum number of events per "
            "subject (differential_privacy={..., 'max_sequence_length': n}; longer sequences are cut to it), or "
            "raise epsilon or stats_share.")


def dp_sequence_length_stats(lengths: np.ndarray, budget: ColumnBudget, n_subjects: int, rng: np.random.Generator,
                             *, max_sequence_length: int | None = None) -> dict[str, Any]:
    """Sequence-length bounds (0.3 of the unit's epsilon each) and median (0.4) by the exponential mechanism; a
    subject has one length, so each count changes by at most 1.

    Lengths above a declared ``max_sequence_length`` count as that maximum (clipping, one count per subject as
    before), so neither bound nor median can exceed it.
    """
    grid = _grid(max_sequence_length)
    if max_sequence_length is not None:
        budget.spend("declared maximum (sequence length)", 0.0)
    counts = grid.counts(np.asarray(lengths, dtype=np.float64))  # lengths above the maximum fall in its cell
    if not _feasible(budget.epsilon, n_subjects, max_sequence_length):
        cap = ("" if max_sequence_length is None
               else f" (at most the declared max_sequence_length {int(max_sequence_length)})")
        warn(f"Under differential privacy the sequence lengths get an epsilon of "
             f"{_BOUND_SHARE * budget.epsilon:.3g} per bound, too small for {n_subjects} subjects to keep the bounds "
             f"inside the data: they may be wider than the data's{cap}. Raise epsilon or stats_share.")
    low_epsilon = budget.spend("exponential mechanism (sequence length lower bound)", _BOUND_SHARE * budget.epsilon)
    high_epsilon = budget.spend("exponential mechanism (sequence length upper bound)", _BOUND_SHARE * budget.epsilon)
    low, high, _ = dp_bounds(grid, counts, low_epsilon, high_epsilon, n_subjects, rng, exact=True)
    median_cell = exponential_rank(counts, (n_subjects - 1) / 2,
                                   budget.spend("exponential mechanism (sequence length median)",
                                                _MEDIAN_SHARE * budget.epsilon), rng)
    low, high = int(low), int(high)
    median = int(min(max(grid.edges[median_cell], low), high))
    return {"min": low, "max": high, "median": median, "value_protection": False}
