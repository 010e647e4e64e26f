"""Byte-level BPE tokenizer for language records, trained locally with the ``tokenizers`` library.

Why byte-level: every string has an encoding (no unknown token), every single byte is its own token (so
numbers and datetimes can be laid out one character per token, see :mod:`._records`), and a token's bytes
are known exactly (so :mod:`._decode` can keep generated text valid UTF-8). The ``bytes_only`` mode learns no
merges at all: the vocabulary is the 256 bytes plus the special tokens, so nothing of the training text is
released through the vocabulary (the variant to use under differential privacy).

Special tokens are never produced from raw text: ``encode_special_tokens`` is switched on, so a tweet that
contains the literal text ``<sep>`` is encoded as ordinary bytes and cannot forge a field boundary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

__all__ = ["SPECIAL_TOKENS", "LanguageTokenizer", "train_tokenizer"]

# Fixed ids 0..4 in every tokenizer trained here. <sep> ends every field of a record, <null> is the whole
# content of a missing value, <bos>/<eos> open and close a record, <pad> fills batches (never a target).
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<sep>", "<null>")

_FILE_NAME = "tokenizer.json"
# Bytes a byte-level vocabulary may lack: those that never occur in UTF-8 (C0, C1, F5-FF), the lead bytes of
# the unassigned planes 4-11 (F1, F2) and the ASCII control characters other than tab, newline and return.
_DISPENSABLE_BYTES = {0xC0, 0xC1, 0xF1, 0xF2, *range(0xF5, 0x100), *(set(range(0x20)) - {0x09, 0x0A, 0x0D}), 0x7F}


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character table, the alphabet of the ByteLevel pre-tokenizer."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return dict(zip(printable, map(chr, chars), strict=True))


_BYTE_TO_CHAR = _bytes_to_unicode()
_CHAR_TO_BYTE = {c: b for b, c in _BYTE_TO_CHAR.items()}


class LanguageTokenizer:
    """A byte-level BPE tokenizer with the record special tokens.

    Parameters
    ----------
    tokenizer : tokenizers.Tokenizer
        A byte-level tokenizer (ByteLevel pre-tokenizer and decoder, all 256 byte symbols in the vocabulary)
        with the tokens of :data:`SPECIAL_TOKENS`.

    Attributes
    ----------
    vocab_size : int
        Number of tokens, special tokens included.
    pad_id, bos_id, eos_id, sep_id, null_id : int
        Ids of the special tokens.
    byte_ids : numpy.ndarray
        ``(256,)`` int64: the id of the single-byte token of each byte value.
    token_bytes : list of bytes
        The bytes each token decodes to (empty for special tokens).
    added_ids : list of int
        The record tokens added to a pretrained model's tokenizer by :meth:`from_pretrained` (the rows its
        adapter must train); empty for a tokenizer trained here.
    """

    def __init__(self, tokenizer: Tokenizer):
        vocab = tokenizer.get_vocab()
        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"The tokenizer lacks the special tokens {missing}.")
        absent = [b for b, c in _BYTE_TO_CHAR.items() if c not in vocab]
        if set(absent) - _DISPENSABLE_BYTES:
            raise ValueError(
                f"The tokenizer is not byte-level: {len(absent)} of the 256 byte symbols are missing."
            )
        # Some pretrained vocabularies (SmolLM2's) lack rare control characters and the lead bytes of unassigned
        # planes: a text holding such a character is refused by encode_batch rather than losing it.
        absent_chars = "".join(re.escape(chr(b)) for b in absent if b < 0x80)
        absent_chars += "".join(  # the planes a missing 4-byte lead byte F1-F4 starts
            f"{chr((b - 0xF0) * 0x40000)}-{chr((b - 0xF0) * 0x40000 + 0x3FFFF)}" for b in absent if 0xF1 <= b <= 0xF4
        )
        self._unencodable = re.compile(f"[{absent_chars}]") if absent_chars else None
        tokenizer.encode_special_tokens = True
        self._tokenizer = tokenizer
        self.added_ids: list[int] = []
        self.vocab_size = tokenizer.get_vocab_size()
        self.pad_id, self.bos_id, self.eos_id, self.sep_id, self.null_id = (vocab[t] for t in SPECIAL_TOKENS)
        self.special_ids = np.array([vocab[t] for t in SPECIAL_TOKENS], dtype=np.int64)
        self.byte_ids = np.array([vocab.get(_BYTE_TO_CHAR[b], -1) for b in range(256)], dtype=np.int64)
        # Added tokens (ours and a pretrained model's own, such as <|endoftext|>) decode to nothing and are
        # never allowed inside a generated value.
        added = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
        self.token_bytes = [b""] * self.vocab_size
        for token, i in vocab.items():
            if token not in added:
                try:
                    self.token_bytes[i] = bytes(_CHAR_TO_BYTE[c] for c in token)
                except KeyError:
                    raise ValueError(
                        f"The tokenizer is not byte-level: token {token!r} is not in the byte alphabet."
                    ) from None

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (no special tokens added), encoded in parallel by the Rust tokenizer."""
        if self._unencodable is not None:
            for text in texts:
                if isinstance(text, str) and (found := self._unencodable.search(text)):
                    raise ValueError(
                        f"The text {text[:60]!r} holds the character {found.group()!r}, which the model's "
                        "vocabulary cannot encode; remove it from the data."
                    )
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def encode_chars(self, text: str) -> list[int]:
        """One single-byte token per UTF-8 byte: the layout of numbers and datetimes in a record."""
        return self.byte_ids[np.frombuffer(text.encode("utf-8"), dtype=np.uint8)].tolist()

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """The bytes of ``ids``; special tokens contribute nothing."""
        return b"".join(self.token_bytes[i] for i in ids)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; an incomplete UTF-8 character at the end is dropped, never replaced."""
        data = self.decode_bytes(ids)
        for cut in range(4):
            try:
                return data[: len(data) - cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
        return data.decode("utf-8", errors="replace")

    def to_bytes(self) -> bytes:
        """The tokenizer as JSON bytes (what a fitted estimator keeps in memory)."""
        return self._tokenizer.to_str().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> LanguageTokenizer:
        """Inverse of :meth:`to_bytes`."""
        return cls(Tokenizer.from_str(data.decode("utf-8")))

    def save(self, folder: str | Path) -> Path:
        """Write ``tokenizer.json`` into ``folder`` (created if needed), via a temporary name; return the file."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / _FILE_NAME
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        return path

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> LanguageTokenizer:
        """The tokenizer of a local Hugging Face model (its ``tokenizer.json``, or the one inside a ``.gguf``
        file), with the record tokens added.

        The model's vocabulary must be byte-level (GPT-2, Llama 3, SmolLM, Qwen style); the record tokens
        get new ids after it, so the model's embeddings must grow to :attr:`vocab_size` (see
        ``HFLanguageModel.from_pretrained(..., vocab_size=...)``).
        """
        if is_gguf(folder):
            tokenizer = _gguf_tokenizer(Path(folder))
        else:
            path = Path(folder) / _FILE_NAME
            if not path.is_file():
                raise FileNotFoundError(f"No tokenizer.json in the language model folder {str(folder)!r}.")
            tokenizer = Tokenizer.from_file(str(path))
        vocab = tokenizer.get_vocab()
        tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS if t not in vocab])
        adopted = cls(tokenizer)
        adopted.added_ids = [
            int(i) for t, i in zip(SPECIAL_TOKENS, adopted.special_ids, strict=True) if t not in vocab
        ]
        return adopted

    @classmethod
    def load(cls, folder: str | Path) -> LanguageTokenizer:
        """Read the tokenizer saved by :meth:`save` in ``folder``."""
        path = Path(folder) / _FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"No tokenizer at {path}.")
        return cls(Tokenizer.from_file(str(path)))


