"""A flat model of a workspace's context table, so that a two-table synthesizer can sample whole entities.

The context rows are encoded with the published context statistics (``ModelStore/ctx-stats``) and split as
``split`` split them (``OriginalData/ctx-data`` ``trn`` / ``val`` parts); the model is a :class:`FlatARGN` over
the non-key columns, trained like a flat target and returned in memory as a :class:`ModelBundle` whose
statistics have the layout of a flat target's, so :class:`TabularGenerator` samples it unchanged. Nothing of
it is written to the workspace.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import numpy as np
import pandas as pd
import torch

from .._dtypes import spec_name
from .._progress import TrainingProgress
from .._seeding import as_generator, torch_generator
from .._threads import resolve_n_threads, step_work, torch_threads
from .._workspace import Workspace
from ..models.tabular import FlatARGN, resolve_model_size, train_model
from ..models.tabular._bundle import ModelBundle, column_specs, weights_from_bytes, weights_to_bytes
from ..models.tabular._presets import batch_size_heuristic
from ._codec import encode_table

__all__ = ["ContextModel", "context_model_stats", "train_context_model"]

_log = logging.getLogger(__name__)
# The context model of a two-table run stops early as before issue 15's fifth round (no floor phase, see
# models/tabular/_loop.py): the floor phase was measured on flat tables only, and the sequential benchmark's
# context model (planes) is a small table that early stopping ends before the floor anyway.
FLAT_CONTEXT_FLOOR_EPOCHS = None


@attrs.frozen(eq=False)
class ContextModel:
    """The trained context model (``None`` for a context of keys only) and its training history."""

    bundle: ModelBundle | None
    stats: dict[str, Any]
    history: list[dict[str, Any]]


def context_model_stats(ws: Workspace) -> dict[str, Any]:
    """The context statistics in the layout of a flat target's (keys, key dtypes, column order, row counts)."""
    ctx_stats, meta = ws.read_stats("ctx"), ws.read_meta("ctx")
    key = ctx_stats["keys"]["primary_key"]
    return {
        "columns": ctx_stats["columns"],
        "derived_columns": ctx_stats.get("derived_columns") or {},
        "keys": {"primary_key": key},
        "key_dtypes": {key: spec_name(meta["dtypes"][key])},
        "column_order": list(meta["dtypes"]),
        "no_of_training_records": ws.count_rows(ws.data_dir("ctx"), "trn"),
        "no_of_validation_records": ws.count_rows(ws.data_dir("ctx"), "val"),
        "is_sequential": False,
        "value_protection": ctx_stats["value_protection"],
    }


def _codes(ws: Workspace, side: str, columns: dict, names: list[str], rng: np.random.Generator) -> torch.Tensor:
    parts = ws.partitions(ws.data_dir("ctx"), side)
    frames = [ws.read_parquet(path, columns=list(columns)) for path in parts]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
    if len(frame) == 0:
        return torch.zeros((0, len(names)), dtype=torch.int64)
    codes = encode_table(frame, columns, table="ctx", rng=rng)
    return torch.from_numpy(np.stack([codes[n].astype(np.int64) for n in names], axis=1))


def train_context_model(
    ws: Workspace,
    *,
    model: str | None,
    max_epochs: float,
    max_training_time_s: float,
    enable_flexible_generation: bool,
    device: torch.device,
    previous: ModelBundle | None = None,
    random_state=None,
    verbose: bool | int | str = False,
    n_threads: int | None = None,
) -> ContextModel:
    """Train a flat model of the workspace's context table (after ``analyze``).

    Parameters
    ----------
    ws : Workspace
        A workspace split with a context table and analyzed.
    model : str or None
        The size preset (default ``"MOSTLY_AI/Medium"``).
    max_epochs, max_training_time_s : float
        The budget of this model.
    enable_flexible_generation : bool
    device : torch.device
    previous : ModelBundle, optional
        A context model of the same columns to continue from (fine-tuned with a fresh optimizer).
    random_state : None, int or RandomState, optional
        Seeds the imputation under NULL flags, the weights, the row order and the column orders.
    verbose : bool, int or "auto", default=False
        Show a progress bar (see :class:`~synthgen._progress.TrainingProgress`).
    n_threads : int, optional
        torch threads while training (restored afterwards); None chooses (see :mod:`synthgen._threads`).

    Returns
    -------
    ContextModel
        Its ``bundle`` is ``None`` when the context has no columns besides its key.
    """
    stats = context_model_stats(ws)
    columns = column_specs(stats["columns"])
    if not columns:
        return ContextModel(None, stats, [])
    rng = as_generator(random_state)
    trn_rng, val_rng = rng.spawn(2)
    generator = torch_generator(rng)
    names = [s for c in columns for s in c.sub_columns]
    trn = _codes(ws, "trn", stats["columns"], names, trn_rng)
    val = _codes(ws, "val", stats["columns"], names, val_rng)
    column_dicts = [c.to_dict() for c in columns]
    if previous is not None and previous.model_config["columns"] == column_dicts:
        network = FlatARGN.from_config(previous.model_config["model"], generator=generator)
        network.load_state_dict(weights_from_bytes(previous.weights))
    else:
        network = FlatARGN.from_preset(columns, size=resolve_model_size(model or "MOSTLY_AI/Medium"),
                                       flexible=enable_flexible_generation, generator=generator)
    config = {"model_id": network.spec.size, "model_kind": "flat", "columns": column_dicts,
              "model": network.config, "enable_flexible_generation": bool(enable_flexible_generation)}
    if len(trn) == 0:
        _log.warning("no training context rows: the context model stays untrained")
        return ContextModel(ModelBundle(stats, None, config, None), stats, [])
    threads = resolve_n_threads(n_threads, device=device, work=step_work(network, batch_size_heuristic(len(trn))))
    with (TrainingProgress(max_epochs, max_training_time_s, callback=None, verbose=verbose,
                           description="train context") as progress, torch_threads(threads)):
        result = train_model(network, trn, val, max_epochs=max_epochs, max_training_time_s=max_training_time_s,
                             device=device, generator=generator, on_progress=progress.update,
                             on_tick=progress.tick, floor_epochs=FLAT_CONTEXT_FLOOR_EPOCHS)
    _log.info("trained the context model %d epochs in %.1f s (%s)", len(result.history),
              result.history[-1]["total_time"] if result.history else 0.0, result.stop_reason)
    return ContextModel(ModelBundle(stats, None, config, weights_to_bytes(result.best_state_dict)), stats,
                        result.history)
