"""Experiment: fidelity and speed of the flat ARGN core on the adult census table.

A quick stand-alone encoder (not synthgen's): categoricals → codes (NULL is its own code), integer columns
with < 100 distinct values → codes, other integers → 100 quantile bins (decoded to the bin's left edge).
Train on 80 % with a preset, sample, and report univariate / bivariate accuracy (1 − TVD on 10 quantile
bins or top-10 categories + other, as in mostlyai-qa) against the 20 % holdout and against training data,
plus training seconds, epochs and sampling rows/s.

Usage: ``python benchmarks/bench_argn_core.py --threads 1 [--size medium] [--n-sample 39000]``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import attrs
import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score

from synthgen.models.tabular import ColumnSpec, FlatARGN, build_model_spec, train_model

DATA = "/work/shared/data/adult.parquet"
N_BINS = 100


def encode(df: pd.DataFrame) -> tuple[np.ndarray, list[ColumnSpec], list]:
    """Codes per column, the column specs and a decoder per column."""
    codes, specs, decoders = [], [], []
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_integer_dtype(col) and col.nunique() >= 100:
            edges = np.unique(np.quantile(col.to_numpy(), np.linspace(0, 1, N_BINS + 1)))
            c = np.clip(np.searchsorted(edges, col.to_numpy(), side="right") - 1, 0, len(edges) - 2)
            codes.append(c)
            decoders.append(edges[:-1])
        else:
            cats = pd.Categorical(col)
            c = cats.codes.astype(np.int64)
            values = np.asarray(cats.categories, dtype=object)
            if (c < 0).any():
                values = np.append(values, None)
                c = np.where(c < 0, len(values) - 1, c)
            codes.append(c)
            decoders.append(values)
        specs.append(ColumnSpec(name, ("cat",), (len(decoders[-1]),)))
    return np.stack(codes, axis=1), specs, decoders


def decode(codes: np.ndarray, df_like: pd.DataFrame, decoders: list) -> pd.DataFrame:
    out = {}
    for j, name in enumerate(df_like.columns):
        values = decoders[j][codes[:, j]]
        out[name] = pd.Series(values)
    return pd.DataFrame(out)


def discretize(ref: pd.DataFrame, *frames: pd.DataFrame) -> list[pd.DataFrame]:
    """Bin every column on the reference: 10 quantile bins for numerics, top-10 categories + other."""
    out = [dict() for _ in frames]
    for name in ref.columns:
        col = ref[name]
        if pd.api.types.is_numeric_dtype(col):
            edges = np.unique(np.quantile(col.dropna(), np.linspace(0, 1, 11)))
            for o, f in zip(out, frames, strict=True):
                v = pd.to_numeric(f[name]).to_numpy(dtype=float)
                o[name] = np.where(np.isnan(v), -1, np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2))
        else:
            top = col.astype(object).fillna("(n/a)").value_counts().index[:10]
            for o, f in zip(out, frames, strict=True):
                v = f[name].astype(object).fillna("(n/a)")
                o[name] = np.where(v.isin(top), v.astype(str), "(other)")
    return [pd.DataFrame(o) for o in out]


def accuracy(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float]:
    uni = [1 - 0.5 * a[c].value_counts(normalize=True).sub(b[c].value_counts(normalize=True), fill_value=0).abs().sum() for c in a.columns]
    biv = []
    for c1, c2 in itertools.combinations(a.columns, 2):
        pa = a.groupby([c1, c2]).size() / len(a)
        pb = b.groupby([c1, c2]).size() / len(b)
        biv.append(1 - 0.5 * pa.sub(pb, fill_value=0).abs().sum())
    return float(np.mean(uni)), float(np.mean(biv))


def discriminator_auc(real: np.ndarray, synthetic: np.ndarray, seed: int) -> float:
    """Cross-validated ROC AUC of a gradient-boosting classifier telling real from synthetic code rows.

    Compared in code space (both sides discretised alike) so that the quick decoder does not leak.
    """
    n = min(len(real), len(synthetic))
    x = np.concatenate([real[:n], synthetic[:n]])
    y = np.r_[np.zeros(n), np.ones(n)]
    clf = HistGradientBoostingClassifier(max_iter=200, random_state=seed)
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(clf, x, y, cv=cv, scoring="roc_auc")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", default="medium")
    parser.add_argument("--n-sample", type=int, default=39000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--max-epochs", type=float, default=100.0)
    parser.add_argument("--hidden", type=int, default=None, help="override the preset's head width")
    parser.add_argument("--blocks", type=int, default=None, help="override the preset's residual blocks")
    parser.add_argument("--dropout", type=float, default=None, help="override the preset's dropout")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    df = pd.read_parquet(DATA)
    codes, specs, decoders = encode(df)
    rng = np.random.default_rng(args.seed)
    is_trn = rng.permutation(len(df)) < int(0.8 * len(df))
    trn_all = torch.from_numpy(codes[is_trn])
    n_val = len(trn_all) // 5  # the engine validates on 20 % of the training rows
    gen = torch.Generator().manual_seed(args.seed)
    split = torch.randperm(len(trn_all), generator=gen)
    trn, val = trn_all[split[n_val:]], trn_all[split[:n_val]]

    spec = build_model_spec(specs, size=args.size)
    overrides = {"hidden_dim": args.hidden, "n_blocks": args.blocks, "dropout": args.dropout}
    spec = attrs.evolve(spec, **{k: v for k, v in overrides.items() if v is not None})
    model = FlatARGN(spec, generator=gen)
    n_params = sum(p.numel() for p in model.parameters())
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = train_model(model, trn, val, generator=gen, batch_size=args.batch_size, max_epochs=args.max_epochs)
    train_s, train_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    last = result.history[-1]
    best = min(r["val_loss"] for r in result.history)
    print(
        f"threads={args.threads} size={args.size} params={n_params} batch={result.state['batch_size']} "
        f"epochs={last['epoch']:.1f} stop={result.stop_reason} train_s={train_s:.1f} (cpu {train_cpu_s:.1f}) best_val={best:.4f}",
        flush=True,
    )

    model.sample(1000, generator=gen)
    t0 = time.perf_counter()
    sampled = model.sample(args.n_sample, generator=gen)
    sample_s = time.perf_counter() - t0
    t0, cpu0 = time.perf_counter(), time.process_time()
    model.sample(100_000, generator=gen)
    sample100k_s, sample100k_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0

    syn = decode(sampled.numpy(), df, decoders)
    trn_df, hol_df = df[is_trn].reset_index(drop=True), df[~is_trn].reset_index(drop=True)
    d_trn, d_hol, d_syn = discretize(trn_df, trn_df, hol_df, syn)
    uni_h, biv_h = accuracy(d_syn, d_hol)
    uni_t, biv_t = accuracy(d_syn, d_trn)
    uni_ref, biv_ref = accuracy(d_hol, d_trn)
    auc = discriminator_auc(codes[~is_trn], sampled.numpy(), args.seed)
    print(
        f"discriminator AUC (holdout vs synthetic codes): {auc:.4f}\n"
        f"sample {args.n_sample} rows: {sample_s:.2f}s ({args.n_sample / sample_s:,.0f} rows/s); "
        f"100k rows: {sample100k_s:.2f}s (cpu {sample100k_cpu_s:.2f}s)\n"
        f"vs holdout: uni={uni_h:.4f} biv={biv_h:.4f} overall={(uni_h + biv_h) / 2:.4f}\n"
        f"vs train:   uni={uni_t:.4f} biv={biv_t:.4f} overall={(uni_t + biv_t) / 2:.4f}\n"
        f"holdout vs train (ceiling): uni={uni_ref:.4f} biv={biv_ref:.4f} overall={(uni_ref + biv_ref) / 2:.4f}"
    )


if __name__ == "__main__":
    main()
