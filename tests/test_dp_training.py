"""DP-SGD in train: flat, two-table and language models under small budgets; the look-ahead, resume, the ledger."""

from __future__ import annotations

import functools
import shutil
import warnings

import numpy as np
import pytest
import torch

import synthgen as sg
from synthgen.models.tabular import FlatARGN, train_model
from synthgen.models.tabular._loop import WEIGHT_AVERAGE_DECAY
from synthgen.models.tabular._spec import ColumnSpec
from synthgen.models.tabular._trainer import _FlatTask
from synthgen.privacy._dp_sgd import PrivateSGD, accountant_epsilon, plan_private_sgd

DP = {"epsilon": 3.0}  # 0.3 for the statistics, 2.7 for training
# the same budget with a given noise multiplier: no calibration (the slowest accounting), for the tests that are
# not about it; at sigma 2 the few steps of these tests stay well inside the budget
DP_SIGMA = DP | {"noise_multiplier": 2.0}


def _ledger(ws) -> list[dict]:
    return [e.to_dict() for e in sg.Workspace(ws).read_privacy_ledger() if e.stage == "train"]


def _accountant(ws) -> dict:
    return sg.Workspace(ws).read_dp_accountant()


@pytest.fixture(scope="module")
def encoded_adult(adult_full, tmp_path_factory):
    ws = tmp_path_factory.mktemp("dp") / "ws"
    sg.split(adult_full.sample(n=600, random_state=2).reset_index(drop=True), workspace_dir=ws, random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    return ws


@pytest.fixture
def adult_ws(encoded_adult, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(encoded_adult, ws)
    return ws


@pytest.fixture(scope="module")
def dp_trained(encoded_adult, tmp_path_factory):
    ws = tmp_path_factory.mktemp("dp-trained") / "ws"
    shutil.copytree(encoded_adult, ws)
    sg.train(model="small", max_epochs=2, batch_size=100, differential_privacy=DP, workspace_dir=ws,
             random_state=0)
    return ws


def _flat_model_and_codes(n: int = 400, seed: int = 0, size: str = "MOSTLY_AI/Small"):
    cols = [ColumnSpec(name=f"c{i}", sub_columns=[f"c{i}"], cardinalities=[k]) for i, k in enumerate([3, 4, 5])]
    g = torch.Generator().manual_seed(seed)
    model = FlatARGN.from_preset(cols, size=size, generator=g)
    a = torch.randint(0, 3, (n,), generator=g)
    codes = torch.stack([a, (a + 1) % 4, torch.randint(0, 5, (n,), generator=g)], 1)
    return model, codes, g


# ------------------------------------------------------------------------------------------- the engine stage
def test_flat_model_trains_and_samples_under_dp(dp_trained):
    ledger = _ledger(dp_trained)
    assert len(ledger) == 1
    line = ledger[0]
    assert line["stage"] == "train" and line["column"] is None
    assert line["mechanism"].startswith("DP-SGD (Opacus prv, σ=") and "C=1," in line["mechanism"]
    state = _accountant(dp_trained)
    budget = state["epsilon_budget"]
    assert 0 < line["epsilon"] <= budget == pytest.approx(0.9 * DP["epsilon"])  # the statistics keep their share
    assert line["delta"] == state["delta"] == pytest.approx(0.9 * min(1e-5, 600 ** -1.2))
    # nothing of the private rows is released through the progress: losses are not reported
    progress = sg.Workspace(dp_trained).read_progress()
    assert progress["trn_loss"].isna().all() and progress["val_loss"].isna().all()
    sg.generate(sample_size=50, workspace_dir=dp_trained, random_state=0)
    synthetic = sg.read_synthetic_data(dp_trained)
    assert len(synthetic) == 50 and not synthetic.isna().all().any()


def test_reported_epsilon_matches_a_fresh_opacus_accountant(dp_trained):
    from opacus.accountants import PRVAccountant

    state = _accountant(dp_trained)
    # the Gaussian output prior (one release of all counts), then the steps of the released weights: two
    # epochs of 600 subjects (training and validation rows) / 100
    [(prior, one, once), (sigma, q, steps)] = state["history"]
    assert (prior, one, once) == (state["prior_noise_multiplier"], 1.0, 1) and prior > sigma
    assert (sigma, q) == (state["noise_multiplier"], state["sample_rate"])
    assert q == pytest.approx(100 / 600) and steps == 2 * 6
    fresh = PRVAccountant()
    fresh.step(noise_multiplier=prior, sample_rate=1.0)
    for _ in range(steps):
        fresh.step(noise_multiplier=sigma, sample_rate=q)
    with np.errstate(divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RDP's note on its range of orders, PRV's log(0) at q=1
        expected = fresh.get_epsilon(delta=state["delta"])
    line = _ledger(dp_trained)[0]
    assert line["epsilon"] == pytest.approx(expected, rel=0.01)
    assert line["mechanism"] == (f"DP-SGD (Opacus prv, σ={sigma:.4g}, C=1, q={q:.4g}, steps={steps}) after a "
                                 f"Gaussian output prior (σ={prior:.4g})")


def test_calibrated_noise_spends_the_budget_over_the_planned_steps(dp_trained):
    state = _accountant(dp_trained)
    epsilon = accountant_epsilon(state["history"], state["delta"])
    # get_noise_multiplier aims at the budget from below, within its tolerance
    assert 0.95 * state["epsilon_budget"] <= epsilon <= state["epsilon_budget"]


def test_resume_continues_the_accountant(adult_ws):
    stop_after_one_epoch = lambda **kw: {"stopExecution": True} if kw.get("completed", 0) >= 1 else None  # noqa: E731
    sg.train(model="small", max_epochs=2, batch_size=100, differential_privacy=DP_SIGMA, workspace_dir=adult_ws,
             update_progress=stop_after_one_epoch, random_state=0)
    before = _accountant(adult_ws)
    [prior, (sigma, q, steps)] = before["history"]
    assert steps == 6
    first = _ledger(adult_ws)[0]["epsilon"]
    sg.train(model="small", max_epochs=2, batch_size=100, differential_privacy=DP_SIGMA, workspace_dir=adult_ws,
             model_state_strategy="RESUME", random_state=0)
    after = _accountant(adult_ws)
    assert after["history"] == [prior, [sigma, q, 6], [sigma, q, 6]]  # the same sigma and q, spending on
    assert sg.Workspace(adult_ws).read_progress()["steps"].tolist() == [6, 12]
    line = _ledger(adult_ws)[0]
    assert first < line["epsilon"] <= after["epsilon_budget"]
    # two runs of 6 steps cost what one run of 12 does
    assert line["epsilon"] == pytest.approx(accountant_epsilon([prior, (sigma, q, 12)], after["delta"]), rel=0.01)
    assert "steps=12) after" in line["mechanism"]


def test_resume_after_the_budget_is_spent_takes_no_step(dp_trained, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(dp_trained, ws)
    before = _accountant(ws)
    sg.train(model="small", max_epochs=4, batch_size=100, differential_privacy=DP, workspace_dir=ws,
             model_state_strategy="RESUME", random_state=0)
    after = _accountant(ws)
    assert sum(h[2] for h in after["history"]) == sum(h[2] for h in before["history"]) + _steps_left(before)
    assert _ledger(ws)[0]["epsilon"] <= after["epsilon_budget"]


def _steps_left(state: dict) -> int:
    prior, (sigma, q, steps) = state["history"]
    extra = 0
    while accountant_epsilon([prior, (sigma, q, steps + extra + 1)], state["delta"]) <= state["epsilon_budget"]:
        extra += 1
    return extra


def test_reuse_of_a_model_trained_without_dp_is_refused(adult_ws):
    sg.train(model="small", max_epochs=1, workspace_dir=adult_ws, random_state=0)
    message = ("model_state_strategy=REUSE with differential_privacy: the saved model was trained without "
               "differential privacy, so its weights already reveal the training data and no epsilon can be "
               "reported for a model fine-tuned from them. Use model_state_strategy='RESET'.")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        sg.train(model="small", max_epochs=1, differential_privacy=DP, workspace_dir=adult_ws,
                 model_state_strategy="REUSE")


def test_resume_of_a_dp_run_needs_differential_privacy(dp_trained, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(dp_trained, ws)
    with pytest.raises(ValueError, match=r"model_state_strategy=RESUME: the run was trained with differential "
                                         r"privacy; pass the same differential_privacy"):
        sg.train(model="small", max_epochs=3, workspace_dir=ws, model_state_strategy="RESUME")


def test_dp_without_value_protection(adult_full, tmp_path):
    ws = tmp_path / "ws"
    sg.split(adult_full.sample(n=200, random_state=4).reset_index(drop=True), workspace_dir=ws, random_state=0)
    sg.analyze(value_protection=False, workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(model="small", max_epochs=1, batch_size=100, differential_privacy=DP_SIGMA, workspace_dir=ws,
             random_state=0)
    assert 0 < _ledger(ws)[0]["epsilon"] <= _accountant(ws)["epsilon_budget"]


# ------------------------------------------------------------------------------------------- the mechanism
def test_training_stops_before_a_step_would_exceed_the_budget():
    model, codes, g = _flat_model_and_codes()
    make = functools.partial(plan_private_sgd, epsilon=1.0, delta=1e-5, max_grad_norm=1.0, noise_multiplier=1.5,
                             accountant="prv", n_samples=len(codes), max_epochs=5)
    result = train_model(model, codes, None, max_epochs=5, batch_size=40, empirical_prior=False, generator=g,
                         make_private=make)
    assert result.stop_reason == "privacy_budget"
    [(sigma, q, steps)] = result.state["privacy"]["history"]
    assert (sigma, q) == (1.5, 0.1) and 0 < steps < 50
    assert result.history[-1]["steps"] == steps
    assert accountant_epsilon([(sigma, q, steps)], 1e-5) <= 1.0 < accountant_epsilon([(sigma, q, steps + 1)], 1e-5)


def test_a_budget_too_small_for_one_step_takes_none():
    private = PrivateSGD(noise_multiplier=0.5, max_grad_norm=1.0, sample_rate=0.5, epsilon=0.1, delta=1e-5,
                         accountant="rdp", n_samples=10, max_steps=100)
    assert private.allowed_steps == 0 and not private.can_step()


def test_no_output_prior_from_exact_counts_under_dp(monkeypatch):
    model, codes, g = _flat_model_and_codes()

    def refuse(*args, **kwargs):
        raise AssertionError("the output biases were set from exact counts")

    monkeypatch.setattr(FlatARGN, "init_output_bias", refuse)
    make = functools.partial(plan_private_sgd, epsilon=5.0, delta=1e-5, max_grad_norm=1.0, noise_multiplier=None,
                             accountant="rdp", n_samples=len(codes), max_epochs=1)
    result = train_model(model, codes, None, max_epochs=1, batch_size=40, empirical_prior=False, generator=g,
                         make_private=make)
    assert result.stop_reason == "max_epochs"
    assert result.state["privacy"]["history"][0][2] == 10
    # the released weights average the noisy iterates from the start (no floor phase: nothing private validates)
    assert result.state["weight_average"]["decay"] == WEIGHT_AVERAGE_DECAY
    assert result.state["weight_average"]["updates"] == 10


@pytest.mark.parametrize("size", ["MOSTLY_AI/Small", "MOSTLY_AI/Large"])  # without and with a residual block
def test_ghost_vmap_and_looped_clipping_agree(size):
    model, codes, g = _flat_model_and_codes(n=12, size=size)
    task = _FlatTask(model, codes, None, None, None, torch.device("cpu"), g)
    samples = torch.arange(12)
    model.eval()  # the same (dropout-free) forward in every path
    order = model.draw_order(torch.Generator().manual_seed(1))

    def private_gradients(task, ghost: bool) -> list[torch.Tensor]:
        private = PrivateSGD(noise_multiplier=1e-12, max_grad_norm=0.05, sample_rate=1.0, epsilon=1e9,
                             delta=1e-5, accountant="rdp", n_samples=12, max_steps=1)
        private.ghost_clipping = ghost
        loss = private.step_gradients(model, task, samples, torch.Generator().manual_seed(1), torch.Generator())
        assert loss == pytest.approx(float(model(codes, None, order).detach().sum()), rel=1e-5)
        return [p.grad.clone() for p in model.parameters()]

    ghost = private_gradients(task, True)
    vmapped = private_gradients(task, False)
    looped = private_gradients(_OneBackwardPerSample(model, codes, order), False)
    for a, b, c in zip(ghost, vmapped, looped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(b, c, rtol=1e-4, atol=1e-7)
    # clipping is active: each of the 12 rows contributes at most C, divided by q * n = 12
    assert float(torch.sqrt(sum(v.square().sum() for v in ghost))) <= 0.05 + 1e-6
    assert model.block_weights if size.endswith("Large") else not model.block_weights


class _OneBackwardPerSample:
    def __init__(self, model, codes, order):
        self.batch_nll = lambda rows, generator: model(codes[rows], None, order)


# ------------------------------------------------------------------------------------------- two-table, language
def test_two_table_model_trains_on_subjects_under_dp(planes_flights, tmp_path):
    planes, flights = planes_flights
    planes = planes[["tailnum", "engines", "seats"]].head(40)
    flights = flights[flights["tailnum"].isin(planes["tailnum"])][["tailnum", "origin", "dest", "carrier"]]
    flights = flights.groupby("tailnum").head(8)  # short sequences: cheap to train and to generate
    ws = tmp_path / "ws"
    sg.split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum", workspace_dir=ws,
             random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(model="small", max_epochs=1, batch_size=10, max_sequence_window=5, differential_privacy=DP_SIGMA,
             workspace_dir=ws, random_state=0)
    [(sigma, q, steps)] = _accountant(ws)["history"]  # no output prior: a plane's flights are many counts
    # the sampling unit is the plane with all its flights: q = batch / planes (training and validation planes)
    assert q == pytest.approx(10 / 40) and steps == 4
    sg.generate(workspace_dir=ws, random_state=0)
    assert len(sg.read_synthetic_data(ws)) > 0


def test_language_model_trains_under_dp_with_a_fixed_vocabulary(tweets_full, tmp_path):
    tweets = tweets_full.sample(n=20, random_state=5)[["source", "text"]].reset_index(drop=True)
    ws = tmp_path / "ws"
    sg.split(tweets, model_type="LANGUAGE", tgt_encoding_types={"text": "LANGUAGE_TEXT"}, workspace_dir=ws,
             random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(max_epochs=1, batch_size=10, differential_privacy=DP_SIGMA, workspace_dir=ws, random_state=0)
    config = sg.Workspace(ws).read_model_config()
    assert config["vocab_size"] == 256 + 5  # bytes and special tokens: nothing learned from the private text
    stats = sg.Workspace(ws).read_stats("tgt")
    assert config["max_tokens"] == {"text": 4 * stats["columns"]["text"]["nchar_max"]}
    assert 0 < _ledger(ws)[0]["epsilon"] <= _accountant(ws)["epsilon_budget"]
    sg.generate(sample_size=3, workspace_dir=ws, random_state=0)
    assert len(sg.read_synthetic_data(ws)) == 3


def test_lora_adapter_trains_under_dp(tiny_hf_model, tweets_full, tmp_path):
    tweets = tweets_full.sample(n=20, random_state=6)[["source", "text"]].reset_index(drop=True)
    ws = tmp_path / "ws"
    sg.split(tweets, model_type="LANGUAGE", tgt_encoding_types={"text": "LANGUAGE_TEXT"}, workspace_dir=ws,
             random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(model=str(tiny_hf_model), max_epochs=1, batch_size=10, differential_privacy=DP_SIGMA, workspace_dir=ws,
             random_state=0)
    [(sigma, q, steps)] = _accountant(ws)["history"]
    assert q == pytest.approx(10 / 20) and steps == 2
    assert 0 < _ledger(ws)[0]["epsilon"] <= _accountant(ws)["epsilon_budget"]
    sg.generate(sample_size=2, workspace_dir=ws, random_state=0)
    assert len(sg.read_synthetic_data(ws)) == 2


def test_private_output_prior_is_noisy_marginals():
    from synthgen.privacy._dp_prior import init_private_output_bias

    model, codes, g = _flat_model_and_codes(n=4000)
    exact = FlatARGN.from_config(model.config)
    exact.init_output_bias(codes)
    init_private_output_bias(model, codes, noise_multiplier=1.0, generator=torch.Generator().manual_seed(0))
    # frequencies (exp of the biases) within a point of the exact ones with little noise, not with much
    close = [torch.allclose(a.exp(), b.exp(), atol=0.01) for a, b in zip(model.out_biases, exact.out_biases,
                                                                       strict=True)]
    init_private_output_bias(model, codes, noise_multiplier=1e3, generator=torch.Generator().manual_seed(0))
    far = [torch.allclose(a.exp(), b.exp(), atol=0.01) for a, b in zip(model.out_biases, exact.out_biases,
                                                                     strict=True)]
    assert all(close) and not any(far)


def test_synthesizer_gets_dp_end_to_end_from_one_parameter(adult_full):
    frame = adult_full.sample(n=400, random_state=7).reset_index(drop=True)
    synth = sg.TabularSynthesizer(model="small", max_epochs=1, batch_size=100, differential_privacy={"epsilon": 2.0, "noise_multiplier": 3.0},
                                  random_state=0).fit(frame)
    report = synth.privacy_report_
    assert list(report.columns) == ["stage", "column", "mechanism", "epsilon", "delta"]
    train = report[report["stage"] == "train"]
    assert len(train) == 1 and train["mechanism"].iloc[0].startswith("DP-SGD (Opacus prv")
    assert 0 < train["epsilon"].iloc[0] <= 0.9 * 2.0
    assert synth.epsilon_ == pytest.approx(report["epsilon"].sum())
    assert synth.epsilon_ <= 2.0
    assert synth.delta_ == pytest.approx(report["delta"].sum())
    assert len(synth.sample(20, random_state=0)) == 20


def test_two_table_estimator_under_dp_learns_no_context_model(planes_flights):
    planes, flights = planes_flights
    planes = planes[["tailnum", "engines", "seats"]].head(30)
    flights = flights[flights["tailnum"].isin(planes["tailnum"])][["tailnum", "origin", "carrier"]]
    flights = flights.groupby("tailnum").head(6)  # short sequences: cheap to train and to sample
    synth = sg.TabularSynthesizer(model="small", max_epochs=1, batch_size=10, max_sequence_window=5,
                                  differential_privacy={"epsilon": 400.0, "stats_share": 0.5, "noise_multiplier": 1.0}, tgt_context_key="tailnum",
                                  ctx_primary_key="tailnum", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tiny budgets publish few categories: warned, not tested here
        synth.fit(flights, context=planes)
    assert synth.ctx_history_ is None  # the context rows were not learned outside the budget
    with pytest.raises(ValueError, match="the context table is not learned under differential privacy, so "
                                         r"sample\(\) needs context="):
        synth.sample()
    sampled = synth.sample(context=planes.head(5))
    assert set(sampled["tailnum"]) <= set(planes["tailnum"].head(5))
