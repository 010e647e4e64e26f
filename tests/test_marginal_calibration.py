"""Marginal calibration of flat generation: per-code logit offsets fitted by pilot generations after training."""

from __future__ import annotations

import math

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from synthgen import TabularSynthesizer
from synthgen._options import InvalidParameterError
from synthgen.models.tabular import ColumnSpec, FlatARGN
from synthgen.models.tabular._calibration import fit_marginal_offsets
from synthgen.privacy._dp_prior import init_private_output_bias


def _biased_model(seed: int = 0) -> FlatARGN:
    """An untrained two-column model whose output biases favour the last codes strongly."""
    model = FlatARGN.from_preset([ColumnSpec("a", ("cat",), (3,)), ColumnSpec("b", ("cat",), (4,))], size="small",
                                 generator=torch.Generator().manual_seed(seed)).eval()
    with torch.no_grad():
        for bias in model.out_biases:
            bias.copy_(torch.linspace(0.0, 2.5, bias.shape[-1]).expand_as(bias))
    return model


def _shares(codes: torch.Tensor, sub: int, k: int) -> torch.Tensor:
    return torch.bincount(codes[:, sub], minlength=k).double() / len(codes)


TARGET_A = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
TARGET_B = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)


def _set_targets(model: FlatARGN, n: int = 10_000) -> None:
    model.marginal_counts.copy_(torch.cat([TARGET_A, TARGET_B]) * n)


def test_calibration_moves_a_biased_sampler_to_the_target_marginals():
    model = _biased_model()
    _set_targets(model)
    before = model.sample(20_000, generator=torch.Generator().manual_seed(1))
    assert (_shares(before, 0, 3) - TARGET_A).abs().max() > 0.2  # the sampler is biased
    worst = fit_marginal_offsets(model, order=[0, 1], n_rows=20_000, generator=torch.Generator().manual_seed(2))
    assert math.isfinite(worst)
    after = model.sample(20_000, generator=torch.Generator().manual_seed(3))
    assert (_shares(after, 0, 3) - TARGET_A).abs().max() < 0.02
    assert (_shares(after, 1, 4) - TARGET_B).abs().max() < 0.02
    # calibrated=False draws from the network alone: the bias is back
    plain = model.sample(20_000, generator=torch.Generator().manual_seed(3), calibrated=False)
    assert (_shares(plain, 0, 3) - TARGET_A).abs().max() > 0.2


def test_suppressed_codes_stay_out_of_the_calibration():
    model = _biased_model()
    _set_targets(model)
    fit_marginal_offsets(model, order=[0, 1], suppressed={1: [3]}, n_rows=20_000,
                         generator=torch.Generator().manual_seed(2))
    assert float(model.sampling_offsets[3 + 3]) == 0.0  # the suppressed code's offset is untouched
    drawn = model.sample(20_000, fixed_probs={1: {3: 0.0}}, generator=torch.Generator().manual_seed(3))
    # the other codes of b keep the target's proportions among themselves
    want = TARGET_B[:3] / TARGET_B[:3].sum()
    assert (_shares(drawn, 1, 4)[:3] - want).abs().max() < 0.02


def test_no_targets_no_offsets():
    model = _biased_model()
    assert math.isnan(fit_marginal_offsets(model, order=[0, 1], n_rows=1_000))
    assert not bool(model.sampling_offsets.any())


def test_dp_prior_keeps_the_noisy_release_never_the_exact_counts():
    model = _biased_model()
    codes = torch.stack([torch.tensor([0] * 90 + [1] * 10), torch.tensor([3] * 100)], dim=1)
    init_private_output_bias(model, codes, 2.0, torch.Generator().manual_seed(5))
    exact = torch.cat([torch.tensor([90.0, 10.0, 0.0]), torch.tensor([0.0, 0.0, 0.0, 100.0])]).double()
    std = 2.0 * math.sqrt(2)
    noise = torch.normal(0.0, std, size=(7,), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(model.marginal_counts, (exact + noise).clamp(min=0.0))
    assert not torch.equal(model.marginal_counts, exact)
    assert float(model.marginal_noise_std) == pytest.approx(std)


def test_noisy_targets_are_followed_where_the_difference_exceeds_the_noise():
    model = _biased_model()
    _set_targets(model)
    model.marginal_noise_std.fill_(20.0)  # counts of 10,000 rows: the shares' gaps are far above the noise
    fit_marginal_offsets(model, order=[0, 1], n_rows=20_000, generator=torch.Generator().manual_seed(2))
    after = model.sample(20_000, generator=torch.Generator().manual_seed(3))
    assert (_shares(after, 0, 3) - TARGET_A).abs().max() < 0.02


def test_weights_saved_before_calibration_load_uncalibrated():
    model = _biased_model()
    _set_targets(model)
    fit_marginal_offsets(model, order=[0, 1], n_rows=5_000, generator=torch.Generator().manual_seed(2))
    old = {k: v for k, v in model.state_dict().items()
           if k not in ("marginal_counts", "marginal_noise_std", "sampling_offsets")}
    fresh = FlatARGN.from_config(model.config)
    fresh.load_state_dict(old)
    assert not bool(fresh.sampling_offsets.any())
    # and a full state dict carries the offsets
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.sampling_offsets, model.sampling_offsets)


