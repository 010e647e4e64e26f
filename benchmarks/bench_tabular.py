"""synthgen's TabularSynthesizer against the reference engine (mostlyai-engine) on the adult census table.

Protocol: split the 48,842 rows 80/20 (seed 0); each engine trains with its defaults (Medium model, early
stopping) on the 80 % in its own process with the same torch thread count; each generates 100,000 rows (timed)
and one sample of the training size that is evaluated against the training part and the 20 % holdout with
``synthgen.evaluate`` (the same metric code for both engines).

    python benchmarks/bench_tabular.py                 # both engines (installs the reference on first use)
    python benchmarks/bench_tabular.py --skip-reference
    python benchmarks/bench_tabular.py --threads 2
    python benchmarks/bench_tabular.py --reference-cache /tmp/ref-adult   # reuse the reference's run later
    python benchmarks/bench_tabular.py --reference-cache /tmp/ref-adult --seed 1 --synthgen-options '{"max_epochs": 200}'
    python benchmarks/bench_tabular.py --reference-cache /tmp/ref-adult --uncalibrated   # also without calibration
    python benchmarks/bench_tabular.py --data planes --skip-reference --uncalibrated      # another flat table

``--data`` picks the flat table (adult by default; planes; flights, all 19 columns as one flat table, of which
``--rows`` rows are drawn, 50,000 by default); ``--uncalibrated`` also evaluates the same fitted synthgen model's
sample drawn with ``marginal_calibration=False`` (the row ``synthgen uncalibrated``); ``--underived`` the same
rows with ``derived_columns=False`` (the row ``synthgen underived``). The last table lists the exact relations
A -> B of the training rows and how often each sample keeps them.

Prints training seconds, epochs, generation rows/second, peak memory (MB) and the evaluation figures.
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
    load,
    peak_rss_mb,
    print_dependencies,
    print_losses,
    print_numeric_ks,
    print_side_by_side,
    run_engine_cached,
    with_equal_size_figures,
)

N_GENERATE = 100_000

SYNTHGEN_RUN = """
import json, sys, time, resource
import pandas as pd, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from synthgen import TabularSynthesizer
trn = pd.read_parquet(args["trn"])
start = time.perf_counter()
synth = TabularSynthesizer(random_state=args["seed"], **args["options"]).fit(trn)
train_s = time.perf_counter() - start
start = time.perf_counter()
big = synth.sample(args["n_generate"], random_state=args["seed"] + 1)
gen_s = time.perf_counter() - start
synth.sample(len(trn), random_state=args["seed"] + 2).to_parquet(args["out"])
if args.get("uncalibrated_out"):  # the same model without its marginal calibration: before/after in one run
    synth.sample(len(trn), random_state=args["seed"] + 2, marginal_calibration=False).to_parquet(
        args["uncalibrated_out"])
if args.get("underived_out"):  # the same rows without setting the derived columns: before/after in one run
    synth.sample(len(trn), random_state=args["seed"] + 2, derived_columns=False).to_parquet(args["underived_out"])
