"""synthgen against the reference engine (mostlyai-engine) on two-table data: planes and their flights.

Protocol: split the planes 80/20 (seed 0), each side with all its flights; each engine trains on the 80 % with
the same time budget (``--minutes``, default 10) and its defaults otherwise, in its own process with the same
torch thread count; each then generates the flights of every training plane (timed) and the result is evaluated
against the training flights and the 20 % holdout flights with ``synthgen.evaluate(..., context_key="tailnum")``
(the same metric code for both). A last synthgen run generates the flights of all 3,322 planes (284k flights
originally) to time full-size generation.

synthgen also samples by default (``sample(return_context=True)``): as many synthetic planes as training planes,
from its context model, and their flights. Those flights are evaluated like the others (column "synthgen,
syn ctx"), and the synthetic planes themselves against the training and holdout planes (without keys).

    python benchmarks/bench_sequential.py                   # both engines (installs the reference on first use)
    python benchmarks/bench_sequential.py --skip-reference --minutes 5
    python benchmarks/bench_sequential.py --minutes 8 --synthgen-minutes 4   # synthgen gets half the time
    python benchmarks/bench_sequential.py --skip-reference --minutes 1 --real-baseline  # + real data's DCR share
    python benchmarks/bench_sequential.py --minutes 5 --reference-cache /tmp/ref-flights   # reuse the reference later
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    add_comparison_arguments,
    flights_split,
    load,
    peak_rss_mb,
    print_dependencies,
    print_losses,
    print_numeric_ks,
    print_side_by_side,
    run_engine_cached,
    with_equal_size_figures,
)

SYNTHGEN_RUN = """
import json, sys, time, resource
import pandas as pd, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from synthgen import TabularSynthesizer
planes, flights = pd.read_parquet(args["ctx"]), pd.read_parquet(args["tgt"])
start = time.perf_counter()
synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum",
                           max_training_time=args["minutes"], random_state=args["seed"],
                           **args["options"]).fit(flights, context=planes)
train_s = time.perf_counter() - start
start = time.perf_counter()
sample = synth.sample(context=planes, random_state=args["seed"] + 1)
gen_s = time.perf_counter() - start
sample.to_parquet(args["out"])
uncalibrated = {}
if args.get("uncalibrated_out"):  # the same model without its marginal calibration: before/after in one run
    start = time.perf_counter()
    synth.sample(context=planes, random_state=args["seed"] + 1, marginal_calibration=False).to_parquet(
        args["uncalibrated_out"])
    uncalibrated = {"uncalibrated_gen_s": time.perf_counter() - start}
if args.get("underived_out"):  # the same flights without setting the derived columns: before/after in one run
    start = time.perf_counter()
    synth.sample(context=planes, random_state=args["seed"] + 1, derived_columns=False).to_parquet(
        args["underived_out"])
    uncalibrated["underived_gen_s"] = time.perf_counter() - start
start = time.perf_counter()
synthetic_planes, synthetic_sample = synth.sample(return_context=True, random_state=args["seed"] + 3)
synthetic_gen_s = time.perf_counter() - start
synthetic_planes.to_parquet(args["out_synthetic_ctx"])
synthetic_sample.to_parquet(args["out_synthetic"])
full = {}
if args.get("all_planes"):
    everyone = pd.read_parquet(args["all_planes"])
    start = time.perf_counter()
    big = synth.sample(context=everyone, random_state=2)
    full = {"full_gen_s": time.perf_counter() - start, "full_rows": len(big)}
