"""LANGUAGE tables larger than memory: compact records, streamed epochs and validation, a fit from a parquet folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from synthgen import LanguageSynthesizer
from synthgen.models.language import EncodedRecords, LSTMConfig, LSTMLanguageModel
from synthgen.models.language._train import _RecordTask, _StreamedRecordTask


def _random_records(n: int, seed: int = 0) -> EncodedRecords:
    """``n`` records of 2..9 tokens whose first token is the record's index (so records are told apart)."""
    rng = np.random.default_rng(seed)
    sequences = [[i, *rng.integers(1, 40, rng.integers(1, 9)).tolist()] for i in range(n)]
    return EncodedRecords(sequences, rng.integers(0, 2, n))


class _Parts:
    """Records split into parts held in memory (a RecordParts for the tests)."""

    def __init__(self, records: EncodedRecords, n_parts: int) -> None:
        self.chunks = [records.take(rows) for rows in np.array_split(np.arange(len(records)), n_parts)]
        self.sizes = [len(c) for c in self.chunks]
        self.loaded: list[int] = []

    def load(self, index: int) -> EncodedRecords:
        self.loaded.append(index)
        return self.chunks[index]


def test_compact_records_round_trip():
    sequences = [[5, 1, 2], [7], [3, 3, 3, 3], []]
    records = EncodedRecords(sequences, [1, 0, 2, 0])
    assert records.tokens.dtype == np.int32 and records.offsets.tolist() == [0, 3, 4, 8, 8]
    assert records.sequences == sequences and len(records) == 4
    assert records.take([2, 0]).sequences == [[3, 3, 3, 3], [5, 1, 2]]
    assert records.take([2, 0]).prompt_lengths.tolist() == [2, 1]
    assert EncodedRecords.concat([records.take([1]), records.take([0])]).sequences == [[7], [5, 1, 2]]
    padded, lengths = records.padded(pad_id=-1)
    assert padded.tolist() == [[5, 1, 2, -1], [7, -1, -1, -1], [3, 3, 3, 3], [-1, -1, -1, -1]]
    assert lengths.tolist() == [3, 1, 4, 0]
    with pytest.raises(ValueError, match="3 prompt lengths for 4 records"):
        EncodedRecords(sequences, [1, 0, 2])


