"""The record format: how a row of typed fields is laid out as tokens, and how generated tokens parse back.

A record is ::

    <bos> ctx_1 <sep> … ctx_k <sep> | tgt_1 <sep> … tgt_m <sep> <eos>
    '-------------- prompt --------' '------------ target -----------'

- The prompt holds the context values (any type, as text, BPE-encoded); the loss never covers it.
- The target fields follow in the fixed order of their :class:`FieldSpec` list, each ending in ``<sep>``;
  a missing value is the single token ``<null>``. No field names: the order is fixed, so position says
  which field comes next, and no capacity (or DP clipping budget) is spent on structure.
- Categorical and text values are BPE-encoded. Numbers and datetimes are laid out one character per token
  (the tokenizer's single-byte tokens), so that the constrained decoder can check bounds digit by digit and
  training sees exactly the layout the decoder produces. Numbers use fixed-point text with at most
  ``scale`` decimals and no trailing zeros; datetimes ``YYYY-MM-DD`` or ``YYYY-MM-DDTHH:MM:SS``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs
import numpy as np
import pandas as pd

from ._tokenizer import LanguageTokenizer

__all__ = [
    "FIELD_KINDS",
    "EncodedRecords",
    "FieldSpec",
    "encode_prompts",
    "encode_records",
    "field_tokens",
    "format_value",
    "parse_value",
]

FIELD_KINDS = ("categorical", "numeric", "datetime", "text")
_DATETIME_FORMATS = {"date": "%Y-%m-%d", "second": "%Y-%m-%dT%H:%M:%S"}
# Int64 arithmetic of the numeric decoder (values scaled by 10**scale) must not overflow.
MAX_NUMERIC_DIGITS = 18


def _check_kind(instance, attribute, value):
    if value not in FIELD_KINDS:
        raise ValueError(f"The kind of field {instance.name!r} must be one of {FIELD_KINDS}; got {value!r}.")


@attrs.frozen
class FieldSpec:
    """One generated field of a record.

    Parameters
    ----------
    name : str
    kind : {"categorical", "numeric", "datetime", "text"}
    nullable : bool, default=False
        Whether the field may be missing (generated as ``<null>``).
    categories : tuple of str, default=()
        Categorical: the published categories (non-empty, distinct).
    min_value, max_value : float, optional
        Numeric: inclusive bounds. Datetime: ISO strings or timestamps.
    scale : int, default=0
        Numeric: the most decimals a value has.
    resolution : {"date", "second"}, default="second"
        Datetime: the layout.
    max_tokens : int, default=128
        Text: the most tokens of a value (the end token is forced at this length).
    """

    name: str
    kind: str = attrs.field(validator=_check_kind)
    nullable: bool = False
    categories: tuple = attrs.field(default=(), converter=tuple)
    min_value: object = None
    max_value: object = None
    scale: int = 0
    resolution: str = "second"
    max_tokens: int = 128

    def __attrs_post_init__(self):
        where = f"field {self.name!r}"
        if self.kind == "categorical":
            if not self.categories or len(set(self.categories)) != len(self.categories):
                raise ValueError(
                    f"The categories of {where} must be non-empty and distinct; got {self.categories}."
                )
            if not all(isinstance(c, str) for c in self.categories):
                raise ValueError(
                    f"The categories of {where} must be strings (a missing value is `nullable`)."
                )
        elif self.kind == "numeric":
            if self.min_value is None or self.max_value is None or not self.min_value <= self.max_value:
                raise ValueError(
                    f"The bounds of {where} must satisfy min <= max; got {self.min_value}, {self.max_value}."
                )
            if self.scale < 0 or self.integer_digits + self.scale > MAX_NUMERIC_DIGITS:
                raise ValueError(
                    f"{where} needs {self.integer_digits} integer digits and {self.scale} decimals; "
                    f"at most {MAX_NUMERIC_DIGITS} digits are supported."
                )
            lo, hi = self.scaled_bounds
            if lo > hi:
                raise ValueError(f"No value with {self.scale} decimals lies within the bounds of {where}.")
        elif self.kind == "datetime":
            if self.resolution not in _DATETIME_FORMATS:
                raise ValueError(
                    f"The resolution of {where} must be 'date' or 'second'; got {self.resolution!r}."
                )
            lo, hi = self.datetime_bounds
            if not lo <= hi:
                raise ValueError(f"The bounds of {where} must satisfy min <= max; got {lo}, {hi}.")
        elif self.max_tokens < 1:
            raise ValueError(f"max_tokens of {where} must be at least 1; got {self.max_tokens}.")

    @property
    def scaled_bounds(self) -> tuple[int, int]:
        """Numeric bounds in units of ``10**-scale``, rounded inwards (exact, via Decimal)."""
        unit = Decimal(10) ** self.scale
        lo = Decimal(repr(float(self.min_value))) * unit
        hi = Decimal(repr(float(self.max_value))) * unit
        return int(math.ceil(lo)), int(math.floor(hi))

    @property
    def integer_digits(self) -> int:
        """The most integer digits a value within the bounds can have."""
        largest = max(abs(float(self.min_value)), abs(float(self.max_value)))
        return len(str(int(largest)))

    @property
    def datetime_bounds(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The bounds as timestamps, truncated to the resolution (the lower one rounded up)."""
        lo, hi = pd.Timestamp(self.min_value), pd.Timestamp(self.max_value)
        if self.resolution == "date":
            return lo.ceil("D"), hi.floor("D")
        return lo.ceil("s"), hi.floor("s")

    @property
    def datetime_format(self) -> str:
        return _DATETIME_FORMATS[self.resolution]


