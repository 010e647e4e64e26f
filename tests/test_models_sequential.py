"""Tests of the sequential model: batches and windows, network, training loop and sampling."""

from __future__ import annotations

import io
import json

import pytest
import torch

from synthgen.models.tabular import (
    ColumnSpec,
    SequenceData,
    SequentialARGN,
    SequentialSpec,
    build_sequential_spec,
    train_sequential_model,
)
from synthgen.models.tabular._loop import WeightAverage
from synthgen.models.tabular._positions import EXACT_POSITIONS, n_position_buckets, position_buckets
from synthgen.models.tabular._presets import learn_rate_heuristic
from synthgen.models.tabular._sequence_batches import draw_windows, full_windows, gather_batch
from synthgen.models.tabular._sequential_trainer import LEARN_RATE_SCALE

FLAG = [ColumnSpec("flag", ("cat",), (2,))]
STEP_COLUMNS = [ColumnSpec("same", ("cat",), (2,)), ColumnSpec("counter", ("cat",), (8,))]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _flag_data(n: int, short: int = 2, long: int = 5, seed: int = 0) -> SequenceData:
    """Subjects with a context flag; flag 1 has ``long`` steps, flag 0 ``short``; steps are (flag, t)."""
    flag = torch.randint(0, 2, (n,), generator=_gen(seed))
    lengths = torch.where(flag == 1, long, short)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    subject = torch.repeat_interleave(torch.arange(n), lengths)
    t = torch.arange(int(lengths.sum())) - offsets[subject]
    return SequenceData(flag[:, None], torch.stack([flag[subject], t], dim=1), lengths)


def _model(max_len: int = 7, context=FLAG, seed: int = 0) -> SequentialARGN:
    return SequentialARGN.from_preset(
        STEP_COLUMNS, context=context, max_len=max_len, median_len=3, size="small", generator=_gen(seed)
    )


def _train(model: SequentialARGN, data: SequenceData, seed: int = 0, **kwargs):
    kwargs = {"max_epochs": 30, "batch_size": 32, "learn_rate": 0.01} | kwargs
    return train_sequential_model(model, data, data, generator=_gen(seed), **kwargs)


def _split(lengths: torch.Tensor, steps: torch.Tensor) -> list[torch.Tensor]:
    return list(steps.split(lengths.tolist()))


@pytest.fixture(scope="module")
def flag_model() -> SequentialARGN:
    """Trained on lengths 2 / 5 by flag, steps (flag, position)."""
    model = _model()
    result = _train(model, _flag_data(300))
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    return model


# --- positions, windows and batches --------------------------------------------------------------------


def test_position_buckets_are_exact_then_logarithmic():
    n = n_position_buckets(500)
    buckets = position_buckets(torch.arange(2000), n)
    assert buckets[:EXACT_POSITIONS].tolist() == list(range(EXACT_POSITIONS))
    assert bool((buckets.diff() >= 0).all())
    assert int(buckets[499]) == n - 1 and int(buckets[1999]) == n - 1
    # four buckets per doubling: positions 16..31 share buckets 16..19
    assert position_buckets(torch.arange(16, 32), n).unique().tolist() == [16, 17, 18, 19]


def test_draw_windows_stay_inside_sequences_and_follow_the_reference_shares():
    lengths = torch.randint(0, 60, (20000,), generator=_gen(1))
    start, n_steps, n_warmup = draw_windows(lengths, 10, 3, _gen(2))
    scored_start = start + n_warmup
    assert bool((start >= 0).all()) and bool((start + n_steps <= lengths).all())
    assert bool((n_steps - n_warmup <= 10).all()) and bool((n_warmup <= 3).all())
    assert bool((n_steps - n_warmup == lengths.clamp(max=10)).all())
    long = lengths > 20
    first = (scored_start[long] == 0).float().mean()
    last = (scored_start[long] + 10 == lengths[long]).float().mean()
    # 30 % first windows and 10 % last windows, plus the random windows that happen to land there
    assert 0.30 < float(first) < 0.37
    assert 0.10 < float(last) < 0.17
    short = lengths <= 10
    assert bool((start[short] == 0).all()) and bool((n_warmup[short] == 0).all())


