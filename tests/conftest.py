"""Shared fixtures: slices of the real datasets and workspaces."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

# Tiny models train several times faster on one thread than on two busy cores (thread barriers dominate).
torch.set_num_threads(1)

DATA_DIR = Path(os.environ.get("SYNTHGEN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


_BUNDLED = {"adult": "census", "planes": "planes", "flights": "flights"}


def load_dataset(name: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A dataset of ../shared/data, or else the sample of it bundled in synthgen.datasets."""
    path = DATA_DIR / f"{name}.parquet"
    if path.exists():
        return pd.read_parquet(path, columns=columns)
    if name in _BUNDLED:
        from importlib import resources

        with resources.files("synthgen.datasets").joinpath("data", f"{_BUNDLED[name]}.parquet").open("rb") as fh:
            return pd.read_parquet(fh, columns=columns)
    pytest.skip(f"dataset {path} is not available (set SYNTHGEN_DATA_DIR)")


def _read(name: str) -> pd.DataFrame:
    return load_dataset(name)


@pytest.fixture(scope="session")
def adult_full() -> pd.DataFrame:
    return _read("adult")


@pytest.fixture
def adult(adult_full) -> pd.DataFrame:
    """2,000 rows of the adult census table (a fresh copy per test)."""
    return adult_full.sample(n=2000, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="session")
def planes_flights_full() -> tuple[pd.DataFrame, pd.DataFrame]:
    return _read("planes"), _read("flights")


@pytest.fixture
def planes_flights(planes_flights_full) -> tuple[pd.DataFrame, pd.DataFrame]:
    """120 planes and all their flights."""
    planes, flights = planes_flights_full
    some = planes.sample(n=120, random_state=3).reset_index(drop=True)
    return some, flights[flights["tailnum"].isin(some["tailnum"])].reset_index(drop=True)


@pytest.fixture(scope="session")
def tweets_full() -> pd.DataFrame:
    return _read("tweets")


def small_two_tables(n_subjects: int, max_length: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A tiny two-table dataset: ``n_subjects`` contexts (``id``, a two-valued ``kind``) and 1 to ``max_length - 1``
    events each of a skewed three-valued ``x`` (70 / 20 / 10 %)."""
    rng = np.random.default_rng(0)
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "kind": rng.choice(["u", "v"], size=n_subjects)})
    lengths = rng.integers(1, max_length, size=n_subjects)
    tgt = pd.DataFrame({"id": np.repeat(ctx["id"], lengths).to_numpy(),
                        "x": rng.choice(["p", "q", "r"], size=int(lengths.sum()), p=[0.7, 0.2, 0.1])})
    return ctx, tgt


@pytest.fixture
def workspace(tmp_path) -> Path:
    return tmp_path / "ws"


def check_codes(codes: dict, stats: dict, n_rows: int) -> None:
    """Assert the codes contract: sub-columns in the order of the cardinalities, the right dtype, length and range."""
    from synthgen.column_encodings import code_dtype

    assert list(codes) == list(stats["cardinalities"])
    for name, cardinality in stats["cardinalities"].items():
        assert codes[name].dtype == code_dtype(cardinality)
        assert len(codes[name]) == n_rows
        if n_rows:
            assert 0 <= codes[name].min() and codes[name].max() < cardinality, name


def encoding_round_trip(encoding, values, *, protect=False, subjects=None, sequence=None, seed=0):
    """Analyze, reduce, encode and decode ``values``; checks the stats and codes contract on the way."""
    rng = np.random.default_rng(seed)
    subjects = np.arange(len(values)) if subjects is None else subjects
    partial = encoding.analyze(values, subjects, sequence=sequence)
    stats = encoding.reduce([partial], value_protection=protect, rng=rng)
    json.dumps(stats)
    assert stats["encoding_type"] == encoding.encoding_type.value
    assert stats["value_protection"] is protect
    codes = encoding.encode(values, stats, rng=rng, sequence=sequence)
    check_codes(codes, stats, len(values))
    return stats, codes, encoding.decode(codes, stats, rng=rng, sequence=sequence)


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory, tweets_full) -> Path:
    """A stand-in for a local Hugging Face model: a byte-level tokenizer.json and a tiny random Llama."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(tweets_full["text"].head(500), trainer=trainer)
    tokenizer.save(str(folder / "tokenizer.json"))
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # weight init of the throw-away model only
        LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def check_valid(synthetic: pd.DataFrame, stats: dict, original: pd.DataFrame) -> None:
    """Every value of every column lies within the published statistics; dtypes are the original ones."""
    for column, column_stats in stats["columns"].items():
        values = synthetic[column]
        assert values.dtype == original[column].dtype, column
        present = values.dropna()
        if not column_stats["has_nan"]:
            assert len(present) == len(values), column
        kind = column_stats["encoding_type"]
        if kind == "LANGUAGE_CATEGORICAL":
            assert present.astype(str).isin(column_stats["categories"]).all(), column
        elif kind == "LANGUAGE_NUMERIC":
            assert present.between(column_stats["min"], column_stats["max"]).all(), column
            assert (present.round(column_stats["max_scale"]) == present).all(), column
        elif kind == "LANGUAGE_DATETIME":
            assert present.between(pd.Timestamp(column_stats["min"]), pd.Timestamp(column_stats["max"])).all()
        else:
            assert all(isinstance(v, str) and len(v) <= column_stats["nchar_max"] for v in present), column
