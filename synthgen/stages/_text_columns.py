"""Free-text columns of a TABULAR table: a language model that writes them conditioned on the rest of the row.

``TabularSynthesizer`` learns the other columns with TabularARGN and the free-text (``LANGUAGE_TEXT``) columns
with one language model in the nested LANGUAGE workspace :attr:`Workspace.text_model`: its target is the text
columns, its context table the row's other non-key columns, joined one to one by a row number (:func:`row_key`).
So each record's prompt is its row's tabular values, shown through the context statistics that ``analyze``
publishes for them (a rare category reads ``_RARE_``), and the loss covers the texts only. At ``sample`` the
tabular model generates the rows first; their values are the prompts of the texts.

Whether a text is NULL is learned by the tabular model, not by the language model: each text column with NULLs
gets a boolean indicator column in the tabular table (:func:`null_flag_names`), so NULLs come out at the rate and
in the rows (given the other columns) that TabularARGN learned, which it learns in far fewer epochs than a
language model learns its ``<null>`` token. The language model trains on the rows with some text and writes
texts only where the indicator says there is one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np
import pandas as pd

from .._workspace import Workspace
from ..domain import ImputationConfig, ModelEncodingType, ModelStateStrategy, ModelType
from ._analyze import analyze
from ._encode import encode
from ._language_generation import LanguageGenerator
from ._language_model import LanguageBundle, install_language_model
from ._split import split
from ._train import train
from ._warm_start import adopt_statistics, check_workspace_matches

__all__ = ["TextModel", "row_key", "null_flag_names", "fit_text_model", "saved_text_model", "generate_texts"]

_log = logging.getLogger(__name__)


@attrs.frozen(eq=False)
class TextModel:
    """The language model of a table's free-text columns, and how it attaches to the table's rows.

    ``prompt_columns`` are the columns its records are conditioned on (the table's non-key, non-text columns),
    ``key`` the row-number column joining a record to its prompt row in the nested workspace.
    """

    bundle: LanguageBundle
    text_columns: tuple[str, ...]
    prompt_columns: tuple[str, ...]
    key: str
    history: pd.DataFrame
    null_flags: dict[str, str] = attrs.field(factory=dict)


def _unused_name(name: str, taken) -> str:
    while name in taken:
        name = f"_{name}_"
    return name


def row_key(columns) -> str:
    """A row-number column name that no column of the table has."""
    return _unused_name("__synthgen_row__", set(columns))


def null_flag_names(frame: pd.DataFrame, text_columns: list[str]) -> dict[str, str]:
    """The NULL indicator column of each text column of ``frame`` that has NULLs (names no column has)."""
    taken = set(frame.columns)
    flags = {}
    for column in text_columns:
        if frame[column].isna().any():
            flags[column] = _unused_name(f"__synthgen_null__{column}", taken)
            taken.add(flags[column])
    return flags


def fit_text_model(
    frame: pd.DataFrame,
    text_columns: list[str],
    prompt_columns: list[str],
    *,
    ws: Workspace,
    model: str | None,
    prompt_encoding_types: Mapping[str, Any] | None,
    value_protection: bool,
    max_training_time: float,
    max_epochs: float,
    strategy: ModelStateStrategy,
    previous: tuple[TextModel, dict | None] | None,
    device,
    n_threads: int | None,
    seeds: Mapping[str, int],
    verbose,
) -> TextModel:
    """Split, analyze, encode and train the language model of ``text_columns`` in the nested workspace ``ws``.

    ``previous`` is the text model (and ``RESUME`` training state) that ``REUSE`` / ``RESUME`` continue; its
    statistics and tokenizer are kept, and the data must have its columns. ``seeds`` holds a seed for each of
    ``split``, ``analyze``, ``encode`` and ``train``.
    """
    key = previous[0].key if previous is not None else row_key(frame.columns)
    null_flags = null_flag_names(frame, text_columns)
    frame = frame[frame[text_columns].notna().any(axis=1).to_numpy()]  # whether a text is NULL is tabular
    rows = np.arange(len(frame))
    texts = frame[text_columns].assign(**{key: rows})
    prompts = frame[prompt_columns].assign(**{key: rows})
    split(texts, ctx_data=prompts, tgt_context_key=key, ctx_primary_key=key, model_type=ModelType.LANGUAGE,
          tgt_encoding_types={c: ModelEncodingType.LANGUAGE_TEXT.value for c in text_columns},
          ctx_encoding_types=dict(prompt_encoding_types or {}) or None, workspace_dir=ws, random_state=seeds["split"],
          verbose=verbose)
    if previous is not None:  # encode the data with the statistics the model was trained with
        check_workspace_matches(ws, previous[0].bundle, strategy)
        adopt_statistics(ws, previous[0].bundle)
        encode(workspace_dir=ws, random_state=seeds["encode"], verbose=verbose)
        install_language_model(ws, previous[0].bundle, previous[1])
    else:
        analyze(value_protection=value_protection, workspace_dir=ws, random_state=seeds["analyze"], verbose=verbose)
        encode(workspace_dir=ws, random_state=seeds["encode"], verbose=verbose)
    train(model=model, max_training_time=max_training_time, max_epochs=max_epochs,
          model_state_strategy=strategy if previous is not None else "RESET", device=device, n_threads=n_threads,
          workspace_dir=ws, random_state=seeds["train"], verbose=verbose)
    return TextModel(LanguageBundle.from_workspace(ws), tuple(text_columns), tuple(prompt_columns), key,
                     ws.read_progress(), null_flags)


def saved_text_model(ws: Workspace, text_columns: list[str]) -> TextModel | None:
    """The text model trained in the nested workspace ``ws`` (of an earlier fit), if it has one; what ``REUSE`` /
    ``RESUME`` continue (:func:`fit_text_model` takes the NULL indicators from the new data)."""
    if not (ws.has_trained_model() and ws.stats_path("tgt").exists() and ws.tokenizer_path.exists()):
        return None
    bundle = LanguageBundle.from_workspace(ws)
    key = bundle.stats["keys"]["context_key"]
    return TextModel(bundle, tuple(text_columns), tuple(bundle.ctx_stats["columns"]), key, ws.read_progress())


def generate_texts(
    generator: LanguageGenerator,
    text_model: TextModel,
    rows: pd.DataFrame,
    *,
    seed_data: pd.DataFrame | None,
    batch_size: int | None,
    sampling_temperature: float,
    sampling_top_p: float,
    rare_category_replacement_method,
    imputation,
    rng: np.random.Generator,
    on_rows=None,
) -> pd.DataFrame:
    """The text columns for the generated ``rows`` (one record per row, in order); ``seed_data`` (text columns,
    aligned with ``rows``) is kept verbatim. ``on_rows(n)`` is told of every finished batch.

    A text is NULL where its indicator column in ``rows`` says so (unless ``imputation`` names the column);
    records are generated only for the rows with some text, and never hold a NULL text of their own.
    """
    key = text_model.key
    rows = rows.reset_index(drop=True)
    imputed = set(imputation.columns) if imputation is not None else set()
    is_null = pd.DataFrame({c: rows[flag].astype(bool).to_numpy() if c not in imputed and flag in rows.columns
                            else np.zeros(len(rows), dtype=bool)
                            for c, flag in ((c, text_model.null_flags.get(c, "")) for c in text_model.text_columns)})
    if seed_data is not None:
        seed_data = seed_data.reset_index(drop=True)
        for column in seed_data.columns:  # a seeded text is NULL exactly where its seed is
            is_null[column] = seed_data[column].isna().to_numpy()
    wanted = ~is_null.all(axis=1).to_numpy()
    positions = np.flatnonzero(wanted)
    numbers = np.arange(len(positions))
    prompts = rows.loc[wanted, list(text_model.prompt_columns)].reset_index(drop=True).assign(**{key: numbers})
    imputation = ImputationConfig(columns=list(text_model.text_columns))  # NULLs were decided above
    seeds = None
    if seed_data is not None and len(seed_data.columns):
        seeds = seed_data.loc[wanted].reset_index(drop=True).assign(**{key: numbers})
    frames = []
    for frame in generator.generate(
            ctx_data=prompts, seed_data=seeds, batch_size=batch_size, sampling_temperature=sampling_temperature,
            sampling_top_p=sampling_top_p, rare_category_replacement_method=rare_category_replacement_method,
            imputation=imputation, rng=rng):
        frames.append(frame)
        if on_rows is not None:
            on_rows(len(frame))
    texts = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    texts = texts[list(text_model.text_columns)].set_axis(positions).reindex(np.arange(len(rows)))
    for column in text_model.text_columns:
        texts[column] = texts[column].mask(is_null[column].to_numpy())
    return texts

