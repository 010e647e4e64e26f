"""Read the encoded training data back as tensors for the models."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from .._workspace import Workspace
from ..models.tabular import SequenceData

__all__ = ["concat_sequences", "load_flat_codes", "load_sequences"]


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


def load_sequences(ws: Workspace, side: str, tgt_names: list[str], ctx_names: list[str]) -> SequenceData:
    """The ``side`` subjects: context codes, their steps' codes (end steps stripped) and their lengths."""
    tables = ws.read_encoded(side, tgt_names + ctx_names + ["tgt:/__slen"])
    table = pa.concat_tables(tables) if tables else None
    if table is None or table.num_rows == 0:
        return SequenceData(torch.zeros((0, len(ctx_names)), dtype=torch.int16),
                            torch.zeros((0, len(tgt_names)), dtype=torch.int16), torch.zeros(0, dtype=torch.int64))
    steps, lengths = [], None
    for name in tgt_names:
        values, lengths = _without_end_steps(table.column(name))
        steps.append(values)
    if lengths is None:  # no target sub-columns: lengths from the positional column
        _, lengths = _without_end_steps(table.column("tgt:/__slen"))
    context = _stack([table.column(n).to_numpy() for n in ctx_names], table.num_rows)
    return SequenceData(context, _stack(steps, int(lengths.sum())), torch.from_numpy(lengths.astype(np.int64)))


def concat_sequences(first: SequenceData, second: SequenceData) -> SequenceData:
    """The subjects of ``first`` followed by those of ``second``."""
    steps = torch.cat([first.steps, second.steps.to(first.steps.dtype)])
    return SequenceData(torch.cat([first.context, second.context.to(first.context.dtype)]), steps,
                        torch.cat([first.lengths, second.lengths]))