def test_gather_batch_matches_the_subjects_steps():
    data = _flag_data(20, short=0, long=6, seed=3)
    subjects = torch.tensor([5, 0, 19, 7])
    lengths = data.lengths[subjects]
    start = torch.minimum(torch.tensor([1, 0, 2, 0]), lengths)
    n_steps = torch.minimum(lengths - start, torch.tensor(3)).clamp(min=0)
    batch = gather_batch(data, subjects, start, n_steps, torch.zeros(4, dtype=torch.long))
    per_subject = _split(data.lengths, data.steps)
    for i, s in enumerate(subjects.tolist()):
        k, a = int(n_steps[i]), int(start[i])
        assert torch.equal(batch.codes[i, :k], per_subject[s][a : a + k])
        assert bool((batch.codes[i, k:] == 0).all())
        if a > 0:
            assert torch.equal(batch.previous[i], per_subject[s][a - 1])
    assert torch.equal(batch.context, data.context[subjects])


def test_sequence_data_subset_keeps_each_subjects_steps():
    data = _flag_data(10, short=0, long=3, seed=4)
    picked = torch.tensor([9, 2, 2, 0])
    sub = data.subset(picked)
    expected = torch.cat([_split(data.lengths, data.steps)[i] for i in picked.tolist()])
    assert torch.equal(sub.steps, expected)
    assert torch.equal(sub.lengths, data.lengths[picked])


# --- spec and network ----------------------------------------------------------------------------------


def test_config_round_trip_rebuilds_the_same_network(flag_model):
    config = json.loads(json.dumps(flag_model.config))
    clone = SequentialARGN.from_config(config)
    buffer = io.BytesIO()
    torch.save(flag_model.state_dict(), buffer)
    buffer.seek(0)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    data = _flag_data(16, seed=5)
    batch = gather_batch(data, torch.arange(16), *full_windows(data.lengths))
    flag_model.eval()
    clone.eval()
    assert torch.allclose(flag_model(batch), clone(batch))
    a = flag_model.sample(data.context, generator=_gen(6))
    b = clone.sample(data.context, generator=_gen(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_spec_rejects_a_step_model_with_its_own_context():
    spec = build_sequential_spec(STEP_COLUMNS, context=FLAG, max_len=5, median_len=2, size="small")
    data = spec.to_dict()
    data["step"]["context"] = [FLAG[0].to_dict()]
    data["step"]["context_embedding_dims"] = [2]
    data["step"]["context_dim"] = 4
    with pytest.raises(ValueError, match=r"SequentialSpec.step must not have context columns of its own"):
        SequentialSpec.from_dict(data)


def test_progress_table_reads_the_share_of_the_sequence_done():
    model = _model(max_len=40)
    spec = model.spec
    assert spec.progress_buckets == 20
    d = spec.position_dim
    with torch.no_grad():
        # The trunk passes the progress embedding (the last block of its input) through; row b holds b.
        model.trunk_weight.zero_()
        model.trunk_bias.zero_()
        model.trunk_weight[-d:, :d] = torch.eye(d)
        model.position_progress.copy_(torch.arange(20.0)[:, None].expand(20, d))
    done = torch.tensor([0, 5, 9, 39, 3])
    lengths = torch.tensor([10, 10, 10, 40, 4])
    n = len(done)
    condition = model._condition(
        torch.zeros(n, spec.context_dim),
        torch.zeros(n, spec.history_dim),
        torch.zeros(n, sum(spec.step.embedding_dims)),
        done,
        lengths - done,
    )
    assert condition[:, 0].tolist() == [0.0, 10.0, 18.0, 19.0, 15.0]
    # a step of a generation pass: one ``done`` for sequences of different lengths
    condition = model._condition(
        torch.zeros(2, spec.context_dim),
        torch.zeros(2, spec.history_dim),
        torch.zeros(2, sum(spec.step.embedding_dims)),
        torch.tensor([4]),
        torch.tensor([8, 36]) - 4,
    )
    assert condition[:, 0].tolist() == [10.0, 2.0]


def test_specs_written_before_the_progress_table_load_without_it():
    spec = build_sequential_spec(STEP_COLUMNS, context=FLAG, max_len=5, median_len=2, size="small")
    assert spec.progress_buckets == 5
    data = spec.to_dict()
    del data["progress_buckets"]
    old = SequentialSpec.from_dict(data)
    assert old.progress_buckets == 0
    assert old.trunk_input_dim == spec.trunk_input_dim - spec.position_dim
    assert SequentialARGN(old).position_progress is None


def test_subject_loss_does_not_depend_on_the_batch(flag_model):
    data = _flag_data(12, seed=7)
    flag_model.eval()
    together = flag_model(gather_batch(data, torch.arange(12), *full_windows(data.lengths)))
    alone = torch.cat(
        [
            flag_model(gather_batch(data, torch.tensor([i]), *full_windows(data.lengths[i : i + 1])))
            for i in range(12)
        ]
    )
    assert torch.allclose(together, alone, atol=1e-5)


def test_construction_is_deterministic_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = _model(seed=3), _model(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


# --- learning ------------------------------------------------------------------------------------------


def test_lengths_follow_the_context_flag(flag_model):
    context = torch.tensor([[0], [1]]).repeat(200, 1)
    lengths, _ = flag_model.sample(context, generator=_gen(8))
    assert float((lengths[0::2] == 2).float().mean()) > 0.95
    assert float((lengths[1::2] == 5).float().mean()) > 0.95


def test_within_sequence_dependencies_are_learned(flag_model):
    context = torch.tensor([[0], [1]]).repeat(200, 1)
    lengths, steps = flag_model.sample(context, generator=_gen(9))
    subject = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)])
    position = torch.arange(len(steps)) - offsets[subject]
    assert float((steps[:, 0] == context[subject, 0]).float().mean()) > 0.97
    assert float((steps[:, 1] == position).float().mean()) > 0.97


