"""The sequential calibration of value parts jointly: a clock time's minute given its hour, so that the minutes
within each hour (not only over all hours) match the training steps'."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import torch
from _tiny_sequential import tiny_sequential_model

from synthgen import TabularSynthesizer
from synthgen.models.tabular import ColumnSpec, SequentialARGN, _calibration
from synthgen.models.tabular._calibration import fit_sequential_offsets
from synthgen.models.tabular._value_pairs import ValuePairs, value_part_pairs

# a clock-like column: 2 hours x 3 minutes, and an unrelated column
STEPS = [ColumnSpec("t", ("tgt:c0__hour", "tgt:c0__minute"), (2, 3)), ColumnSpec("noise", ("cat",), (3,))]


def test_value_part_pairs_are_the_hour_and_minute_of_clock_columns():
    columns = [ColumnSpec("a", ("cat",), (5,)),
               ColumnSpec("t", ("tgt:c1__nan", "tgt:c1__hour", "tgt:c1__minute"), (2, 25, 60)),
               ColumnSpec("n", ("nan", "neg", "E2", "E1", "E0"), (2, 2, 7, 10, 10)),
               ColumnSpec("d", ("year", "month", "day", "hour", "minute"), (2, 12, 31, 24, 60)),
               ColumnSpec("s", ("tgt:c4__hour", "tgt:c4__minute"), (19, 60))]
    assert value_part_pairs(columns) == [(2, 3), (14, 15)]


def test_value_pairs_count_code_pairs_and_read_them_back_as_tables():
    pairs = ValuePairs([(0, 1), (1, 2)], [2, 3, 2])
    steps = torch.tensor([[0, 2, 1], [1, 0, 0], [1, 0, 0]])
    counts = pairs.counts(steps)
    assert pairs.n_cells == 6 + 6 and counts.sum() == 2 * len(steps)
    tables = pairs.tables(counts)
    assert tables[1][0] == 0 and tables[1][1].tolist() == [[0, 0, 1], [2, 0, 0]]
    assert tables[2][0] == 1 and tables[2][1].tolist() == [[2, 0], [0, 0], [0, 1]]


def _training_steps(n_subjects: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of 4 to 6 steps: the hour is 0 or 1 at random, the minute is 0 in hour 0 and 2 in hour 1 (its
    marginal is 50/50 on minutes 0 and 2, which a network drawing the minute regardless of the hour matches)."""
    rng = torch.Generator().manual_seed(0)
    lengths = torch.randint(4, 7, (n_subjects,), generator=rng)
    hour = torch.randint(0, 2, (int(lengths.sum()),), generator=rng)
    noise = torch.randint(0, 3, (int(lengths.sum()),), generator=rng)
    return torch.stack([hour, 2 * hour, noise], dim=1), lengths


def _model() -> SequentialARGN:
    return tiny_sequential_model(STEPS, *_training_steps())


def _minute_given_hour(steps: torch.Tensor) -> tuple[float, float]:
    """The share of minute 0 in hour 0 and of minute 2 in hour 1."""
    hour, minute = steps[:, 0], steps[:, 1]
    return float((minute[hour == 0] == 0).double().mean()), float((minute[hour == 1] == 2).double().mean())


