"""Data-parallel training over torch.distributed ranks: 2 gloo processes on the CPU."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import synthgen as sg
from synthgen import TabularSynthesizer
from synthgen._options import InvalidParameterError
from synthgen._workspace import Workspace
from synthgen.models.tabular import FlatARGN, train_model
from synthgen.models.tabular._bundle import column_specs, weights_from_bytes
from synthgen.stages._encoded import load_flat_codes

COLUMNS = ["age", "workclass", "education", "marital_status", "sex", "hours_per_week", "income"]
EPOCHS = 3


@pytest.fixture(scope="module")
def encoded(adult_full, tmp_path_factory):
    data = adult_full[COLUMNS].sample(n=1000, random_state=2).reset_index(drop=True)
    ws = tmp_path_factory.mktemp("ddp") / "ws"
    sg.split(data, workspace_dir=ws, random_state=0, verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    return data, ws


def _fit(ws, batch_size: int) -> tuple[dict, list]:
    """Train the small flat model of ``ws`` for EPOCHS epochs from seed 0 (one rank's part under a group)."""
    workspace = Workspace(ws)
    specs = column_specs(workspace.read_stats("tgt")["columns"])
    names = [s for spec in specs for s in spec.sub_columns]
    trn, val = load_flat_codes(workspace, "trn", names), load_flat_codes(workspace, "val", names)
    generator = torch.Generator().manual_seed(0)
    model = FlatARGN.from_preset(specs, size="MOSTLY_AI/Small", generator=generator)
    result = train_model(model, trn, val, max_epochs=EPOCHS, batch_size=batch_size, generator=generator)
    return result.best_state_dict, result.history


def _rank(rank: int, world_size: int, init_file: str, ws, out) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        state, history = _fit(ws, batch_size=32)  # per rank: a global batch of 64
        torch.save({"state": state, "history": history}, out / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_train_identical_weights_as_good_as_one_process(encoded, tmp_path, monkeypatch):
    _, ws = encoded
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    # forked ranks skip the import of torch (tens of seconds on a busy machine); fit(n_processes=2) spawns
    mp.start_processes(_rank, args=(2, str(tmp_path / "rendezvous"), ws, tmp_path), nprocs=2, join=True,
                       start_method="fork")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0]["state"].keys() == ranks[1]["state"].keys()
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    assert ranks[0]["history"] == [{**r, "total_time": ranks[0]["history"][i]["total_time"]}
                                   for i, r in enumerate(ranks[1]["history"])]  # the same reduced losses

    _, single = _fit(ws, batch_size=64)
    distributed = ranks[0]["history"]
    # the same samples seen: as many epochs, as many steps (the global batch is one process's batch)
    assert [r["samples"] for r in distributed] == [r["samples"] for r in single]
    assert [r["steps"] for r in distributed] == [r["steps"] for r in single]
    best_single = min(r["val_loss"] for r in single)
    best_distributed = min(r["val_loss"] for r in distributed)
    assert math.isfinite(best_distributed)
    assert abs(best_distributed - best_single) < 0.03 * best_single


def test_estimator_trains_on_two_processes(encoded):
    data, _ = encoded
    synth = TabularSynthesizer(model="small", max_epochs=2, n_processes=2, random_state=0, verbose=False)
    synth.fit(data.head(600))
    history = synth.history_
    assert len(history) == 2 and np.isfinite(history["val_loss"]).all()
    assert history["samples"].iloc[-1] == 2 * synth.stats_["no_of_training_records"]  # every row, twice
    assert synth.sample(20).columns.tolist() == COLUMNS


@pytest.mark.parametrize("value", [0, 1.5, "2"])
def test_bad_n_processes(encoded, value):
    _, ws = encoded
    with pytest.raises(InvalidParameterError, match=r"The 'n_processes' parameter of train must be an int in the "
                                                    rf"range \[1, inf\) or None. Got {value!r} instead."):
        sg.train(workspace_dir=ws, n_processes=value)


@pytest.fixture
def encoded_two_table(planes_flights, tmp_path_factory):
    planes, flights = planes_flights
    planes = planes.head(40)
    flights = flights[flights["tailnum"].isin(planes["tailnum"])][["tailnum", "dep_delay", "carrier", "distance"]]
    ws = tmp_path_factory.mktemp("ddp-two-table") / "ws"
    sg.split(flights, ctx_data=planes[["tailnum", "year", "seats"]], ctx_primary_key="tailnum",
             tgt_context_key="tailnum", workspace_dir=ws, random_state=0, verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    return None, ws


@pytest.mark.parametrize(("data", "streamed"), [("encoded", False), ("encoded", True), ("encoded_two_table", True)],
                         ids=["flat-in-memory", "flat-streamed", "two-table-streamed"])
def test_torchrun_two_gloo_ranks_end_with_identical_weights(request, tmp_path, data, streamed):
    """``torchrun --nproc_per_node 2`` on the CPU (gloo): the ranks end with the same weights, rank 0's are saved.

    ``streamed``: every rank streams the encoded parts (data larger than memory), with the same outcome.
    """
    _, ws = request.getfixturevalue(data)
    workspace = tmp_path / "ws"
    shutil.copytree(ws, workspace)
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(Path(__file__).with_name("_torchrun_train.py")), str(workspace), str(tmp_path),
                           *(["streamed"] if streamed else [])],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]  # one group of two, not two runs
    assert [r["streamed"] for r in ranks] == [streamed, streamed]
    saved = weights_from_bytes(Workspace(workspace).read_model_weights())
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
        if name != "sampling_offsets":  # fitted by rank 0 after training (the marginal calibration of a flat model)
            assert torch.equal(value, saved[name]), name
    if data == "encoded":
        assert bool(saved["sampling_offsets"].any())
    history = Workspace(workspace).read_progress()
    assert len(history) == 2 and np.isfinite(history["val_loss"]).all()
