"""``generate``: sample synthetic data from the trained model into ``SyntheticData/part.NNNNNN.parquet``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._device import resolve_device
from .._options import ENGINE_DEFAULTS, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator
from .._threads import torch_threads
from .._workspace import Workspace, locks_workspace
from ..domain import (
    FairnessConfig,
    ImputationConfig,
    ModelType,
    ProgressCallback,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)
from ..models.tabular._bundle import ModelBundle
from ._generation import TabularGenerator, subset_of_default_context
from ._language_generation import LanguageGenerator
from ._language_model import LanguageBundle

__all__ = ["generate", "read_synthetic_data", "load_bundle"]


def load_bundle(ws: Workspace) -> ModelBundle:
    """The trained model of ``ws`` with its statistics, in memory.

    Raises :class:`WorkspaceError` when training never saved weights (e.g. it was killed before its first
    checkpoint), so generation never samples an untrained network.
    """
    ws.require("analyze")
    if ws.read_model_type() != ModelType.TABULAR.value:
        raise ValueError(f"The workspace {str(ws.root)!r} holds a {ws.read_model_type()} model; this needs a TABULAR "
                         "one (a LANGUAGE model generates with generate() or LanguageSynthesizer).")
    return ModelBundle(
        stats=ws.read_stats("tgt"),
        ctx_stats=ws.read_stats("ctx") if ws.has_context() else None,
        model_config=ws.read_model_config(),
        weights=ws.read_model_weights(),
    )


@locks_workspace("generate")
def generate(
    *,
    ctx_data: pd.DataFrame | None = None,
    seed_data: pd.DataFrame | None = None,
    sample_size: int | None = None,
    batch_size: int | None = None,
    sampling_temperature: float = ENGINE_DEFAULTS.sampling_temperature,
    sampling_top_p: float = ENGINE_DEFAULTS.sampling_top_p,
    device: torch.device | str | None = None,
    n_threads: int | None = None,
    rare_category_replacement_method: RareCategoryReplacementMethod | str | None = None,
    rebalancing: RebalancingConfig | dict | None = None,
    imputation: ImputationConfig | dict | None = None,
    fairness: FairnessConfig | dict | None = None,
    marginal_calibration: bool = ENGINE_DEFAULTS.marginal_calibration,
    derived_columns: bool = ENGINE_DEFAULTS.derived_columns,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """Generate synthetic data with the trained model of the workspace.

    Writes ``SyntheticData/part.NNNNNN.parquet`` files, one per batch, so memory stays flat however many
    rows are asked for. A LANGUAGE model writes valid values by construction (categories, ranges, UTF-8
    text of bounded length); ``rebalancing`` and ``fairness`` apply to TABULAR models only.

    Parameters
    ----------
    ctx_data : DataFrame, optional
        Context rows to generate for (two-table models): new entities, or by default the training context
        (of which ``sample_size`` rows are drawn at random, seeded by ``random_state``, when given).
    seed_data : DataFrame, optional
        Fixed values of some columns, one row per generated row; the other columns are generated
        conditionally on them and the seed values are kept verbatim.
    sample_size : int, optional
        Rows to generate; default the number of original rows (or of seed rows).
    batch_size : int, optional
        Rows per batch (and per output part); default 100,000 (LANGUAGE: rows per part 10,000 and per
        model batch 128 for the LSTM, 64 for a Hugging Face model).
    sampling_temperature : float, default=1.0
        Above 1 more diverse, below 1 more typical; 0 picks the most likely codes.
    sampling_top_p : float, default=1.0
        Nucleus sampling: draw only from the most likely codes that make up this probability mass.
    device : str or torch.device, optional
        CUDA when available, else CPU.
    n_threads : int, optional
        torch threads while generating (restored afterwards); None chooses for the model and the machine.
    rare_category_replacement_method : {"SAMPLE", "CONSTANT"}, optional
        ``SAMPLE`` (default) replaces protected categories by published ones in model proportions;
        ``CONSTANT`` emits the literal ``_RARE_`` in categorical string columns and NULL in categorical
        columns of other types (bool, ``category``, Python numbers). A column without any published category
        is NULL in every row, whatever the method.
    rebalancing : RebalancingConfig or dict, optional
        Target shares of categories of one categorical column.
    imputation : ImputationConfig or dict, optional
        Columns that are never generated as NULL.
    fairness : FairnessConfig or dict, optional
        ``{"target_column": ..., "sensitive_columns": [...]}``: generate the (categorical) target independently
        of the (categorical) sensitive columns, by a per-group tilt of the target's sampling distribution fitted
        on each batch's own rows (small batches: on one calibration batch); see docs/tabular.md, "Fairness".
    marginal_calibration : bool, default=True
        Flat TABULAR models: add the per-code logit offsets that ``train`` fitted so that generated marginals
        match the training marginals (under DP: the noisy marginals of the release); they stay additive under
        every other option. ``False`` draws from the network alone. See docs/tabular.md, "Marginal calibration".
    derived_columns : bool, default=True
        TABULAR models: set each column that ``analyze`` found to be an exact function of another column (every
        training row with the same value of the other has the same value of it) from that column, where the
        generated value is in the stored map; columns fixed by seeds or rebalancing are kept. ``False`` keeps the
        model's own draws. See docs/tabular.md, "Derived columns".
    workspace_dir : str, Path or Workspace, default="engine-ws"
    update_progress : callable, optional
    random_state : None, int, RandomState or Generator, optional
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Returns
    -------
    Workspace

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> ws = sg.split(census, workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> ws = sg.encode(workspace_dir="ws", random_state=0)
    >>> ws = sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # a few seconds
    >>> ws = sg.generate(workspace_dir="ws", sample_size=100, random_state=0)
    >>> sg.read_synthetic_data("ws").shape
    (100, 15)
    """
    validate_all("generate", {
        "ctx_data": ctx_data, "seed_data": seed_data, "sample_size": sample_size, "batch_size": batch_size,
        "sampling_temperature": sampling_temperature, "sampling_top_p": sampling_top_p, "device": device,
        "n_threads": n_threads, "rare_category_replacement_method": rare_category_replacement_method, "rebalancing": rebalancing,
        "imputation": imputation, "fairness": fairness, "marginal_calibration": marginal_calibration,
        "derived_columns": derived_columns, "workspace_dir": workspace_dir,
        "update_progress": update_progress, "random_state": random_state, "verbose": verbose})
    ws = workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    ws.require("analyze")
    language = ws.read_stats("tgt").get("model_type") == ModelType.LANGUAGE.value
    bundle = LanguageBundle.from_workspace(ws) if language else load_bundle(ws)
    rng = as_generator(random_state)
    if ctx_data is None and bundle.ctx_stats is not None:  # by default, the training context
        ctx_data = ws.read_table_data("ctx")
        ctx_data, sample_size = subset_of_default_context(ctx_data, sample_size, seed_data, rng,
                                                          size_name="sample_size", context_name="ctx_data")
    generator = (LanguageGenerator if language else TabularGenerator)(bundle, resolve_device(device))
    ws.clear_from("generate")
    batches = generator.generate(
        sample_size=sample_size, ctx_data=ctx_data, seed_data=seed_data, batch_size=batch_size,
        sampling_temperature=sampling_temperature, sampling_top_p=sampling_top_p,
        rare_category_replacement_method=rare_category_replacement_method, rebalancing=rebalancing,
        imputation=imputation, fairness=fairness, rng=rng,
        **({} if language else {"marginal_calibration": bool(marginal_calibration),
                                "derived_columns": bool(derived_columns)}),
    )
    total, per_batch, unit = generator.plan(sample_size, ctx_data, seed_data, batch_size)
    with ProgressReporter(total, description="generate", callback=update_progress, verbose=verbose,
                          unit=unit) as progress:
        with ws.staged_dir(ws.synthetic_data) as folder, torch_threads(generator.n_threads_for(n_threads, batch_size)):
            for index, frame in enumerate(batches):
                ws.write_parquet(frame, Path(folder) / ws.partition_name(index))
                if progress.update(max(0, min(per_batch, total - progress.completed))):
                    break
    return ws


def read_synthetic_data(workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir) -> pd.DataFrame:
    """All generated parts of the workspace as one DataFrame.

    Parameters
    ----------
    workspace_dir : str, Path or Workspace, default="engine-ws"
        The workspace ``generate`` wrote to.

    Returns
    -------
    DataFrame
        The generated rows; an empty frame when nothing was generated.

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> ws = sg.split(census, workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> ws = sg.encode(workspace_dir="ws", random_state=0)
    >>> ws = sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # a few seconds
    >>> ws = sg.generate(workspace_dir="ws", sample_size=10, random_state=0)
    >>> list(sg.read_synthetic_data("ws").columns) == list(census.columns)
    True
    """
    ws = Workspace.coerce(workspace_dir)
    parts = ws.partitions(ws.synthetic_data)
    if not parts:
        return pd.DataFrame()
    return pd.concat([ws.read_parquet(p) for p in parts], ignore_index=True)

