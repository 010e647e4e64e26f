"""Training loop of the flat model: real shuffled epochs over one pre-built code tensor.

Compared with the reference engine: an epoch is a full pass over a fresh permutation of the rows (no data
loader, no collator), validation uses a fixed, seeded set of column orders (so early stopping is not driven
by order noise), and the output biases start from the empirical code frequencies.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch

from ._network import FlatARGN
from ._presets import batch_size_heuristic, learn_rate_heuristic
from ._sampling import generator_on

__all__ = ["TrainingResult", "train_model"]

EARLY_STOPPING_PATIENCE = 4
LR_FACTOR = 0.5
LR_PATIENCE = 2
MIN_LR_RATIO = 0.1
N_VALIDATION_ORDERS = 8
PROGRESS_INTERVAL_S = 10.0
# Rows per validation forward pass, bounded so that the (heads x rows x width) activations stay small.
_VALIDATION_ELEMENTS = 2**24


@attrs.frozen
class TrainingResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    history : list of dict
        One record per (possibly partial) epoch: ``epoch``, ``steps``, ``samples``, ``trn_loss``,
        ``val_loss`` (NaN when the epoch was cut short), ``learn_rate``, ``total_time``, ``is_checkpoint``.
    best_state_dict : dict of str to torch.Tensor
        CPU copies of the weights with the best validation loss (the last weights if none was validated);
        the model holds them when training returns.
    state : dict
        The resumable state (see ``resume_state`` of :func:`train_model`).
    stop_reason : str
        ``"max_epochs"``, ``"max_training_time"``, ``"early_stopping"`` or ``"callback"``.
    """

    history: list[dict[str, Any]]
    best_state_dict: dict[str, torch.Tensor]
    state: dict[str, Any]
    stop_reason: str


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def _check_codes(name: str, codes: torch.Tensor, cardinalities: tuple[int, ...]) -> None:
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


def _check_positive(name: str, value: float, *, allow_inf: bool) -> None:
    if not isinstance(value, int | float) or math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        allowed = "(0, inf]" if allow_inf else "(0, inf)"
        raise ValueError(f"{name} must be a number in the range {allowed}; got {value!r} instead.")


