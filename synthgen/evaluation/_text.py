"""Text figures of free-text columns, and the public :func:`text_metrics`.

Every figure is computed for the synthetic data and, with a holdout, for the holdout in the same way (its
``reference``): what fresh real text scores against the training texts. See docs/evaluation.md#text.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from attrs import frozen
from sklearn.utils import check_random_state

from synthgen.evaluation._columns import ColumnKind, column_kind, validate_frames
from synthgen.evaluation._discretize import fit_bins
from synthgen.evaluation._prepare import PreparedFrame, prepare_frame
from synthgen.evaluation._text_classifiers import context_aucs, text_discriminator_auc
from synthgen.evaluation._text_columns import resolve_context_columns, resolve_text_columns
from synthgen.evaluation._text_features import TextFeatures
from synthgen.evaluation._text_fidelity import (
    TOP_K,
    character_lengths,
    exact_copy_share,
    frequency_accuracies,
    length_accuracies,
    ngram_copy_share,
    word_counts,
)
from synthgen.evaluation._text_tokens import tokenize

# Length of the word n-grams whose copies count as memorisation: 8 words rarely recur by chance.
COPY_NGRAM = 8

# Figure name -> (meaning, shown as a percentage). ``context_auc[<column>]`` stands for one figure per
# context column. The order is the order of every view.
TEXT_FIGURES: dict[str, tuple[str, bool]] = {
    "char_length_accuracy": ("1 − TVD of text lengths in characters (quantile buckets of the original's)", True),
    "word_count_accuracy": ("1 − TVD of text lengths in words", True),
    "word_accuracy": (f"1 − TVD of word frequencies: top {TOP_K:,} training words, other training words, unseen", True),
    "bigram_accuracy": (f"1 − TVD of word-pair frequencies: top {TOP_K:,} training pairs, other, unseen", True),
    "discriminator_auc": ("AUC of a TF-IDF classifier telling original from synthetic texts; 0.5 is ideal", False),
    "context_auc": ("AUC of predicting the column from the text (trained on original); the holdout's is the aim", False),
    "exact_copy_share": ("texts identical to a training text; no more than the holdout's", True),
    "ngram_copy_share": (f"{COPY_NGRAM}-word sequences found in a training text; no more than the holdout's", True),
}


def text_figure_kind(figure: str) -> str:
    """The entry of :data:`TEXT_FIGURES` of a figure name: ``context_auc[source]`` -> ``context_auc``."""
    return figure.split("[", 1)[0]


@frozen(eq=False)
class TextEvaluation:
    """Text figures of every text column.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``column``, ``figure``, ``synthetic``, ``reference`` (NaN without a holdout or where a figure
        does not apply).
    lengths : dict of str to dict of str to pandas.DataFrame
        Per text column and frame: ``characters`` and ``words`` of each non-NULL text.
    """

    table: pd.DataFrame
    lengths: dict[str, dict[str, pd.DataFrame]]


def text_evaluation(
    frames: dict[str, PreparedFrame],
    kinds: dict[str, ColumnKind],
    text_columns: list[str],
    context_columns: list[str],
    *,
    discriminator: bool,
    max_discriminator_rows: int,
    rng: np.random.RandomState,
) -> TextEvaluation:
    """Compute the text figures of every text column on prepared (sampled, harmonised) frames."""
    rows: list[dict] = []
    lengths: dict[str, dict[str, pd.DataFrame]] = {}
    for column in text_columns:
        figures, lengths[column] = _column_figures(
            frames, kinds, column, context_columns,
            discriminator=discriminator, max_discriminator_rows=max_discriminator_rows, rng=rng,
        )
        rows += [
            {"column": column, "figure": figure, "synthetic": values.get("synthetic"), "reference": values.get("holdout")}
            for figure, values in figures.items()
        ]
    table = pd.DataFrame(rows, columns=["column", "figure", "synthetic", "reference"])
    table[["synthetic", "reference"]] = table[["synthetic", "reference"]].astype(np.float64)
    return TextEvaluation(table, lengths)


def _column_figures(
    frames: dict[str, PreparedFrame],
    kinds: dict[str, ColumnKind],
    column: str,
    context_columns: list[str],
    *,
    discriminator: bool,
    max_discriminator_rows: int,
    rng: np.random.RandomState,
) -> tuple[dict[str, dict[str, float | None]], dict[str, pd.DataFrame]]:
    texts = {name: frame.values[column] for name, frame in frames.items()}
    compared = [name for name in frames if name != "original"]
    tokens = tokenize(texts)
    characters = {name: character_lengths(values) for name, values in texts.items()}
    words = {name: word_counts(tokens[name].word_counts(), texts[name]) for name, values in texts.items()}
    figures: dict[str, dict[str, float | None]] = {
        "char_length_accuracy": length_accuracies(characters),
        "word_count_accuracy": length_accuracies(words),
        "word_accuracy": frequency_accuracies({name: t.ngrams(1)[0] for name, t in tokens.items()}),
        "bigram_accuracy": frequency_accuracies({name: t.ngrams(2)[0] for name, t in tokens.items()}),
        "discriminator_auc": {},
    }
    features = None
    if discriminator or context_columns:
        model, original_features = TextFeatures.fit(texts["original"], tokens["original"])
        features = {"original": original_features}
        features.update({name: model.transform(texts[name], tokens[name]) for name in compared})
    if discriminator:
        for name in compared:
            # one id per distinct text (NULL included), so that equal texts share a fold
            ids, _ = pd.factorize(np.concatenate([texts["original"], texts[name]]), use_na_sentinel=False)
            n_original = len(texts["original"])
            figures["discriminator_auc"][name] = text_discriminator_auc(
                features["original"], features[name], (ids[:n_original], ids[n_original:]),
                max_rows=max_discriminator_rows, rng=rng,
            )
    for context in context_columns:
        bins = fit_bins(frames["original"].values[context], kinds[context])
        labels = {name: bins.codes(frame.values[context]) for name, frame in frames.items()}
        figures[f"context_auc[{context}]"] = context_aucs(
            (features["original"], labels["original"]),
            {name: (features[name], labels[name]) for name in compared},
            max_rows=max_discriminator_rows,
            rng=rng,
        )
    copies = {name: tokens[name].ngrams(COPY_NGRAM)[0] for name in compared}
    training_ngrams = tokens["original"].ngrams(COPY_NGRAM)[0]
    figures["exact_copy_share"] = {name: exact_copy_share(texts[name], texts["original"]) for name in compared}
    figures["ngram_copy_share"] = {name: ngram_copy_share(copies[name], training_ngrams) for name in compared}
    lengths = {
        name: pd.DataFrame({"characters": characters[name], "words": words[name]}).dropna().astype(np.int64)
        for name in frames
    }
    return figures, lengths


def text_metrics(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    *,
    text_columns: list[str] | None = None,
    context_columns: list[str] | None = None,
    discriminator: bool = True,
    max_rows: int = 100_000,
    max_discriminator_rows: int = 20_000,
    random_state: int | np.random.RandomState | None = 0,
) -> pd.DataFrame:
    """Fidelity and privacy figures of the free-text columns of synthetic data, as one table.

    The text figures of :func:`synthgen.evaluate` (``result.text``) without the tabular ones; no language
    model is downloaded or needed. See docs/evaluation.md for the definitions.

    Parameters
    ----------
    original, synthetic : pandas.DataFrame
        The training data and the generated data, as in :func:`synthgen.evaluate`.
    holdout : pandas.DataFrame, optional
        Real data the generator did not see; its figures are the ``reference`` column.
    text_columns : list of str, optional
        The free-text columns: ``text_columns`` of :func:`synthgen.evaluate`, with the same default.
    context_columns : list of str, optional
        Columns the text is asked to predict (``context_auc[<column>]``): ``text_context_columns`` of
        :func:`synthgen.evaluate`, with the same default.
    discriminator : bool, default=True
        Compute the text discriminator AUC.
    max_rows : int, default=100_000
        Rows drawn at most from each frame.
    max_discriminator_rows : int, default=20_000
        Texts drawn at most per class for the discriminator, and original rows for a context classifier.
    random_state : int, RandomState instance or None, default=0
        Seeds the row samples and the classifiers.

    Returns
    -------
    pandas.DataFrame
        One row per text column and figure: columns ``column``, ``figure``, ``synthetic``, ``reference``
        (NaN without a holdout, or where a figure does not apply).

    Raises
    ------
    TypeError
        If a frame is not a DataFrame.
    ValueError
        If the frames' columns differ, a frame is empty, ``text_columns`` or ``context_columns`` names an
        unknown column, or a text column does not hold strings.

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen.evaluation import text_metrics
    >>> real = pd.DataFrame({"note": ["the cat sat on the mat", "a dog ran in the park"] * 20,
    ...                      "kind": ["cat", "dog"] * 20})
    >>> table = text_metrics(real, real, text_columns=["note"], discriminator=False)
    >>> table.set_index("figure").loc["word_accuracy", "synthetic"]
    np.float64(1.0)
    """
    for name, value in {"max_rows": max_rows, "max_discriminator_rows": max_discriminator_rows}.items():
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"The {name!r} parameter of text_metrics must be an int in the range [1, inf). Got {value!r} instead."
            )
    columns = validate_frames(original, synthetic, holdout, None)
    texts = resolve_text_columns(text_columns, original, columns, None)
    kinds = {c: "text" if c in texts else column_kind(original[c]) for c in columns}
    contexts = resolve_context_columns(context_columns, texts, kinds, original, columns, None)
    random = check_random_state(random_state)
    inputs = {"original": original, "synthetic": synthetic, **({"holdout": holdout} if holdout is not None else {})}
    used = [*texts, *contexts]
    frames = {
        name: prepare_frame(
            frame[used], name=name, columns=used, kinds=kinds, context_key=None, max_units=max_rows,
            rng=np.random.RandomState(random.randint(np.iinfo(np.int32).max)),
        )
        for name, frame in inputs.items()
    }
    return text_evaluation(
        frames, kinds, texts, contexts, discriminator=bool(discriminator),
        max_discriminator_rows=max_discriminator_rows, rng=random,
    ).table
