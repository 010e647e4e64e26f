"""The training schedule shared by the flat and the sequential model.

The loop knows nothing about the data layout: a :class:`TrainingTask` turns a batch of sample indices into
per-sample negative log-likelihoods and scores the validation set. The loop owns everything else: real
shuffled epochs, gradient accumulation, AdamW with the reference learning-rate heuristic, ReduceLROnPlateau,
early stopping, a fixed set of validation column orders, time and epoch budgets, progress callbacks that can
stop training, resumable state and the best weights.

With ``average_weights`` the loop keeps an exponential moving average of the weights (:class:`WeightAverage`)
and validates, keeps and returns the averaged weights instead of the last iterate: the last iterate carries the
noise of the last few hundred mini-batches, which sampled sequences inherit and compound.

With ``floor_epochs`` (the flat model's schedule, :func:`train_model`'s default) early stopping ends training
only while the learning rate is above its floor. A run whose ReduceLROnPlateau schedule reaches the floor has
stopped improving four times over; there the validation loss is flat to within its own noise for many epochs
(adult: 19.761-19.767 over 20 epochs) while the generated rows keep getting harder to tell from real ones (the
discriminator AUC falls), so the best-validation epoch that early stopping would keep is a noise minimum. Such a
run instead trains exactly ``floor_epochs`` more epochs at the floor and returns an exponential moving average of
the weights (decay ``FLAT_WEIGHT_AVERAGE_DECAY``, a horizon of about 1,000 steps), which runs along from the first
step but is validated and kept only in the floor phase: it keeps the latest averaged weights within
``PLATEAU_TOLERANCE`` of the best validation loss, so a run that does overfit at the floor still returns its best
weights. A run that early stopping ends before the floor (a small table's noisy validation loss: planes' 530
validation rows) returns exactly the weights it returned without the floor phase; training such a table longer
cost planes 0.3-0.6 points of overall accuracy. The fifth round of docs/benchmarks.md ("The floor phase") has the
ablation: on adult the floor phase lowers the discriminator AUC by 0.003-0.007 for about 1.3x the epochs.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import torch
from torch import nn

from .._distributed import DistributedTraining
from ._presets import batch_size_heuristic, learn_rate_heuristic
from ._sampling import generator_on

if TYPE_CHECKING:
    from ...privacy._dp_sgd import PrivateSGD

__all__ = ["TrainingResult", "TrainingTask", "WeightAverage", "check_training_arguments", "run_training"]

EARLY_STOPPING_PATIENCE = 4
# Validated epochs the flat model trains at the learning-rate floor before it stops (``floor_epochs``), and how
# far above the best validation loss (relative) a later epoch's averaged weights may be and still be kept: the
# epoch-to-epoch noise of adult's validation loss at the floor is about 1e-4 of it.
FLOOR_EPOCHS = 20
PLATEAU_TOLERANCE = 5e-4
LR_FACTOR = 0.5
LR_PATIENCE = 2
MIN_LR_RATIO = 0.1
N_VALIDATION_ORDERS = 8
PROGRESS_INTERVAL_S = 10.0
# ``on_tick`` (a progress bar, cheap) is called at most this often.
TICK_INTERVAL_S = 0.5
# Decay of the weight average per optimizer step: a horizon of about 200 steps, i.e. 2.7 epochs of the 75-step
# epochs of planes/flights, where it lifted overall accuracy by 0.5-1.6 points (three seeds, docs/two_table.md).
WEIGHT_AVERAGE_DECAY = 0.995
# The weight average of the flat model's floor phase: a horizon of about 1,000 steps, 8 of adult's 123-step epochs
# (an average started at the floor, about uniform over the floor phase, read 0.001-0.002 higher AUC on adult).
FLAT_WEIGHT_AVERAGE_DECAY = 0.999


class WeightAverage:
    """An exponential moving average of a model's floating-point parameters.

    The decay at update ``t`` is ``min(decay, (1 + t) / (10 + t))``, so the first updates are not dominated
    by the initial weights.
    """

    def __init__(self, model: nn.Module, decay: float = WEIGHT_AVERAGE_DECAY) -> None:
        self.decay = decay
        self.updates = 0
        self.params = {name: p.detach().clone() for name, p in model.named_parameters()}

    def update(self, model: nn.Module) -> None:
        """Move the average towards the model's current parameters."""
        self.updates += 1
        weight = 1.0 - min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        with torch.no_grad():
            for name, p in model.named_parameters():
                self.params[name].lerp_(p.detach(), weight)

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's state dict with the averaged parameters (buffers as the model has them), on the CPU."""
        state = to_cpu(model.state_dict())
        state.update(to_cpu(self.params))
        return state

    def swap(self, model: nn.Module) -> None:
        """Exchange the model's parameters with the averaged ones (call twice to undo)."""
        with torch.no_grad():
            for name, p in model.named_parameters():
                held = p.detach().clone()
                p.copy_(self.params[name])
                self.params[name] = held

    def to_state(self) -> dict[str, Any]:
        """The resumable state (CPU copies); :meth:`load_state` reads it back."""
        return {"decay": self.decay, "updates": self.updates, "params": to_cpu(self.params)}

    def load_state(self, state: Mapping[str, Any], device: torch.device) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        self.params = {name: value.to(device) for name, value in state["params"].items()}


