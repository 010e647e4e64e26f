"""The validation loss of the tabular trainers, in memory and streamed from parts alike.

Each of the fixed validation column orders scores one contiguous share of the validation rows (subjects), the
shares of ``torch.arange(n).tensor_split(n_orders)``, so the estimate is deterministic and costs one pass. The
rows are scored in chunks that bound the activations held at once. Data held as parts (read one at a time) is
cut at the same share boundaries, so a streamed trainer gives the in-memory loss for the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from ._sequence_batches import SequenceData, full_windows, gather_batch

__all__ = ["flat_validation_loss", "sequential_validation_loss"]

# Activations of the widest layer scored at once during validation (a chunk of rows or steps).
VALIDATION_ELEMENTS = 2**24


def chunk_rows(spec, minimum: int) -> int:
    """Rows (steps) per validation chunk of a model ``spec``: about ``VALIDATION_ELEMENTS`` activations, at least
    ``minimum``."""
    return max(minimum, VALIDATION_ELEMENTS // (spec.n_sub_columns * max(spec.hidden_dim, max(spec.cardinalities))))


def part_segments(sizes: Sequence[int], n_orders: int) -> Iterator[tuple[int, int, int, int]]:
    """``(part, order, low, high)``: the rows ``[low, high)`` of ``part`` that the share of order ``order`` holds,
    part by part (a part is read once); the shares are those of ``tensor_split`` over all the parts' rows."""
    size, extra = divmod(int(sum(sizes)), n_orders)
    bounds = [k * size + min(k, extra) for k in range(n_orders + 1)]
    offset = 0
    for index, n in enumerate(sizes):
        for order in range(n_orders):
            low, high = max(bounds[order], offset) - offset, min(bounds[order + 1], offset + n) - offset
            if low < high:
                yield index, order, low, high
        offset += n


def mean_nll(model: nn.Module, scored: Iterable[torch.Tensor], n: int, device: torch.device) -> float:
    """The sum of the per-row NLLs that ``scored`` yields (lazily: run in eval mode without gradients),
    divided by ``n``; the model's training mode is restored."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    try:
        with torch.no_grad():
            for nll in scored:
                total += nll.double().sum()
    finally:
        model.train(was_training)
    return float(total) / n


def flat_validation_loss(model, load: Callable[[int], tuple[torch.Tensor, torch.Tensor | None]],
                         sizes: Sequence[int], orders: list[list[int]], device: torch.device) -> float:
    """The mean NLL per row of a :class:`~._network.FlatARGN` over the parts of ``sizes`` rows that
    ``load(index)`` gives as ``(codes, context codes or None)`` on ``device``."""
    chunk = chunk_rows(model.spec, 256)

    def scored() -> Iterator[torch.Tensor]:
        loaded: tuple = (None, None, None)
        for index, order, low, high in part_segments(sizes, len(orders)):
            if loaded[0] != index:
                loaded = (index, *load(index))
            _, codes, ctx = loaded
            for start in range(low, high, chunk):
                rows = slice(start, min(start + chunk, high))
                yield model(codes[rows], None if ctx is None else ctx[rows], orders[order])

    return mean_nll(model, scored(), int(sum(sizes)), device)


def sequential_validation_loss(model, load: Callable[[int], SequenceData], sizes: Sequence[int],
                               orders: list[list[int]], device: torch.device) -> float:
    """The mean NLL per subject of a :class:`~._sequential.SequentialARGN` over the parts of ``sizes`` subjects
    that ``load(index)`` gives on ``device``; complete sequences, in chunks of about ``chunk_rows`` steps (at
    least one subject each)."""
    budget = chunk_rows(model.spec.step, 1)

    def scored() -> Iterator[torch.Tensor]:
        loaded: tuple = (None, None)
        for index, order, low, high in part_segments(sizes, len(orders)):
            if loaded[0] != index:
                loaded = (index, load(index))
            data = loaded[1]
            share = torch.arange(low, high, device=device)
            chunk_of = data.lengths[share].cumsum(0).sub(1).clamp(min=0).div(budget, rounding_mode="floor")
            for chunk in torch.unique_consecutive(chunk_of, return_counts=True)[1].tolist():
                subjects, share = share[:chunk], share[chunk:]
                yield model(gather_batch(data, subjects, *full_windows(data.lengths[subjects])), orders[order])

    return mean_nll(model, scored(), int(sum(sizes)), device)
