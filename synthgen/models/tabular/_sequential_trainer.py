"""Training of the sequential model on the shared schedule of :mod:`._loop`.

An epoch is a pass over a fresh permutation of the training subjects. Each batch gathers, per subject, one
window of at most ``max_sequence_window`` scored steps (plus a few unscored warm-up steps before it) into a
padded tensor with one vectorised index; the length term is trained on every subject. The loss of a subject
is its length NLL plus the NLL of its scored steps, and the batch loss is the mean over subjects.
Validation scores complete sequences, so it measures exactly what generation unrolls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch

from .._distributed import DistributedTraining
from ._lengths import SHRINKAGE, LengthSmoother
from ._loop import TrainingResult, check_training_arguments, run_training
from ._sampling import generator_on
from ._sequence_batches import SequenceData, draw_windows, gather_batch
from ._sequential import SequentialARGN
from ._trainer import check_codes
from ._validation import sequential_validation_loss

__all__ = [
    "DEFAULT_SEQUENCE_WINDOW",
    "DEFAULT_WINDOW_WARMUP",
    "check_sequence_data",
    "train_sequential_model",
]

# 40 scored steps (plus the warm-up) per entity and batch: on planes/flights as accurate per epoch as the
# reference's 100 at 1.8x the epochs per second (12 epochs: overall accuracy 89.8 / 88.9 % vs 89.6 / 90.6 % for
# seeds 0 / 1), so a time budget reaches a better model (4 minutes: 91.2 / 90.3 % vs 88.9 %).
DEFAULT_SEQUENCE_WINDOW = 40
# 40 unscored steps before a window feed the history: the LSTM then learns to carry an entity's habits (its
# destinations, its schedule) over 80 steps, as generation needs over whole sequences. With 8, synthetic planes
# were closer to training planes than to holdout ones 52.9 % of the time on average (DCR share, planes/flights,
# 4-minute budget, seven runs, 51.3-54.7 %); with 40, 51.3 % (five runs, 50.3-53.9 %), at the same accuracy and
# 15 % fewer epochs per minute (docs/two_table.md).
DEFAULT_WINDOW_WARMUP = 40
# Four times the flat model's initial learning rate (1e-3 * sqrt(batch / 32)) without DP: a sequence batch holds
# 32 entities but thousands of scored steps, and at a time budget the sequential model stops far from
# converged. planes/flights, 8 epochs (clock times coded as hour and minute): discriminator AUC 0.945 / 0.830 /
# 0.725 and overall accuracy 90.8 / 91.6 / 93.2 % at 1x / 2x / 4x (docs/benchmarks.md, the two-table ablations).
LEARN_RATE_SCALE = 4.0


def check_sequence_data(name: str, data: SequenceData, model: SequentialARGN) -> None:
    """Check shapes, code ranges and lengths of ``data`` against ``model``.

    Raises
    ------
    ValueError
        Naming ``name`` and what is wrong.
    """
    if not isinstance(data, SequenceData):
        raise ValueError(f"{name} must be a SequenceData; got {type(data).__name__}.")
    spec = model.spec
    lengths = data.lengths
    if lengths.dim() != 1:
        raise ValueError(f"{name}.lengths must be 1-d; got shape {tuple(lengths.shape)}.")
    if len(lengths) and (int(lengths.min()) < 0 or int(lengths.max()) > spec.max_len):
        raise ValueError(
            f"{name}.lengths must lie in 0..{spec.max_len} (max_len); "
            f"got {int(lengths.min())}..{int(lengths.max())}."
        )
    check_codes(f"{name}.context", data.context, spec.context_cardinalities)
    if len(data.context) != len(lengths):
        raise ValueError(
            f"{name}.context must hold one row per subject ({len(lengths)}); got {len(data.context)}."
        )
    check_codes(f"{name}.steps", data.steps, spec.step.cardinalities)
    total = int(lengths.sum())
    if len(data.steps) != total:
        raise ValueError(f"{name}.steps must hold sum(lengths) = {total} rows; got {len(data.steps)}.")


def check_window(max_sequence_window: int, window_warmup: int) -> None:
    """Refuse a window of less than one step or a negative warm-up."""
    for name, value, low in (
        ("max_sequence_window", max_sequence_window, 1),
        ("window_warmup", window_warmup, 0),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int in the range [{low}, inf); got {value!r} instead.")


class _SequentialTask:
    """Subjects of a :class:`SequenceData` as a :class:`~._loop.TrainingTask`."""

    def __init__(
        self,
        model: SequentialARGN,
        trn: SequenceData,
        val: SequenceData | None,
        window: int,
        warmup: int,
        device: torch.device,
        generator: torch.Generator,
        smooth_lengths: bool = True,
    ) -> None:
        self.model = model
        self.device = device
        self.trn = trn.to(device)
        self.val = val.to(device) if val is not None and val.n_subjects else None
        self.window = window
        self.warmup = warmup
        self.device_generator = generator_on(generator, device)
        # the smoothing reads the counts of all training lengths, so under DP (where a subject's gradient may
        # depend on its own data only) the targets are the exact lengths
        self.lengths = LengthSmoother(self.trn.lengths, model.spec.max_len,
                                      shrinkage=SHRINKAGE if smooth_lengths else 0.0)

    @property
    def n_samples(self) -> int:
        return self.trn.n_subjects

    @property
    def flexible(self) -> bool:
        return self.model.spec.step.flexible

    def draw_order(self, generator: torch.Generator) -> list[int]:
        return self.model.step_model.draw_order(generator)

    def init_prior(self) -> None:
        self.model.init_output_bias(self.trn.steps, self.trn.lengths, self.lengths.histogram())

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        order = self.draw_order(generator)
        windows = draw_windows(self.trn.lengths[samples], self.window, self.warmup, self.device_generator)
        batch = gather_batch(self.trn, samples, *windows)
        # Validation scores the exact lengths; training aims at the smoothed ones (see _lengths).
        batch = attrs.evolve(batch, length_targets=self.lengths.targets(batch.lengths))
        return self.model(batch, order, generator=self.device_generator)

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        if self.val is None:
            return None
        return sequential_validation_loss(self.model, lambda _: self.val, [self.val.n_subjects], orders,
                                          self.device)


def train_sequential_model(
    model: SequentialARGN,
    trn: SequenceData,
    val: SequenceData | None,
    *,
    max_sequence_window: int = DEFAULT_SEQUENCE_WINDOW,
    window_warmup: int = DEFAULT_WINDOW_WARMUP,
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
) -> TrainingResult:
    """Train a :class:`SequentialARGN` to early stopping, an epoch budget or a time budget.

    The schedule is the flat model's (see :func:`train_model`): AdamW at ``1e-3 * sqrt(batch / 32)`` (four times
    that without DP, :data:`LEARN_RATE_SCALE`),
    ReduceLROnPlateau, early stopping after 5 validations without improvement, fixed validation orders,
    best weights kept, except that the weights validated and kept are an exponential moving average of the
    iterates (:class:`~._loop.WeightAverage`; the resumable state holds both). Batches are subjects; the loss
    of a subject is its length NLL plus the NLL of the steps of one training window. The length term aims at smoothed lengths (:class:`~._lengths.LengthSmoother`:
    lengths of few subjects are spread by about ±5 %, so that the exact lengths of single training subjects
    are not reproduced); validation scores the exact lengths.

    Parameters
    ----------
    model : SequentialARGN
        The model; trained in place and left holding the best weights.
    trn, val : SequenceData
        Training and validation subjects (``val`` may be ``None`` or empty: the epoch's training loss then
        drives the schedule). Lengths must not exceed the model's ``max_len``.
    max_sequence_window : int, default=40
        The most steps of one subject scored per batch; longer sequences are cut to a window (the first
        one 30 % of the time, the last one 10 %, a random one 60 %).
    window_warmup : int, default=40
        Steps before a window that feed the history without being scored.
    max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate, empirical_prior
        As in :func:`train_model`; ``batch_size`` counts subjects.
    device, generator, on_progress, on_checkpoint, resume_state, on_tick, make_private
        As in :func:`train_model`. Under DP (``make_private``) a sample is a subject with all its events, and
        the length targets are exact (the smoothing would mix subjects).

    Returns
    -------
    TrainingResult
        History, best weights, final resumable state and the reason training stopped.

    Raises
    ------
    ValueError
        For invalid arguments or data that does not fit the model.
    """
    check_training_arguments(
        max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate
    )
    check_window(max_sequence_window, window_warmup)
    check_sequence_data("trn", trn, model)
    if trn.n_subjects == 0:
        raise ValueError("trn must hold at least one subject; got 0.")
    if val is not None:
        check_sequence_data("val", val, model)
    device = torch.device(device) if device is not None else model.length_bias.device
    model.to(device).train()
    distributed = DistributedTraining.current(device)
    if distributed is not None:  # this rank's validation share and random generator
        generator = distributed.rank_generator(generator)
        if val is not None:
            val = val.subset(distributed.validation_rows(val.n_subjects))
            distributed.n_validation = val.n_subjects
    task = _SequentialTask(model, trn, val, max_sequence_window, window_warmup, device, generator,
                           smooth_lengths=make_private is None)
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
        average_weights=True,
        make_private=make_private,
        learn_rate_scale=LEARN_RATE_SCALE if make_private is None else 1.0,
        distributed=distributed,
    )
