"""Turning one sub-column's logits into sampled codes: temperature, nucleus (top-p), fixed probabilities."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import attrs
import numpy as np
import torch

__all__ = ["FixedProbabilities", "generator_on", "inverse_cdf_draw", "prepare_fixed_probs", "sample_categorical",
           "sorted_block_uniforms", "stratified_uniforms"]

TEMPERATURE_FLOOR = 1e-3
# Added before fixing probabilities so that codes the model rules out still share a zero-free remainder.
_PROB_EPSILON = 1e-20
# Whether one call's draws use stratified uniforms (see `stratified_uniforms`); `False` gives i.i.d. uniforms, the
# draws before issue 15's sixth round (kept for benchmarks/ablate_stratified_draws.py).
STRATIFIED_DRAWS = True
# Whether the draws that ask for it (`sort_rows`: a sequence step's subjects, their lengths) stratify within blocks
# of rows with similar distributions (see `sorted_block_uniforms`); `False` gives the sixth round's plain
# stratified uniforms (for the seventh round's ablation in benchmarks/ablate_stratified_draws.py). Only read when
# `STRATIFIED_DRAWS` is on.
SORTED_BLOCK_DRAWS = True
# Rows per block: small enough that a block's rows have similar distributions once sorted, large enough to
# stratify each of them finely (16 and 64 measured alike in simulation; see docs/benchmarks.md, seventh round).
SORT_BLOCK_ROWS = 16
# Calls with fewer rows keep `stratified_uniforms`: sorting costs about as much for 50 rows as for thousands, and
# the few subjects left in a sequence's last steps are about 1 % of the rows (flights).
SORT_MIN_ROWS = 4 * SORT_BLOCK_ROWS


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
    sort_rows: bool = False,
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
    sort_rows : bool, default=False
        Stratify within blocks of rows with similar distributions (see :func:`inverse_cdf_draw`): for rows whose
        distributions differ widely (the subjects of a sequence step).

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
    return inverse_cdf_draw(weights, generator, sort_rows=sort_rows)


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


def sorted_block_uniforms(
    keys: torch.Tensor, *, block: int = SORT_BLOCK_ROWS, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """One uniform per row, stratified over all rows and within blocks of rows with nearby ``keys``.

    Stratified uniforms (:func:`stratified_uniforms`) keep a code's count close to its expectation only when the
    rows share one distribution: in a random order, the strata of rows with different distributions are
    unrelated, and the rows of a sequence step (different subjects) gain little. Here the rows are ranked by a 1-D
    summary of their distribution (``keys``) and cut into consecutive blocks of ``block`` ranks, and the ``m =
    blocks * block`` strata ``[s / m, (s + 1) / m)`` are dealt so that

    - each stratum goes to at most one row (every one of them when ``block`` divides ``n``), as before; and
    - each block gets exactly one stratum in each coarse stratum ``[g / block, (g + 1) / block)``,

    an orthogonal-array-based Latin hypercube in (rank, uniform). Rows with similar distributions then see evenly
    spread uniforms, so the count of each code over a block tracks the sum of the block's probabilities, however
    much the distributions differ between blocks (the residual is each block's rounding, not each row's).

    The rank ``r = B * block + j`` (block ``B``, place ``j``) gets the coarse stratum ``g = rev(j) XOR c_B`` (the
    bits of ``j`` reversed, so that neighbouring ranks get far-apart strata, scrambled by a random ``c_B``) and
    within it the fine stratum ``(a * B + d) mod blocks`` (``a`` coprime to the number of blocks, near its golden
    section: neighbouring blocks get far-apart fine strata; ``d`` random), then an i.i.d. offset within the
    stratum.

    **Validity.** For every rank, ``g`` is uniform over the coarse strata (``c_B`` is), the fine stratum over its
    ``blocks`` fine strata (``d`` is, to within ``2**-53``: it is taken from a float64 uniform), and the offset over
    the stratum: the uniform is ``U(0, 1)``. The scrambles and offsets are drawn independently of ``keys``, so a
    row's uniform stays ``U(0, 1)`` given every row's distribution and their order: an inverse-CDF draw with it
    keeps each row's conditional distribution. Only the joint draw of the rows of one call is dependent, as with
    any stratification. The randomness drawn depends on ``n`` and ``block`` only: the same generator state gives
    the same uniforms.

    Parameters
    ----------
    keys : torch.Tensor
        ``(n,)`` one number per row; rows with close keys should have similar distributions (ties are ranked in
        row order). 16-bit integers rank fastest on the CPU.
    block : int, default=SORT_BLOCK_ROWS
        Ranks per block, a power of 2 (the last block may be short). With at most ``block`` rows, one block: the
        uniforms of :func:`stratified_uniforms`.
    generator : torch.Generator or None
        The source of randomness (one draw of ``n + blocks + 1`` uniforms: the offsets within the strata, the
        blocks' scrambles, the shift).
    dtype : torch.dtype, default=torch.float32
        The uniforms' floating-point type.

    Returns
    -------
    torch.Tensor
        ``(n,)`` uniforms in ``[0, 1)``, on ``keys``' device, in row order.

    Examples
    --------
    >>> u = sorted_block_uniforms(torch.tensor([0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4]), block=4,
    ...                           generator=torch.Generator().manual_seed(0))
    >>> low, high = [1, 3, 5, 7], [0, 2, 4, 6]  # the rows of the lower and of the upper four keys
    >>> sorted((u[low] * 4).long().tolist()), sorted((u[high] * 4).long().tolist())
    ([0, 1, 2, 3], [0, 1, 2, 3])
    >>> sorted((u * 8).long().tolist())
    [0, 1, 2, 3, 4, 5, 6, 7]
    """
    n, device = len(keys), keys.device
    if block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of 2; got {block}.")
    if n <= block:
        return stratified_uniforms(n, generator=generator, device=device, dtype=dtype)
    n_blocks = -(-n // block)
    n_strata = n_blocks * block
    # one draw for the whole deal (float64: the integers taken from it are uniform to within 2**-53): the offsets
    # within the strata, each block's scramble, the shift
    draws = torch.rand(n + n_blocks + 1, generator=generator, device=device, dtype=torch.float64)
    coarse, first_fine = _rank_layout(n_blocks, block)
    on_cpu = device.type == "cpu" and _NUMPY_ON_CPU
    if on_cpu:  # numpy: a dozen small operations at a fraction of torch's overhead per call
        draws, order = draws.numpy(), np.argsort(keys.detach().numpy(), kind="stable")  # radix sort for int16
        scramble, shift = (draws[n:-1] * block).astype(np.int64), int(draws[-1] * n_blocks)
    else:
        coarse, first_fine = torch.from_numpy(coarse).to(device), torch.from_numpy(first_fine).to(device)
        order = torch.sort(keys, stable=True).indices
        scramble, shift = (draws[n:-1] * block).long(), (draws[-1:] * n_blocks).long()
    # (blocks, block) in rank order, in fine strata: each block's scrambled coarse strata plus its shifted fine one
    strata = coarse[scramble] + (first_fine + shift) % n_blocks
    by_rank = (strata.reshape(-1)[:n] + draws[:n]) * (1.0 / n_strata)
    # in row order, below 1 as torch.rand's are (the top stratum's m - 1 + v can round up to m)
    top = 1.0 - torch.finfo(dtype).eps / 2
    if on_cpu:
        uniforms = np.empty_like(by_rank)
        uniforms[order] = by_rank
        return torch.from_numpy(np.minimum(uniforms, top, out=uniforms)).to(dtype)
    uniforms = torch.empty_like(by_rank)
    uniforms[order] = by_rank
    return uniforms.to(dtype).clamp_(max=top)


_GOLDEN_SECTION = (math.sqrt(5.0) - 1.0) / 2.0
# `sorted_block_uniforms` on the CPU computes in numpy; `False` takes the torch path of other devices (tests compare
# the two)
_NUMPY_ON_CPU = True


@functools.lru_cache(maxsize=64)
def _rank_layout(n_blocks: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`sorted_block_uniforms` deals by rank before its random scramble and shift, in fine strata;
    cached (a sequence step draws many sub-columns of the same number of rows).

    ``(block, block)``: row ``c`` holds the first fine stratum of the coarse stratum of each place of a block
    scrambled with ``c``, ``(rev(j) XOR c) * blocks``; ``(blocks, 1)``: each block's fine stratum before the shift,
    ``a * B mod blocks``, with ``a`` coprime to ``blocks`` near its golden section.
    """
    width = block.bit_length() - 1
    places = np.array([int(f"{j:0{width}b}"[::-1] or "0", 2) for j in range(block)])
    coarse = (places[None, :] ^ np.arange(block)[:, None]) * n_blocks
    step = max(1, round(n_blocks * _GOLDEN_SECTION))
    while math.gcd(step, n_blocks) != 1:
        step -= 1
    return coarse, (np.arange(n_blocks) * step % n_blocks)[:, None]


def _mean_code_keys(cdf: torch.Tensor) -> torch.Tensor:
    """Each row's mean code, reversed, as 16-bit integers (the keys of :func:`sorted_block_uniforms`).

    ``sum_c F(c) / F(last) = cardinality - E[code]`` lies in ``[1, cardinality]``; scaled into ``1 .. 32000``, clear
    of the int16 limit whatever the rounding. A matrix-vector product (twice as fast as ``sum(dim=1)``), in numpy
    on the CPU (a third of torch's overhead per call).
    """
    cardinality = cdf.shape[1]
    if cdf.device.type == "cpu" and cdf.dtype in (torch.float32, torch.float64):
        values = cdf.detach().numpy()
        keys = values @ np.full(cardinality, 32000.0 / cardinality, dtype=values.dtype)
        return torch.from_numpy((keys / values[:, -1]).astype(np.int16))
    keys = torch.mv(cdf, cdf.new_full((cardinality,), 32000.0 / cardinality)).div_(cdf[:, -1])
    return keys.to(torch.int16)


def inverse_cdf_draw(
    weights: torch.Tensor, generator: torch.Generator | None = None, *, sort_rows: bool = False
) -> torch.Tensor:
    """One code per row of ``(n, cardinality)`` non-negative weights, with probability proportional to them.

    The uniforms are :func:`stratified_uniforms` over the rows (i.i.d. when ``STRATIFIED_DRAWS`` is off): each
    row's draw is exact, and a code's count over the rows is close to its expected count. The codes keep their
    order in the CDF: for a binned numeric column, that makes the count of values up to each bin (what a KS
    distance compares) the stratified quantity.

    With ``sort_rows`` (and ``SORTED_BLOCK_DRAWS`` on), they are :func:`sorted_block_uniforms` keyed by each row's
    mean code, so that rows with similar distributions share a block: the count tracks its expectation also when
    the rows' distributions differ (the subjects of a sequence step), for about 40 µs more per call. Flat
    tables do not ask for it: their rows differ less, adult's KS distances did not move, and their generation
    speed is a target (docs/benchmarks.md, seventh round).

    Parameters
    ----------
    weights : torch.Tensor
        ``(n, cardinality)`` non-negative weights, each row with a positive sum.
    generator : torch.Generator or None
        The source of randomness.
    sort_rows : bool, default=False
        Stratify within blocks of rows sorted by their mean code.

    Returns
    -------
    torch.Tensor
        ``(n,)`` int64 codes.
    """
    cdf = torch.cumsum(weights, dim=-1)
    total = cdf[:, -1:]
    n, cardinality = cdf.shape
    if STRATIFIED_DRAWS and SORTED_BLOCK_DRAWS and sort_rows and n >= SORT_MIN_ROWS and cardinality > 1:
        keys = _mean_code_keys(cdf)
        uniforms = sorted_block_uniforms(keys, block=SORT_BLOCK_ROWS, generator=generator, dtype=cdf.dtype)
    elif STRATIFIED_DRAWS:
        uniforms = stratified_uniforms(n, generator=generator, device=cdf.device, dtype=cdf.dtype)
    else:
        uniforms = torch.rand(n, generator=generator, device=cdf.device, dtype=cdf.dtype)
    codes = torch.searchsorted(cdf, uniforms[:, None] * total, right=True).squeeze(1)
    return codes.clamp_(max=cdf.shape[1] - 1)
