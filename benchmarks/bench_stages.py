"""Time split + analyze + encode on the full adult table and on planes + flights.

Each measurement runs in a fresh subprocess so that its peak memory is its own. Prints seconds per stage,
total seconds and peak resident memory, for 25 %, 50 % and 100 % of the rows (to show linear growth).

    python benchmarks/bench_stages.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load, peak_rss_mb, timer  # noqa: E402


def run_one(dataset: str, fraction: float) -> dict:
    import synthgen as sg

    results: dict = {}
    with tempfile.TemporaryDirectory() as ws:
        if dataset == "adult":
            data = load("adult")
            data = data.iloc[: int(len(data) * fraction)]
            rows = len(data)
            with timer(results, "split"):
                sg.split(data, workspace_dir=ws, random_state=0)
        else:
            planes, flights = load("planes"), load("flights")
            planes = planes.iloc[: int(len(planes) * fraction)]
            flights = flights[flights["tailnum"].isin(planes["tailnum"])]
            rows = len(flights)
            with timer(results, "split"):
                sg.split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
                         workspace_dir=ws, random_state=0)
        with timer(results, "analyze"):
            sg.analyze(workspace_dir=ws, random_state=0)
        with timer(results, "encode"):
            sg.encode(workspace_dir=ws, random_state=0)
    results.update(rows=rows, total=results["split"] + results["analyze"] + results["encode"],
                   peak_rss_mb=peak_rss_mb())
    return results


def main() -> None:
    if len(sys.argv) == 3:
        print(json.dumps(run_one(sys.argv[1], float(sys.argv[2]))))
        return
    print(f"{'dataset':<16}{'rows':>9}{'split s':>9}{'analyze s':>11}{'encode s':>10}{'total s':>9}"
          f"{'s/100k rows':>13}{'peak MB':>9}")
    for dataset in ("adult", "planes+flights"):
        for fraction in (0.25, 0.5, 1.0):
            out = subprocess.run([sys.executable, __file__, dataset, str(fraction)], capture_output=True,
                                 text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{dataset:<16}{r['rows']:>9}{r['split']:>9.2f}{r['analyze']:>11.2f}{r['encode']:>10.2f}"
                  f"{r['total']:>9.2f}{r['total'] / r['rows'] * 1e5:>13.2f}{r['peak_rss_mb']:>9.0f}")


if __name__ == "__main__":
    main()
