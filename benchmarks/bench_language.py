"""synthgen's LanguageSynthesizer against the reference engine's LanguageModel (LSTM from scratch) on tweets.

Data and split: ``tweets`` (20,761 rows; ``--rows`` takes a seeded subset), 80/20 into training and holdout
rows (``sample(frac=0.2, random_state=0)``). Both engines learn one LANGUAGE table of five typed columns, in
this record order::

    source          LANGUAGE_CATEGORICAL    (19 apps; the rare ones are protected away)
    text            LANGUAGE_TEXT
    created_at      LANGUAGE_DATETIME
    retweet_count   LANGUAGE_NUMERIC
    favorite_count  LANGUAGE_NUMERIC

``is_retweet`` (False in every row) and ``in_reply_to_user_id_str`` (an 18-digit user id, NULL in 90 % of
the rows: an identifier, not a quantity) are left out. All columns are targets, none context: every typed
column is then generated, so its validity is measured; no engine gets the prompt for free.

Protocol: each engine runs in its own process with one torch thread (``--threads``), both at the same time
(so that on a shared machine they train under the same load; ``--sequential`` runs one after the other),
its defaults otherwise,
the same training budget (``--minutes``, ``max_epochs=100``) on the same training rows (each makes its own
80/20 training/validation split of them), then generates ``--n-sample`` rows (timed). The reference runs with
``enable_flexible_generation=False`` (a fixed column order, like synthgen's record) so that its validation
loss does not pay for a shuffled key order, and with ``rare_category_replacement_method="sample"`` (no
``_RARE_`` placeholders), synthgen's default.

Figures, side by side:

- ``valid <column>``: share of generated values that are valid against the engine's own published statistics:
  a category of the published set (``_RARE_`` is no category), a number that is not NULL, lies within the
  published bounds and has at most the published decimals, a datetime that is not NULL and lies within the
  published bounds.
- ``fit_s``: wall time of ``fit`` (split, analyze, encode, tokenizer and training).
- ``val_nats_per_char``: the best validation loss, in nats per character of the validation records' values.
  The tokenizers differ (synthgen: byte-level BPE with digits one per token, fields closed by a token; the
  reference: BPE over a JSON record), so the loss per token is not comparable; the record's summed
  negative log-likelihood over all its predicted tokens (synthgen: target fields, ``<sep>``, ``<eos>``; the
  reference: the JSON keys and punctuation, values, ``</s>``) divided by the characters of its values
  (text, category, numbers, ``YYYY-MM-DDTHH:MM:SS``) is. The reference's value is its per-token validation
  loss times its validation set's token count (its tokenizer, re-run on its encoded records).
- ``time_to_ref_quality_s``: training time (the engines' own ``total_time`` of each validation) until the
  validation loss per character first reaches the reference's best; for the reference, the time of its best
  validation. ``time_to_ref_quality_ratio`` is synthgen's over the reference's (target ≤ 0.5). Both engines
  validate once per epoch; synthgen's curve gets earlier points from extra runs with the same seed and a
  fractional ``max_epochs`` (``--probe-epochs``, default 0.25 and 0.5: a run that stops at its epoch budget
  validates there), run after its main run while the reference is still busy.
- ``gen_rows_per_s``: rows per second of the timed ``sample`` (target ≥ 10× the reference's).
- ``peak_mb``: the peak resident memory of the engine's process (``ru_maxrss``; target below the reference's).
- text figures of ``synthgen.evaluate(trn, synthetic, holdout)`` for both synthetic samples: lengths, word
  and word-pair frequency accuracy, the TF-IDF discriminator, context prediction, memorisation, each with the
  holdout's own value where ``evaluate`` gives one.

Usage::

    python benchmarks/bench_language.py --quick            # 3,000 rows, 6 min budget, 256 sampled rows
    python benchmarks/bench_language.py                    # all rows, 30 min budget, 1,000 sampled rows
    python benchmarks/bench_language.py --rows 6000 --minutes 8 --n-sample 500
    python benchmarks/bench_language.py --quick --skip-reference
    python benchmarks/bench_language.py --quick --keep /tmp/bench-language     # keep data, samples, figures
    python benchmarks/bench_language.py --evaluate-only /tmp/bench-language    # and evaluate them again

The reference engine is installed into ``benchmarks/.venv-reference`` on first use (see ``_reference.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load, peak_rss_mb, run_engine  # noqa: E402
from _reference import engine_script  # noqa: E402

COLUMNS = {
    "source": "LANGUAGE_CATEGORICAL",
    "text": "LANGUAGE_TEXT",
    "created_at": "LANGUAGE_DATETIME",
    "retweet_count": "LANGUAGE_NUMERIC",
    "favorite_count": "LANGUAGE_NUMERIC",
}
QUICK = {"rows": 3000, "minutes": 6.0, "n_sample": 256}
FULL = {"rows": None, "minutes": 30.0, "n_sample": 1000}

SYNTHGEN_RUN = engine_script("""
from synthgen import LanguageSynthesizer
start = time.perf_counter()
synth = LanguageSynthesizer(tgt_encoding_types=args["encoding_types"], max_training_time=args["minutes"],
                            max_epochs=args["max_epochs"], n_threads=args["threads"], workspace_dir=args["workspace"],
                            random_state=0, verbose=0).fit(trn)