def test_zero_length_sequences_train_and_generate():
    data = _flag_data(300, short=0, long=3, seed=10)
    model = _model(max_len=4, seed=10)
    _train(model, data, max_epochs=20)
    context = torch.tensor([[0], [1]]).repeat(100, 1)
    lengths, steps = model.sample(context, generator=_gen(11))
    assert float((lengths[0::2] == 0).float().mean()) > 0.95
    assert float((lengths[1::2] == 3).float().mean()) > 0.95
    assert len(steps) == int(lengths.sum())


def test_key_only_context_learns_the_length_distribution():
    data = _flag_data(300, short=1, long=4, seed=12)
    data = SequenceData(torch.zeros(300, 0, dtype=torch.long), data.steps, data.lengths)
    model = _model(max_len=6, context=(), seed=12)
    _train(model, data, max_epochs=10)
    lengths, _ = model.sample(torch.zeros(2000, 0, dtype=torch.long), generator=_gen(13))
    share_long = float((data.lengths == 4).float().mean())
    assert float(((lengths == 1) | (lengths == 4)).float().mean()) > 0.97
    assert abs(float((lengths == 4).float().mean()) - share_long) < 0.05


def _constant_value_data(n: int, seed: int) -> SequenceData:
    """Lengths 30..60; step column 0 is one of 5 values per sequence, column 1 is noise; context is noise."""
    gen = _gen(seed)
    lengths = torch.randint(30, 61, (n,), generator=gen)
    value = torch.randint(0, 5, (n,), generator=gen)
    subject = torch.repeat_interleave(torch.arange(n), lengths)
    noise = torch.randint(0, 3, (len(subject),), generator=gen)
    context = torch.randint(0, 2, (n, 1), generator=gen)
    return SequenceData(context, torch.stack([value[subject], noise], dim=1), lengths)


@pytest.fixture(scope="module")
def constant_model() -> SequentialARGN:
    """Trained briefly on sequences whose first step column never changes within a sequence."""
    columns = [ColumnSpec("value", ("cat",), (5,)), ColumnSpec("noise", ("cat",), (3,))]
    model = SequentialARGN.from_preset(
        columns, context=FLAG, max_len=60, median_len=45, size="small", generator=_gen(20)
    )
    _train(model, _constant_value_data(200, seed=20), seed=20, max_epochs=6)
    return model


