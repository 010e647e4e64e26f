"""Free-text (``LANGUAGE_TEXT``) columns inside ``TabularSynthesizer``, the free-text rule, and
``LanguageSynthesizer.sample(return_context=True)``."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest

from synthgen import LanguageSynthesizer, TabularSynthesizer
from synthgen._free_text import free_text_columns, is_free_text

COLUMNS = ["source", "text", "created_at", "retweet_count", "is_retweet"]
TEXT_TYPES = {"text": "LANGUAGE_TEXT"}


@pytest.fixture(scope="module")
def tweets(tweets_full) -> pd.DataFrame:
    """200 tweets, a quarter of their texts NULL."""
    frame = tweets_full.sample(n=200, random_state=11)[COLUMNS].reset_index(drop=True)
    frame.loc[frame.index % 4 == 0, "text"] = None
    return frame


@pytest.fixture(scope="module")
def fitted(tweets, tmp_path_factory) -> TabularSynthesizer:
    workspace = tmp_path_factory.mktemp("tabular-text") / "ws"
    return TabularSynthesizer(tgt_encoding_types=TEXT_TYPES, max_epochs=1, workspace_dir=workspace, verbose=False,
                              random_state=0).fit(tweets)


def test_every_column_comes_back_in_its_dtype_and_order(fitted, tweets):
    synthetic = fitted.sample(200, random_state=1)
    assert list(synthetic.columns) == COLUMNS and len(synthetic) == 200
    pd.testing.assert_series_equal(synthetic.dtypes, tweets.dtypes)
    assert fitted.text_columns_ == ["text"] and fitted.encoding_types_["text"] == "LANGUAGE_TEXT"
    assert list(fitted.encoding_types_) == COLUMNS
    assert list(fitted.feature_names_in_) == COLUMNS
    present = synthetic["text"].dropna()
    nchar_max = fitted._text_model.bundle.stats["columns"]["text"]["nchar_max"]
    assert present.str.len().gt(0).mean() > 0.5 and present.str.len().le(nchar_max).all()
    # NULLs come from the tabular model's indicator: about a quarter (1 epoch: loose bounds)
    assert 0.08 < synthetic["text"].isna().mean() < 0.5
    assert fitted.sample(100, imputation={"columns": ["text"]}, random_state=2)["text"].notna().all()
    assert len(fitted.text_history_) == 1 and len(fitted.history_) == 1
    assert (fitted.workspace_.root / "TextModel" / "ModelStore" / "model-data" / "tokenizer.json").is_file()
    empty = fitted.sample(0)
    assert list(empty.columns) == COLUMNS and len(empty) == 0
    pd.testing.assert_series_equal(empty.dtypes, tweets.dtypes)


def test_sampling_is_reproducible(fitted):
    pd.testing.assert_frame_equal(fitted.sample(40, random_state=5), fitted.sample(40, random_state=5))


def test_seeds_condition_the_text_and_seeded_texts_are_kept(fitted, tweets):
    seeds = pd.DataFrame({"source": ["Twitter for Android", "Twitter Web Client"] * 10,
                          "retweet_count": np.arange(20) * 100})
    synthetic = fitted.sample(seed_data=seeds, random_state=3)
    assert len(synthetic) == 20 and list(synthetic.columns) == COLUMNS
    assert synthetic["source"].tolist() == seeds["source"].tolist()
    assert synthetic["retweet_count"].tolist() == seeds["retweet_count"].tolist()
    with_text = seeds.assign(text=["a seeded tweet", None] * 10)
    synthetic = fitted.sample(seed_data=with_text, random_state=3)
    assert synthetic["text"].tolist() == with_text["text"].tolist()
    only_text = fitted.sample(seed_data=with_text[["text"]], random_state=3)
    assert only_text["text"].tolist() == with_text["text"].tolist() and list(only_text.columns) == COLUMNS


def test_inference_methods_ignore_the_free_text(fitted, tweets):
    probabilities = fitted.predict_proba(tweets.head(10), target="source")
    assert probabilities.shape[0] == 10
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert np.isfinite(fitted.score_samples(tweets.head(10))).all()


def test_pickle_round_trip_samples_in_a_fresh_process_without_the_workspace(fitted, tmp_path):
    expected = fitted.sample(10, random_state=10)
    joblib.dump(fitted, tmp_path / "synth.joblib")
    shutil.rmtree(fitted.workspace_.root)
    code = textwrap.dedent(f"""
        import joblib
        import torch
        torch.set_num_threads(1)
        synth = joblib.load({str(tmp_path / "synth.joblib")!r})
        synth.sample(10, random_state=10, device="cpu").to_pickle({str(tmp_path / "out.pkl")!r})
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "out.pkl"), expected)


