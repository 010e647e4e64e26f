"""A differentially private start for the output biases of a flat TabularARGN.

Without DP the output biases start at the exact log-frequencies of the training codes (the model then starts
from the marginals). Under DP they start from noisy counts instead: the Gaussian mechanism on the histograms of
all sub-columns at once. A row adds one to exactly one bin of every sub-column's histogram, so the L2
sensitivity of the whole set is ``sqrt(n_sub_columns)``, and noise of standard deviation
``noise_multiplier * sqrt(n_sub_columns)`` per bin makes the release a Gaussian mechanism of that noise
multiplier: for the accountant one step ``(noise_multiplier, sample_rate=1, steps=1)``, composed with the
DP-SGD steps in the same history (so the ledger line covers both).

The released noisy counts (clamped at zero) are kept in the model's ``marginal_counts``, with the noise's standard
deviation in ``marginal_noise_std``: the marginal calibration of generation (:mod:`synthgen.models.tabular.
_calibration`) targets them, which is post-processing of this release and costs no further epsilon. The exact
counts are never stored.
"""

from __future__ import annotations

import math

import torch

__all__ = ["init_private_output_bias"]


@torch.no_grad()
def init_private_output_bias(model, codes: torch.Tensor, noise_multiplier: float,
                             generator: torch.Generator | None) -> None:
    """Set the output biases of a :class:`~synthgen.models.tabular.FlatARGN` to noisy log-frequencies.

    Parameters
    ----------
    model : FlatARGN
    codes : torch.Tensor
        ``(n, n_sub_columns)`` training codes.
    noise_multiplier : float
        Noise standard deviation per bin divided by the L2 sensitivity ``sqrt(n_sub_columns)``.
    generator : torch.Generator or None
        On the device of ``codes``.
    """
    cards = model.spec.cardinalities
    offsets = model.embedder.offsets.to(codes.device)
    counts = torch.bincount((codes.long() + offsets).reshape(-1), minlength=sum(cards)).double()
    std = noise_multiplier * math.sqrt(len(cards))
    counts += torch.normal(0.0, std, size=counts.shape, generator=generator, device=counts.device,
                           dtype=counts.dtype)
    counts.clamp_(min=0.0)
    model.marginal_counts.copy_(counts.to(model.marginal_counts.device))
    model.marginal_noise_std.fill_(std)
    for group, bias in zip(model.spec.output_groups, model.out_biases, strict=True):
        for j, s in enumerate(group):
            start, k = int(offsets[s]), cards[s]
            part = counts[start : start + k]
            freq = (part + 1.0) / (part.sum() + k)  # the noisy total, never the exact row count
            bias[j, 0, :k] = freq.log().to(bias)