print(json.dumps({"train_s": train_s, "epochs": float(synth.history_["epoch"].iloc[-1]),
                  "gen_rows_per_s": len(big) / gen_s,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

REFERENCE_RUN = """
import json, sys, time, resource
from pathlib import Path
import pandas as pd, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from mostlyai.engine import TabularARGN
trn = pd.read_parquet(args["trn"])
start = time.perf_counter()
model = TabularARGN(random_state=0, verbose=0)
model.fit(trn)
train_s = time.perf_counter() - start
start = time.perf_counter()
big = model.sample(n_samples=args["n_generate"])
gen_s = time.perf_counter() - start
model.sample(n_samples=len(trn)).to_parquet(args["out"])
progress = Path(model.workspace_dir) / "ModelStore" / "model-data" / "progress-messages.csv"
epochs = float(pd.read_csv(progress)["epoch"].iloc[-1]) if progress.exists() else float("nan")
print(json.dumps({"train_s": train_s, "epochs": epochs, "gen_rows_per_s": len(big) / gen_s,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_comparison_arguments(parser, "seed+1, seed+2")
    parser.add_argument("--save-samples", default=None, help="folder to keep each engine's evaluated sample in")
    parser.add_argument("--data", default="adult", choices=["adult", "planes", "flights"],
                        help="the flat table (flights: --rows rows of it as one flat table)")
    parser.add_argument("--rows", type=int, default=50_000, help="rows drawn from flights (seed 0)")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="also evaluate synthgen's sample without marginal calibration (same fitted model)")
    parser.add_argument("--underived", action="store_true",
                        help="also evaluate synthgen's sample with derived_columns=False (same model and rows)")
    options = parser.parse_args()

    import pandas as pd

    table = load(options.data)
    if options.data == "flights":
        table = table.sample(n=min(options.rows, len(table)), random_state=0).reset_index(drop=True)
    elif options.data == "planes":
        table = table.drop(columns=["tailnum"])  # a unique key, not a column to synthesize
    holdout = table.sample(frac=0.2, random_state=0)
    trn = table.drop(holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    engines = {"synthgen": (sys.executable, SYNTHGEN_RUN)}
    if not options.skip_reference:
        from _reference import ensure_reference_env

        engines["mostlyai-engine"] = (str(ensure_reference_env()), REFERENCE_RUN)
    rows, frames, losses = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        trn_path = Path(tmp) / "trn.parquet"
        trn.to_parquet(trn_path)
        for name, (python, script) in engines.items():
            out = Path(tmp) / f"{name}.parquet"
            args = {"trn": str(trn_path), "out": str(out), "threads": options.threads, "n_generate": N_GENERATE,
                    "seed": options.seed, "options": json.loads(options.synthgen_options)}
            uncalibrated = Path(tmp) / "synthgen-uncalibrated.parquet"
            if name == "synthgen" and options.uncalibrated:
                args["uncalibrated_out"] = str(uncalibrated)
            underived = Path(tmp) / "synthgen-underived.parquet"
            if name == "synthgen" and options.underived:
                args["underived_out"] = str(underived)
            cache = options.reference_cache if name == "mostlyai-engine" else None
            figures = run_engine_cached(python, script, args, options.threads, cache,
                                        {"data": options.data, "rows": len(trn), "n_generate": N_GENERATE}, ["out"])
            samples = {name: pd.read_parquet(out)}
            if name == "synthgen" and options.uncalibrated:
                samples["synthgen uncalibrated"] = pd.read_parquet(uncalibrated)
            if name == "synthgen" and options.underived:
                samples["synthgen underived"] = pd.read_parquet(underived)
            for label, synthetic in samples.items():
                rows[label] = _evaluated(dict(figures), trn, synthetic, holdout, options, losses, label)
                frames[label] = synthetic
            print(f"{name}: trained in {figures['train_s']:.1f} s ({figures['epochs']:.0f} epochs)", flush=True)
    keys = ["train_s", "epochs", "gen_rows_per_s", "peak_mb", "overall", "univariate", "bivariate", "trivariate",
            "overall_at_holdout_size", "univariate_at_holdout_size", "bivariate_at_holdout_size",
            "trivariate_at_holdout_size", "discriminator_auc", "dcr_share", "dcr_share_median", "exact_match_share", "nndr_training"]
    print(f"\n{options.data}: {len(trn):,} training rows, {len(holdout):,} holdout rows, torch threads = "
          f"{options.threads}, parent peak {peak_rss_mb():.0f} MB")
    print_side_by_side(rows, keys)
    print_numeric_ks(trn, frames, holdout)
    print_dependencies(trn, frames)
    print_losses(losses)


def _evaluated(figures: dict, trn, synthetic, holdout, options, losses: dict, name: str) -> dict:
    """``figures`` with the evaluation of one engine's ``synthetic`` sample (its losses into ``losses``)."""
    import numpy as np

    from synthgen import evaluate
    from synthgen.evaluation import diagnose

    start = time.perf_counter()
    result = evaluate(trn, synthetic, holdout, random_state=0)
    figures["eval_s"] = time.perf_counter() - start
    figures.update(result.to_dict())
    losses[name] = diagnose(result, by="column", top=5)
    shares = [result.dcr_share] + [
        evaluate(trn, synthetic, holdout, discriminator=False, random_state=seed).dcr_share
        for seed in range(1, options.dcr_evaluations)]
    figures["dcr_share_median"] = float(np.median(shares))
    figures = with_equal_size_figures(figures, trn, synthetic, holdout)
    if options.save_samples:
        Path(options.save_samples).mkdir(parents=True, exist_ok=True)
        synthetic.to_parquet(Path(options.save_samples) / f"{name}.parquet")
    return figures


if __name__ == "__main__":
    main()
