"""Text figures of synthgen.evaluate: each figure on constructed data with a known answer, tweets, errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from conftest import load_dataset

from synthgen import evaluate
from synthgen._free_text import free_text_columns, is_free_text
from synthgen.evaluation import text_metrics

VOCABULARY = [f"w{i}" for i in range(300)]


def sentences(n: int, seed: int, vocabulary=VOCABULARY, labels=None) -> list[str]:
    """``n`` texts of 9 to 20 words drawn from ``vocabulary``; with ``labels``, each text names its label."""
    rng = np.random.default_rng(seed)
    # a Zipf-like word distribution, as in real text
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    texts = []
    for i in range(n):
        words = list(rng.choice(vocabulary, size=rng.integers(9, 21), p=weights / weights.sum()))
        if labels is not None:
            words.insert(int(rng.integers(len(words))), f"about_{labels[i]}")
        texts.append(" ".join(words))
    return texts


def labelled_frame(n: int, seed: int, *, text_knows_label: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1000)
    labels = rng.choice(["cats", "dogs", "birds"], size=n)
    text_labels = labels if text_knows_label else rng.permutation(labels)
    return pd.DataFrame({"note": sentences(n, seed, labels=text_labels), "topic": labels})


def figures(table: pd.DataFrame, column: str = "reference") -> pd.Series:
    return table.set_index("figure")[column]


@pytest.fixture(scope="module")
def real():
    return labelled_frame(600, seed=0)


@pytest.fixture(scope="module")
def holdout():
    return labelled_frame(300, seed=1)


def test_identical_texts_score_full_accuracy_full_copies_and_an_undecided_discriminator(real, holdout):
    table = text_metrics(real, real.copy(), holdout)
    synthetic = figures(table, "synthetic")
    for name in ["char_length_accuracy", "word_count_accuracy", "word_accuracy", "bigram_accuracy"]:
        assert synthetic[name] == pytest.approx(1.0), name
    assert synthetic["exact_copy_share"] == 1.0
    assert synthetic["ngram_copy_share"] == 1.0
    # equal texts share a fold, so copies cannot be told apart: exactly 0.5, not below it
    assert synthetic["discriminator_auc"] == pytest.approx(0.5)
    # fresh texts of the same process share no whole text and few 8-word runs with the training texts
    reference = figures(table)
    assert reference["exact_copy_share"] == 0.0
    assert reference["ngram_copy_share"] < 0.05
    assert 0.8 < reference["word_accuracy"] < 1.0


def test_disjoint_vocabulary_scores_zero_word_accuracy_and_no_copies(real):
    other_words = [f"z{i}" for i in range(300)]
    synthetic = pd.DataFrame({"note": sentences(600, 5, vocabulary=other_words), "topic": real["topic"]})
    table = figures(text_metrics(real, synthetic, text_columns=["note"]), "synthetic")
    assert table["word_accuracy"] == pytest.approx(0.0, abs=1e-12)
    assert table["bigram_accuracy"] == pytest.approx(0.0, abs=1e-12)
    assert table["exact_copy_share"] == 0.0
    assert table["ngram_copy_share"] == 0.0
    assert table["discriminator_auc"] > 0.95


def test_shuffled_words_keep_word_accuracy_but_lose_bigram_accuracy(real):
    rng = np.random.default_rng(3)
    shuffled = real.assign(note=[" ".join(rng.permutation(text.split())) for text in real["note"]])
    table = figures(text_metrics(real, shuffled), "synthetic")
    assert table["word_accuracy"] == pytest.approx(1.0)
    assert table["char_length_accuracy"] == pytest.approx(1.0)
    assert table["word_count_accuracy"] == pytest.approx(1.0)
    assert table["bigram_accuracy"] < 0.75
    assert table["ngram_copy_share"] < 0.05


def test_truncated_texts_lose_length_accuracy(real):
    truncated = real.assign(note=real["note"].str.slice(0, 30))
    table = figures(text_metrics(real, truncated, discriminator=False, context_columns=[]), "synthetic")
    assert table["char_length_accuracy"] < 0.3
    assert table["word_count_accuracy"] < 0.3


def test_context_classifier_reads_the_label_from_real_like_text_but_not_from_random_text(real, holdout):
    real_like = labelled_frame(400, seed=7)
    unrelated = labelled_frame(400, seed=7, text_knows_label=False)
    good = text_metrics(real, real_like, holdout, discriminator=False)
    bad = text_metrics(real, unrelated, holdout, discriminator=False)
    assert figures(good, "synthetic")["context_auc[topic]"] > 0.9
    assert figures(good)["context_auc[topic]"] > 0.9  # the holdout's texts name their topic too
    assert abs(figures(bad, "synthetic")["context_auc[topic]"] - 0.5) < 0.1


def test_without_holdout_the_reference_is_missing(real):
    table = text_metrics(real, real, discriminator=False)
    assert table["reference"].isna().all()
    assert list(table["figure"]) == [
        "char_length_accuracy", "word_count_accuracy", "word_accuracy", "bigram_accuracy", "discriminator_auc",
        "context_auc[topic]", "exact_copy_share", "ngram_copy_share",
    ]
    assert np.isnan(figures(table, "synthetic")["discriminator_auc"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["the cat sat on the mat", "a dog ran in the park", "birds sing at dawn"] * 7, False),  # few distinct
        ([f"the cat number {i} sat on the mat" for i in range(20)], True),
        ([f"the cat number {i} sat on the mat" for i in range(19)], False),  # too few values to tell
        ([f"a b c {i}" for i in range(40)], False),  # words, but 8 characters each: codes, not text
        (["Private", "Self-emp", "Never worked"] * 10, False),
        ([f"Jane Doe {i}" for i in range(30)], False),
        ([None] * 30, False),
    ],
)
def test_detection_rule(values, expected):
    assert is_free_text(pd.Series(values, dtype="str")) is expected


def test_numbers_booleans_and_categories_are_never_free_text():
    assert not is_free_text(pd.Series(range(30)))
    assert not is_free_text(pd.Series([True, False] * 15))
    assert not is_free_text(pd.Series([f"long sentence number {i} here" for i in range(30)], dtype="category"))


def test_evaluate_detects_the_columns_the_tabular_synthesizer_infers():
    # one rule for both: short word runs (4 words, 10 characters) are free text to neither
    frame = labelled_frame(60, seed=3).assign(code=[f"a b c {i}" for i in range(60)])
    assert free_text_columns(frame) == ["note"]
    result = evaluate(frame, frame, privacy=False)
    assert set(result.text["column"]) == {"note"}
    assert "code" in set(result.univariates["column"])


@pytest.fixture(scope="module")
def tweets():
    data = load_dataset("tweets").sample(n=1500, random_state=0).reset_index(drop=True)
    return data.iloc[:1000], data.iloc[1000:]


def test_evaluate_on_tweets_puts_text_figures_into_the_result(tweets, tmp_path):
    train, holdout = tweets
    rng = np.random.default_rng(0)
    # each column drawn independently: the texts are training texts, but no longer match their rows
    synthetic = pd.DataFrame({c: train[c].to_numpy()[rng.permutation(len(train))] for c in train.columns})
    result = evaluate(train, synthetic, holdout, max_distance_rows=500)
    assert "text" not in set(result.univariates["column"])
    assert not ({"text"} & set(result.bivariates[["column_1", "column_2"]].to_numpy().ravel()))
    assert set(result.text["column"]) == {"text"}
    text = result.text_figures("text")
    assert text.loc["exact_copy_share", "synthetic"] == 1.0
    assert text.loc["word_accuracy", "synthetic"] == pytest.approx(1.0)
    assert text.loc["exact_copy_share", "reference"] < 0.1
    assert abs(text.loc["context_auc[source]", "synthetic"] - 0.5) < 0.1  # the texts lost their source
    assert text.loc["context_auc[source]", "reference"] > 0.8
    frame = result.to_frame()
    assert frame.loc["text/word_accuracy", "group"] == "text"
    assert frame.loc["text/ngram_copy_share", "reference"] == text.loc["ngram_copy_share", "reference"]
    assert result.to_dict()["reference_text/word_count_accuracy"] == text.loc["word_count_accuracy", "reference"]
    assert "text/discriminator_auc" in repr(result)
    lengths = result.text_lengths["text"]
    assert list(lengths) == ["original", "synthetic", "holdout"]
    assert lengths["holdout"]["characters"].tolist() == holdout["text"].str.len().tolist()

    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    section = page[page.index("<h2>Text</h2>") :]
    assert "context_auc[source]" in section
    assert "alt='length histograms of text'" in section


def test_text_columns_empty_list_evaluates_the_text_as_a_category(tweets):
    train, holdout = tweets
    result = evaluate(train, train, holdout, text_columns=[], privacy=False, discriminator=False)
    assert result.univariates.set_index("column").loc["text", "kind"] == "categorical"
    assert result.text is None
    assert not result.to_frame()["group"].eq("text").any()


def test_a_table_of_text_only_gets_text_figures_and_a_report(real, tmp_path):
    notes = real[["note"]]
    result = evaluate(notes, notes.iloc[::-1], notes.iloc[:200])
    assert result.overall is None and result.univariates.empty
    assert result.exact_match_share is None  # no tabular columns to measure distances on
    assert result.text_figures().loc["exact_copy_share", "synthetic"] == 1.0
    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Text</h2>" in page and "<h2>Univariate distributions</h2>" not in page


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text_columns": ["tweet"]}, "The 'text_columns' parameter of evaluate names columns the data does not have: "
                                      "['tweet']. Its columns are ['note', 'topic', 'count']."),
        ({"text_columns": ["count"]}, "The 'text_columns' parameter of evaluate names column 'count', which does not "
                                      "hold strings in the original data (dtype int64); text figures need a free-text "
                                      "column."),
        ({"text_columns": "note"}, "The 'text_columns' parameter of evaluate must be a list of column names or None. "
                                   "Got 'note' instead."),
        ({"text_columns": ["note", "note"]}, "The 'text_columns' parameter of evaluate names columns twice: ['note']."),
        ({"text_context_columns": ["color"]}, "The 'text_context_columns' parameter of evaluate names columns the "
                                              "data does not have: ['color']."),
        ({"text_context_columns": ["note"]}, "The 'text_context_columns' parameter of evaluate names the text "
                                             "columns ['note']"),
    ],
)
def test_bad_text_parameters_get_errors_naming_the_column(real, kwargs, message):
    frame = real.assign(count=np.arange(len(real)))
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(frame, frame, **kwargs)


def test_the_context_key_cannot_be_a_text_column():
    frame = pd.DataFrame({"id": [1, 1, 2], "note": ["a b c d", "e f g h", "i j k l"]})
    with pytest.raises(ValueError, match="names the context key 'id'"):
        evaluate(frame, frame, context_key="id", text_columns=["id"])


def test_text_metrics_checks_its_row_limits(real):
    with pytest.raises(ValueError, match=re.escape("The 'max_rows' parameter of text_metrics must be an int")):
        text_metrics(real, real, max_rows=0)
