"""The torch thread count for the duration of a fit or a sample: chosen for the work, restored afterwards.

torch starts one intra-op thread per core. For synthgen's models (small matrix products per step) that is
rarely faster than one thread, and on a machine where anything else runs it is catastrophic: OpenMP threads
spin in barriers waiting for a core that another process holds, and training ran 100-170x slower than on one
thread (docs/tabular.md). So the automatic choice is one thread unless the work per step is large enough to
split and the machine has idle cores to split it over.

``torch.set_num_threads`` is process-wide: two fits running at the same time in threads of one process
share it, and the one that finishes first restores its starting value while the other still runs. Run
concurrent fits in separate processes (as joblib does by default), or pass the same ``n_threads`` to all.
The inter-op pool is left alone: torch fixes its size at its first use, and synthgen does not use it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["AUTO_MIN_WORK", "available_cores", "resolve_n_threads", "step_work", "torch_threads"]

_log = logging.getLogger(__name__)

# Multiply-adds per step (rows x model width) above which a second thread pays for its synchronisation when
# the cores are idle; below it, one thread is as fast or faster even on an idle machine (benchmarks/bench_threads.py).
AUTO_MIN_WORK = 2**24
# More threads than this never paid on the models measured; a cap keeps a large machine's many cores for
# others (and for the data loading and decoding that run beside torch).
AUTO_MAX_THREADS = 4


def step_work(model: torch.nn.Module, rows: int) -> float:
    """Multiply-adds of one step, roughly: every parameter is used once per row (embeddings overcount a little)."""
    return float(rows) * sum(p.numel() for p in model.parameters())


def available_cores() -> float:
    """Cores this process may use that other processes are not using: the CPU affinity less the load average.

    The 1-minute load average counts runnable processes machine-wide, so on a machine with more cores than
    this process's affinity it overestimates the competition for them; erring that way is the cheap one.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows: no load average, assume busy
        load = float(cores)
    return max(0.0, cores - load)


def resolve_n_threads(n_threads: int | None, *, device: torch.device, work: float) -> int:
    """The torch thread count for a fit or a sample.

    Parameters
    ----------
    n_threads : int or None
        An int is used as given. None chooses: one thread on CUDA (the CPU only launches kernels) and for
        small work; for ``work`` of at least :data:`AUTO_MIN_WORK` multiply-adds per step, one thread per
        idle core (:func:`available_cores`, rounded down), at most :data:`AUTO_MAX_THREADS` and at least one.
    device : torch.device
        Where the model runs.
    work : float
        Multiply-adds per step, roughly (:func:`step_work`).

    Returns
    -------
    int
    """
    if n_threads is not None:
        return int(n_threads)
    if device.type != "cpu" or work < AUTO_MIN_WORK:
        return 1
    return max(1, min(AUTO_MAX_THREADS, int(available_cores())))


@contextmanager
def torch_threads(n_threads: int) -> Iterator[int]:
    """Run the block with ``torch.set_num_threads(n_threads)`` and restore the previous count afterwards.

    Process-wide for the duration of the block (see the module's note on concurrent fits).
    """
    previous = torch.get_num_threads()
    if n_threads != previous:
        torch.set_num_threads(n_threads)
    _log.debug("torch threads: %d (was %d)", n_threads, previous)
    try:
        yield n_threads
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
