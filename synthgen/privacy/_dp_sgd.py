"""DP-SGD for the shared training loop: Poisson batches, per-subject clipping, Gaussian noise, an accountant.

One :class:`PrivateSGD` drives the private steps of one training run of :func:`~synthgen.models.tabular._loop.
run_training` (flat, sequential and language models alike):

- **Poisson sampling**: every step includes each training subject independently with probability
  ``sample_rate`` (so a batch may be empty, and the step still counts), as the accountants assume.
- **Per-subject clipping**: the gradient of each subject's loss is clipped to ``max_grad_norm`` in the L2 norm
  over all trainable parameters. A subject is one sample of the task: a row of a flat table, an entity with all
  its events of a two-table model, a record of a language model. Per-subject gradients come from
  ``torch.func.vmap`` where the task offers a per-sample function (the flat model) and from one backward pass
  per subject otherwise (sequential and language models, whose forward passes have data-dependent shapes).
- **Gaussian noise** of standard deviation ``noise_multiplier * max_grad_norm`` is added to the sum of the
  clipped gradients, which is then divided by the *expected* batch size (Opacus' convention).
- **Accounting** by an Opacus accountant (PRV by default) over the history ``[(sigma, q, steps), ...]``; the
  noise multiplier is calibrated with Opacus' ``get_noise_multiplier`` to the training budget for the planned
  number of steps when none is given.
- **Look-ahead**: before the run starts, the accountant finds the most steps the remaining budget allows
  (epsilon is monotone in the number of steps at fixed sigma and q); :meth:`PrivateSGD.can_step` refuses the
  step that would exceed it, so training stops *before* the budget is overshot, never after.

Opacus' ``PrivacyEngine`` is not used to wrap the models: its per-sample gradient hooks know standard layers
(``nn.Linear``, ``nn.Embedding``, ``DPLSTM``), and TabularARGN computes with batched matrix products on its own
parameters. The gradient maths is the same as Opacus' ``DPOptimizer`` (clip factor
``min(1, C / (norm + 1e-6))``, noise on the sum, division by ``q * n``).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

__all__ = ["PrivateSGD", "accountant_epsilon", "calibrate_noise_multiplier", "mechanism_name", "plan_private_sgd"]

# Subjects per vmap call: bounds the (chunk x parameters) per-sample gradients held at once.
_VMAP_CHUNK = 128


_RDP_CACHE_SIZE = 1 << 16


def _memoize_rdp_orders() -> None:
    """Memoize Opacus' RDP of one step at one order, ``_compute_rdp(q, sigma, alpha)``: a pure function of three
    floats that the RDP accountant, and PRV's choice of its domain, evaluate for every order on every call, in
    Python loops for the fractional orders (most of the time of an accounting call). The look-ahead and the
    ledger evaluate the same ``(q, sigma)`` for many step counts, so the cache makes those calls cheap; the
    results are the same numbers."""
    from opacus.accountants.analysis import rdp

    if not hasattr(rdp._compute_rdp, "cache_info"):
        rdp._compute_rdp = functools.lru_cache(maxsize=_RDP_CACHE_SIZE)(rdp._compute_rdp)


def accountant_epsilon(history: Sequence[Sequence[float]], delta: float, accountant: str = "prv") -> float:
    """The epsilon of DP-SGD steps ``history = [(noise_multiplier, sample_rate, steps), ...]`` at ``delta``.

    A fresh Opacus accountant of kind ``accountant`` ("prv", "rdp" or "gdp") reads the whole history.
    """
    from opacus.accountants import create_accountant

    _memoize_rdp_orders()

    history = [(float(s), float(q), int(k)) for s, q, k in history if int(k) > 0]
    if not history:
        return 0.0
    acc = create_accountant(mechanism=accountant)
    acc.history = history
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        # RDP's note that the best order is at the end of its range (the bound still holds); PRV's log(0) at q=1
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(acc.get_epsilon(delta=delta))


def calibrate_noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int,
                               accountant: str = "prv", history: Sequence[Sequence[float]] = ()) -> float:
    """The smallest noise multiplier (to Opacus' tolerance) whose ``steps`` steps at ``sample_rate`` stay
    within ``(epsilon, delta)``; Opacus' ``get_noise_multiplier``, or, after earlier mechanisms ``history``, a
    bisection on the accountant's epsilon of the whole history."""
    from opacus.accountants.utils import get_noise_multiplier

    _memoize_rdp_orders()
    if history:
        def spent(sigma: float) -> float:
            return accountant_epsilon([*history, (sigma, sample_rate, steps)], delta, accountant)

        # the steps alone need at least Opacus' sigma; the earlier mechanisms add a little
        low = calibrate_noise_multiplier(epsilon, delta, sample_rate, steps, accountant)
        high = low * 1.1
        while spent(high) > epsilon:
            low, high = high, 1.5 * high
            if high > 1e4:
                raise ValueError(f"no noise multiplier reaches epsilon={epsilon} after the earlier mechanisms.")
        while (high - low) / high > 0.005:
            mid = (low + high) / 2
            low, high = (low, mid) if spent(mid) <= epsilon else (mid, high)
        return high

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                          steps=max(1, int(steps)), accountant=accountant,
                                          epsilon_tolerance=0.005))