def train_tokenizer(
    texts: Iterable[str],
    *,
    vocab_size: int = 5000,
    min_frequency: int = 20,
    bytes_only: bool = False,
) -> LanguageTokenizer:
    """Train a byte-level BPE tokenizer on ``texts``.

    Parameters
    ----------
    texts : iterable of str
        Training texts (the string values of a table's text and categorical columns); other values are
        skipped.
    vocab_size : int, default=5000
        Upper bound of the vocabulary, special tokens and the 256 byte tokens included.
    min_frequency : int, default=20
        A merge must occur this often to be learned (the reference engine's value; it also keeps rare,
        possibly identifying substrings out of the vocabulary).
    bytes_only : bool, default=False
        Learn no merges and ignore ``texts``: the vocabulary is the special tokens plus the 256 bytes.

    Returns
    -------
    LanguageTokenizer
    """
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 256}; got {vocab_size}.")
    tokenizer = Tokenizer(models.BPE())
    # No prefix space: a value's tokens must not depend on where in a record it stands.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=len(SPECIAL_TOKENS) + 256 if bytes_only else vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Missing values (None, NaN) are not text: skip them rather than learn merges of "nan".
    tokenizer.train_from_iterator(
        [] if bytes_only else (t for t in texts if isinstance(t, str)), trainer=trainer
    )
    return LanguageTokenizer(tokenizer)


def is_gguf(path: str | Path) -> bool:
    """Whether ``path`` names a GGUF file (a model in one file, as llama.cpp writes it)."""
    return Path(path).suffix.lower() == ".gguf"


def _gguf_tokenizer(path: Path) -> Tokenizer:
    """The tokenizer stored in the GGUF file ``path``, converted by transformers (needs ``gguf``)."""
    if not path.is_file():
        raise FileNotFoundError(f"The language model file {str(path)!r} does not exist.")
    from transformers import AutoTokenizer

    try:
        wrapped = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise ValueError(f"No tokenizer could be read from the GGUF file {str(path)!r}: {err}") from err
    return wrapped.backend_tokenizer
