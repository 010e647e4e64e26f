"""``split``: validate keys, resolve encoding types, split subjects into training and validation, write parts."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads

from .._dtypes import check_restorable, dtype_name, dtype_spec
from .._options import ENGINE_DEFAULTS, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator
from .._workspace import Workspace, locks_workspace
from ..domain import ModelEncodingType, ModelType, ProgressCallback
from ._columns import (
    check_frame,
    check_unique,
    example,
    normalize_storage,
    resolve_encoding_types,
    resolve_model_type,
)
from ._parquet_source import ParquetSource, is_table_source
from ._split_streamed import FrameSource, check_key_kinds, split_streamed

__all__ = ["split"]

_log = logging.getLogger(__name__)


def _check_keys(tgt_data, ctx_data, tgt_primary_key, ctx_primary_key, tgt_context_key) -> None:
    check_frame(tgt_data, name="tgt_data", keys={"tgt_primary_key": tgt_primary_key,
                                                 "tgt_context_key": tgt_context_key})
    if tgt_primary_key is not None and tgt_primary_key == tgt_context_key:
        raise ValueError("tgt_primary_key and tgt_context_key must be different columns.")
    if tgt_primary_key is not None:
        check_unique(tgt_data[tgt_primary_key], parameter="tgt_primary_key", column=tgt_primary_key)
    if ctx_data is None:
        if ctx_primary_key is not None:
            raise ValueError("ctx_primary_key is given but ctx_data is None.")
        return
    if tgt_context_key is None:
        raise ValueError("ctx_data is given, so tgt_context_key must name the column of tgt_data that refers to it.")
    if ctx_primary_key is None:
        raise ValueError("ctx_data is given, so ctx_primary_key must name its primary key column.")
    check_frame(ctx_data, name="ctx_data", keys={"ctx_primary_key": ctx_primary_key})
    check_unique(ctx_data[ctx_primary_key], parameter="ctx_primary_key", column=ctx_primary_key)
    missing = ~tgt_data[tgt_context_key].isin(ctx_data[ctx_primary_key])
    if missing.any():
        check_key_kinds(tgt_data, ctx_data, tgt_context_key, ctx_primary_key, _key_kind)
        raise ValueError(
            f"{int(missing.sum())} rows of tgt_data have a tgt_context_key {tgt_context_key!r} that is not a "
            f"ctx_primary_key of ctx_data, e.g. {example(tgt_data[tgt_context_key][missing].iloc[0])}."
        )


def _key_kind(values: pd.Series) -> str:
    """What a key column holds, as far as matching keys goes: ``int``, ``str``, ``float``, ``datetime``..."""
    kind = pd.api.types.infer_dtype(values, skipna=True)
    return {"integer": "int", "string": "str", "floating": "float", "mixed-integer-float": "float",
            "datetime64": "datetime", "datetime": "datetime", "boolean": "bool"}.get(kind, kind)


def _split_subjects(n_subjects: int, trn_val_split, rng: np.random.Generator, keys: pd.Index | None):
    """Boolean mask over subjects: True = training."""
    if callable(trn_val_split):
        if keys is None:
            keys = pd.RangeIndex(n_subjects)
        trn_keys, _ = trn_val_split(pd.Series(keys))
        return np.asarray(pd.Index(keys).isin(list(trn_keys)))
    n_trn = int(round(trn_val_split * n_subjects))
    n_trn = min(max(n_trn, 1), n_subjects - 1) if n_subjects > 1 else n_subjects
    is_trn = np.zeros(n_subjects, dtype=bool)
    is_trn[rng.permutation(n_subjects)[:n_trn]] = True
    return is_trn


def _subject_partitions(is_trn: np.ndarray, n_partitions: int, rng: np.random.Generator) -> np.ndarray:
    """Partition index of each subject: round-robin over the shuffled subjects of each side."""
    partition = np.empty(len(is_trn), dtype=np.int64)
    for side in (True, False):
        members = rng.permutation(np.flatnonzero(is_trn == side))
        partition[members] = np.arange(len(members)) % n_partitions
    return partition


def _prepare(frame: pd.DataFrame, encoding_types: dict, *, name: str) -> pd.DataFrame:
    # positional: the user's index (shuffled, duplicated, MultiIndex) must not realign values
    frame = frame.reset_index(drop=True)
    prepared = {column: frame[column] for column in frame.columns}
    for column, encoding in encoding_types.items():
        prepared[column] = normalize_storage(frame[column], encoding, column=column, name=name)
    return pd.DataFrame(prepared)


def _dtype_specs(frame: pd.DataFrame, encoding_types: dict) -> dict:
    """The dtype spec of every column; key columns (not modelled) by dtype name."""
    return {c: dtype_spec(frame[c]) if c in encoding_types else dtype_name(frame[c].dtype) for c in frame.columns}


def _write_parts(ws: Workspace, table: str, frame: pd.DataFrame, row_partition: np.ndarray,
                 row_is_trn: np.ndarray, n_partitions: int, progress: ProgressReporter) -> None:
    with ws.staged_dir(ws.data_dir(table)) as folder:
        for index in range(n_partitions):
            for side, is_trn in (("trn", True), ("val", False)):
                rows = np.flatnonzero((row_partition == index) & (row_is_trn == is_trn))
                ws.write_parquet(frame.iloc[rows].reset_index(drop=True), Path(folder) / ws.partition_name(index, side))
            progress.update()


def _resolve_types(tgt_data: pd.DataFrame, ctx_data: pd.DataFrame | None, *, model_type, tgt_encoding_types,
                   ctx_encoding_types, tgt_primary_key, ctx_primary_key, tgt_context_key):
    """The model type and the checked encoding types of the target's and the context's columns.

    ``tgt_data`` / ``ctx_data`` may be the first rows of a table on disk: only dtypes and a sample are looked at.
    """
    resolved_model_type = resolve_model_type(model_type, tgt_encoding_types)
    tgt_keys = {k for k in (tgt_primary_key, tgt_context_key) if k is not None}
    tgt_types = resolve_encoding_types(
        tgt_data, tgt_encoding_types, name="tgt_data", parameter="tgt_encoding_types",
        key_columns=tgt_keys, model_type=resolved_model_type,
    )
    if not tgt_types:
        raise ValueError("tgt_data has no columns besides its keys; there is nothing to synthesize.")
    wrong_family = [c for c, t in tgt_types.items() if t.model_type != resolved_model_type]
    if wrong_family:
        raise ValueError(
            f"model_type is {resolved_model_type.value}, but tgt_encoding_types gives columns {wrong_family} "
            "encodings of the other model type; do not mix TABULAR_* and LANGUAGE_* encodings."
        )
    check_restorable(tgt_data, tgt_types, name="tgt_data", parameter="tgt_encoding_types")
    relative = [c for c, t in tgt_types.items() if t == ModelEncodingType.TABULAR_DATETIME_RELATIVE]
    if relative and tgt_context_key is None:
        raise ValueError(
            f"Columns {relative} are TABULAR_DATETIME_RELATIVE, which encodes times between the events of a "
            "sequence and needs a tgt_context_key."
        )
    ctx_types: dict[str, ModelEncodingType] = {}
    if ctx_data is not None:
        ctx_types = resolve_encoding_types(
            ctx_data, ctx_encoding_types, name="ctx_data", parameter="ctx_encoding_types",
            key_columns={ctx_primary_key}, model_type=ModelType.TABULAR,
        )
        bad = [c for c, t in ctx_types.items()
               if t.model_type != ModelType.TABULAR or t == ModelEncodingType.TABULAR_DATETIME_RELATIVE]
        if bad:
            raise ValueError(f"ctx_encoding_types: context columns {bad} need flat TABULAR_* encodings.")
        check_restorable(ctx_data, ctx_types, name="ctx_data", parameter="ctx_encoding_types")
    elif ctx_encoding_types:
        raise ValueError("ctx_encoding_types is given but ctx_data is None.")

    return resolved_model_type, tgt_types, ctx_types


@locks_workspace("split")
def split(
    tgt_data: pd.DataFrame | str | os.PathLike | pads.Dataset,
    *,
    ctx_data: pd.DataFrame | str | os.PathLike | pads.Dataset | None = None,
    tgt_primary_key: str | None = None,
    ctx_primary_key: str | None = None,
    tgt_context_key: str | None = None,
    model_type: str | ModelType | None = None,
    tgt_encoding_types: Mapping[str, str | ModelEncodingType] | None = None,
    ctx_encoding_types: Mapping[str, str | ModelEncodingType] | None = None,
    n_partitions: int = ENGINE_DEFAULTS.n_partitions,
    trn_val_split: float | Callable = ENGINE_DEFAULTS.trn_val_split,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """Split the original data into training and validation parts and store them in the workspace.

    All rows of a subject (a context key of a two-table target, a row of a flat table) land on the same side.
    Writes ``OriginalData/tgt-data``, ``tgt-meta`` and, with a context, ``ctx-data``, ``ctx-meta``.

    Parameters
    ----------
    tgt_data : DataFrame, str, PathLike or pyarrow.dataset.Dataset
        The target table; a parquet file, a folder of parquet files or a pyarrow dataset for tables larger
        than memory: it is read in batches (never whole) and written into at least as many partitions as keep
        each under :data:`~synthgen.stages._parquet_source.PARTITION_BYTES` (256 MiB) of memory.
    ctx_data : DataFrame, str, PathLike or pyarrow.dataset.Dataset, optional
        The context table: one row per subject, referred to by ``tgt_context_key``.
    tgt_primary_key, ctx_primary_key, tgt_context_key : str, optional
        Key columns. A ``tgt_context_key`` without ``ctx_data`` groups the target into sequences with a
        context of keys only.
    model_type : {"TABULAR", "LANGUAGE"}, optional
        Inferred from the declared encoding types, else TABULAR.
    tgt_encoding_types, ctx_encoding_types : dict, optional
        Encoding type per non-key column; the others are inferred from dtypes (numbers → numeric auto,
        datetimes → datetime, everything else → categorical).
    n_partitions : int, default=1
        Number of partitions of each side.
    trn_val_split : float or callable, default=0.8
        Share of subjects for training, or ``f(keys) -> (trn_keys, val_keys)``. For a table on disk the share
        is drawn per subject from a seeded hash of its key (so close to, not exactly, this share) and the
        callable is called once per batch of keys.
    workspace_dir : str, Path or Workspace, default="engine-ws"
        The workspace folder; an existing file is rejected. Held locked while split writes (see
        :meth:`Workspace.lock`).
    update_progress : callable, optional
        The engine's progress callback.
    random_state : None, int, RandomState or Generator, optional
        Seed of the subject shuffle.
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Returns
    -------
    Workspace
        A handle to the workspace (the data is on disk).

    Raises
    ------
    ValueError
        An invalid option (in scikit-learn's form, naming ``split``) or invalid data: missing or duplicate
        keys, key columns that mix Python types, context keys of another type than the target's, duplicate
        column names, integers beyond 64 bits, complex numbers.

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census, load_flights
    >>> sg.split(load_census(), workspace_dir="ws", random_state=0)
    Workspace('ws')
    >>> planes, flights = load_flights()
    >>> ws = sg.split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
    ...               workspace_dir="ws2", random_state=0)
    >>> ws.has_context()
    True
    """
    options = validate_all("split", {
        "tgt_primary_key": tgt_primary_key, "ctx_primary_key": ctx_primary_key, "tgt_context_key": tgt_context_key,
        "model_type": model_type, "tgt_encoding_types": tgt_encoding_types, "ctx_encoding_types": ctx_encoding_types,
        "n_partitions": n_partitions, "trn_val_split": trn_val_split, "workspace_dir": workspace_dir,
        "update_progress": update_progress, "random_state": random_state, "verbose": verbose})
    model_type = options["model_type"]
    if is_table_source(tgt_data) or is_table_source(ctx_data):
        return _split_source(tgt_data, ctx_data, tgt_primary_key=tgt_primary_key, ctx_primary_key=ctx_primary_key,
                             tgt_context_key=tgt_context_key, model_type=model_type,
                             tgt_encoding_types=tgt_encoding_types, ctx_encoding_types=ctx_encoding_types,
                             n_partitions=n_partitions, trn_val_split=trn_val_split, workspace_dir=workspace_dir,
                             update_progress=update_progress, random_state=random_state, verbose=verbose)
    _check_keys(tgt_data, ctx_data, tgt_primary_key, ctx_primary_key, tgt_context_key)
    resolved_model_type, tgt_types, ctx_types = _resolve_types(
        tgt_data, ctx_data, model_type=model_type, tgt_encoding_types=tgt_encoding_types,
        ctx_encoding_types=ctx_encoding_types, tgt_primary_key=tgt_primary_key, ctx_primary_key=ctx_primary_key,
        tgt_context_key=tgt_context_key)
    rng = as_generator(random_state)
    ws = Workspace(workspace_dir) if not isinstance(workspace_dir, Workspace) else workspace_dir
    ws.clear_from("split")
    with ProgressReporter(2 * n_partitions, description="split", callback=update_progress,
                          verbose=verbose) as progress:
        tgt = _prepare(tgt_data, tgt_types, name="tgt_data")
        if tgt_context_key is not None:
            # subjects: the context keys; rows of one subject become contiguous, in their original order
            if ctx_data is not None:
                subject_keys = pd.Index(ctx_data[ctx_primary_key])
            else:
                subject_keys = pd.Index(pd.unique(tgt[tgt_context_key]))
            row_subject = subject_keys.get_indexer(tgt[tgt_context_key])
            order = np.argsort(row_subject, kind="stable")
            tgt, row_subject = tgt.iloc[order].reset_index(drop=True), row_subject[order]
            is_trn = _split_subjects(len(subject_keys), trn_val_split, rng, subject_keys)
        else:
            row_subject = np.arange(len(tgt))
            is_trn = _split_subjects(len(tgt), trn_val_split, rng, None)
        partition = _subject_partitions(is_trn, n_partitions, rng)
        _write_parts(ws, "tgt", tgt, partition[row_subject], is_trn[row_subject], n_partitions, progress)
        if tgt_context_key is not None:
            if ctx_data is not None:
                ctx = _prepare(ctx_data, ctx_types, name="ctx_data")
                ctx_key = ctx_primary_key
            else:  # a context of keys only, so that every two-table target has the same layout
                ctx_key = tgt_context_key
                ctx = pd.DataFrame({ctx_key: subject_keys.to_numpy()})
            _write_parts(ws, "ctx", ctx, partition, is_trn, n_partitions, progress)
            ws.write_meta("ctx", keys={"primary_key": ctx_key},
                          encoding_types={c: t.value for c, t in ctx_types.items()},
                          dtypes={c: dtype_name(ctx[c].dtype) for c in ctx.columns} if ctx_data is None
                          else _dtype_specs(ctx_data, ctx_types))
        else:
            progress.update(n_partitions)
        keys = {k: v for k, v in (("primary_key", tgt_primary_key), ("context_key", tgt_context_key)) if v}
        ws.write_meta("tgt", keys=keys, encoding_types={c: t.value for c, t in tgt_types.items()},
                      dtypes=_dtype_specs(tgt_data, tgt_types), model_type=resolved_model_type.value)
    _log.info("split %d target rows into %d partitions (%d training subjects of %d)",
              len(tgt_data), n_partitions, int(is_trn.sum()), len(is_trn))
    return ws


def _open_source(data, name: str):
    """A table on disk as a :class:`ParquetSource`; a DataFrame next to one as a :class:`FrameSource`."""
    if data is None:
        return None
    if is_table_source(data):
        return ParquetSource(data, name=name)
    return FrameSource(data, name=name)


def _split_source(tgt_data, ctx_data, *, tgt_primary_key, ctx_primary_key, tgt_context_key, model_type,
                  tgt_encoding_types, ctx_encoding_types, n_partitions, trn_val_split, workspace_dir,
                  update_progress, random_state, verbose) -> Workspace:
    """``split`` of a table on disk (see :mod:`._split_streamed`): types from its first rows, data batch by batch."""
    tgt, ctx = _open_source(tgt_data, "tgt_data"), _open_source(ctx_data, "ctx_data")
    tgt.check_columns([k for k in (tgt_primary_key, tgt_context_key) if k is not None])
    if tgt_primary_key is not None and tgt_primary_key == tgt_context_key:
        raise ValueError("tgt_primary_key and tgt_context_key must be different columns.")
    if ctx is None and ctx_primary_key is not None:
        raise ValueError("ctx_primary_key is given but ctx_data is None.")
    if ctx is not None:
        if tgt_context_key is None:
            raise ValueError("ctx_data is given, so tgt_context_key must name the column of tgt_data that refers "
                             "to it.")
        if ctx_primary_key is None:
            raise ValueError("ctx_data is given, so ctx_primary_key must name its primary key column.")
        ctx.check_columns([ctx_primary_key])
    tgt_head = tgt.head()
    ctx_head = ctx.head() if ctx is not None else None
    if ctx is not None:
        check_key_kinds(tgt_head, ctx_head, tgt_context_key, ctx_primary_key, _key_kind)
    resolved_model_type, tgt_types, ctx_types = _resolve_types(
        tgt_head, ctx_head, model_type=model_type, tgt_encoding_types=tgt_encoding_types,
        ctx_encoding_types=ctx_encoding_types, tgt_primary_key=tgt_primary_key, ctx_primary_key=ctx_primary_key,
        tgt_context_key=tgt_context_key)
    if isinstance(tgt, ParquetSource):  # enough partitions that each one fits in memory comfortably
        n_partitions = max(n_partitions, tgt.partitions_needed())
    rng = as_generator(random_state)
    ws = Workspace(workspace_dir) if not isinstance(workspace_dir, Workspace) else workspace_dir
    ws.clear_from("split")
    with ProgressReporter(2 * n_partitions, description="split", callback=update_progress,
                          verbose=verbose) as progress:
        tgt_specs, ctx_specs = split_streamed(
            ws, tgt, ctx, tgt_primary_key=tgt_primary_key, ctx_primary_key=ctx_primary_key,
            tgt_context_key=tgt_context_key, tgt_types=tgt_types, ctx_types=ctx_types, n_partitions=n_partitions,
            trn_val_split=trn_val_split, rng=rng, progress=progress)
        if tgt_context_key is not None:
            ctx_key = ctx_primary_key if ctx is not None else tgt_context_key
            ws.write_meta("ctx", keys={"primary_key": ctx_key},
                          encoding_types={c: t.value for c, t in ctx_types.items()},
                          dtypes=ctx_specs if ctx is not None else {ctx_key: tgt_specs[ctx_key]})
        keys = {k: v for k, v in (("primary_key", tgt_primary_key), ("context_key", tgt_context_key)) if v}
        ws.write_meta("tgt", keys=keys, encoding_types={c: t.value for c, t in tgt_types.items()},
                      dtypes=tgt_specs, model_type=resolved_model_type.value)
    _log.info("split %d target rows from %s into %d partitions", tgt.num_rows, tgt.description, n_partitions)
    return ws
