"""Training of the flat model on code parts that are read one at a time, for data larger than memory.

The in-memory trainer (:mod:`._trainer`) draws each epoch as one permutation of all rows of one tensor. Here
an epoch visits the parts in a fresh random order and the rows of each part in a fresh random order; the rows
left over at the end of a part (fewer than a logical batch) join the first rows of the next part, so every
epoch holds exactly ``n`` rows in ``ceil(n / logical batch)`` steps, as in memory. Rows of one batch come from
at most two neighbouring parts instead of the whole table: for parts of shuffled rows (encode shuffles each
partition, and split deals subjects to partitions at random) that is a minor loss of randomness. Memory: one
part (and the leftover of the previous one) on the training device.

Validation streams the validation parts the same way and scores each contiguous share of the validation rows
under its fixed column order, as the in-memory trainer does, so both give the same loss for the same data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import torch

from .._distributed import DistributedTraining
from ._loop import FLOOR_EPOCHS, TrainingResult, check_training_arguments, run_training
from ._network import FlatARGN
from ._sampling import generator_on
from ._validation import flat_validation_loss

__all__ = ["CodeParts", "streamed_ranks", "streamed_windows", "train_model_streamed"]

T = TypeVar("T")


class CodeParts(Protocol):
    """Code parts on disk (or anywhere), loaded one at a time."""

    sizes: Sequence[int]
    """The number of rows of each part."""

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The codes ``(n, n_sub_columns)`` and context codes (or ``None``) of part ``index``."""


def streamed_windows(sizes: Sequence[int], load: Callable[[int], T], logical: int, generator: torch.Generator,
                     device: torch.device, *, take: Callable[[T, torch.Tensor], T], join: Callable[[T, T], T],
                     count: Callable[[T], int]) -> Iterator[tuple[T, torch.Tensor]]:
    """One epoch over parts of samples: ``(window, rows)``, batches of ``logical`` rows indexing ``window``.

    The parts are visited in a random order and the samples of each in a random order (``take(part, order)``);
    the samples left at the end of a part (fewer than ``logical``) join the next part's (``join``), so every
    sample is in exactly one batch and all batches but the last are full. ``count`` gives a window's samples.
    """
    carry = None
    for index in torch.randperm(len(sizes), generator=generator).tolist():
        if sizes[index] == 0:
            continue
        part = load(index)
        shuffled = take(part, torch.randperm(count(part), generator=generator).to(device))
        window = shuffled if carry is None else join(carry, shuffled)
        n = count(window)
        n_full = n // logical * logical
        for start in range(0, n_full, logical):
            yield window, torch.arange(start, start + logical, device=device)
        carry = take(window, torch.arange(n_full, n, device=device)) if n_full < n else None
    if carry is not None:
        yield carry, torch.arange(count(carry), device=device)


def streamed_ranks(device: torch.device, generator: torch.Generator, val_parts) -> tuple[
        DistributedTraining | None, torch.Generator]:
    """The rank of distributed training (None on one process) and this rank's generator.

    Every rank streams all parts in the same order (the shared generator draws it), trains on its share of each
    global batch, and scores the whole validation side, so each part is read by every rank but memory stays one
    part per rank.
    """
    distributed = DistributedTraining.current(device)
    if distributed is not None:
        generator = distributed.rank_generator(generator)
        distributed.n_validation = int(sum(val_parts.sizes)) if val_parts is not None else 0
    return distributed, generator


def _take_rows(part: tuple[torch.Tensor, torch.Tensor | None], rows: torch.Tensor):
    codes, ctx = part
    return codes[rows], None if ctx is None else ctx[rows]


def _join_rows(first: tuple[torch.Tensor, torch.Tensor | None], second: tuple[torch.Tensor, torch.Tensor | None]):
    return torch.cat([first[0], second[0]]), None if second[1] is None else torch.cat([first[1], second[1]])


class _StreamedFlatTask:
    """A :class:`~._loop.TrainingTask` over :class:`CodeParts`, with an ``epoch_batches`` that streams them."""

    def __init__(self, model: FlatARGN, trn: CodeParts, val: CodeParts | None, device: torch.device,
                 generator: torch.Generator) -> None:
        self.model, self.trn, self.val, self.device = model, trn, val, device
        self.dropout_generator = generator_on(generator, device)
        self.window: torch.Tensor | None = None
        self.window_ctx: torch.Tensor | None = None

    @property
    def n_samples(self) -> int:
        return int(sum(self.trn.sizes))

    @property
    def flexible(self) -> bool:
        return self.model.spec.flexible

    def draw_order(self, generator: torch.Generator) -> list[int]:
        return self.model.draw_order(generator)

    def _load(self, parts: CodeParts, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        codes, ctx = parts.load(index)
        return codes.to(self.device), None if ctx is None else ctx.to(self.device)

    def init_prior(self) -> None:
        counts = None
        for index in range(len(self.trn.sizes)):
            codes, _ = self._load(self.trn, index)
            part_counts = self.model.code_counts(codes)
            counts = part_counts if counts is None else counts + part_counts
        self.model.init_output_bias_from_counts(counts, self.n_samples)

    def epoch_batches(self, logical: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Index batches into ``self.window``, which moves through the parts (in a random order) between batches."""
        windows = streamed_windows(self.trn.sizes, lambda index: self._load(self.trn, index), logical, generator,
                                   self.device, take=_take_rows, join=_join_rows, count=lambda part: len(part[0]))
        for window, rows in windows:
            self.window, self.window_ctx = window
            yield rows
        self.window = self.window_ctx = None

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ctx = None if self.window_ctx is None else self.window_ctx[samples]
        return self.model(self.window[samples], ctx, self.model.draw_order(generator),
                          generator=self.dropout_generator)

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        if self.val is None or sum(self.val.sizes) == 0:
            return None
        return flat_validation_loss(self.model, lambda index: self._load(self.val, index), self.val.sizes, orders,
                                    self.device)


def train_model_streamed(
    model: FlatARGN,
    trn_parts: CodeParts,
    val_parts: CodeParts | None,
    *,
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
    """:func:`~._trainer.train_model` on code parts read one at a time (see the module notes).

    Parameters
    ----------
    model : FlatARGN
        The model; trained in place and left holding the best weights.
    trn_parts, val_parts : CodeParts
        The training and (optional) validation parts; a model with context needs their context codes.
    max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate, empirical_prior, \
device, generator, on_progress, on_checkpoint, resume_state, on_tick
        As for :func:`~._trainer.train_model`.

    Returns
    -------
    TrainingResult
    """
    check_training_arguments(max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate)
    if sum(trn_parts.sizes) == 0:
        raise ValueError("trn_parts must hold at least one row; got 0.")
    device = torch.device(device) if device is not None else model.in_weight.device
    model.to(device).train()
    distributed, generator = streamed_ranks(device, generator, val_parts)
    task = _StreamedFlatTask(model, trn_parts, val_parts, device, generator)
    return run_training(
        model, task, max_epochs=max_epochs, max_training_time_s=max_training_time_s, batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps, learn_rate=learn_rate,
        empirical_prior=empirical_prior, generator=generator, on_progress=on_progress,
        on_checkpoint=on_checkpoint, resume_state=resume_state, on_tick=on_tick, distributed=distributed,
        floor_epochs=FLOOR_EPOCHS)  # the in-memory flat schedule, floor phase included
