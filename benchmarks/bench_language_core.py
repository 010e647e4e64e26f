"""Experiment: decoding speed of the language core (stateful steps against re-running the prefix) and a
short end-to-end run on tweets.

1. Raw decoding, B rows, a P-token prompt, N new tokens, sampled at temperature 1:
   - LSTM at the default size (vocabulary 5,000, ≈3.1M parameters): ``step`` carrying (h, c) against
     re-running the LSTM over the whole prefix for every token (the reference engine's way; the output
     layer is applied to the last position only, which favours the re-run);
   - a small random Llama (hidden 128, 2 layers): ``step`` with the KV cache against re-running the prefix.
2. Tweets: a 5,000-token BPE tokenizer and a default LSTM trained for ``--train-seconds`` on 2,000 tweets
   (source, retweet_count, favorite_count, created_at, text; is_retweet as context), then
   ``sample_records`` for ``--n-sample`` rows: rows/s, tokens/s, the share of valid values, a few texts.

Usage: ``python benchmarks/bench_language_core.py --threads 1 [--batch 128] [--new-tokens 100]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import pandas as pd
import torch
from _common import load

from synthgen.models.language import (
    EncodedRecords,
    FieldSpec,
    HFLanguageModel,
    LSTMConfig,
    LSTMLanguageModel,
    encode_prompts,
    encode_records,
    is_valid,
    sample_from_logits,
    sample_records,
    train_language_model,
    train_tokenizer,
)


def decode_stateful(model, prompt: torch.Tensor, new_tokens: int, generator: torch.Generator) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        logits, state = model.step(prompt, None)
        for _ in range(new_tokens):
            token = sample_from_logits(logits[:, -1], None, generator=generator)
            logits, state = model.step(token.unsqueeze(1), state)
    return time.perf_counter() - start


def decode_rerun(model, prompt: torch.Tensor, new_tokens: int, generator: torch.Generator) -> float:
    start = time.perf_counter()
    sequence = prompt
    with torch.no_grad():
        for _ in range(new_tokens):
            if isinstance(model, LSTMLanguageModel):
                hidden, _ = model.lstm(model.embedding(sequence))
                last = model.head(hidden[:, -1])
            else:
                last = model.model(input_ids=sequence, use_cache=False, logits_to_keep=1).logits[:, -1]
            token = sample_from_logits(last, None, generator=generator)
            sequence = torch.cat([sequence, token.unsqueeze(1)], dim=1)
    return time.perf_counter() - start


def raw_decoding(args) -> dict:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    vocab = 5000
    prompt = torch.randint(5, vocab, (args.batch, args.prompt_tokens))
    out = {}
    lstm = LSTMLanguageModel(LSTMConfig(vocab_size=vocab)).eval()
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    with tempfile.TemporaryDirectory() as folder:
        LlamaForCausalLM(config).save_pretrained(folder)
        llama = HFLanguageModel.from_pretrained(folder, lora=False).eval()
    for name, model in (("lstm", lstm), ("llama", llama)):
        tokens = args.batch * args.new_tokens
        stateful = decode_stateful(model, prompt, args.new_tokens, torch.Generator().manual_seed(0))
        rerun = decode_rerun(model, prompt, args.new_tokens, torch.Generator().manual_seed(0))
        out[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "stateful_s": round(stateful, 2),
            "rerun_s": round(rerun, 2),
            "speedup": round(rerun / stateful, 1),
            "stateful_tokens_per_s": round(tokens / stateful),
            "rerun_tokens_per_s": round(tokens / rerun),
        }
    return out


def tweets_run(args) -> dict:
    df = load("tweets").sample(n=2000 + args.n_sample, random_state=0).reset_index(drop=True)
    trn_df, val_df = df.iloc[:1600], df.iloc[1600:2000]
    tokenizer = train_tokenizer([*trn_df["text"], *trn_df["source"]], vocab_size=5000, min_frequency=20)
    fields = [
        FieldSpec("source", "categorical", categories=sorted(trn_df["source"].unique())),
        FieldSpec("retweet_count", "numeric", min_value=0, max_value=int(trn_df["retweet_count"].max())),
        FieldSpec("favorite_count", "numeric", min_value=0, max_value=int(trn_df["favorite_count"].max())),
        FieldSpec(
            "created_at",
            "datetime",
            min_value=trn_df["created_at"].min(),
            max_value=trn_df["created_at"].max(),
        ),
        FieldSpec("text", "text", max_tokens=96),
    ]

    def records(part: pd.DataFrame) -> EncodedRecords:
        target = {f.name: part[f.name].tolist() for f in fields}
        return encode_records(fields, tokenizer, target, {"is_retweet": part["is_retweet"].tolist()})

    model = LSTMLanguageModel(LSTMConfig(vocab_size=tokenizer.vocab_size))
    start = time.perf_counter()
    result = train_language_model(
        model,
        records(trn_df),
        records(val_df),
        pad_id=tokenizer.pad_id,
        max_training_time_s=args.train_seconds,
        generator=torch.Generator().manual_seed(0),
    )
    train_s = time.perf_counter() - start
    n = args.n_sample
    prompts = encode_prompts(tokenizer, {"is_retweet": df["is_retweet"].iloc[2000:].tolist()}, n)
    start = time.perf_counter()
    out = sample_records(
        model, tokenizer, fields, prompts, batch_size=args.batch, generator=torch.Generator().manual_seed(1)
    )
    sample_s = time.perf_counter() - start
    generated = encode_records(fields, tokenizer, out)
    n_tokens = sum(len(s) - p for s, p in zip(generated.sequences, generated.prompt_lengths, strict=True))
    return {
        "vocab_size": tokenizer.vocab_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_s": round(train_s, 1),
        "epochs": round(result.history[-1]["epoch"], 2),
        "val_loss_first": round(result.history[0]["val_loss"], 1),
        "val_loss_best": round(
            min(h["val_loss"] for h in result.history if h["val_loss"] == h["val_loss"]), 1
        ),
        "sample_s": round(sample_s, 2),
        "rows_per_s": round(n / sample_s, 1),
        "tokens_per_s": round(n_tokens / sample_s),
        "valid_share": {f.name: sum(is_valid(f, v) for v in out[f.name]) / n for f in fields},
        "examples": out["text"][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=20)
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--train-seconds", type=float, default=60.0)
    parser.add_argument("--n-sample", type=int, default=256)
    parser.add_argument("--skip-tweets", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps({"raw_decoding": raw_decoding(args)}, indent=2), flush=True)
    if not args.skip_tweets:
        print(json.dumps({"tweets": tweets_run(args)}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
