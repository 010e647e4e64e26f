"""Turning one sub-column's logits into sampled codes: temperature, nucleus (top-p), fixed probabilities."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import attrs
import torch

__all__ = ["FixedProbabilities", "generator_on", "inverse_cdf_draw", "prepare_fixed_probs", "sample_categorical",
           "stratified_uniforms"]

TEMPERATURE_FLOOR = 1e-3
# Added before fixing probabilities so that codes the model rules out still share a zero-free remainder.
_PROB_EPSILON = 1e-20
# Whether one call's draws use stratified uniforms (see `stratified_uniforms`); `False` gives i.i.d. uniforms, the
# draws before issue 15's sixth round (kept for benchmarks/ablate_stratified_draws.py).
STRATIFIED_DRAWS = True


@attrs.frozen
class FixedProbabilities:
    """Probabilities forced onto some codes of one sub-column; the others share ``1 - sum(probs)``.

    Parameters
    ----------
    codes : torch.Tensor
        The fixed codes (int64, distinct).
    probs : torch.Tensor
        Their probabilities (float32, each in ``[0, 1]``).
    """

    codes: torch.Tensor
    probs: torch.Tensor
    # every fixed probability is zero (suppression only); known once here, not checked at every draw
    suppresses_only: bool = attrs.field(init=False, eq=False, repr=False)

    @suppresses_only.default
    def _all_zero(self) -> bool:
        return bool((self.probs == 0).all())

    def to(self, device: torch.device) -> FixedProbabilities:
        """The same probabilities on ``device``."""
        return FixedProbabilities(self.codes.to(device), self.probs.to(device))


def generator_on(generator: torch.Generator | None, device: torch.device) -> torch.Generator | None:
    """``generator`` if it lives on ``device``, else a generator there seeded from it (``None`` stays ``None``)."""
    if generator is None or generator.device.type == device.type:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def prepare_fixed_probs(
    fixed_probs: Mapping[int, Mapping[int, float]] | None, cardinalities: Sequence[int]
) -> dict[int, FixedProbabilities]:
    """Validate ``{sub_column: {code: prob}}`` and convert it to tensors.

    Parameters
    ----------
    fixed_probs : mapping or None
        Per sub-column index, the probability of each fixed code.
    cardinalities : sequence of int
        The cardinality of every sub-column.

    Returns
    -------
    dict of int to FixedProbabilities

    Raises
    ------
    ValueError
        If a sub-column or code is out of range, a probability is outside ``[0, 1]``, or the fixed
        probabilities of a sub-column add up to more than 1.
    """
    prepared: dict[int, FixedProbabilities] = {}
    for sub, probs in (fixed_probs or {}).items():
        sub = int(sub)
        if not 0 <= sub < len(cardinalities):
            raise ValueError(
                f"fixed_probs has sub-column {sub}, but the model has sub-columns 0..{len(cardinalities) - 1}."
            )
        card = cardinalities[sub]
        codes = [int(c) for c in probs]
        values = [float(p) for p in probs.values()]
        bad_codes = [c for c in codes if not 0 <= c < card]
        if bad_codes:
            raise ValueError(
                f"fixed_probs of sub-column {sub} has codes {bad_codes}, but its codes are 0..{card - 1}."
            )
        bad_probs = [p for p in values if not 0.0 <= p <= 1.0]
        if bad_probs:
            raise ValueError(
                f"fixed_probs of sub-column {sub} must be probabilities in [0, 1]; got {bad_probs}."
            )
        if math.fsum(values) > 1.0 + 1e-6:
            raise ValueError(
                f"fixed_probs of sub-column {sub} must add up to at most 1; got {math.fsum(values):.6g}."
            )
        if codes:
            prepared[sub] = FixedProbabilities(
                torch.tensor(codes, dtype=torch.long), torch.tensor(values, dtype=torch.float32)
            )
    return prepared


def _apply_top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    # Keep a code while the mass before it is below top_p: the smallest prefix reaching top_p, never empty.
    drop = (torch.cumsum(sorted_probs, dim=-1) - sorted_probs) >= top_p
    drop[:, 0] = False
    sorted_probs = sorted_probs.masked_fill(drop, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs)


def _apply_fixed(probs: torch.Tensor, fixed: FixedProbabilities) -> torch.Tensor:
    probs = probs + _PROB_EPSILON
    is_fixed = torch.zeros(probs.shape[-1], dtype=torch.bool, device=probs.device)
    is_fixed[fixed.codes] = True
    if bool(is_fixed.all()):
        if float(fixed.probs.sum()) <= 0.0:
            return torch.ones_like(probs)
        return fixed.probs.new_zeros(probs.shape[-1]).index_copy_(0, fixed.codes, fixed.probs).expand_as(probs)
    rest = probs.masked_fill(is_fixed, 0.0)
    remaining = max(0.0, 1.0 - float(fixed.probs.sum()))
    rest = rest * (remaining / rest.sum(dim=-1, keepdim=True))
    return rest.index_copy(1, fixed.codes, fixed.probs.expand(len(probs), -1).contiguous())


def sample_categorical(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    fixed: FixedProbabilities | None = None,
    generator: torch.Generator | None = None,
    reweight: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Draw one code per row from unnormalised log-probabilities.

    The steps follow the reference engine: temperature on the log-probabilities (floored at 1e-3), nucleus
    filtering, then fixed probabilities, then one inverse-CDF draw per row (:func:`inverse_cdf_draw`: stratified
    over the rows of the call, so each row's draw is exact and the codes' counts are close to their expectation).
    ``reweight`` (the fairness tilt) comes last, so it sees, and corrects, the distribution the other steps would
    draw from.

    Parameters
    ----------
    logits : torch.Tensor
        ``(n, cardinality)`` unnormalised log-probabilities.
    temperature : float, default=1.0
        Divides the log-probabilities; below 1 sharpens, above 1 flattens.
    top_p : float, default=1.0
        Keep the smallest set of most likely codes whose probability reaches ``top_p`` (at least one).
    fixed : FixedProbabilities or None
        Codes with forced probabilities; the other codes share the rest in proportion to the model.
    generator : torch.Generator or None
        The source of randomness.
    reweight : callable or None
        Maps the ``(n, cardinality)`` unnormalised weights to new non-negative weights before the draw.

    Returns
    -------
    torch.Tensor
        ``(n,)`` int64 codes.
    """
    # softmax(log p / T) equals softmax(logits / T): the normaliser of log p is a per-row constant.
    if temperature != 1.0:
        logits = logits / max(temperature, TEMPERATURE_FLOOR)
    # Unnormalised weights suffice for the inverse-CDF draw; normalise only where probabilities are compared.
    weights = torch.exp(logits - logits.amax(dim=-1, keepdim=True))
    if fixed is not None and fixed.suppresses_only and len(fixed.codes) < weights.shape[-1]:
        # Suppression only (e.g. rare tokens): zero those codes; the inverse-CDF draw needs no normalising.
        # The epsilon keeps a zero-free remainder when the model put all its mass on suppressed codes.
        weights = (weights + _PROB_EPSILON).index_fill_(-1, fixed.codes, 0.0)
        fixed = None
    if top_p < 1.0 or fixed is not None:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    if top_p < 1.0:
        weights = _apply_top_p(weights, top_p)
    if fixed is not None:
        weights = _apply_fixed(weights, fixed)
    if reweight is not None:
        weights = reweight(weights)
    return inverse_cdf_draw(weights, generator)


