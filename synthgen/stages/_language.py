"""LANGUAGE tables in the stages: the record fields from the published statistics, and the texts ``encode`` writes.

``encode`` writes, per target row, the text of every target field (``tgt:<column>``, already confined to the
statistics: rare categories as ``_RARE_``, numbers and datetimes clipped, texts cut) and of every context
column (``ctx:<column>``, the prompt). Context values go through the context table's own (tabular) statistics
first, encoded and decoded, so a prompt shows only what those statistics publish (a rare category as
``_RARE_``, a number within its protected range), at training and at generation alike.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..column_encodings._common import RARE_TOKEN
from ..column_encodings._language import generated_as_null, get_language_encoding
from ..domain import ModelEncodingType, RareCategoryReplacementMethod
from ._codec import decode_table, encode_table

__all__ = ["TGT_PREFIX", "CTX_PREFIX", "record_fields", "target_texts", "prompt_values", "null_fields"]

TGT_PREFIX = "tgt:"
CTX_PREFIX = "ctx:"


def target_texts(frame: pd.DataFrame, columns: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str | None]]:
    """The record text of every target column of ``frame`` (None for NULL)."""
    return {column: get_language_encoding(stats["encoding_type"]).texts(frame[column], dict(stats))
            for column, stats in columns.items()}


def prompt_values(frame: pd.DataFrame, ctx_stats: Mapping[str, Any] | None,
                  rng: np.random.Generator) -> dict[str, list]:
    """The context values of ``frame`` as the prompt shows them: through the context statistics and back."""
    if ctx_stats is None or not ctx_stats["columns"]:
        return {}
    codes = encode_table(frame, ctx_stats["columns"], table="ctx", rng=rng)
    decoded = decode_table(codes, ctx_stats["columns"], rng=rng)
    return {column: decoded[column].astype(object).where(decoded[column].notna(), None).tolist()
            for column in ctx_stats["columns"]}


def null_fields(columns: Mapping[str, Mapping[str, Any]],
                rare_method: RareCategoryReplacementMethod | None = None) -> list[str]:
    """Columns generated as NULL in every row: nothing published to generate from.

    With ``rare_method`` (generation), a categorical column whose only choice is ``_RARE_`` is one of them
    unless the method is ``CONSTANT``.
    """
    out = []
    for column, stats in columns.items():
        if generated_as_null(stats):
            out.append(column)
        elif (rare_method is not None and stats["encoding_type"] == ModelEncodingType.LANGUAGE_CATEGORICAL.value
              and not stats["categories"] and not stats["has_nan"]
              and rare_method != RareCategoryReplacementMethod.CONSTANT):
            out.append(column)
    return out


def record_fields(columns: Mapping[str, Mapping[str, Any]], max_tokens: Mapping[str, int], *,
                  rare_method: RareCategoryReplacementMethod | None = None,
                  imputed: Collection[str] = ()):
    """The :class:`~synthgen.models.language.FieldSpec` of every target column, in record order.

    Parameters
    ----------
    columns : mapping
        The published statistics per column (``stats["columns"]``).
    max_tokens : mapping of str to int
        The most tokens of each text column (fixed at training).
    rare_method : RareCategoryReplacementMethod, optional
        At generation: ``CONSTANT`` keeps ``_RARE_`` among a column's categories, ``SAMPLE`` drops it. At
        training (None) ``_RARE_`` is a category wherever rare values occurred, since the records hold it.
    imputed : collection of str
        Columns that must not be generated as NULL.
    """
    from ..models.language import FieldSpec

    null_only = set(null_fields(columns, rare_method))
    fields = []
    for column, stats in columns.items():
        kind = stats["encoding_type"]
        nullable = (stats["has_nan"] or column in null_only) and column not in imputed
        if column in null_only:
            # fed and returned as a NULL seed; a placeholder spec keeps the record layout
            fields.append(FieldSpec(column, "text", nullable=True, max_tokens=1))
        elif kind == ModelEncodingType.LANGUAGE_CATEGORICAL.value:
            categories = list(stats["categories"])
            if stats["no_of_rare_categories"] and (rare_method is None or not categories
                                                   or rare_method == RareCategoryReplacementMethod.CONSTANT):
                categories.append(RARE_TOKEN)
            if not categories:  # only NULLs were published
                fields.append(FieldSpec(column, "text", nullable=True, max_tokens=1))
                continue
            fields.append(FieldSpec(column, "categorical", nullable=nullable and stats["has_nan"],
                                    categories=categories))
        elif kind == ModelEncodingType.LANGUAGE_NUMERIC.value:
            fields.append(FieldSpec(column, "numeric", nullable=nullable, min_value=stats["min"],
                                    max_value=stats["max"], scale=stats["max_scale"]))
        elif kind == ModelEncodingType.LANGUAGE_DATETIME.value:
            fields.append(FieldSpec(column, "datetime", nullable=nullable, min_value=stats["min"],
                                    max_value=stats["max"], resolution="second" if stats["has_time"] else "date"))
        else:
            fields.append(FieldSpec(column, "text", nullable=nullable, max_tokens=int(max_tokens[column])))
    return fields


def forced_nulls(columns: Mapping[str, Mapping[str, Any]], rare_method: RareCategoryReplacementMethod,
                 n: int) -> dict[str, list]:
    """Seeds of NULL for the columns generated as NULL (see :func:`null_fields`)."""
    fields = record_fields(columns, {c: 1 for c in columns}, rare_method=rare_method)
    placeholders = [f.name for f in fields
                    if f.kind == "text" and columns[f.name]["encoding_type"] != ModelEncodingType.LANGUAGE_TEXT.value]
    return {column: [None] * n for column in placeholders}


def encode_language_partition(tgt: pd.DataFrame, ctx: pd.DataFrame | None, stats: Mapping[str, Any],
                              ctx_stats: Mapping[str, Any] | None, rng: np.random.Generator):
    """The record texts of one partition as an Arrow table (``tgt:<column>``, ``ctx:<column>``), rows shuffled."""
    import pyarrow as pa

    prompt_rng, shuffle_rng = rng.spawn(2)
    columns = {TGT_PREFIX + c: pa.array(v, type=pa.large_string())
               for c, v in target_texts(tgt, stats["columns"]).items()}
    if ctx is not None and ctx_stats is not None:
        row_of = pd.Index(ctx[ctx_stats["keys"]["primary_key"]]).get_indexer(tgt[stats["keys"]["context_key"]])
        for column, values in prompt_values(ctx.iloc[row_of].reset_index(drop=True), ctx_stats, prompt_rng).items():
            columns[CTX_PREFIX + column] = pa.array([None if v is None else str(v) for v in values],
                                                    type=pa.large_string())
    table = pa.table(columns) if columns else pa.table({})
    return table.take(pa.array(shuffle_rng.permutation(len(tgt))))
