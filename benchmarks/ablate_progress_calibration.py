"""The sequential calibration by progress on flights, on fixed-epoch models: how a trending column (`month`)
progresses along the planes' sequences, and every numeric column's KS ratio to the holdout's.

The split is `bench_sequential.py`'s (planes 80/20, seed 0). Fit a model once at a fixed number of epochs and save
it, then compare calibrations of the same network (each sampled for the training planes with several seeds):

    PYTHONPATH=. python benchmarks/ablate_progress_calibration.py fit --epochs 5 --out /tmp/m5.joblib
    PYTHONPATH=. python benchmarks/ablate_progress_calibration.py compare /tmp/m5.joblib \\
        --variants trained,per-code:7,progress:7 --seeds 1,11,21

Variants: `trained` (the calibration fitted at training), `per-code:SEED` (recalibrated with pilot seed SEED, one
offset per code for every column: the calibration before progress buckets), `progress:SEED` (recalibrated with
trending columns fitted per progress bucket). The progress targets are counted here from the encoded training
flights, so models saved before the change compare too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import flights_split, ks_distance  # noqa: E402

FIFTHS = 5


def split() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training planes, training flights and holdout flights, as in ``bench_sequential.py``."""
    trn_planes, _, trn, holdout = flights_split()
    return trn_planes, trn, holdout


def values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(float, na_value=np.nan)


def progression(flights: pd.DataFrame, column: str = "month") -> dict[str, float]:
    """How ``column`` moves along each plane's flights (in the order given)."""
    by_plane = flights.groupby("tailnum", sort=False)[column]
    values = flights[column].to_numpy(float)
    position = flights.groupby("tailnum", sort=False).cumcount().to_numpy()
    fifth = np.minimum(position * FIFTHS // by_plane.transform("size").to_numpy(), FIFTHS - 1)
    previous = by_plane.shift(1)
    moved = previous.notna()
    last = by_plane.last()
    figures = {"first mean": by_plane.first().mean(), "last mean": last.mean(),
               "last = max share": float((last == flights[column].max()).mean()),
               "distinct per plane": by_plane.nunique().mean(), "flights per plane": by_plane.size().mean(),
               "changes share": float((flights[column] != previous)[moved].mean()),
               "backwards share": float((flights[column] < previous)[moved].mean())}
    for q in range(FIFTHS):
        figures[f"mean at fifth {q + 1}"] = float(values[fifth == q].mean())
    return figures


def fit(options) -> None:
    import joblib
    import torch

    from synthgen import TabularSynthesizer

    torch.set_num_threads(1)
    trn_planes, trn, _ = split()
    start = time.perf_counter()
    synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum", max_epochs=options.epochs,
                               random_state=options.seed).fit(trn, context=trn_planes)
    print(json.dumps({"train_s": time.perf_counter() - start, "epochs": float(synth.history_["epoch"].iloc[-1])}))
    joblib.dump(synth, options.out)


def compare(options) -> None:
    import joblib
    import torch

    from synthgen.column_encodings import SequenceIndex
    from synthgen.domain import RareCategoryReplacementMethod
    from synthgen.models.tabular._calibration import (
        calibration_subjects,
        fit_sequential_offsets,
        trending_sub_columns,
    )
    from synthgen.stages._codec import encode_table

    torch.set_num_threads(1)
    trn_planes, trn, holdout = split()
    numeric = [c for c in trn.columns if pd.api.types.is_numeric_dtype(trn[c]) and trn[c].nunique() > 2]
    holdout_ks = {c: ks_distance(values(holdout, c), values(trn, c)) for c in numeric}
    synth = joblib.load(options.model)
    generator = synth._generator_for(None)
    model = generator.model
    # the progress targets from the training flights, grouped by plane in the context order
    subject = pd.Index(trn_planes["tailnum"]).get_indexer(trn["tailnum"])
    order = np.argsort(subject, kind="stable")
    codes = encode_table(trn.iloc[order].reset_index(drop=True), generator.columns, table="tgt",
                         rng=np.random.default_rng(0), sequence=SequenceIndex(subject[order]))
    steps = torch.as_tensor(np.stack([codes[n] for n in generator._sub_names], axis=1).astype(np.int64))
    lengths = torch.as_tensor(np.bincount(subject, minlength=len(trn_planes)))
    targets = model.progress_code_counts(steps, lengths).double()
    trending = trending_sub_columns(targets, model.step_model.spec.cardinalities)
    print("trending sub-columns:", [generator._sub_names[s] for s in trending], flush=True)
    _, context = generator._context(trn_planes, None, np.random.default_rng(0), ("context", "n"))
    context = torch.as_tensor(context.astype(np.int64))
    fixed = generator._fixed_probs(RareCategoryReplacementMethod.SAMPLE, None, None)
    suppressed = {s: [c for c, p in probs.items() if p == 0.0] for s, probs in fixed.items()}
    column_order = generator._column_order([], None, None)
    trained = (model.step_model.sampling_offsets.clone(), model.progress_offsets.clone())
    table = {"training": progression(trn, options.column)}
    for variant in options.variants.split(","):
        kind, _, seed = variant.partition(":")
        start = time.perf_counter()
        if kind == "trained":
            model.step_model.sampling_offsets.copy_(trained[0])
            model.progress_offsets.copy_(trained[1])
        else:
            model.progress_counts.copy_(targets if kind == "progress" else torch.zeros_like(targets))
            fit_sequential_offsets(model, context, n_subjects=calibration_subjects(len(trn_planes), len(trn)),
                                   order=column_order, suppressed=suppressed,
                                   uncalibrated=generator._set_after_drawing(column_order),
                                   generator=torch.Generator().manual_seed(int(seed)))
        print(f"{variant}: calibration {time.perf_counter() - start:.0f} s", flush=True)
        for sample_seed in (int(s) for s in options.seeds.split(",")):
            sample = synth.sample(context=trn_planes, random_state=sample_seed)
            ratios = {c: ks_distance(values(sample, c), values(trn, c)) / holdout_ks[c]
                      for c in numeric}
            table[f"{variant}/{sample_seed}"] = progression(sample, options.column) | {
                f"KS ratio {c}": r for c, r in ratios.items()} | {
                "columns <= 1.5x": sum(r <= 1.5 for r in ratios.values()), "largest ratio": max(ratios.values())}
    print(pd.DataFrame(table).round(3).to_string(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    fitting = commands.add_parser("fit", help="fit a model at fixed epochs and save it with joblib")
    fitting.add_argument("--epochs", type=float, required=True)
    fitting.add_argument("--seed", type=int, default=0)
    fitting.add_argument("--out", required=True)
    comparing = commands.add_parser("compare", help="compare calibrations of one saved model")
    comparing.add_argument("model")
    comparing.add_argument("--variants", default="trained,per-code:7,progress:7")
    comparing.add_argument("--seeds", default="1,11,21")
    comparing.add_argument("--column", default="month", help="the trending column whose progression to print")
    options = parser.parse_args()
    {"fit": fit, "compare": compare}[options.command](options)


if __name__ == "__main__":
    main()
