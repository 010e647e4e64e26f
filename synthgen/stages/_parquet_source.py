"""Tables larger than memory as input: a parquet file, a folder of parquet files or a ``pyarrow.dataset.Dataset``.

A :class:`ParquetSource` checks the input once (the path exists, holds parquet files, and every file has the
same columns and types) and then hands out record batches of bounded size, reading only the columns asked for
(pyarrow's column projection), so the stages that consume it never hold the whole table.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

__all__ = ["BATCH_BYTES", "DEFAULT_BATCH_ROWS", "PARTITION_BYTES", "ParquetSource", "is_table_source"]

# Rows per record batch read from the source: at most this many, and at most ``BATCH_BYTES`` of memory.
DEFAULT_BATCH_ROWS = 65_536
BATCH_BYTES = 16 * 2**20
# Target in-memory size of one workspace partition (pandas memory of its rows). A path input is split into at
# least ``ceil(table bytes / PARTITION_BYTES)`` partitions, so every later stage holds about this much at once.
PARTITION_BYTES = 256 * 2**20


def is_table_source(data) -> bool:
    """Whether ``data`` names a table on disk (a path or a pyarrow dataset) rather than holding it in memory."""
    return isinstance(data, str | os.PathLike | pads.Dataset)


def _schema_without_metadata(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, f.type, f.nullable) for f in schema])


def _schema_difference(first: pa.Schema, other: pa.Schema) -> str:
    first_names, other_names = first.names, other.names
    missing = [n for n in first_names if n not in other_names]
    extra = [n for n in other_names if n not in first_names]
    parts = []
    if missing:
        parts.append(f"lacks columns {missing}")
    if extra:
        parts.append(f"has extra columns {extra}")
    changed = [f"{n!r} is {other.field(n).type} instead of {first.field(n).type}"
               for n in first_names if n in other_names and other.field(n).type != first.field(n).type]
    parts.extend(changed)
    if not parts:
        parts.append(f"orders its columns {other_names} instead of {first_names}")
    return "; ".join(parts)


class ParquetSource:
    """A table on disk, read in record batches.

    Parameters
    ----------
    data : str, PathLike or pyarrow.dataset.Dataset
        A parquet file, a folder of parquet files (searched recursively for ``*.parquet``), or a dataset.
    name : str
        The parameter name for error messages (``"tgt_data"``, ``"ctx_data"``, ``"X"``...).

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        A folder without parquet files, a file that is not parquet, parts whose columns or types differ, or
        a table without rows.
    """

    def __init__(self, data, *, name: str) -> None:
        self.name = name
        if isinstance(data, pads.Dataset):
            self.dataset = data
            self.description = f"the pyarrow dataset given as {name}"
            files = list(getattr(data, "files", []) or [])
        else:
            path = Path(data)
            self.description = f"{name} ({str(path)!r})"
            if not path.exists():
                raise FileNotFoundError(f"{name} {str(path)!r} does not exist; pass a DataFrame, a parquet file or a "
                                        "folder of parquet files.")
            if path.is_dir():
                files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
                if not files:
                    raise ValueError(f"{name} {str(path)!r} is a folder without *.parquet files; there is nothing "
                                     "to learn from.")
            else:
                files = [path]
            schemas = []
            for file in files:
                try:
                    schemas.append(pq.read_schema(file))
                except (pa.ArrowInvalid, OSError) as err:
                    raise ValueError(f"{name}: {str(file)!r} is not a readable parquet file ({err}).") from None
            first = _schema_without_metadata(schemas[0])
            for file, schema in zip(files[1:], schemas[1:], strict=True):
                if not _schema_without_metadata(schema).equals(first):
                    raise ValueError(
                        f"{name}: the parquet files do not share one schema: {str(file)!r} "
                        f"{_schema_difference(first, _schema_without_metadata(schema))} (compared with "
                        f"{str(files[0])!r}). Write every part with the same columns and types.")
            # the first file's schema keeps its pandas metadata, so batches come back with the writer's dtypes
            self.dataset = pads.dataset([str(f) for f in files], schema=schemas[0], format="parquet")
        self.files = [str(f) for f in files]
        self.schema: pa.Schema = self.dataset.schema
        self.columns: list[str] = list(self.schema.names)
        self.num_rows: int = self.dataset.count_rows()
        self._bytes_per_row: float | None = None
        if self.num_rows == 0:
            raise ValueError(f"{self.description} is empty (0 rows); there is nothing to learn from.")

    def __repr__(self) -> str:
        return f"ParquetSource({self.description}, {self.num_rows} rows, {len(self.columns)} columns)"

    def check_columns(self, columns: list[str]) -> None:
        """Raise a ``ValueError`` naming the first of ``columns`` that the source lacks."""
        for column in columns:
            if column not in self.columns:
                raise ValueError(f"{column!r} is not a column of {self.description}; columns are {self.columns}.")

    def _record_batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        if self.files and isinstance(self.dataset, pads.FileSystemDataset):
            # file by file: pyarrow's dataset scanner reads ahead several batches of several files at once,
            # a parquet file reader holds one row group
            for file in self.files:
                with pq.ParquetFile(file, filesystem=self.dataset.filesystem) as reader:
                    yield from reader.iter_batches(batch_size=batch_rows, columns=columns)
        else:
            yield from self.dataset.to_batches(columns=columns, batch_size=batch_rows, batch_readahead=1,
                                               fragment_readahead=1, use_threads=False)

    def batches(self, columns: list[str] | None = None, *,
                batch_rows: int | None = None) -> Iterator[pd.DataFrame]:
        """The rows in order, as DataFrames of at most ``batch_rows`` rows holding only ``columns``.

        By default a batch holds up to :data:`DEFAULT_BATCH_ROWS` rows and :data:`BATCH_BYTES` of memory.
        Memory: one batch, plus the parquet row group it comes from (a reader decodes whole row groups).
        """
        projected = self.columns if columns is None else list(columns)
        if batch_rows is None:
            batch_rows = int(min(DEFAULT_BATCH_ROWS, max(1024, BATCH_BYTES // self.bytes_per_row())))
        schema = pa.schema([self.schema.field(c) for c in projected], metadata=self.schema.metadata)
        for batch in self._record_batches(projected, batch_rows):
            if batch.num_rows:
                yield pa.Table.from_batches([batch]).cast(schema).to_pandas()

    def head(self, n_rows: int = 10_000, columns: list[str] | None = None) -> pd.DataFrame:
        """The first ``n_rows`` rows (fewer if the table is shorter): enough to infer types."""
        frames, seen = [], 0
        for frame in self.batches(columns, batch_rows=n_rows):
            frames.append(frame.head(n_rows - seen))
            seen += len(frames[-1])
            if seen >= n_rows:
                break
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def bytes_per_row(self) -> float:
        """The in-memory (pandas) size of a row, measured on the first rows."""
        if self._bytes_per_row is None:
            sample = self.head(min(self.num_rows, 10_000))
            self._bytes_per_row = max(1.0, float(sample.memory_usage(deep=True, index=False).sum()) / len(sample))
        return self._bytes_per_row

    def partitions_needed(self, partition_bytes: int = PARTITION_BYTES) -> int:
        """The number of partitions that keeps each one under ``partition_bytes`` of memory."""
        return max(1, math.ceil(self.num_rows * self.bytes_per_row() / partition_bytes))
