"""Differentially private mechanisms for the statistics of analyze.

Every mechanism here sees at most one value per subject (analyze picks one row per subject), so adding or
removing a subject changes each histogram count by at most 1 and every histogram as a whole by at most 1 in L1.

- :func:`threshold_categories`: the values whose Laplace-noised subject count clears
  ``tau = 1 + ln(1 / (2 delta)) / epsilon``. Only values present in the data are noised, so a value held by
  one subject is released with probability at most ``delta`` (``1/2 * exp(-(tau - 1) * epsilon)``): the
  mechanism is (epsilon, delta)-DP (stability-based histogram).
- :func:`exponential_rank`: a cell of a fixed, data-independent :class:`ValueGrid` around the ``k``-th smallest
  value, by the exponential mechanism with utility ``-distance(k, ranks in the cell)`` (sensitivity 1), so
  probabilities ``∝ exp(epsilon * utility / 2)``; pure epsilon-DP. (The reference engine's quantiles use
  ``exp(epsilon * utility)`` and so spend twice what they report.)
- :func:`noisy_histogram`: Laplace counts on every cell of a fixed grid (pure epsilon-DP); quantiles and finest
  classes are read off it as post-processing.

Randomness comes from the ``numpy.random.Generator`` passed in (analyze derives it from ``random_state``).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

__all__ = [
    "ValueGrid",
    "bound_rank",
    "bounds_feasible",
    "dp_bounds",
    "dp_lower_bound",
    "dp_upper_bound",
    "exponential_rank",
    "finest_class",
    "histogram_quantiles",
    "log_grid",
    "noisy_histogram",
    "threshold",
    "threshold_categories",
]

# The bounds aim this many "failure" units inside the data: the chance that a released bound lies beyond the
# data's own extreme is at most n_cells * exp(-epsilon * k / 2), i.e. BOUND_FAILURE at the chosen rank k.
BOUND_FAILURE = 1e-6


def threshold(epsilon: float, delta: float, contributions: int = 1) -> float:
    """The release threshold of :func:`threshold_categories`: ``1 + ln(1 / (2 delta)) / epsilon`` when a subject
    holds one key, ``1 + m ln(m / (2 delta)) / epsilon`` when it holds up to ``m`` keys."""
    m = contributions
    return 1.0 + m * math.log(m / (2.0 * delta)) / epsilon


def threshold_categories(counts: dict, epsilon: float, delta: float, rng: np.random.Generator,
                         contributions: int = 1) -> tuple[list, np.ndarray]:
    """The keys of ``counts`` (subjects per key) whose noisy count clears the threshold.

    A subject holds at most ``contributions`` distinct keys (1 for a value per subject; the positions of a string),
    so the noise has scale ``contributions / epsilon`` (L1 sensitivity) and each of a new subject's keys clears the
    threshold with probability at most ``delta / contributions``. Returns the released keys (in the order of
    ``counts``) and their noisy counts.
    """
    keys = list(counts)
    if not keys:
        return [], np.array([], dtype=np.float64)
    true = np.fromiter(counts.values(), dtype=np.float64, count=len(keys))
    noisy = true + rng.laplace(0.0, contributions / epsilon, size=len(keys))
    keep = noisy >= threshold(epsilon, delta, contributions)
    return [key for key, kept in zip(keys, keep, strict=True) if kept], noisy[keep]


@attrs.frozen
class ValueGrid:
    """A fixed, data-independent partition of the real line into cells ``[edges[i], edges[i+1])``.

    Values below the first edge fall into the first cell, values from the last edge on into the last one.
    """

    edges: np.ndarray

    @property
    def n_cells(self) -> int:
        return len(self.edges) - 1

    def cells(self, values: np.ndarray) -> np.ndarray:
        """The cell of every value (exact comparisons with the edges)."""
        index = np.searchsorted(self.edges, np.asarray(values, dtype=np.float64), side="right") - 1
        return np.clip(index, 0, self.n_cells - 1)

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Values per cell (a mergeable partial: partitions add up)."""
        return np.bincount(self.cells(values), minlength=self.n_cells).astype(np.int64)


