"""Marginal calibration of sequential (two-table) generation: step-head offsets fitted by pilot sequences."""

from __future__ import annotations

import math

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import small_two_tables

from synthgen import TabularSynthesizer
from synthgen.models.tabular import ColumnSpec, SequentialARGN
from synthgen.models.tabular._calibration import (
    SEQUENTIAL_SCHEDULE,
    calibration_subjects,
    fit_sequential_offsets,
)

FLAG = [ColumnSpec("flag", ("cat",), (2,))]
STEPS = [ColumnSpec("a", ("cat",), (3,)), ColumnSpec("b", ("cat",), (4,))]
TARGET_A = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
TARGET_B = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)


def _biased_model(seed: int = 0) -> SequentialARGN:
    """An untrained sequential model whose step heads favour the last codes strongly, with target histograms."""
    model = SequentialARGN.from_preset(STEPS, context=FLAG, max_len=6, median_len=3, size="small",
                                       generator=torch.Generator().manual_seed(seed)).eval()
    with torch.no_grad():
        for bias in model.step_model.out_biases:
            bias.copy_(torch.linspace(0.0, 2.5, bias.shape[-1]).expand_as(bias))
        model.step_model.marginal_counts.copy_(torch.cat([TARGET_A, TARGET_B]) * 10_000)
    return model


def _contexts(n: int = 2_000) -> torch.Tensor:
    return torch.randint(0, 2, (n, 1), generator=torch.Generator().manual_seed(7))


def _shares(steps: torch.Tensor, sub: int, k: int) -> torch.Tensor:
    return torch.bincount(steps[:, sub], minlength=k).double() / len(steps)


def test_calibration_moves_the_biased_step_heads_to_the_target_marginals():
    model = _biased_model()
    contexts = _contexts()
    lengths_before, before = model.sample(contexts, generator=torch.Generator().manual_seed(1))
    assert (_shares(before, 0, 3) - TARGET_A).abs().max() > 0.2  # the sampler is biased
    worst = fit_sequential_offsets(model, contexts, generator=torch.Generator().manual_seed(2))
    assert math.isfinite(worst)
    lengths, after = model.sample(contexts, generator=torch.Generator().manual_seed(3))
    assert (_shares(after, 0, 3) - TARGET_A).abs().max() < 0.02
    assert (_shares(after, 1, 4) - TARGET_B).abs().max() < 0.02
    # the offsets act on the step heads only: lengths are drawn as before (the same draws of the length head)
    assert torch.equal(lengths, model.sample(contexts, generator=torch.Generator().manual_seed(3),
                                             calibrated=False)[0])
    # the off switch draws from the network alone: the bias is back
    _, plain = model.sample(contexts, generator=torch.Generator().manual_seed(3), calibrated=False)
    assert (_shares(plain, 0, 3) - TARGET_A).abs().max() > 0.2


def test_sequential_calibration_is_deterministic_and_needs_targets():
    first, second = _biased_model(), _biased_model()
    for model in (first, second):
        fit_sequential_offsets(model, _contexts(500), schedule=((1.0, 1.0), (1.0, 0.5)),
                               generator=torch.Generator().manual_seed(4))
    assert bool(first.step_model.sampling_offsets.any())
    assert torch.equal(first.step_model.sampling_offsets, second.step_model.sampling_offsets)
    untargeted = _biased_model()
    untargeted.step_model.marginal_counts.zero_()  # as under DP: no exact counts to calibrate to
    assert math.isnan(fit_sequential_offsets(untargeted, _contexts(500)))
    assert not bool(untargeted.step_model.sampling_offsets.any())


def test_uncalibrated_sub_columns_keep_zero_offsets_and_the_others_still_converge():
    model = _biased_model()
    contexts = _contexts()
    fit_sequential_offsets(model, contexts, uncalibrated=[1], generator=torch.Generator().manual_seed(2))
    offsets = model.step_model.sampling_offsets
    assert not bool(offsets[3:].any())  # sub-column b (codes 3-6): untouched
    assert bool(offsets[:3].any())
    _, after = model.sample(contexts, generator=torch.Generator().manual_seed(3))
    assert (_shares(after, 0, 3) - TARGET_A).abs().max() < 0.02
    assert (_shares(after, 1, 4) - TARGET_B).abs().max() > 0.2  # b keeps the network's bias


def test_each_round_draws_a_fresh_pilot_without_replacement():
    ids = [ColumnSpec("id", ("cat",), (600,))]
    model = SequentialARGN.from_preset(STEPS, context=ids, max_len=4, median_len=2, size="small",
                                       generator=torch.Generator().manual_seed(0)).eval()
    model.step_model.marginal_counts.copy_(torch.cat([TARGET_A, TARGET_B]) * 10_000)
    pilots = []
    sample = model.sample

    def recording(context_codes, **kwargs):
        pilots.append(context_codes[:, 0].tolist())
        return sample(context_codes, **kwargs)

    model.sample = recording
    contexts = torch.arange(600)[:, None]
    fit_sequential_offsets(model, contexts, n_subjects=200, generator=torch.Generator().manual_seed(1))
    assert [len(p) for p in pilots] == [round(share * 200) for share, _ in SEQUENTIAL_SCHEDULE]
    assert all(len(set(p)) == len(p) for p in pilots)  # without replacement
    assert len({tuple(sorted(p)) for p in pilots}) == len(pilots)  # a fresh sample every round
    pilots.clear()
    fit_sequential_offsets(model, contexts[:150], n_subjects=200, generator=torch.Generator().manual_seed(1))
    assert sorted(pilots[-1]) == list(range(150))  # fewer contexts than pilot subjects: all of them


