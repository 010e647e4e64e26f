"""Flights clock times (HHMM columns coded as an hour and a minute): where their KS distance to the training
flights comes from, and calibrations of one fixed network compared on every numeric column's KS ratio.

The split is `bench_sequential.py`'s (planes 80/20, seed 0). Fit a network once (`ablate_progress_calibration.py
fit`), then recalibrate it with several pilot seeds and sample each calibration with several sample seeds (all
2,658 training planes); every sample's clock-time histograms are kept, so the analysis can average over seeds:

    PYTHONPATH=. python benchmarks/ablate_progress_calibration.py fit --epochs 9 --seed 1 --out /tmp/s1.joblib
    PYTHONPATH=. python benchmarks/ablate_clock_calibration.py run /tmp/s1.joblib \\
        --variants per-code:7,per-code:8,per-code:9 --seeds 1,11,21 --out /tmp/clock-base.pkl
    PYTHONPATH=. python benchmarks/ablate_clock_calibration.py report /tmp/clock-base.pkl
    PYTHONPATH=. python benchmarks/ablate_clock_calibration.py noise     # the sampling-noise floor of the KS

Variants: `trained` (the calibration saved with the network) or `KIND:SEED`, recalibrated with pilot seed SEED,
where KIND is `per-code` (one offset per code of every sub-column; trending columns per progress bucket: the
calibration of main before issue 15's seventh round) or `joint` (the same, and each clock time's minute calibrated
given its hour: the calibration since the seventh round). `--evaluate N` evaluates the first N samples of each
variant in full (overall, coherence, discriminator AUC, DCR share).

The report decomposes a clock column's CDF error at the point of its KS maximum hh:mm, using
``F(hh:mm) = P(hour < hh) + P(hour = hh) · F(minute ≤ mm | hour = hh)``, into the part of the hour marginal
(the synthetic hours with the training minutes of each hour) and the part of the minute within the hour; and it
separates the error common to every sample (the network and calibration's bias) from the spread between pilot
seeds (noise frozen into the offsets) and between sample seeds (sampling noise). `noise` prints the KS that a
perfect model would show from sampling alone: two random halves of the training planes, scaled by 1/√2 to a
sample of the training flights' size.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import flights_split, ks_distance, numeric_columns  # noqa: E402

CLOCKS = ("sched_arr_time", "arr_time", "dep_time", "sched_dep_time")
_GRID = 2401  # HHMM values 0 … 2400


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(float, na_value=np.nan)


def _histogram(values: np.ndarray) -> np.ndarray:
    values = values[~np.isnan(values)]
    return np.bincount(np.rint(values).astype(np.int64), minlength=_GRID)[:_GRID]


def _recalibrate(synth, kind: str, seed: int, schedule=None) -> None:
    import torch

    from synthgen.domain import RareCategoryReplacementMethod
    from synthgen.models.tabular import _calibration
    from synthgen.models.tabular._calibration import calibration_subjects, fit_sequential_offsets

    generator = synth._generator_for(None)
    trn_planes, _, trn, _ = flights_split()
    _, context = generator._context(trn_planes, None, np.random.default_rng(0), ("context", "n"))
    context = torch.as_tensor(context.astype(np.int64))
    fixed = generator._fixed_probs(RareCategoryReplacementMethod.SAMPLE, None, None)
    suppressed = {s: [c for c, p in probs.items() if p == 0.0] for s, probs in fixed.items()}
    order = generator._column_order([], None, None)
    switches = {"JOINT_CALIBRATION": kind == "joint"}
    saved = {name: getattr(_calibration, name, None) for name in switches}
    for name, on in switches.items():
        if saved[name] is None and on:
            raise SystemExit(f"this synthgen has no {name}")
        if saved[name] is not None:
            setattr(_calibration, name, on)
    model = generator.model
    if kind == "joint" and not bool(model.pair_counts.any()):
        # a network saved before the joint calibration: its targets from the encoded training flights
        model.pair_counts.copy_(model.value_pairs.counts(_training_steps(generator, trn_planes, trn)).double())
    try:
        fit_sequential_offsets(model, context, n_subjects=calibration_subjects(len(trn_planes), len(trn)),
                               order=order, suppressed=suppressed, uncalibrated=generator._set_after_drawing(order),
                               generator=torch.Generator().manual_seed(seed),
                               **({} if schedule is None else {"schedule": schedule}))
    finally:
        for name, value in saved.items():
            if value is not None:
                setattr(_calibration, name, value)


def _training_steps(generator, trn_planes: pd.DataFrame, trn: pd.DataFrame):
    """The encoded training flights, grouped by plane in the context order."""
    import torch

    from synthgen.column_encodings import SequenceIndex
    from synthgen.stages._codec import encode_table

    subject = pd.Index(trn_planes["tailnum"]).get_indexer(trn["tailnum"])
    order = np.argsort(subject, kind="stable")
    codes = encode_table(trn.iloc[order].reset_index(drop=True), generator.columns, table="tgt",
                         rng=np.random.default_rng(0), sequence=SequenceIndex(subject[order]))
    return torch.as_tensor(np.stack([codes[n] for n in generator._sub_names], axis=1).astype(np.int64))


def run(options) -> None:
    import joblib
    import torch

    torch.set_num_threads(1)
    trn_planes, _, trn, holdout = flights_split()
    columns = numeric_columns(trn)
    holdout_ks = {c: ks_distance(_values(holdout, c), _values(trn, c)) for c in columns}
    synth = joblib.load(options.model)
    model = synth._generator_for(None).model
    trained = {name: buffer.clone() for name, buffer in model.named_buffers()}
    results = {"training": {c: _histogram(_values(trn, c)) for c in CLOCKS}, "holdout_ks": holdout_ks,
               "samples": []}
    for variant in options.variants.split(","):
        kind, _, seed = variant.partition(":")
        for name, buffer in model.named_buffers():  # every variant starts from the network as saved
            buffer.copy_(trained[name])
        start = time.perf_counter()
        if kind != "trained":
            _recalibrate(synth, kind, int(seed), None if options.schedule is None else json.loads(options.schedule))
        seconds = time.perf_counter() - start
        print(f"{variant}: calibration {seconds:.1f} s", flush=True)
        for k, sample_seed in enumerate(int(s) for s in options.seeds.split(",")):
            start = time.perf_counter()
            sample = synth.sample(context=trn_planes, random_state=sample_seed)
            sample_s = time.perf_counter() - start
            ratios = {c: ks_distance(_values(sample, c), _values(trn, c)) / holdout_ks[c] for c in columns}
            results["samples"].append({
                "variant": variant, "sample_seed": sample_seed, "calibration_s": seconds,
                "sample_s": sample_s, "ratios": ratios,
                "histograms": {c: _histogram(_values(sample, c)) for c in CLOCKS}})
            line = (f"  sample {sample_seed}: largest {max(ratios.values()):.2f} ("
                    + ", ".join(f"{c} {r:.2f}" for c, r in ratios.items() if r > 1.0) + ")")
            if k < options.evaluate:  # the full evaluation, as the benchmark's (one DCR evaluation)
                from synthgen import evaluate

                result = evaluate(trn, sample, holdout, context_key="tailnum", random_state=0)
                results["samples"][-1]["evaluation"] = {
                    "overall": result.overall, "coherence": result.coherence,
                    "auc": result.discriminator_auc, "dcr_share": result.dcr_share}
                line += (f"; overall {result.overall:.4f}, coherence {result.coherence:.4f}, "
                         f"AUC {result.discriminator_auc:.4f}, DCR share {result.dcr_share:.4f}")
            print(line, flush=True)
        with open(options.out, "wb") as file:
            pickle.dump(results, file)


def _cdf(histogram: np.ndarray) -> np.ndarray:
    return np.cumsum(histogram) / histogram.sum()


def _parts(synthetic: np.ndarray, training: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The CDF error of ``synthetic`` against ``training`` on the HHMM grid, as (hour part, minute part):
    hour part = the error if every synthetic hour took the training minutes of that hour; minute part = the
    rest, ``P_syn(hour) · (F_syn(minute | hour) − F_trn(minute | hour))``."""
    ps, pt = synthetic / synthetic.sum(), training / training.sum()
    hours = np.arange(_GRID) // 100
    hs, ht = np.bincount(hours, ps, minlength=25), np.bincount(hours, pt, minlength=25)
    below_s, below_t = np.concatenate([[0.0], np.cumsum(hs)[:-1]]), np.concatenate([[0.0], np.cumsum(ht)[:-1]])
    within_s = np.cumsum(ps) - below_s[hours]  # P(hour = hh, minute ≤ mm)
    within_t = np.cumsum(pt) - below_t[hours]
    f_s = np.divide(within_s, hs[hours], out=np.zeros(_GRID), where=hs[hours] > 0)
    f_t = np.divide(within_t, ht[hours], out=np.zeros(_GRID), where=ht[hours] > 0)
    hour_part = below_s[hours] - below_t[hours] + (hs[hours] - ht[hours]) * f_t
    return hour_part, hs[hours] * (f_s - f_t)


