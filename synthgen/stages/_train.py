"""``train``: fit the tabular model on the encoded data and store it under ``ModelStore/model-data``.

Files: ``model-configs.json`` (architecture and training settings), ``model-weights.pt`` (the weights with the
best validation loss), ``training-state.pt`` (everything ``RESUME`` needs) and ``progress-messages.csv``
(one row per epoch).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .._device import resolve_device
from .._options import ENGINE_DEFAULTS, LANGUAGE_MODEL_DEFAULT, validate_all, validate_model_family
from .._progress import TrainingProgress
from .._seeding import as_generator, torch_generator
from .._threads import resolve_n_threads, step_work, torch_threads
from .._workspace import Workspace, locks_workspace
from ..domain import DifferentialPrivacyConfig, ModelStateStrategy, ModelType, ProgressCallback
from ..models._distributed import init_from_environment, process_rank, rank_device, run_on_local_ranks
from ..models.tabular import FlatARGN, SequentialARGN, resolve_model_size, train_model, train_sequential_model
from ..models.tabular._bundle import (
    ModelBundle,
    column_specs,
    strip_wrapper_prefixes,
    weights_from_bytes,
    weights_to_bytes,
)
from ..models.tabular._calibration import calibration_subjects
from ..models.tabular._presets import batch_size_heuristic
from ..models.tabular._sequence_batches import SequenceData
from ..models.tabular._sequential_streaming import train_sequential_model_streamed
from ..models.tabular._sequential_trainer import DEFAULT_SEQUENCE_WINDOW, DEFAULT_WINDOW_WARMUP
from ..models.tabular._streaming import train_model_streamed
from . import _calibration_budget as budgeting
from ._dp_train import PrivateTraining, check_dp_continuation
from ._encoded import load_flat_codes, load_sequences, streamed_flat_codes, streamed_sequences
from ._generation import TabularGenerator

__all__ = ["train"]

_log = logging.getLogger(__name__)

# The private output prior of a flat model would alone cost 10 % of the training epsilon; composed with the
# DP-SGD steps (one accountant) it adds about 2 % (adult, epsilon 0.9).
DP_PRIOR_SHARE = 0.1

def checkpoint_writer(ws: Workspace, save_weights: Callable[[dict], None],
                      upload_model_data_callback: Callable[[], None] | None) -> Callable[[dict], None]:
    """A trainer's ``on_checkpoint``: the best weights when the epoch is a checkpoint, then the training state and
    the progress, then the upload callback."""

    def on_checkpoint(state: dict) -> None:
        history = state["history"]
        if history and history[-1]["is_checkpoint"]:
            save_weights(state["best_model"])
        ws.write_training_state(state)
        ws.write_progress(history)
        if upload_model_data_callback is not None:
            upload_model_data_callback()

    return on_checkpoint


def _rows_per_step(stats: dict, n_trn: int, batch_size: int | None, window: int | None) -> int:
    """Rows through the network per training step: samples per batch, times scored and warm-up steps."""
    rows = batch_size or batch_size_heuristic(n_trn)
    if stats["is_sequential"]:
        steps = (window or DEFAULT_SEQUENCE_WINDOW) + DEFAULT_WINDOW_WARMUP
        rows *= max(1, min(int(stats["seq_len"]["median"]), steps))
    return rows


def _column_differences(saved: list[dict], current: list[dict]) -> str:
    """What differs between the column specs of a saved model and those of the workspace, in words."""
    saved_by_name = {c["name"]: c for c in saved}
    current_by_name = {c["name"]: c for c in current}
    parts = []
    missing = [n for n in saved_by_name if n not in current_by_name]
    extra = [n for n in current_by_name if n not in saved_by_name]
    if missing:
        parts.append(f"columns {missing} of the model are missing")
    if extra:
        parts.append(f"columns {extra} are new")
    changed = [n for n in saved_by_name if n in current_by_name and saved_by_name[n] != current_by_name[n]]
    if changed:
        parts.append(f"columns {changed} are encoded differently (other sub-columns or numbers of codes)")
    if not parts:
        parts.append("the columns are in another order")
    return "; ".join(parts)


def _existing_model(ws: Workspace, strategy: ModelStateStrategy, specs_dict: list[dict]):
    """The saved model config and resume state that ``strategy`` continues from, or ``(None, None)``."""
    if strategy == ModelStateStrategy.RESET or not ws.has_trained_model():
        if strategy != ModelStateStrategy.RESET:
            _log.warning("no saved model to %s; training from scratch", strategy.value.lower())
        return None, None
    config = ws.read_model_config()
    if config.get("columns") != specs_dict:
        raise ValueError(
            f"model_state_strategy={strategy.value}: the saved model does not match the encoded data of this "
            f"workspace: {_column_differences(config.get('columns') or [], specs_dict)}. "
            "Use model_state_strategy='RESET' to train a new model."
        )
    if strategy == ModelStateStrategy.RESUME:
        return config, ws.read_training_state()
    return config, None


def train(
    *,
    model: str | None = None,
    max_training_time: float = ENGINE_DEFAULTS.max_training_time,
    max_epochs: float = ENGINE_DEFAULTS.max_epochs,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
    enable_flexible_generation: bool = ENGINE_DEFAULTS.enable_flexible_generation,
    max_sequence_window: int | None = None,
    differential_privacy: DifferentialPrivacyConfig | dict | None = None,
    model_state_strategy: ModelStateStrategy | str = ENGINE_DEFAULTS.model_state_strategy,
    device: torch.device | str | None = None,
    n_threads: int | None = None,
    n_processes: int | None = None,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    upload_model_data_callback: Callable | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """Train a model with early stopping on the encoded data of the workspace.

    A TABULAR table trains a TabularARGN model; a LANGUAGE table a language model (see
    :mod:`synthgen.stages._language_train`). A flat TABULAR model whose learning rate reaches its floor does not
    stop early there: it trains 20 more epochs at the floor and keeps a weight average of them (docs/tabular.md,
    "Floor phase").

    Parameters
    ----------
    model : str, optional
        TABULAR: ``"MOSTLY_AI/Small"``, ``"MOSTLY_AI/Medium"`` (default) or ``"MOSTLY_AI/Large"`` (or
        ``small`` / ``medium`` / ``large``). LANGUAGE: ``"MOSTLY_AI/LSTMFromScratch-3m"`` (default; an LSTM
        and a tokenizer trained on the data) or the folder of a local Hugging Face causal LM with a
        byte-level ``tokenizer.json``, fine-tuned with LoRA (nothing is downloaded).
    max_training_time : float, default=14400.0
        Budget in minutes of the whole call: the network trains on what is left after reserving the estimated
        cost of the marginal calibration that follows it (at most a third of the budget); the calibration's pilot
        shrinks when the time left after training is too short (recorded in ``model-configs.json``).
    max_epochs : float, default=100.0
        Budget in epochs (full passes over the training data; fractions allowed).
    batch_size, gradient_accumulation_steps : int, optional
        Determined automatically when None.
    enable_flexible_generation : bool, default=True
        Train under random column orders so that any columns can be seeded or generated first. (A LANGUAGE
        model keeps one field order and accepts seeds of any columns anyway.)
    max_sequence_window : int, optional
        The most steps of a sequence trained per batch (default 40); longer sequences are cut into windows
        at training time, generation still produces full-length sequences.
    differential_privacy : DifferentialPrivacyConfig or dict, optional
        Train with DP-SGD on the training share of the budget (see docs/privacy.md): Poisson sampling of
        subjects (rows; entities with all their events for two-table data; records for LANGUAGE), per-subject
        clipping, Gaussian noise calibrated to the budget, training stopped before a step would exceed it.
        Validation rows are trained on too (nothing is selected on private rows), the last weights are
        released, and the ledger line of the mechanism is written to the workspace.
    model_state_strategy : {"RESET", "REUSE", "RESUME"}, default="RESET"
        Start fresh, fine-tune the saved weights, or continue an interrupted run with its optimizer state.
    device : str or torch.device, optional
        CUDA when available, else CPU.
    n_threads : int, optional
        torch threads while training (restored afterwards). None chooses for the model and the machine: one
        thread unless a step is large and cores are idle (see docs/tabular.md, "Threads"). Per process.
    n_processes : int, optional
        Train data-parallel on this many processes of this machine (TABULAR models; one per GPU with
        ``device="cuda"``, gloo processes on CPUs): this process is rank 0 and writes the workspace, the others
        are spawned. ``batch_size`` is then per process. Under ``torchrun`` (``WORLD_SIZE`` set) every process
        calls ``train`` and they train together without it. See docs/scale.md.
    workspace_dir : str, Path or Workspace, default="engine-ws"
    update_progress : callable, optional
        Receives one message per epoch; returning ``{"stopExecution": True}`` stops training.
    upload_model_data_callback : callable, optional
        Called after every epoch's checkpoint is written.
    random_state : None, int, RandomState or Generator, optional
        Seed of the initial weights, row order, column orders and dropout.
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
    >>> sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # one epoch: a few seconds
    Workspace('ws')
    >>> ws.has_trained_model()
    True
    """
    validate_all("train", {"n_processes": n_processes, "device": device})
    kwargs = dict(model=model, max_training_time=max_training_time, max_epochs=max_epochs, batch_size=batch_size,
                  gradient_accumulation_steps=gradient_accumulation_steps,
                  enable_flexible_generation=enable_flexible_generation, max_sequence_window=max_sequence_window,
                  differential_privacy=differential_privacy, model_state_strategy=model_state_strategy,
                  device=device, n_threads=n_threads, workspace_dir=workspace_dir, random_state=random_state,
                  verbose=verbose)
    # callbacks stay with rank 0 (this process), so they need not pickle
    writer_kwargs = dict(update_progress=update_progress, upload_model_data_callback=upload_model_data_callback)
    if n_processes is not None and n_processes > 1 and not dist.is_initialized():
        validate_all("train", {"workspace_dir": workspace_dir})
        run_on_local_ranks(n_processes, resolve_device(device), _train_on_this_rank, kwargs,
                           writer_kwargs=writer_kwargs)
        return workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    started = init_from_environment(resolve_device(device))
    try:
        return _train_on_this_rank(**kwargs, **writer_kwargs)
    finally:
        if started:
            dist.destroy_process_group()


def _train_on_this_rank(**kwargs) -> Workspace:
    """Rank 0 trains holding the workspace's lock; the other ranks read the workspace and write nothing."""
    ws = (_locked_train if process_rank() == 0 else _train)(**kwargs)
    if dist.is_initialized():
        dist.barrier()  # every rank returns once rank 0 has written the model
    return ws


