"""``encode``: turn the split data into integer sub-column codes for training.

Output: ``OriginalData/encoded-data/part.NNNNNN-{trn,val}.parquet``, one row per subject, rows shuffled.

- LANGUAGE target: one row per target row with the text of each target field (``tgt:<column>``) and of its
  context row's columns (``ctx:<column>``, the prompt); see :mod:`synthgen.stages._language`.

- Flat target: the target's codes (and, with a context, the context row's codes).
- Sequential target: list columns, one list per subject holding its steps, truncated to the protected
  maximum length, followed by one end-of-sequence step whose codes are all 0; positional list columns
  ``tgt:/__sidx`` (0..L), ``tgt:/__slen`` (L) and ``tgt:/__ridx`` (L..0); scalar context codes. A subject
  without target rows is a sequence of just the end-of-sequence step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .._options import ENGINE_DEFAULTS, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator
from .._workspace import Workspace, locks_workspace
from ..column_encodings import SequenceIndex
from ..domain import ModelType, ProgressCallback
from ._codec import POSITIONAL, encode_table
from ._language import encode_language_partition

__all__ = ["encode", "sequence_layout"]


def sequence_layout(subject_of_row: np.ndarray, n_subjects: int, max_len: int):
    """Where each kept row lands in the flattened, end-of-sequence padded layout.

    ``subject_of_row`` is non-decreasing. Returns the kept-row mask, their destination indices, the lengths
    (without the end step) and the list offsets (``n_subjects + 1``).
    """
    counts = np.bincount(subject_of_row, minlength=n_subjects)
    first_row = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(subject_of_row)) - first_row[subject_of_row]
    keep = rank < max_len
    lengths = np.minimum(counts, max_len)
    offsets = np.concatenate([[0], np.cumsum(lengths + 1)])
    destination = offsets[subject_of_row[keep]] + rank[keep]
    return keep, destination, lengths, offsets


def _list_array(flat: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(flat))


def _sequential_columns(tgt_codes: dict, subject_of_row: np.ndarray, n_subjects: int, max_len: int) -> dict:
    keep, destination, lengths, offsets = sequence_layout(subject_of_row, n_subjects, max_len)
    total = int(offsets[-1])
    columns: dict[str, pa.Array] = {}
    step_subject = np.repeat(np.arange(n_subjects), lengths + 1)
    sidx = np.arange(total) - offsets[step_subject]
    slen = lengths[step_subject]
    for name, values in zip(POSITIONAL, (sidx, slen, slen - sidx), strict=True):
        columns[name] = _list_array(values.astype(np.int32), offsets)
    for name, codes in tgt_codes.items():
        flat = np.zeros(total, dtype=codes.dtype)
        flat[destination] = codes[keep]
        columns[name] = _list_array(flat, offsets)
    return columns


def _encode_partition(ws: Workspace, name: str, stats: dict, ctx_stats: dict | None,
                      rng: np.random.Generator) -> pa.Table:
    tgt = ws.read_parquet(ws.data_dir("tgt") / name)
    if stats.get("model_type") == ModelType.LANGUAGE.value:
        ctx = ws.read_parquet(ws.data_dir("ctx") / name) if ctx_stats is not None else None
        return encode_language_partition(tgt, ctx, stats, ctx_stats, rng)
    tgt_rng, ctx_rng, shuffle_rng = rng.spawn(3)
    context_key = stats["keys"].get("context_key")
    sequence = SequenceIndex(pd.factorize(tgt[context_key])[0]) if context_key else None
    tgt_codes = encode_table(tgt, stats["columns"], table="tgt", rng=tgt_rng, sequence=sequence)
    if ctx_stats is None:
        columns = {k: pa.array(v) for k, v in tgt_codes.items()}
        n_rows = len(tgt)
    else:
        ctx = ws.read_parquet(ws.data_dir("ctx") / name)
        ctx_codes = encode_table(ctx, ctx_stats["columns"], table="ctx", rng=ctx_rng)
        subject_of_row = pd.Index(ctx[ctx_stats["keys"]["primary_key"]]).get_indexer(tgt[context_key])
        if stats["is_sequential"]:
            columns = {k: pa.array(v) for k, v in ctx_codes.items()}
            columns.update(_sequential_columns(tgt_codes, subject_of_row, len(ctx), stats["seq_len"]["max"]))
            n_rows = len(ctx)
        else:  # at most one target row per subject: a flat table conditioned on its context row
            columns = {k: pa.array(v[subject_of_row]) for k, v in ctx_codes.items()}
            columns.update({k: pa.array(v) for k, v in tgt_codes.items()})
            n_rows = len(tgt)
    return pa.table(columns).take(pa.array(shuffle_rng.permutation(n_rows)))


@locks_workspace("encode")
def encode(
    *,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """Encode the split and analyzed data into ``OriginalData/encoded-data``.

    Parameters
    ----------
    workspace_dir : str, Path or Workspace, default="engine-ws"
    update_progress : callable, optional
    random_state : None, int, RandomState or Generator, optional
        Seed of the row shuffle and of the values imputed under NULL flags.
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Returns
    -------
    Workspace

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> ws = sg.split(load_census(), workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> sg.encode(workspace_dir="ws", random_state=0)
    Workspace('ws')
    """
    validate_all("encode", {"workspace_dir": workspace_dir, "update_progress": update_progress,
                            "random_state": random_state, "verbose": verbose})
    ws = workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    ws.require("analyze")
    ws.clear_from("encode")
    stats = ws.read_stats("tgt")
    ctx_stats = ws.read_stats("ctx") if ws.has_context() else None
    parts = ws.partitions(ws.data_dir("tgt"))
    rng = as_generator(random_state)
    with ProgressReporter(len(parts), description="encode", callback=update_progress, verbose=verbose) as progress:
        with ws.staged_dir(ws.encoded_data) as folder:
            for part, part_rng in zip(parts, rng.spawn(len(parts)), strict=True):
                table = _encode_partition(ws, part.name, stats, ctx_stats, part_rng)
                ws.write_parquet(table, Path(folder) / part.name)
                progress.update()
    return ws
