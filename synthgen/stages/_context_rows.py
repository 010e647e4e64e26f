"""The one check of a context (parent) table passed at generation, shared by the tabular and language generators
and by ``sample_to_parquet``, so all three refuse the same inputs with the same messages."""

from __future__ import annotations

import pandas as pd

from ._columns import check_unique

__all__ = ["checked_context_rows"]


def checked_context_rows(context: pd.DataFrame, ctx_stats: dict, size: int | None, *, parameter: str,
                         size_parameter: str) -> pd.DataFrame:
    """The first ``size`` rows (all when ``None``) of a context table, with a fresh index, after checking it.

    Refuses a table that lacks the model's context key or context columns, and NULL or duplicate keys. The keys
    are checked on the whole table as given, before it is cut to ``size``, so whether a table is accepted does
    not depend on how many of its rows are asked for. ``parameter`` and ``size_parameter`` are the names the
    caller's user knows (``ctx_data`` / ``sample_size`` of the engine API, ``context`` / ``n_samples`` of the
    estimators' ``sample_to_parquet``).
    """
    key = ctx_stats["keys"]["primary_key"]
    missing = [c for c in [key, *ctx_stats["columns"]] if c not in context.columns]
    if missing:
        raise ValueError(f"{parameter} lacks the context columns {missing}; it needs the context key {key!r} and "
                         f"the columns {list(ctx_stats['columns'])}.")
    keys = context[key]
    nulls = keys.isna()
    if nulls.any():
        raise ValueError(f"{parameter}'s primary key {key!r} has {int(nulls.sum())} NULL values; keys must not be "
                         "NULL.")
    check_unique(keys, parameter=f"{parameter}'s primary key", column=key)
    if size is not None:
        if size > len(context):
            raise ValueError(f"{size_parameter} ({size}) exceeds the {len(context)} context rows; generation makes "
                             "the target of each context row once.")
        context = context.iloc[:size]
    return context.reset_index(drop=True)