def log_grid(max_exponent: int = 64, per_octave: int = 256) -> ValueGrid:
    """Cells of equal width in ``sign(x) * log2(1 + |x|)``: about 0.3 % of ``1 + |x|`` wide, for ``|x| < 2**64``."""
    y = np.linspace(-max_exponent, max_exponent, 2 * max_exponent * per_octave + 1)
    edges = np.sign(y) * np.expm1(np.abs(y) * math.log(2.0))
    edges[len(edges) // 2] = 0.0
    return ValueGrid(np.unique(edges))


def exponential_rank(counts: np.ndarray, rank: float, epsilon: float, rng: np.random.Generator) -> int:
    """A cell drawn by the exponential mechanism around the ``rank``-th smallest value (0-based ranks).

    The utility of cell ``c`` is minus the distance from ``rank`` to the ranks ``[below(c), below(c+1))`` of the
    values in it (zero for the cell holding that value); adding or removing one value moves it by at most 1.
    """
    below = np.concatenate([[0], np.cumsum(counts)])
    low, high = below[:-1], below[1:]
    distance = np.where(rank < low, low - rank, np.where(rank >= high, rank - high + 1, 0))
    scores = -epsilon * distance.astype(np.float64) / 2.0 + rng.gumbel(size=len(counts))  # Gumbel-max sampling
    return int(np.argmax(scores))


def _wanted_rank(n_cells: int, epsilon: float) -> int:
    return math.ceil(2.0 * math.log(n_cells / BOUND_FAILURE) / epsilon)


def bound_rank(n_subjects: int, n_cells: int, epsilon: float) -> int:
    """The rank (from each end) that :func:`dp_bounds` aims at: far enough inside that a bound beyond the data
    has probability at most ``BOUND_FAILURE``, at most a quarter of the subjects in."""
    return int(max(0, min(_wanted_rank(n_cells, epsilon), (n_subjects - 1) // 4)))


def bounds_feasible(n_subjects: int, n_cells: int, epsilon: float) -> bool:
    """Whether :func:`dp_bounds` with ``epsilon`` per bound keeps the ``BOUND_FAILURE`` guarantee for
    ``n_subjects`` (a public count): its rank fits inside the first quarter of the subjects."""
    return _wanted_rank(n_cells, epsilon) <= (n_subjects - 1) // 4


def dp_lower_bound(grid: ValueGrid, counts: np.ndarray, rank: int, epsilon: float, rng: np.random.Generator,
                   *, exact: bool = False) -> float:
    """The upper edge of the cell drawn around the ``rank``-th smallest value (its lower edge on an ``exact`` grid,
    whose cells hold one value each): at or above the data's minimum unless the drawn cell lies below every value."""
    cell = exponential_rank(counts, rank, epsilon, rng)
    return float(grid.edges[cell if exact else cell + 1])


def dp_upper_bound(grid: ValueGrid, counts: np.ndarray, rank: int, epsilon: float, rng: np.random.Generator,
                   *, exact: bool = False) -> float:
    """The lower edge of the cell drawn around the ``rank``-th largest value: at or below the data's maximum
    unless the drawn cell lies above every value."""
    cell = grid.n_cells - 1 - exponential_rank(counts[::-1], rank, epsilon, rng)
    return float(grid.edges[cell])


def dp_bounds(grid: ValueGrid, counts: np.ndarray, epsilon_low: float, epsilon_high: float, n_subjects: int,
              rng: np.random.Generator, *, exact: bool = False) -> tuple[float, float, int]:
    """DP lower and upper bounds and the rank ``k`` (from each end) they aimed at.

    ``counts`` are the cell counts of one value per subject; ``n_subjects`` (public) sets ``k`` by
    :func:`bound_rank`, so a bound lies beyond the data's extreme with probability at most
    ``n_cells * exp(-epsilon * k / 2)``. Bounds that cross (very few values) collapse onto their middle.
    """
    k = bound_rank(n_subjects, grid.n_cells, min(epsilon_low, epsilon_high))
    low = dp_lower_bound(grid, counts, k, epsilon_low, rng, exact=exact)
    high = dp_upper_bound(grid, counts, k, epsilon_high, rng, exact=exact)
    if low > high:
        low = high = (low + high) / 2.0
    return low, high, k


def noisy_histogram(counts: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Laplace counts (scale ``1 / epsilon``) on every cell, negatives set to zero."""
    return np.maximum(counts + rng.laplace(0.0, 1.0 / epsilon, size=len(counts)), 0.0)


def histogram_quantiles(grid: ValueGrid, noisy: np.ndarray, low: float, high: float, n_quantiles: int) -> np.ndarray:
    """``n_quantiles`` evenly spaced quantiles of a noisy histogram restricted to ``[low, high]`` (post-processing).

    Mass is spread evenly inside each cell; without any mass the quantiles are evenly spaced in ``[low, high]``.
    """
    first, last = grid.cells(np.array([low, high]))
    weights = noisy[first:last + 1].astype(np.float64)
    edges = np.clip(grid.edges[first:last + 2], low, high)
    if weights.sum() <= 0 or high <= low:
        return np.linspace(low, high, n_quantiles)
    cdf = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum()
    return np.clip(np.interp(np.linspace(0.0, 1.0, n_quantiles), cdf, edges), low, high)


def finest_class(counts: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """The smallest class index whose Laplace count clears ``ln(n_classes / BOUND_FAILURE) / epsilon``, else the
    class of the largest noisy count; every class is noised, so this is pure epsilon-DP."""
    noisy = counts + rng.laplace(0.0, 1.0 / epsilon, size=len(counts))
    cleared = np.flatnonzero(noisy >= math.log(len(counts) / BOUND_FAILURE) / epsilon)
    return int(cleared[0]) if len(cleared) else int(np.argmax(noisy))