def _clock(value: int) -> str:
    return f"{value // 100:02d}:{value % 100:02d}"


def report(options) -> None:
    merged = {"samples": []}
    for path in options.files:
        with open(path, "rb") as file:
            part = pickle.load(file)
        merged["training"], merged["holdout_ks"] = part["training"], part["holdout_ks"]
        merged["samples"] += part["samples"]
    samples, holdout_ks = merged["samples"], merged["holdout_ks"]
    variants = list(dict.fromkeys(s["variant"] for s in samples))
    kinds = list(dict.fromkeys(v.partition(":")[0] for v in variants))
    # KS ratios per kind: mean and worst per column, samples with every column within 1.5x
    table = {}
    for kind in kinds:
        mine = [s for s in samples if s["variant"].partition(":")[0] == kind]
        ratios = pd.DataFrame([s["ratios"] for s in mine])
        table[f"{kind} mean"] = ratios.mean()
        table[f"{kind} worst"] = ratios.max()
        table.setdefault("_within", {})[kind] = (
            f"{int((ratios.max(axis=1) <= 1.5).sum())}/{len(mine)} samples all <= 1.5x; mean largest "
            f"{ratios.max(axis=1).mean():.2f}; calibration {np.mean([s['calibration_s'] for s in mine]):.1f} s")
    within = table.pop("_within")
    print(pd.DataFrame(table).round(2).to_string())
    for kind, line in within.items():
        print(f"{kind}: {line}")
    for column in options.columns.split(","):
        training = merged["training"][column]
        scale = holdout_ks[column]
        print(f"\n{column} (holdout KS {scale:.4f}; figures in units of 1e-3 of the CDF)")
        for kind in kinds:
            mine = [s for s in samples if s["variant"].partition(":")[0] == kind]
            errors = np.array([_cdf(s["histograms"][column]) - _cdf(training) for s in mine])
            rows = []
            for s, error in zip(mine, errors, strict=True):
                hour, minute = _parts(s["histograms"][column], training)
                at = int(np.abs(error).argmax())
                rows.append({"sample": f"{s['variant']}/{s['sample_seed']}", "KS": 1e3 * abs(error[at]),
                             "at": _clock(at), "error": 1e3 * error[at], "hour part": 1e3 * hour[at],
                             "minute part": 1e3 * minute[at], "KS hours only": 1e3 * np.abs(hour).max(),
                             "KS minutes only": 1e3 * np.abs(minute).max()})
            print(pd.DataFrame(rows).round(2).to_string(index=False))
            # the error common to all samples of this kind, and the spread around it
            common = errors.mean(0)
            hour, minute = _parts(np.mean([s["histograms"][column] / s["histograms"][column].sum()
                                           for s in mine], axis=0), training)
            at = int(np.abs(common).argmax())
            by_pilot = {}
            for s, error in zip(mine, errors, strict=True):
                by_pilot.setdefault(s["variant"], []).append(error)
            pilot_means = np.array([np.mean(v, axis=0) for v in by_pilot.values()])
            within_pilot = np.concatenate([np.array(v) - np.mean(v, axis=0) for v in by_pilot.values()])
            n_per = np.mean([len(v) for v in by_pilot.values()])
            sample_sd = within_pilot.std(0, ddof=0) * np.sqrt(n_per / max(n_per - 1, 1))
            pilot_sd = np.sqrt(np.clip(pilot_means.var(0, ddof=1) - sample_sd**2 / n_per, 0, None)) \
                if len(pilot_means) > 1 else np.zeros(_GRID)
            own = [1e3 * np.abs(a - b).max() for v in by_pilot.values() for i, a in enumerate(v) for b in v[i + 1:]]
            print(f"  {kind}: mean error curve's max {1e3 * abs(common[at]):.2f} at {_clock(at)} "
                  f"(hour part {1e3 * hour[at]:.2f}, minute part {1e3 * minute[at]:.2f}; KS of the mean's hour "
                  f"part {1e3 * np.abs(hour).max():.2f}, minute part {1e3 * np.abs(minute).max():.2f}); "
                  f"spread at that point: between samples sd {1e3 * sample_sd[at]:.2f}, between pilots sd "
                  f"{1e3 * pilot_sd[at]:.2f}; max over the grid: samples {1e3 * sample_sd.max():.2f}, pilots "
                  f"{1e3 * pilot_sd.max():.2f}; KS between two samples of one calibration "
                  f"{np.mean(own) if own else float('nan'):.2f} (mean of {len(own)})")