def _is_missing(value) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def format_number(value: float, scale: int) -> str:
    """Fixed-point text with at most ``scale`` decimals and no trailing zeros (``-0`` becomes ``0``)."""
    text = f"{value:.{scale}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def format_value(field: FieldSpec, value) -> str | None:
    """The text of ``value`` in ``field`` (None for a missing value); numbers and datetimes are clipped."""
    if _is_missing(value):
        return None
    if field.kind == "numeric":
        lo, hi = field.scaled_bounds
        unit = 10**field.scale
        scaled = min(max(round(float(value) * unit), lo), hi)
        return format_number(scaled / unit, field.scale)
    if field.kind == "datetime":
        lo, hi = field.datetime_bounds
        return min(max(pd.Timestamp(value), lo), hi).strftime(field.datetime_format)
    return str(value)


def field_tokens(
    field: FieldSpec, tokenizer: LanguageTokenizer, texts: Sequence[str | None]
) -> list[list[int]]:
    """The tokens of each formatted value, ``<sep>`` included (text values cut to ``max_tokens``)."""
    sep, null = tokenizer.sep_id, tokenizer.null_id
    present = [t for t in texts if t is not None]
    if field.kind in ("numeric", "datetime"):
        encoded = iter([tokenizer.encode_chars(t) for t in present])
    else:
        encoded = iter(tokenizer.encode_batch(present))
    out = []
    for text in texts:
        if text is None:
            out.append([null, sep])
            continue
        ids = next(encoded)
        if field.kind == "text":
            ids = ids[: field.max_tokens]
        out.append([*ids, sep])
    return out


def encode_prompts(
    tokenizer: LanguageTokenizer, context: Mapping[str, Sequence] | None, n_rows: int
) -> list[list[int]]:
    """``<bos>`` plus each context value (as text, BPE-encoded) and ``<sep>``, per row."""
    prompts = [[tokenizer.bos_id] for _ in range(n_rows)]
    for name, values in (context or {}).items():
        if len(values) != n_rows:
            raise ValueError(f"Context column {name!r} has {len(values)} values; expected {n_rows}.")
        texts = [None if _is_missing(v) else str(v) for v in values]
        for prompt, ids in zip(
            prompts, field_tokens(FieldSpec(name, "text", max_tokens=10**9), tokenizer, texts), strict=True
        ):
            prompt.extend(ids)
    return prompts


