"""TF-IDF features of texts: word 1- and 2-grams and character 3- and 4-grams, hashed and vectorised.

scikit-learn's ``TfidfVectorizer`` builds every character n-gram as a Python string (about 7 s for 16,000
tweets on a busy machine); here the n-grams are 64-bit keys computed with numpy over all texts at once
(characters as their code points, words as the ids of ``_text_tokens``), hashed into ``2**20`` columns.
Only columns found in at least two original texts are kept, and ``TfidfTransformer`` (sublinear term
frequency, l2-normalised rows) is fitted on the original texts: the features are the training data's
vocabulary, so a text made of n-grams the original never has gets few or no features, itself a signal.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from attrs import frozen
from sklearn.feature_extraction.text import TfidfTransformer

from synthgen.evaluation._text_tokens import Tokens, as_strings

_HASH_BITS = 20
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_CHAR_BASE = np.uint64(0x10FFFF + 1)
_CHAR_NGRAMS = (3, 4)
_WORD_NGRAMS = (1, 2)
_MIN_TEXTS = 2


def _bucket(keys: np.ndarray, family: int) -> np.ndarray:
    """Column of each key in the hashed space; ``family`` keeps word and character n-grams apart."""
    mixed = (keys ^ np.uint64(family * 0x5851F42D4C957F2D & 0xFFFFFFFFFFFFFFFF)) * _MULTIPLIER
    return (mixed >> np.uint64(64 - _HASH_BITS)).astype(np.int64)


def _character_ngrams(texts: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    strings = as_strings(texts).fillna("")
    lengths = strings.str.len().to_numpy(dtype=np.int64)
    # one array of code points for all texts; surrogatepass keeps lone surrogates instead of failing
    codes = np.frombuffer("".join(strings.tolist()).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    codes = codes.astype(np.uint64)
    text_of_char = np.repeat(np.arange(len(lengths)), lengths)
    rows, columns = [], []
    for family, n in enumerate(_CHAR_NGRAMS, start=len(_WORD_NGRAMS)):
        n_starts = len(codes) - n + 1
        if n_starts <= 0:
            continue
        inside = text_of_char[:n_starts] == text_of_char[n - 1 :]
        keys = np.zeros(n_starts, dtype=np.uint64)
        for k in range(n):
            keys = keys * _CHAR_BASE + codes[k : k + n_starts]
        rows.append(text_of_char[:n_starts][inside])
        columns.append(_bucket(keys[inside], family))
    return rows, columns


def _entries(texts: np.ndarray, tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
    """Row (text) and hashed column of every n-gram occurrence."""
    rows, columns = _character_ngrams(texts)
    for family, n in enumerate(_WORD_NGRAMS):
        keys, text_index = tokens.ngrams(n)
        rows.append(text_index)
        columns.append(_bucket(keys, family))
    return np.concatenate(rows), np.concatenate(columns)


@frozen(eq=False)
class TextFeatures:
    """The feature space of one text column, fitted on the original texts."""

    column_map: np.ndarray
    tfidf: TfidfTransformer

    @classmethod
    def fit(cls, texts: np.ndarray, tokens: Tokens) -> tuple[TextFeatures, sp.csr_matrix]:
        """Keep the hashed columns found in at least two original texts and fit the IDF weights.

        Returns the fitted features and the TF-IDF matrix of the original texts.
        """
        rows, columns = _entries(texts, tokens)
        # a CSR matrix sums repeated (text, column) entries, so its column indices count texts per column
        counts = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=(len(texts), 1 << _HASH_BITS)
        )
        counts.sum_duplicates()
        texts_per_column = np.bincount(counts.indices, minlength=1 << _HASH_BITS)
        kept = np.flatnonzero(texts_per_column >= _MIN_TEXTS)
        column_map = np.full(1 << _HASH_BITS, -1, dtype=np.int64)
        column_map[kept] = np.arange(len(kept))
        features = cls(column_map, TfidfTransformer(sublinear_tf=True))
        matrix = features.tfidf.fit_transform(features._counts(rows, columns, len(texts)))
        return features, matrix.astype(np.float32)

    def transform(self, texts: np.ndarray, tokens: Tokens) -> sp.csr_matrix:
        """TF-IDF matrix of the texts (one row per text; a NULL text is an all-zero row)."""
        rows, columns = _entries(texts, tokens)
        return self.tfidf.transform(self._counts(rows, columns, len(texts))).astype(np.float32)

    def _counts(self, rows: np.ndarray, columns: np.ndarray, n_texts: int) -> sp.csr_matrix:
        mapped = self.column_map[columns]
        kept = mapped >= 0
        n_columns = max(int(self.column_map.max()) + 1, 1)
        return sp.csr_matrix(
            (np.ones(int(kept.sum()), dtype=np.float32), (rows[kept], mapped[kept])), shape=(n_texts, n_columns)
        )
