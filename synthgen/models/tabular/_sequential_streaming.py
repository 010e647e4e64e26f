"""Training of the sequential model on encoded parts read one at a time, for sequences larger than memory.

As :mod:`._streaming` does for the flat model: an epoch visits the parts of subjects in a random order and the
subjects of each part in a random order (:func:`~._streaming.streamed_windows`); the subjects left over at the
end of a part join the next part's, so every subject is in exactly one batch of an epoch and an epoch has as
many steps as in memory. A subject's sequence is whole in its part (split keeps an entity's rows in one
partition). The output biases start from code counts summed over the parts; the length smoothing and the length
head see every training length (one integer per subject, held in memory). Validation streams the validation
parts and gives the in-memory loss for the same subjects. Memory: one part (plus the leftover subjects of the
previous one) on the training device.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import torch

from ._lengths import SHRINKAGE, LengthSmoother
from ._loop import TrainingResult, check_training_arguments, run_training
from ._sampling import generator_on
from ._sequence_batches import SequenceData
from ._sequential import SequentialARGN
from ._sequential_trainer import DEFAULT_SEQUENCE_WINDOW, DEFAULT_WINDOW_WARMUP, _SequentialTask, check_window
from ._streaming import streamed_ranks, streamed_windows
from ._validation import sequential_validation_loss

__all__ = ["SequenceParts", "train_sequential_model_streamed"]


class SequenceParts(Protocol):
    """Parts of subjects on disk (or anywhere), loaded one at a time."""

    sizes: Sequence[int]
    """The number of subjects of each part."""

    def load(self, index: int) -> SequenceData:
        """The subjects of part ``index``."""

    def lengths(self, index: int) -> torch.Tensor:
        """The sequence lengths of part ``index`` (cheaper than :meth:`load`)."""


class _StreamedSequentialTask(_SequentialTask):
    """The sequential task over :class:`SequenceParts`; ``self.trn`` is the window of subjects that moves
    through the parts during an epoch."""

    def __init__(self, model: SequentialARGN, trn: SequenceParts, val: SequenceParts | None, window: int,
                 warmup: int, device: torch.device, generator: torch.Generator) -> None:
        self.model, self.device = model, device
        self.parts, self.val_parts = trn, val if val is not None and sum(val.sizes) else None
        self.window, self.warmup = window, warmup
        self.device_generator = generator_on(generator, device)
        self.all_lengths = torch.cat([trn.lengths(i).long() for i in range(len(trn.sizes))]).to(device)
        self.lengths = LengthSmoother(self.all_lengths, model.spec.max_len, shrinkage=SHRINKAGE)
        self.trn: SequenceData | None = None

    @property
    def n_samples(self) -> int:
        return int(sum(self.parts.sizes))

    def _load(self, parts: SequenceParts, index: int) -> SequenceData:
        return parts.load(index).to(self.device)

    def init_prior(self) -> None:
        counts, progress, pairs, n_steps = None, None, None, 0
        for index in range(len(self.parts.sizes)):
            part = self._load(self.parts, index)
            if len(part.steps):
                # the histograms are sums over the parts (each holds whole sequences): those of the whole data
                part_counts = self.model.step_model.code_counts(part.steps)
                part_progress = self.model.progress_code_counts(part.steps, part.lengths)
                part_pairs = self.model.value_pairs.counts(part.steps)
                counts = part_counts if counts is None else counts + part_counts
                progress = part_progress if progress is None else progress + part_progress
                pairs = part_pairs if pairs is None else pairs + part_pairs
                n_steps += len(part.steps)
        if counts is not None:
            self.model.step_model.init_output_bias_from_counts(counts, n_steps)
        no_steps = torch.zeros((0, len(self.model.spec.step.cardinalities)), dtype=torch.long, device=self.device)
        self.model.init_output_bias(no_steps, self.all_lengths, self.lengths.histogram())
        if progress is not None:  # the calibration's targets by progress, as in memory
            self.model.progress_counts.copy_(progress)
            self.model.pair_counts.copy_(pairs)

    def epoch_batches(self, logical: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Index batches into ``self.trn``, which moves through the parts (in a random order) between batches."""
        windows = streamed_windows(self.parts.sizes, lambda index: self._load(self.parts, index), logical, generator,
                                   self.device, take=SequenceData.subset, join=SequenceData.concat,
                                   count=lambda data: data.n_subjects)
        for window, rows in windows:
            self.trn = window
            yield rows
        self.trn = None

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        if self.val_parts is None:
            return None
        return sequential_validation_loss(self.model, lambda index: self._load(self.val_parts, index),
                                          self.val_parts.sizes, orders, self.device)


def train_sequential_model_streamed(
    model: SequentialARGN,
    trn_parts: SequenceParts,
    val_parts: SequenceParts | None,
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
) -> TrainingResult:
    """:func:`~._sequential_trainer.train_sequential_model` on parts read one at a time (see the module notes).

    Parameters
    ----------
    model : SequentialARGN
        The model; trained in place and left holding the best (averaged) weights.
    trn_parts, val_parts : SequenceParts
        The training and (optional) validation parts.
    max_sequence_window, window_warmup, max_epochs, max_training_time_s, batch_size, \
gradient_accumulation_steps, learn_rate, empirical_prior, device, generator, on_progress, on_checkpoint, \
resume_state, on_tick
        As for :func:`~._sequential_trainer.train_sequential_model`.

    Returns
    -------
    TrainingResult
    """
    check_training_arguments(max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate)
    check_window(max_sequence_window, window_warmup)
    if sum(trn_parts.sizes) == 0:
        raise ValueError("trn_parts must hold at least one subject; got 0.")
    device = torch.device(device) if device is not None else model.length_bias.device
    model.to(device).train()
    distributed, generator = streamed_ranks(device, generator, val_parts)
    task = _StreamedSequentialTask(model, trn_parts, val_parts, max_sequence_window, window_warmup, device,
                                   generator)
    return run_training(
        model, task, max_epochs=max_epochs, max_training_time_s=max_training_time_s, batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps, learn_rate=learn_rate,
        empirical_prior=empirical_prior, generator=generator, on_progress=on_progress,
        on_checkpoint=on_checkpoint, resume_state=resume_state, on_tick=on_tick, average_weights=True,
        distributed=distributed)
