"""Differential privacy on adult: synthgen's DP-SGD (and DP statistics) against the reference engine's DP.

Protocol: split the 48,842 rows 80/20 (seed 0); each engine trains on the 80 % with differential privacy at a
total epsilon of 1 and of 10 (delta from the data size: min(1e-5, n^-1.2)), in its own process with one torch
thread; one sample of the training size is evaluated against the training part and the 20 % holdout with
``synthgen.evaluate``. synthgen prints its privacy ledger; the reference engine's epsilon is what it reports
(value-protection epsilon plus its RDP training epsilon, checked after each epoch). Both engines split the total
the same way: 0.1 of it for the statistics, 0.9 for training.

synthgen declares adult's public domains (the category lists of the UCI documentation ``adult.names`` and round
ranges, written out in ``_adult_domains.py``, not read from the data): that is public knowledge, so it costs no
privacy; ``--no-domains`` leaves them out. The training settings (model, column order, batch size, epochs) were
chosen on this benchmark itself, as the MST / AIM papers tune theirs: they are settings, not part of the release.

    python benchmarks/bench_dp.py                        # synthgen and the reference engine at epsilon 1 and 10
    python benchmarks/bench_dp.py --skip-reference --epsilons 1
    python benchmarks/bench_dp.py --skip-reference --epsilons 10 --epochs 40 --batch-size 4096
    python benchmarks/bench_dp.py --epochs 10 --batch-size 2048 --model medium --flexible   # other settings
    python benchmarks/bench_dp.py --skip-reference --epsilons 10 --seed 1 --uncalibrated    # also uncalibrated

``--uncalibrated`` also evaluates the same fitted synthgen model's sample drawn with ``marginal_calibration=False``
(the marginal calibration targets only the noisy counts of the DP output prior: no extra epsilon).

Prints training seconds, the final epsilon, overall accuracy (univariate / bivariate / trivariate),
discriminator AUC and DCR share per engine and epsilon.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _adult_domains import ADULT_CATEGORIES, ADULT_RANGES  # noqa: E402
from _common import load, print_side_by_side, run_engine  # noqa: E402
from _reference import engine_script  # noqa: E402

# Settings tuned on this benchmark (docs/privacy.md, "DP training figures"): the Small model in a fixed column
# order (enable_flexible_generation=False); at epsilon 1 large Poisson batches (q = 0.21) and 10 epochs, at
# epsilon 10 (4.7x less noise per step) many more, smaller steps (about 2,300); see --help to vary them.
DEFAULT_EPOCHS = {1.0: 10.0, 10.0: 60.0}
DEFAULT_BATCH = {1.0: 8192, 10.0: 1024}
DEFAULT_MODEL = "MOSTLY_AI/Small"

SYNTHGEN_RUN = engine_script("""
warnings.filterwarnings("ignore")
from synthgen import TabularSynthesizer
start = time.perf_counter()
synth = TabularSynthesizer(model=args["model"], max_epochs=args["epochs"], batch_size=args["batch_size"],
                           enable_flexible_generation=args["flexible"], differential_privacy=args["dp"],
                           random_state=args["seed"]).fit(trn)
train_s = time.perf_counter() - start
synth.sample(len(trn), random_state=args["seed"] + 2).to_parquet(args["out"])
if args.get("uncalibrated_out"):  # the same model without its marginal calibration: before/after in one run
    synth.sample(len(trn), random_state=args["seed"] + 2, marginal_calibration=False).to_parquet(
        args["uncalibrated_out"])
report = getattr(synth, "privacy_report_", None)
ledger = report.to_dict("records") if report is not None else []
print(json.dumps({"train_s": train_s, "epochs": float(synth.history_["epoch"].iloc[-1]),
                  "epsilon": float(getattr(synth, "epsilon_", float("nan"))), "ledger": ledger}, default=str))
""")

REFERENCE_RUN = engine_script("""
from mostlyai.engine import TabularARGN
from mostlyai.engine.domain import DifferentialPrivacyConfig
start = time.perf_counter()
dp = DifferentialPrivacyConfig(max_epsilon=0.9 * args["epsilon"], delta=args["delta"],
                               value_protection_epsilon=0.1 * args["epsilon"])
