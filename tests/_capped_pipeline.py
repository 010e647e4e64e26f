"""Run in a subprocess by tests/test_out_of_core.py: a stage pipeline under a capped address space.

``python _capped_pipeline.py MODE DATA WORKSPACE CAP_BYTES N_PARTITIONS``; MODE ``streamed`` runs
split/analyze/encode on the parquet folder DATA, ``in_memory`` reads it whole first. Prints the peak virtual
memory (VmPeak, bytes) on success; exits 3 on MemoryError.
"""

import resource
import sys


def _vm_peak() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmPeak in /proc/self/status")


def main() -> None:
    mode, data, workspace, cap, n_partitions = sys.argv[1:6]
    import pandas as pd

    import synthgen as sg
    from synthgen.stages import _encode, _split  # noqa: F401  (imported before the cap: torch maps large libraries)

    if int(cap):
        resource.setrlimit(resource.RLIMIT_AS, (int(cap), int(cap)))
    try:
        source = data if mode == "streamed" else pd.read_parquet(data)
        sg.split(source, workspace_dir=workspace, n_partitions=int(n_partitions), random_state=0, verbose=False)
        sg.analyze(workspace_dir=workspace, random_state=0, verbose=False)
        sg.encode(workspace_dir=workspace, random_state=0, verbose=False)
    except MemoryError:
        sys.exit(3)
    print(_vm_peak())


if __name__ == "__main__":
    main()
