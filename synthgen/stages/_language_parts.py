"""The encoded records of a LANGUAGE workspace part by part, for training on data larger than memory.

Above :data:`LANGUAGE_STREAMING_THRESHOLD_BYTES` of encoded training text, ``train`` never reads a whole side:

- the LSTM's tokenizer learns from a seeded sample of at most :data:`TOKENIZER_SAMPLE_TEXTS` texts, drawn from
  every part in proportion to its rows (:func:`sample_texts`);
- the longest text field in tokens comes from one pass over the parts (:func:`longest_tokens`);
- every part is tokenized once into compact int32 token arrays with record offsets (:class:`TokenParts`),
  written to a scratch folder of the workspace, and read back one part at a time by each epoch.

Memory: one part's texts while tokenizing it, one part's tokens (4 bytes per token plus 16 per record) while
training on it, and the tokenizer sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .._workspace import Workspace
from ..models.language import EncodedRecords
from ._encoded import STREAMING_THRESHOLD_BYTES

__all__ = ["LANGUAGE_STREAMING_THRESHOLD_BYTES", "TOKENIZER_SAMPLE_TEXTS", "TokenParts", "encoded_text_bytes",
           "longest_tokens", "sample_texts", "streams"]

# Above this many bytes of encoded training records (the parquet parts' uncompressed size: the texts, about a
# quarter of their int32 tokens and far less than the padded tensor of the in-memory path) training streams the
# parts; the tabular models' threshold.
LANGUAGE_STREAMING_THRESHOLD_BYTES = STREAMING_THRESHOLD_BYTES
# The most texts the streamed LSTM tokenizer learns from (a seeded sample over all parts); BPE merges seen at
# least 20 times in a million texts are the frequent ones of the whole data as well.
TOKENIZER_SAMPLE_TEXTS = 10**6


def encoded_text_bytes(ws: Workspace, side: str) -> int:
    """The uncompressed bytes of the ``side`` parts of the encoded data (from the parquet footers)."""
    total = 0
    for path in ws.partitions(ws.encoded_data, side):
        meta = pq.read_metadata(path)
        total += sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    return total


def streams(ws: Workspace) -> bool:
    """Whether the training records are above :data:`LANGUAGE_STREAMING_THRESHOLD_BYTES` (read at each call)."""
    return encoded_text_bytes(ws, "trn") > LANGUAGE_STREAMING_THRESHOLD_BYTES


def _sizes(paths: Sequence[Path]) -> list[int]:
    return [pq.read_metadata(path).num_rows for path in paths]


def _present(frame: pd.DataFrame, column: str) -> list[str]:
    if column not in frame.columns:
        return []
    values = frame[column]
    return values[values.notna()].astype(str).tolist()


def sample_texts(ws: Workspace, columns: Sequence[str], rng: np.random.Generator,
                 limit: int = TOKENIZER_SAMPLE_TEXTS) -> list[str]:
    """The present texts of ``columns`` in a seeded sample of training rows: all rows when they hold at most
    ``limit`` texts, else ``limit / len(columns)`` rows drawn from the parts in proportion to their size."""
    paths = ws.partitions(ws.encoded_data, "trn")
    sizes = _sizes(paths)
    n_rows = sum(sizes)
    share = 1.0 if n_rows * len(columns) <= limit else limit / len(columns) / n_rows
    texts: list[str] = []
    for path, size in zip(paths, sizes, strict=True):
        if size == 0 or not columns:
            continue
        frame = ws.read_parquet(path, columns=[c for c in columns if c in pq.read_schema(path).names])
        if share < 1.0:
            frame = frame.iloc[np.sort(rng.choice(size, size=min(size, math.ceil(share * size)), replace=False))]
        for column in columns:
            texts.extend(_present(frame, column))
    return texts


def longest_tokens(ws: Workspace, columns: dict[str, str], tokenizer) -> dict[str, int]:
    """Per field, the most tokens of its training texts (``columns`` maps the field to its encoded column)."""
    longest = dict.fromkeys(columns, 1)
    for path in ws.partitions(ws.encoded_data, "trn"):
        present = [c for c in columns.values() if c in pq.read_schema(path).names]
        frame = ws.read_parquet(path, columns=present)
        for name, column in columns.items():
            texts = _present(frame, column)
            if texts:
                longest[name] = max(longest[name], max(map(len, tokenizer.encode_batch(texts))))
    return longest


class TokenParts:
    """The records of the ``side`` parts, tokenized once into ``folder`` and read back one part at a time (a
    ``RecordParts`` for :func:`~synthgen.models.language.train_language_model`)."""

    def __init__(self, ws: Workspace, side: str, folder: Path,
                 encode: Callable[[pd.DataFrame], EncodedRecords]) -> None:
        self.paths: list[Path] = []
        self.sizes: list[int] = []
        self.n_tokens = 0
        for index, source in enumerate(ws.partitions(ws.encoded_data, side)):
            if pq.read_metadata(source).num_rows == 0:  # an empty part: no records to encode
                records = EncodedRecords([], [])
            else:
                records = encode(ws.read_parquet(source))
            path = folder / f"{side}-{index:06d}.npz"
            np.savez(path, tokens=records.tokens, offsets=records.offsets, prompt_lengths=records.prompt_lengths)
            self.paths.append(path)
            self.sizes.append(len(records))
            self.n_tokens += len(records.tokens)

    def load(self, index: int) -> EncodedRecords:
        with np.load(self.paths[index]) as arrays:
            return EncodedRecords.from_arrays(arrays["tokens"], arrays["offsets"], arrays["prompt_lengths"])
