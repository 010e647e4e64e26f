"""The on-disk workspace: every path of the engine's layout, atomic writes, and stage invalidation.

Layout (as in the engine API)::

    OriginalData/tgt-data/part.000000-trn.parquet, part.000000-val.parquet, ...   split
    OriginalData/tgt-meta/keys.json, encoding-types.json, dtypes.json             split
    OriginalData/ctx-data/..., OriginalData/ctx-meta/...                          split (with context)
    ModelStore/tgt-stats/stats.json, ModelStore/ctx-stats/stats.json              analyze
    OriginalData/encoded-data/part.000000-trn.parquet, ...                        encode
    ModelStore/model-data/...                                                     train
    SyntheticData/part.000000.parquet, ...                                        generate

Every stage first removes its own outputs and those of the stages after it, writes into temporary names and
moves them into place last, so an interrupted stage never leaves files that a later stage reads as complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Workspace", "WorkspaceError"]

STAGES = ("split", "analyze", "encode", "train", "generate")


class WorkspaceError(RuntimeError):
    """Raised when a stage needs outputs of an earlier stage that the workspace does not hold."""


def _json_default(value: Any):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=_json_default)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class TemporaryDirectory:
    """A temporary folder removed when the last object holding it is garbage collected (never ``__del__``)."""

    def __init__(self, prefix: str = "synthgen-"):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(self.path), True)

    def cleanup(self) -> None:
        self._finalizer()


class Workspace:
    """Paths and I/O of one workspace folder.

    Parameters
    ----------
    root : str or Path
        The workspace folder; created when a stage writes into it.
    owner : TemporaryDirectory, optional
        Keeps a temporary workspace alive as long as this object (and its copies) live.
    """

    def __init__(self, root: str | os.PathLike, *, owner: TemporaryDirectory | None = None):
        self.root = Path(root)
        self._owner = owner

    @classmethod
    def temporary(cls) -> Workspace:
        owner = TemporaryDirectory()
        return cls(owner.path, owner=owner)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def __getstate__(self) -> dict:
        # a pickled copy points at the folder but does not own (and so never removes) a temporary one
        return {"root": self.root, "_owner": None}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and self.root.resolve() == other.root.resolve()

    def __hash__(self) -> int:
        return hash(self.root.resolve())

    # -- paths -------------------------------------------------------------------------------------------
    @property
    def original_data(self) -> Path:
        return self.root / "OriginalData"

    @property
    def model_store(self) -> Path:
        return self.root / "ModelStore"

    @property
    def synthetic_data(self) -> Path:
        return self.root / "SyntheticData"

    def data_dir(self, table: str) -> Path:
        return self.original_data / f"{table}-data"

    def meta_dir(self, table: str) -> Path:
        return self.original_data / f"{table}-meta"

    @property
    def encoded_data(self) -> Path:
        return self.original_data / "encoded-data"

    def stats_path(self, table: str) -> Path:
        return self.model_store / f"{table}-stats" / "stats.json"

    @property
    def model_data(self) -> Path:
        return self.model_store / "model-data"

    def _stage_outputs(self, stage: str) -> list[Path]:
        return {
            "split": [self.data_dir("tgt"), self.meta_dir("tgt"), self.data_dir("ctx"), self.meta_dir("ctx")],
            "analyze": [self.stats_path("tgt").parent, self.stats_path("ctx").parent],
            "encode": [self.encoded_data],
            "train": [self.model_data],
            "generate": [self.synthetic_data],
        }[stage]

    def clear_from(self, stage: str) -> None:
        """Remove the outputs of ``stage`` and of every later stage."""
        for later in STAGES[STAGES.index(stage):]:
            for path in self._stage_outputs(later):
                if path.exists():
                    shutil.rmtree(path)

    # -- completeness checks -----------------------------------------------------------------------------
    def has_context(self) -> bool:
        return (self.meta_dir("ctx") / "keys.json").exists()

    def require(self, stage: str) -> None:
        """Raise :class:`WorkspaceError` unless ``stage`` completed in this workspace."""
        marker = {
            "split": self.meta_dir("tgt") / "encoding-types.json",
            "analyze": self.stats_path("tgt"),
            "encode": self.encoded_data,
        }[stage]
        if not marker.exists():
            raise WorkspaceError(
                f"The workspace {str(self.root)!r} holds no completed {stage!r} stage; run {stage}() first."
            )

    # -- atomic folder writes ----------------------------------------------------------------------------
    @contextmanager
    def staged_dir(self, final: Path) -> Iterator[Path]:
        """Yield a temporary folder that replaces ``final`` only when the block completes."""
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)

    # -- json and parquet I/O ----------------------------------------------------------------------------
    def write_json(self, path: Path, data: Any) -> None:
        write_json_atomic(path, data)

    def read_json(self, path: Path) -> Any:
        return read_json(path)

    def read_meta(self, table: str) -> dict[str, Any]:
        meta_dir = self.meta_dir(table)
        return {
            "keys": read_json(meta_dir / "keys.json"),
            "encoding_types": read_json(meta_dir / "encoding-types.json"),
            "dtypes": read_json(meta_dir / "dtypes.json"),
        }

    def read_stats(self, table: str) -> dict[str, Any]:
        return read_json(self.stats_path(table))

    def partitions(self, folder: Path, split: str | None = None) -> list[Path]:
        """Partition files of ``folder`` in order; ``split`` is ``"trn"``, ``"val"`` or ``None`` for both."""
        pattern = f"part.*-{split}.parquet" if split else "part.*.parquet"
        return sorted(folder.glob(pattern))

    @staticmethod
    def write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, path)

    @staticmethod
    def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(path, columns=columns)