@attrs.frozen
class TrainingResult:
    """What :func:`train_model` and :func:`train_sequential_model` return.

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


class TrainingTask(Protocol):
    """What the loop needs from a model and its data (already on the training device)."""

    n_samples: int
    """The number of training samples (rows of a flat table, subjects of a sequential one)."""
    flexible: bool
    """Whether the model trains under random column orders."""
    device: torch.device

    def draw_order(self, generator: torch.Generator) -> list[int]:
        """A column order for one batch (or one validation share)."""

    def init_prior(self) -> None:
        """Start the output biases at the training data's empirical frequencies."""

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The ``(len(samples),)`` per-sample NLL of a training batch, with gradients."""

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        """The mean per-sample validation NLL under the fixed ``orders``; ``None`` without validation data."""


def to_cpu(obj: Any) -> Any:
    """Detached CPU copies of all tensors in a nested structure of dicts, lists and tuples."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def _check_positive(name: str, value: float, *, allow_inf: bool) -> None:
    if (
        not isinstance(value, int | float)
        or math.isnan(value)
        or value <= 0
        or (math.isinf(value) and not allow_inf)
    ):
        allowed = "(0, inf]" if allow_inf else "(0, inf)"
        raise ValueError(f"{name} must be a number in the range {allowed}; got {value!r} instead.")


def check_training_arguments(
    max_epochs: float,
    max_training_time_s: float,
    batch_size: int | None,
    gradient_accumulation_steps: int | None,
    learn_rate: float | None,
) -> None:
    """Validate the schedule arguments of the training functions.

    Raises
    ------
    ValueError
        Naming the first argument that is out of range.
    """
    _check_positive("max_epochs", max_epochs, allow_inf=False)
    _check_positive("max_training_time_s", max_training_time_s, allow_inf=True)
    for name, value in (
        ("batch_size", batch_size),
        ("gradient_accumulation_steps", gradient_accumulation_steps),
    ):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an int in the range [1, inf) or None; got {value!r} instead.")
    if learn_rate is not None:
        _check_positive("learn_rate", learn_rate, allow_inf=False)


