"""``split`` of a table larger than memory: stream record batches into partition files, never the whole table.

How subjects are assigned (a subject is a row of a flat table, a context key of a two-table target):

- A subject that has a key (``tgt_primary_key`` of a flat table, the context key of a two-table target and
  the primary key of its context) goes to the partition and side given by a seeded 64-bit hash of the key.
  Every row of one subject, target and context alike, lands in the same part file without any lookup table,
  and duplicate keys land together, so uniqueness and "every context key has a context row" are checked
  exactly per partition. The training share is then a binomial draw around ``trn_val_split``.
- Rows of a flat table without a key are dealt out per batch: exactly ``round(trn_val_split * rows seen)``
  training rows so far, round-robin over the partitions in a shuffled order.

Batches are appended to one parquet writer per part file, so the first pass holds one batch plus small write
buffers. A second pass, one partition at a time, makes every subject's target rows contiguous (in the context
table's order, as the in-memory split does), checks the keys and writes the key-only context of a target
without ``ctx_data``. Memory is bounded by the partition size (see :data:`PARTITION_BYTES`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._dtypes import check_restorable, dtype_name, dtype_spec
from .._progress import ProgressReporter
from .._workspace import Workspace
from ._columns import check_frame, check_unique, example, normalize_storage
from ._parquet_source import DEFAULT_BATCH_ROWS

__all__ = ["FrameSource", "key_hash", "split_streamed"]

# Bytes held in the write buffers of all part files together before they are flushed as row groups: bounds the
# split's memory, while keeping row groups from being tiny (each holds about this divided by 2 n_partitions).
BUFFERED_BYTES = 32 * 2**20


class FrameSource:
    """A DataFrame with the reading interface of :class:`ParquetSource` (a small context next to a big target)."""

    def __init__(self, frame: pd.DataFrame, *, name: str) -> None:
        check_frame(frame, name=name, keys={})
        self.frame = frame.reset_index(drop=True)
        self.name = name
        self.description = name
        self.columns = list(frame.columns)
        self.num_rows = len(frame)

    def check_columns(self, columns: list[str]) -> None:
        for column in columns:
            if column not in self.columns:
                raise ValueError(f"{column!r} is not a column of {self.name}; columns are {self.columns}.")

    def batches(self, columns: list[str] | None = None, *,
                batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pd.DataFrame]:
        frame = self.frame if columns is None else self.frame[list(columns)]
        for start in range(0, len(frame), batch_rows):
            yield frame.iloc[start:start + batch_rows]

    def head(self, n_rows: int = 10_000, columns: list[str] | None = None) -> pd.DataFrame:
        return (self.frame if columns is None else self.frame[list(columns)]).head(n_rows)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mix (SplitMix64's finalizer): spreads any key hash over all bits."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def key_hash(values: pd.Series, seed: int) -> np.ndarray:
    """A seeded uint64 hash of each key; equal keys hash equally whatever their integer width or string dtype."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        array = values.to_numpy(dtype=np.int64)
    elif pd.api.types.is_float_dtype(dtype):
        array = values.to_numpy(dtype=np.float64)
    elif pd.api.types.is_datetime64_any_dtype(dtype):
        array = values.astype("datetime64[ns]").to_numpy().view(np.int64)
    else:
        array = values.astype(object).to_numpy(dtype=object)
    hashed = pd.util.hash_array(array, categorize=False)
    return _splitmix64(hashed ^ _splitmix64(np.array([seed], dtype=np.uint64))[0])


