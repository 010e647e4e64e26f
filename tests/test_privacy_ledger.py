"""The differential-privacy budget split, the privacy ledger and its workspace file."""

from __future__ import annotations

import math

import numpy as np
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


def test_the_ledger_is_shown_in_the_html_report(tmp_path):
    pytest.importorskip("matplotlib")
    from synthgen.evaluation import evaluate

    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"x": rng.normal(size=200), "c": rng.choice(["a", "b"], 200)}) for _ in range(2)]
    entries = [LedgerEntry(stage="analyze", column="c<&>", mechanism="laplace threshold (categories)", epsilon=0.1,
                           delta=1e-7),
               LedgerEntry(stage="train", column=None, mechanism="dp-sgd (prv)", epsilon=0.9, delta=9e-7)]
    result = evaluate(*frames, privacy=False, discriminator=False, privacy_report=ledger_frame(entries))
    assert result.privacy_report.equals(ledger_frame(entries))
    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Differential privacy</h2>" in page
    assert "c&lt;&amp;&gt;" in page and "dp-sgd (prv)" in page
    assert "(1, 1e-06)-differentially private" in page
    assert "<h2>Differential privacy</h2>" not in evaluate(*frames, privacy=False, discriminator=False).to_html(
        tmp_path / "plain.html").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match=r"^The 'privacy_report' parameter of evaluate must be a privacy ledger"):
        evaluate(*frames, privacy_report=pd.DataFrame({"epsilon": [1.0]}))


# -- a pipeline of the stages under differential privacy -----------------------------------------------------

def _pipeline_data(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"color": rng.choice(["red", "green", "blue"], n).astype(object),
                         "amount": np.round(rng.lognormal(3, 0.5, n), 1)})


def test_a_pipeline_with_a_dp_analyzer_makes_dp_statistics_and_one_ledger():
    from sklearn.pipeline import make_pipeline

    from synthgen import Analyzer, Encoder, Splitter, TabularSynthesizer

    config = {"epsilon": 40.0, "stats_share": 0.5, "domains": {"color": ["red", "green", "blue"]}}
    pipe = make_pipeline(Splitter(random_state=0), Analyzer(differential_privacy=config, random_state=0),
                         Encoder(random_state=0),
                         TabularSynthesizer(model="small", max_epochs=1, batch_size=200, random_state=0,
                                            differential_privacy=config))
    data = _pipeline_data()
    pipe.fit(data)
    analyzer, synth = pipe[1], pipe[-1]
    assert analyzer.stats_["differential_privacy"] and not analyzer.stats_["value_protection"]
    amount = analyzer.stats_["columns"]["amount"]
    low, high = (amount["bins"][0], amount["bins"][-1]) if "bins" in amount else (amount["min"], amount["max"])
    assert data["amount"].min() <= low <= high <= data["amount"].max()
    assert set(analyzer.privacy_report_["stage"]) == {"analyze"}
    # the statistics share, all on amount (a DIGIT encoding leaves its histogram's share unspent)
    assert 0 < analyzer.privacy_report_["epsilon"].sum() <= 20.0 + 1e-9
    report = synth.privacy_report_
    assert report["stage"].tolist() == ["analyze"] * len(analyzer.privacy_report_) + ["train"]
    assert synth.epsilon_ == pytest.approx(report["epsilon"].sum()) and synth.epsilon_ <= 40.0 + 1e-9
    assert synth.delta_ == pytest.approx(report["delta"].sum())
    assert synth.sample(30, random_state=1).shape == (30, 2)


def test_a_dp_synthesizer_refuses_a_workspace_without_dp_statistics():
    from sklearn.pipeline import make_pipeline

    from synthgen import Analyzer, Encoder, Splitter, TabularSynthesizer

    pipe = make_pipeline(Splitter(random_state=0), Analyzer(random_state=0), Encoder(random_state=0),
                         TabularSynthesizer(max_epochs=1, differential_privacy={"epsilon": 1.0}))
    with pytest.raises(ValueError, match=r"^TabularSynthesizer has differential_privacy, but the statistics of the "
                                         r"workspace .* were not computed under differential privacy"):
        pipe.fit(_pipeline_data(100))


def test_dp_statistics_with_training_without_dp_report_no_guarantee():
    from sklearn.pipeline import make_pipeline

    from synthgen import Analyzer, Encoder, Splitter, TabularSynthesizer

    pipe = make_pipeline(Splitter(random_state=0), Analyzer(differential_privacy={"epsilon": 40.0}, random_state=0),
                         Encoder(random_state=0), TabularSynthesizer(model="small", max_epochs=1, random_state=0))
    pipe.fit(_pipeline_data(200))
    assert hasattr(pipe[1], "privacy_report_")
    assert not any(hasattr(pipe[-1], name) for name in ("privacy_report_", "epsilon_", "delta_"))
