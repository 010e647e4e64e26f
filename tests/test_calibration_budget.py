"""The marginal calibration's share of ``max_training_time``: its cost reserved before training, its pilot shrunk
to the time left after training (synthgen.stages._calibration_budget)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_two_tables

import synthgen as sg
from synthgen.models.tabular import ColumnSpec, SequentialARGN
from synthgen.models.tabular._calibration import SEQUENTIAL_SCHEDULE, calibration_rows, calibration_subjects
from synthgen.stages import _calibration_budget as budgeting
from synthgen.stages import _train
from synthgen.stages._calibration_budget import (
    CALIBRATION_SHARE,
    MIN_PILOT_SHARE,
    GenerationCost,
    flat_cost,
    measure_generation_cost,
    plan_calibration,
    sequential_cost,
    training_budget,
)


def test_plan_keeps_the_full_pilot_when_it_fits_and_shrinks_it_to_the_largest_that_fits():
    def estimate(size):
        return 2.0 + 0.01 * size  # seconds

    full = plan_calibration(estimate, 1_000, available_s=math.inf)
    assert (full.size, full.shrunk, full.over_budget) == (1_000, False, False)
    assert plan_calibration(estimate, 1_000, available_s=12.0).size == 1_000  # exactly fits
    shrunk = plan_calibration(estimate, 1_000, available_s=9.0)
    assert (shrunk.size, shrunk.shrunk, shrunk.over_budget) == (700, True, False)
    assert shrunk.estimated_s == pytest.approx(9.0)
    # below the floor's cost: the floor, marked over budget (never skipped)
    floor = plan_calibration(estimate, 1_000, available_s=1.0)
    assert floor.size == math.ceil(MIN_PILOT_SHARE * 1_000)
    assert floor.over_budget and floor.shrunk
    assert floor.record(seconds=3.0, reserved_s=0.5) == {
        "pilot_size": 500, "full_pilot_size": 1_000, "shrunk": True, "estimated_s": 7.0, "available_s": 1.0,
        "reserved_s": 0.5, "seconds": 3.0}
    assert full.record()["available_s"] is None


def test_training_budget_reserves_the_calibration_up_to_its_share():
    assert training_budget(600.0, 10.0, 50.0) == (540.0, 50.0)
    # a dearer calibration takes at most its share of the budget; it then shrinks its pilot after training
    assert training_budget(600.0, 10.0, 900.0) == (590.0 - CALIBRATION_SHARE * 600.0, CALIBRATION_SHARE * 600.0)
    # training keeps a tenth of what is left
    training, reserved = training_budget(100.0, 95.0, 30.0)
    assert training == pytest.approx(0.5) and reserved == pytest.approx(4.5)


def test_sequential_cost_counts_the_longest_sequence_of_each_round_and_every_pilot_event():
    lengths = torch.tensor([1, 2, 3, 4, 10] * 20)  # 100 subjects, mean length 4
    per_event = sequential_cost(GenerationCost(per_step=0.0, per_row=1.0), lengths, 100)
    assert per_event == pytest.approx(sum(round(share * 100) for share, _ in SEQUENTIAL_SCHEDULE) * 4.0)
    # every round's 50 or 100 subjects reach the longest length
    per_step = sequential_cost(GenerationCost(per_step=1.0, per_row=0.0), lengths, 100)
    assert per_step == pytest.approx(10.0 * len(SEQUENTIAL_SCHEDULE))
    # a pilot of 2 subjects per full round: its rounds of 1 or 2 subjects reach a median or upper length
    assert sequential_cost(GenerationCost(per_step=1.0, per_row=0.0), lengths, 2) < per_step
    assert flat_cost(GenerationCost(per_step=1.0, per_row=0.001), 5_000) == pytest.approx(3 * (2 + 5.0))


def test_the_probe_leaves_the_network_and_its_random_streams_alone():
    model = SequentialARGN.from_preset([ColumnSpec("a", ("cat",), (3,))], context=[ColumnSpec("f", ("cat",), (2,))],
                                       max_len=5, median_len=2, size="small",
                                       generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    cost = measure_generation_cost(model, torch.zeros(10, 1, dtype=torch.long))
    assert cost.per_step >= 0.0 and cost.per_row >= 0.0
    assert model.training  # the mode is restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    after_probe = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after_probe, torch.rand(3))  # the global stream was not drawn from


@pytest.fixture(scope="module")
def two_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return small_two_tables(80, 8)


def _encoded(tmp_path, two_tables, name: str):
    ctx, tgt = two_tables
    ws = tmp_path / name
    sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id", workspace_dir=ws, random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    return ws


def _trained_weights(ws) -> dict:
    from synthgen.models.tabular._bundle import weights_from_bytes

    return weights_from_bytes(sg.Workspace(ws).read_model_weights())


def _config(ws) -> dict:
    return json.loads((sg.Workspace(ws).model_data / "model-configs.json").read_text())


def test_without_a_binding_budget_training_and_calibration_do_not_depend_on_the_probe(tmp_path, two_tables,
                                                                                      monkeypatch):
    probed = _encoded(tmp_path, two_tables, "probed")
    sg.train(workspace_dir=probed, model="small", max_epochs=2, random_state=0)
    record = _config(probed)["marginal_calibration"]
    assert not record["shrunk"] and record["pilot_size"] == record["full_pilot_size"]
    # the same run with a mocked cost (no probe generations at all): identical weights and offsets
    monkeypatch.setattr(budgeting, "measure_generation_cost", lambda network, context=None: GenerationCost(0.0, 0.0))
    mocked = _encoded(tmp_path, two_tables, "mocked")
    sg.train(workspace_dir=mocked, model="small", max_epochs=2, random_state=0)
    first, second = _trained_weights(probed), _trained_weights(mocked)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert bool(first["step_model.sampling_offsets"].any())


def test_a_short_budget_reserves_the_calibration_and_shrinks_its_pilot(tmp_path, two_tables, monkeypatch):
    ws = _encoded(tmp_path, two_tables, "short")
    # an injected clock that never moves and a mocked generation cost: the plan is exact
    monkeypatch.setattr(budgeting, "clock", lambda: 100.0)
    cost = GenerationCost(per_step=0.0, per_row=0.01)
    monkeypatch.setattr(budgeting, "measure_generation_cost", lambda network, context=None: cost)
    seen = {}
    original = _train.train_sequential_model

    def spy(*args, **kwargs):
        seen["max_training_time_s"] = kwargs["max_training_time_s"]
        return original(*args, **kwargs)

    monkeypatch.setattr(_train, "train_sequential_model", spy)
    budget_s = 8.0
    sg.train(workspace_dir=ws, model="small", max_epochs=1, max_training_time=budget_s / 60.0, random_state=0)
    record = _config(ws)["marginal_calibration"]
    wsp = sg.Workspace(ws)
    trn = _train.load_sequences(wsp, "trn", *_names(wsp))
    lengths = trn.lengths[: trn.n_subjects]
    full = min(calibration_subjects(trn.n_subjects, len(trn.steps)), trn.n_subjects)
    full_cost = sequential_cost(cost, lengths, full)
    assert full_cost > budget_s  # the full pilot would not fit
    assert seen["max_training_time_s"] == pytest.approx(budget_s * (1 - CALIBRATION_SHARE))
    expected = plan_calibration(lambda size: sequential_cost(cost, lengths, size), full, budget_s)
    assert record["full_pilot_size"] == full
    assert record["shrunk"] and math.ceil(MIN_PILOT_SHARE * full) < record["pilot_size"] == expected.size < full
    assert record["estimated_s"] <= budget_s and record["reserved_s"] == pytest.approx(CALIBRATION_SHARE * budget_s, abs=0.01)
    # calibrated all the same, on the smaller pilot
    assert bool(_trained_weights(ws)["step_model.sampling_offsets"].any())


def _names(ws) -> tuple[list[str], list[str]]:
    from synthgen.models.tabular._bundle import column_specs

    names = [s for c in column_specs(ws.read_stats("tgt")["columns"]) for s in c.sub_columns]
    ctx = [s for c in column_specs(ws.read_stats("ctx")["columns"]) for s in c.sub_columns]
    return names, ctx


def test_a_flat_model_shrinks_its_pilot_rows_over_budget_and_says_so(tmp_path, monkeypatch, caplog):
    rng = np.random.default_rng(1)
    data = pd.DataFrame({"x": rng.choice(["a", "b", "c"], size=300), "y": rng.normal(size=300)})
    ws = tmp_path / "flat"
    sg.split(data, workspace_dir=ws, random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    monkeypatch.setattr(budgeting, "clock", lambda: 0.0)
    monkeypatch.setattr(budgeting, "measure_generation_cost",
                        lambda network, context=None: GenerationCost(per_step=100.0, per_row=1.0))
    with caplog.at_level("WARNING", logger="synthgen.stages._train"):
        sg.train(workspace_dir=ws, model="small", max_epochs=1, max_training_time=0.1, random_state=0)
    record = _config(ws)["marginal_calibration"]
    n_trn = sg.Workspace(ws).read_stats("tgt")["no_of_training_records"]
    assert record["full_pilot_size"] == calibration_rows(n_trn)
    assert record["pilot_size"] == math.ceil(MIN_PILOT_SHARE * calibration_rows(n_trn))
    assert record["estimated_s"] > record["available_s"] == 6.0
    assert "over budget" in caplog.text
