"""Token masks that keep each generated field valid, one vectorized state machine per field kind.

Each machine tracks one state per row and answers, before every token, which tokens keep the field
completable into a valid value (``allowed``), then moves with the chosen tokens (``advance``). A machine
never allows a token after which no valid completion exists, so the decoder cannot dead-end and needs no
rejection: validity is guaranteed by construction, for any model, trained or not.

- Numbers: characters ``-0-9.``, then ``<sep>``. A character is allowed only if some completion of the new
  prefix is a value within ``[min, max]`` with at most ``scale`` decimals. The completions of a prefix form
  a few intervals (one per count of further integer digits), checked exactly in int64 units of
  ``10**-scale``. No leading zeros; the length is bounded by the bounds' digits plus ``scale``.
- Datetimes: fixed-width ``YYYY-MM-DD[THH:MM:SS]``; literals are forced; a digit is allowed if its
  component can still end within the component's range, which is [1, 12] for months, the month's length
  (leap years included) for days, and is narrowed to the bounds while all earlier components equal the
  bound's (so every completed string is a real datetime within ``[min, max]``).
- Text: any non-special token that keeps the bytes valid UTF-8 (an 8-state byte automaton, tabulated per
  token), ``<sep>`` only on a character boundary; at ``max_tokens`` ``<sep>`` is forced (the decoder then
  drops an unfinished last character).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._records import FieldSpec
from ._tokenizer import LanguageTokenizer

__all__ = ["is_valid", "make_constraint", "utf8_token_table"]

_INVALID = -1


class _Machine:
    """Common parts: the candidate token ids and the mapping from a candidate mask to a vocabulary mask."""

    def __init__(self, tokenizer: LanguageTokenizer, candidates: np.ndarray):
        self.vocab_size = tokenizer.vocab_size
        self.candidates = candidates

    def _vocab_mask(self, allowed: np.ndarray) -> np.ndarray:
        mask = np.zeros((len(allowed), self.vocab_size), dtype=bool)
        mask[:, self.candidates] = allowed
        return mask


class NumericConstraint(_Machine):
    """Digits, sign and point forming a value within the field's bounds and scale."""

    _CHARS = "-0123456789."
    _START, _SIGN, _INT, _POINT, _FRAC, _NULL = range(6)

    def __init__(self, field: FieldSpec, tokenizer: LanguageTokenizer, n_rows: int):
        chars = tokenizer.byte_ids[np.frombuffer(self._CHARS.encode(), dtype=np.uint8)]
        super().__init__(tokenizer, np.concatenate([chars, [tokenizer.sep_id, tokenizer.null_id]]))
        self.nullable = field.nullable
        self.scale = field.scale
        self.lo, self.hi = field.scaled_bounds
        self.max_int_digits = field.integer_digits
        self.phase = np.full(n_rows, self._START)
        self.neg = np.zeros(n_rows, dtype=bool)
        self.int_part = np.zeros(n_rows, dtype=np.int64)
        self.int_digits = np.zeros(n_rows, dtype=np.int64)
        self.frac = np.zeros(n_rows, dtype=np.int64)
        self.frac_digits = np.zeros(n_rows, dtype=np.int64)

    def _feasible(self, phase, neg, int_part, int_digits, frac, frac_digits) -> np.ndarray:
        """Whether some completion of each prefix lies within the bounds (int64 units of 10**-scale)."""
        unit = 10**self.scale
        ok = np.zeros(phase.shape, dtype=bool)
        # Magnitude intervals [a, b] of the completions; several for an unfinished integer part.
        spans = []
        in_int = phase == self._INT
        for k in range(self.max_int_digits + 1):
            valid = in_int & (int_digits + k <= self.max_int_digits) & ((int_part > 0) | (k == 0))
            p = 10**k
            spans.append((valid, int_part * p * unit, (int_part + 1) * p * unit - 1))
        in_frac = (phase == self._POINT) | (phase == self._FRAC)
        step = 10 ** np.clip(self.scale - frac_digits, 0, None)
        spans.append((in_frac, int_part * unit + frac * step, int_part * unit + (frac + 1) * step - 1))
        for valid, a, b in spans:
            low = np.where(neg, -b, a)
            high = np.where(neg, -a, b)
            ok |= valid & (np.maximum(low, self.lo) <= np.minimum(high, self.hi))
        ok |= phase == self._START
        ok |= (phase == self._SIGN) & (self.lo < 0)
        return ok

    def _next(self, c: int):
        """The state after candidate character ``c`` (index into ``_CHARS``) and whether it is legal."""
        phase, neg, ip, nd, fr, nf = (
            self.phase.copy(),
            self.neg.copy(),
            self.int_part.copy(),
            self.int_digits.copy(),
            self.frac.copy(),
            self.frac_digits.copy(),
        )
        if c == 0:  # '-'
            legal = self.phase == self._START
            phase[legal] = self._SIGN
            neg[legal] = True
        elif c == 11:  # '.'
            legal = (self.phase == self._INT) & (self.scale > 0)
            phase[legal] = self._POINT
        else:
            digit = c - 1
            start = (self.phase == self._START) | (self.phase == self._SIGN)
            grow = (self.phase == self._INT) & (self.int_part > 0) & (self.int_digits < self.max_int_digits)
            decimal = ((self.phase == self._POINT) | (self.phase == self._FRAC)) & (
                self.frac_digits < self.scale
            )
            legal = start | grow | decimal
            phase[start | grow] = self._INT
            ip = np.where(start, digit, np.where(grow, ip * 10 + digit, ip))
            nd = np.where(start, 1, np.where(grow, nd + 1, nd))
            phase[decimal] = self._FRAC
            fr = np.where(decimal, fr * 10 + digit, fr)
            nf = np.where(decimal, nf + 1, nf)
        return legal, (phase, neg, ip, nd, fr, nf)

    def _value(self) -> np.ndarray:
        unit = 10**self.scale
        step = 10 ** np.clip(self.scale - self.frac_digits, 0, None)
        magnitude = self.int_part * unit + self.frac * step
        return np.where(self.neg, -magnitude, magnitude)

    def allowed(self) -> np.ndarray:
        n = len(self.phase)
        allowed = np.zeros((n, len(self.candidates)), dtype=bool)
        for c in range(len(self._CHARS)):
            legal, state = self._next(c)
            allowed[:, c] = legal & self._feasible(*state)
        value = self._value()
        complete = (self.phase == self._INT) | (self.phase == self._FRAC)
        allowed[:, -2] = (complete & (value >= self.lo) & (value <= self.hi)) | (self.phase == self._NULL)
        allowed[:, -1] = (self.phase == self._START) & self.nullable
        return self._vocab_mask(allowed)

    def advance(self, tokens: np.ndarray, rows: np.ndarray) -> None:
        index = {int(t): j for j, t in enumerate(self.candidates)}
        choice = np.array([index.get(int(t), -1) for t in tokens])
        for c in np.unique(choice):
            if c < 0 or c == len(self._CHARS):  # <sep> ends the field; nothing to track
                continue
            hit = rows[choice == c]
            if c == len(self._CHARS) + 1:
                self.phase[hit] = self._NULL
                continue
            _, state = self._next(int(c))
            for array, new in zip(
                (self.phase, self.neg, self.int_part, self.int_digits, self.frac, self.frac_digits),
                state,
                strict=True,
            ):
                array[hit] = new[hit]


