"""Experiment: ``TabularSynthesizer`` on tweets with its free-text column, end to end.

``--rows`` tweets (default 2,000; columns source, text, created_at, retweet_count, favorite_count,
in_reply_to_user_id_str, is_retweet), ``text`` inferred as free text, ``--minutes`` of training budget
(TabularARGN at most 25 %, the LSTM the rest), then ``--n-sample`` rows. Prints: the free-text columns found,
the time of each model and its epochs, sampling rows/s, the NULL share of ``text`` real vs synthetic, the mean
text length real vs synthetic, whether dtypes and column order match, peak memory, and a few texts.

Usage: ``python benchmarks/bench_tabular_text.py --threads 1 [--rows 2000] [--minutes 2] [--n-sample 500]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from _common import load, peak_rss_mb

from synthgen import TabularSynthesizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--n-sample", type=int, default=500)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tweets = load("tweets").sample(n=args.rows, random_state=0).reset_index(drop=True)
    start = time.perf_counter()
    synth = TabularSynthesizer(max_training_time=args.minutes, n_threads=args.threads, verbose=False,
                               random_state=0).fit(tweets)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    synthetic = synth.sample(args.n_sample)
    sample_s = time.perf_counter() - start
    figures = {
        "rows": args.rows, "budget_min": args.minutes, "free_text_columns": synth.text_columns_,
        "fit_s": round(fit_s, 1),
        "tabular_epochs": len(synth.history_), "tabular_train_s": float(synth.history_["total_time"].iloc[-1]),
        "text_epochs": len(synth.text_history_), "text_train_s": float(synth.text_history_["total_time"].iloc[-1]),
        "text_val_loss": [round(v, 1) for v in synth.text_history_["val_loss"]],
        "sample_rows_per_s": round(args.n_sample / sample_s, 1),
        "text_null_share_real": round(float(tweets["text"].isna().mean()), 4),
        "text_null_share_synthetic": round(float(synthetic["text"].isna().mean()), 4),
        "text_mean_chars_real": round(float(tweets["text"].str.len().mean()), 1),
        "text_mean_chars_synthetic": round(float(synthetic["text"].str.len().mean()), 1),
        "dtypes_and_order_match": bool(synthetic.dtypes.equals(tweets.dtypes)),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    print(json.dumps(figures, indent=1))
    for _, row in synthetic.head(5).iterrows():
        print(f"{row['source']!r:24} {row['retweet_count']:>6} {row['text']!r}")


if __name__ == "__main__":
    main()