fit_s = time.perf_counter() - start
start = time.perf_counter()
sample = synth.sample(args["n_sample"], random_state=1)
gen_s = time.perf_counter() - start
sample.to_parquet(args["out"])
# validation loss per character: val_loss is nats per record over the target's tokens
ws = synth.workspace_
val = pd.concat([ws.read_parquet(p) for p in ws.partitions(ws.encoded_data, "val")], ignore_index=True)
chars = sum(int(val[c].dropna().astype(str).str.len().sum()) for c in val.columns if c.startswith("tgt:"))
history = [{"total_time": float(r.total_time), "epoch": float(r.epoch),
            "val_nats_per_char": float(r.val_loss) * len(val) / chars}
           for r in synth.history_.itertuples() if r.val_loss == r.val_loss]
print(json.dumps({"fit_s": fit_s, "gen_s": gen_s, "gen_rows_per_s": len(sample) / gen_s,
                  "epochs": float(synth.history_["epoch"].iloc[-1]), "history": history,
                  "stats": synth.stats_, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

REFERENCE_RUN = engine_script("""
from mostlyai.engine import LanguageModel
start = time.perf_counter()
model = LanguageModel(tgt_encoding_types=args["encoding_types"], max_training_time=args["minutes"],
                      max_epochs=args["max_epochs"], enable_flexible_generation=False,
                      workspace_dir=args["workspace"], random_state=0, verbose=0)
model.fit(trn)
fit_s = time.perf_counter() - start
start = time.perf_counter()
sample = model.sample(n_samples=args["n_sample"], rare_category_replacement_method="sample")
gen_s = time.perf_counter() - start
sample.to_parquet(args["out"])
ws = Path(args["workspace"])
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(str(ws / "ModelStore" / "model-data"))
val = pd.concat([pd.read_parquet(p) for p in sorted((ws / "OriginalData" / "encoded-data").glob("*-val.parquet"))],
                ignore_index=True)
# the training text is <s> + ctx + tgt + </s>; every token after <s> is a label (the loss is a mean over them)
ids = tokenizer((val["ctx"] + val["tgt"]).tolist(), add_special_tokens=False)["input_ids"]
labels = sum(len(i) + 1 for i in ids)
chars = sum(sum(len(str(v)) for v in json.loads(t).values() if v is not None) for t in val["tgt"])
progress = pd.read_csv(ws / "ModelStore" / "model-data" / "progress-messages.csv")
# a run stopped by its budget before its first epoch ended may have no validation (no val_loss column)
history = [{"total_time": float(r.total_time), "epoch": float(r.epoch),
            "val_nats_per_char": float(r.val_loss) * labels / chars}
           for r in progress.itertuples() if "val_loss" in progress and r.val_loss == r.val_loss]
stats = json.loads((ws / "ModelStore" / "tgt-stats" / "stats.json").read_text())
print(json.dumps({"fit_s": fit_s, "gen_s": gen_s, "gen_rows_per_s": len(sample) / gen_s,
                  "epochs": float(progress["epoch"].iloc[-1]), "history": history, "stats": stats,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def validity(sample, stats: dict) -> dict[str, float]:
    """Share of valid values per typed column, against the engine's published statistics."""
    import numpy as np
    import pandas as pd

    out = {}
    for column, encoding in COLUMNS.items():
        column_stats = stats["columns"][column]
        values = sample[column]
        if encoding == "LANGUAGE_CATEGORICAL":
            categories = set(column_stats.get("categories", [])) - {"_RARE_"}
            valid = values.map(lambda v, c=categories: isinstance(v, str) and v in c)
        elif encoding == "LANGUAGE_NUMERIC":
            numbers = pd.to_numeric(values, errors="coerce").astype("float64")
            scale = int(column_stats.get("max_scale", 0))
            lo, hi = column_stats.get("min"), column_stats.get("max")
            if lo is None or hi is None:
                valid = pd.Series(False, index=values.index)
            else:
                valid = numbers.notna() & np.isfinite(numbers) & (numbers >= lo) & (numbers <= hi) & (
                    (numbers * 10**scale - (numbers * 10**scale).round()).abs() < 1e-6)
        elif encoding == "LANGUAGE_DATETIME":
            stamps = pd.to_datetime(values, errors="coerce")
            lo, hi = pd.Timestamp(column_stats["min"]), pd.Timestamp(column_stats["max"])
            valid = stamps.notna() & (stamps >= lo) & (stamps <= hi)
        else:
            continue
        out[f"valid {column}"] = float(valid.mean())
    return out


def time_to_quality(history: list[dict], target: float) -> float:
    """Training time of the first validation whose loss per character is at most ``target`` (NaN if none)."""
    for record in history:
        if record["val_nats_per_char"] <= target + 1e-12:
            return record["total_time"]
    return math.nan


def text_figures(trn, sample, holdout) -> tuple[dict[str, float], dict[str, float]]:
    """The text figures of ``synthgen.evaluate`` for the ``text`` column: the sample's and the holdout's."""
    import inspect

    from synthgen import evaluate

    if "text_columns" not in inspect.signature(evaluate).parameters:
        return {}, {}  # a synthgen without text figures
    result = evaluate(trn, sample, holdout, text_columns=["text"], random_state=0)
    table = result.text_figures("text")
    return ({f"text {figure}": float(v) for figure, v in table["synthetic"].items()},
            {f"text {figure}": float(v) for figure, v in table["reference"].items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"small settings: {QUICK}")
    parser.add_argument("--rows", type=int, default=None, help="a seeded subset of the tweets (default: all)")
    parser.add_argument("--minutes", type=float, default=None, help="training budget of each engine")
    parser.add_argument("--n-sample", type=int, default=None, help="rows each engine generates (timed)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-evaluate", action="store_true")
    parser.add_argument("--probe-epochs", type=lambda text: [float(x) for x in text.split(",") if x],
                        default=[0.25, 0.5], help="synthgen's extra short runs, in epochs (comma-separated; "
                        "'' for none), for validation points before its first epoch ends")
    parser.add_argument("--keep", default=None, help="a folder to keep the data, the samples and the figures in")
    parser.add_argument("--evaluate-only", default=None, metavar="FOLDER",
                        help="print the figures kept in FOLDER by --keep, with the text figures evaluated anew")
    parser.add_argument("--sequential", action="store_true",
                        help="run the engines one after the other (default: both at once, one thread each)")
    options = parser.parse_args()
    if options.evaluate_only:
        import pandas as pd

        kept = Path(options.evaluate_only)
        rows = json.loads((kept / "figures.json").read_text())
        report(pd.read_parquet(kept / "trn.parquet"), pd.read_parquet(kept / "holdout.parquet"), rows,
               {name: pd.read_parquet(kept / f"{name}.parquet") for name in rows}, evaluate=True)
        return
    settings = dict(QUICK if options.quick else FULL)
    for key in settings:
        if getattr(options, key) is not None:
            settings[key] = getattr(options, key)

    import pandas as pd

    tweets = load("tweets")[list(COLUMNS)]
    if settings["rows"] is not None and settings["rows"] < len(tweets):
        tweets = tweets.sample(n=settings["rows"], random_state=0)
    tweets = tweets.reset_index(drop=True)
    holdout = tweets.sample(frac=0.2, random_state=0)
    trn = tweets.drop(holdout.index).reset_index(drop=True)
    holdout = holdout.reset_index(drop=True)
    print(f"tweets: {len(trn):,} training rows, {len(holdout):,} holdout rows; budget {settings['minutes']} min "
          f"and 100 epochs per engine; {settings['n_sample']:,} generated rows; torch threads = {options.threads}; "
          f"columns {COLUMNS}", flush=True)

    engines = {"synthgen": (sys.executable, SYNTHGEN_RUN)}
    if not options.skip_reference:
        from _reference import ensure_reference_env

        engines["reference"] = (str(ensure_reference_env()), REFERENCE_RUN)
    rows: dict[str, dict] = {}
    samples = {}
    with tempfile.TemporaryDirectory() as tmp:
        trn_path = Path(tmp) / "trn.parquet"
        trn.to_parquet(trn_path)

        def run(name: str) -> tuple[dict, float]:
            python, script = engines[name]
            args = {"trn": str(trn_path), "out": str(Path(tmp) / f"{name}.parquet"),
                    "workspace": str(Path(tmp) / f"ws-{name}"), "threads": options.threads,
                    "minutes": settings["minutes"], "max_epochs": 100.0, "n_sample": settings["n_sample"],
                    "encoding_types": COLUMNS}
            start = time.perf_counter()
            figures = run_engine(python, script, args, options.threads)
            elapsed = time.perf_counter() - start
            if name == "synthgen":
                # Validation comes once per epoch; shorter runs of the same seed (the same trajectory, a fit
                # with a fractional max_epochs validates where it stops) add earlier points to the curve.
                for fraction in options.probe_epochs:
                    probe = run_engine(python, script, {**args, "max_epochs": fraction, "n_sample": 1,
                                                        "workspace": f"{args['workspace']}-{fraction}",
                                                        "out": f"{args['out']}-{fraction}"}, options.threads)
                    figures["history"] = sorted(figures["history"] + probe["history"],
                                                key=lambda h: h["total_time"])
            return figures, elapsed

        if options.sequential:
            results = {name: run(name) for name in engines}
        else:
            # side by side: on a shared machine both engines then see the same load while they train
            with ThreadPoolExecutor(len(engines)) as pool:
                futures = {name: pool.submit(run, name) for name in engines}
                results = {name: future.result() for name, future in futures.items()}
        for name, (figures, elapsed) in results.items():
            samples[name] = pd.read_parquet(Path(tmp) / f"{name}.parquet")
            figures["best_val_nats_per_char"] = min((h["val_nats_per_char"] for h in figures["history"]),
                                                    default=math.nan)
            figures.update(validity(samples[name], figures.pop("stats")))
            rows[name] = figures
            print(f"{name}: {elapsed:.0f} s in all; fit {figures['fit_s']:.0f} s "
                  f"({figures['epochs']:.2f} epochs); validation nats/char by training time: "
                  + ", ".join(f"{h['total_time']:.0f}s {h['val_nats_per_char']:.4f}" for h in figures["history"]),
                  flush=True)

    target = rows["reference"]["best_val_nats_per_char"] if "reference" in rows else math.nan
    for figures in rows.values():
        figures["time_to_ref_quality_s"] = time_to_quality(figures["history"], target)
    if "reference" in rows:
        rows["synthgen"]["time_to_ref_quality_ratio"] = (
            rows["synthgen"]["time_to_ref_quality_s"] / rows["reference"]["time_to_ref_quality_s"])
        rows["synthgen"]["gen_speedup"] = rows["synthgen"]["gen_rows_per_s"] / rows["reference"]["gen_rows_per_s"]

    if options.keep:
        keep = Path(options.keep)
        keep.mkdir(parents=True, exist_ok=True)
        trn.to_parquet(keep / "trn.parquet")
        holdout.to_parquet(keep / "holdout.parquet")
        for name, sample in samples.items():
            sample.to_parquet(keep / f"{name}.parquet")
        (keep / "figures.json").write_text(json.dumps(rows, indent=1, default=str))
    report(trn, holdout, rows, samples, evaluate=not options.skip_evaluate)


def report(trn, holdout, rows: dict[str, dict], samples: dict, *, evaluate: bool) -> None:
    """Add the text figures (with ``evaluate``) and print every figure side by side."""
    holdout_figures: dict[str, float] = {}
    if evaluate:
        for name, sample in samples.items():
            start = time.perf_counter()
            figures, holdout_figures = text_figures(trn, sample, holdout)
            rows[name].update(figures)
            rows[name]["eval_s"] = time.perf_counter() - start

    keys = [f"valid {c}" for c, e in COLUMNS.items() if e != "LANGUAGE_TEXT"]
    keys += ["fit_s", "epochs", "best_val_nats_per_char", "time_to_ref_quality_s", "time_to_ref_quality_ratio",
             "gen_rows_per_s", "gen_speedup", "peak_mb"]
    keys += sorted({k for figures in rows.values() for k in figures} - set(keys) - {"history", "gen_s", "eval_s"})
    print(f"\nparent peak {peak_rss_mb():.0f} MB")
    print(f"{'figure':<34}" + "".join(f"{n:>14}" for n in rows) + f"{'holdout':>14}")
    for key in keys:
        cells = [figures.get(key) for figures in rows.values()] + [holdout_figures.get(key)]
        print(f"{key:<34}" + "".join(f"{v:>14.4f}" if isinstance(v, float) else f"{'' if v is None else v:>14}"
                                     for v in cells))


if __name__ == "__main__":
    main()