def test_inferred_free_text_refits_reproducibly_and_resumes(tweets):
    small = tweets.head(80)
    first = TabularSynthesizer(max_epochs=1, verbose=False, random_state=7).fit(small)
    second = TabularSynthesizer(max_epochs=1, verbose=False, random_state=7).fit(small)
    assert first.text_columns_ == ["text"] and first.encoding_types_["source"] == "TABULAR_CATEGORICAL"
    pd.testing.assert_frame_equal(first.sample(30), second.sample(30))
    second.set_params(model_state_strategy="RESUME", max_epochs=2).fit(small)
    assert second.text_history_["epoch"].tolist() == [1, 2] and second.history_["epoch"].tolist() == [1, 2]


def test_free_text_rule(tweets_full):
    assert free_text_columns(tweets_full) == ["text"]
    texts = tweets_full["text"].head(500)
    assert is_free_text(texts.astype(object)) and is_free_text(texts.astype("string[pyarrow]"))
    assert not is_free_text(texts.astype("category"))  # a declared categorical
    assert not is_free_text(texts.head(19))  # too few values to tell
    names = pd.Series([f"Jane Doe {i}" for i in range(100)])  # unique, but three short words
    assert not is_free_text(names)
    repeated = pd.Series(["the parcel arrived late and damaged"] * 60 + ["all good, thanks a lot"] * 40)
    assert not is_free_text(repeated)  # sentences, but few distinct ones: categories
    declared = TabularSynthesizer(tgt_encoding_types={"text": "TABULAR_CHARACTER"})
    assert declared._free_text_columns(tweets_full.head(300), None) == []


@pytest.mark.parametrize(("make", "message"), [
    (lambda t: (t.assign(text=None), {}),
     "Column 'text' is declared LANGUAGE_TEXT but every value is NULL, so there is no text to learn"),
    (lambda t: (t.assign(id=np.arange(len(t))), {"context": pd.DataFrame({"id": np.arange(len(t))})}),
     r"Free-text columns \['text'\] are not supported in a two-table \(context\) model yet"),
    (lambda t: (t[["text"]], {}), r"The table has no column besides its free-text columns \['text'\]"),
    (lambda t: (t.drop(columns="text"), {}),
     r"tgt_encoding_types declares \['text'\] LANGUAGE_TEXT, but the table has no such column"),
])
def test_what_cannot_be_learned_is_refused_before_training(tweets, make, message):
    X, kwargs = make(tweets)
    keys = {"tgt_context_key": "id", "ctx_primary_key": "id"} if "context" in kwargs else {}
    with pytest.raises(ValueError, match=message):
        TabularSynthesizer(tgt_encoding_types=TEXT_TYPES, max_epochs=1, **keys).fit(X, **kwargs)


def test_language_model_parameter_is_validated(tweets):
    with pytest.raises(ValueError, match="The 'language_model' parameter of TabularSynthesizer must be "
                                         "'MOSTLY_AI/LSTMFromScratch-3m' or the folder of a local Hugging Face"):
        TabularSynthesizer(language_model="/no/such/model").fit(tweets)


@pytest.mark.filterwarnings("ignore:Column 'code' of ctx_data")
def test_language_synthesizer_returns_synthetic_context(tweets):
    secret = [f"entity-secret-{i:04d}" for i in range(120)]  # each held once: never published
    tgt = tweets[["source", "text"]].head(120).assign(tweet_id=np.arange(120))
    ctx = pd.DataFrame({"id": np.arange(120), "is_retweet": tweets["is_retweet"].head(120),
                        "year": tweets["created_at"].dt.year.head(120), "code": secret})
    synth = LanguageSynthesizer(tgt_encoding_types=TEXT_TYPES, tgt_context_key="tweet_id", ctx_primary_key="id",
                                max_epochs=1, verbose=False, random_state=0).fit(tgt, context=ctx)
    entities, records = synth.sample(12, return_context=True)
    assert len(entities) == 12 and list(entities.columns) == list(ctx.columns)
    assert records["tweet_id"].tolist() == entities["id"].tolist()
    assert entities["year"].between(ctx["year"].min(), ctx["year"].max()).all()
    assert not entities["code"].isin(secret).any()
    assert len(synth.ctx_history_) == 1
    assert len(synth.sample(5)) == 5 and isinstance(synth.sample(5), pd.DataFrame)
    pickled = pickle.dumps(synth)
    assert not any(value.encode() in pickled for value in secret)  # no real context row in the pickle
    given, _ = synth.sample(2, context=ctx.head(3), return_context=True)
    pd.testing.assert_frame_equal(given, ctx.head(2))
    with pytest.raises(ValueError, match="seed_data of a model with a context table refers to context rows"):
        synth.sample(seed_data=tgt[["source"]].head(3))
    flat = LanguageSynthesizer(tgt_encoding_types=TEXT_TYPES, max_epochs=1, verbose=False).fit(tgt.head(40))
    with pytest.raises(ValueError, match="return_context=True needs a model fitted with a context table"):
        flat.sample(3, return_context=True)
