"""The cost of the flights model's marginal calibration and of generating its flights, on one fitted model.

Fits the two-table flights model once (the training planes of ``bench_sequential.py``: 80 % of the planes, seed
0) for a fixed number of epochs into ``--workspace`` (reused when it already holds a model), then times, on one
torch thread, ``--repeats`` times each:

- ``calibration``: the pilot generations and offset fits that ``train`` runs after the network (seeded: the
  offsets' checksum is printed, so two code versions can be checked for identical offsets);
- ``generation``: the flights of every training plane, as codes (``SequentialARGN.sample``), with the offsets.

Both in wall-clock seconds and in the process's CPU seconds (``_cpu_s``: less sensitive to a loaded machine).

``--compare PATH`` runs the same measurements alternately with the synthgen package under ``PATH`` (e.g. main's
checkout) and this one, each in a fresh process, and prints the ratios: a before/after within one run, on the
same workspace, under whatever load the machine has::

    PYTHONPATH=. python benchmarks/bench_calibration_cost.py --workspace /tmp/flights-ws --compare /work/main
    PYTHONPATH=. python benchmarks/bench_calibration_cost.py --workspace /tmp/flights-ws --profile /tmp/cal.prof
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load  # noqa: E402


def prepare(workspace: Path, epochs: float) -> None:
    """Split, analyze, encode and train the flights model into ``workspace`` unless it holds one already."""
    import synthgen as sg
    from synthgen._workspace import Workspace

    if workspace.exists() and Workspace(workspace).has_trained_model():
        return
    planes, flights = load("planes"), load("flights")
    holdout = planes.sample(frac=0.2, random_state=0)
    trn_planes = planes.drop(holdout.index).reset_index(drop=True)
    trn_flights = flights[flights["tailnum"].isin(trn_planes["tailnum"])].reset_index(drop=True)
    sg.split(trn_flights, ctx_data=trn_planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
             workspace_dir=workspace, random_state=0)
    sg.analyze(workspace_dir=workspace, random_state=0)
    sg.encode(workspace_dir=workspace, random_state=0)
    sg.train(workspace_dir=workspace, max_epochs=epochs, random_state=0, n_threads=1)


def measure(workspace: Path, repeats: int, profile: str | None) -> dict:
    """Seconds of each repeat of the calibration and of the generation, and the offsets' checksum."""
    import torch

    from synthgen._workspace import Workspace
    from synthgen.models.tabular._bundle import column_specs
    from synthgen.models.tabular._calibration import calibration_subjects
    from synthgen.stages._encoded import load_sequences
    from synthgen.stages._generate import load_bundle
    from synthgen.stages._generation import TabularGenerator

    torch.set_num_threads(1)
    ws = Workspace(workspace)
    bundle = load_bundle(ws)
    names = [s for c in column_specs(bundle.stats["columns"]) for s in c.sub_columns]
    ctx_names = [s for c in column_specs(bundle.ctx_stats["columns"]) for s in c.sub_columns]
    trn = load_sequences(ws, "trn", names, ctx_names)
    contexts = trn.context[: trn.n_subjects]
    n_pilot = calibration_subjects(trn.n_subjects, len(trn.steps))
    calibration, generation, checksums, cpu = [], [], [], {"calibration": [], "generation": []}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    for _ in range(repeats):
        generator = TabularGenerator(bundle, torch.device("cpu"))
        start, start_cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        offsets = generator.fit_marginal_calibration(len(trn.steps), torch.Generator().manual_seed(7), contexts,
                                                     n_pilot)
        if profiler is not None:
            profiler.disable()
        calibration.append(time.perf_counter() - start)
        cpu["calibration"].append(time.process_time() - start_cpu)
        checksums.append(sum(float(value.double().abs().sum()) for value in offsets.values()))
        model = generator.model
        for name, value in offsets.items():
            model.get_buffer(name).copy_(value)
        start, start_cpu = time.perf_counter(), time.process_time()
        model.sample(contexts.long(), generator=torch.Generator().manual_seed(8))
        generation.append(time.perf_counter() - start)
        cpu["generation"].append(time.process_time() - start_cpu)
    if profiler is not None:
        profiler.dump_stats(profile)
    return {"calibration_s": calibration, "generation_s": generation, "calibration_cpu_s": cpu["calibration"],
            "generation_cpu_s": cpu["generation"], "offsets_checksum": checksums,
            "n_pilot_subjects": n_pilot, "n_subjects": trn.n_subjects}


def compare(workspace: Path, other: str, repeats: int, rounds: int) -> None:
    """``rounds`` alternating fresh-process measurements of ``other``'s synthgen and this one's; the ratios."""
    here = str(Path(__file__).resolve().parents[1])
    results: dict[str, list[dict]] = {other: [], here: []}
    for _ in range(rounds):
        for root in (other, here):
            env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, __file__, "--workspace", str(workspace), "--repeats",
                                  str(repeats), "--json"], capture_output=True, text=True, env=env, cwd=root)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-4000:])
            results[root].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(root, results[root][-1], flush=True)
    for key in ("calibration_s", "generation_s", "calibration_cpu_s", "generation_cpu_s"):
        before = min(v for r in results[other] for v in r[key])
        after = min(v for r in results[here] for v in r[key])
        print(f"{key}: {other} best {before:.1f} s, this checkout best {after:.1f} s, ratio {after / before:.3f}")
    same = {r["offsets_checksum"][0] for r in results[other]} == {r["offsets_checksum"][0] for r in results[here]}
    print("offsets checksum identical:", same)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", required=True, type=Path)
    parser.add_argument("--epochs", type=float, default=1.0, help="epochs of the model fitted once")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare", default=None, help="a checkout of synthgen to measure alternately with this")
    parser.add_argument("--rounds", type=int, default=2, help="alternations with --compare")
    parser.add_argument("--profile", default=None, help="write a cProfile of the calibration to this file")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    options = parser.parse_args()
    prepare(options.workspace, options.epochs)
    if options.compare:
        compare(options.workspace, options.compare, options.repeats, options.rounds)
        return
    figures = measure(options.workspace, options.repeats, options.profile)
    print(json.dumps(figures) if options.json else figures)


if __name__ == "__main__":
    main()
