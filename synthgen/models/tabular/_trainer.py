"""Training of the flat model: real shuffled epochs over one pre-built code tensor.

Compared with the reference engine: an epoch is a full pass over a fresh permutation of the rows (no data
loader, no collator), validation uses a fixed, seeded set of column orders (so early stopping is not driven
by order noise), and the output biases start from the empirical code frequencies. The schedule itself lives
in :mod:`._loop`, shared with the sequential model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from .._distributed import DistributedTraining
from ._loop import FLOOR_EPOCHS, TrainingResult, check_training_arguments, run_training
from ._network import FlatARGN
from ._sampling import generator_on
from ._validation import flat_validation_loss

__all__ = ["TrainingResult", "check_codes", "train_model"]


def check_codes(name: str, codes: torch.Tensor, cardinalities: tuple[int, ...]) -> None:
    """Check that ``codes`` is an integer ``(n, len(cardinalities))`` tensor with every code in range.

    Raises
    ------
    ValueError
        Naming ``name``, the offending sub-column and the values found.
    """
    if not isinstance(codes, torch.Tensor) or codes.dim() != 2 or codes.shape[1] != len(cardinalities):
        shape = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"{name} must be an integer tensor of shape (n, {len(cardinalities)}); got {shape}.")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer codes; got dtype {codes.dtype}.")
    if len(codes) == 0:
        return
    low, high = codes.amin(0), codes.amax(0)
    cards = torch.tensor(cardinalities, device=codes.device)
    bad = ((low < 0) | (high >= cards)).nonzero().flatten().tolist()
    if bad:
        s = bad[0]
        raise ValueError(
            f"{name} sub-column {s} must hold codes in 0..{cardinalities[s] - 1}; "
            f"got values in {int(low[s])}..{int(high[s])}."
        )


def _check_data(
    model: FlatARGN,
    trn_codes: torch.Tensor,
    val_codes: torch.Tensor | None,
    trn_context: torch.Tensor | None,
    val_context: torch.Tensor | None,
) -> None:
    spec = model.spec
    check_codes("trn_codes", trn_codes, spec.cardinalities)
    if len(trn_codes) == 0:
        raise ValueError("trn_codes must hold at least one row; got 0.")
    if val_codes is not None:
        check_codes("val_codes", val_codes, spec.cardinalities)
    for name, ctx, codes in (
        ("trn_context", trn_context, trn_codes),
        ("val_context", val_context, val_codes),
    ):
        if not spec.context:
            if ctx is not None:
                raise ValueError(f"{name} was given, but the model has no context columns.")
            continue
        if codes is None or len(codes) == 0:
            continue
        if ctx is None or len(ctx) != len(codes):
            found = "None" if ctx is None else f"{len(ctx)} rows"
            raise ValueError(f"{name} must hold one context row per code row ({len(codes)}); got {found}.")
        check_codes(name, ctx, spec.context_cardinalities)


class _FlatTask:
    """Rows of one code tensor (and their context rows) as a :class:`~._loop.TrainingTask`."""

    def __init__(
        self,
        model: FlatARGN,
        trn_codes: torch.Tensor,
        val_codes: torch.Tensor | None,
        trn_context: torch.Tensor | None,
        val_context: torch.Tensor | None,
        device: torch.device,
        generator: torch.Generator,
    ) -> None:
        has_val = val_codes is not None and len(val_codes) > 0
        self.model = model
        self.device = device
        self.trn = trn_codes.to(device)
        self.trn_ctx = None if trn_context is None else trn_context.to(device)
        self.val = val_codes.to(device) if has_val else None
        self.val_ctx = val_context.to(device) if has_val and val_context is not None else None
        self.dropout_generator = generator_on(generator, device)

    @property
    def n_samples(self) -> int:
        return len(self.trn)

    @property
    def flexible(self) -> bool:
        return self.model.spec.flexible

    def draw_order(self, generator: torch.Generator) -> list[int]:
        return self.model.draw_order(generator)

    def init_prior(self) -> None:
        self.model.init_output_bias(self.trn)

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ctx = None if self.trn_ctx is None else self.trn_ctx[samples]
        return self.model(
            self.trn[samples], ctx, self.model.draw_order(generator), generator=self.dropout_generator
        )

    def init_private_prior(self, noise_multiplier: float, generator: torch.Generator) -> None:
        from ...privacy._dp_prior import init_private_output_bias

        init_private_output_bias(self.model, self.trn, noise_multiplier, generator)

    def ghost_inputs(self, samples: torch.Tensor, generator: torch.Generator):
        """For DP-SGD's ghost clipping: the batch's codes, its column order and the dropout generator; None
        with context rows (ghost clipping covers the network without context)."""
        if self.trn_ctx is not None:
            return None
        return self.trn[samples], self.model.draw_order(generator), self.dropout_generator

    def per_sample_nll(self, samples: torch.Tensor, generator: torch.Generator):
        """For DP-SGD's vmap: a function ``(params, codes_row[, context_row]) -> nll`` of one row under one
        column order drawn for the batch, and the batched inputs."""
        from torch.func import functional_call

        model, order = self.model, self.model.draw_order(generator)
        inputs = (self.trn[samples],) if self.trn_ctx is None else (self.trn[samples], self.trn_ctx[samples])

        def nll(params: dict, codes: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
            return functional_call(model, params, (codes[None], None if ctx is None else ctx[None], order))[0]

        return nll, inputs

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        if self.val is None:
            return None
        return flat_validation_loss(self.model, lambda _: (self.val, self.val_ctx), [len(self.val)], orders,
                                    self.val.device)


def train_model(
    model: FlatARGN,
    trn_codes: torch.Tensor,
    val_codes: torch.Tensor | None,
    *,
    trn_context: torch.Tensor | None = None,
    val_context: torch.Tensor | None = None,
    max_epochs: float = 100.0,
    max_training_time_s: float = math.inf,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
    learn_rate: float | None = None,
    empirical_prior: bool = True,
    device: str | torch.device | None = None,
    generator: torch.Generator,
    on_progress: Callable[[dict[str, Any]], bool | None] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume_state: Mapping[str, Any] | None = None,
    on_tick: Callable[[float, float], None] | None = None,
    make_private: Callable[..., Any] | None = None,
    floor_epochs: int | None = FLOOR_EPOCHS,
) -> TrainingResult:
    """Train ``model`` to early stopping, an epoch budget or a time budget.

    AdamW at ``1e-3 * sqrt(batch / 32)``, halved after 2 validations without improvement (down to 10 %),
    stopped after 5 validations in a row without improvement while the rate is above its floor; the best
    weights are kept. A run that reaches the floor trains ``floor_epochs`` more epochs there and returns
    averaged weights instead. Flexible models see a random column order per batch; validation scores a fixed
    set of 8 orders drawn once.

    Parameters
    ----------
    model : FlatARGN
        The model; trained in place and left holding the best weights.
    trn_codes, val_codes : torch.Tensor
        ``(n, n_sub_columns)`` integer codes (any integer dtype; kept as given). Without validation rows
        (``None`` or empty) the epoch's training loss drives the schedule and early stopping.
    trn_context, val_context : torch.Tensor or None
        The matching context codes, required when the model has context.
    max_epochs : float, default=100.0
        Total epochs (fractions allowed; counted across resumptions).
    max_training_time_s : float, default=inf
        Total training seconds (counted across resumptions), checked after every step.
    batch_size : int or None
        Rows per forward pass; default ``2**floor(log2(n / 64))`` clipped to ``[8, 2048]``.
    gradient_accumulation_steps : int or None
        Forward passes per optimizer step (default 1).
    learn_rate : float or None
        The initial learning rate; default from the logical batch size.
    empirical_prior : bool, default=True
        Start the output biases at the training codes' log-frequencies. Turn off under differential privacy.
    device : str, torch.device or None
        Where to train; default the model's current device.
    generator : torch.Generator
        The source of all randomness (row order, column orders, dropout).
    on_progress : callable or None
        Called with each epoch's history record (and with an interim record at least every 10 seconds);
        returning ``True`` stops training.
    on_checkpoint : callable or None
        Called after every epoch, and when training is cut short, with the resumable state (CPU tensors
        and plain values; ``torch.save`` it and read it back with ``torch.load(..., weights_only=True)``).
    resume_state : mapping or None
        A state from ``on_checkpoint`` or :attr:`TrainingResult.state`: weights, optimizer, scheduler,
        counters, validation orders and history are restored, and training continues from there.
    on_tick : callable or None
        Called with ``(epoch, total_time)`` at most every half second between steps, for a progress bar.
    make_private : callable or None
        Turns on DP-SGD (see :func:`~._loop.run_training`); pass ``empirical_prior=False`` with it.
    floor_epochs : int or None, default=20
        Once the learning rate has reached its floor, train exactly this many more epochs there instead of
        stopping early, and keep the latest weight average (decay 0.999 a step, kept from the first step)
        whose validation loss is within ``PLATEAU_TOLERANCE`` (0.05 %) of the best (see :mod:`._loop`). A run
        that early stopping ends before the floor returns the same weights as without it. ``None``: early
        stopping throughout (the schedule before issue 15's fifth round). Ignored under DP-SGD, which neither
        validates nor stops early.

    Under an initialised ``torch.distributed`` process group of several ranks, training is data-parallel (see
    :mod:`synthgen.models._distributed`): ``batch_size`` is per rank, and only rank 0 calls the callbacks.

    Returns
    -------
    TrainingResult
        History, best weights, final resumable state and the reason training stopped.
    """
    check_training_arguments(
        max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate
    )
    _check_data(model, trn_codes, val_codes, trn_context, val_context)
    device = torch.device(device) if device is not None else model.in_weight.device
    model.to(device).train()
    distributed = DistributedTraining.current(device)
    if distributed is not None:  # this rank's validation share and random generator
        generator = distributed.rank_generator(generator)
        if val_codes is not None:
            rows = distributed.validation_rows(len(val_codes))
            val_codes = val_codes[rows]
            val_context = None if val_context is None else val_context[rows]
            distributed.n_validation = len(val_codes)
    task = _FlatTask(model, trn_codes, val_codes, trn_context, val_context, device, generator)
    return run_training(
        model,
        task,
        max_epochs=max_epochs,
        max_training_time_s=max_training_time_s,
        batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learn_rate=learn_rate,
        empirical_prior=empirical_prior,
        generator=generator,
        on_progress=on_progress,
        on_checkpoint=on_checkpoint,
        resume_state=resume_state,
        on_tick=on_tick,
        make_private=make_private,
        distributed=distributed,
        # under DP the released weights are the average of the noisy iterates (post-processing)
        average_weights=make_private is not None,
        floor_epochs=floor_epochs,
    )