def _days_in_month(year: np.ndarray, month: np.ndarray) -> np.ndarray:
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 1, 12) - 1]
    return days + ((month == 2) & leap)


class DatetimeConstraint(_Machine):
    """A fixed-width datetime within the field's bounds, digit by digit."""

    _WIDTHS = (4, 2, 2, 2, 2, 2)
    _SEPARATORS = "--T::"  # the literal before components 1..5
    _LITERALS = "-T:"  # distinct, so that each candidate token appears once

    def __init__(self, field: FieldSpec, tokenizer: LanguageTokenizer, n_rows: int):
        n_components = 3 if field.resolution == "date" else 6
        digits = tokenizer.byte_ids[np.frombuffer(b"0123456789", dtype=np.uint8)]
        literals = tokenizer.byte_ids[np.frombuffer(self._LITERALS.encode(), dtype=np.uint8)]
        super().__init__(tokenizer, np.concatenate([digits, literals, [tokenizer.sep_id, tokenizer.null_id]]))
        # The template: (component, digit index) for digit positions, (-1, literal index) for literals.
        self.template = []
        for k in range(n_components):
            if k:
                self.template.append((-1, self._LITERALS.index(self._SEPARATORS[k - 1])))
            self.template.extend((k, i) for i in range(self._WIDTHS[k]))
        lo, hi = field.datetime_bounds
        self.low = np.array([lo.year, lo.month, lo.day, lo.hour, lo.minute, lo.second][:n_components])
        self.high = np.array([hi.year, hi.month, hi.day, hi.hour, hi.minute, hi.second][:n_components])
        self.nullable = field.nullable
        self.position = np.zeros(n_rows, dtype=np.int64)
        self.null = np.zeros(n_rows, dtype=bool)
        self.values = np.zeros((n_rows, n_components), dtype=np.int64)
        self.tight_low = np.ones(n_rows, dtype=bool)
        self.tight_high = np.ones(n_rows, dtype=bool)

    def _range(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The allowed interval of component ``k`` for each row, given its earlier components."""
        n = len(self.position)
        base_low = np.array([0, 1, 1, 0, 0, 0])[k]
        if k == 2:
            base_high = _days_in_month(self.values[:, 0], self.values[:, 1])
        else:
            base_high = np.full(n, [9999, 12, 31, 23, 59, 59][k])
        low = np.where(self.tight_low, np.maximum(base_low, self.low[k]), base_low)
        high = np.where(self.tight_high, np.minimum(base_high, self.high[k]), base_high)
        return low, high

    def allowed(self) -> np.ndarray:
        n = len(self.position)
        allowed = np.zeros((n, len(self.candidates)), dtype=bool)
        at_end = (self.position >= len(self.template)) | self.null
        allowed[:, -2] = at_end
        allowed[:, -1] = (self.position == 0) & self.nullable & ~self.null
        # Rows of one batch move in lockstep (fixed width), apart from finished ones.
        for pos in np.unique(self.position[~at_end]):
            rows = np.flatnonzero((self.position == pos) & ~at_end)
            k, i = self.template[pos]
            if k < 0:
                allowed[rows, 10 + i] = True
                continue
            low, high = (r[rows] for r in self._range(k))
            remaining = 10 ** (self._WIDTHS[k] - i - 1)
            prefix = self.values[rows, k]
            for d in range(10):
                start = (prefix * 10 + d) * remaining
                allowed[rows, d] = (start <= high) & (start + remaining - 1 >= low)
        return self._vocab_mask(allowed)

    def advance(self, tokens: np.ndarray, rows: np.ndarray) -> None:
        digit_of = {int(t): d for d, t in enumerate(self.candidates[:10])}
        null_id = self.candidates[-1]
        for row, token in zip(rows, tokens, strict=True):
            if token == null_id:
                self.null[row] = True
                continue
            if self.null[row] or self.position[row] >= len(self.template):
                continue
            k, i = self.template[self.position[row]]
            if k >= 0:
                self.values[row, k] = self.values[row, k] * 10 + digit_of[int(token)]
                if i == self._WIDTHS[k] - 1:
                    self.tight_low[row] &= self.values[row, k] == self.low[k]
                    self.tight_high[row] &= self.values[row, k] == self.high[k]
            self.position[row] += 1


def _utf8_byte_table() -> np.ndarray:
    """Next state of the 8-state UTF-8 automaton for each (state, byte); -1 for an invalid byte.

    States: 0 on a character boundary; 1, 2, 3 continuation bytes still due; 4 after E0 (next A0-BF), 5 after
    ED (next 80-9F, no surrogates), 6 after F0 (next 90-BF), 7 after F4 (next 80-8F, at most U+10FFFF).
    """
    table = np.full((8, 256), _INVALID, dtype=np.int64)
    table[0, :0x80] = 0
    table[0, 0xC2:0xE0] = 1
    table[0, 0xE0] = 4
    table[0, 0xE1:0xED] = 2
    table[0, 0xED] = 5
    table[0, 0xEE:0xF0] = 2
    table[0, 0xF0] = 6
    table[0, 0xF1:0xF4] = 3
    table[0, 0xF4] = 7
    table[1, 0x80:0xC0] = 0
    table[2, 0x80:0xC0] = 1
    table[3, 0x80:0xC0] = 2
    table[4, 0xA0:0xC0] = 1
    table[5, 0x80:0xA0] = 1
    table[6, 0x90:0xC0] = 2
    table[7, 0x80:0x90] = 2
    return table


def utf8_token_table(tokenizer: LanguageTokenizer) -> np.ndarray:
    """``(8, V)``: the UTF-8 state after each token from each state; -1 if invalid or a special token."""
    bytes_table = _utf8_byte_table()
    lengths = np.array([len(b) for b in tokenizer.token_bytes])
    padded = np.zeros((tokenizer.vocab_size, max(lengths.max(), 1)), dtype=np.int64)
    for i, data in enumerate(tokenizer.token_bytes):
        padded[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    state = np.repeat(np.arange(8)[:, None], tokenizer.vocab_size, axis=1)
    for j in range(padded.shape[1]):
        live = (j < lengths)[None, :] & (state >= 0)
        state = np.where(live, bytes_table[np.clip(state, 0, None), padded[:, j][None, :]], state)
    state[:, lengths == 0] = _INVALID
    return state


class TextConstraint(_Machine):
    """Valid UTF-8 of at most ``max_tokens`` tokens, ended by ``<sep>`` on a character boundary."""

    def __init__(self, field: FieldSpec, tokenizer: LanguageTokenizer, n_rows: int, table: np.ndarray):
        super().__init__(tokenizer, np.arange(tokenizer.vocab_size))
        self.table = table
        self.continues = table >= 0  # (8, V) bool: which tokens may follow in each UTF-8 state
        self.sep_id, self.null_id = tokenizer.sep_id, tokenizer.null_id
        self.nullable = field.nullable
        self.max_tokens = field.max_tokens
        self.utf8 = np.zeros(n_rows, dtype=np.int64)
        self.count = np.zeros(n_rows, dtype=np.int64)
        self.null = np.zeros(n_rows, dtype=bool)

    def allowed(self) -> np.ndarray:
        mask = self.continues[self.utf8]
        mask[self.null] = False
        mask[:, self.sep_id] = (self.utf8 == 0) | self.null
        mask[:, self.null_id] = (self.count == 0) & self.nullable
        full = self.count >= self.max_tokens
        mask[full] = False
        mask[full, self.sep_id] = True
        return mask

    def advance(self, tokens: np.ndarray, rows: np.ndarray) -> None:
        self.null[rows] |= tokens == self.null_id
        content = tokens != self.null_id
        self.utf8[rows[content]] = np.maximum(self.table[self.utf8[rows[content]], tokens[content]], 0)
        self.count[rows] += 1


def make_constraint(
    field: FieldSpec, tokenizer: LanguageTokenizer, n_rows: int, utf8_table: np.ndarray | None = None
):
    """The state machine of a numeric, datetime or text ``field`` for ``n_rows`` rows."""
    if field.kind == "numeric":
        return NumericConstraint(field, tokenizer, n_rows)
    if field.kind == "datetime":
        return DatetimeConstraint(field, tokenizer, n_rows)
    if field.kind == "text":
        return TextConstraint(
            field, tokenizer, n_rows, utf8_token_table(tokenizer) if utf8_table is None else utf8_table
        )
    raise ValueError(
        f"Field {field.name!r} of kind {field.kind!r} is decoded by category scoring, not a token machine."
    )


def is_valid(field: FieldSpec, value) -> bool:
    """Whether a generated ``value`` is valid for ``field`` (used by the tests and as a decoder self-check)."""
    if value is None:
        return field.nullable
    if field.kind == "categorical":
        return value in field.categories
    if field.kind == "numeric":
        lo, hi = field.scaled_bounds
        scaled = value * 10**field.scale
        return lo <= round(scaled) <= hi and abs(scaled - round(scaled)) < 1e-6 * max(1.0, abs(scaled))
    if field.kind == "datetime":
        lo, hi = field.datetime_bounds
        return isinstance(value, pd.Timestamp) and lo <= value <= hi
    return isinstance(value, str)