def gaussian_noise_multiplier(epsilon: float, delta: float, accountant: str = "prv") -> float:
    """The noise multiplier of one Gaussian mechanism (a step at sample rate 1) that costs ``epsilon``."""
    low, high = 0.1, 1.0
    while accountant_epsilon([(high, 1.0, 1)], delta, accountant) > epsilon:
        low, high = high, 2 * high
    while (high - low) / high > 0.01:
        mid = (low + high) / 2
        low, high = (low, mid) if accountant_epsilon([(mid, 1.0, 1)], delta, accountant) <= epsilon else (mid, high)
    return high


def mechanism_name(accountant: str, noise_multiplier: float, max_grad_norm: float, sample_rate: float,
                   steps: int) -> str:
    """The ledger's description of the training mechanism."""
    return (f"DP-SGD (Opacus {accountant}, σ={noise_multiplier:.4g}, C={max_grad_norm:.4g}, "
            f"q={sample_rate:.4g}, steps={steps})")


class PerSampleTask(Protocol):
    """What :class:`PrivateSGD` needs of a training task (see ``TrainingTask`` in ``_loop``)."""

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


class PrivateSGD:
    """The DP-SGD state of one training run; see the module docstring.

    Parameters
    ----------
    noise_multiplier, max_grad_norm, sample_rate : float
        sigma, C and q of the steps of this run.
    epsilon, delta : float
        The training budget: no step is taken that would bring the accountant's epsilon at ``delta`` above
        ``epsilon``.
    accountant : str
        Opacus accountant: "prv", "rdp" or "gdp".
    n_samples : int
        Training subjects (the expected batch size is ``sample_rate * n_samples``).
    max_steps : int
        The most steps this run may take for its other budgets (epochs); the look-ahead searches up to it.
    history : sequence of (float, float, int), optional
        Earlier mechanisms on the same data (steps of earlier runs for RESUME or REUSE of a DP model, the
        Gaussian output prior): they count towards the budget.
    prior_noise_multiplier : float, optional
        The noise multiplier of the private output prior (:mod:`._dp_prior`), already in ``history``.
    prior_pending : bool, default=False
        Whether the prior is still to be applied (a fresh run: the loop calls :meth:`init_prior` before its
        first step); False when a continued run only carries it in its history.
    """

    def __init__(self, *, noise_multiplier: float, max_grad_norm: float, sample_rate: float, epsilon: float,
                 delta: float, accountant: str, n_samples: int, max_steps: int,
                 history: Sequence[Sequence[float]] = (), prior_noise_multiplier: float | None = None,
                 prior_pending: bool = False) -> None:
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1]; got {sample_rate!r}.")
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.sample_rate = float(sample_rate)
        self.epsilon_budget = float(epsilon)
        self.delta = float(delta)
        self.accountant = accountant
        self.n_samples = int(n_samples)
        self.previous = [(float(s), float(q), int(k)) for s, q, k in history]
        self.steps = 0
        self.prior_noise_multiplier = prior_noise_multiplier
        self.prior_pending = prior_pending and prior_noise_multiplier is not None
        self.ghost_clipping = True  # the flat network's exact fast path; False forces vmap (tests compare)
        self.allowed_steps = self._allowed_steps(max(0, int(max_steps)))

    # ---------------------------------------------------------------- accounting
    def history(self, extra_steps: int = 0) -> list[tuple[float, float, int]]:
        """All steps so far (earlier runs and this one), plus ``extra_steps`` hypothetical ones."""
        return [*self.previous, (self.noise_multiplier, self.sample_rate, self.steps + extra_steps)]

    def epsilon(self, extra_steps: int = 0) -> float:
        """The accountant's epsilon of :meth:`history` at ``delta``."""
        return accountant_epsilon(self.history(extra_steps), self.delta, self.accountant)

    def _allowed_steps(self, max_steps: int) -> int:
        # epsilon grows with the number of steps: the largest k with epsilon(k) <= budget, by bisection
        def fits(k: int) -> bool:
            return self.epsilon(k) <= self.epsilon_budget

        if max_steps == 0 or fits(max_steps):
            return max_steps
        if not fits(0) or not fits(1):
            return 0
        low, high = 1, max_steps  # fits(low), not fits(high)
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (mid, high) if fits(mid) else (low, mid)
        return low

    def can_step(self) -> bool:
        """Whether one more step stays within the budget (the look-ahead before every step)."""
        return self.steps < self.allowed_steps

    @property
    def total_steps(self) -> int:
        """Private steps over all runs."""
        return sum(k for _, _, k in self.previous) + self.steps

    def to_state(self) -> dict[str, Any]:
        """The accountant's state (plain values): what RESUME continues from."""
        return {"accountant": self.accountant, "delta": self.delta, "max_grad_norm": self.max_grad_norm,
                "epsilon_budget": self.epsilon_budget, "noise_multiplier": self.noise_multiplier,
                "sample_rate": self.sample_rate, "prior_noise_multiplier": self.prior_noise_multiplier,
                "history": [list(h) for h in self.history() if h[2] > 0]}

    # ---------------------------------------------------------------- the steps
    def init_prior(self, task: Any, generator: torch.Generator) -> None:
        """Start the task's output biases from noisy counts (when planned; accounted in the history)."""
        if self.prior_pending:
            task.init_private_prior(self.prior_noise_multiplier, generator)
            self.prior_pending = False

    def draw_batch(self, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Poisson sampling: the indices of the subjects of one step (each in with probability q)."""
        keep = torch.rand(self.n_samples, generator=generator) < self.sample_rate
        return keep.nonzero().flatten().to(device)

    def step_gradients(self, model: nn.Module, task: PerSampleTask, samples: torch.Tensor,
                       generator: torch.Generator, noise_generator: torch.Generator) -> float:
        """Set ``p.grad`` of the trainable parameters to the private gradient of the batch ``samples``.

        Returns the summed (unreleased) loss of the batch, for the progress bar only.
        """
        params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        summed = [torch.zeros_like(p) for _, p in params]
        loss = 0.0
        if len(samples):
            per_sample = getattr(task, "per_sample_nll", None)
            ghost = getattr(task, "ghost_inputs", None) if self.ghost_clipping else None
            inputs = ghost(samples, generator) if ghost is not None else None
            if inputs is not None and _supports_ghost(model):
                from ._ghost_flat import flat_clipped_gradients

                codes, order, dropout_generator = inputs
                summed, nll = flat_clipped_gradients(model, codes, order, dropout_generator, self.max_grad_norm,
                                                     [p for _, p in params])
                loss = float(nll.sum())
            elif per_sample is not None:
                loss = self._vmap_gradients(model, per_sample, params, summed, samples, generator)
            else:
                loss = self._looped_gradients(task, params, summed, samples, generator)
        std = self.noise_multiplier * self.max_grad_norm
        scale = 1.0 / (self.sample_rate * self.n_samples)
        for (_, p), g in zip(params, summed, strict=True):
            noise = torch.normal(0.0, std, size=g.shape, generator=noise_generator, device=g.device, dtype=g.dtype)
            p.grad = (g + noise).mul_(scale)
        self.steps += 1
        return loss

    def _clip_into(self, summed: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        # grads: (chunk, *shape) per-sample gradients; add their clipped sum to ``summed``
        norms = torch.sqrt(sum(g.flatten(1).square().sum(1) for g in grads))
        factor = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        for s, g in zip(summed, grads, strict=True):
            s.add_(torch.einsum("i,i...->...", factor.to(g.dtype), g))

    def _vmap_gradients(self, model: nn.Module, per_sample: Callable, params, summed, samples, generator) -> float:
        from torch.func import grad_and_value, vmap

        fn, inputs = per_sample(samples, generator)  # one column order for the batch, as without DP
        names = [name for name, _ in params]
        values = {name: p.detach() for name, p in params}
        frozen = {name: p.detach() for name, p in model.named_parameters() if not p.requires_grad}
        buffers = dict(model.named_buffers())

        def loss(trainable: dict, *sample_inputs):
            return fn({**trainable, **frozen, **buffers}, *sample_inputs)

        total = 0.0
        was_training = model.training
        model.eval()  # no dropout under vmap (its masks would need a generator per sample); DP noise regularises
        try:
            for part in torch.arange(len(samples)).split(_VMAP_CHUNK):
                chunk = [x[part.to(x.device)] for x in inputs]
                grads, nll = vmap(grad_and_value(loss), in_dims=(None, *[0] * len(chunk)))(values, *chunk)
                self._clip_into(summed, [grads[n] for n in names])
                total += float(nll.detach().sum())
        finally:
            model.train(was_training)
        return total

    def _looped_gradients(self, task: PerSampleTask, params, summed, samples, generator) -> float:
        tensors = [p for _, p in params]
        total = 0.0
        for i in range(len(samples)):
            nll = task.batch_nll(samples[i : i + 1], generator).sum()
            grads = torch.autograd.grad(nll, tensors, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(tensors, grads, strict=True)]
            self._clip_into(summed, [g.unsqueeze(0) for g in grads])
            total += float(nll.detach())
        return total


def _supports_ghost(model: nn.Module) -> bool:
    from ._ghost_flat import supports_ghost_clipping

    return supports_ghost_clipping(model)


def plan_private_sgd(*, epsilon: float, delta: float, max_grad_norm: float, noise_multiplier: float | None,
                     accountant: str, n_samples: int, batch_size: int, steps_per_epoch: int, max_epochs: float,
                     steps_done: int = 0, history: Sequence[Sequence[float]] = (),
                     continue_with: tuple[float, float] | None = None, prior_share: float = 0.0,
                     prior_noise_multiplier: float | None = None) -> PrivateSGD:
    """A :class:`PrivateSGD` for a run of ``max_epochs`` (counted across resumptions) at ``batch_size``.

    The sampling rate is ``batch_size / n_samples``; the noise multiplier, when not given, is calibrated so that
    the planned steps of the whole run spend exactly the budget. A run that continues (``history``) keeps the
    noise multiplier and sampling rate ``continue_with``. A fresh run with ``prior_share > 0`` starts with the
    private output prior, a Gaussian mechanism that alone would cost ``prior_share * epsilon`` (composed with
    the steps it costs much less); a continued run names the prior of its history in ``prior_noise_multiplier``.
    """
    max_steps = max(0, math.ceil(max_epochs * steps_per_epoch) - steps_done)
    prior, pending = prior_noise_multiplier, False
    if continue_with is not None:
        sigma, q = float(continue_with[0]), float(continue_with[1])
    else:
        q = min(1.0, batch_size / n_samples)
        if prior_share > 0 and not history and math.isfinite(epsilon):
            prior, pending = gaussian_noise_multiplier(prior_share * epsilon, delta, accountant), True
            history = [(prior, 1.0, 1)]
        sigma = noise_multiplier if noise_multiplier is not None else calibrate_noise_multiplier(
            epsilon, delta, q, max_steps, accountant, history)
    return PrivateSGD(noise_multiplier=sigma, max_grad_norm=max_grad_norm, sample_rate=q, epsilon=epsilon,
                      delta=delta, accountant=accountant, n_samples=n_samples, max_steps=max_steps, history=history,
                      prior_noise_multiplier=prior, prior_pending=pending)
