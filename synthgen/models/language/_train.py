"""Training of the language models: the tabular schedule over records, with the loss on target tokens only.

The schedule (shuffled epochs, AdamW, ReduceLROnPlateau, early stopping on the validation loss, epoch and
time budgets, resumable state, the best weights) is :func:`synthgen.models.tabular._loop.run_training`;
this module supplies the records as a :class:`~synthgen.models.tabular._loop.TrainingTask`. A sample's loss
is the summed negative log-likelihood of its target tokens (the record's log-likelihood given its prompt):
prompt tokens get the label -100, so the context is conditioned on and never learned, which spends no
capacity, and under DP no clipping budget, on it (guide, NEXT-CAPABILITIES §1.2.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ..tabular._loop import TrainingResult, check_training_arguments, run_training
from ..tabular._streaming import streamed_windows
from ._lstm import LSTMLanguageModel
from ._records import EncodedRecords

__all__ = ["IGNORE_INDEX", "RecordParts", "language_learn_rate", "make_batch", "record_nll", "train_language_model"]

IGNORE_INDEX = -100
# Tokens per validation forward pass (rows x length), to bound the (rows x length x vocabulary) logits.
_VALIDATION_TOKENS = 2**14


def language_learn_rate(model: nn.Module) -> float:
    """2e-3 for the from-scratch LSTM; 2e-4 for a LoRA adapter.

    The reference engine uses 4e-4 for the LSTM: measured on 2,400 tweets records (batch 32, validation loss
    in nats per record after epochs 1 / 2 / 3), 4e-4 gave 349 / 312 / 294, 1e-3 gave 310 / 283 / 267 and 2e-3
    gave 288 / 261 / 243: 2e-3 reaches in one epoch what 4e-4 reaches in three (the plateau schedule lowers
    it later). The reference uses 2e-5 for adapters, which is low for LoRA (1e-4 to 2e-4 is usual).
    """
    return 2e-3 if isinstance(model, LSTMLanguageModel) else 2e-4


def _pad_records(records: EncodedRecords, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All sequences right-padded into one ``(n, max_len)`` tensor, with their lengths and prompt lengths."""
    tokens, lengths = records.padded(pad_id)
    return (torch.from_numpy(tokens), torch.from_numpy(lengths),
            torch.as_tensor(records.prompt_lengths, dtype=torch.long))