def test_a_value_that_is_constant_within_sequences_is_kept(constant_model):
    lengths, steps = constant_model.sample(torch.tensor([[0], [1]]).repeat(100, 1), generator=_gen(21))
    assert float((lengths >= 30).float().mean()) > 0.9
    kept = [bool((part[:, 0] == part[0, 0]).all()) for part in _split(lengths, steps)]
    assert sum(kept) / len(kept) > 0.9
    # the first value still follows the data's uniform distribution over 5 values, not one favourite
    first = steps[torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]]), 0]
    assert int(torch.bincount(first, minlength=5).min()) >= 20


def test_a_seeded_value_is_continued_by_the_copy_path(constant_model):
    context = torch.zeros(100, 1, dtype=torch.long)
    seed_steps = torch.stack([torch.arange(100) % 5, torch.zeros(100, dtype=torch.long)], dim=1)
    lengths, steps = constant_model.sample(
        context, seed_steps=seed_steps, seed_lengths=torch.ones(100, dtype=torch.long), generator=_gen(22)
    )
    kept = [bool((part[:, 0] == v).all()) for part, v in zip(_split(lengths, steps), seed_steps[:, 0], strict=True)]
    assert sum(kept) / len(kept) > 0.9


@torch.no_grad()
def test_copy_gain_moves_the_step_heads_towards_the_given_codes():
    model = _model(seed=23).step_model.eval()
    codes = torch.tensor([[0, 3], [1, 5], [1, 0]])
    condition = torch.rand(3, model.spec.condition_dim, generator=_gen(24))
    plain = model(codes, condition=condition)
    zero = model(codes, condition=condition, copy_codes=codes, copy_gain=torch.zeros(3, 2))
    assert torch.equal(plain, zero)
    boosted = model(codes, condition=condition, copy_codes=codes, copy_gain=torch.full((3, 2), 30.0))
    assert float(boosted.max()) < 1e-6
    layout = model.generation_layout(model.training_order)
    drawn = model.sample_batch(
        layout, None, {}, 1.0, 0.9, {}, _gen(25), condition=condition,
        copy_codes=codes, copy_gain=torch.full((3, 2), 30.0),
    )
    assert torch.equal(drawn, codes)
    with pytest.raises(ValueError, match=r"copy_codes and copy_gain must be given together"):
        model(codes, condition=condition, copy_codes=codes)
    with pytest.raises(ValueError, match=r"copy_gain must have shape \(3, 2\); got \(3,\)"):
        model(codes, condition=condition, copy_codes=codes, copy_gain=torch.zeros(3))


def test_windows_shorter_than_sequences_still_train():
    data = _flag_data(300, short=6, long=6, seed=14)
    model = _model(max_len=7, seed=14)
    result = _train(model, data, max_sequence_window=2, window_warmup=0, max_epochs=15)
    assert result.history[-1]["val_loss"] < 0.5 * result.history[0]["val_loss"]
    lengths, steps = model.sample(data.context[:100], generator=_gen(15))
    # the one training length is learnt; the length head's leftover mass may give a rare other draw
    assert int((lengths == 6).sum()) >= 97
    for length, subject_steps in zip(lengths.tolist(), _split(lengths, steps), strict=True):
        if length == 6:  # the step positions, learnt through windows of 2 steps
            assert torch.equal(subject_steps[:, 1], torch.arange(6))


def test_the_heuristic_learning_rate_is_scaled_for_sequences_but_not_an_explicit_one():
    data = _flag_data(64, seed=3)
    result = _train(_model(seed=3), data, max_epochs=1, learn_rate=None)
    assert result.history[0]["learn_rate"] == pytest.approx(LEARN_RATE_SCALE * learn_rate_heuristic(32))
    assert LEARN_RATE_SCALE == 4.0
    result = _train(_model(seed=3), data, max_epochs=1, learn_rate=0.004)
    assert result.history[0]["learn_rate"] == pytest.approx(0.004)


# --- sampling ------------------------------------------------------------------------------------------


