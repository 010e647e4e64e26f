"""Smoothed sequence-length targets for the length head.

A categorical head over every length ``0..max_len`` trained on exact lengths learns the training histogram
spike by spike: with a few thousand entities and hundreds of possible lengths, most lengths occur only a
few times, so synthetic entities get training entities' exact lengths (on planes/flights, lengths drawn
from the training histogram alone are closer to a training plane than to a holdout plane 53 % of the time,
against 51.5 % for smoothed lengths). The head is therefore trained towards a shrunken target: the length
``L`` of a subject becomes

    (1 - s) * onehot(L) + s * kernel(L),     s = SHRINKAGE / (SHRINKAGE + count(L)),

where ``count(L)`` is the number of training subjects of length ``L`` and ``kernel(L)`` a Gaussian of width
``BANDWIDTH`` in ``log(1 + length)``. Lengths shared by many subjects (a panel of 12 monthly rows each) stay
exact; lengths of a handful of subjects are spread over about ±5 % of their value. The kernel is narrow for
short sequences: lengths up to 4 keep more than 99.8 % of their weight.
"""

from __future__ import annotations

import torch

__all__ = ["BANDWIDTH", "SHRINKAGE", "LengthSmoother"]

BANDWIDTH = 0.05
# Subjects a length needs to keep half of its weight (a length of 20 subjects is no longer identifying).
SHRINKAGE = 20.0
# Rows of kernel weights built at once when summing the targets of many subjects.
_ROWS_PER_CHUNK = 1024


class LengthSmoother:
    """Length targets shrunk towards a kernel-smoothed histogram; see the module docstring.

    Parameters
    ----------
    lengths : torch.Tensor
        ``(n_subjects,)`` training lengths; values above ``max_len`` count as ``max_len``.
    max_len : int
        The largest length the head produces.
    bandwidth, shrinkage : float
        The kernel width in ``log(1 + length)`` and the shrinkage count; either 0 gives exact targets.
    """

    def __init__(
        self, lengths: torch.Tensor, max_len: int, bandwidth: float = BANDWIDTH, shrinkage: float = SHRINKAGE
    ) -> None:
        self.max_len = max_len
        self.bandwidth = bandwidth
        counts = torch.bincount(lengths.long().clamp(0, max_len), minlength=max_len + 1).double()
        self.lengths = lengths
        smoothing = bandwidth > 0 and shrinkage > 0
        self.spread = shrinkage / (shrinkage + counts) if smoothing else torch.zeros_like(counts)

    def targets(self, lengths: torch.Tensor) -> torch.Tensor:
        """The ``(n, max_len + 1)`` float32 target distributions of ``n`` lengths (rows sum to 1)."""
        lengths = lengths.long().clamp(0, self.max_len)
        exact = torch.nn.functional.one_hot(lengths, self.max_len + 1).float()
        spread = self.spread.to(lengths.device)[lengths].float()[:, None]
        if not bool(spread.any()):
            return exact
        grid = torch.arange(self.max_len + 1, device=lengths.device, dtype=torch.float32).log1p()
        offset = (grid[None, :] - lengths.float().log1p()[:, None]) / self.bandwidth
        kernel = torch.exp(-0.5 * offset.square())
        kernel /= kernel.sum(dim=1, keepdim=True)
        return torch.lerp(exact, kernel, spread)

    def histogram(self) -> torch.Tensor:
        """The ``(max_len + 1,)`` float64 sum of the training subjects' targets."""
        distinct, counts = torch.unique(self.lengths.long().clamp(0, self.max_len), return_counts=True)
        histogram = torch.zeros(self.max_len + 1, dtype=torch.float64, device=distinct.device)
        for start in range(0, len(distinct), _ROWS_PER_CHUNK):
            rows = self.targets(distinct[start : start + _ROWS_PER_CHUNK]).double()
            histogram += counts[start : start + _ROWS_PER_CHUNK].double() @ rows
        return histogram