def test_a_streamed_epoch_sees_every_record_exactly_once():
    records = _random_records(203)
    parts = _Parts(records, 4)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=210, embedding_size=8, hidden_size=8))
    task = _StreamedRecordTask(model, parts, None, pad_id=0, device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    seen, n_batches = [], 0
    for rows in task.epoch_batches(16, generator):
        batch = task.window.take(rows.numpy())
        seen.extend(map(tuple, batch.sequences))
        n_batches += 1
    assert n_batches == -(-203 // 16)  # as many steps as an in-memory epoch
    assert sorted(seen) == sorted(map(tuple, records.sequences))
    assert sorted(parts.loaded) == [0, 1, 2, 3]
    # a seeded order: the same generator state gives the same epoch, another one a different epoch
    again = [tuple(task.window.take(r.numpy()).sequences[0]) for r in
             task.epoch_batches(16, torch.Generator().manual_seed(0))]
    other = [tuple(task.window.take(r.numpy()).sequences[0]) for r in
             task.epoch_batches(16, torch.Generator().manual_seed(1))]
    first = [tuple(task.window.take(r.numpy()).sequences[0]) for r in
             task.epoch_batches(16, torch.Generator().manual_seed(0))]
    assert again == first != other


def test_streamed_validation_loss_equals_the_in_memory_one():
    records = _random_records(150, seed=1)
    torch.manual_seed(0)
    model = LSTMLanguageModel(LSTMConfig(vocab_size=210, embedding_size=8, hidden_size=8))
    in_memory = _RecordTask(model, records, records, pad_id=0, device=torch.device("cpu")).validation_loss([])
    streamed = _StreamedRecordTask(model, _Parts(records, 1), _Parts(records, 3), pad_id=0,
                                   device=torch.device("cpu")).validation_loss([])
    assert streamed == pytest.approx(in_memory, rel=1e-6)
    assert in_memory > 0


def test_fit_from_a_parquet_folder_streams_above_the_threshold(tmp_path, tweets_full, monkeypatch):
    from synthgen.stages import _language_parts, _language_train

    tweets = tweets_full.sample(n=240, random_state=3)[["source", "text", "is_retweet"]].reset_index(drop=True)
    folder = tmp_path / "tweets"
    folder.mkdir()
    for index, rows in enumerate(np.array_split(np.arange(len(tweets)), 3)):
        tweets.iloc[rows].to_parquet(folder / f"part-{index}.parquet")

    def whole_side(*args, **kwargs):
        raise AssertionError("the whole encoded side was read")

    loaded, sampled = [], []
    monkeypatch.setattr(_language_parts, "LANGUAGE_STREAMING_THRESHOLD_BYTES", 0)
    monkeypatch.setattr(_language_train, "_read_records", whole_side)
    monkeypatch.setattr(_language_parts.TokenParts, "load",
                        lambda self, i, _load=_language_parts.TokenParts.load: loaded.append(i) or _load(self, i))
    monkeypatch.setattr(_language_train, "sample_texts", lambda *a, _sample=_language_parts.sample_texts, **k:
                        sampled.append(k.get("limit")) or _sample(*a, **k))
    synth = LanguageSynthesizer(tgt_encoding_types={"text": "LANGUAGE_TEXT"}, n_partitions=3, max_epochs=2,
                                random_state=0).fit(str(folder))
    assert loaded and sampled, "training did not stream the parts"
    assert not [p for p in synth.workspace_.root.iterdir() if p.name.startswith(".token-parts")]  # scratch removed
    history = synth.workspace_.read_progress()
    assert len(history) == 2 and history["val_loss"].notna().all()
    sample = synth.sample(30)
    assert list(sample.columns) == ["source", "text", "is_retweet"] and len(sample) == 30
    assert set(sample["source"].dropna()) <= set(tweets["source"])
    assert sample["is_retweet"].dtype == bool
    assert sample["text"].map(lambda t: isinstance(t, str) or pd.isna(t)).all()


def test_the_tokenizer_sample_is_bounded_and_seeded(tmp_path, tweets_full):
    import synthgen as sg
    from synthgen.stages._language_parts import sample_texts

    tweets = tweets_full.head(300)[["source", "text"]]
    ws = sg.split(tweets, model_type="LANGUAGE", tgt_encoding_types={"text": "LANGUAGE_TEXT"}, n_partitions=3,
                  workspace_dir=tmp_path / "ws", random_state=0, verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    columns = ["tgt:source", "tgt:text"]
    n_trn = sum(len(ws.read_parquet(p)) for p in ws.partitions(ws.encoded_data, "trn"))
    assert len(sample_texts(ws, columns, np.random.default_rng(0))) == 2 * n_trn  # under the limit: all
    small = sample_texts(ws, columns, np.random.default_rng(0), limit=100)
    assert 100 <= len(small) <= 100 + 2 * 3  # rows rounded up per part
    assert small == sample_texts(ws, columns, np.random.default_rng(0), limit=100)
    assert small != sample_texts(ws, columns, np.random.default_rng(1), limit=100)


def test_no_streaming_under_differential_privacy(tmp_path, tweets_full, monkeypatch):
    import synthgen as sg
    from synthgen.stages import _language_parts, _language_train

    tweets = tweets_full.sample(n=20, random_state=5)[["source", "text"]].reset_index(drop=True)
    ws = sg.split(tweets, model_type="LANGUAGE", tgt_encoding_types={"text": "LANGUAGE_TEXT"}, n_partitions=2,
                  workspace_dir=tmp_path / "ws", random_state=0, verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    read = []
    monkeypatch.setattr(_language_parts, "LANGUAGE_STREAMING_THRESHOLD_BYTES", 0)
    monkeypatch.setattr(_language_train, "_read_records", lambda ws, side, _read=_language_train._read_records:
                        read.append(side) or _read(ws, side))
    monkeypatch.setattr(_language_parts.TokenParts, "__init__", lambda *a, **k: pytest.fail("streamed under DP"))
    dp = {"max_epsilon": 10.0, "noise_multiplier": 1.0, "max_grad_norm": 1.0}
    sg.train(max_epochs=1, batch_size=10, differential_privacy=dp, workspace_dir=ws, random_state=0, verbose=False)
    assert sorted(read) == ["trn", "val"]
    assert ws.has_trained_model()
