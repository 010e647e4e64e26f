"""Memory of the encoded language records on all tweets, and the cost of tokenizing a part against reading it back.

1. All 20,761 tweets as records (source, retweet_count, favorite_count, created_at, text; prompt is_retweet):
   the bytes held as lists of Python ints (the former ``EncodedRecords.sequences``, measured with tracemalloc)
   against the compact int32 tokens + int64 offsets, and the padded int64 tensor of the in-memory trainer.
2. Streamed training reads each part once per epoch: tokenizing a part (``encode_records``) against loading
   its tokens from the ``.npz`` written once (what ``TokenParts`` does), per 1,000 records.
3. One epoch of ``train`` on 3,000 tweets (source, text, is_retweet; 4 partitions), in memory and streamed
   (the threshold lowered to 0), twice each in alternation: seconds of the epoch and the validation loss.

Run: ``python benchmarks/bench_language_memory.py`` (one torch thread; about three minutes on a busy core).
"""

from __future__ import annotations

import json
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import load

from synthgen.models.language import EncodedRecords, FieldSpec, encode_records, train_tokenizer


def main() -> None:
    torch.set_num_threads(1)
    df = load("tweets")
    tokenizer = train_tokenizer([*df["text"], *df["source"]], vocab_size=5000, min_frequency=20)
    fields = [
        FieldSpec("source", "categorical", categories=sorted(df["source"].unique())),
        FieldSpec("retweet_count", "numeric", min_value=0, max_value=int(df["retweet_count"].max())),
        FieldSpec("favorite_count", "numeric", min_value=0, max_value=int(df["favorite_count"].max())),
        FieldSpec("created_at", "datetime", min_value=df["created_at"].min(), max_value=df["created_at"].max()),
        FieldSpec("text", "text", max_tokens=10**6),
    ]

    def records(part: pd.DataFrame) -> EncodedRecords:
        target = {f.name: part[f.name].tolist() for f in fields}
        return encode_records(fields, tokenizer, target, {"is_retweet": part["is_retweet"].tolist()})

    start = time.perf_counter()
    compact = records(df)
    encode_s = time.perf_counter() - start
    tracemalloc.start()
    as_lists = compact.sequences  # the former layout: one list of Python ints per record
    lists_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del as_lists
    longest = int(compact.lengths.max())
    out = {
        "records": len(compact),
        "tokens": len(compact.tokens),
        "lists_MiB": round(lists_bytes / 2**20, 1),
        "compact_MiB": round(compact.nbytes / 2**20, 2),
        "ratio": round(lists_bytes / compact.nbytes, 1),
        "padded_int64_MiB": round(len(compact) * longest * 8 / 2**20, 1),
        "longest_record_tokens": longest,
    }
    part = df.iloc[:5000]
    start = time.perf_counter()
    part_records = records(part)
    tokenize_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "part.npz"
        np.savez(path, tokens=part_records.tokens, offsets=part_records.offsets,
                 prompt_lengths=part_records.prompt_lengths)
        start = time.perf_counter()
        for _ in range(10):
            with np.load(path) as arrays:
                EncodedRecords.from_arrays(arrays["tokens"], arrays["offsets"], arrays["prompt_lengths"])
        load_s = (time.perf_counter() - start) / 10
    out.update({
        "encode_all_s": round(encode_s, 2),
        "tokenize_ms_per_1k_records": round(1e6 * tokenize_s / len(part), 1),
        "npz_load_ms_per_1k_records": round(1e6 * load_s / len(part), 2),
    })
    print(json.dumps(out, indent=2))
    print(json.dumps(epoch_run(), indent=2))


def epoch_run() -> dict:
    import synthgen as sg
    from synthgen.stages import _language_parts

    tweets = load("tweets").sample(n=3000, random_state=0)[["source", "text", "is_retweet"]].reset_index(drop=True)
    out: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        ws = sg.split(tweets, model_type="LANGUAGE", tgt_encoding_types={"text": "LANGUAGE_TEXT"}, n_partitions=4,
                      workspace_dir=Path(folder) / "ws", random_state=0, verbose=False)
        sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
        sg.encode(workspace_dir=ws, random_state=0, verbose=False)
        default = _language_parts.LANGUAGE_STREAMING_THRESHOLD_BYTES
        try:
            for run, mode in enumerate(["memory", "streamed", "memory", "streamed"]):
                _language_parts.LANGUAGE_STREAMING_THRESHOLD_BYTES = 0 if mode == "streamed" else default
                sg.train(workspace_dir=ws, max_epochs=1, random_state=0, verbose=False)
                history = ws.read_progress()
                out[f"{mode}_{run // 2}"] = {"epoch_s": round(float(history["total_time"].iloc[-1]), 1),
                                             "val_loss": round(float(history["val_loss"].iloc[-1]), 2)}
        finally:
            _language_parts.LANGUAGE_STREAMING_THRESHOLD_BYTES = default
    return out


if __name__ == "__main__":
    main()