def test_seeded_prefixes_are_kept_and_continued(flag_model):
    context = torch.tensor([[1], [1], [0], [0]])
    seed_lengths = torch.tensor([2, 0, 3, 1])
    seed_steps = torch.tensor([[1, 0], [1, 1], [0, 0], [0, 1], [0, 2], [0, 0]])
    lengths, steps = flag_model.sample(
        context, seed_steps=seed_steps, seed_lengths=seed_lengths, generator=_gen(16)
    )
    assert bool((lengths >= seed_lengths).all())
    parts = _split(lengths, steps)
    seeds = _split(seed_lengths, seed_steps)
    for part, seed in zip(parts, seeds, strict=True):
        assert torch.equal(part[: len(seed)], seed)
    # the counter continues after the prefix, and flag-1 sequences keep their usual length
    assert parts[0][2:, 1].tolist() == list(range(2, len(parts[0])))
    assert lengths[:2].tolist() == [5, 5]
    # flag 0 usually has length 2, but 3 steps were seeded: the length is at least 3
    assert int(lengths[2]) >= 3


def test_seeded_subjects_mixed_with_unseeded_ones_in_a_batch(flag_model):
    context = torch.tensor([[1]] * 6)
    seed_lengths = torch.tensor([0, 4, 0, 1, 0, 5])
    seed_steps = torch.cat(
        [torch.stack([torch.ones(k, dtype=torch.long), torch.arange(k)], 1) for k in (4, 1, 5)]
    )
    lengths, steps = flag_model.sample(
        context, seed_steps=seed_steps, seed_lengths=seed_lengths, generator=_gen(17)
    )
    assert lengths.tolist() == [5] * 6
    assert torch.equal(steps[:, 1], torch.arange(5).repeat(6))


def test_fixed_lengths_are_used(flag_model):
    fixed = torch.tensor([0, 1, 7, 3])
    lengths, steps = flag_model.sample(
        torch.tensor([[0], [1], [1], [0]]), fixed_lengths=fixed, generator=_gen(18)
    )
    assert torch.equal(lengths, fixed)
    assert len(steps) == 11


def test_fixed_probs_suppress_a_code(flag_model):
    _, steps = flag_model.sample(torch.tensor([[1]] * 50), fixed_probs={1: {2: 0.0}}, generator=_gen(19))
    assert len(steps) > 0 and not bool((steps[:, 1] == 2).any())


def test_sampling_is_deterministic_for_a_seeded_generator(flag_model):
    context = torch.tensor([[0], [1]]).repeat(30, 1)
    a = flag_model.sample(context, generator=_gen(20), batch_size=7)
    b = flag_model.sample(context, generator=_gen(20), batch_size=7)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fixed_lengths": torch.tensor([1, -1])}, r"fixed_lengths must be >= 0; got a minimum of -1"),
        ({"seed_lengths": torch.tensor([1, 0])}, r"seed_steps and seed_lengths must be given together"),
        (
            {"seed_lengths": torch.tensor([1, 0]), "seed_steps": torch.zeros(2, 2, dtype=torch.long)},
            r"seed_steps must hold sum\(seed_lengths\) = 1 rows; got 2",
        ),
        (
            {
                "seed_lengths": torch.tensor([2, 0]),
                "seed_steps": torch.zeros(2, 2, dtype=torch.long),
                "fixed_lengths": torch.tensor([1, 0]),
            },
            r"fixed_lengths must be >= seed_lengths; subject 0 has length 1 but 2 seeded steps",
        ),
        (
            {"seed_lengths": torch.tensor([8, 0]), "seed_steps": torch.zeros(8, 2, dtype=torch.long)},
            r"seed_lengths must be <= max_len \(7\) unless fixed_lengths are given; got 8",
        ),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ],
)
def test_sample_rejects_bad_arguments(flag_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        flag_model.sample(torch.tensor([[0], [1]]), **kwargs)


def test_sample_rejects_out_of_range_context(flag_model):
    with pytest.raises(
        ValueError, match=r"context_codes sub-column 0 must hold codes in 0..1; got values in 0..2"
    ):
        flag_model.sample(torch.tensor([[0], [2]]))


# --- training loop -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: SequenceData(d.context, d.steps, d.lengths + 10),
            r"trn.lengths must lie in 0..7 \(max_len\)",
        ),
        (
            lambda d: SequenceData(d.context, d.steps[1:], d.lengths),
            r"trn.steps must hold sum\(lengths\) = \d+ rows",
        ),
        (
            lambda d: SequenceData(d.context[1:], d.steps, d.lengths),
            r"trn.context must hold one row per subject",
        ),
    ],
)
def test_training_rejects_inconsistent_data(change, message):
    with pytest.raises(ValueError, match=message):
        train_sequential_model(_model(), change(_flag_data(10)), None, generator=_gen())


