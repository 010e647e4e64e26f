"""Read the encoded training data back as tensors for the models."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .._workspace import Workspace
from ..models.tabular import SequenceData

__all__ = ["STREAMING_THRESHOLD_BYTES", "EncodedParts", "EncodedSequenceParts", "load_flat_codes", "load_sequences",
           "streamed_flat_codes", "streamed_sequences"]


def _stack(columns: list[np.ndarray], n_rows: int) -> torch.Tensor:
    if not columns:
        return torch.zeros((n_rows, 0), dtype=torch.int16)
    dtype = np.result_type(*columns)
    return torch.from_numpy(np.stack(columns, axis=1).astype(dtype, copy=False))


def load_flat_codes(ws: Workspace, side: str, names: list[str]) -> torch.Tensor:
    """The ``side`` ("trn"/"val") codes of the scalar sub-columns ``names`` as one ``(n, len(names))`` tensor."""
    tables = ws.read_encoded(side, names)
    n_rows = sum(t.num_rows for t in tables)
    return _stack([np.concatenate([t.column(n).to_numpy() for t in tables]) if tables else np.zeros(0, np.int16)
                   for n in names], n_rows)


def _without_end_steps(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Flat values of a list column without each list's last (end-of-sequence) element, and the lengths."""
    array = column.combine_chunks()
    offsets = array.offsets.to_numpy()
    values = array.values.to_numpy()
    keep = np.ones(len(values), dtype=bool)
    keep[offsets[1:] - 1] = False
    return values[keep], np.diff(offsets) - 1


def _sequences(table: pa.Table | None, tgt_names: list[str], ctx_names: list[str]) -> SequenceData:
    """The subjects of an encoded table: context codes, their steps' codes (end steps stripped), lengths."""
    if table is None or table.num_rows == 0:
        return SequenceData(torch.zeros((0, len(ctx_names)), dtype=torch.int16),
                            torch.zeros((0, len(tgt_names)), dtype=torch.int16), torch.zeros(0, dtype=torch.int64))
    steps, lengths = [], None
    for name in tgt_names:
        values, lengths = _without_end_steps(table.column(name))
        steps.append(values)
    if lengths is None:  # no target sub-columns: lengths from the positional column
        _, lengths = _without_end_steps(table.column(_POSITIONS))
    context = _stack([table.column(n).to_numpy() for n in ctx_names], table.num_rows)
    return SequenceData(context, _stack(steps, int(lengths.sum())), torch.from_numpy(lengths.astype(np.int64)))


def load_sequences(ws: Workspace, side: str, tgt_names: list[str], ctx_names: list[str]) -> SequenceData:
    """The ``side`` subjects: context codes, their steps' codes (end steps stripped) and their lengths."""
    tables = ws.read_encoded(side, tgt_names + ctx_names + [_POSITIONS])
    return _sequences(pa.concat_tables(tables) if tables else None, tgt_names, ctx_names)


# Above this many bytes of training codes (int16 per sub-column and row or step, context included) a model
# trains on the encoded parts one at a time instead of one tensor (see synthgen.models.tabular._streaming and
# ._sequential_streaming).
STREAMING_THRESHOLD_BYTES = 2**30
# The positional column of an encoded sequence: one entry per step, plus the end step.
_POSITIONS = "tgt:/__slen"


class EncodedParts:
    """The ``side`` parts of the encoded data, loaded one at a time (a :class:`CodeParts` for streamed training)."""

    def __init__(self, ws: Workspace, side: str, names: list[str], ctx_names: list[str]) -> None:
        self.paths = ws.partitions(ws.encoded_data, side)
        self.names, self.ctx_names = names, ctx_names
        self.sizes = [pq.read_metadata(path).num_rows for path in self.paths]

    @property
    def nbytes(self) -> int:
        """The in-memory size of all parts' codes, at two bytes per code."""
        return 2 * sum(self.sizes) * (len(self.names) + len(self.ctx_names))

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        table = pq.read_table(self.paths[index], columns=self.names + self.ctx_names)
        n_rows = table.num_rows
        codes = _stack([table.column(n).to_numpy() for n in self.names], n_rows)
        ctx = _stack([table.column(n).to_numpy() for n in self.ctx_names], n_rows) if self.ctx_names else None
        return codes, ctx


def streamed_flat_codes(ws: Workspace, names: list[str], ctx_names: list[str],
                        threshold: int | None = None) -> tuple[EncodedParts, EncodedParts] | None:
    """The training and validation parts to stream, or ``None`` when the codes fit under the threshold (then the
    in-memory path, one tensor per side, is used as before)."""
    trn = EncodedParts(ws, "trn", names, ctx_names)
    if trn.nbytes <= (STREAMING_THRESHOLD_BYTES if threshold is None else threshold):
        return None
    return trn, EncodedParts(ws, "val", names, ctx_names)


class EncodedSequenceParts:
    """The ``side`` parts of encoded sequences, loaded one at a time (a ``SequenceParts`` for streamed
    training); a part holds whole subjects."""

    def __init__(self, ws: Workspace, side: str, tgt_names: list[str], ctx_names: list[str]) -> None:
        self.paths = ws.partitions(ws.encoded_data, side)
        self.tgt_names, self.ctx_names = tgt_names, ctx_names
        self.sizes = [pq.read_metadata(path).num_rows for path in self.paths]

    def lengths(self, index: int) -> torch.Tensor:
        _, lengths = _without_end_steps(pq.read_table(self.paths[index], columns=[_POSITIONS]).column(_POSITIONS))
        return torch.from_numpy(lengths.astype(np.int64))

    def nbytes(self) -> int:
        """The in-memory size of all parts' codes, at two bytes per code (reads the lengths of every part)."""
        steps = sum(int(self.lengths(i).sum()) for i in range(len(self.sizes)))
        return 2 * (steps * len(self.tgt_names) + sum(self.sizes) * len(self.ctx_names))

    def load(self, index: int) -> SequenceData:
        table = pq.read_table(self.paths[index], columns=self.tgt_names + self.ctx_names + [_POSITIONS])
        return _sequences(table, self.tgt_names, self.ctx_names)


def streamed_sequences(ws: Workspace, tgt_names: list[str], ctx_names: list[str],
                       threshold: int | None = None) -> tuple[EncodedSequenceParts, EncodedSequenceParts] | None:
    """The training and validation parts of sequences to stream, or ``None`` when their codes fit under the
    threshold (then they are loaded whole, as before)."""
    trn = EncodedSequenceParts(ws, "trn", tgt_names, ctx_names)
    if trn.nbytes() <= (STREAMING_THRESHOLD_BYTES if threshold is None else threshold):
        return None
    return trn, EncodedSequenceParts(ws, "val", tgt_names, ctx_names)