print(json.dumps({"train_s": train_s, "epochs": float(synth.history_["epoch"].iloc[-1]),
                  "ctx_train_s": float(synth.ctx_history_["total_time"].iloc[-1]),
                  "ctx_epochs": float(synth.ctx_history_["epoch"].iloc[-1]),
                  "gen_s": gen_s, "gen_rows_per_s": len(sample) / gen_s, **full,
                  "synthetic_gen_s": synthetic_gen_s, **uncalibrated,
                  "calibration": synth._bundle.model_config.get("marginal_calibration"),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

REFERENCE_RUN = """
import json, sys, time, resource
from pathlib import Path
import pandas as pd, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from mostlyai.engine import TabularARGN
planes, flights = pd.read_parquet(args["ctx"]), pd.read_parquet(args["tgt"])
start = time.perf_counter()
model = TabularARGN(tgt_context_key="tailnum", ctx_primary_key="tailnum", ctx_data=planes,
                    max_training_time=args["minutes"], random_state=0, verbose=0)
model.fit(flights)
train_s = time.perf_counter() - start
start = time.perf_counter()
sample = model.sample(ctx_data=planes)
gen_s = time.perf_counter() - start
sample.to_parquet(args["out"])
progress = Path(model.workspace_dir) / "ModelStore" / "model-data" / "progress-messages.csv"
epochs = float(pd.read_csv(progress)["epoch"].iloc[-1]) if progress.exists() else float("nan")
print(json.dumps({"train_s": train_s, "epochs": epochs, "gen_s": gen_s, "gen_rows_per_s": len(sample) / gen_s,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each engine")
    parser.add_argument("--synthgen-minutes", type=float, default=None,
                        help="a different budget for synthgen (e.g. half the reference's)")
    parser.add_argument("--real-baseline", action="store_true",
                        help="also print the DCR share of real planes: disjoint sets of training planes of the "
                             "holdout's size, each against the other training planes and the holdout")
    parser.add_argument("--save-samples", default=None,
                        help="folder to keep each engine's flights sample (and the holdout) in, for diagnosis")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="also evaluate the same fitted synthgen model's flights drawn with "
                             "marginal_calibration=False (same seed): the calibration's before/after")
    parser.add_argument("--underived", action="store_true",
                        help="also evaluate the same flights drawn with derived_columns=False (same model and "
                             "seed): the derived columns' before/after")
    add_comparison_arguments(parser, "seed+1, seed+3")
    options = parser.parse_args()

    import numpy as np
    import pandas as pd

    from synthgen import evaluate
    from synthgen.evaluation import diagnose

    trn_planes, holdout_planes, trn_flights, holdout_flights = flights_split()
    engines = {"synthgen": (sys.executable, SYNTHGEN_RUN)}
    if not options.skip_reference:
        from _reference import ensure_reference_env

        engines["mostlyai-engine"] = (str(ensure_reference_env()), REFERENCE_RUN)
    rows, frames, losses = {}, {}, {}

    def evaluate_flights(synthetic: pd.DataFrame, gen_s: float, dcr_evaluations: int) -> dict:
        start = time.perf_counter()
        result = evaluate(trn_flights, synthetic, holdout_flights, context_key="tailnum", random_state=0)
        eval_s = time.perf_counter() - start
        shares = [result.dcr_share] + [
            evaluate(trn_flights, synthetic, holdout_flights, context_key="tailnum", discriminator=False,
                     random_state=seed).dcr_share for seed in range(1, dcr_evaluations)]
        losses[len(losses)] = diagnose(result, by="column", top=5)
        carrier = synthetic.groupby("tailnum")["carrier"].nunique()
        figures = {"gen_s": gen_s, "gen_rows_per_s": len(synthetic) / gen_s, "eval_s": eval_s,
                   **result.to_dict(), "dcr_share_median": float(np.median(shares)),
                   "one_carrier_share": float((carrier == 1).mean())}
        return with_equal_size_figures(figures, trn_flights, synthetic, holdout_flights, "tailnum")

    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: Path(tmp) / f"{name}.parquet" for name in ("ctx", "tgt", "all_planes")}
        trn_planes.to_parquet(paths["ctx"])
        trn_flights.to_parquet(paths["tgt"])
        load("planes").to_parquet(paths["all_planes"])
        for name, (python, script) in engines.items():
            out = Path(tmp) / f"{name}-out.parquet"
            args = {"ctx": str(paths["ctx"]), "tgt": str(paths["tgt"]), "out": str(out),
                    "out_synthetic": str(Path(tmp) / f"{name}-synthetic-out.parquet"),
                    "out_synthetic_ctx": str(Path(tmp) / f"{name}-synthetic-ctx.parquet"),
                    "threads": options.threads, "minutes": options.minutes, "seed": options.seed,
                    "options": json.loads(options.synthgen_options)}
            if name == "synthgen" and options.synthgen_minutes is not None:
                args["minutes"] = options.synthgen_minutes
            if name == "synthgen":
                args["all_planes"] = str(paths["all_planes"])
                if options.uncalibrated:
                    args["uncalibrated_out"] = str(Path(tmp) / "synthgen-uncalibrated.parquet")
                if options.underived:
                    args["underived_out"] = str(Path(tmp) / "synthgen-underived.parquet")
            cache = options.reference_cache if name == "mostlyai-engine" else None
            figures = run_engine_cached(python, script, args, options.threads, cache,
                                        {"data": "flights", "planes": len(trn_planes), "flights": len(trn_flights),
                                         "minutes": args["minutes"]}, ["out"])
            synthetic = pd.read_parquet(out)
            rows[name] = figures | evaluate_flights(synthetic, figures["gen_s"], options.dcr_evaluations)
            frames[name] = synthetic
            if options.save_samples:
                Path(options.save_samples).mkdir(parents=True, exist_ok=True)
                synthetic.to_parquet(Path(options.save_samples) / f"{name}.parquet")
            print(f"{name}: trained {figures['train_s']:.0f} s ({figures['epochs']:.1f} epochs), generated "
                  f"{len(synthetic):,} flights in {figures['gen_s']:.1f} s", flush=True)
            if name == "synthgen" and options.uncalibrated:
                synthetic = pd.read_parquet(args["uncalibrated_out"])
                rows["synthgen uncalibrated"] = evaluate_flights(synthetic, figures["uncalibrated_gen_s"],
                                                                 options.dcr_evaluations)
                frames["synthgen uncalibrated"] = synthetic
            if name == "synthgen" and options.underived:
                synthetic = pd.read_parquet(args["underived_out"])
                rows["synthgen underived"] = evaluate_flights(synthetic, figures["underived_gen_s"],
                                                              options.dcr_evaluations)
                frames["synthgen underived"] = synthetic
                if options.save_samples:
                    synthetic.to_parquet(Path(options.save_samples) / "synthgen-underived.parquet")
            if name == "synthgen":
                synthetic = pd.read_parquet(args["out_synthetic"])
                synthetic_planes = pd.read_parquet(args["out_synthetic_ctx"])
                rows["synthgen, syn ctx"] = evaluate_flights(synthetic, figures["synthetic_gen_s"], 1)
                start = time.perf_counter()
                plane_figures = evaluate(trn_planes.drop(columns="tailnum"), synthetic_planes.drop(columns="tailnum"),
                                         holdout_planes.drop(columns="tailnum"), random_state=0).to_dict()
                plane_figures["eval_s"] = time.perf_counter() - start
                print(f"synthgen marginal calibration (within the budget): {figures.get('calibration')}", flush=True)
                print(f"synthgen context model: trained {figures['ctx_train_s']:.1f} s ({figures['ctx_epochs']:.1f} "
                      f"epochs); default sample of {len(synthetic_planes):,} synthetic planes and their "
                      f"{len(synthetic):,} flights in {figures['synthetic_gen_s']:.1f} s", flush=True)
    original_carrier = float((trn_flights.groupby("tailnum")["carrier"].nunique() == 1).mean())
    keys = ["train_s", "epochs", "gen_s", "gen_rows_per_s", "full_gen_s", "full_rows", "peak_mb", "overall",
            "univariate", "bivariate", "trivariate", "coherence", "overall_at_holdout_size", "univariate_at_holdout_size",
            "bivariate_at_holdout_size", "trivariate_at_holdout_size", "coherence_at_holdout_size", "sequence_length",
            "discriminator_auc", "dcr_share",
            "dcr_share_median", "exact_match_share", "one_carrier_share"]
    print(f"\nplanes/flights: {len(trn_planes):,} training planes ({len(trn_flights):,} flights), "
          f"{len(holdout_planes):,} holdout planes; budget {options.minutes} min "
          f"(synthgen {options.synthgen_minutes or options.minutes} min); torch threads = {options.threads}; "
          f"parent peak {peak_rss_mb():.0f} MB; original one-carrier share {original_carrier:.3f}")
    print_side_by_side(rows, keys)
    print_numeric_ks(trn_flights.drop(columns="tailnum"), frames, holdout_flights)
    print_losses(dict(zip(rows, losses.values(), strict=True)))
    print_dependencies(trn_flights.drop(columns="tailnum"), frames)
    print(f"\nsynthetic planes ({len(trn_planes):,}) against the training planes, holdout ceiling in brackets:")
    for key in ("overall", "univariate", "bivariate", "discriminator_auc", "dcr_share", "exact_match_share"):
        value, ceiling = plane_figures.get(key), plane_figures.get(f"reference_{key}")
        print(f"  {key:<20}{value:>10.4f}" + (f"  ({ceiling:.4f})" if isinstance(ceiling, float) else ""))
    if options.real_baseline:
        shares = []
        for seed in range(3):
            real = trn_planes["tailnum"].sample(n=len(holdout_planes), random_state=seed)
            is_real = trn_flights["tailnum"].isin(real)
            rest, real_flights = trn_flights[~is_real], trn_flights[is_real]
            result = evaluate(rest, real_flights, holdout_flights, context_key="tailnum", discriminator=False,
                              random_state=seed)
            shares.append(result.dcr_share)
        print(f"real planes as 'synthetic' ({len(holdout_planes)} training planes vs the other "
              f"{len(trn_planes) - len(holdout_planes):,} and the holdout), DCR share for seeds 0-2: "
              + " / ".join(f"{share:.4f}" for share in shares))


if __name__ == "__main__":
    main()