def _check_arguments(
    max_epochs: float,
    max_training_time_s: float,
    batch_size: int | None,
    gradient_accumulation_steps: int | None,
    learn_rate: float | None,
) -> None:
    _check_positive("max_epochs", max_epochs, allow_inf=False)
    _check_positive("max_training_time_s", max_training_time_s, allow_inf=True)
    for name, value in (("batch_size", batch_size), ("gradient_accumulation_steps", gradient_accumulation_steps)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an int in the range [1, inf) or None; got {value!r} instead.")
    if learn_rate is not None:
        _check_positive("learn_rate", learn_rate, allow_inf=False)


def _check_data(
    model: FlatARGN,
    trn_codes: torch.Tensor,
    val_codes: torch.Tensor | None,
    trn_context: torch.Tensor | None,
    val_context: torch.Tensor | None,
) -> None:
    spec = model.spec
    _check_codes("trn_codes", trn_codes, spec.cardinalities)
    if len(trn_codes) == 0:
        raise ValueError("trn_codes must hold at least one row; got 0.")
    if val_codes is not None:
        _check_codes("val_codes", val_codes, spec.cardinalities)
    for name, ctx, codes in (("trn_context", trn_context, trn_codes), ("val_context", val_context, val_codes)):
        if not spec.context:
            if ctx is not None:
                raise ValueError(f"{name} was given, but the model has no context columns.")
            continue
        if codes is None or len(codes) == 0:
            continue
        if ctx is None or len(ctx) != len(codes):
            found = "None" if ctx is None else f"{len(ctx)} rows"
            raise ValueError(f"{name} must hold one context row per code row ({len(codes)}); got {found}.")
        _check_codes(name, ctx, spec.context_cardinalities)


def _validation_loss(
    model: FlatARGN,
    codes: torch.Tensor,
    context: torch.Tensor | None,
    orders: list[list[int]],
) -> float:
    # Each order scores one contiguous share of the rows, so the estimate is deterministic and costs one pass.
    spec = model.spec
    chunk = max(256, _VALIDATION_ELEMENTS // (spec.n_sub_columns * max(spec.hidden_dim, max(spec.cardinalities))))
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=codes.device)
    with torch.no_grad():
        for order, rows in zip(orders, torch.arange(len(codes)).tensor_split(len(orders)), strict=True):
            for part in rows.split(chunk):
                if len(part) == 0:  # fewer validation rows than orders
                    continue
                part = part.to(codes.device)
                ctx = None if context is None else context[part]
                total += model(codes[part], ctx, order).double().sum()
    model.train(was_training)
    return float(total) / len(codes)


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
) -> TrainingResult:
    """Train ``model`` to early stopping, an epoch budget or a time budget.

    AdamW at ``1e-3 * sqrt(batch / 32)``, halved after 2 validations without improvement (down to 10 %),
    stopped after 5 validations in a row without improvement; the best weights are kept. Flexible models
    see a random column order per batch; validation scores a fixed set of 8 orders drawn once.

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

    Returns
    -------
    TrainingResult
        History, best weights, final resumable state and the reason training stopped.
    """
    _check_arguments(max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate)
    _check_data(model, trn_codes, val_codes, trn_context, val_context)
    spec = model.spec
    has_val = val_codes is not None and len(val_codes) > 0

    device = torch.device(device) if device is not None else model.in_weight.device
    model.to(device).train()
    trn = trn_codes.to(device)
    trn_ctx = None if trn_context is None else trn_context.to(device)
    val = val_codes.to(device) if has_val else None
    val_ctx = val_context.to(device) if has_val and val_context is not None else None
    dropout_generator = generator_on(generator, device)

    resume = dict(resume_state) if resume_state is not None else None
    n = len(trn)
    batch_size = batch_size or (resume["batch_size"] if resume else batch_size_heuristic(n))
    batch_size = min(batch_size, n)
    accum = gradient_accumulation_steps or (resume["gradient_accumulation_steps"] if resume else 1)
    accum = max(1, min(accum, n // batch_size))
    logical = batch_size * accum
    steps_per_epoch = math.ceil(n / logical)
    lr0 = learn_rate or (resume["initial_learn_rate"] if resume else learn_rate_heuristic(logical))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=LR_FACTOR, patience=LR_PATIENCE, min_lr=MIN_LR_RATIO * lr0
    )

    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        steps, samples, base_time = int(resume["steps"]), int(resume["samples"]), float(resume["total_time"])
        best_loss, bad_epochs = float(resume["best_val_loss"]), int(resume["early_stop_counter"])
        val_orders = [list(o) for o in resume["val_orders"]]
        best_state = resume["best_model"]
        history = [dict(r) for r in resume["history"]]
    else:
        if empirical_prior:
            model.init_output_bias(trn)
        steps, samples, base_time = 0, 0, 0.0
        best_loss, bad_epochs = math.inf, 0
        val_orders = [model.draw_order(generator) for _ in range(N_VALIDATION_ORDERS if spec.flexible else 1)]
        best_state = None
        history = []

    def make_state() -> dict[str, Any]:
        return {
            "model": _to_cpu(model.state_dict()),
            "best_model": best_state,
            "optimizer": _to_cpu(optimizer.state_dict()),
            "scheduler": _to_cpu(scheduler.state_dict()),
            "epoch": steps / steps_per_epoch,
            "steps": steps,
            "samples": samples,
            "total_time": total_time,
            "best_val_loss": best_loss,
            "early_stop_counter": bad_epochs,
            "val_orders": [list(o) for o in val_orders],
            "history": [dict(r) for r in history],
            "batch_size": batch_size,
            "gradient_accumulation_steps": accum,
            "initial_learn_rate": lr0,
        }

    def record(trn_loss: float, val_loss: float, is_checkpoint: bool) -> dict[str, Any]:
        return {
            "epoch": steps / steps_per_epoch,
            "steps": steps,
            "samples": samples,
            "trn_loss": trn_loss,
            "val_loss": val_loss,
            "learn_rate": optimizer.param_groups[0]["lr"],
            "total_time": total_time,
            "is_checkpoint": is_checkpoint,
        }

    max_steps = max(1, math.ceil(max_epochs * steps_per_epoch))
    start_time = time.perf_counter()
    last_report = start_time
    total_time = base_time
    stop_reason = "max_epochs" if steps >= max_steps else None
    while stop_reason is None:
        perm = torch.randperm(n, generator=generator).to(device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        epoch_rows, cut_short = 0, False
        for logical_rows in perm.split(logical):
            optimizer.zero_grad(set_to_none=True)
            for rows in logical_rows.split(batch_size):
                ctx = None if trn_ctx is None else trn_ctx[rows]
                nll = model(trn[rows], ctx, model.draw_order(generator), generator=dropout_generator)
                (nll.sum() / len(logical_rows)).backward()
                loss_sum += nll.detach().double().sum()
            optimizer.step()
            steps, samples, epoch_rows = steps + 1, samples + len(logical_rows), epoch_rows + len(logical_rows)
            now = time.perf_counter()
            total_time = base_time + now - start_time
            if steps >= max_steps:
                stop_reason = "max_epochs"
                break
            if total_time >= max_training_time_s:
                stop_reason, cut_short = "max_training_time", True
                break
            if on_progress is not None and now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                if on_progress(record(float(loss_sum) / epoch_rows, math.nan, False)):
                    stop_reason, cut_short = "callback", True
                    break
        trn_loss = float(loss_sum) / epoch_rows
        if cut_short:
            history.append(record(trn_loss, math.nan, False))
            if on_checkpoint is not None:
                on_checkpoint(make_state())
            if on_progress is not None and stop_reason != "callback":
                on_progress(history[-1])
            break
        val_loss = _validation_loss(model, val, val_ctx, val_orders) if has_val else trn_loss
        scheduler.step(val_loss)
        improved = val_loss < best_loss
        if improved:
            best_loss, bad_epochs = val_loss, 0
            best_state = _to_cpu(model.state_dict())
        else:
            bad_epochs += 1
            if not math.isfinite(val_loss) and best_state is not None:
                model.load_state_dict(best_state)
        total_time = base_time + time.perf_counter() - start_time
        history.append(record(trn_loss, val_loss, improved))
        if on_checkpoint is not None:
            on_checkpoint(make_state())
        if on_progress is not None and on_progress(history[-1]) and stop_reason is None:
            stop_reason = "callback"
        if bad_epochs > EARLY_STOPPING_PATIENCE and stop_reason is None:
            stop_reason = "early_stopping"
        if total_time >= max_training_time_s and stop_reason is None:
            stop_reason = "max_training_time"

    if best_state is None:
        best_state = _to_cpu(model.state_dict())
    final_state = make_state()
    model.load_state_dict(best_state)
    return TrainingResult(history=history, best_state_dict=best_state, state=final_state, stop_reason=stop_reason)
