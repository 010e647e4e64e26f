"""A short demo: ``python -m synthgen.demo``.

Runs the data stages (split → analyze → encode) on the bundled census sample and on the two-table
planes/flights sample and prints what they wrote into the workspace; then fits a ``TabularSynthesizer`` on
the census sample, samples from it and prints the evaluation against a holdout.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from . import TabularSynthesizer, Workspace, analyze, encode, evaluate, split
from .datasets import load_census, load_flights


def _show(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(root)}  ({path.stat().st_size:,} bytes)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        census_ws = Path(tmp) / "census"
        census = load_census()
        print(f"census: {census.shape[0]:,} rows x {census.shape[1]} columns")
        split(census, workspace_dir=census_ws, random_state=0)
        analyze(workspace_dir=census_ws, random_state=0)
        encode(workspace_dir=census_ws, random_state=0)
        _show(census_ws)
        stats = Workspace(census_ws).read_stats("tgt")
        for column, info in stats["columns"].items():
            print(f"  {column:<16} {info['encoding_type']:<26} sub-columns {info['cardinalities']}")

        flights_ws = Path(tmp) / "flights"
        planes, flights = load_flights()
        print(f"\nplanes: {len(planes):,} rows, flights: {len(flights):,} rows (context key 'tailnum')")
        split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
              workspace_dir=flights_ws, random_state=0)
        analyze(workspace_dir=flights_ws, random_state=0)
        encode(workspace_dir=flights_ws, random_state=0)
        _show(flights_ws)
        seq = Workspace(flights_ws).read_stats("tgt")["seq_len"]
        print(f"  sequence lengths (protected): min {seq['min']}, median {seq['median']}, max {seq['max']}")

    holdout = census.sample(frac=0.2, random_state=0)
    training = census.drop(holdout.index)
    print(f"\nfitting a TabularSynthesizer (small model) on {len(training):,} census rows ...")
    synthesizer = TabularSynthesizer(model="small", max_training_time=0.5, random_state=0).fit(training)
    history = synthesizer.history_
    print(f"  {history['epoch'].iloc[-1]:.0f} epochs in {history['total_time'].iloc[-1]:.1f} s, "
          f"best validation loss {history['val_loss'].min():.3f}")
    synthetic = synthesizer.sample(len(training))
    print(synthetic.head().to_string())
    seeded = synthesizer.sample(seed_data=holdout[["sex", "age"]].head(3))
    print("\nseeded with sex and age:")
    print(seeded.to_string())
    print()
    print(evaluate(training, synthetic, holdout, random_state=0))


if __name__ == "__main__":
    main()
