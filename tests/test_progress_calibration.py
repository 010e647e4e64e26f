"""The sequential calibration by progress: columns that trend along the sequences get offsets per bucket of the
share of the sequence done, so that their distribution at each stage of a sequence (not only their marginal)
matches the training steps'."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import torch
from _tiny_sequential import tiny_sequential_model

from synthgen import TabularSynthesizer
from synthgen.models.tabular import ColumnSpec, SequentialARGN
from synthgen.models.tabular._calibration import fit_sequential_offsets, trending_sub_columns
from synthgen.models.tabular._positions import step_progress
from synthgen.models.tabular._sequential import CALIBRATION_PROGRESS_BUCKETS

STEPS = [ColumnSpec("phase", ("cat",), (2,)), ColumnSpec("noise", ("cat",), (3,))]


def _training_steps(n_subjects: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of 4 to 6 steps: ``phase`` is 0 in the first half of each sequence and 1 in the second (its
    marginal is about 50/50 at every position of the pilot unless the model follows the progress), ``noise`` is
    independent of the position."""
    rng = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 7, (n_subjects,), generator=rng)
    bucket = step_progress(lengths, 2)
    noise = torch.randint(0, 3, (int(lengths.sum()),), generator=rng)
    return torch.stack([bucket, noise], dim=1), lengths


def _model() -> SequentialARGN:
    return tiny_sequential_model(STEPS, *_training_steps())


def _phase_one_share_by_half(steps: torch.Tensor, lengths: torch.Tensor) -> tuple[float, float]:
    half = step_progress(lengths, 2)
    phase = steps[:, 0].double()
    return float(phase[half == 0].mean()), float(phase[half == 1].mean())


def test_step_progress_buckets_each_step_by_the_share_of_its_sequence_done():
    assert step_progress(torch.tensor([4, 1, 3]), 2).tolist() == [0, 0, 1, 1, 0, 0, 0, 1]
    assert step_progress(torch.tensor([0, 2]), 4).tolist() == [0, 2]


def test_trending_columns_are_told_from_stationary_ones_and_from_noise():
    steps, lengths = _training_steps()
    model = _model()
    counts = model.progress_code_counts(steps, lengths)
    assert counts.shape == (CALIBRATION_PROGRESS_BUCKETS, 5)
    assert torch.equal(counts.sum(0), model.step_model.code_counts(steps))  # the buckets split the histogram
    assert trending_sub_columns(counts, [2, 3]) == [0]
    # a handful of steps of a stationary column differ between buckets by noise alone: not a trend
    few, few_lengths = _training_steps(n_subjects=6, seed=3)
    assert trending_sub_columns(model.progress_code_counts(few[:, [1, 1]], few_lengths), [3, 3]) == []


def test_calibration_by_progress_fits_a_trend_that_one_offset_per_code_cannot():
    model = _model()
    contexts = torch.randint(0, 2, (2_000, 1), generator=torch.Generator().manual_seed(7))
    lengths, before = model.sample(contexts, generator=torch.Generator().manual_seed(1))
    early, late = _phase_one_share_by_half(before, lengths)
    assert abs(early - late) < 0.2  # the untrained network ignores the progress: the trend is lost

    targets = model.progress_counts.clone()
    model.progress_counts.zero_()  # one offset per code only: the marginal, not the trend
    fit_sequential_offsets(model, contexts, generator=torch.Generator().manual_seed(2))
    assert not bool(model.progress_offsets.any())
    lengths, marginal_only = model.sample(contexts, generator=torch.Generator().manual_seed(3))
    early, late = _phase_one_share_by_half(marginal_only, lengths)
    assert abs(early - late) < 0.2

    model.progress_counts.copy_(targets)
    fit_sequential_offsets(model, contexts, generator=torch.Generator().manual_seed(2))
    # the trending sub-column's offsets live in the progress table; the stationary one keeps one per code
    assert bool(model.progress_offsets[:, :2].any()) and not bool(model.progress_offsets[:, 2:].any())
    assert not bool(model.step_model.sampling_offsets[:2].any())
    lengths, after = model.sample(contexts, generator=torch.Generator().manual_seed(3))
    early, late = _phase_one_share_by_half(after, lengths)
    assert early < 0.1 and late > 0.9
    noise = torch.bincount(after[:, 1], minlength=3).double() / len(after)
    assert (noise - 1 / 3).abs().max() < 0.03
    # the off switch draws from the network alone
    lengths, raw = model.sample(contexts, generator=torch.Generator().manual_seed(3), calibrated=False)
    early, late = _phase_one_share_by_half(raw, lengths)
    assert abs(early - late) < 0.2


def test_weights_saved_before_the_progress_buffers_load_without_progress_offsets():
    model = _model()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("progress_")}
    fresh = SequentialARGN(model.spec)
    fresh.load_state_dict(state)
    assert not bool(fresh.progress_counts.any()) and not bool(fresh.progress_offsets.any())


def test_a_fitted_two_table_model_keeps_its_progress_offsets(tmp_path):
    rng = np.random.default_rng(1)
    n_subjects = 80
    lengths = rng.integers(6, 13, size=n_subjects)
    position = np.concatenate([np.arange(n) / n for n in lengths])
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "kind": rng.choice(["u", "v"], size=n_subjects)})
    tgt = pd.DataFrame({"id": np.repeat(np.arange(n_subjects), lengths), "quarter": 1 + (4 * position).astype(int),
                        "x": rng.choice(["p", "q", "r"], size=int(lengths.sum()))})
    synth = TabularSynthesizer(tgt_context_key="id", ctx_primary_key="id", model="small", max_epochs=1,
                               value_protection=False, random_state=0).fit(tgt, context=ctx)
    model = synth._bundle.build_model(torch.device("cpu"))
    assert bool(model.progress_offsets.any())
    sample = synth.sample(context=ctx, random_state=1)
    path = tmp_path / "synth.joblib"
    joblib.dump(synth, path)
    pd.testing.assert_frame_equal(joblib.load(path).sample(context=ctx, random_state=1), sample)
    # the calibrated sample follows the trend: later steps hold later quarters
    step = sample.groupby("id").cumcount() / sample.groupby("id")["id"].transform("size")
    assert sample["quarter"][step < 0.25].mean() + 1.5 < sample["quarter"][step >= 0.75].mean()