def test_training_rejects_a_bad_window():
    with pytest.raises(
        ValueError, match=r"max_sequence_window must be an int in the range \[1, inf\); got 0"
    ):
        train_sequential_model(_model(), _flag_data(10), None, max_sequence_window=0, generator=_gen())


def test_time_budget_stops_training():
    result = _train(_model(), _flag_data(300), max_epochs=1000, max_training_time_s=0.3, batch_size=8)
    assert result.stop_reason == "max_training_time"
    # The budget plus one step, with room for a loaded machine (ignoring the budget would run for minutes).
    assert 0.3 <= result.history[-1]["total_time"] < 0.3 + 5


def test_training_is_deterministic():
    data = _flag_data(100, seed=21)
    a, b = _model(seed=21), _model(seed=21)
    ra, rb = _train(a, data, max_epochs=2), _train(b, data, max_epochs=2)
    assert [r["val_loss"] for r in ra.history] == [r["val_loss"] for r in rb.history]
    assert all(
        torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_training_resumes_from_a_saved_state():
    data = _flag_data(100, seed=22)
    saved = []
    first = _train(_model(seed=22), data, max_epochs=2, on_checkpoint=saved.append)
    buffer = io.BytesIO()
    torch.save(saved[-1], buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    model = _model(seed=99)
    resumed = _train(model, data, max_epochs=4, resume_state=state)
    assert [r["epoch"] for r in resumed.history] == [1.0, 2.0, 3.0, 4.0]
    assert resumed.history[:2] == first.history
    assert resumed.history[-1]["steps"] == 2 * first.history[-1]["steps"]


def test_weight_average_follows_the_parameters_with_a_warmed_up_decay():
    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.zero_()
    average = WeightAverage(layer, decay=0.995)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average.update(layer)  # the first update moves 1 - min(0.995, 2 / 11) of the way
    assert torch.allclose(average.params["weight"], torch.full((1, 2), 9 / 11))
    for _ in range(2000):
        average.update(layer)
    assert torch.allclose(average.params["weight"], torch.ones(1, 2))
    with torch.no_grad():
        layer.weight.fill_(3.0)
    average.swap(layer)
    assert torch.allclose(layer.weight, torch.ones(1, 2))
    assert torch.equal(average.params["weight"], torch.full((1, 2), 3.0))
    average.swap(layer)
    assert torch.equal(layer.weight, torch.full((1, 2), 3.0))
    assert torch.allclose(average.state_dict(layer)["weight"], torch.ones(1, 2))


def test_sequential_training_keeps_the_averaged_weights():
    data = _flag_data(100, seed=23)
    model = _model(seed=23)
    result = _train(model, data, max_epochs=3)
    assert result.history[-1]["is_checkpoint"]  # the last epoch was the best: its average is returned
    averaged = result.state["weight_average"]["params"]
    raw = result.state["model"]
    returned = model.state_dict()
    assert all(torch.equal(returned[name], value) for name, value in averaged.items())
    assert any(not torch.equal(raw[name], value) for name, value in averaged.items())
    assert all(torch.equal(result.best_state_dict[name], returned[name]) for name in returned)


def test_callback_stops_training():
    records = []
    result = _train(_model(), _flag_data(50), max_epochs=10, on_progress=lambda r: records.append(r) or True)
    assert result.stop_reason == "callback"
    assert len(records) == 1 and len(result.history) == 1


# --- smoothed length targets ---------------------------------------------------------------------------


def test_length_targets_spread_rare_lengths_and_keep_common_and_short_ones():
    from synthgen.models.tabular._lengths import SHRINKAGE, LengthSmoother

    lengths = torch.cat([torch.full((2000,), 12), torch.tensor([1, 2, 3, 4, 100, 200])])
    smoother = LengthSmoother(lengths, max_len=250)
    targets = smoother.targets(torch.tensor([12, 100, 200, 1, 4, 0]))
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(6))
    # 2,000 subjects of length 12: shrunk by 20 / 2020, so about 99 % stays on 12
    assert float(targets[0, 12]) > 0.99
    # a single subject of length 100: its weight is spread like a Gaussian of about 5 lengths
    spread = SHRINKAGE / (SHRINKAGE + 1)
    assert float(targets[1, 100]) < 0.2
    assert float(targets[1, 95:106].sum()) == pytest.approx(1 - spread + 0.68 * spread, abs=0.05)
    assert float(targets[1, 90:111].sum()) > 0.95
    assert float((targets[1] * torch.arange(251)).sum()) == pytest.approx(100.0, abs=1.0)
    assert float(targets[2, 180:221].sum()) > 0.95  # two standard deviations of about 10 around 200
    # short lengths stay exact however rare: the kernel is narrow in log(1 + length)
    assert float(targets[3, 1]) > 0.999 and float(targets[4, 4]) > 0.998
    assert float(targets[5, 0]) == 1.0  # a length no training subject has is not smoothed
    histogram = smoother.histogram()
    assert float(histogram.sum()) == pytest.approx(len(lengths))
    assert float(histogram[12]) > 1980


def test_exact_length_targets_when_smoothing_is_off():
    from synthgen.models.tabular._lengths import LengthSmoother

    lengths = torch.tensor([3, 50, 120])
    targets = LengthSmoother(lengths, max_len=150, shrinkage=0.0).targets(lengths)
    torch.testing.assert_close(targets, torch.nn.functional.one_hot(lengths, 151).float())


def test_trained_lengths_do_not_sit_on_the_rare_training_lengths():
    # 120 subjects, five of each length 100, 110, ..., 330: an exact histogram would only ever draw those
    lengths = torch.arange(100, 340, 10).repeat_interleave(5)
    steps = torch.zeros(int(lengths.sum()), 2, dtype=torch.long)
    data = SequenceData(torch.zeros(len(lengths), 0, dtype=torch.long), steps, lengths)
    model = _model(max_len=400, context=[])
    _train(model, data, max_epochs=2, max_sequence_window=4)
    drawn, _ = model.sample(torch.zeros(600, 0, dtype=torch.long), generator=_gen(3))
    on_grid = torch.isin(drawn, lengths.unique()).float().mean()
    assert float(on_grid) < 0.35  # the grid holds about one length in ten of the kernel's mass (+ 1 - 20/25)
    assert float(drawn.float().mean()) == pytest.approx(float(lengths.float().mean()), rel=0.05)
    # a small training set is not flattened towards every possible length
    assert float(((drawn < 90) | (drawn > 360)).float().mean()) < 0.02


def test_step_and_length_draws_sort_the_subjects_flat_draws_do_not(flag_model, monkeypatch):
    # a sequence step's rows are different subjects: their draws stratify within blocks of similar rows
    # (sorted_block_uniforms); a flat model's rows keep the plain stratified uniforms (issue 15, seventh round)
    from synthgen.models.tabular import _sampling

    calls = []
    original = _sampling.sorted_block_uniforms
    monkeypatch.setattr(_sampling, "sorted_block_uniforms",
                        lambda keys, **kwargs: calls.append(len(keys)) or original(keys, **kwargs))
    context = torch.tensor([[0], [1]]).repeat(100, 1)
    flag_model.sample(context, generator=_gen(14))
    # the lengths (200 subjects) and each sub-column of the steps that 64 subjects or more reach
    assert calls and calls[0] == 200 and min(calls) >= _sampling.SORT_MIN_ROWS
    calls.clear()
    flag_model.step_model.sample(200, condition=torch.zeros(200, flag_model.step_model.spec.condition_dim),
                                 generator=_gen(15))
    assert calls == []
