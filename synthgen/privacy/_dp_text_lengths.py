"""Differentially private text lengths of ``LANGUAGE_TEXT`` columns: the longest length and the mean length.

The lengths are whole numbers of characters counted on a grid of one cell per length, from 0 to 65,536 (the
partials, which do not know the configuration; longer texts count as 65,536); the search runs up to a public maximum: the user's declared
``max_text_length`` (longer texts count as it), else 65,536. The published upper bound is the column's
``nchar_max``: texts are cut to it when encoded and a language model gets ``4 * nchar_max`` tokens per text
(UTF-8 bytes), so when the budget is too small for the exponential mechanism to keep the bound inside the data
(it could land anywhere up to 65,536 characters), that case is refused before anything is read unless a maximum
is declared (which caps it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..domain import MAX_TEXT_LENGTH_LIMIT
from ._dp_mechanisms import ValueGrid, bound_rank, bounds_feasible, dp_upper_bound

if TYPE_CHECKING:
    from ._dp_statistics import ColumnBudget

__all__ = ["DEFAULT_MAX_TEXT_LENGTH", "check_text_length_budget", "dp_text_lengths", "text_length_counts"]

# the grid's end without a declared maximum (and the largest maximum one may declare)
DEFAULT_MAX_TEXT_LENGTH = MAX_TEXT_LENGTH_LIMIT

# the shares of a text column's epsilon: the upper bound, the clipped sum of lengths and the count of texts
_BOUND_SHARE, _SUM_SHARE, _COUNT_SHARE = 0.5, 0.25, 0.25



def _grid(top: int) -> ValueGrid:
    # one cell per length 0..top, the last one [top, inf): a bound can be top itself
    return ValueGrid(np.arange(0, top + 2, dtype=np.float64))


# the partials' grid: whole characters up to the largest declarable maximum
_PARTIAL_GRID = _grid(DEFAULT_MAX_TEXT_LENGTH)


def _top(max_text_length: int | None) -> int:
    return DEFAULT_MAX_TEXT_LENGTH if max_text_length is None else int(max_text_length)


def _feasible(epsilon: float, n_subjects: int, max_text_length: int | None) -> bool:
    return bounds_feasible(n_subjects, _top(max_text_length) + 1, _BOUND_SHARE * epsilon)


def text_length_counts(lengths: np.ndarray) -> np.ndarray:
    """Texts per length, 0 to 65,536 characters (longer ones count as 65,536): a mergeable partial."""
    return _PARTIAL_GRID.counts(np.asarray(lengths, dtype=np.float64))


def check_text_length_budget(epsilon: float, n_subjects: int, max_text_length: int | None, column: str) -> None:
    """Refuse, from public facts only, a budget that cannot bound the lengths of the texts of ``column``.

    Raises
    ------
    ValueError
        If ``epsilon`` (the column's share) is too small for ``n_subjects`` to keep the upper bound inside the
        data and no ``max_text_length`` caps it.
    """
    if max_text_length is None and not _feasible(epsilon, n_subjects, None):
        raise ValueError(
            f"the LANGUAGE_TEXT column {column!r} gets an epsilon of {_BOUND_SHARE * epsilon:.3g} for the upper bound "
            f"of its text lengths, too small to find a bound inside the data of {n_subjects} subjects: it could "
            f"reach {DEFAULT_MAX_TEXT_LENGTH:,} characters per text. Declare the public maximum number of characters "
            "per text (differential_privacy={..., 'max_text_length': n}; longer texts are cut to it), or raise "
            "epsilon or stats_share.")


def dp_text_lengths(counts: np.ndarray, budget: ColumnBudget, n_subjects: int, rng: np.random.Generator, *,
                    max_text_length: int | None = None) -> tuple[int, float]:
    """The longest length (an upper bound by the exponential mechanism, 0.5 of the column's epsilon) and the mean
    length (a Laplace sum of the lengths clipped to that bound, 0.25, over a Laplace count of the texts, 0.25).

    ``counts`` are the merged :func:`text_length_counts`. Lengths above a declared ``max_text_length`` count as
    that maximum (one count per subject as before), so the bound cannot exceed it; a note in ``budget.notes``
    says when the budget is too small to keep the bound inside the data (checked from public facts only).
    """
    top = _top(max_text_length)
    if max_text_length is not None:
        budget.spend("declared maximum (text length)", 0.0)
    counts = np.concatenate([counts[:top], [counts[top:].sum()]]).astype(np.int64)
    grid = _grid(top)
    if not _feasible(budget.epsilon, n_subjects, max_text_length):
        cap = "" if max_text_length is None else f" (at most the declared max_text_length {top})"
        budget.notes.append(
            f"under differential privacy the upper bound of its text lengths gets an epsilon of "
            f"{_BOUND_SHARE * budget.epsilon:.3g}, too small for {n_subjects} subjects to keep it inside the data: "
            f"texts may be cut to and generated with more characters than the data's longest{cap}. Raise epsilon "
            "or stats_share.")
    rank = bound_rank(n_subjects, grid.n_cells, _BOUND_SHARE * budget.epsilon)
    high = dp_upper_bound(grid, counts, rank, budget.spend("exponential mechanism (upper bound)",
                                                           _BOUND_SHARE * budget.epsilon), rng, exact=True)
    limit = max(int(high), 1)
    clipped_sum = float(np.minimum(np.arange(len(counts)), limit) @ counts)
    noisy_sum = clipped_sum + rng.laplace(0.0, limit / budget.spend("laplace sum (text length)",
                                                                    _SUM_SHARE * budget.epsilon))
    noisy_count = counts.sum() + rng.laplace(0.0, 1.0 / budget.spend("laplace count (text values)",
                                                                     _COUNT_SHARE * budget.epsilon))
    return limit, float(np.clip(noisy_sum / max(noisy_count, 1.0), 1.0, limit))
