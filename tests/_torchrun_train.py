"""Run by tests/test_distributed.py on every rank of ``torchrun --nproc_per_node 2``: the ``train`` stage.

``python _torchrun_train.py WORKSPACE OUT [streamed]``: trains the encoded WORKSPACE as the command line's
``train`` does under torchrun (each rank joins the gloo group from its environment; rank 0 alone writes the
model), and saves the weights this rank ends with, its rank, the group's size and whether it streamed the encoded
parts (``streamed``: the streaming threshold is set to 0 bytes) to ``OUT/rank{RANK}.pt``.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

import synthgen as sg
from synthgen.models.tabular import _sequential_streaming, _sequential_trainer, _streaming, _trainer
from synthgen.stages import _encoded

workspace, out = sys.argv[1], Path(sys.argv[2])
streamed = sys.argv[3:] == ["streamed"]
if streamed:
    _encoded.STREAMING_THRESHOLD_BYTES = 0
run_training = _trainer.run_training


def recorder(module):
    def recorded(*args, **kwargs):
        result = run_training(*args, **kwargs)
        torch.save({"state": result.best_state_dict, "rank": dist.get_rank(), "world_size": dist.get_world_size(),
                    "streamed": module in (_streaming, _sequential_streaming)}, out / f"rank{dist.get_rank()}.pt")
        return result
    return recorded


_trainer.run_training = recorder(_trainer)
_streaming.run_training = recorder(_streaming)
_sequential_trainer.run_training = recorder(_sequential_trainer)
_sequential_streaming.run_training = recorder(_sequential_streaming)
sg.train(workspace_dir=workspace, model="MOSTLY_AI/Small", max_epochs=2, random_state=0, n_threads=1, verbose=False)
