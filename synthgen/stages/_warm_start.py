"""Continue a saved model on new data (``model_state_strategy`` ``REUSE`` / ``RESUME`` of an estimator's ``fit``).

The new data is split as usual, but encoded with the statistics the model was trained with, so that every code
means what it meant before (a category the model never saw becomes ``_RARE_``, values beyond the published ranges
are clipped). Columns, keys and encoding types must be those of the model; anything else is refused with an
error that says what differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._workspace import Workspace
from ..domain import ModelEncodingType, ModelStateStrategy
from ..models.tabular import resume_on_new_data
from ..models.tabular._bundle import ModelBundle

__all__ = ["check_columns", "check_workspace_matches", "adopt_statistics", "install_model"]

_AUTO_RESOLVES_TO = {ModelEncodingType.TABULAR_NUMERIC_DISCRETE.value, ModelEncodingType.TABULAR_NUMERIC_BINNED.value,
                     ModelEncodingType.TABULAR_NUMERIC_DIGIT.value}


def _same_encoding(declared: str, saved: str) -> bool:
    return declared == saved or (declared == ModelEncodingType.TABULAR_NUMERIC_AUTO.value
                                 and saved in _AUTO_RESOLVES_TO)


def _table_problems(name: str, found: Iterable[str], stats: dict[str, Any],
                    encoding_types: Mapping[str, str] | None = None) -> list[str]:
    found = list(found)
    expected = list(stats["columns"]) + [k for k in stats["keys"].values() if k not in stats["columns"]]
    problems = []
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if missing:
        problems.append(f"{name} lacks the columns {missing}")
    if extra:
        problems.append(f"{name} has columns the model does not know: {extra}")
    for column, declared in (encoding_types or {}).items():
        saved = stats["columns"].get(column, {}).get("encoding_type")
        if saved is not None and not _same_encoding(declared, saved):
            problems.append(f"column {column!r} of {name} is {declared}, the model's is {saved}")
    return problems


def _raise(strategy: ModelStateStrategy, problems: list[str]) -> None:
    if problems:
        raise ValueError(
            f"model_state_strategy={strategy.value!r} continues the saved model, but the data does not match "
            f"the columns it was trained on: {'; '.join(problems)}. Pass data with the model's columns, or use "
            "model_state_strategy='RESET' to train a new model."
        )


def check_columns(bundle: ModelBundle, strategy: ModelStateStrategy, tgt_columns: Iterable[str],
                  ctx_columns: Iterable[str] | None) -> None:
    """Refuse target (and context) column names that differ from the model's, before anything is written."""
    problems = _table_problems("tgt_data", tgt_columns, bundle.stats)
    if bundle.ctx_stats is not None and ctx_columns is not None:
        problems += _table_problems("the context", ctx_columns, bundle.ctx_stats)
    _raise(strategy, problems)


def check_workspace_matches(ws: Workspace, bundle: ModelBundle, strategy: ModelStateStrategy) -> None:
    """Refuse a split whose columns, keys or encoding types differ from those the model was trained on."""
    tables = [("tgt", "tgt_data", bundle.stats)]
    problems = []
    if bundle.ctx_stats is not None and ws.has_context():
        tables.append(("ctx", "the context", bundle.ctx_stats))
    elif bundle.ctx_stats is not None:
        problems.append("the model was trained with a context table, the data has none")
    elif ws.has_context():
        problems.append("the model was trained without a context table, the data has one")
    for table, name, stats in tables:
        meta = ws.read_meta(table)
        problems += _table_problems(name, meta["dtypes"], stats, meta["encoding_types"])
        if not problems and meta["keys"] != stats["keys"]:
            problems.append(f"the keys of {name} are {meta['keys']}, the model's are {stats['keys']}")
    _raise(strategy, problems)


def adopt_statistics(ws: Workspace, bundle: ModelBundle) -> None:
    """Store the model's statistics, with the record counts of the new split; call after ``split``.

    ``encode`` then codes the new data as the model expects.
    """
    subjects = "ctx" if ws.has_context() else "tgt"
    stats = {**bundle.stats,
             "no_of_training_records": ws.count_rows(ws.data_dir(subjects), "trn"),
             "no_of_validation_records": ws.count_rows(ws.data_dir(subjects), "val")}
    if bundle.ctx_stats is not None:
        ws.write_stats("ctx", bundle.ctx_stats)
    ws.write_stats("tgt", stats)


def install_model(ws: Workspace, bundle: ModelBundle, training_state: dict[str, Any] | None) -> None:
    """Store the model (and its ``RESUME`` state) in ``ws``, so that ``train`` continues it; call after ``encode``.

    The training state continues on the new data (see :func:`~synthgen.models.tabular.resume_on_new_data`).
    """
    ws.write_model_weights(bundle.weights)
    ws.write_model_config(bundle.model_config)
    if training_state is not None:
        ws.write_training_state(resume_on_new_data(training_state))