def test_joint_calibration_fits_the_minutes_within_each_hour_that_per_code_offsets_cannot(monkeypatch):
    model = _model()
    assert model.value_pairs.pairs == ((0, 1),)
    assert model.pair_counts.view(2, 3).tolist()[0][1:] == [0.0, 0.0]  # hour 0 holds minute 0 only
    contexts = torch.randint(0, 2, (2_000, 1), generator=torch.Generator().manual_seed(7))

    monkeypatch.setattr(_calibration, "JOINT_CALIBRATION", False)
    fit_sequential_offsets(model, contexts, generator=torch.Generator().manual_seed(2))
    assert not bool(model.pair_offsets.any())
    _, per_code = model.sample(contexts, generator=torch.Generator().manual_seed(3))
    minutes = torch.bincount(per_code[:, 1], minlength=3).double() / len(per_code)
    assert minutes[1] < 0.05 and abs(float(minutes[0]) - 0.5) < 0.05  # the marginal is met ...
    zero_in_0, two_in_1 = _minute_given_hour(per_code)
    assert zero_in_0 < 0.7 and two_in_1 < 0.7  # ... but the minute ignores the hour

    monkeypatch.setattr(_calibration, "JOINT_CALIBRATION", True)
    fit_sequential_offsets(model, contexts, generator=torch.Generator().manual_seed(2))
    assert bool(model.pair_offsets.any())
    _, joint = model.sample(contexts, generator=torch.Generator().manual_seed(3))
    zero_in_0, two_in_1 = _minute_given_hour(joint)
    assert zero_in_0 > 0.9 and two_in_1 > 0.9
    noise = torch.bincount(joint[:, 2], minlength=3).double() / len(joint)
    assert (noise - 1 / 3).abs().max() < 0.03
    # uncalibrated sampling leaves the pair offsets out too
    _, raw = model.sample(contexts, generator=torch.Generator().manual_seed(3), calibrated=False)
    assert max(_minute_given_hour(raw)) < 0.7


def test_weights_saved_before_the_pair_buffers_load_without_pair_offsets():
    model = _model()
    model.pair_offsets.fill_(1.0)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pair_")}
    fresh = SequentialARGN(model.spec)
    fresh.load_state_dict(state)
    assert fresh.pair_counts.shape == (6,) and not bool(fresh.pair_counts.any())
    assert not bool(fresh.pair_offsets.any()) and fresh._pair_tables() == {}


def _on_grid(sample: pd.DataFrame) -> float:
    """The share of times whose minute is one of its hour's: the tens in even hours, :05, :15 … :45, :59 in odd."""
    even = (sample["sched"] // 100 % 2 == 0).to_numpy()
    minute = (sample["sched"] % 100).to_numpy()
    return float(np.where(even, minute % 10 == 0, np.isin(minute, [5, 15, 25, 35, 45, 59])).mean())


def test_a_fitted_two_table_model_with_a_clock_column_keeps_its_pair_offsets(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n_subjects = 120
    lengths = rng.integers(6, 11, size=n_subjects)
    n = int(lengths.sum())
    # more than 100 distinct HHMM values (else the column would be coded as categories), minutes by hour
    hour = rng.integers(4, 23, size=n)
    minute = np.where(hour % 2 == 0, rng.choice([0, 10, 20, 30, 40, 50], size=n),
                      rng.choice([5, 15, 25, 35, 45, 59], size=n))
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "kind": rng.choice(["u", "v"], size=n_subjects)})
    tgt = pd.DataFrame({"id": np.repeat(np.arange(n_subjects), lengths), "sched": hour * 100 + minute,
                        "x": rng.choice(["p", "q", "r"], size=n)})

    def fit() -> TabularSynthesizer:
        return TabularSynthesizer(tgt_context_key="id", ctx_primary_key="id", model="small", max_epochs=1,
                                  value_protection=False, random_state=0).fit(tgt, context=ctx)

    monkeypatch.setattr(_calibration, "JOINT_CALIBRATION", False)
    per_code = fit()
    assert not bool(per_code._bundle.build_model(torch.device("cpu")).pair_offsets.any())
    monkeypatch.setattr(_calibration, "JOINT_CALIBRATION", True)
    synth = fit()
    model = synth._bundle.build_model(torch.device("cpu"))
    assert len(model.value_pairs.pairs) == 1 and bool(model.pair_counts.any()) and bool(model.pair_offsets.any())
    sample = synth.sample(context=ctx, random_state=1)
    path = tmp_path / "synth.joblib"
    joblib.dump(synth, path)
    pd.testing.assert_frame_equal(joblib.load(path).sample(context=ctx, random_state=1), sample)
    # the calibrated minutes follow their hours far more often than with one offset per code
    assert _on_grid(sample) > 0.8 and _on_grid(per_code.sample(context=ctx, random_state=1)) < 0.65  # 0.88, 0.53