def stratified_uniforms(
    n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` uniforms in ``[0, 1)``, one in each of the strata ``[k / n, (k + 1) / n)`` in random order.

    ``u_i = (perm(i) + v_i) / n`` with a random permutation ``perm`` of ``0 .. n-1`` and i.i.d. ``v_i ~ U(0, 1)``
    (Latin-hypercube sampling in one dimension). Each ``u_i`` is exactly ``U(0, 1)`` and, the permutation being
    fresh, independent of everything drawn before, so an inverse-CDF draw with it has each row's conditional
    distribution unchanged; but the uniforms of one call cover ``[0, 1)`` evenly, so how often a code is drawn
    over the rows varies far less than with i.i.d. uniforms (when all rows share one distribution, the count of
    codes up to each code is within 1 of ``n`` times its cumulative probability, a single code's within 2).

    Parameters
    ----------
    n : int
        The number of uniforms.
    generator : torch.Generator or None
        The source of randomness (the permutation, then the offsets within the strata).
    device : torch.device, str or None
        Where the uniforms are made.
    dtype : torch.dtype, default=torch.float32
        Their floating-point type.

    Returns
    -------
    torch.Tensor
        ``(n,)`` uniforms, each below 1.
    """
    # float32 holds the stratum numbers exactly up to 2**24 (few ops: this runs once per sub-column and step)
    exact = dtype if n <= 2**24 else torch.float64
    uniforms = torch.randperm(n, generator=generator, device=device, dtype=exact)
    uniforms.add_(torch.rand(n, generator=generator, device=device, dtype=exact)).mul_(1.0 / max(n, 1))
    # below 1 as torch.rand's are: the top stratum's n - 1 + v can round up to n
    return uniforms.to(dtype).clamp_(max=1.0 - torch.finfo(dtype).eps / 2)


def inverse_cdf_draw(weights: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One code per row of ``(n, cardinality)`` non-negative weights, with probability proportional to them.

    The uniforms are :func:`stratified_uniforms` over the rows (i.i.d. when ``STRATIFIED_DRAWS`` is off): each
    row's draw is exact, and a code's count over the rows is close to its expected count. The codes keep their
    order in the CDF: for a binned numeric column, that makes the count of values up to each bin (what a KS
    distance compares) the stratified quantity.

    Parameters
    ----------
    weights : torch.Tensor
        ``(n, cardinality)`` non-negative weights, each row with a positive sum.
    generator : torch.Generator or None
        The source of randomness.

    Returns
    -------
    torch.Tensor
        ``(n,)`` int64 codes.
    """
    cdf = torch.cumsum(weights, dim=-1)
    if STRATIFIED_DRAWS:
        uniforms = stratified_uniforms(len(cdf), generator=generator, device=cdf.device, dtype=cdf.dtype)[:, None]
    else:
        uniforms = torch.rand((len(cdf), 1), generator=generator, device=cdf.device, dtype=cdf.dtype)
    codes = torch.searchsorted(cdf, uniforms * cdf[:, -1:], right=True).squeeze(1)
    return codes.clamp_(max=cdf.shape[1] - 1)