class EncodedRecords:
    """Token sequences of records with the length of each one's prompt (the tokens the loss skips).

    Held compactly: all records' tokens in one int32 array and each record's start in ``offsets`` (about 4 bytes
    per token instead of a Python list of ints, ~36 bytes per token). ``EncodedRecords(sequences,
    prompt_lengths)`` takes lists of token ids; ``sequences`` gives them back as lists.

    Parameters
    ----------
    sequences : sequence of sequence of int
        The tokens of each record.
    prompt_lengths : array-like of int
        The tokens of each record's prompt.
    """

    __slots__ = ("offsets", "prompt_lengths", "tokens")

    def __init__(self, sequences: Sequence[Sequence[int]], prompt_lengths) -> None:
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        tokens = np.fromiter(itertools.chain.from_iterable(sequences), dtype=np.int32, count=int(lengths.sum()))
        self._set(tokens, _offsets(lengths), prompt_lengths)

    def _set(self, tokens: np.ndarray, offsets: np.ndarray, prompt_lengths) -> None:
        self.tokens = np.asarray(tokens, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.prompt_lengths = np.asarray(prompt_lengths, dtype=np.int64)
        if len(self.offsets) != len(self.prompt_lengths) + 1 or self.offsets[-1] != len(self.tokens):
            raise ValueError(f"{len(self.prompt_lengths)} prompt lengths for {len(self.offsets) - 1} records of "
                             f"{self.offsets[-1]} tokens; got {len(self.tokens)} tokens.")

    @classmethod
    def from_arrays(cls, tokens: np.ndarray, offsets: np.ndarray, prompt_lengths) -> EncodedRecords:
        """Records from the flat ``tokens``, the ``n + 1`` record ``offsets`` into them and the prompt lengths."""
        records = cls.__new__(cls)
        records._set(tokens, offsets, prompt_lengths)
        return records

    def __len__(self) -> int:
        return len(self.prompt_lengths)

    @property
    def lengths(self) -> np.ndarray:
        """The tokens of each record."""
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        """The bytes of the arrays holding the records."""
        return self.tokens.nbytes + self.offsets.nbytes + self.prompt_lengths.nbytes

    @property
    def sequences(self) -> list[list[int]]:
        """The tokens of each record, as lists (built on access)."""
        return [self.tokens[a:b].tolist() for a, b in itertools.pairwise(self.offsets.tolist())]

    def take(self, rows) -> EncodedRecords:
        """The records ``rows`` (indices), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        return EncodedRecords.from_arrays(self.tokens[_token_positions(self.offsets[rows], lengths)],
                                          _offsets(lengths), self.prompt_lengths[rows])

    @staticmethod
    def concat(parts: Sequence[EncodedRecords]) -> EncodedRecords:
        """The records of ``parts`` one after the other."""
        lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.int64)
        return EncodedRecords.from_arrays(
            np.concatenate([p.tokens for p in parts]) if parts else np.zeros(0, np.int32), _offsets(lengths),
            np.concatenate([p.prompt_lengths for p in parts]) if parts else np.zeros(0, np.int64))

    def padded(self, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """All records right-padded with ``pad_id`` into one ``(n, longest)`` int64 array, and their lengths."""
        lengths = self.lengths
        out = np.full((len(self), int(lengths.max()) if len(self) else 1), pad_id, dtype=np.int64)
        rows = np.repeat(np.arange(len(self)), lengths)
        out[rows, np.arange(len(self.tokens)) - np.repeat(self.offsets[:-1], lengths)] = self.tokens
        return out, lengths


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def _token_positions(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The flat positions of runs of ``lengths`` tokens beginning at ``starts``, one run after the other."""
    inside = np.arange(int(lengths.sum())) - np.repeat(_offsets(lengths)[:-1], lengths)
    return np.repeat(starts, lengths) + inside


def encode_records(
    fields: Sequence[FieldSpec],
    tokenizer: LanguageTokenizer,
    target: Mapping[str, Sequence],
    context: Mapping[str, Sequence] | None = None,
) -> EncodedRecords:
    """Lay out rows as records: the prompt from ``context``, then every field of ``target`` in order, ``<eos>``.

    Parameters
    ----------
    fields : sequence of FieldSpec
        The target fields, in record order.
    tokenizer : LanguageTokenizer
    target : mapping of str to sequence
        The values of each field (one entry per row; None/NaN/NaT for missing).
    context : mapping of str to sequence, optional
        Context values per row, put into the prompt.
    """
    missing = [f.name for f in fields if f.name not in target]
    if missing:
        raise ValueError(f"The target lacks the fields {missing}.")
    n_rows = len(target[fields[0].name]) if fields else 0
    # pieces of every record, in order: prompt, each field (with its <sep>), <eos>; each piece is laid out
    # into the one flat array at once, with no per-record list
    prompts = encode_prompts(tokenizer, context, n_rows)
    pieces = [prompts]
    for field in fields:
        values = target[field.name]
        if len(values) != n_rows:
            raise ValueError(f"Field {field.name!r} has {len(values)} values; expected {n_rows}.")
        pieces.append(field_tokens(field, tokenizer, [format_value(field, v) for v in values]))
    piece_lengths = [np.fromiter(map(len, piece), dtype=np.int64, count=n_rows) for piece in pieces]
    piece_lengths.append(np.ones(n_rows, dtype=np.int64))  # <eos>
    lengths = np.sum(piece_lengths, axis=0) if n_rows else np.zeros(0, np.int64)
    offsets = _offsets(lengths)
    tokens = np.empty(int(offsets[-1]), dtype=np.int32)
    start = offsets[:-1].copy()
    for piece, piece_length in zip([*pieces, None], piece_lengths, strict=True):
        positions = _token_positions(start, piece_length)
        if piece is None:
            tokens[positions] = tokenizer.eos_id
        else:
            tokens[positions] = np.fromiter(itertools.chain.from_iterable(piece), dtype=np.int32,
                                            count=len(positions))
        start += piece_length
    return EncodedRecords.from_arrays(tokens, offsets, piece_lengths[0])


def parse_value(field: FieldSpec, text: str | None):
    """The value of generated ``text`` (without ``<sep>``): a float, a ``pd.Timestamp``, a string or None."""
    if text is None:
        return None
    if field.kind == "numeric":
        return float(text) + 0.0  # + 0.0 turns a generated "-0" into 0.0
    if field.kind == "datetime":
        return pd.Timestamp(text)
    return text
