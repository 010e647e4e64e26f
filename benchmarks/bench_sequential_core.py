"""Experiment: training and generation speed and basic fidelity of the sequential ARGN core on planes + flights.

The data goes through synthgen's own stages (split 80/20 by plane, analyze, encode; ``time_hour`` as
TABULAR_DATETIME_RELATIVE), then the encoded lists are read back into the model's flat layout (the
end-of-sequence step stripped). A :class:`SequentialARGN` trains on the 80 % of planes with one torch
thread and generates one sequence for every one of the 3,322 planes. Reported: training seconds, epochs,
best validation loss (nats per plane), generation seconds, and on codes (no decoding):

- sequence lengths: 1 - TVD over 10 quantile bins of the original lengths;
- carrier consistency: the share of planes with flights whose flights all have one carrier;
- time order: the share of consecutive flights whose gap is non-negative (always 1 under the relative
  encoding, which has no sign sub-column for this data), and 1 - TVD of the gaps in whole days
  (``7 * itt_week + itt_day``, values above 30 pooled).

Usage: ``python benchmarks/bench_sequential_core.py --threads 1 [--size medium] [--max-epochs 100]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from _common import load

import synthgen as sg
from synthgen.models.tabular import SequenceData, SequentialARGN, train_sequential_model
from synthgen.models.tabular._bundle import column_specs

MAX_GAP_DAYS = 30


def prepare_workspace(ws: Path) -> None:
    """Split, analyze and encode planes + flights into ``ws``."""
    sg.split(
        load("flights"),
        ctx_data=load("planes"),
        tgt_context_key="tailnum",
        ctx_primary_key="tailnum",
        tgt_encoding_types={"time_hour": "TABULAR_DATETIME_RELATIVE"},
        workspace_dir=ws,
        random_state=0,
    )
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)


def read_part(path: Path, ctx_names: list[str], tgt_names: list[str]) -> SequenceData:
    """One encoded part as :class:`SequenceData`: context codes, steps without the end step, lengths."""
    table = pq.read_table(path)
    lengths = np.array([lst[0] for lst in table.column("tgt:/__slen").to_pylist()], dtype=np.int64)
    lists = table.column(tgt_names[0]).combine_chunks()
    offsets = lists.offsets.to_numpy()
    keep = np.ones(offsets[-1], dtype=bool)
    keep[offsets[1:] - 1] = False  # the end-of-sequence step closes every list
    steps = np.stack([table.column(n).combine_chunks().flatten().to_numpy()[keep] for n in tgt_names], axis=1)
    context = np.stack([table.column(n).to_numpy() for n in ctx_names], axis=1).astype(np.int64)
    return SequenceData(torch.from_numpy(context), torch.from_numpy(steps.astype(np.int64)), torch.from_numpy(lengths))


def quantile_tvd_accuracy(original: np.ndarray, synthetic: np.ndarray, n_bins: int = 10) -> float:
    edges = np.unique(np.quantile(original, np.linspace(0, 1, n_bins + 1))[1:-1])
    p = np.bincount(np.searchsorted(edges, original, side="right"), minlength=len(edges) + 1) / len(original)
    q = np.bincount(np.searchsorted(edges, synthetic, side="right"), minlength=len(edges) + 1) / len(synthetic)
    return 1.0 - 0.5 * float(np.abs(p - q).sum())


def single_carrier_share(steps: np.ndarray, lengths: np.ndarray, carrier: int) -> float:
    subject = np.repeat(np.arange(len(lengths)), lengths)
    codes = steps[:, carrier]
    lo = np.full(len(lengths), np.iinfo(np.int64).max)
    hi = np.full(len(lengths), -1)
    np.minimum.at(lo, subject, codes)
    np.maximum.at(hi, subject, codes)
    has = lengths > 0
    return float((lo[has] == hi[has]).mean())


def gap_days(steps: np.ndarray, lengths: np.ndarray, week: int, day: int) -> np.ndarray:
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])[lengths > 0]
    not_first = np.ones(len(steps), dtype=bool)
    not_first[first] = False
    return np.minimum(7 * steps[not_first, week] + steps[not_first, day], MAX_GAP_DAYS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--size", default="medium")
    parser.add_argument("--max-epochs", type=float, default=100.0)
    parser.add_argument("--max-time", type=float, default=float("inf"), help="training seconds")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--workspace", default=None, help="reuse an encoded workspace (created if missing)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tmp = None if args.workspace else tempfile.TemporaryDirectory()
    ws = Path(args.workspace or tmp.name) / "ws"
    start = time.perf_counter()
    if not (ws / "OriginalData" / "encoded-data").exists():
        prepare_workspace(ws)
    prep_s = time.perf_counter() - start
    stats = json.loads((ws / "ModelStore" / "tgt-stats" / "stats.json").read_text())
    ctx_stats = json.loads((ws / "ModelStore" / "ctx-stats" / "stats.json").read_text())
    columns, context = column_specs(stats["columns"]), column_specs(ctx_stats["columns"])
    tgt_names = [s for c in columns for s in c.sub_columns]
    ctx_names = [s for c in context for s in c.sub_columns]
    encoded = ws / "OriginalData" / "encoded-data"
    trn = read_part(encoded / "part.000000-trn.parquet", ctx_names, tgt_names)
    val = read_part(encoded / "part.000000-val.parquet", ctx_names, tgt_names)

    gen = torch.Generator().manual_seed(args.seed)
    model = SequentialARGN.from_preset(
        columns,
        context=context,
        max_len=stats["seq_len"]["max"],
        median_len=stats["seq_len"]["median"],
        size=args.size,
        generator=gen,
    )
    n_params = sum(p.numel() for p in model.parameters())
    result = train_sequential_model(
        model,
        trn,
        val,
        max_sequence_window=args.window,
        max_epochs=args.max_epochs,
        max_training_time_s=args.max_time,
        batch_size=args.batch_size,
        generator=gen,
    )
    history = result.history
    best_val = min(r["val_loss"] for r in history if np.isfinite(r["val_loss"]))

    all_context = torch.cat([trn.context, val.context])
    start = time.perf_counter()
    lengths, steps = model.sample(all_context, generator=gen)
    gen_s = time.perf_counter() - start

    orig_lengths = torch.cat([trn.lengths, val.lengths]).numpy()
    orig_steps = torch.cat([trn.steps, val.steps]).numpy()
    syn_lengths, syn_steps = lengths.numpy(), steps.numpy()
    carrier = tgt_names.index(next(s for s in tgt_names if s.startswith(f"tgt:{stats['columns']['carrier']['argn_column']}__")))
    time_prefix = f"tgt:{stats['columns']['time_hour']['argn_column']}__"
    week, day = tgt_names.index(time_prefix + "itt_week"), tgt_names.index(time_prefix + "itt_day")
    neg = [i for i, s in enumerate(tgt_names) if s == time_prefix + "itt_neg"]
    in_order = 1.0 if not neg else float((syn_steps[:, neg[0]] == 0).mean())
    orig_gaps, syn_gaps = gap_days(orig_steps, orig_lengths, week, day), gap_days(syn_steps, syn_lengths, week, day)
    gap_p = np.bincount(orig_gaps, minlength=MAX_GAP_DAYS + 1) / len(orig_gaps)
    gap_q = np.bincount(syn_gaps, minlength=MAX_GAP_DAYS + 1) / max(1, len(syn_gaps))

    report = {
        "threads": args.threads,
        "size": model.spec.size,
        "parameters": n_params,
        "prepare_s": round(prep_s, 1),
        "trn_planes": trn.n_subjects,
        "trn_flights": len(trn.steps),
        "train_s": round(history[-1]["total_time"], 1),
        "epochs": round(history[-1]["epoch"], 2),
        "stop_reason": result.stop_reason,
        "best_val_loss_per_plane": round(best_val, 2),
        "best_val_loss_per_flight": round(best_val * val.n_subjects / max(1, len(val.steps)), 3),
        "generated_planes": len(syn_lengths),
        "generated_flights": int(syn_lengths.sum()),
        "original_flights": int(orig_lengths.sum()),
        "generate_s": round(gen_s, 2),
        "length_accuracy": round(quantile_tvd_accuracy(orig_lengths, syn_lengths), 3),
        "single_carrier_share": round(single_carrier_share(syn_steps, syn_lengths, carrier), 3),
        "single_carrier_share_original": round(single_carrier_share(orig_steps, orig_lengths, carrier), 3),
        "time_in_order": in_order,
        "gap_days_accuracy": round(1.0 - 0.5 * float(np.abs(gap_p - gap_q).sum()), 3),
    }
    for key, value in report.items():
        print(f"{key:>30}: {value}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    pa.set_cpu_count(1)
    main()
