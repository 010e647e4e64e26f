"""The on-disk workspace: every file name of the engine's layout, atomic writes, locking and stage invalidation.

Layout (as in the engine API)::

    OriginalData/tgt-data/part.000000-trn.parquet, part.000000-val.parquet, ...   split
    OriginalData/tgt-meta/keys.json, encoding-types.json, dtypes.json             split
    OriginalData/ctx-data/..., OriginalData/ctx-meta/...                          split (with context)
    ModelStore/tgt-stats/stats.json, ModelStore/ctx-stats/stats.json              analyze
    OriginalData/encoded-data/part.000000-trn.parquet, ...                        encode
    ModelStore/model-data/model-configs.json, model-weights.pt, ...               train
    ModelStore/model-data/tokenizer.json, adapter/                                train (LANGUAGE)
    ModelStore/privacy-ledger.json                                                analyze, train (under DP)
    SyntheticData/part.000000.parquet, ...                                        generate
    TextModel/  (a nested workspace of the same layout, LANGUAGE)                  TabularSynthesizer's free text
    workspace.lock                                                                while a stage writes

:class:`Workspace` is the only code that knows these names: the stages and the estimators read and write the
layout through its methods.

Every stage first removes its own outputs and those of the stages after it, writes into temporary names and
moves them into place last, so an interrupted stage never leaves files that a later stage reads as complete.
Writers hold ``workspace.lock`` (see :meth:`Workspace.lock`); the first of them removes the temporaries that a
killed run left behind (they may hold raw data).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import inspect
import io
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .privacy._ledger import LedgerEntry

__all__ = ["Workspace", "WorkspaceError", "locks_workspace"]

STAGES = ("split", "analyze", "encode", "train", "generate")

MODEL_CONFIG_FILE = "model-configs.json"
MODEL_WEIGHTS_FILE = "model-weights.pt"
TRAINING_STATE_FILE = "training-state.pt"
PROGRESS_FILE = "progress-messages.csv"
TOKENIZER_FILE = "tokenizer.json"
DP_ACCOUNTANT_FILE = "dp-accountant.json"
ADAPTER_DIR = "adapter"
LOCK_FILE = "workspace.lock"
PRIVACY_LEDGER_FILE = "privacy-ledger.json"
_PROGRESS_FIELDS = ("epoch", "is_checkpoint", "steps", "samples", "trn_loss", "val_loss", "total_time",
                    "learn_rate")
# the names `_temporary` gives: ".<final name>.<32 hex digits>.tmp"
_TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")
# a lock file that stays empty this long belongs to a process killed between creating and writing it
_EMPTY_LOCK_GRACE_S = 10.0

# locks this process holds: resolved root -> [pid, thread id, depth]; a thread re-enters its own lock
_held_locks: dict[str, list[int]] = {}
_held_locks_guard = threading.Lock()


class WorkspaceError(RuntimeError):
    """Raised when a workspace lacks the outputs a stage needs, or another process is writing into it.

    Examples
    --------
    >>> import synthgen as sg
    >>> try:
    ...     sg.analyze(workspace_dir="empty-ws")
    ... except sg.WorkspaceError as error:
    ...     print(type(error).__name__)
    WorkspaceError
    """


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


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=_json_default)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _torch_bytes(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _process_alive(pid: int) -> bool:
    if os.name != "posix":  # no harmless liveness probe: treat the holder as alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


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

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> ws = sg.split(load_census(), workspace_dir="ws", random_state=0)
    >>> ws
    Workspace('ws')
    >>> ws.read_meta("tgt")["encoding_types"]["sex"]
    'TABULAR_CATEGORICAL'
    """

    def __init__(self, root: str | os.PathLike, *, owner: TemporaryDirectory | None = None):
        self.root = Path(root)
        self._owner = owner

    @classmethod
    def temporary(cls) -> Workspace:
        """A workspace in a new temporary folder, removed once no object holds the workspace any longer.

        Returns
        -------
        Workspace
            It owns its folder; pickled copies point at the folder but never remove it.
        """
        owner = TemporaryDirectory()
        return cls(owner.path, owner=owner)

    @classmethod
    def coerce(cls, workspace_dir: str | os.PathLike | Workspace) -> Workspace:
        """``workspace_dir`` itself when it is a Workspace, else a Workspace of that folder.

        Parameters
        ----------
        workspace_dir : str, PathLike or Workspace
            A workspace, or the path of its folder.

        Returns
        -------
        Workspace
        """
        return workspace_dir if isinstance(workspace_dir, Workspace) else cls(workspace_dir)

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
        """``OriginalData``: the split data and meta files, and the encoded data."""
        return self.root / "OriginalData"

    @property
    def model_store(self) -> Path:
        """``ModelStore``: the statistics of analyze and the model data of train."""
        return self.root / "ModelStore"

    @property
    def privacy_ledger_path(self) -> Path:
        """``ModelStore/privacy-ledger.json``: the differential-privacy mechanisms that analyze and train ran."""
        return self.model_store / PRIVACY_LEDGER_FILE

    @property
    def synthetic_data(self) -> Path:
        """``SyntheticData``: the partitions written by generate."""
        return self.root / "SyntheticData"

    def data_dir(self, table: str) -> Path:
        """The folder of the split partitions of ``table``.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The target table, or the context table of a two-table model.

        Returns
        -------
        Path
            ``OriginalData/<table>-data``.
        """
        return self.original_data / f"{table}-data"

    def meta_dir(self, table: str) -> Path:
        """The folder of the meta files (keys, encoding types, dtypes) that split writes for ``table``.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The target table, or the context table of a two-table model.

        Returns
        -------
        Path
            ``OriginalData/<table>-meta``.
        """
        return self.original_data / f"{table}-meta"

    @property
    def encoded_data(self) -> Path:
        """``OriginalData/encoded-data``: the partitions written by encode."""
        return self.original_data / "encoded-data"

    def stats_path(self, table: str) -> Path:
        """The statistics file that analyze writes for ``table``.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The target table, or the context table of a two-table model.

        Returns
        -------
        Path
            ``ModelStore/<table>-stats/stats.json``.
        """
        return self.model_store / f"{table}-stats" / "stats.json"

    @property
    def text_model(self) -> Workspace:
        """``TextModel``: the nested LANGUAGE workspace of a ``TabularSynthesizer``'s free-text columns.

        Its target holds the free-text columns, its context table the other columns of the same rows (one
        context row per target row), so its language model writes a row's texts conditioned on that row. ``split``
        of this workspace removes it: it belongs to the table split last.
        """
        return Workspace(self.root / "TextModel")

    @property
    def model_data(self) -> Path:
        """``ModelStore/model-data``: everything train writes."""
        return self.model_store / "model-data"

    @property
    def model_config_path(self) -> Path:
        """``model-configs.json`` of the model data."""
        return self.model_data / MODEL_CONFIG_FILE

    @property
    def model_weights_path(self) -> Path:
        """``model-weights.pt`` of the model data."""
        return self.model_data / MODEL_WEIGHTS_FILE

    @property
    def training_state_path(self) -> Path:
        """``training-state.pt`` of the model data (what ``RESUME`` continues from)."""
        return self.model_data / TRAINING_STATE_FILE

    @property
    def progress_path(self) -> Path:
        """``progress-messages.csv`` of the model data."""
        return self.model_data / PROGRESS_FILE

    @property
    def dp_accountant_path(self) -> Path:
        """``dp-accountant.json`` of the model data: the DP-SGD accountant of a model trained with DP."""
        return self.model_data / DP_ACCOUNTANT_FILE

    @property
    def tokenizer_path(self) -> Path:
        """A LANGUAGE model's tokenizer (``tokenizer.json``)."""
        return self.model_data / TOKENIZER_FILE

    @property
    def adapter_dir(self) -> Path:
        """The LoRA adapter of a LANGUAGE model fine-tuned from a local Hugging Face model."""
        return self.model_data / ADAPTER_DIR

    @property
    def lock_path(self) -> Path:
        """``workspace.lock`` in the workspace folder (see :meth:`lock`)."""
        return self.root / LOCK_FILE

    @staticmethod
    def partition_name(index: int, side: str | None = None) -> str:
        """``part.NNNNNN-trn.parquet`` / ``-val`` of split and encode, ``part.NNNNNN.parquet`` of generate.

        Parameters
        ----------
        index : int
            The partition number.
        side : {"trn", "val"} or None, default=None
            The training or validation side; ``None`` for a partition of the synthetic data.

        Returns
        -------
        str
        """
        return f"part.{index:06d}-{side}.parquet" if side else f"part.{index:06d}.parquet"

    def _stage_outputs(self, stage: str) -> list[Path]:
        return {
            "split": [self.data_dir("tgt"), self.meta_dir("tgt"), self.data_dir("ctx"), self.meta_dir("ctx"),
                      self.root / "TextModel"],
            "analyze": [self.stats_path("tgt").parent, self.stats_path("ctx").parent],
            "encode": [self.encoded_data],
            "train": [self.model_data],
            "generate": [self.synthetic_data],
        }[stage]

    def clear_from(self, stage: str) -> None:
        """Remove the outputs of ``stage`` and of every later stage.

        Parameters
        ----------
        stage : {"split", "analyze", "encode", "train", "generate"}
            The first stage whose outputs are removed.

        Raises
        ------
        ValueError
            If ``stage`` is not one of these.
        """
        cleared = STAGES[STAGES.index(stage):]
        for later in cleared:
            for path in self._stage_outputs(later):
                if path.exists():
                    shutil.rmtree(path)
        self._drop_ledger_stages(cleared)

    # -- completeness checks -----------------------------------------------------------------------------
    def has_context(self) -> bool:
        """Whether split wrote a context table (its ``keys.json``) into this workspace."""
        return (self.meta_dir("ctx") / "keys.json").exists()

    def has_trained_model(self) -> bool:
        """Whether training saved weights (and with them the model configuration)."""
        return self.model_config_path.exists() and self.model_weights_path.exists()

    def require(self, stage: str) -> None:
        """Raise :class:`WorkspaceError` unless ``stage`` completed in this workspace.

        Parameters
        ----------
        stage : {"split", "analyze", "encode", "train"}
            The stage whose outputs are needed; a stage counts as completed once the file it writes last
            exists (``encoding-types.json``, the target ``stats.json``, the encoded-data folder; for train the
            model configuration and weights).

        Raises
        ------
        WorkspaceError
            If ``stage`` did not complete; the message names the stage to run.
        """
        if stage == "train":
            if not self.has_trained_model():
                raise WorkspaceError(
                    f"The workspace {str(self.root)!r} holds no trained model: no training run saved weights "
                    f"({MODEL_WEIGHTS_FILE}) here; run train() first."
                )
            return
        marker = {
            "split": self.meta_dir("tgt") / "encoding-types.json",
            "analyze": self.stats_path("tgt"),
            "encode": self.encoded_data,
        }[stage]
        if not marker.exists():
            raise WorkspaceError(
                f"The workspace {str(self.root)!r} holds no completed {stage!r} stage; run {stage}() first."
            )

    # -- locking -----------------------------------------------------------------------------------------
    @contextmanager
    def lock(self, purpose: str) -> Iterator[None]:
        """Hold ``workspace.lock`` while writing into the workspace; the same thread may re-enter it.

        The lock file is created atomically and records the holder (pid, host, since when, ``purpose``). Another
        writer gets a :class:`WorkspaceError` naming the holder; a lock left by a dead process on this host is
        taken over. Whoever takes the lock first removes the temporaries of killed runs. The workspace folder is
        created if needed, and removed again on exit if it was created here and is still empty.

        Parameters
        ----------
        purpose : str
            What the holder does (the stage name), recorded in the lock file and shown to other writers.

        Yields
        ------
        None

        Raises
        ------
        WorkspaceError
            If another process, or another thread of this process, holds the lock.
        """
        key = str(self.root.resolve())
        here = [os.getpid(), threading.get_ident()]
        with _held_locks_guard:
            held = _held_locks.get(key)
            reentered = held is not None and held[:2] == here
            if reentered:
                held[2] += 1
            elif held is not None and held[0] == here[0]:
                raise WorkspaceError(self._busy_message(self._lock_holder(self.lock_path)))
            else:
                _held_locks[key] = [*here, 1]
        if reentered:
            try:
                yield
            finally:
                with _held_locks_guard:
                    _held_locks[key][2] -= 1
            return
        created = not self.root.exists()
        try:
            token = self._acquire_lock_file(purpose)
        except BaseException:
            with _held_locks_guard:
                del _held_locks[key]
            raise
        try:
            self.remove_stale_temporaries()
            yield
        finally:
            with _held_locks_guard:
                del _held_locks[key]
            if (self._lock_holder(self.lock_path) or {}).get("token") == token:
                self.lock_path.unlink()
            if created:  # a stage that failed before writing leaves no empty workspace folder behind
                with contextlib.suppress(OSError):
                    self.root.rmdir()

    def _acquire_lock_file(self, purpose: str) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).isoformat(timespec="seconds"), "purpose": purpose,
                  "token": uuid.uuid4().hex}
        for _ in range(3):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                current = self._lock_holder(self.lock_path, wait=True)
                if self._is_stale(current) and self._break_stale_lock(current):
                    continue
                raise WorkspaceError(self._busy_message(current)) from None
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(holder, fh)
            return holder["token"]
        raise WorkspaceError(self._busy_message(self._lock_holder(self.lock_path)))

    @staticmethod
    def _lock_holder(path: Path, *, wait: bool = False) -> dict | None:
        """The holder recorded in a lock file, None while unreadable (being written, or left empty)."""
        for attempt in range(5 if wait else 1):
            try:
                holder = read_json(path)
                if isinstance(holder, dict):
                    return holder
            except (OSError, ValueError):
                pass
            if wait and attempt < 4:
                time.sleep(0.05)
        return None

    def _is_stale(self, holder: dict | None) -> bool:
        if holder is None:
            try:
                return time.time() - self.lock_path.stat().st_mtime > _EMPTY_LOCK_GRACE_S
            except FileNotFoundError:
                return True
        return holder.get("host") == socket.gethostname() and not _process_alive(int(holder.get("pid", -1)))

    def _break_stale_lock(self, holder: dict | None) -> bool:
        """Remove the stale lock ``holder``; False when another process took the lock over in between."""
        moved = self.lock_path.with_name(f".{LOCK_FILE}.{uuid.uuid4().hex}.stale")
        try:
            os.rename(self.lock_path, moved)
        except FileNotFoundError:
            return True
        if self._lock_holder(moved) == holder:
            moved.unlink(missing_ok=True)
            return True
        try:  # it was a fresh lock of another process: put it back
            os.link(moved, self.lock_path)
        except OSError:
            pass
        moved.unlink(missing_ok=True)
        return False

    def _busy_message(self, holder: dict | None) -> str:
        if holder is None:
            who = "another process (its lock file is being written)"
        else:
            who = (f"process {holder.get('pid')} on host {holder.get('host')!r} ({holder.get('purpose')} since "
                   f"{holder.get('since')})")
        return (f"The workspace {str(self.root)!r} is in use by {who}. Wait for it to finish or use another "
                f"workspace_dir; if that process is gone, delete {str(self.lock_path)!r}.")

    def remove_stale_temporaries(self) -> None:
        """Remove the temporary files and folders that a killed stage left (they may hold raw data).

        Only call it while holding :meth:`lock`: the temporaries of a running writer look the same.
        """
        folders = [self.root, self.original_data, self.model_store]
        folders += [p for f in (self.original_data, self.model_store) if f.is_dir() for p in f.iterdir() if p.is_dir()]
        for folder in folders:
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if _TEMPORARY_NAME.match(path.name) or path.name.startswith(f".{LOCK_FILE}."):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)

    @contextmanager
    def scratch_dir(self, name: str) -> Iterator[Path]:
        """Yield a new temporary folder in the workspace, removed when the block ends (or, if the process is
        killed, by the next writer's :meth:`remove_stale_temporaries`).

        Parameters
        ----------
        name : str
            Part of the folder's name (it is ``.<name>.<32 hex digits>.tmp``).

        Yields
        ------
        Path
        """
        folder = _temporary(self.root / name)
        folder.mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- atomic folder writes ----------------------------------------------------------------------------
    @contextmanager
    def staged_dir(self, final: Path) -> Iterator[Path]:
        """Yield a temporary folder that replaces ``final`` only when the block completes.

        Parameters
        ----------
        final : Path
            The folder to write; an existing one is replaced when the block completes and left untouched when
            it raises (the temporary folder is removed then).

        Yields
        ------
        Path
            The temporary folder, next to ``final``.
        """
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary(final)
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
        """Write ``data`` as indented JSON to ``path`` atomically (through a temporary file).

        Parameters
        ----------
        path : Path
            The file to write; its folder is created if needed.
        data : object
            JSON-serializable data; numpy scalars and arrays are written as numbers and lists.
        """
        write_json_atomic(path, data)

    def read_json(self, path: Path) -> Any:
        """The parsed content of the JSON file ``path``.

        Parameters
        ----------
        path : Path
            The file to read.

        Returns
        -------
        object
        """
        return read_json(path)

    def write_meta(self, table: str, *, keys: dict, encoding_types: dict, dtypes: dict,
                   model_type: str | None = None) -> None:
        """The meta files of ``table``; ``encoding-types.json`` last, as it marks a completed split.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The table the meta files describe.
        keys : dict
            Written to ``keys.json`` (the key columns of the table).
        encoding_types : dict
            Column name to encoding type, written to ``encoding-types.json``.
        dtypes : dict
            Column name to dtype, written to ``dtypes.json``.
        model_type : str or None, default=None
            Written to ``model-type.json`` when given (split gives it for the target table).
        """
        meta_dir = self.meta_dir(table)
        write_json_atomic(meta_dir / "keys.json", keys)
        write_json_atomic(meta_dir / "dtypes.json", dtypes)
        if model_type is not None:
            write_json_atomic(meta_dir / "model-type.json", {"model_type": model_type})
        write_json_atomic(meta_dir / "encoding-types.json", encoding_types)

    def read_meta(self, table: str) -> dict[str, Any]:
        """The meta files that split wrote for ``table``.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The table to read the meta files of.

        Returns
        -------
        dict
            ``{"keys": ..., "encoding_types": ..., "dtypes": ...}``, as given to :meth:`write_meta`.
        """
        meta_dir = self.meta_dir(table)
        return {
            "keys": read_json(meta_dir / "keys.json"),
            "encoding_types": read_json(meta_dir / "encoding-types.json"),
            "dtypes": read_json(meta_dir / "dtypes.json"),
        }

    def read_model_type(self) -> str:
        """The model type (``"TABULAR"`` or ``"LANGUAGE"``) that split recorded for the target table."""
        return read_json(self.meta_dir("tgt") / "model-type.json")["model_type"]

    def write_stats(self, table: str, stats: dict[str, Any]) -> None:
        """Write the statistics of ``table`` atomically to :meth:`stats_path`.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The table the statistics describe.
        stats : dict
            JSON-serializable statistics (columns, keys, record counts).
        """
        write_json_atomic(self.stats_path(table), stats)

    def read_stats(self, table: str) -> dict[str, Any]:
        """The statistics that analyze (or a warm start) wrote for ``table``.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The table to read the statistics of.

        Returns
        -------
        dict
        """
        return read_json(self.stats_path(table))

    def write_privacy_ledger(self, stage: str, entries: list[LedgerEntry]) -> None:
        """Replace the privacy-ledger lines of ``stage`` by ``entries`` (atomically).

        Parameters
        ----------
        stage : {"analyze", "train"}
            The stage whose lines these are; lines of other stages are kept.
        entries : list of LedgerEntry
            Every differential-privacy mechanism the stage ran on the private data.
        """
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}; got {stage!r} instead.")
        wrong = [entry.stage for entry in entries if entry.stage != stage]
        if wrong:
            raise ValueError(f"ledger entries of stage {wrong[0]!r} cannot be written as stage {stage!r}.")
        kept = [entry for entry in self.read_privacy_ledger() if entry.stage != stage]
        ordered = sorted(kept + list(entries), key=lambda entry: STAGES.index(entry.stage)
                         if entry.stage in STAGES else len(STAGES))
        write_json_atomic(self.privacy_ledger_path, [entry.to_dict() for entry in ordered])

    def read_privacy_ledger(self) -> list[LedgerEntry]:
        """The privacy-ledger lines of every stage, in stage order; empty without differential privacy.

        Returns
        -------
        list of LedgerEntry
        """
        if not self.privacy_ledger_path.exists():
            return []
        return [LedgerEntry.from_dict(item) for item in read_json(self.privacy_ledger_path)]

    def _drop_ledger_stages(self, stages: tuple[str, ...]) -> None:
        """Remove the ledger lines of ``stages`` (whose outputs were cleared), and the file when none is left."""
        if not self.privacy_ledger_path.exists():
            return
        kept = [entry for entry in self.read_privacy_ledger() if entry.stage not in stages]
        if kept:
            write_json_atomic(self.privacy_ledger_path, [entry.to_dict() for entry in kept])
        else:
            self.privacy_ledger_path.unlink()

    def partitions(self, folder: Path, split: str | None = None) -> list[Path]:
        """The partition files of ``folder``, sorted by name (and so by partition number).

        Parameters
        ----------
        folder : Path
            A folder of partitions (split data, encoded data or synthetic data).
        split : {"trn", "val"} or None, default=None
            Only the training or the validation partitions; ``None`` for every ``part.*.parquet`` file.

        Returns
        -------
        list of Path
            Empty when ``folder`` holds no partitions or does not exist.
        """
        pattern = f"part.*-{split}.parquet" if split else "part.*.parquet"
        return sorted(folder.glob(pattern))

    def count_rows(self, folder: Path, split: str | None = None) -> int:
        """The number of rows of the partitions of ``folder``, read from the parquet footers.

        Parameters
        ----------
        folder : Path
            A folder of partitions.
        split : {"trn", "val"} or None, default=None
            As in :meth:`partitions`.

        Returns
        -------
        int
        """
        return sum(pq.read_metadata(path).num_rows for path in self.partitions(folder, split))

    def read_table_data(self, table: str) -> pd.DataFrame:
        """All split rows (training and validation) of ``table`` as one DataFrame.

        Parameters
        ----------
        table : {"tgt", "ctx"}
            The table to read.

        Returns
        -------
        DataFrame
            The partitions concatenated in order, with a fresh ``RangeIndex``.
        """
        return pd.concat([self.read_parquet(p) for p in self.partitions(self.data_dir(table))], ignore_index=True)

    def read_encoded(self, split: str, columns: list[str]) -> list[pa.Table]:
        """The ``columns`` of every ``split`` partition of the encoded data.

        Parameters
        ----------
        split : {"trn", "val"}
            The training or the validation partitions.
        columns : list of str
            The encoded columns to read.

        Returns
        -------
        list of pyarrow.Table
            One table per partition, in order.
        """
        return [pq.read_table(path, columns=columns) for path in self.partitions(self.encoded_data, split)]

    @staticmethod
    def write_parquet(frame: pd.DataFrame | pa.Table, path: Path) -> None:
        """Write ``frame`` to the parquet file ``path`` (the index of a DataFrame is dropped).

        Parameters
        ----------
        frame : DataFrame or pyarrow.Table
            The rows to write.
        path : Path
            The file to write; its folder must exist.
        """
        table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, path)

    @staticmethod
    def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows of the parquet file ``path``.

        Parameters
        ----------
        path : Path
            The file to read.
        columns : list of str or None, default=None
            The columns to read; ``None`` reads all.

        Returns
        -------
        DataFrame
        """
        return pd.read_parquet(path, columns=columns)

    # -- the model store ---------------------------------------------------------------------------------
    def write_model_weights(self, weights: dict[str, torch.Tensor] | bytes) -> None:
        """Write ``model-weights.pt`` atomically.

        Parameters
        ----------
        weights : dict of str to torch.Tensor, or bytes
            A state dict, or its ``torch.save`` bytes (written as they are).
        """
        _write_bytes_atomic(self.model_weights_path, weights if isinstance(weights, bytes) else _torch_bytes(weights))

    def read_model_weights(self) -> bytes:
        """The ``torch.save`` bytes of the trained weights.

        Returns
        -------
        bytes

        Raises
        ------
        WorkspaceError
            If training never saved weights in this workspace.
        """
        self.require("train")
        return self.model_weights_path.read_bytes()

    def write_model_config(self, config: dict[str, Any]) -> None:
        """Write ``model-configs.json`` atomically.

        Parameters
        ----------
        config : dict
            The JSON-serializable configuration of the trained model.
        """
        write_json_atomic(self.model_config_path, config)

    def read_model_config(self) -> dict[str, Any]:
        """The configuration of the trained model (``model-configs.json``).

        Returns
        -------
        dict

        Raises
        ------
        WorkspaceError
            If training never saved weights in this workspace.
        """
        self.require("train")
        return read_json(self.model_config_path)

    def write_training_state(self, state: dict[str, Any]) -> None:
        """Write ``training-state.pt`` atomically: what a later ``RESUME`` continues from.

        Parameters
        ----------
        state : dict
            The state of the training loop (best weights, optimizer, scheduler, counters, history), saved with
            ``torch.save``; it is loaded with ``weights_only=True``, so it may hold tensors and plain Python
            values only.
        """
        _write_bytes_atomic(self.training_state_path, _torch_bytes(state))

    def read_training_state(self) -> dict[str, Any] | None:
        """What ``RESUME`` continues from, or None when no run saved it."""
        if not self.training_state_path.exists():
            return None
        return torch.load(self.training_state_path, map_location="cpu", weights_only=True)

    def write_dp_accountant(self, state: dict[str, Any]) -> None:
        """Write ``dp-accountant.json`` atomically: the DP-SGD steps taken so far.

        Parameters
        ----------
        state : dict
            ``accountant``, ``delta``, ``max_grad_norm``, ``epsilon_budget`` and ``history`` (a list of
            ``[noise_multiplier, sample_rate, steps]``), as :meth:`~synthgen.privacy._dp_sgd.PrivateSGD.to_state`
            returns them. ``RESUME`` (and ``REUSE`` of a DP model) continues spending from this history.
        """
        write_json_atomic(self.dp_accountant_path, state)

    def read_dp_accountant(self) -> dict[str, Any] | None:
        """The DP-SGD accountant state of the trained model, or None when it was not trained with DP."""
        if not self.dp_accountant_path.exists():
            return None
        return read_json(self.dp_accountant_path)

    def write_progress(self, history: list[dict[str, Any]]) -> None:
        """Write ``progress-messages.csv`` atomically: one row per progress message of the training run.

        Parameters
        ----------
        history : list of dict
            The progress messages; each has ``epoch``, ``is_checkpoint``, ``steps``, ``samples``,
            ``trn_loss``, ``val_loss``, ``total_time`` and ``learn_rate`` (other keys are ignored). The floats are
            rounded for the file.
        """
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_PROGRESS_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for record in history:
            writer.writerow({**record, "is_checkpoint": int(record["is_checkpoint"]),
                             "epoch": round(record["epoch"], 2), "trn_loss": round(record["trn_loss"], 4),
                             "val_loss": round(record["val_loss"], 4), "total_time": round(record["total_time"], 1),
                             "learn_rate": round(record["learn_rate"], 6)})
        _write_bytes_atomic(self.progress_path, buffer.getvalue().encode("utf-8"))

    def read_progress(self) -> pd.DataFrame:
        """The progress messages of the last training run (empty when there are none)."""
        return pd.read_csv(self.progress_path) if self.progress_path.exists() else pd.DataFrame()


def _is_file(workspace_dir: str | os.PathLike | Workspace) -> bool:
    path = Path(workspace_dir.root if isinstance(workspace_dir, Workspace) else workspace_dir)
    return path.exists() and not path.is_dir()


def locks_workspace(stage: str) -> Callable:
    """Decorate an engine stage so that it holds the lock of its ``workspace_dir`` while it runs."""

    def decorate(function: Callable) -> Callable:
        default = inspect.signature(function).parameters["workspace_dir"].default

        @functools.wraps(function)
        def locked(*args, **kwargs):
            workspace_dir = kwargs.get("workspace_dir", default)
            if not isinstance(workspace_dir, (str, os.PathLike, Workspace)) or _is_file(workspace_dir):
                return function(*args, **kwargs)  # not a folder: the stage's validation names the problem
            ws = Workspace.coerce(workspace_dir)
            with ws.lock(stage):
                return function(*args, **{**kwargs, "workspace_dir": ws})

        return locked

    return decorate
