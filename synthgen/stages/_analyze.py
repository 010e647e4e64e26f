"""``analyze``: per-column statistics of the split data, computed per partition and reduced, with value protection."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._dtypes import published_dtype, spec_name
from .._options import ENGINE_DEFAULTS, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator
from .._workspace import Workspace, locks_workspace
from ..column_encodings import SequenceIndex, get_encoding
from ..column_encodings._language import get_language_encoding
from ..domain import DifferentialPrivacyConfig, ModelEncodingType, ModelType, ProgressCallback
from ..privacy._value_protection import MIN_SUBJECTS_FOR_RANGE, protected_range

__all__ = ["analyze", "column_error"]

_log = logging.getLogger(__name__)


_CATEGORICAL = (ModelEncodingType.TABULAR_CATEGORICAL.value, ModelEncodingType.LANGUAGE_CATEGORICAL.value)


def _is_language(meta: dict) -> bool:
    return any(t.startswith("LANGUAGE_") for t in meta["encoding_types"].values())


def column_error(err: Exception, column: str, table: str) -> ValueError:
    """``err`` re-raised with the column it concerns."""
    return ValueError(f"Column {column!r} of {table}_data: {err}")


def _subjects(frame: pd.DataFrame, key: str | None, offset: int) -> np.ndarray:
    if key is None:
        return np.arange(offset, offset + len(frame))
    return frame[key].to_numpy()


def _sequence(frame: pd.DataFrame, context_key: str | None) -> SequenceIndex | None:
    if context_key is None:
        return None
    return SequenceIndex(pd.factorize(frame[context_key])[0])


def _key_summary(frame: pd.DataFrame, keys: dict, table: str):
    """What the sequence lengths need of a partition, without holding its key columns: the rows per context key
    of a two-table target, the row count of a flat one, the subject keys (one per row) of a context."""
    if table == "ctx":
        return frame[keys["primary_key"]]
    if keys.get("context_key") is not None:
        return frame[keys["context_key"]].value_counts()
    return len(frame)


def _analyze_table(ws: Workspace, table: str, meta: dict, progress: ProgressReporter,
                   value_protection: bool, rng: np.random.Generator) -> tuple[dict, list[tuple]]:
    """Reduced column stats of one table and, per partition, the summary of its keys (for sequence lengths)."""
    keys = meta["keys"]
    subject_key = keys.get("context_key") if table == "tgt" else keys.get("primary_key")
    lookup = get_language_encoding if _is_language(meta) else get_encoding
    encodings = {c: lookup(t) for c, t in meta["encoding_types"].items()}
    partials: dict[str, list] = {c: [] for c in encodings}
    key_frames, offset = [], 0
    for path in ws.partitions(ws.data_dir(table)):
        frame = ws.read_parquet(path)
        subjects = _subjects(frame, subject_key, offset)
        offset += len(frame)
        sequence = _sequence(frame, keys.get("context_key")) if table == "tgt" else None
        for column, encoding in encodings.items():
            try:
                partials[column].append(encoding.analyze(frame[column], subjects, sequence=sequence))
            except ValueError as err:
                raise column_error(err, column, table) from None
        key_frames.append((path.name, _key_summary(frame, keys, table)))
        progress.update()
    column_rngs = rng.spawn(len(encodings)) if encodings else []
    columns: dict[str, dict[str, Any]] = {}
    for index, (column, encoding) in enumerate(encodings.items()):
        try:
            stats = encoding.reduce(partials[column], value_protection=value_protection, rng=column_rngs[index])
        except ValueError as err:
            raise column_error(err, column, table) from None
        stats["dtype"] = published_dtype(meta["dtypes"].get(column, "object"), stats.get("categories"))
        if stats["encoding_type"] in _CATEGORICAL and not stats["categories"] and stats["no_of_rare_categories"]:
            warnings.warn(_no_category_message(column, table, stats["no_of_rare_categories"],
                                               text_type="LANGUAGE_TEXT" if _is_language(meta) else
                                               "TABULAR_CHARACTER"), UserWarning, stacklevel=2)
        stats["argn_processor"] = table
        stats["argn_column"] = f"c{index}"
        columns[column] = stats
    return columns, key_frames


def _no_category_message(column: str, table: str, n_categories: int, *, text_type: str) -> str:
    fate = "sampled as NULL in every row" if table == "tgt" else "NULL in every row for the model"
    return (f"Column {column!r} of {table}_data: value protection publishes none of its {n_categories} categories "
            f"(each is held by fewer than 5 to 7 subjects), so it is {fate}. If it identifies rows, make it a key "
            f"or drop it; for free text or codes declare {text_type}; convert numbers or dates to a numeric "
            "or datetime dtype; or fit with value_protection=False.")


def _sequence_lengths(tgt_keys, ctx_keys, context_key: str, ctx_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Length of every subject's sequence (zero for subjects without target rows), and trn flags."""
    lengths, is_trn = [], []
    ctx_by_name = dict(ctx_keys)
    for name, frame in tgt_keys:
        subjects = ctx_by_name[name]
        lengths.append(frame.reindex(subjects, fill_value=0).to_numpy())
        is_trn.append(np.full(len(subjects), name.endswith("-trn.parquet")))
    return np.concatenate(lengths), np.concatenate(is_trn)


