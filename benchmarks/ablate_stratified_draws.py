"""Ablation of stratified (Latin-hypercube) uniforms in the inverse-CDF draws: one fitted network, four ways to
calibrate and sample it (issue 15, sixth round; see docs/benchmarks.md).

Fits one model with the i.i.d. draws of before (``_sampling.STRATIFIED_DRAWS = False``), recording the seeded
pilot generator its marginal calibration used. It then refits that calibration on the same network from the same
generator state, once with i.i.d. draws (which must reproduce the fitted offsets exactly: printed as a check) and
once with stratified draws, and samples ``--samples`` samples of every combination:

- ``iid``: i.i.d. calibration and i.i.d. draws (main before the change);
- ``strat-draws``: the same offsets, stratified draws (the sampling effect alone);
- ``strat-cal``: offsets fitted with stratified pilots, i.i.d. draws (the calibration effect alone);
- ``strat``: both stratified (the change).

Each sample's numeric KS distances are printed as ratios to the holdout's, with the count of columns within 1.5x
and the largest ratio; the first ``--evaluate`` samples of each variant are also evaluated with
``synthgen.evaluate(..., random_state=0)`` (overall accuracy, discriminator AUC, DCR share; the median of 3 DCR
evaluations for the first), as bench_tabular.py / bench_sequential.py do. Generation rows/s are printed per sample
(compare them only within one run).

    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data adult --seed 0 --samples 5
    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data flights --max-epochs 8 \\
        --model /tmp/flights-s0.joblib --samples 3      # fits once, then reuses the saved model
    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data flights --model /tmp/flights-s0.joblib \
        --pilot-seed 1 --variants iid,strat             # the same network, another calibration

adult: the 80 % training split of bench_tabular.py (seed 0 split), default ``TabularSynthesizer``; samples of the
training size with random states seed + 2, seed + 3, ... (the first is bench_tabular.py's). flights: the planes /
flights split of bench_sequential.py, ``max_epochs`` fixed (the benchmark's time budget depends on the load); the
flights of every training plane with random states seed + 1, seed + 2, ...
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import flights_split, load, numeric_ks  # noqa: E402

# variant: (the calibration's pilot draws, the sample's draws)
VARIANTS = {"iid": ("iid", False), "strat-draws": ("iid", True), "strat-cal": ("strat", False),
            "strat": ("strat", True)}


def _split(data: str):
    if data == "adult":
        table = load("adult")
        holdout = table.sample(frac=0.2, random_state=0)
        return table.drop(holdout.index).reset_index(drop=True), holdout.reset_index(drop=True), None
    trn_planes, _, trn, holdout = flights_split()
    return trn, holdout, trn_planes


def _fit(options, trn, trn_planes):
    """The fitted synthesizer (i.i.d. draws) and the recorded calls of its target model's calibration."""
    import joblib
    import torch

    from synthgen import TabularSynthesizer
    from synthgen.models.tabular import _sampling
    from synthgen.stages._generation import TabularGenerator

    if options.model and Path(options.model).exists():
        saved = joblib.load(options.model)
        return saved["synth"], saved["calibration"]
    calls = []
    original = TabularGenerator.fit_marginal_calibration

    def recording(self, n_training_rows, generator, *args):
        calls.append((self.bundle.is_sequential, n_training_rows, generator.get_state(), args))
        return original(self, n_training_rows, generator, *args)

    TabularGenerator.fit_marginal_calibration = recording
    _sampling.STRATIFIED_DRAWS = False
    start = time.perf_counter()
    try:
        if trn_planes is None:
            synth = TabularSynthesizer(random_state=options.seed).fit(trn)
        else:
            synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum",
                                       max_epochs=options.max_epochs, random_state=options.seed
                                       ).fit(trn, context=trn_planes)
    finally:
        TabularGenerator.fit_marginal_calibration = original
    print(f"{options.data}, seed {options.seed}: trained in {time.perf_counter() - start:.1f} s, "
          f"{synth.history_['epoch'].iloc[-1]:.1f} epochs", flush=True)
    # the target model's call (a two-table fit also calibrates its flat context model first)
    calibration = [call for call in calls if call[0] == (trn_planes is not None)][-1]
    if options.model:
        joblib.dump({"synth": synth, "calibration": calibration}, options.model)
    torch.set_num_threads(1)
    return synth, calibration


