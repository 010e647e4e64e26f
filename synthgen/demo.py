"""A short demo: ``python -m synthgen.demo``.

Runs the data stages (split → analyze → encode) on the bundled census sample and on the two-table
planes/flights sample, and prints what they wrote into the workspace.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from . import analyze, encode, split
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
        stats = json.loads((census_ws / "ModelStore" / "tgt-stats" / "stats.json").read_text())
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
        seq = json.loads((flights_ws / "ModelStore" / "tgt-stats" / "stats.json").read_text())["seq_len"]
        print(f"  sequence lengths (protected): min {seq['min']}, median {seq['median']}, max {seq['max']}")


if __name__ == "__main__":
    main()