def _seq_len_stats(lengths: np.ndarray, value_protection: bool, rng: np.random.Generator) -> dict[str, Any]:
    lengths = lengths.astype(np.int64)
    low, high = protected_range([np.sort(lengths)], [np.sort(lengths)[::-1]], len(lengths),
                                value_protection=value_protection, rng=rng)
    median = int(np.median(lengths)) if len(lengths) else 0
    if low is None:  # too few subjects to publish a range: every sequence gets the median length
        _log.warning("fewer than %d subjects: sequence lengths are protected to the median length %d",
                     MIN_SUBJECTS_FOR_RANGE, median)
        low = high = median
    return {"min": int(low), "max": int(high), "median": int(min(max(median, low), high)),
            "value_protection": bool(value_protection)}


@locks_workspace("analyze")
def analyze(
    *,
    value_protection: bool = ENGINE_DEFAULTS.value_protection,
    differential_privacy: DifferentialPrivacyConfig | dict | None = None,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """Compute the (privacy-protected) column statistics of the split data.

    Writes ``ModelStore/tgt-stats/stats.json`` and, with a context, ``ModelStore/ctx-stats/stats.json``.

    Parameters
    ----------
    value_protection : bool, default=True
        Hide categories held by fewer than 5–7 subjects and the 5–7 most extreme values of every range;
        ranges of fewer than 20 subjects are hidden entirely.
    differential_privacy : DifferentialPrivacyConfig or dict, optional
        Not available for statistics yet; must be ``None``.
    workspace_dir : str, Path or Workspace, default="engine-ws"
    update_progress : callable, optional
    random_state : None, int, RandomState or Generator, optional
        Seed of the stochastic protection thresholds.
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
    >>> stats = ws.read_stats("tgt")
    >>> stats["columns"]["sex"]["encoding_type"]
    'TABULAR_CATEGORICAL'
    """
    value_protection = validate_all("analyze", {
        "value_protection": value_protection, "differential_privacy": differential_privacy,
        "workspace_dir": workspace_dir, "update_progress": update_progress, "random_state": random_state,
        "verbose": verbose})["value_protection"]
    ws = workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    ws.require("split")
    model_type = ws.read_model_type()
    ws.clear_from("analyze")
    rng = as_generator(random_state)
    tgt_rng, ctx_rng, len_rng = rng.spawn(3)
    tgt_meta = ws.read_meta("tgt")
    has_ctx = ws.has_context()
    n_files = len(ws.partitions(ws.data_dir("tgt"))) * (2 if has_ctx else 1)
    with ProgressReporter(n_files, description="analyze", callback=update_progress, verbose=verbose) as progress:
        tgt_columns, tgt_keys = _analyze_table(ws, "tgt", tgt_meta, progress, value_protection, tgt_rng)
        context_key = tgt_meta["keys"].get("context_key")
        if has_ctx:
            ctx_meta = ws.read_meta("ctx")
            ctx_columns, ctx_keys = _analyze_table(ws, "ctx", ctx_meta, progress, value_protection, ctx_rng)
            lengths, is_trn = _sequence_lengths(tgt_keys, ctx_keys, context_key, ctx_meta["keys"]["primary_key"])
            n_trn, n_val = int(is_trn.sum()), int((~is_trn).sum())
        else:
            # every flat subject is one row, so the length stats of one row are those of all rows
            lengths = np.ones(1, dtype=np.int64)
            n_trn = sum(rows for name, rows in tgt_keys if name.endswith("-trn.parquet"))
            n_val = sum(rows for _, rows in tgt_keys) - n_trn
        seq_len = _seq_len_stats(lengths, value_protection and has_ctx, len_rng)
        stats = {
            "model_type": model_type,
            "columns": tgt_columns,
            "keys": tgt_meta["keys"],
            "key_dtypes": {k: spec_name(tgt_meta["dtypes"][k]) for k in tgt_meta["keys"].values()},
            "column_order": list(tgt_meta["dtypes"]),
            "no_of_training_records": n_trn,
            "no_of_validation_records": n_val,
            "seq_len": seq_len,
            # a LANGUAGE model writes one record per target row, conditioned on its context row
            "is_sequential": bool(has_ctx and model_type == ModelType.TABULAR.value
                                  and not (lengths.min() == lengths.max() == 1)),
            "value_protection": bool(value_protection),
        }
        if has_ctx:
            ws.write_stats("ctx", {"columns": ctx_columns, "keys": ctx_meta["keys"],
                                                  "value_protection": bool(value_protection)})
        # written last: its presence marks a completed analysis
        ws.write_stats("tgt", stats)
    return ws
