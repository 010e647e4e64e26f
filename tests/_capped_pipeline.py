"""Run in a subprocess by tests/test_out_of_core.py: the stages under a capped address space.

``python _capped_pipeline.py MODE SMALL BIG WORKDIR MARGIN_BYTES N_PARTITIONS``: runs split/analyze/encode on
the parquet folder SMALL (one partition's worth of rows) to measure the peak virtual memory of the stages, caps
the address space (``RLIMIT_AS``) at that peak plus MARGIN_BYTES, and then (MODE ``streamed``) runs the stages
on the folder BIG in N_PARTITIONS partitions, or (MODE ``whole``) reads BIG whole and splits that DataFrame.
Prints one JSON line.
"""

import json
import resource
import sys
from pathlib import Path


def _vm_peak() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmPeak in /proc/self/status")


def _stages(sg, data: str, workspace: Path, n_partitions: int) -> None:
    sg.split(data, workspace_dir=workspace, n_partitions=n_partitions, random_state=0, verbose=False)
    sg.analyze(workspace_dir=workspace, random_state=0, verbose=False)
    sg.encode(workspace_dir=workspace, random_state=0, verbose=False)


def main() -> None:
    mode, small, big, workdir, margin, n_partitions = sys.argv[1:7]
    import pandas as pd

    import synthgen as sg
    from synthgen.stages import _split_streamed

    _split_streamed.BUFFERED_BYTES = 2**21  # scaled down with the table: 2 MiB of write buffers

    _stages(sg, small, Path(workdir) / f"ws-small-{mode}", 1)
    pd.read_parquet(small)  # starts pyarrow's I/O threads before the cap (their stacks are address space too)
    calibrated = _vm_peak()
    cap = calibrated + int(margin)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    try:
        _stages(sg, big if mode == "streamed" else pd.read_parquet(big, use_threads=False), Path(workdir) / f"ws-{mode}",
                int(n_partitions))
        outcome = "done"
    except MemoryError:  # pyarrow's ArrowMemoryError is one too
        outcome = "MemoryError"
    except Exception as err:  # an ArrowException: an I/O thread could not map its stack under the cap
        if "Failed to launch worker thread" not in str(err):
            raise
        outcome = "MemoryError"
    print(json.dumps({"calibrated_peak": calibrated, "cap": cap, "peak": _vm_peak(), "outcome": outcome}))


if __name__ == "__main__":
    main()