def make_batch(
    tokens: torch.Tensor, lengths: torch.Tensor, prompt_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, labels and attention mask of padded records.

    Position ``t`` predicts token ``t + 1``; its label is -100 when that token belongs to the prompt or to
    the padding. The batch is trimmed to its longest record.
    """
    width = int(lengths.max())
    tokens = tokens[:, :width]
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    position = torch.arange(1, width, device=tokens.device)[None, :]
    is_target = (position >= prompt_lengths[:, None]) & (position < lengths[:, None])
    labels = targets.masked_fill(~is_target, IGNORE_INDEX)
    attention_mask = (position - 1 < lengths[:, None]).long()
    return inputs, labels, attention_mask


def record_nll(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``(B,)``: each record's summed negative log-likelihood over its labelled (target) tokens."""
    if isinstance(model, LSTMLanguageModel):
        # The output layer and the softmax over the vocabulary, most of a step's work, only where a label is
        # (not on padding or the prompt): the same sums, 1.4-1.9x faster per step and far less memory.
        labelled = labels != IGNORE_INDEX
        logits = model.head(model.hidden_states(inputs, attention_mask=mask)[labelled])
        nll = nn.functional.cross_entropy(logits.float(), labels[labelled], reduction="none")
        rows = torch.arange(len(labels), device=labels.device)[:, None].expand_as(labels)[labelled]
        return torch.zeros(len(labels), dtype=nll.dtype, device=nll.device).index_add_(0, rows, nll)
    logits = model(inputs, attention_mask=mask)
    nll = nn.functional.cross_entropy(
        logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="none"
    )
    return nll.view(labels.shape).sum(1)


class _RecordTask:
    """The records of one training run, as the shared loop's ``TrainingTask``."""

    flexible = False

    def __init__(self, model, trn: EncodedRecords, val: EncodedRecords | None, pad_id: int, device):
        self.model = model
        self.device = device
        self.trn = tuple(t.to(device) for t in _pad_records(trn, pad_id))
        self.val = (
            tuple(t.to(device) for t in _pad_records(val, pad_id)) if val is not None and len(val) else None
        )
        self.n_samples = len(trn)

    def draw_order(self, generator: torch.Generator) -> list[int]:
        return []  # one fixed field order

    def init_prior(self) -> None:
        """No empirical prior for language models (the loop is called with ``empirical_prior=False``)."""

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.model.train()
        return record_nll(self.model, *make_batch(*(t[samples] for t in self.trn)))

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        if self.val is None:
            return None
        tokens, lengths, prompts = self.val
        rows_per_pass = max(1, _VALIDATION_TOKENS // tokens.shape[1])
        total = 0.0
        self.model.eval()
        with torch.no_grad():
            for rows in torch.arange(len(tokens), device=self.device).split(rows_per_pass):
                total += float(
                    record_nll(self.model, *make_batch(tokens[rows], lengths[rows], prompts[rows])).sum()
                )
        self.model.train()
        return total / len(tokens)


class RecordParts(Protocol):
    """Record parts on disk (or anywhere), loaded one at a time."""

    sizes: Sequence[int]
    """The number of records of each part."""

    def load(self, index: int) -> EncodedRecords:
        """The records of part ``index``."""


def _records_nll(model: nn.Module, records: EncodedRecords, pad_id: int, device) -> torch.Tensor:
    return record_nll(model, *make_batch(*(t.to(device) for t in _pad_records(records, pad_id))))


class _StreamedRecordTask:
    """The records of parts read one at a time, as a ``TrainingTask`` whose ``epoch_batches`` streams them.

    An epoch visits the parts in a random order and each part's records in a random order; the records left at
    the end of a part join the next part's (:func:`~synthgen.models.tabular._streaming.streamed_windows`), so
    every record is in exactly one batch and the steps per epoch are those of the in-memory task.
    """

    flexible = False

    def __init__(self, model, trn: RecordParts, val: RecordParts | None, pad_id: int, device):
        self.model, self.trn, self.val, self.pad_id, self.device = model, trn, val, pad_id, device
        self.n_samples = int(sum(trn.sizes))
        self.window: EncodedRecords | None = None

    def draw_order(self, generator: torch.Generator) -> list[int]:
        return []

    def init_prior(self) -> None:
        """No empirical prior for language models."""

    def epoch_batches(self, logical: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """Index batches into ``self.window``, which moves through the parts between batches."""
        windows = streamed_windows(
            self.trn.sizes, self.trn.load, logical, generator, torch.device("cpu"),
            take=lambda records, rows: records.take(rows.numpy()), join=lambda a, b: EncodedRecords.concat([a, b]),
            count=len)
        for window, rows in windows:
            self.window = window
            yield rows
        self.window = None

    def batch_nll(self, samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        self.model.train()
        return _records_nll(self.model, self.window.take(samples.cpu().numpy()), self.pad_id, self.device)

    def validation_loss(self, orders: list[list[int]]) -> float | None:
        if self.val is None or sum(self.val.sizes) == 0:
            return None
        total = 0.0
        self.model.eval()
        with torch.no_grad():
            for index, size in enumerate(self.val.sizes):
                if size == 0:
                    continue
                records = self.val.load(index)
                rows_per_pass = max(1, _VALIDATION_TOKENS // int(records.lengths.max()))
                for start in range(0, len(records), rows_per_pass):
                    chunk = records.take(np.arange(start, min(start + rows_per_pass, len(records))))
                    total += float(_records_nll(self.model, chunk, self.pad_id, self.device).sum())
        self.model.train()
        return total / sum(self.val.sizes)


def train_language_model(
    model: nn.Module,
    trn: EncodedRecords | RecordParts,
    val: EncodedRecords | RecordParts | None,
    *,
    pad_id: int,
    max_epochs: float = 100.0,
    max_training_time_s: float = math.inf,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
    learn_rate: float | None = None,
    device: str | torch.device | None = None,
    generator: torch.Generator,
    on_progress: Callable[[dict[str, Any]], bool | None] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    resume_state: Mapping[str, Any] | None = None,
    make_private: Callable[..., Any] | None = None,
) -> TrainingResult:
    """Train an LSTM or LoRA language model on encoded records, with the loss on target tokens only.

    Parameters
    ----------
    model : LSTMLanguageModel or HFLanguageModel
        Trained in place (for a LoRA model only the adapter is trainable); left holding the best weights.
    trn, val : EncodedRecords or RecordParts
        Training and validation records (see :func:`~._records.encode_records`). Without validation
        records the epoch's training loss drives the schedule and early stopping. Parts (an object with
        ``sizes`` and ``load(index)`` giving ``EncodedRecords``, both sides alike) are read one at a time:
        batches are drawn within a part (see :class:`_StreamedRecordTask`); not with ``make_private``.
    pad_id : int
        The tokenizer's padding id.
    max_epochs, max_training_time_s : float
        Epoch and time budgets (counted across resumptions).
    batch_size : int or None
        Records per forward pass; default 32 for the LSTM, 8 for a transformer (capped at the record count).
    gradient_accumulation_steps : int or None
        Forward passes per optimizer step (default 1).
    learn_rate : float or None
        Default :func:`language_learn_rate`.
    device : str, torch.device or None
        Default: the model's device.
    generator : torch.Generator
        The source of all randomness: record order and (through a forked global generator that leaves the
        caller's untouched) dropout.
    on_progress, on_checkpoint, resume_state, make_private
        As for :func:`synthgen.models.tabular.train_model` (under DP a sample is one record).

    Returns
    -------
    TrainingResult
        ``history`` (one record per epoch with ``trn_loss`` and ``val_loss`` in nats per record), the best
        weights, the resumable ``state`` (weights, optimizer, scheduler, counters) and the stop reason.
    """
    check_training_arguments(
        max_epochs, max_training_time_s, batch_size, gradient_accumulation_steps, learn_rate
    )
    streamed = not isinstance(trn, EncodedRecords)
    n_trn = int(sum(trn.sizes)) if streamed else len(trn)
    if n_trn == 0:
        raise ValueError("trn must hold at least one record; got 0.")
    if streamed and make_private is not None:
        raise ValueError("differential privacy trains on records in memory; pass EncodedRecords, not parts.")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    if batch_size is None and resume_state is None:
        batch_size = min(32 if isinstance(model, LSTMLanguageModel) else 8, n_trn)
    task = (_StreamedRecordTask if streamed else _RecordTask)(model, trn, val, pad_id, device)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    cuda = device.type == "cuda"
    # Dropout draws from torch's global generators; fork those of the CPU and the training device (only
    # those: torch.manual_seed would reseed every GPU) so that the caller's streams are left untouched and
    # the run is reproducible from ``generator`` alone.
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        return run_training(
            model,
            task,
            max_epochs=max_epochs,
            max_training_time_s=max_training_time_s,
            batch_size=batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            learn_rate=learn_rate or (None if resume_state else language_learn_rate(model)),
            empirical_prior=False,
            generator=generator,
            on_progress=on_progress,
            on_checkpoint=on_checkpoint,
            resume_state=resume_state,
            make_private=make_private,
        )