class _Assigner:
    """The partition and side of every row of a batch (see the module notes)."""

    def __init__(self, n_partitions: int, trn_val_split: float | Callable, rng: np.random.Generator) -> None:
        self.n_partitions = n_partitions
        self.trn_val_split = trn_val_split
        self.rng = rng
        self.seed = int(rng.integers(0, 2**63))
        self.rows_seen = self.trn_seen = 0
        self.next_partition = {True: 0, False: 0}

    def _callable_sides(self, keys: pd.Series) -> np.ndarray:
        trn_keys, _ = self.trn_val_split(keys.reset_index(drop=True))
        return np.asarray(pd.Index(keys).isin(list(trn_keys)))

    def by_key(self, keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        hashed = key_hash(keys, self.seed)
        partition = (hashed % np.uint64(self.n_partitions)).astype(np.int64)
        if callable(self.trn_val_split):
            return partition, self._callable_sides(keys)
        uniform = (hashed >> np.uint64(11)).astype(np.float64) / 2.0**53
        return partition, uniform < self.trn_val_split

    def by_row(self, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        if callable(self.trn_val_split):
            is_trn = self._callable_sides(pd.Series(np.arange(self.rows_seen, self.rows_seen + n_rows)))
        else:
            n_trn = int(round(self.trn_val_split * (self.rows_seen + n_rows))) - self.trn_seen
            is_trn = np.zeros(n_rows, dtype=bool)
            is_trn[self.rng.permutation(n_rows)[:n_trn]] = True
        self.rows_seen += n_rows
        self.trn_seen += int(is_trn.sum())
        partition = np.empty(n_rows, dtype=np.int64)
        for side in (True, False):
            members = self.rng.permutation(np.flatnonzero(is_trn == side))
            partition[members] = (self.next_partition[side] + np.arange(len(members))) % self.n_partitions
            self.next_partition[side] = (self.next_partition[side] + len(members)) % self.n_partitions
        return partition, is_trn


class _PartWriters:
    """One parquet writer per part file of a folder; rows are buffered and flushed as row groups."""

    def __init__(self, ws: Workspace, folder: Path, n_partitions: int) -> None:
        self.ws, self.folder, self.n_partitions = ws, folder, n_partitions
        self.schema: pa.Schema | None = None
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.buffers: dict[str, list[pa.Table]] = {}
        self.buffered = 0

    def _table(self, frame: pd.DataFrame) -> pa.Table:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.schema is None:
            self.schema = table.schema
        return table.cast(self.schema)

    def write(self, frame: pd.DataFrame, partition: np.ndarray, is_trn: np.ndarray) -> None:
        table = self._table(frame)
        group = partition * 2 + (~is_trn)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(2 * self.n_partitions + 1))
        for code in range(2 * self.n_partitions):
            rows = order[bounds[code]:bounds[code + 1]]
            if len(rows):
                name = self.ws.partition_name(code // 2, "val" if code % 2 else "trn")
                self.buffers.setdefault(name, []).append(table.take(pa.array(rows)))
        self.buffered += table.nbytes
        if self.buffered >= BUFFERED_BYTES:
            self.flush()

    def flush(self) -> None:
        for name, tables in self.buffers.items():
            if name not in self.writers:
                self.writers[name] = pq.ParquetWriter(self.folder / name, self.schema)
            self.writers[name].write_table(pa.concat_tables(tables))
        self.buffers, self.buffered = {}, 0

    def close(self) -> None:
        """Flush, close, and write an empty file (with the schema) for every part that got no rows."""
        self.flush()
        for writer in self.writers.values():
            writer.close()
        for index in range(self.n_partitions):
            for side in ("trn", "val"):
                path = self.folder / self.ws.partition_name(index, side)
                if not path.exists():
                    pq.write_table(self.schema.empty_table(), path)


class _DtypeSpecs:
    """The dtype spec of every column over all batches; category columns get the union of their categories."""

    def __init__(self, encoding_types: dict) -> None:
        self.encoding_types = encoding_types
        self.specs: dict = {}
        self.used: dict[str, set] = {}

    def add(self, frame: pd.DataFrame) -> None:
        for column in frame.columns:
            spec = dtype_spec(frame[column]) if column in self.encoding_types else dtype_name(frame[column].dtype)
            if isinstance(spec, dict) and spec.get("dtype") == "category":
                used = {c for i, c in enumerate(spec["categories"]) if i not in set(spec["unused"])}
                self.used.setdefault(column, set()).update(used)
                if column in self.specs:
                    known = self.specs[column]["categories"]
                    known.extend(c for c in spec["categories"] if c not in set(known))
                    continue
                spec = {**spec, "categories": list(spec["categories"])}
            self.specs.setdefault(column, spec)

    def result(self) -> dict:
        for column, used in self.used.items():
            spec = self.specs[column]
            spec["unused"] = [i for i, c in enumerate(spec["categories"]) if c not in used]
        return self.specs


def _prepared(frame: pd.DataFrame, encoding_types: dict, *, name: str) -> pd.DataFrame:
    prepared = {column: frame[column] for column in frame.columns}
    for column, encoding in encoding_types.items():
        prepared[column] = normalize_storage(frame[column], encoding, column=column, name=name)
    return pd.DataFrame(prepared).reset_index(drop=True)


def _stream_table(ws: Workspace, source, folder: Path, *, name: str, keys: dict, encoding_types: dict,
                  subject_key: str | None, assigner: _Assigner, n_partitions: int) -> dict:
    """First pass over one table: every batch checked, normalised and appended to its part files."""
    writers = _PartWriters(ws, folder, n_partitions)
    specs = _DtypeSpecs(encoding_types)
    for batch in source.batches():
        check_frame(batch, name=name, keys=keys)
        check_restorable(batch, encoding_types, name=name, parameter=f"{name[:3]}_encoding_types")
        specs.add(batch)
        if subject_key is not None:
            partition, is_trn = assigner.by_key(batch[subject_key])
        else:
            partition, is_trn = assigner.by_row(len(batch))
        writers.write(_prepared(batch, encoding_types, name=name), partition, is_trn)
    writers.close()
    return specs.result()


def _check_unique_by_buckets(ws: Workspace, source, column: str, *, parameter: str, n_buckets: int,
                             seed: int) -> None:
    """Uniqueness of a key that the partitions do not group: the key alone, bucketed by hash, one bucket at a time."""
    folder = ws.root / ".key-buckets"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        writers: dict[int, pq.ParquetWriter] = {}
        for batch in source.batches([column]):
            table = pa.Table.from_pandas(batch, preserve_index=False)
            bucket = (key_hash(batch[column], seed) % np.uint64(n_buckets)).astype(np.int64)
            for index in np.unique(bucket):
                if index not in writers:
                    writers[index] = pq.ParquetWriter(folder / f"{index}.parquet", table.schema)
                writers[index].write_table(table.filter(pa.array(bucket == index)))
        for writer in writers.values():
            writer.close()
        for index in sorted(writers):
            check_unique(pd.read_parquet(folder / f"{index}.parquet")[column], parameter=parameter, column=column)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _missing_context_error(tgt_keys: pd.Series, missing: np.ndarray, n_missing: int, context_key: str) -> ValueError:
    return ValueError(f"{n_missing} rows of tgt_data have a tgt_context_key {context_key!r} that is not a "
                      f"ctx_primary_key of ctx_data, e.g. {example(tgt_keys[missing].iloc[0])}.")


def _group_partitions(ws: Workspace, tgt_folder: Path, ctx_folder: Path, *, context_key: str,
                      ctx_key: str | None, n_partitions: int, progress: ProgressReporter) -> int:
    """Second pass: per part, check the keys and sort target rows by subject (in the context's order).

    With ``ctx_key`` None the context part is written here: the target's keys in order of first appearance.
    Returns the number of target rows whose context key has no context row (an error if not zero).
    """
    n_missing, first_missing = 0, None
    for index in range(n_partitions):
        for side in ("trn", "val"):
            name = ws.partition_name(index, side)
            tgt = pd.read_parquet(tgt_folder / name)
            if ctx_key is None:
                subjects = pd.Index(pd.unique(tgt[context_key]))
                ws.write_parquet(pd.DataFrame({context_key: subjects.to_numpy()}), ctx_folder / name)
            else:
                ctx_keys = pd.read_parquet(ctx_folder / name, columns=[ctx_key])[ctx_key]
                check_unique(ctx_keys, parameter="ctx_primary_key", column=ctx_key)
                subjects = pd.Index(ctx_keys)
            row_subject = subjects.get_indexer(tgt[context_key])
            missing = row_subject < 0
            if missing.any():
                n_missing += int(missing.sum())
                first_missing = first_missing if first_missing is not None else (tgt[context_key], missing)
                continue
            order = np.argsort(row_subject, kind="stable")
            ws.write_parquet(tgt.iloc[order].reset_index(drop=True), tgt_folder / name)
        progress.update()
    if n_missing:
        raise _missing_context_error(*first_missing, n_missing, context_key)
    return n_missing


def check_key_kinds(tgt_head: pd.DataFrame, ctx_head: pd.DataFrame, context_key: str, ctx_key: str,
                    key_kind: Callable[[pd.Series], str]) -> None:
    """Refuse, before reading the tables, context keys of another kind than the context's primary keys."""
    tgt_kind, ctx_kind = key_kind(tgt_head[context_key]), key_kind(ctx_head[ctx_key])
    if tgt_kind != ctx_kind:
        raise ValueError(
            f"The key dtypes differ: tgt_context_key {context_key!r} of tgt_data holds {tgt_kind} values "
            f"(dtype {tgt_head[context_key].dtype}), ctx_primary_key {ctx_key!r} of ctx_data holds "
            f"{ctx_kind} values (dtype {ctx_head[ctx_key].dtype}), so no target row finds its context. "
            "Convert one to the type of the other, e.g. .astype(str)."
        )


def split_streamed(ws: Workspace, tgt, ctx, *, tgt_primary_key: str | None, ctx_primary_key: str | None,
                   tgt_context_key: str | None, tgt_types: dict, ctx_types: dict, n_partitions: int,
                   trn_val_split: float | Callable, rng: np.random.Generator,
                   progress: ProgressReporter) -> tuple[dict, dict | None]:
    """Write the split parts of ``tgt`` (and ``ctx``), two sources, batch by batch; return their dtype specs."""
    assigner = _Assigner(n_partitions, trn_val_split, rng)
    tgt_keys = {"tgt_primary_key": tgt_primary_key, "tgt_context_key": tgt_context_key}
    ctx_specs = None
    with ws.staged_dir(ws.data_dir("tgt")) as tgt_folder:
        tgt_specs = _stream_table(ws, tgt, tgt_folder, name="tgt_data", keys=tgt_keys, encoding_types=tgt_types,
                                  subject_key=tgt_context_key or tgt_primary_key, assigner=assigner,
                                  n_partitions=n_partitions)
        progress.update(n_partitions)
        if tgt_context_key is None:
            if tgt_primary_key is not None:  # rows were placed by this key, so duplicates share a part
                for path in ws.partitions(tgt_folder):
                    check_unique(pd.read_parquet(path, columns=[tgt_primary_key])[tgt_primary_key],
                                  parameter="tgt_primary_key", column=tgt_primary_key)
            progress.update(n_partitions)
            return tgt_specs, None
        if tgt_primary_key is not None:
            _check_unique_by_buckets(ws, tgt, tgt_primary_key, parameter="tgt_primary_key",
                                     n_buckets=n_partitions, seed=assigner.seed + 1)
        with ws.staged_dir(ws.data_dir("ctx")) as ctx_folder:
            if ctx is not None:
                ctx_specs = _stream_table(ws, ctx, ctx_folder, name="ctx_data",
                                          keys={"ctx_primary_key": ctx_primary_key}, encoding_types=ctx_types,
                                          subject_key=ctx_primary_key, assigner=assigner,
                                          n_partitions=n_partitions)
            _group_partitions(ws, tgt_folder, ctx_folder, context_key=tgt_context_key,
                              ctx_key=ctx_primary_key if ctx is not None else None, n_partitions=n_partitions,
                              progress=progress)
    return tgt_specs, ctx_specs
