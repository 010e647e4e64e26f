"""Ablation of stratified uniforms in the inverse-CDF draws: one fitted network, several ways to calibrate and
sample it (issue 15, sixth and seventh rounds; see docs/benchmarks.md).

Fits one model with the i.i.d. draws of before (``_sampling.STRATIFIED_DRAWS = False``), recording the seeded
pilot generator its marginal calibration used. It then refits that calibration on the same network from the same
generator state (or from ``--pilot-seed``), once per kind of draw the variants need (i.i.d. pilots reproduce the
fitted offsets exactly: printed as a check), and samples ``--samples`` samples of every variant:

- ``iid``: i.i.d. calibration and i.i.d. draws (main before the sixth round);
- ``strat-draws``: the i.i.d. offsets, stratified draws (the sampling effect alone);
- ``strat-cal``: offsets fitted with stratified pilots, i.i.d. draws (the calibration effect alone);
- ``strat``: both stratified (the sixth round);
- ``sorted-draws``: the stratified offsets, sorted-block draws (``_sampling.SORTED_BLOCK_DRAWS``: a sequential
  model's step and length draws stratified within blocks of rows ranked by their mean code; flat models draw as
  ``strat``);
- ``sorted-cal``: offsets fitted with sorted-block pilots, stratified draws;
- ``sorted``: both sorted-block (the seventh round).

``--pilot-seed`` takes several seeds: each is another calibration of the same network, and the summary pools
their samples. ``--model`` also reuses a bare synthesizer saved by ``ablate_progress_calibration.py fit`` (no
recorded calibration: give ``--pilot-seed``).

Each sample's numeric KS distances are printed as ratios to the holdout's, with the count of columns within 1.5x
and the largest ratio; the first ``--evaluate`` samples of each variant are also evaluated with
``synthgen.evaluate(..., random_state=0)`` (overall accuracy, discriminator AUC, DCR share; the median of 3 DCR
evaluations for the first), as bench_tabular.py / bench_sequential.py do. Generation rows/s are printed per sample
(compare them only within one run).

    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data adult --seed 0 --samples 5
    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data flights --max-epochs 8 \\
        --model /tmp/flights-s0.joblib --samples 3      # fits once, then reuses the saved model
    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data flights --model /tmp/flights-s0.joblib \\
        --pilot-seed 1 --variants iid,strat             # the same network, another calibration
    python benchmarks/ablate_progress_calibration.py fit --epochs 9 --seed 1 --out /tmp/flights-s1-e9.joblib
    OMP_NUM_THREADS=1 python benchmarks/ablate_stratified_draws.py --data flights --seed 1 \\
        --model /tmp/flights-s1-e9.joblib --pilot-seed 1,2,3 --samples 3 --evaluate 0 --variants strat,sorted

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

# variant: (the calibration's pilot draws, the sample's draws); draws: "iid" (before the sixth round), "strat"
# (stratified uniforms in random order: the sixth round), "sorted" (stratified within blocks of rows sorted by
# their mean code: the seventh round)
VARIANTS = {"iid": ("iid", "iid"), "strat-draws": ("iid", "strat"), "strat-cal": ("strat", "iid"),
            "strat": ("strat", "strat"), "sorted-draws": ("strat", "sorted"), "sorted-cal": ("sorted", "strat"),
            "sorted": ("sorted", "sorted")}


def _use_draws(draws: str) -> None:
    from synthgen.models.tabular import _sampling

    _sampling.STRATIFIED_DRAWS = draws != "iid"
    _sampling.SORTED_BLOCK_DRAWS = draws == "sorted"


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
    from synthgen.stages._generation import TabularGenerator

    if options.model and Path(options.model).exists():
        saved = joblib.load(options.model)
        if not isinstance(saved, dict):  # a bare synthesizer (ablate_progress_calibration.py fit): no recorded
            return saved, None           # calibration, recalibrated from --pilot-seed
        return saved["synth"], saved["calibration"]
    calls = []
    original = TabularGenerator.fit_marginal_calibration

    def recording(self, n_training_rows, generator, *args):
        calls.append((self.bundle.is_sequential, n_training_rows, generator.get_state(), args))
        return original(self, n_training_rows, generator, *args)

    TabularGenerator.fit_marginal_calibration = recording
    _use_draws("iid")
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


def _calibration_args(engine, trn, trn_planes) -> tuple[int, tuple]:
    """The training rows and the extra arguments of ``fit_marginal_calibration`` that training passes (flights:
    the training planes' encoded contexts and the full pilot's subjects), for a model saved without them."""
    import numpy as np
    import torch

    from synthgen.models.tabular._calibration import calibration_subjects

    if trn_planes is None:
        return len(trn), ()
    _, context = engine._context(trn_planes, None, np.random.default_rng(0), ("context", "n"))
    return len(trn), (torch.as_tensor(context.astype(np.int64)),
                      calibration_subjects(len(trn_planes), len(trn)))


def _calibrate(engine, n_rows, state, args, draws: str) -> dict:
    import torch

    _use_draws(draws)
    start = time.perf_counter()
    buffers = engine.fit_marginal_calibration(n_rows, torch.Generator().set_state(state), *args)
    print(f"calibration with {draws} pilots: {time.perf_counter() - start:.1f} s", flush=True)
    return {name: value.clone() for name, value in buffers.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="adult", choices=["adult", "flights"])
    parser.add_argument("--seed", type=int, default=0, help="the synthesizer's random_state")
    parser.add_argument("--samples", type=int, default=5, help="samples of each variant (per pilot seed)")
    parser.add_argument("--evaluate", type=int, default=1,
                        help="samples of each variant evaluated in full (for the first pilot seed)")
    parser.add_argument("--max-epochs", type=float, default=8.0, help="flights: the fixed training epochs")
    parser.add_argument("--model", default=None,
                        help="joblib file: the fitted model is saved there, or reused (also a bare synthesizer "
                             "saved by ablate_progress_calibration.py fit, with --pilot-seed)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the variants")
    parser.add_argument("--pilot-seed", default=None,
                        help="comma-separated seeds: recalibrate from torch.Generator().manual_seed(PILOT_SEED) "
                             "instead of the fit's pilot generator, each one another calibration of the same "
                             "network (the summary pools them)")
    options = parser.parse_args()

    import numpy as np
    import torch

    from synthgen import evaluate

    torch.set_num_threads(1)
    trn, holdout, trn_planes = _split(options.data)
    synth, recorded = _fit(options, trn, trn_planes)
    engine = synth._generator_for(None)  # the cached generator that sample() uses: its buffers are swapped below
    fitted = {name: value.clone() for name, value in engine.model.named_buffers() if name.endswith("offsets")}
    if recorded is None:
        if options.pilot_seed is None:
            parser.error("--pilot-seed is required with a model saved without its calibration")
        n_rows, args = _calibration_args(engine, trn, trn_planes)
        state = None
    else:
        _, n_rows, state, args = recorded
    variants = options.variants.split(",")
    pilots = [None] if options.pilot_seed is None else [int(s) for s in options.pilot_seed.split(",")]
    context_key = None if trn_planes is None else "tailnum"
    training = trn if trn_planes is None else trn.drop(columns="tailnum")
    summary = {variant: [] for variant in variants}
    speed = {variant: [] for variant in variants}
    for p, pilot in enumerate(pilots):
        pilot_state = state if pilot is None else torch.Generator().manual_seed(pilot).get_state()
        buffers = {draws: _calibrate(engine, n_rows, pilot_state, args, draws)
                   for draws in dict.fromkeys(VARIANTS[v][0] for v in variants)}
        if recorded is not None and pilot is None and "iid" in buffers:
            name = next(iter(buffers["iid"]))
            print(f"check: i.i.d. recalibration against the fitted {name}, largest difference "
                  f"{float((buffers['iid'][name] - fitted[name]).abs().max()):.3g}", flush=True)
        for variant in variants:
            calibration, draws = VARIANTS[variant]
            for name, value in buffers[calibration].items():
                engine.model.get_buffer(name).copy_(value)
            _use_draws(draws)
            for k in range(options.samples):
                seed = options.seed + (2 if trn_planes is None else 1) + k
                start = time.perf_counter()
                if trn_planes is None:
                    synthetic = synth.sample(len(trn), random_state=seed)
                else:
                    synthetic = synth.sample(context=trn_planes, random_state=seed)
                rows_per_s = len(synthetic) / (time.perf_counter() - start)
                speed[variant].append(rows_per_s)
                ks = numeric_ks(training, synthetic, holdout)
                ratios = {c: a / h for c, (a, h) in ks.items()}
                summary[variant].append(ratios)
                worst = max(ratios, key=ratios.get)
                line = (f"{variant:<13} pilot {pilot} sample {seed}: {rows_per_s:,.0f} rows/s, within 1.5x "
                        f"{sum(r <= 1.5 for r in ratios.values())}/{len(ks)}, largest {ratios[worst]:.2f}x "
                        f"({worst}); " + ", ".join(f"{c} {r:.2f}" for c, r in ratios.items()))
                if p == 0 and k < options.evaluate:
                    result = evaluate(trn, synthetic, holdout, context_key=context_key, random_state=0)
                    line += (f"; overall {result.overall:.4f}, AUC {result.discriminator_auc:.4f}, DCR "
                             f"{result.dcr_share:.4f}")
                    if result.coherence is not None:
                        line += f", coherence {result.coherence:.4f}"
                    if k == 0:
                        shares = [result.dcr_share] + [
                            evaluate(trn, synthetic, holdout, context_key=context_key, discriminator=False,
                                     random_state=s).dcr_share for s in (1, 2)]
                        line += f" (median of 3 {float(np.median(shares)):.4f})"
                print(line, flush=True)
    n = len(next(iter(summary.values())))
    print(f"\nKS ratio to the holdout, mean / largest over {n} samples ({len(pilots)} calibrations)")
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
    print(f"{'mean rows/s':<22}" + "".join(f"{np.mean(s):>22,.0f}" for s in speed.values()))


if __name__ == "__main__":
    main()
