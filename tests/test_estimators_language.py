"""``LanguageSynthesizer``: fit / sample on tweets with both model kinds, seeds, context, pipelines, pickling."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import check_valid
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from synthgen import Analyzer, Encoder, LanguageSynthesizer, Splitter, TabularSynthesizer

TEXT_TYPES = {"text": "LANGUAGE_TEXT"}
COLUMNS = ["source", "text", "created_at", "retweet_count", "in_reply_to_user_id_str", "is_retweet"]


@pytest.fixture(scope="module")
def tweets(tweets_full) -> pd.DataFrame:
    return tweets_full.sample(n=240, random_state=11)[COLUMNS].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(tweets) -> LanguageSynthesizer:
    return LanguageSynthesizer(tgt_encoding_types=TEXT_TYPES, max_epochs=1, random_state=0).fit(tweets)


def test_sample_is_valid_in_the_original_dtypes(fitted, tweets):
    synthetic = fitted.sample(300)
    assert list(synthetic.columns) == COLUMNS and len(synthetic) == 300
    check_valid(synthetic, fitted.stats_, tweets)
    assert synthetic["text"].str.len().gt(0).mean() > 0.5
    assert fitted.encoding_types_["is_retweet"] == "LANGUAGE_CATEGORICAL"
    assert fitted.n_features_in_ == len(COLUMNS) and list(fitted.feature_names_in_) == COLUMNS
    assert len(fitted.history_) == 1 and {"trn_loss", "val_loss"} <= set(fitted.history_.columns)
    assert len(fitted.sample()) == len(tweets)


def test_seeded_columns_are_kept_verbatim(fitted, tweets):
    seeds = pd.DataFrame({"source": ["Twitter for iPhone", "a source never seen"] * 40,
                          "retweet_count": np.arange(80) * 7, "text": ["Make America", None] * 40})
    synthetic = fitted.sample(seed_data=seeds, random_state=4)
    assert len(synthetic) == 80
    for column in seeds:
        assert synthetic[column].tolist() == seeds[column].tolist()
    unseeded = [c for c in COLUMNS if c not in seeds]
    check_valid(synthetic[unseeded], {"columns": {c: fitted.stats_["columns"][c] for c in unseeded}}, tweets)


def test_sampling_settings_and_reproducibility(fitted):
    first = fitted.sample(30, random_state=5)
    pd.testing.assert_frame_equal(first, fitted.sample(30, random_state=5))
    greedy = fitted.sample(30, sampling_temperature=0, random_state=6)
    assert greedy["source"].nunique() == 1  # no context: the most probable category every time
    imputed = fitted.sample(100, imputation={"columns": ["in_reply_to_user_id_str"]}, random_state=7)
    assert imputed["in_reply_to_user_id_str"].notna().all()
    constant = fitted.sample(100, rare_category_replacement_method="CONSTANT", random_state=8)
    assert fitted.stats_["columns"]["source"]["no_of_rare_categories"] > 0
    assert constant["source"].isin([*fitted.stats_["columns"]["source"]["categories"], "_RARE_"]).all()
    empty = fitted.sample(0)
    assert empty.shape == (0, len(COLUMNS)) and (empty.dtypes == first.dtypes).all()
    with pytest.raises(ValueError, match=r"The 'sampling_top_p' parameter of LanguageSynthesizer\.sample"):
        fitted.sample(5, sampling_top_p=0)
    with pytest.raises(NotFittedError):
        LanguageSynthesizer().sample(5)


def test_pipeline_of_stages(tweets):
    pipe = make_pipeline(Splitter(model_type="LANGUAGE", tgt_encoding_types=TEXT_TYPES, random_state=0),
                         Analyzer(random_state=0), Encoder(random_state=0),
                         LanguageSynthesizer(max_epochs=1, random_state=0))
    pipe.fit(tweets.head(120))
    synthetic = pipe[-1].sample(40)
    check_valid(synthetic, pipe[-1].stats_, tweets)


def test_tabular_synthesizer_refuses_a_language_workspace_before_training(tweets, monkeypatch):
    import synthgen.estimators._tabular as tabular

    stages = make_pipeline(Splitter(model_type="LANGUAGE", tgt_encoding_types=TEXT_TYPES, random_state=0),
                           Analyzer(random_state=0), Encoder(random_state=0))
    workspace = stages.fit_transform(tweets.head(60))
    monkeypatch.setattr(tabular, "train", lambda **kw: pytest.fail("trained before refusing"))
    with pytest.raises(ValueError, match=r"TabularSynthesizer trains TABULAR tables; the workspace '.*' was split "
                                         r"for LANGUAGE\. Use LanguageSynthesizer"):
        TabularSynthesizer(max_epochs=1).fit(workspace)


def test_context_rows_condition_the_records(tweets):
    tgt = tweets[["source", "text"]].head(120).assign(tweet_id=np.arange(120))
    ctx = pd.DataFrame({"id": np.arange(120), "is_retweet": tweets["is_retweet"].head(120),
                        "year": tweets["created_at"].dt.year.head(120)})
    synth = LanguageSynthesizer(tgt_encoding_types=TEXT_TYPES, tgt_context_key="tweet_id", ctx_primary_key="id",
                                max_epochs=1, random_state=0).fit(tgt, context=ctx)
    entities, by_default = synth.sample(30, return_context=True)  # synthetic context rows, then their records
    assert len(by_default) == 30 and by_default["tweet_id"].tolist() == entities["id"].tolist()
    assert list(entities.columns) == list(ctx.columns)
    new = pd.DataFrame({"id": [900, 901, 902], "is_retweet": [True, False, True], "year": [2015, 2016, 2017]})
    synthetic = synth.sample(context=new)
    assert synthetic["tweet_id"].tolist() == [900, 901, 902]
    check_valid(synthetic, synth.stats_, tgt)
    with pytest.raises(ValueError, match=r"^context lacks the context columns \['id'\]; it needs the context key 'id' "
                                         r"and the columns \['is_retweet', 'year'\]\.$"):
        synth.sample(context=new.drop(columns="id"))


def test_resume_continues_the_fitted_model(tweets):
    synth = LanguageSynthesizer(tgt_encoding_types=TEXT_TYPES, max_epochs=1, random_state=0).fit(tweets.head(100))
    synth.set_params(model_state_strategy="RESUME", max_epochs=2).fit(tweets.head(100))
    assert synth.history_["epoch"].tolist() == [1, 2]


def test_pickle_round_trip_samples_in_a_fresh_process_without_the_workspace(tweets, tiny_hf_model, tmp_path):
    """Both model kinds: the LSTM (tokenizer and weights in memory) and a LoRA adapter of a local model."""
    expected = {}
    for kind, model in (("lstm", None), ("hf", str(tiny_hf_model))):
        synth = LanguageSynthesizer(model=model, tgt_encoding_types=TEXT_TYPES, max_epochs=1,
                                    value_protection=False, workspace_dir=tmp_path / kind, random_state=0)
        synth.fit(tweets[["source", "text", "retweet_count"]].head(64))
        expected[kind] = synth.sample(20, random_state=10)
        joblib.dump(synth, tmp_path / f"{kind}.joblib")
        shutil.rmtree(tmp_path / kind)
    code = textwrap.dedent(f"""
        import joblib
        import torch
        torch.set_num_threads(1)  # as in the test process (conftest); two busy cores thrash otherwise
        for kind in ("lstm", "hf"):
            synth = joblib.load({str(tmp_path)!r} + f"/{{kind}}.joblib")
            synth.sample(20, random_state=10, device="cpu").to_pickle({str(tmp_path)!r} + f"/{{kind}}.pkl")
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    for kind, frame in expected.items():
        pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / f"{kind}.pkl"), frame)


def test_bad_input_gets_a_clear_error(tweets, tmp_path):
    with pytest.raises(ValueError, match=r"The 'model' parameter of LanguageSynthesizer must be .*Got '.*nowhere'"):
        LanguageSynthesizer(model=str(tmp_path / "nowhere")).fit(tweets)
    with pytest.raises(ValueError, match=r"Column 'text' of tgt_data: .* every value is NULL"):
        LanguageSynthesizer(tgt_encoding_types=TEXT_TYPES).fit(tweets.assign(text=None))
    with pytest.raises(ValueError, match="do not mix TABULAR_\\* and LANGUAGE_\\* encodings"):
        LanguageSynthesizer(tgt_encoding_types={"source": "TABULAR_CATEGORICAL"}).fit(tweets)
    with pytest.raises(ValueError, match="tgt_context_key 'tweet_id' that is not a ctx_primary_key"):
        LanguageSynthesizer(tgt_context_key="tweet_id", ctx_primary_key="id").fit(
            tweets.assign(tweet_id=np.arange(len(tweets))), context=pd.DataFrame({"id": [0, 1], "x": [1, 2]}))
