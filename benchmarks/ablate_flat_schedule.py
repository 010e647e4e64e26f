"""Ablations of the flat model's training schedule: one fit, several samples of it, as in docs/benchmarks.md.

Fits ``TabularSynthesizer`` once on the 80 % training split of bench_tabular.py (seed 0 split; flights: its 50,000
rows drawn with seed 0 as one flat table) with one schedule variant, then draws ``--samples`` samples of the
training size (random states seed + 2, seed + 3, ...; the first is bench_tabular.py's evaluated sample) and
evaluates each with ``synthgen.evaluate(..., random_state=0)``, which reproduces bench_tabular.py's figures to the
last digit. Prints the training seconds, epochs and stop reason, each sample's overall accuracy, discriminator AUC
and DCR share, their means, the median DCR share of the first sample over 3 evaluations, and the KS distances of
every sample's numeric columns next to the holdout's.

    python benchmarks/ablate_flat_schedule.py                                    # the default schedule
    python benchmarks/ablate_flat_schedule.py --variant early-stopping --seed 1  # the schedule before the floor phase
    python benchmarks/ablate_flat_schedule.py --floor-epochs 12 --data planes    # another floor-phase length

Variants: ``default`` (``train``'s schedule: early stopping above the learning-rate floor, ``--floor-epochs``
averaged epochs at the floor); ``early-stopping``: ``train_model(floor_epochs=None)``, early stopping throughout
(the default before issue 15's fifth round). Run it with one torch thread (``OMP_NUM_THREADS=1``) as
bench_tabular.py does.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load, print_numeric_ks  # noqa: E402


def _patch_schedule(options: argparse.Namespace) -> None:
    """Route the flat model's training through the chosen variant (the stage imports ``train_model`` by name)."""
    import synthgen.stages._train as train_stage
    from synthgen.models.tabular import _trainer

    floor_epochs = None if options.variant == "early-stopping" else options.floor_epochs
    train_stage.train_model = functools.partial(_trainer.train_model, floor_epochs=floor_epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="default", choices=["default", "early-stopping"])
    parser.add_argument("--floor-epochs", type=int, default=20, help="epochs at the learning-rate floor (default)")
    parser.add_argument("--data", default="adult", choices=["adult", "planes", "flights"])
    parser.add_argument("--seed", type=int, default=0, help="the synthesizer's random_state")
    parser.add_argument("--samples", type=int, default=3, help="samples of the fitted model to evaluate")
    options = parser.parse_args()

    import numpy as np
    import torch

    from synthgen import TabularSynthesizer, evaluate

    torch.set_num_threads(1)
    _patch_schedule(options)
    table = load(options.data)
    if options.data == "flights":
        table = table.sample(n=50_000, random_state=0).reset_index(drop=True)
    elif options.data == "planes":
        table = table.drop(columns=["tailnum"])  # a unique key, not a column to synthesize
    holdout = table.sample(frac=0.2, random_state=0)
    trn = table.drop(holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    start = time.perf_counter()
    synth = TabularSynthesizer(random_state=options.seed).fit(trn)
    train_s = time.perf_counter() - start
    print(f"{options.data}, variant {options.variant}, seed {options.seed}: trained in {train_s:.1f} s, "
          f"{synth.history_['epoch'].iloc[-1]:.0f} epochs", flush=True)
    history = synth.history_
    print(history[["epoch", "val_loss", "learn_rate", "is_checkpoint"]].tail(24).to_string(), flush=True)
    figures, frames = [], {}
    for k in range(options.samples):
        sample_seed = options.seed + 2 + k
        synthetic = synth.sample(len(trn), random_state=sample_seed)
        result = evaluate(trn, synthetic, holdout, random_state=0).to_dict()
        figures.append(result)
        frames[f"sample {sample_seed}"] = synthetic
        print(f"sample {sample_seed}: overall {result['overall']:.4f}, discriminator AUC "
              f"{result['discriminator_auc']:.4f}, DCR share {result['dcr_share']:.4f}", flush=True)
        if k == 0:
            shares = [result["dcr_share"]] + [
                evaluate(trn, synthetic, holdout, discriminator=False, random_state=seed).dcr_share for seed in (1, 2)]
            print(f"sample {sample_seed}: DCR share median of 3 {float(np.median(shares)):.4f}", flush=True)
    means = {key: float(np.mean([f[key] for f in figures])) for key in ("overall", "discriminator_auc", "dcr_share")}
    print("means", json.dumps({key: round(value, 4) for key, value in means.items()}))
    print_numeric_ks(trn, frames, holdout)


if __name__ == "__main__":
    main()
