"""Bucketed step positions: exact for the first steps, logarithmic beyond.

A sequence model needs to know how far into a sequence a step is and how many steps remain, but a table
with one row per possible position would be as long as the longest sequence and its rare rows would stay
untrained. Positions below :data:`EXACT_POSITIONS` keep their own bucket (the first and the last few steps
of a sequence often differ most); larger positions share :data:`BUCKETS_PER_OCTAVE` buckets per doubling.

Far from both ends those buckets say little about *where* in its span a step is, so the share of the sequence
already done is bucketed too, in equal buckets (:func:`progress_buckets`).
"""

from __future__ import annotations

import math

import torch

__all__ = ["BUCKETS_PER_OCTAVE", "EXACT_POSITIONS", "n_position_buckets", "position_buckets", "progress_buckets",
           "step_progress"]

EXACT_POSITIONS = 16
BUCKETS_PER_OCTAVE = 4


def n_position_buckets(max_position: int) -> int:
    """The number of buckets that positions ``0 .. max_position`` fall into.

    Examples
    --------
    >>> n_position_buckets(10), n_position_buckets(31), n_position_buckets(500)
    (11, 20, 36)
    """
    if max_position < EXACT_POSITIONS:
        return max(1, max_position + 1)
    return EXACT_POSITIONS + math.floor(BUCKETS_PER_OCTAVE * math.log2(max_position / EXACT_POSITIONS)) + 1


def position_buckets(positions: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """The bucket of every non-negative position, clipped to ``n_buckets - 1``.

    Parameters
    ----------
    positions : torch.Tensor
        Integer positions (any shape); larger than the table was built for is allowed.
    n_buckets : int
        :func:`n_position_buckets` of the largest position the table was built for.

    Returns
    -------
    torch.Tensor
        int64 bucket indices of the same shape.
    """
    positions = positions.long()
    scaled = positions.clamp(min=EXACT_POSITIONS).double() / EXACT_POSITIONS
    log_bucket = EXACT_POSITIONS + torch.floor(BUCKETS_PER_OCTAVE * torch.log2(scaled)).long()
    buckets = torch.where(positions < EXACT_POSITIONS, positions, log_bucket)
    return buckets.clamp_(0, n_buckets - 1)


def progress_buckets(done: torch.Tensor, lengths: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """The equal-width bucket of the share ``done / lengths`` of every step (``done < lengths``, so below 1).

    Parameters
    ----------
    done : torch.Tensor
        Steps already done (broadcastable against ``lengths``).
    lengths : torch.Tensor
        The sequences' lengths; a zero length counts as one.
    n_buckets : int
        The number of buckets.

    Returns
    -------
    torch.Tensor
        int64 bucket indices in ``0 .. n_buckets - 1``.

    Examples
    --------
    >>> progress_buckets(torch.tensor([0, 5, 9]), torch.tensor([10, 10, 10]), 20).tolist()
    [0, 10, 18]
    """
    share = torch.div(done.long() * n_buckets, lengths.long().clamp(min=1), rounding_mode="floor")
    return share.clamp_(0, n_buckets - 1)


def step_progress(lengths: torch.Tensor, n_buckets: int) -> torch.Tensor:
    """The :func:`progress_buckets` bucket of every step of sequences of ``lengths``, stored back to back.

    Examples
    --------
    >>> step_progress(torch.tensor([4, 1]), 2).tolist()
    [0, 0, 1, 1, 0]
    """
    lengths = lengths.long()
    starts = lengths.cumsum(0) - lengths
    done = torch.arange(int(lengths.sum()), device=lengths.device) - starts.repeat_interleave(lengths)
    return progress_buckets(done, lengths.repeat_interleave(lengths), n_buckets)
