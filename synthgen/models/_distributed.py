"""Data-parallel training over ``torch.distributed`` ranks (gloo on CPUs, nccl on GPUs).

Every rank holds the model and the training data; each optimizer step takes one *global* batch of the epoch's
permutation (the same permutation on every rank, drawn from the shared generator, as ``DistributedSampler``
with ``set_epoch`` does) and every rank computes the gradient of its share of it. The gradients are summed over
the ranks in one flat all-reduce per optimizer step (after gradient accumulation), each share normalised by the
global batch, so every rank applies the mean gradient of the global batch and the weights stay identical.

Why not ``DistributedDataParallel``: the training tasks call the module's own methods (column orders, priors,
sequence windows), a random column order per batch leaves parameters unused in a step (DDP then needs
``find_unused_parameters``, a graph walk per step), and DDP's overlap of communication with the backward pass
buys nothing for models of a few MB. One all-reduce of the flattened gradients is what DDP does with one bucket.

The batch: the automatic batch size is chosen for ``n / world_size`` rows per rank, so the global batch, the
steps per epoch and the learning rate (``learn_rate_heuristic`` of the global batch) match those of one process:
the same samples seen give the same schedule. An explicit ``batch_size`` is per rank (the global batch is
``world_size`` times larger, and the automatic learning rate grows with its square root).

Randomness: the permutation and the validation column orders come from the shared generator (identical on all
ranks, as every rank gets the same ``random_state``); column orders of training batches and dropout come from a
per-rank generator, the rank's child of ``SeedSequence(seed)`` with ``seed`` drawn from the shared one.

Validation: rank ``r`` scores validation samples ``r, r + world, ...``; the losses are averaged over the ranks,
weighted by their samples. Rank 0 alone calls the progress and checkpoint callbacks (so it alone writes files)
and decides when to stop; its decision is broadcast.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistributedTraining", "init_from_environment", "process_rank", "rank_device", "run_on_local_ranks"]

_STOP_REASONS = (None, "max_epochs", "max_training_time", "early_stopping", "callback")


def environment_world_size() -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 when unset)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_environment(device: torch.device) -> bool:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE``, ``RANK``, ``MASTER_ADDR``...).

    Returns whether this call initialised it (the caller then destroys it); nothing happens outside torchrun or
    when a process group exists already.
    """
    if environment_world_size() <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend=_backend(device))
    return True


def rank_device(device: torch.device) -> torch.device:
    """This rank's CUDA device when ``device`` names CUDA without an index: ``cuda:LOCAL_RANK`` under torchrun,
    ``cuda:rank`` for ranks started by :func:`run_on_local_ranks`."""
    if device.type != "cuda" or device.index is not None or not dist.is_initialized():
        return device
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return torch.device("cuda", local % max(1, torch.cuda.device_count()))


def process_rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def _rank_main(rank: int, world_size: int, init_method: str, backend: str, function, kwargs) -> None:
    dist.init_process_group(backend, init_method=init_method, rank=rank, world_size=world_size)
    try:
        function(**kwargs)
    finally:
        dist.destroy_process_group()


def run_on_local_ranks(n_processes: int, device: torch.device, function, kwargs: dict, *,
                       writer_kwargs: dict) -> Any:
    """Run ``function(**kwargs)`` on ``n_processes`` ranks of a new process group on this machine.

    This process is rank 0 (it alone gets ``writer_kwargs`` as well: callbacks, which need not pickle) and
    starts ranks 1.. as spawned processes; the group meets through a file in a temporary folder. Returns rank
    0's result once every rank has finished.

    Raises
    ------
    RuntimeError
        A rank failed (its exit code is named).
    """
    backend = _backend(device)
    context = torch.multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="synthgen-ranks-") as folder:
        init_method = Path(os.path.join(folder, "rendezvous")).as_uri()
        workers = [context.Process(target=_rank_main, args=(rank, n_processes, init_method, backend, function, kwargs),
                                   daemon=True) for rank in range(1, n_processes)]
        for worker in workers:
            worker.start()
        succeeded = False
        try:
            dist.init_process_group(backend, init_method=init_method, rank=0, world_size=n_processes)
            try:
                result = function(**kwargs, **writer_kwargs)
            finally:
                dist.destroy_process_group()
            succeeded = True
        finally:
            for worker in workers:
                worker.join(timeout=None if succeeded else 5)
                if worker.is_alive():  # rank 0 failed: the others wait in a collective that never comes
                    worker.terminate()
                    worker.join()
    failed = [(rank, w.exitcode) for rank, w in enumerate(workers, start=1) if w.exitcode != 0]
    if failed:
        raise RuntimeError(f"training rank(s) failed: {', '.join(f'rank {r} exit code {c}' for r, c in failed)}.")
    return result


@attrs.define
class DistributedTraining:
    """This process's place among the ranks, and the collective operations of the training loop."""

    rank: int
    world_size: int
    device: torch.device
    n_validation: int = 0
    shared_generator: torch.Generator | None = None

    @classmethod
    def current(cls, device: torch.device) -> DistributedTraining | None:
        """The rank of an initialised process group of more than one process; None otherwise."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
            return None
        # gloo reduces CPU tensors, nccl CUDA ones
        comm = torch.device("cpu") if dist.get_backend() == "gloo" else device
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size(), device=comm)

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    # -- data ------------------------------------------------------------------------------------------
    def share(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch (contiguous, nearly equal parts; possibly empty)."""
        return rows.tensor_split(self.world_size)[self.rank]

    def validation_rows(self, n: int) -> torch.Tensor:
        """The validation samples this rank scores: ``rank, rank + world_size, ...``."""
        return torch.arange(self.rank, n, self.world_size)

    def rank_generator(self, shared: torch.Generator) -> torch.Generator:
        """Keep ``shared`` (the permutation, the validation orders) and return this rank's own generator, the
        rank's child of ``SeedSequence(seed)`` with ``seed`` drawn from ``shared`` (the same on every rank)."""
        self.shared_generator = shared
        seed = int(torch.randint(0, 2**62, (1,), generator=shared))
        child = np.random.SeedSequence(seed).spawn(self.world_size)[self.rank]
        per_rank = torch.Generator(device=shared.device)
        per_rank.manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)))
        return per_rank

    # -- collectives -----------------------------------------------------------------------------------
    def all_reduce_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Sum the gradients over the ranks, in one flat all-reduce (missing gradients count as zeros)."""
        params = [p for p in parameters if p.requires_grad]
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
        flat = flat.to(self.device)
        dist.all_reduce(flat)
        flat = flat.to(params[0].device)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def mean_validation_loss(self, loss: float | None) -> float | None:
        """The validation loss over all ranks' samples (None when no rank has any)."""
        weight = self.n_validation if loss is not None else 0
        total, count = self.sum((loss or 0.0) * weight, float(weight))
        return None if count == 0 else total / count

    def decide(self, stop_reason: str | None) -> str | None:
        """Rank 0's stop decision, on every rank."""
        code = torch.tensor([_STOP_REASONS.index(stop_reason)], dtype=torch.int64, device=self.device)
        dist.broadcast(code, src=0)
        return _STOP_REASONS[int(code)]

    def broadcast_parameters(self, model: nn.Module) -> None:
        """Rank 0's weights and buffers on every rank (as DDP does when it wraps a model)."""
        for tensor in model.state_dict().values():
            moved = tensor.detach().to(self.device)
            dist.broadcast(moved, src=0)
            tensor.copy_(moved.to(tensor.device))

    def barrier(self) -> None:
        dist.barrier()
