"""Text fidelity and memorisation figures from lengths, word counts and n-gram keys.

Accuracies are ``1 - TVD`` as for the tabular columns (``_accuracy.accuracy``):

- length accuracies compare the lengths (in characters, in words) in the univariate buckets a numeric column
  gets (``_discretize.fit_bins``: about ten quantile buckets of the original lengths; NULL a bucket of its own);
- word and bigram accuracies compare frequencies over ``top_k + 2`` buckets: the ``top_k`` most frequent
  items of the original, all other items of the original (pooled), and items the original never has (pooled).
  The last bucket is what gibberish or words glued into new pairs fall into, and real data keeps it small (the
  holdout's share there is its natural rate of unseen words).

Memorisation counts copies: whole texts equal to a training text, and long word n-grams found in a training
text; the holdout's own shares are the yardstick of what fresh real text shares with the training data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.evaluation._accuracy import accuracy, joint_distribution
from synthgen.evaluation._discretize import fit_bins
from synthgen.evaluation._text_tokens import as_strings

TOP_K = 1000


def length_accuracies(lengths: dict[str, np.ndarray]) -> dict[str, float]:
    """``1 - TVD`` of each frame's lengths (float, NaN for NULL) against the original's, in its buckets."""
    bins = fit_bins(lengths["original"], "numeric")
    shares = {name: joint_distribution([bins.codes(values)], [bins.n_bins], None) for name, values in lengths.items()}
    return {name: accuracy(shares["original"], shares[name]) for name in lengths if name != "original"}


def frequency_accuracies(keys: dict[str, np.ndarray], top_k: int = TOP_K) -> dict[str, float | None]:
    """``1 - TVD`` of each frame's item frequencies against the original's (see the module docstring).

    None for every frame when the original has no item (no words, or no text with two words for bigrams).
    """
    compared = [name for name in keys if name != "original"]
    vocabulary, counts = np.unique(keys["original"], return_counts=True)
    if len(vocabulary) == 0:
        return dict.fromkeys(compared)
    # most frequent first; ties broken by key so that the choice does not depend on row order
    top = np.sort(vocabulary[np.lexsort((vocabulary, -counts))[:top_k]])
    shares = {name: _bucket_shares(values, top, vocabulary) for name, values in keys.items()}
    return {name: accuracy(shares["original"], shares[name]) for name in compared}


def _bucket_shares(values: np.ndarray, top: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    n_top = len(top)
    buckets = np.full(len(values), n_top + 1, dtype=np.int64)  # never in the original
    buckets[_isin(values, vocabulary)] = n_top  # in the original, not among the top
    position = np.minimum(np.searchsorted(top, values), n_top - 1)
    in_top = top[position] == values
    buckets[in_top] = position[in_top]
    return joint_distribution([buckets], [n_top + 2], None)


def character_lengths(texts: np.ndarray) -> np.ndarray:
    """Length of each text in characters (code points) as float, NaN for NULL."""
    return as_strings(texts).str.len().to_numpy(dtype=np.float64, na_value=np.nan)


def word_counts(counts: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Word counts as float with NaN for NULL texts (a NULL text has no length, unlike an empty one)."""
    values = counts.astype(np.float64)
    values[as_strings(texts).isna().to_numpy()] = np.nan
    return values


def exact_copy_share(texts: np.ndarray, training: np.ndarray) -> float | None:
    """Share of the non-NULL ``texts`` that equal a non-NULL training text; None without any text."""
    values = as_strings(texts).dropna()
    if len(values) == 0:
        return None
    return float(values.isin(as_strings(training).dropna()).mean())


def ngram_copy_share(keys: np.ndarray, training_keys: np.ndarray) -> float | None:
    """Share of the n-gram ``keys`` that also occur in the training texts; None without any n-gram."""
    if len(keys) == 0:
        return None
    return float(_isin(keys, training_keys).mean())


def _isin(values: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    # pandas' hash table: about 20 times faster than np.isin on a few hundred thousand uint64 keys
    return pd.Series(values).isin(candidates).to_numpy()