def test_averaged_last_rounds_shrink_the_pilot_noise_of_the_offsets():
    """The same number of equally small pilots; taking 1/2 and 1/3 of the last corrections averages three rounds'
    estimates, so the offsets vary less between pilot seeds (the bias is gone after the first full rounds)."""
    contexts = _contexts(60)

    def spread(schedule):
        fitted = []
        for seed in range(8):
            model = _biased_model()
            fit_sequential_offsets(model, contexts, schedule=schedule, generator=torch.Generator().manual_seed(seed))
            fitted.append(model.step_model.sampling_offsets.clone())
        return torch.stack(fitted).var(dim=0).sum()

    full = spread(((1.0, 1.0),) * 5)
    averaged = spread(((1.0, 1.0),) * 3 + ((1.0, 1 / 2), (1.0, 1 / 3)))
    assert averaged < 0.7 * full


def test_calibration_subjects_cover_the_pilot_steps():
    assert calibration_subjects(0, 0) == 0
    assert calibration_subjects(100, 1_000) == 500  # 5,000 pilot steps at the lower bound, 10 per subject
    assert calibration_subjects(3_000, 300_000) == 1_000  # 100,000 pilot steps at the upper bound


@pytest.fixture(scope="module")
def two_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return small_two_tables(60, 6)


@pytest.fixture(scope="module")
def fitted(two_tables) -> TabularSynthesizer:
    ctx, tgt = two_tables
    return TabularSynthesizer(tgt_context_key="id", ctx_primary_key="id", model="small", max_epochs=1,
                              value_protection=False, random_state=0).fit(tgt, context=ctx)


def _step_offsets(synth: TabularSynthesizer) -> torch.Tensor:
    return synth._bundle.build_model(torch.device("cpu")).step_model.sampling_offsets


def test_fit_stores_step_offsets_honoured_by_the_option(fitted, two_tables, tmp_path):
    ctx, _ = two_tables
    offsets = _step_offsets(fitted)
    assert bool(offsets.any())
    calibrated = fitted.sample(context=ctx, random_state=1)
    assert not calibrated.equals(fitted.sample(context=ctx, random_state=1, marginal_calibration=False))
    path = tmp_path / "synth.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    assert torch.equal(_step_offsets(loaded), offsets)
    pd.testing.assert_frame_equal(loaded.sample(context=ctx, random_state=1), calibrated)


def test_sequential_fit_is_deterministic_under_the_seed(fitted, two_tables):
    ctx, tgt = two_tables
    again = TabularSynthesizer(tgt_context_key="id", ctx_primary_key="id", model="small", max_epochs=1,
                               value_protection=False, random_state=0).fit(tgt, context=ctx)
    assert torch.equal(_step_offsets(again), _step_offsets(fitted))


def test_derived_columns_set_after_their_determinant_are_not_calibrated():
    """``minute`` is drawn after ``clock`` and emitted as map[clock]: no offsets on its own draw. ``hour`` is drawn
    before ``clock`` (whose draw then follows it), so it stays calibrated, as does ``clock``."""
    rng = np.random.default_rng(5)
    n_subjects, steps = 60, 8
    clock = rng.choice([615, 630, 745, 800, 1215, 1730, 1745, 2100], size=n_subjects * steps)
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "kind": rng.choice(["u", "v"], size=n_subjects)})
    tgt = pd.DataFrame({"id": np.repeat(np.arange(n_subjects), steps), "hour": clock // 100, "clock": clock,
                        "minute": clock % 100})
    synth = TabularSynthesizer(tgt_context_key="id", ctx_primary_key="id", model="small", max_epochs=1,
                               value_protection=False, random_state=0).fit(tgt, context=ctx)
    assert {b: spec["from"] for b, spec in synth.stats_["derived_columns"].items()} == {"hour": "clock",
                                                                                          "minute": "clock"}
    generator = synth._generator_for(None)
    offsets = _step_offsets(synth)
    starts = generator.model.step_model.embedder.offsets.tolist()
    cards = generator.model.step_model.spec.cardinalities

    def offsets_of(column):
        prefix = f"{generator.columns[column]['argn_processor']}:{generator.columns[column]['argn_column']}__"
        subs = [i for i, name in enumerate(generator._sub_names) if name.startswith(prefix)]
        return torch.cat([offsets[starts[i]:starts[i] + cards[i]] for i in subs])

    assert not bool(offsets_of("minute").any())
    assert bool(offsets_of("hour").any()) and bool(offsets_of("clock").any())
    out = synth.sample(context=ctx, random_state=1)
    assert (out["minute"] == out["clock"] % 100).all()
