"""Encoded sequences in their flat layout, and padded training batches gathered from it without loops.

The steps of all subjects are stored back to back in one ``(total_steps, n_sub_columns)`` code tensor;
``offsets[i] .. offsets[i + 1]`` are subject ``i``'s steps. A batch picks a window of each picked subject's
steps with one gather into a ``(batch, steps, n_sub_columns)`` tensor.
"""

from __future__ import annotations

import attrs
import torch

__all__ = ["SequenceData", "StepBatch", "draw_windows", "full_windows", "gather_batch"]

# Window placement shares of the reference engine: the first window, the last window, or a random one.
FIRST_WINDOW_SHARE = 0.3
LAST_WINDOW_SHARE = 0.1


@attrs.frozen(eq=False)
class SequenceData:
    """Subjects with their context codes and their sequences of step codes.

    Parameters
    ----------
    context : torch.Tensor
        ``(n_subjects, n_context_sub_columns)`` integer codes (zero columns for a key-only context).
    steps : torch.Tensor
        ``(sum(lengths), n_sub_columns)`` integer codes of all steps, subject by subject, without an
        end-of-sequence step.
    lengths : torch.Tensor
        ``(n_subjects,)`` sequence lengths (0 allowed).

    Examples
    --------
    >>> data = SequenceData(torch.zeros(2, 0), torch.zeros(3, 1), torch.tensor([1, 2]))
    >>> data.offsets.tolist()
    [0, 1, 3]
    """

    context: torch.Tensor
    steps: torch.Tensor
    lengths: torch.Tensor = attrs.field(converter=lambda v: torch.as_tensor(v).long())

    @property
    def n_subjects(self) -> int:
        """The number of subjects."""
        return len(self.lengths)

    @property
    def offsets(self) -> torch.Tensor:
        """``(n_subjects + 1,)`` int64: where each subject's steps start in :attr:`steps` (and the total)."""
        return torch.cat([self.lengths.new_zeros(1), self.lengths.cumsum(0)])

    def to(self, device: torch.device) -> SequenceData:
        """The same data on ``device``."""
        return SequenceData(self.context.to(device), self.steps.to(device), self.lengths.to(device))

    def subset(self, subjects: torch.Tensor) -> SequenceData:
        """The data of ``subjects`` (indices), in that order."""
        lengths = self.lengths[subjects]
        starts = self.offsets[subjects]
        rows = torch.repeat_interleave(
            starts - torch.cat([lengths.new_zeros(1), lengths.cumsum(0)[:-1]]), lengths
        )
        rows = rows + torch.arange(int(lengths.sum()), device=lengths.device)
        return SequenceData(self.context[subjects], self.steps[rows], lengths)

    def concat(self, other: SequenceData) -> SequenceData:
        """The subjects of this data followed by those of ``other``."""
        return SequenceData(torch.cat([self.context, other.context.to(self.context.dtype)]),
                            torch.cat([self.steps, other.steps.to(self.steps.dtype)]),
                            torch.cat([self.lengths, other.lengths]))


@attrs.frozen(eq=False)
class StepBatch:
    """A padded batch: each subject's context, length and one window of its steps.

    Attributes
    ----------
    context : torch.Tensor
        ``(batch, n_context_sub_columns)`` int64 context codes.
    lengths : torch.Tensor
        ``(batch,)`` full sequence lengths.
    codes : torch.Tensor
        ``(batch, window, n_sub_columns)`` int64 step codes, zero beyond each row's ``n_steps``.
    previous : torch.Tensor
        ``(batch, n_sub_columns)`` codes of the step before the window (meaningful where ``start > 0``).
    start : torch.Tensor
        ``(batch,)`` absolute position of ``codes[:, 0]``.
    n_steps : torch.Tensor
        ``(batch,)`` valid steps of each row.
    n_warmup : torch.Tensor
        ``(batch,)`` leading steps that feed the history but are not scored.
    length_targets : torch.Tensor or None
        ``(batch, max_len + 1)`` target distributions for the length head instead of the exact lengths.
    """

    context: torch.Tensor
    lengths: torch.Tensor
    codes: torch.Tensor
    previous: torch.Tensor
    start: torch.Tensor
    n_steps: torch.Tensor
    n_warmup: torch.Tensor
    length_targets: torch.Tensor | None = None


def full_windows(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(start, n_steps, n_warmup)`` that cover every sequence completely."""
    zeros = torch.zeros_like(lengths)
    return zeros, lengths.clone(), zeros.clone()


def draw_windows(
    lengths: torch.Tensor, window: int, warmup: int, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random training windows of at most ``window`` scored steps per sequence.

    A sequence longer than ``window`` is cut to its first window (30 %), its last window (10 %) or a window
    at a uniformly random start (60 %), drawn per sequence. Up to ``warmup`` steps before the window are
    added unscored, so the history does not start cold in the middle of a sequence.

    Returns
    -------
    tuple of torch.Tensor
        ``(start, n_steps, n_warmup)``: the first gathered step, the gathered steps (warm-up included)
        and the warm-up steps, per sequence.
    """
    spare = (lengths - window).clamp(min=0)
    u = torch.rand(len(lengths), generator=generator, device=lengths.device)
    v = torch.rand(len(lengths), generator=generator, device=lengths.device)
    random_start = torch.minimum((v * (spare + 1)).long(), spare)
    scored_start = torch.where(
        u < FIRST_WINDOW_SHARE,
        torch.zeros_like(spare),
        torch.where(u < FIRST_WINDOW_SHARE + LAST_WINDOW_SHARE, spare, random_start),
    )
    start = (scored_start - warmup).clamp(min=0)
    n_steps = torch.minimum(lengths, scored_start + window) - start
    return start, n_steps, scored_start - start


def gather_batch(
    data: SequenceData,
    subjects: torch.Tensor,
    start: torch.Tensor,
    n_steps: torch.Tensor,
    n_warmup: torch.Tensor,
) -> StepBatch:
    """Gather the given windows of ``subjects`` into a padded :class:`StepBatch`."""
    offsets = data.offsets
    first = offsets[subjects] + start
    width = int(n_steps.max()) if len(n_steps) else 0
    n_sub = data.steps.shape[1]
    if width:
        position = torch.arange(width, device=first.device)
        valid = position < n_steps[:, None]
        rows = (first[:, None] + position).masked_fill_(~valid, 0)
        codes = data.steps[rows].long().masked_fill_(~valid[..., None], 0)
    else:
        codes = torch.zeros(len(subjects), 0, n_sub, dtype=torch.long, device=first.device)
    if len(data.steps):
        previous = data.steps[(first - 1).clamp(0, len(data.steps) - 1)].long()
    else:
        previous = torch.zeros(len(subjects), n_sub, dtype=torch.long, device=first.device)
    return StepBatch(
        context=data.context[subjects].long(),
        lengths=data.lengths[subjects],
        codes=codes,
        previous=previous,
        start=start,
        n_steps=n_steps,
        n_warmup=n_warmup,
    )
