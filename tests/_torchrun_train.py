"""Run by tests/test_distributed.py on every rank of ``torchrun --nproc_per_node 2``: the ``train`` stage.

``python _torchrun_train.py WORKSPACE OUT``: trains the encoded WORKSPACE as the command line's ``train`` does
under torchrun (each rank joins the gloo group from its environment; rank 0 alone writes the model), and saves
the weights this rank ends with, its rank and the group's size to ``OUT/rank{RANK}.pt``.
"""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

import synthgen as sg
from synthgen.models.tabular import _trainer

workspace, out = sys.argv[1], Path(sys.argv[2])
run_training = _trainer.run_training


def recorded(*args, **kwargs):
    result = run_training(*args, **kwargs)
    torch.save({"state": result.best_state_dict, "rank": dist.get_rank(), "world_size": dist.get_world_size()},
               out / f"rank{dist.get_rank()}.pt")
    return result


_trainer.run_training = recorded
sg.train(workspace_dir=workspace, model="MOSTLY_AI/Small", max_epochs=2, random_state=0, n_threads=1, verbose=False)
