"""The differential-privacy budget split, the privacy ledger and its workspace file."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from synthgen import DifferentialPrivacyConfig, Workspace
from synthgen.privacy._dp_budget import default_delta, resolve_dp_budget
from synthgen.privacy._ledger import LedgerEntry, ledger_frame, ledger_totals


def test_total_epsilon_is_split_by_stats_share_and_adds_up():
    budget = resolve_dp_budget(DifferentialPrivacyConfig(epsilon=2.0, stats_share=0.25, delta=1e-6), 1000)
    assert budget.stats_epsilon == pytest.approx(0.5)
    assert budget.train_epsilon == pytest.approx(1.5)
    assert budget.stats_epsilon + budget.train_epsilon == pytest.approx(2.0)
    assert budget.stats_delta == pytest.approx(0.25e-6)
    assert budget.stats_delta + budget.train_delta == pytest.approx(1e-6)
    assert budget.total_epsilon == pytest.approx(2.0) and budget.total_delta == pytest.approx(1e-6)
    assert budget.noise_multiplier is None  # calibrated to the training budget


def test_engine_api_budgets_and_defaults():
    budget = resolve_dp_budget({"maxEpsilon": 5, "noiseMultiplier": 0.8, "accountant": "rdp"}, 1000)
    assert (budget.stats_epsilon, budget.train_epsilon, budget.noise_multiplier, budget.accountant) == (
        1.0, 5.0, 0.8, "rdp")
    unlimited = resolve_dp_budget(DifferentialPrivacyConfig(value_protection_epsilon=0.3), 1000)
    assert (unlimited.stats_epsilon, unlimited.train_epsilon, unlimited.noise_multiplier) == (0.3, None, 1.5)
    assert unlimited.total_epsilon is None


@pytest.mark.parametrize(("n", "delta"), [(10, 1e-5), (1000, 1e-5), (100_000, 100_000 ** -1.2)])
def test_delta_follows_the_data_size(n, delta):
    assert default_delta(n) == pytest.approx(delta)
    assert resolve_dp_budget(DifferentialPrivacyConfig(epsilon=1), n).total_delta == pytest.approx(delta)


def test_ledger_total_is_the_sum_of_its_lines():
    entries = [LedgerEntry(stage="analyze", column="age", mechanism="exponential quantiles", epsilon=0.02, delta=0),
               LedgerEntry(stage="analyze", column="sex", mechanism="laplace threshold", epsilon=0.03, delta=1e-7),
               LedgerEntry(stage="train", column=None, mechanism="dp-sgd (prv)", epsilon=0.9, delta=9e-7)]
    frame = ledger_frame(entries)
    assert list(frame.columns) == ["stage", "column", "mechanism", "epsilon", "delta"]
    assert len(frame) == 3
    epsilon, delta = ledger_totals(entries)
    assert epsilon == pytest.approx(frame["epsilon"].sum()) == pytest.approx(0.95)
    assert delta == pytest.approx(frame["delta"].sum()) == pytest.approx(1e-6)
    assert ledger_totals([]) == (0.0, 0.0)
    assert list(ledger_frame([]).columns) == ["stage", "column", "mechanism", "epsilon", "delta"]


def test_ledger_entries_refuse_negative_spend():
    with pytest.raises(ValueError, match="^ledger epsilon must be a non-negative number; got -1.0 instead.$"):
        LedgerEntry(stage="analyze", column=None, mechanism="x", epsilon=-1, delta=0)


def test_workspace_ledger_replaces_a_stage_and_is_cleared_with_it(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert ws.read_privacy_ledger() == []
    train = [LedgerEntry(stage="train", column=None, mechanism="dp-sgd (prv)", epsilon=0.9, delta=9e-7)]
    first = [LedgerEntry(stage="analyze", column="a", mechanism="m", epsilon=0.1, delta=0)]
    second = [LedgerEntry(stage="analyze", column="b", mechanism="m", epsilon=0.05, delta=1e-8),
              LedgerEntry(stage="analyze", column="c", mechanism="m", epsilon=0.05, delta=0)]
    ws.write_privacy_ledger("train", train)
    ws.write_privacy_ledger("analyze", first)
    ws.write_privacy_ledger("analyze", second)
    assert ws.read_privacy_ledger() == second + train   # stage order, the older analyze lines replaced
    assert not [p for p in ws.privacy_ledger_path.parent.iterdir() if p.name.endswith(".tmp")]
    ws.clear_from("train")
    assert ws.read_privacy_ledger() == second
    ws.clear_from("analyze")
    assert ws.read_privacy_ledger() == [] and not ws.privacy_ledger_path.exists()
    with pytest.raises(ValueError, match="ledger entries of stage 'train' cannot be written as stage 'analyze'"):
        ws.write_privacy_ledger("analyze", train)


def test_infinite_epsilon_round_trips_through_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.write_privacy_ledger("train", [LedgerEntry(stage="train", column=None, mechanism="not private",
                                                  epsilon=math.inf, delta=0)])
    assert ledger_totals(ws.read_privacy_ledger()) == (math.inf, 0.0)
    assert isinstance(ledger_frame(ws.read_privacy_ledger()), pd.DataFrame)
