"""Command-line options generated from the options layer (``synthgen._options``).

The name, the type, what is allowed and the default of every option come from its declaration there; only a
short phrase of what the option means is written here. Options whose values are dicts (encoding types,
rebalancing, fairness, ...) come from the ``--config`` file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from .._options import ESTIMATOR_OPTIONS, OPTIONS, Option

_MEANING = {
    "model": "Model size.",
    "language_model": "Language model of free-text columns (a local Hugging Face model folder, or the LSTM).",
    "max_training_time": "Training budget in minutes.",
    "max_epochs": "Training budget in epochs.",
    "batch_size": "Rows per batch; automatic when unset.",
    "gradient_accumulation_steps": "Batches per optimizer step; automatic when unset.",
    "enable_flexible_generation": "Train under random column orders, so that any columns can be seeded.",
    "max_sequence_window": "Steps of a sequence per training window (two-table data).",
    "value_protection": "Keep rare categories and extreme values out of the published statistics.",
    "tgt_primary_key": "Primary key column of the data.",
    "tgt_context_key": "Column of the data that refers to the context table.",
    "ctx_primary_key": "Primary key column of the context table.",
    "model_type": "Model type; inferred when unset.",
    "model_state_strategy": "RESET trains from scratch; REUSE fine-tunes and RESUME continues the saved model.",
    "n_partitions": "Partitions of the workspace's data.",
    "trn_val_split": "Share of the subjects that train (the others validate).",
    "device": "Where to compute; CUDA when available if unset.",
    "n_threads": "torch threads; chosen for the model and the machine when unset.",
    "n_processes": "Train data-parallel on this many processes of this machine (docs/scale.md).",
    "workspace_dir": "Workspace folder; a temporary one, removed afterwards, when unset.",
    "random_state": "Seed, for reproducible results.",
    "target": "Column that predict / predict_proba answer for (the model is then a classifier of it).",
    "n_samples": "Rows to generate (two-table data: subjects); default the training rows, or the seed rows.",
    "sample_size": "Rows to generate (two-table data: subjects); default the training rows, or the seed rows.",
    "sampling_temperature": "Below 1 sharper, above 1 flatter than the learned distribution.",
    "sampling_top_p": "Sample from the smallest set of values holding this probability mass.",
    "rare_category_replacement_method": "SAMPLE (default) never emits the _RARE_ token; CONSTANT emits it.",
    "marginal_calibration": "Add the offsets fitted after training so generated marginals match the training ones.",
    "derived_columns": "Set columns that are exact functions of another column (found at analyze) from it.",
}

_SHORT = {"n_samples": "-n", "sample_size": "-n"}

_TYPES = {"float": click.FLOAT, "int": click.INT}


def _kind(option: Option) -> str:
    """``"float"``, ``"int"``, ``"bool"`` or ``"str"``, from the first constraint's description."""
    words = option.constraints[0].description.split()
    return words[1] if words[1] in ("float", "int", "bool") else "str"


def _help(option: Option) -> str:
    allowed = option.constraints[0].description
    parts = [_MEANING.get(option.name, "")]
    if allowed not in ("a str", "a str or path-like", "a bool"):  # the metavar says as much
        parts.append(f"Must be {allowed.replace('a str among ', 'one of ').replace(', a torch.device', '')}.")
    default = getattr(option.default, "value", option.default)
    if default is not None:
        parts.append(f" [default: {default}]")
    return " ".join(p for p in parts if p)


def option_decorator(name: str, *, estimator: bool) -> Callable:
    """The click option of ``name``; unset it is None, so the config file and then the library default apply."""
    option = (ESTIMATOR_OPTIONS if estimator else OPTIONS)[name]
    flag = "--" + name.replace("_", "-")
    if _kind(option) == "bool":
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=_help(option))
    flags = [_SHORT[name], flag] if name in _SHORT else [flag]
    return click.option(*flags, name, type=_TYPES.get(_kind(option), click.STRING), default=None,
                        help=_help(option))


def options(names: Iterable[str], *, estimator: bool = False) -> Callable:
    """Decorate a command with the options ``names``, in that order in its help."""
    names = list(names)

    def decorate(function: Callable) -> Callable:
        for name in reversed(names):
            function = option_decorator(name, estimator=estimator)(function)
        return function

    return decorate


def merge(config: Mapping[str, Any], given: Mapping[str, Any], allowed: Iterable[str], command: str) -> dict:
    """The options of a command: the config file's, overridden by those given on the command line."""
    allowed = set(allowed)
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ValueError(f"the config file has options that '{command}' does not take: {', '.join(unknown)}; "
                         f"it takes {', '.join(sorted(allowed))}")
    return {**config, **{name: value for name, value in given.items() if value is not None}}