def _offsets_tensor(model):
    return model.step_model.sampling_offsets if hasattr(model, "step_model") else model.sampling_offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="adult", choices=["adult", "flights"])
    parser.add_argument("--seed", type=int, default=0, help="the synthesizer's random_state")
    parser.add_argument("--samples", type=int, default=5, help="samples of each variant")
    parser.add_argument("--evaluate", type=int, default=1, help="samples of each variant evaluated in full")
    parser.add_argument("--max-epochs", type=float, default=8.0, help="flights: the fixed training epochs")
    parser.add_argument("--model", default=None, help="joblib file: the fitted model is saved there, or reused")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--pilot-seed", type=int, default=None,
                        help="recalibrate from torch.Generator().manual_seed(PILOT_SEED) instead of the fit's pilot "
                             "generator: another calibration of the same network")
    options = parser.parse_args()

    import numpy as np
    import torch

    from synthgen import evaluate
    from synthgen.models.tabular import _sampling

    torch.set_num_threads(1)
    trn, holdout, trn_planes = _split(options.data)
    synth, (_, n_rows, state, args) = _fit(options, trn, trn_planes)
    if options.pilot_seed is not None:
        state = torch.Generator().manual_seed(options.pilot_seed).get_state()
    engine = synth._generator_for(None)  # the cached generator that sample() uses: its offsets are swapped below
    offsets = {"fitted": _offsets_tensor(engine.model).clone()}
    for name, stratified in (("iid", False), ("strat", True)):
        _sampling.STRATIFIED_DRAWS = stratified
        start = time.perf_counter()
        offsets[name] = engine.fit_marginal_calibration(n_rows, torch.Generator().set_state(state), *args).clone()
        print(f"calibration with {name} pilots: {time.perf_counter() - start:.1f} s", flush=True)
    print(f"check: i.i.d. recalibration (pilot seed {options.pilot_seed}) against the fitted offsets, largest "
          f"difference "
          f"{float((offsets['iid'] - offsets['fitted']).abs().max()):.3g}; stratified against i.i.d. offsets, "
          f"largest difference {float((offsets['strat'] - offsets['iid']).abs().max()):.3g}", flush=True)

    context_key = None if trn_planes is None else "tailnum"
    training = trn if trn_planes is None else trn.drop(columns="tailnum")
    summary = {}
    for variant in options.variants.split(","):
        calibration, stratified = VARIANTS[variant]
        _offsets_tensor(engine.model).copy_(offsets[calibration])
        _sampling.STRATIFIED_DRAWS = stratified
        ratios = []
        for k in range(options.samples):
            seed = options.seed + (2 if trn_planes is None else 1) + k
            start = time.perf_counter()
            if trn_planes is None:
                synthetic = synth.sample(len(trn), random_state=seed)
            else:
                synthetic = synth.sample(context=trn_planes, random_state=seed)
            rows_per_s = len(synthetic) / (time.perf_counter() - start)
            ks = numeric_ks(training, synthetic, holdout)
            ratios.append({c: a / h for c, (a, h) in ks.items()})
            worst = max(ratios[-1], key=ratios[-1].get)
            line = (f"{variant:<15} sample {seed}: {rows_per_s:,.0f} rows/s, within 1.5x "
                    f"{sum(r <= 1.5 for r in ratios[-1].values())}/{len(ks)}, largest {ratios[-1][worst]:.2f}x "
                    f"({worst}); " + ", ".join(f"{c} {r:.2f}" for c, r in ratios[-1].items()))
            if k < options.evaluate:
                result = evaluate(trn, synthetic, holdout, context_key=context_key, random_state=0)
                line += (f"; overall {result.overall:.4f}, AUC {result.discriminator_auc:.4f}, DCR "
                         f"{result.dcr_share:.4f}")
                if k == 0:
                    shares = [result.dcr_share] + [
                        evaluate(trn, synthetic, holdout, context_key=context_key, discriminator=False,
                                 random_state=s).dcr_share for s in (1, 2)]
                    line += f" (median of 3 {float(np.median(shares)):.4f})"
            print(line, flush=True)
        summary[variant] = ratios
    print(f"\nKS ratio to the holdout, mean / largest over {options.samples} samples")
    columns = list(next(iter(summary.values()))[0])
    print(f"{'column':<22}" + "".join(f"{v:>22}" for v in summary))
    for column in columns:
        print(f"{column:<22}" + "".join(
            f"{np.mean([r[column] for r in rs]):>14.2f} / {max(r[column] for r in rs):>4.2f}"
            for rs in summary.values()))
    print(f"{'samples all within 1.5x':<22}" + "".join(
        f"{sum(max(r.values()) <= 1.5 for r in rs):>19}/{len(rs)}" for rs in summary.values()))
    print(f"{'mean largest ratio':<22}" + "".join(
        f"{np.mean([max(r.values()) for r in rs]):>22.2f}" for rs in summary.values()))


if __name__ == "__main__":
    main()