model = TabularARGN(random_state=0, verbose=0, max_training_time=args["max_minutes"], differential_privacy=dp)
model.fit(trn)
train_s = time.perf_counter() - start
model.sample(n_samples=len(trn)).to_parquet(args["out"])
progress = Path(model.workspace_dir) / "ModelStore" / "model-data" / "progress-messages.csv"
frame = pd.read_csv(progress) if progress.exists() else None
epochs = float(frame["epoch"].iloc[-1]) if frame is not None else float("nan")
eps = float(frame["dp_eps"].dropna().iloc[-1]) if frame is not None and "dp_eps" in frame else float("nan")
print(json.dumps({"train_s": train_s, "epochs": epochs, "epsilon": eps + 0.1 * args["epsilon"]}))
""")


def _dp_config(epsilon: float, stats_share: float | None, domains: bool) -> dict:
    config = {"epsilon": epsilon}  # delta from the data size
    if stats_share is not None:
        config["stats_share"] = stats_share
    if domains:  # the ranges in their JSON form: the script gets its arguments as JSON, which has no tuples
        config["domains"] = ADULT_CATEGORIES | {column: {"low": low, "high": high}
                                                for column, (low, high) in ADULT_RANGES.items()}
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--epochs", type=float, default=None, help="default: 10 at epsilon 1, 60 at 10")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 8192 at epsilon 1, 1024 at 10")
    parser.add_argument("--no-domains", action="store_true", help="do not declare adult's public domains")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--stats-share", type=float, default=None)
    parser.add_argument("--flexible", action="store_true", help="train under random column orders (default: fixed)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-synthgen", action="store_true")
    parser.add_argument("--reference-minutes", type=float, default=20.0, help="the reference's time budget")
    parser.add_argument("--seed", type=int, default=0, help="synthgen's random_state (its sample uses seed + 2)")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="also evaluate synthgen's sample without marginal calibration (same fitted model)")
    options = parser.parse_args()

    import pandas as pd

    from synthgen import evaluate

    adult = load("adult")
    holdout = adult.sample(frac=0.2, random_state=0)
    trn = adult.drop(holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    delta = min(1e-5, len(trn) ** -1.2)
    rows, ledgers = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        trn_path = Path(tmp) / "trn.parquet"
        trn.to_parquet(trn_path)
        for epsilon in options.epsilons:
            runs = {}
            if not options.skip_synthgen:
                runs[f"synthgen ε={epsilon:g}"] = (sys.executable, SYNTHGEN_RUN, {
                    "dp": _dp_config(epsilon, options.stats_share, not options.no_domains), "model": options.model,
                    "batch_size": options.batch_size or DEFAULT_BATCH.get(epsilon, 8192),
                    "flexible": options.flexible, "seed": options.seed,
                    "epochs": options.epochs or DEFAULT_EPOCHS.get(epsilon, 10.0)})
            if not options.skip_reference:
                from _reference import ensure_reference_env

                runs[f"reference ε={epsilon:g}"] = (str(ensure_reference_env()), REFERENCE_RUN, {
                    "epsilon": epsilon, "delta": delta, "max_minutes": options.reference_minutes})
            for name, (python, script, extra) in runs.items():
                out = Path(tmp) / "synthetic.parquet"
                uncalibrated = Path(tmp) / "uncalibrated.parquet"
                if options.uncalibrated and name.startswith("synthgen"):
                    extra = {**extra, "uncalibrated_out": str(uncalibrated)}
                try:
                    figures = run_engine(python, script, {"trn": str(trn_path), "out": str(out),
                                                          "threads": options.threads, **extra}, options.threads)
                except RuntimeError as error:
                    print(f"{name}: failed: {str(error).strip().splitlines()[-1]}", flush=True)
                    continue
                ledgers[name] = figures.pop("ledger", None)
                samples = {name: out}
                if "uncalibrated_out" in extra:
                    samples[f"{name} uncalibrated"] = uncalibrated
                for label, path in samples.items():
                    start = time.perf_counter()
                    result = evaluate(trn, pd.read_parquet(path), holdout, random_state=0)
                    row = {**figures, "eval_s": time.perf_counter() - start, **result.to_dict()}
                    rows[label] = row
                    print(f"{label}: trained in {row['train_s']:.1f} s ({row['epochs']:.2f} epochs), "
                          f"epsilon {row['epsilon']:.3f}, overall {row['overall']:.4f}", flush=True)
    print(f"\nadult: {len(trn):,} training rows, {len(holdout):,} holdout rows, delta = {delta:.3g}, "
          f"torch threads = {options.threads}")
    keys = ["train_s", "epochs", "epsilon", "overall", "univariate", "bivariate", "trivariate",
            "discriminator_auc", "dcr_share", "exact_match_share"]
    if rows:
        print_side_by_side(rows, keys, ceiling_of=next(iter(rows)))
    for name, ledger in ledgers.items():
        if ledger:
            print(f"\nprivacy ledger of {name}:")
            print(pd.DataFrame(ledger).to_string(index=False))


if __name__ == "__main__":
    main()
