"""LANGUAGE tables through the engine stages: split → analyze → encode → train → generate, on tweets."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import check_valid

import synthgen as sg
from synthgen import Workspace

TEXT_TYPES = {"text": "LANGUAGE_TEXT"}


def _tweets(tweets_full, n: int, seed: int) -> pd.DataFrame:
    columns = ["source", "text", "created_at", "retweet_count", "in_reply_to_user_id_str"]
    return tweets_full.sample(n=n, random_state=seed)[columns].reset_index(drop=True)


@pytest.fixture(scope="module")
def two_table(tweets_full):
    tgt = _tweets(tweets_full, 240, seed=5)
    tgt.insert(0, "tweet_id", np.arange(240))
    ctx = pd.DataFrame({"id": np.arange(240), "is_retweet": tweets_full["is_retweet"].sample(240, random_state=5)
                        .to_numpy(), "year": tgt["created_at"].dt.year.to_numpy()})
    return tgt, ctx


@pytest.fixture(scope="module")
def trained(two_table, tmp_path_factory) -> Workspace:
    """A LANGUAGE workspace with a context table, trained one epoch with the default LSTM."""
    tgt, ctx = two_table
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="tweet_id", ctx_primary_key="id", model_type="LANGUAGE",
                  tgt_encoding_types=TEXT_TYPES, workspace_dir=tmp_path_factory.mktemp("lang") / "ws",
                  random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(max_epochs=1, workspace_dir=ws, random_state=0)
    return ws


def test_language_statistics_are_protected(trained, two_table):
    tgt, _ = two_table
    stats = trained.read_stats("tgt")
    columns = stats["columns"]
    assert stats["model_type"] == "LANGUAGE" and not stats["is_sequential"]
    assert {c: s["encoding_type"] for c, s in columns.items()} == {
        "source": "LANGUAGE_CATEGORICAL", "text": "LANGUAGE_TEXT", "created_at": "LANGUAGE_DATETIME",
        "retweet_count": "LANGUAGE_NUMERIC", "in_reply_to_user_id_str": "LANGUAGE_NUMERIC"}
    counts = tgt["source"].value_counts()
    assert set(columns["source"]["categories"]) <= set(counts[counts >= 5].index)
    assert set(counts[counts >= 8].index) <= set(columns["source"]["categories"])
    assert columns["source"]["no_of_rare_categories"] == len(counts) - len(columns["source"]["categories"])
    # extremes are hidden: the published ranges lie strictly inside the data's
    assert tgt["retweet_count"].min() <= columns["retweet_count"]["min"] < columns["retweet_count"]["max"] < (
        tgt["retweet_count"].max())
    assert columns["retweet_count"]["max_scale"] == 0 and columns["in_reply_to_user_id_str"]["has_nan"]
    assert pd.Timestamp(columns["created_at"]["max"]) < tgt["created_at"].max()
    assert columns["created_at"]["has_time"]
    assert columns["text"]["nchar_max"] < tgt["text"].str.len().max()
    assert columns["text"]["nchar_avg"] == pytest.approx(tgt["text"].str.len().mean(), rel=1e-3)


def test_workspace_files(trained):
    parts = trained.partitions(trained.encoded_data, "trn")
    encoded = pd.read_parquet(parts[0])
    assert sorted(encoded.columns) == sorted(["tgt:source", "tgt:text", "tgt:created_at", "tgt:retweet_count",
                                              "tgt:in_reply_to_user_id_str", "ctx:is_retweet", "ctx:year"])
    sources = set(pd.concat([pd.read_parquet(p) for p in trained.partitions(trained.encoded_data)])["tgt:source"])
    assert sources == {*trained.read_stats("tgt")["columns"]["source"]["categories"], "_RARE_"}
    assert encoded["tgt:created_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    files = {p.name for p in trained.model_data.iterdir()}
    assert {"model-configs.json", "tokenizer.json", "model-weights.pt", "training-state.pt",
            "progress-messages.csv"} <= files
    config = trained.read_json(trained.model_data / "model-configs.json")
    assert config["model_id"] == "MOSTLY_AI/LSTMFromScratch-3m" and config["model_kind"] == "lstm"


def test_generate_valid_records_for_the_training_context(trained, two_table):
    tgt, _ = two_table
    sg.generate(workspace_dir=trained, random_state=1)
    synthetic = sg.read_synthetic_data(trained)
    assert list(synthetic.columns) == list(tgt.columns)
    assert len(synthetic) == len(tgt) and synthetic["tweet_id"].is_unique
    assert set(synthetic["tweet_id"]) == set(tgt["tweet_id"])
    check_valid(synthetic, trained.read_stats("tgt"), tgt)


def test_generate_with_new_context_and_seeds(trained, two_table):
    tgt, ctx = two_table
    new_ctx = pd.DataFrame({"id": np.arange(1000, 1060), "is_retweet": [True, False] * 30, "year": 2016})
    seeds = pd.DataFrame({"tweet_id": np.arange(1059, 999, -1), "source": ["Twitter for iPhone", "anything"] * 30,
                          "retweet_count": np.arange(60) * 10**6})
    sg.generate(ctx_data=new_ctx, seed_data=seeds, workspace_dir=trained, random_state=2, batch_size=25)
    synthetic = sg.read_synthetic_data(trained)
    assert len(trained.partitions(trained.synthetic_data)) == 3
    assert synthetic["tweet_id"].tolist() == new_ctx["id"].tolist()
    expected = seeds.set_index("tweet_id").loc[new_ctx["id"]]
    assert synthetic["source"].tolist() == expected["source"].tolist()  # verbatim, even outside the categories
    assert synthetic["retweet_count"].tolist() == expected["retweet_count"].tolist()
    assert synthetic["retweet_count"].dtype == tgt["retweet_count"].dtype
    check_valid(synthetic.drop(columns=["source", "retweet_count"]).assign(
        source=tgt["source"].iloc[0], retweet_count=tgt["retweet_count"].iloc[0]), trained.read_stats("tgt"), tgt)


def test_same_seed_same_records(trained):
    frames = []
    for _ in range(2):
        sg.generate(sample_size=20, workspace_dir=trained, random_state=3)
        frames.append(sg.read_synthetic_data(trained))
    pd.testing.assert_frame_equal(*frames)


def test_resume_continues_training(trained, tmp_path):
    ws = Workspace(shutil.copytree(trained.root, tmp_path / "ws"))
    before = pd.read_csv(ws.model_data / "progress-messages.csv")
    sg.train(max_epochs=2, model_state_strategy="RESUME", workspace_dir=ws, random_state=0)
    after = pd.read_csv(ws.model_data / "progress-messages.csv")
    assert len(before) == 1 and len(after) == 2
    pd.testing.assert_frame_equal(after.head(1), before)
    sg.train(max_epochs=1, model_state_strategy="REUSE", workspace_dir=ws, random_state=0)
    assert len(pd.read_csv(ws.model_data / "progress-messages.csv")) == 1


def test_training_stops_when_progress_says_so(trained, tmp_path):
    ws = Workspace(shutil.copytree(trained.root, tmp_path / "ws"))
    messages = []

    def stop(total=None, completed=None, advance=None, message=None):
        if message is not None:
            messages.append(message)
            return {"stopExecution": True}
        return None

    sg.train(max_epochs=5, workspace_dir=ws, update_progress=stop, random_state=0)
    assert len(pd.read_csv(ws.model_data / "progress-messages.csv")) == 1 and messages


def test_hf_model_through_the_stages(tiny_hf_model, tweets_full, tmp_path):
    tgt = _tweets(tweets_full, 64, seed=9)[["source", "text", "retweet_count"]]
    ws = sg.split(tgt, model_type="LANGUAGE", tgt_encoding_types=TEXT_TYPES, workspace_dir=tmp_path / "ws",
                  random_state=0)
    sg.analyze(value_protection=False, workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(model=str(tiny_hf_model), max_epochs=1, workspace_dir=ws, random_state=0)
    assert (ws.model_data / "adapter" / "adapter_config.json").is_file()
    assert ws.read_json(ws.model_data / "model-configs.json")["model_kind"] == "hf"
    sg.generate(sample_size=40, workspace_dir=ws, random_state=0)
    check_valid(sg.read_synthetic_data(ws), ws.read_stats("tgt"), tgt)


# -- refusals --------------------------------------------------------------------------------------------

def test_all_null_text_column_is_refused(tweets_full, tmp_path):
    tgt = _tweets(tweets_full, 40, seed=1).assign(text=None)
    ws = sg.split(tgt, model_type="LANGUAGE", tgt_encoding_types=TEXT_TYPES, workspace_dir=tmp_path / "ws")
    with pytest.raises(ValueError, match=r"Column 'text' of tgt_data: .*LANGUAGE_TEXT.* every value is NULL"):
        sg.analyze(workspace_dir=ws)
    assert not ws.stats_path("tgt").exists()


def test_unknown_model_path_is_refused(trained, tmp_path):
    with pytest.raises(ValueError, match=r"The 'model' parameter of train must be .*folder of a local Hugging "
                                         r"Face causal LM.*Got '.*nowhere' instead"):
        sg.train(model=str(tmp_path / "nowhere"), workspace_dir=trained)
    with pytest.raises(ValueError, match="LANGUAGE table, but model 'small' is a TABULAR model"):
        sg.train(model="small", workspace_dir=trained)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty' is no Hugging Face causal LM .* lacks config.json and "
                                                "tokenizer.json"):
        sg.train(model=str(tmp_path / "empty"), workspace_dir=trained)
    assert (trained.model_data / "model-weights.pt").is_file()  # the trained model is untouched


def test_missing_context_key_is_refused(trained):
    with pytest.raises(ValueError, match=r"^ctx_data lacks the context columns \['id'\]; it needs the context key "
                                         r"'id' and the columns \['is_retweet', 'year'\]\.$"):
        sg.generate(ctx_data=pd.DataFrame({"is_retweet": [True], "year": [2016]}), workspace_dir=trained)
    with pytest.raises(ValueError, match="rebalancing is only applicable to TABULAR models"):
        sg.generate(rebalancing={"column": "source", "probabilities": {"TweetDeck": 0.5}}, workspace_dir=trained)
    with pytest.raises(ValueError, match="holds a LANGUAGE model; this needs a TABULAR one"):
        sg.predict_proba(pd.DataFrame({"text": ["hi"]}), "source", workspace_dir=trained)


@pytest.mark.parametrize("keys, message", [
    ([3, 4, None, 6], r"^ctx_data's primary key 'id' has 1 NULL values; keys must not be NULL\.$"),
    ([3, 4, 5, 4], r"^ctx_data's primary key 'id' is not unique: 1 duplicate values, e.g\. 4\.$"),
])
def test_null_or_duplicate_context_keys_are_refused(trained, keys, message):
    ctx = pd.DataFrame({"id": pd.array(keys, dtype="Int64"), "is_retweet": False, "year": 2016})
    with pytest.raises(ValueError, match=message):  # checked on the whole table, not only the rows asked for
        sg.generate(ctx_data=ctx, sample_size=2, workspace_dir=trained)


def test_context_key_not_in_context_table_is_refused(two_table, tmp_path):
    tgt, ctx = two_table
    with pytest.raises(ValueError, match="tgt_context_key 'tweet_id' that is not a ctx_primary_key"):
        sg.split(tgt, ctx_data=ctx.iloc[1:], tgt_context_key="tweet_id", ctx_primary_key="id",
                 model_type="LANGUAGE", workspace_dir=tmp_path / "ws")