def run_training(
    model: nn.Module,
    task: TrainingTask,
    *,
    max_epochs: float,
    max_training_time_s: float,
    batch_size: int | None,
    gradient_accumulation_steps: int | None,
    learn_rate: float | None,
    empirical_prior: bool,
    generator: torch.Generator,
    on_progress: Callable[[dict[str, Any]], bool | None] | None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None,
    resume_state: Mapping[str, Any] | None,
    average_weights: bool = False,
    on_tick: Callable[[float, float], None] | None = None,
    make_private: Callable[..., PrivateSGD] | None = None,
    distributed: DistributedTraining | None = None,
    learn_rate_scale: float = 1.0,
    floor_epochs: int | None = None,
) -> TrainingResult:
    """Train ``model`` through ``task`` (see :func:`train_model` for the meaning of the arguments).

    ``learn_rate_scale`` multiplies the heuristic initial learning rate (not an explicit ``learn_rate``).

    Early stopping ends training after ``EARLY_STOPPING_PATIENCE + 1`` validations without improvement and keeps
    the best weights. ``floor_epochs`` (ignored under DP-SGD) limits that to a learning rate above its floor: the
    loop keeps a weight average (decay ``FLAT_WEIGHT_AVERAGE_DECAY``) from the first step, and once the rate is at
    the floor it trains exactly that many validated epochs there, validates the average, and keeps the latest
    averaged weights within ``PLATEAU_TOLERANCE`` (relative) of the best validation loss (see the module
    docstring). Above the floor the average is neither validated nor returned.

    With ``average_weights``, validation, the best weights and the returned weights are those of the
    :class:`WeightAverage`; the optimizer keeps stepping the raw weights. ``on_tick(epoch, total_time)`` is
    called at most every half second between steps (for a progress bar; it cannot stop training).

    ``make_private(batch_size=, steps_per_epoch=, steps_done=)`` turns on DP-SGD
    (:class:`~synthgen.privacy._dp_sgd.PrivateSGD`): Poisson batches of expected size ``batch_size``, private
    gradients, a look-ahead that stops training (reason ``"privacy_budget"``) before a step would exceed the
    budget. Nothing private then steers training: no validation, no learning-rate schedule, no early stopping,
    losses are reported as NaN, and the released weights are the last ones (their weight average with
    ``average_weights``, which is post-processing and costs no privacy).

    With ``distributed`` (see :mod:`synthgen.models._distributed`), ``batch_size`` is per rank, every step
    takes a global batch of the shared permutation, gradients are summed over the ranks, the validation loss is
    averaged over them, and rank 0 alone calls the callbacks and decides when to stop.
    """
    device = task.device
    resume = dict(resume_state) if resume_state is not None else None
    n = task.n_samples
    ranks = 1 if distributed is None else distributed.world_size
    writer = distributed is None or distributed.is_writer
    shuffle = generator if distributed is None else distributed.shared_generator
    per_rank = max(1, n // ranks)
    # the automatic batch is one process's, shared by the ranks: the same steps per epoch and learning rate
    batch_size = batch_size or (resume["batch_size"] if resume else math.ceil(batch_size_heuristic(n) / ranks))
    batch_size = min(batch_size, per_rank)
    accum = gradient_accumulation_steps or (resume["gradient_accumulation_steps"] if resume else 1)
    accum = max(1, min(accum, per_rank // batch_size))
    if make_private is not None:
        if distributed is not None:
            raise ValueError("differential privacy trains in one process; pass n_processes=1.")
        accum = 1  # a private step is one Poisson batch of expected size batch_size
    logical = batch_size * accum * ranks  # rows per optimizer step, over all ranks
    steps_per_epoch = math.ceil(n / logical)
    lr0 = learn_rate or (resume["initial_learn_rate"] if resume else learn_rate_scale * learn_rate_heuristic(logical))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=LR_FACTOR, patience=LR_PATIENCE, min_lr=MIN_LR_RATIO * lr0
    )
    floor_lr = MIN_LR_RATIO * lr0

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
            task.init_prior()
        steps, samples, base_time = 0, 0, 0.0
        best_loss, bad_epochs = math.inf, 0
        val_orders = [task.draw_order(shuffle) for _ in range(N_VALIDATION_ORDERS if task.flexible else 1)]
        best_state = None
        history = []
    if distributed is not None:
        distributed.broadcast_parameters(model)  # rank 0's initial weights everywhere, as DDP starts
    if make_private is not None:
        floor_epochs = None  # nothing private steers training: no validation, so no floor phase
    average = None
    if average_weights:
        average = WeightAverage(model)
    elif floor_epochs is not None:
        # kept from the start (1 % of a step's time), validated and returned only in the floor phase
        average = WeightAverage(model, FLAT_WEIGHT_AVERAGE_DECAY)
    if average is not None and resume and resume.get("weight_average") is not None:
        average.load_state(resume["weight_average"], device)
    private = None
    if make_private is not None:
        private = make_private(batch_size=batch_size, steps_per_epoch=steps_per_epoch, steps_done=steps)
        noise_generator = generator_on(generator, device)
        if not resume:
            private.init_prior(task, noise_generator)

    def make_state() -> dict[str, Any]:
        return {
            "model": to_cpu(model.state_dict()),
            "weight_average": None if average is None else average.to_state(),
            "best_model": best_state,
            "optimizer": to_cpu(optimizer.state_dict()),
            "scheduler": to_cpu(scheduler.state_dict()),
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
            "privacy": None if private is None else private.to_state(),
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
    last_report = last_tick = start_time
    total_time = base_time
    stop_reason = "max_epochs" if steps >= max_steps else None
    while stop_reason is None:
        if private is not None:
            batches = (private.draw_batch(generator, device) for _ in range(steps_per_epoch))
        elif (epoch_batches := getattr(task, "epoch_batches", None)) is not None:
            # a task over data not in memory (see ._streaming); on several ranks every rank streams the same
            # global batches (the shared generator) and trains on its share of each, as in memory
            batches = epoch_batches(logical, shuffle)
        else:
            batches = torch.randperm(n, generator=shuffle).to(device).split(logical)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        epoch_rows, local_rows, cut_short = 0, 0, False
        for logical_rows in batches:
            if private is not None and not private.can_step():
                stop_reason, cut_short = "privacy_budget", True
                break
            optimizer.zero_grad(set_to_none=True)
            if private is None:
                own_rows = logical_rows if distributed is None else distributed.share(logical_rows)
                for rows in own_rows.split(batch_size):
                    nll = task.batch_nll(rows, generator)
                    (nll.sum() / len(logical_rows)).backward()
                    loss_sum += nll.detach().double().sum()
                local_rows += len(own_rows)
                if distributed is not None:
                    distributed.all_reduce_gradients(model.parameters())
            else:
                loss_sum += private.step_gradients(model, task, logical_rows, generator, noise_generator)
                local_rows += len(logical_rows)
            optimizer.step()
            if average is not None:
                average.update(model)
            steps, samples, epoch_rows = (
                steps + 1,
                samples + len(logical_rows),
                epoch_rows + len(logical_rows),
            )
            now = time.perf_counter()
            total_time = base_time + now - start_time
            if steps >= max_steps:
                stop_reason = "max_epochs"
                break
            interrupt = None
            if total_time >= max_training_time_s:
                interrupt = "max_training_time"
            elif writer and on_tick is not None and now - last_tick >= TICK_INTERVAL_S:
                last_tick = now
                on_tick(steps / steps_per_epoch, total_time)
            if interrupt is None and writer and on_progress is not None and now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                if on_progress(record(_train_loss(loss_sum, local_rows, private), math.nan, False)):
                    interrupt = "callback"
            if distributed is not None:
                interrupt = distributed.decide(interrupt)
            if interrupt is not None:
                stop_reason, cut_short = interrupt, True
                break
        if distributed is None:
            trn_loss = _train_loss(loss_sum, local_rows, private)
        else:
            total_loss, total_rows = distributed.sum(float(loss_sum), float(local_rows))
            trn_loss = total_loss / max(1.0, total_rows)
        if private is not None:
            # the released weights are the last ones; every epoch is a checkpoint of them
            best_state = to_cpu(model.state_dict()) if average is None else average.state_dict(model)
        if cut_short:
            history.append(record(trn_loss, math.nan, private is not None))
            if writer and on_checkpoint is not None:
                on_checkpoint(make_state())
            if writer and on_progress is not None and stop_reason != "callback":
                on_progress(history[-1])
            break
        if private is not None:
            total_time = base_time + time.perf_counter() - start_time
            history.append(record(trn_loss, math.nan, True))
            if on_checkpoint is not None:
                on_checkpoint(make_state())
            if on_progress is not None and on_progress(history[-1]) and stop_reason is None:
                stop_reason = "callback"
            if total_time >= max_training_time_s and stop_reason is None:
                stop_reason = "max_training_time"
            continue
        # in the floor phase the epoch trained at the floor (the rate is read before this validation lowers it)
        in_floor_phase = floor_epochs is not None and _at_floor(optimizer, floor_lr)
        validate_average = average is not None and (floor_epochs is None or in_floor_phase)
        if validate_average:
            average.swap(model)  # validate (and keep) the averaged weights
        val_loss = task.validation_loss(val_orders)
        if distributed is not None:
            val_loss = distributed.mean_validation_loss(val_loss)
        val_loss = trn_loss if val_loss is None else val_loss
        scheduler.step(val_loss)
        improved = val_loss < best_loss
        if improved:
            best_loss, bad_epochs = val_loss, 0
        # the weights kept: the best ones, or in the floor phase the latest average as good as the best within
        # the noise of the validation loss
        kept = improved or (
            in_floor_phase
            and math.isfinite(val_loss)
            and val_loss <= best_loss + PLATEAU_TOLERANCE * abs(best_loss)
        )
        if kept:
            best_state = to_cpu(model.state_dict())
        if validate_average:
            average.swap(model)
        if not improved:
            bad_epochs += 1
            if not math.isfinite(val_loss) and best_state is not None:
                model.load_state_dict(best_state)
                if average is not None:
                    average = WeightAverage(model, average.decay)
        total_time = base_time + time.perf_counter() - start_time
        history.append(record(trn_loss, val_loss, kept))
        if writer and on_checkpoint is not None:
            on_checkpoint(make_state())
        if writer and on_progress is not None and on_progress(history[-1]) and stop_reason is None:
            stop_reason = "callback"
        if floor_epochs is None or not _at_floor(optimizer, floor_lr):
            if bad_epochs > EARLY_STOPPING_PATIENCE and stop_reason is None:
                stop_reason = "early_stopping"
        elif stop_reason is None:
            # the validation losses of the epochs trained at the floor (after the one that lowered the rate to it)
            at_floor = [r["val_loss"] for r in history
                        if not math.isnan(r["val_loss"]) and r["learn_rate"] <= floor_lr * (1 + 1e-6)][1:]
            if len(at_floor) >= floor_epochs:
                stop_reason = "early_stopping"
        if total_time >= max_training_time_s and stop_reason is None:
            stop_reason = "max_training_time"
        if distributed is not None:
            stop_reason = distributed.decide(stop_reason)

    if best_state is None:  # nothing validated: the last weights (averaged where the average is what is released)
        best_state = average.state_dict(model) if average_weights else to_cpu(model.state_dict())
    final_state = make_state()
    model.load_state_dict(best_state)
    return TrainingResult(
        history=history, best_state_dict=best_state, state=final_state, stop_reason=stop_reason
    )


def _at_floor(optimizer: torch.optim.Optimizer, floor_lr: float) -> bool:
    return optimizer.param_groups[0]["lr"] <= floor_lr * (1 + 1e-6)


def _train_loss(loss_sum: torch.Tensor, rows: int, private: PrivateSGD | None) -> float:
    # Under DP the loss is not released (it is a statistic of the private rows that no accountant covers).
    return math.nan if private is not None else float(loss_sum) / max(1, rows)


def resume_on_new_data(state: Mapping[str, Any]) -> dict[str, Any]:
    """A resumable state that continues its run on other data.

    The optimizer (moments and learning rate), counters, history and budgets carry on; what describes the old
    data restarts: the best validation loss and the early-stopping patience (losses on another validation set do
    not compare), the plateau memory of the learning-rate schedule, and the weight average.
    """
    scheduler = {**state["scheduler"], "best": math.inf, "num_bad_epochs": 0, "cooldown_counter": 0}
    return {**state, "best_val_loss": math.inf, "early_stop_counter": 0, "weight_average": None,
            "scheduler": scheduler}