def noise(options) -> None:
    trn_planes, _, trn, holdout = flights_split()
    rng = np.random.default_rng(options.seed)
    tails = trn_planes["tailnum"].to_numpy()
    columns = numeric_columns(trn)
    figures = {c: [] for c in columns}
    for _ in range(options.splits):
        half = trn["tailnum"].isin(rng.permutation(tails)[: len(tails) // 2]).to_numpy()
        for c in columns:
            v = _values(trn, c)
            figures[c].append(ks_distance(v[half], v[~half]) / np.sqrt(2))
    holdout_ks = pd.Series({c: ks_distance(_values(holdout, c), _values(trn, c)) for c in columns})
    table = pd.DataFrame({"holdout KS": holdout_ks, "noise median": {c: np.median(v) for c, v in figures.items()},
                          "noise p90": {c: np.quantile(v, 0.9) for c, v in figures.items()}})
    table["median / holdout"] = table["noise median"] / table["holdout KS"]
    table["p90 / holdout"] = table["noise p90"] / table["holdout KS"]
    print(table.round(4).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    running = commands.add_parser("run", help="recalibrate and sample one saved network, keep the histograms")
    running.add_argument("model")
    running.add_argument("--variants", default="per-code:7,per-code:8,per-code:9")
    running.add_argument("--seeds", default="1,11,21")
    running.add_argument("--out", required=True)
    running.add_argument("--evaluate", type=int, default=0,
                         help="samples of each variant evaluated in full (overall, coherence, AUC, DCR share)")
    running.add_argument("--schedule", default=None,
                         help="JSON [[share of the pilot, share of the correction], ...] per round (ablations)")
    reporting = commands.add_parser("report", help="KS ratios and the clock times' decomposition")
    reporting.add_argument("files", nargs="+")
    reporting.add_argument("--columns", default=",".join(CLOCKS))
    noisy = commands.add_parser("noise", help="the KS of sampling noise alone (halves of the training planes)")
    noisy.add_argument("--splits", type=int, default=20)
    noisy.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    {"run": run, "report": report, "noise": noise}[options.command](options)


if __name__ == "__main__":
    main()