@pytest.fixture(scope="module")
def skewed() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 600
    a = rng.choice(["x", "y", "z"], size=n, p=[0.7, 0.2, 0.1])
    b = np.where(a == "x", rng.choice(["p", "q"], size=n, p=[0.9, 0.1]), rng.choice(["p", "q"], size=n))
    return pd.DataFrame({"a": a, "b": b, "c": rng.choice([0, 40, 50], size=n, p=[0.5, 0.4, 0.1])})


@pytest.fixture(scope="module")
def fitted(skewed) -> TabularSynthesizer:
    return TabularSynthesizer(model="small", max_epochs=1, value_protection=False, random_state=0).fit(skewed)


def _model(synth: TabularSynthesizer) -> FlatARGN:
    return synth._bundle.build_model(torch.device("cpu"))


def test_fit_stores_the_training_histograms_and_calibrated_offsets(fitted, skewed):
    model = _model(fitted)
    assert bool(model.sampling_offsets.any())
    assert float(model.marginal_noise_std) == 0.0
    first = model.marginal_counts[: model.spec.cardinalities[0]]
    # the exact counts of the training rows' codes (the validation rows are not among the targets)
    assert torch.equal(first, first.round()) and 400 < float(first.sum()) < len(skewed)
    calibrated = fitted.sample(4_000, random_state=1)
    plain = fitted.sample(4_000, random_state=1, marginal_calibration=False)
    target = skewed["a"].value_counts(normalize=True)
    gap = lambda frame: float((frame["a"].value_counts(normalize=True) - target).abs().max())  # noqa: E731
    assert gap(calibrated) < 0.03
    assert gap(calibrated) <= gap(plain) + 0.01


def test_calibration_is_deterministic_under_the_seed(skewed, fitted):
    again = TabularSynthesizer(model="small", max_epochs=1, value_protection=False, random_state=0).fit(skewed)
    assert torch.equal(_model(again).sampling_offsets, _model(fitted).sampling_offsets)
    pd.testing.assert_frame_equal(again.sample(300, random_state=4), fitted.sample(300, random_state=4))


def test_joblib_round_trip_keeps_the_calibration(fitted, tmp_path):
    path = tmp_path / "synth.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    assert torch.equal(_model(loaded).sampling_offsets, _model(fitted).sampling_offsets)
    pd.testing.assert_frame_equal(loaded.sample(300, random_state=4), fitted.sample(300, random_state=4))


def test_calibration_stays_additive_under_other_options(fitted):
    # rebalancing forces its shares whatever the offsets
    rebalanced = fitted.sample(4_000, random_state=1, rebalancing={"column": "a", "probabilities": {"z": 0.5}})
    assert rebalanced["a"].eq("z").mean() == pytest.approx(0.5, abs=0.03)
    # temperature 0 picks the argmax of the calibrated logits: one value per column, and not the same draw
    # as without calibration when the offsets move the argmax (here: both are valid single values)
    greedy = fitted.sample(50, random_state=1, sampling_temperature=0.0)
    assert greedy["a"].nunique() == 1
    # seeded columns are kept verbatim
    seeds = pd.DataFrame({"a": ["z"] * 20})
    assert fitted.sample(seed_data=seeds, random_state=1)["a"].eq("z").all()


def test_marginal_calibration_must_be_a_bool(fitted):
    with pytest.raises(InvalidParameterError, match="'marginal_calibration' parameter of TabularSynthesizer.sample"):
        fitted.sample(5, marginal_calibration="yes")


def test_dp_fit_calibrates_towards_the_noisy_release(skewed):
    synth = TabularSynthesizer(model="small", max_epochs=1, batch_size=100, random_state=0,
                               differential_privacy={"epsilon": 3.0, "noise_multiplier": 2.0,
                                                     "domains": {"c": (0, 50)}}).fit(skewed)
    model = _model(synth)
    assert float(model.marginal_noise_std) > 0.0
    # noisy counts are not whole numbers: the exact histogram was never stored
    counts = model.marginal_counts[model.marginal_counts > 0]
    assert not torch.equal(counts, counts.round())


def test_sample_to_parquet_takes_marginal_calibration(fitted, tmp_path):
    plain = pd.read_parquet(fitted.sample_to_parquet(tmp_path / "plain", 400, batch_size=200, random_state=3,
                                                     marginal_calibration=False))
    calibrated = pd.read_parquet(fitted.sample_to_parquet(tmp_path / "calibrated", 400, batch_size=200,
                                                          random_state=3))
    assert len(plain) == len(calibrated) == 400
    assert not plain.equals(calibrated)  # the offsets change the draws
