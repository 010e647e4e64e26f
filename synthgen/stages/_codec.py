"""Encode whole tables into named sub-column codes and decode them back, with the published statistics.

Sub-columns are named ``<processor>:<column id>__<sub-column>``: ``tgt:c3__cat``, ``ctx:c0__year``. The
positional sub-columns of sequences are ``tgt:/__sidx`` (position), ``tgt:/__slen`` (length) and ``tgt:/__ridx``
(remaining steps; 0 on the end-of-sequence step).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._dtypes import restore_dtype
from ..column_encodings import SequenceIndex, get_encoding
from ._analyze import column_error

__all__ = [
    "POSITIONAL",
    "sub_column_names",
    "encode_table",
    "decode_table",
]

POSITIONAL = ("tgt:/__sidx", "tgt:/__slen", "tgt:/__ridx")


def _prefix(stats: Mapping[str, Any]) -> str:
    return f"{stats['argn_processor']}:{stats['argn_column']}__"


def sub_column_names(columns: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Encoded sub-column names per column, in model order."""
    return {column: [_prefix(stats) + sub for sub in stats["cardinalities"]] for column, stats in columns.items()}


def encode_table(
    frame: pd.DataFrame,
    columns: Mapping[str, Mapping[str, Any]],
    *,
    table: str,
    rng: np.random.Generator,
    sequence: SequenceIndex | None = None,
) -> dict[str, np.ndarray]:
    """Codes of every sub-column of ``columns`` (stats by column) for the rows of ``frame``."""
    codes: dict[str, np.ndarray] = {}
    rngs = rng.spawn(len(columns)) if columns else []
    for index, (column, stats) in enumerate(columns.items()):
        try:
            encoded = get_encoding(stats["encoding_type"]).encode(
                frame[column], stats, rng=rngs[index], sequence=sequence
            )
        except ValueError as err:
            raise column_error(err, column, table) from None
        prefix = _prefix(stats)
        for sub in stats["cardinalities"]:
            codes[prefix + sub] = encoded[sub]
    return codes


def decode_table(
    codes: Mapping[str, np.ndarray],
    columns: Mapping[str, Mapping[str, Any]],
    *,
    rng: np.random.Generator,
    sequence: SequenceIndex | None = None,
    restore_dtypes: bool = True,
) -> pd.DataFrame:
    """Values of every column of ``columns`` from the sub-column ``codes``, cast to the recorded dtypes."""
    decoded: dict[str, pd.Series] = {}
    rngs = rng.spawn(len(columns)) if columns else []
    for index, (column, stats) in enumerate(columns.items()):
        prefix = _prefix(stats)
        own = {sub: np.asarray(codes[prefix + sub]) for sub in stats["cardinalities"]}
        values = get_encoding(stats["encoding_type"]).decode(own, stats, rng=rngs[index], sequence=sequence)
        values = values.reset_index(drop=True).rename(column)
        decoded[column] = restore_dtype(values, stats["dtype"]) if restore_dtypes else values
    return pd.DataFrame(decoded)