def _train(
    *,
    model: str | None = None,
    max_training_time: float = ENGINE_DEFAULTS.max_training_time,
    max_epochs: float = ENGINE_DEFAULTS.max_epochs,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
    enable_flexible_generation: bool = ENGINE_DEFAULTS.enable_flexible_generation,
    max_sequence_window: int | None = None,
    differential_privacy: DifferentialPrivacyConfig | dict | None = None,
    model_state_strategy: ModelStateStrategy | str = ENGINE_DEFAULTS.model_state_strategy,
    device: torch.device | str | None = None,
    n_threads: int | None = None,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    upload_model_data_callback: Callable | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """The body of :func:`train` on one process (a rank of distributed training: rank 0 alone writes)."""
    started = budgeting.clock()  # max_training_time counts from here, the calibration after training included
    options = validate_all("train", {
        "model": model, "max_training_time": max_training_time, "max_epochs": max_epochs, "batch_size": batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "enable_flexible_generation": enable_flexible_generation, "max_sequence_window": max_sequence_window,
        "differential_privacy": differential_privacy, "model_state_strategy": model_state_strategy,
        "device": device, "n_threads": n_threads, "workspace_dir": workspace_dir, "update_progress": update_progress,
        "upload_model_data_callback": upload_model_data_callback, "random_state": random_state, "verbose": verbose})
    ws = workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    ws.require("encode")
    max_training_time, max_epochs = float(max_training_time), float(max_epochs)
    enable_flexible_generation = options["enable_flexible_generation"]
    strategy = options["model_state_strategy"]
    stats = ws.read_stats("tgt")
    writer = process_rank() == 0
    if stats.get("model_type") == ModelType.LANGUAGE.value:
        if not writer or dist.is_initialized():
            raise ValueError("Distributed training (n_processes, torchrun) is available for TABULAR models only.")
        if model is not None and validate_model_family(model) != ModelType.LANGUAGE:
            raise ValueError(f"The workspace holds a LANGUAGE table, but model {model!r} is a TABULAR model; pass "
                             f"{LANGUAGE_MODEL_DEFAULT!r} (the default) or the folder of a local Hugging Face model.")
        from ._language_train import train_language

        return train_language(
            ws, model=model, max_training_time=max_training_time, max_epochs=max_epochs, batch_size=batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps, strategy=strategy,
            device=resolve_device(device), n_threads=n_threads, update_progress=update_progress,
            upload_model_data_callback=upload_model_data_callback,
            generator=torch_generator(as_generator(random_state)), verbose=verbose,
            differential_privacy=options["differential_privacy"])
    if model is not None and validate_model_family(model) != ModelType.TABULAR:
        raise ValueError(f"The workspace holds a TABULAR table, but model {model!r} is a LANGUAGE model; split with "
                         "model_type='LANGUAGE' to train it, or pass a TABULAR model.")
    size = resolve_model_size(model or "MOSTLY_AI/Medium")
    sequential = stats["is_sequential"]
    ctx_stats = ws.read_stats("ctx") if ws.has_context() else None
    columns = column_specs(stats["columns"])
    context = column_specs(ctx_stats["columns"]) if ctx_stats else []
    resolved_device = rank_device(resolve_device(device))
    rng = as_generator(random_state)
    generator = torch_generator(rng)

    names = [s for c in columns for s in c.sub_columns]
    ctx_names = [s for c in context for s in c.sub_columns]
    dp_config = options["differential_privacy"]
    streamed = None
    # codes larger than the threshold train part by part, never as one tensor (on distributed ranks too: every
    # rank streams the parts); DP-SGD keeps the in-memory path, its Poisson batches are drawn from all rows
    may_stream = dp_config is None
    if sequential and may_stream and (streamed := streamed_sequences(ws, names, ctx_names)) is not None:
        n_trn = sum(streamed[0].sizes)
    elif sequential:
        trn, val = load_sequences(ws, "trn", names, ctx_names), load_sequences(ws, "val", names, ctx_names)
        if dp_config is not None:  # nothing is selected on private rows: the validation subjects train too
            trn, val = trn.concat(val), None
        n_trn = trn.n_subjects
    elif may_stream and (streamed := streamed_flat_codes(ws, names, ctx_names)) is not None:
        n_trn = sum(streamed[0].sizes)
    else:
        trn, val = load_flat_codes(ws, "trn", names), load_flat_codes(ws, "val", names)
        trn_ctx = load_flat_codes(ws, "trn", ctx_names) if context else None
        val_ctx = load_flat_codes(ws, "val", ctx_names) if context else None
        if dp_config is not None:
            trn, val = torch.cat([trn, val]), None
            trn_ctx, val_ctx = (torch.cat([trn_ctx, val_ctx]) if context else None), None
        n_trn = len(trn)
    model_class = SequentialARGN if sequential else FlatARGN

    column_dicts = [c.to_dict() for c in columns]
    config, resume_state = _existing_model(ws, strategy, column_dicts)
    continued = check_dp_continuation(ws, strategy, dp_config is not None) if config is not None else None
    if config is None:
        if writer and ws.model_data.exists():
            ws.clear_from("train")
        if sequential:
            network = SequentialARGN.from_preset(
                columns, context=context, max_len=max(1, stats["seq_len"]["max"]),
                median_len=max(1, stats["seq_len"]["median"]), size=size, flexible=enable_flexible_generation,
                generator=generator)
        else:
            network = FlatARGN.from_preset(columns, context=context, size=size,
                                           flexible=enable_flexible_generation, generator=generator)
    else:
        network = model_class.from_config(config["model"], generator=generator)
        network.load_state_dict(weights_from_bytes(ws.read_model_weights()))
    model_config = {
        "model_id": size, "model_kind": "sequential" if sequential else "flat", "columns": column_dicts,
        "model": network.config, "enable_flexible_generation": bool(enable_flexible_generation)}

    def save_weights(state_dict: dict) -> None:
        # the configuration goes with the weights, so a run killed before its first checkpoint leaves no
        # model that generation could mistake for a trained one
        if not writer:
            return
        ws.write_model_weights(weights_to_bytes(state_dict))
        if not config_saved:
            ws.write_model_config(model_config)
            config_saved.append(True)

    config_saved: list[bool] = []
    if n_trn == 0:
        _log.warning("no training rows: the model stays untrained")
        save_weights(network.state_dict())
        return ws

    threads = resolve_n_threads(n_threads, device=resolved_device,
                                work=step_work(network, _rows_per_step(stats, n_trn, batch_size, max_sequence_window)))
    # rank 0 calibrates the generation after training (a flat model without context; a sequential model unless
    # it trains under DP or streamed): its estimated cost is reserved from the budget (see _calibration_budget)
    budget_s = max_training_time * 60.0
    calibrates = writer and ((not sequential and not context) or (sequential and dp_config is None
                                                                   and streamed is None))
    costing, reserved_s, fit_budget_s = None, 0.0, budget_s
    if calibrates:
        costing = budgeting.CalibrationCosting(network, sequences=trn if sequential else None, n_rows=n_trn)
        fit_budget_s, reserved_s = budgeting.training_budget(
            budget_s, budgeting.clock() - started, costing.plan(math.inf).estimated_s)
    progress = TrainingProgress(max_epochs, fit_budget_s, callback=update_progress,
                                verbose=verbose if writer else False)

    on_checkpoint = checkpoint_writer(ws, save_weights, upload_model_data_callback)
    private = None
    if dp_config is not None:
        # the flat model starts from noisy marginals (the sequential model's steps have no bounded sensitivity)
        private = PrivateTraining(ws, dp_config, n_subjects=n_trn, max_epochs=max_epochs, continued=continued,
                                  prior_share=0.0 if sequential else DP_PRIOR_SHARE)
        on_checkpoint = private.wrap_checkpoint(on_checkpoint)
    with progress, torch_threads(threads):
        budget = dict(max_epochs=max_epochs, max_training_time_s=fit_budget_s, batch_size=batch_size,
                      gradient_accumulation_steps=gradient_accumulation_steps, device=resolved_device,
                      generator=generator, on_progress=progress.update, on_checkpoint=on_checkpoint,
                      resume_state=resume_state, on_tick=progress.tick)
        if private is not None:  # no output biases from exact counts; DP-SGD steps
            budget.update(empirical_prior=False, make_private=private.make_private)
        if sequential:
            window = {"max_sequence_window": max_sequence_window} if max_sequence_window else {}
            if streamed is not None:
                result = train_sequential_model_streamed(network, *streamed, **window, **budget)
            else:
                result = train_sequential_model(network, trn, val, **window, **budget)
        elif streamed is not None:
            result = train_model_streamed(network, *streamed, **budget)
        else:
            result = train_model(network, trn, val, trn_context=trn_ctx, val_context=val_ctx, **budget)
    # the best weights, also when training stopped before the first validation (under DP: the last weights,
    # after the ledger line of the steps they have seen)
    if private is not None:
        private.record(result.state["privacy"])
    state_dict = result.best_state_dict
    if costing is not None:
        # pilot sequences from a sample of the training contexts (a DP sequential model is not calibrated: its
        # step heads never saw exact counts, and the steps' counts have no bounded sensitivity to release noisy
        # ones); the pilot shrinks when what is left of the budget is too short for the full one
        plan = _calibration_plan(costing, budget_s - (budgeting.clock() - started))
        calibration_start = budgeting.clock()
        state_dict = _calibrated(network, state_dict, stats, model_config, n_trn, generator, resolved_device,
                                 ctx_stats=ctx_stats if sequential else None, sequences=trn if sequential else None,
                                 n_pilot=plan.size)
        model_config["marginal_calibration"] = plan.record(budgeting.clock() - calibration_start, reserved_s)
        if config_saved:  # else save_weights writes it below
            ws.write_model_config(model_config)
    save_weights(state_dict)
    _log.info("trained %d epochs in %.1f s (%s)", len(result.history), result.history[-1]["total_time"]
              if result.history else 0.0, result.stop_reason)
    return ws


def _calibration_plan(costing: budgeting.CalibrationCosting, available_s: float) -> budgeting.CalibrationPlan:
    """The calibration's pilot for ``available_s`` seconds, logged; the generation's cost is probed again unless
    the estimate before training fits twice (the machine's load may have changed since)."""
    plan = costing.plan(available_s)
    if plan.estimated_s * 2.0 > available_s:
        costing.measure()
        plan = costing.plan(available_s)
    if plan.shrunk:
        over = f", estimated {plan.estimated_s:.1f} s: over budget" if plan.over_budget else ""
        _log.warning("marginal calibration: %.1f s of max_training_time left, the full pilot (%d) would take about "
                     "%.1f s; calibrating on %d pilot subjects (rows) per round%s", available_s, plan.full_size,
                     costing.estimate(plan.full_size), plan.size, over)
    else:
        _log.info("marginal calibration: full pilot (%d), estimated %.1f s of %.1f s left", plan.size,
                  plan.estimated_s, available_s)
    return plan


def _calibrated(network: FlatARGN | SequentialARGN, state_dict: dict, stats: dict, model_config: dict, n_trn: int,
                generator: torch.Generator, device: torch.device, *, ctx_stats: dict | None = None,
                sequences: SequenceData | None = None, n_pilot: int | None = None) -> dict:
    """``state_dict`` with the marginal calibration of generation fitted (see ``models.tabular._calibration``)
    on ``n_pilot`` pilot subjects (rows of a flat model) per full round; default the full pilot.

    Its targets are the counts the model holds: the training codes' histograms, or under DP the noisy ones of the
    private output prior (post-processing: no epsilon).
    """
    bundle = ModelBundle(stats, ctx_stats, model_config, weights_to_bytes(state_dict))
    pilot_generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
    context_codes = None
    if sequences is not None:  # each round's pilot: a fresh seeded sample of the training subjects' contexts
        if n_pilot is None:
            n_pilot = calibration_subjects(sequences.n_subjects, len(sequences.steps))
        context_codes = sequences.context[: sequences.n_subjects]
    buffers = TabularGenerator(bundle, device).fit_marginal_calibration(n_trn, pilot_generator, context_codes,
                                                                        n_pilot)
    network.load_state_dict(strip_wrapper_prefixes(state_dict))
    for name, value in buffers.items():
        network.get_buffer(name).copy_(value)
    return network.state_dict()


_locked_train = locks_workspace("train")(_train)
