"""Tests of the flat any-order autoregressive model: network, sampling, presets and training loop."""

from __future__ import annotations

import io
import itertools
import json
import math

import pytest
import torch

from synthgen.models.tabular import (
    ColumnSpec,
    FixedProbabilities,
    FlatARGN,
    ModelSpec,
    _sampling,
    batch_size_heuristic,
    build_model_spec,
    learn_rate_heuristic,
    resolve_model_size,
    sample_categorical,
    train_model,
)
from synthgen.models.tabular._sampling import sorted_block_uniforms, stratified_uniforms


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_codes(n: int, cards: list[int], seed: int = 0) -> torch.Tensor:
    gen = _gen(seed)
    return torch.stack([torch.randint(0, k, (n,), generator=gen) for k in cards], dim=1)


@pytest.fixture
def mixed_columns() -> list[ColumnSpec]:
    """Three columns, one with two sub-columns, cardinalities spanning several output groups."""
    return [
        ColumnSpec("a", ("cat",), (3,)),
        ColumnSpec("b", ("hi", "lo"), (4, 10)),
        ColumnSpec("c", ("cat",), (70,)),
    ]


@pytest.fixture(scope="module")
def copy_model() -> FlatARGN:
    """A small model trained on two columns with b == a (a deterministic relation)."""
    gen = _gen(1)
    a = torch.randint(0, 8, (600,), generator=gen)
    codes = torch.stack([a, a], dim=1)
    columns = [ColumnSpec("a", ("cat",), (8,)), ColumnSpec("b", ("cat",), (8,))]
    model = FlatARGN.from_preset(columns, size="small", generator=gen)
    result = train_model(
        model, codes[:500], codes[500:], batch_size=32, max_epochs=25, learn_rate=0.01, generator=gen
    )
    assert result.history[-1]["trn_loss"] < result.history[0]["trn_loss"]
    return model


# --- specs and presets ----------------------------------------------------------------------------------


def test_column_spec_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"Column 'x' has 2 sub-columns but 1 cardinalities"):
        ColumnSpec("x", ("a", "b"), (3,))


def test_column_spec_rejects_zero_cardinality():
    with pytest.raises(ValueError, match=r"Cardinalities of column 'x' must be >= 1; got \{'a': 0\}"):
        ColumnSpec("x", ("a",), (0,))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MOSTLY_AI/Small", "MOSTLY_AI/Small"),
        ("mostly_ai/medium", "MOSTLY_AI/Medium"),
        ("Large", "MOSTLY_AI/Large"),
        ("small", "MOSTLY_AI/Small"),
    ],
)
def test_resolve_model_size(name, expected):
    assert resolve_model_size(name) == expected


def test_unknown_model_size_lists_allowed_names(mixed_columns):
    with pytest.raises(ValueError) as err:
        build_model_spec(mixed_columns, size="huge")
    message = str(err.value)
    assert "'huge'" in message
    for allowed in ("'MOSTLY_AI/Small'", "'MOSTLY_AI/Medium'", "'MOSTLY_AI/Large'", "'small'", "'large'"):
        assert allowed in message


def test_presets_grow_with_size(mixed_columns):
    specs = [build_model_spec(mixed_columns, size=s) for s in ("small", "medium", "large")]
    params = [sum(p.numel() for p in FlatARGN(s).parameters()) for s in specs]
    assert params[0] < params[1] < params[2]
    assert [s.n_blocks for s in specs] == [0, 0, 1]
    # Reference embedding heuristics: Medium, cardinality 70 -> 3 * ceil(70 ** 0.25) = 9, at least 10.
    assert specs[1].embedding_dims == (3, 4, 10, 10)


def test_output_groups_separate_wide_from_narrow_heads():
    columns = [ColumnSpec(f"c{i}", ("cat",), (k,)) for i, k in enumerate((2, 16, 17, 1000))]
    assert build_model_spec(columns).output_groups == ((0, 1), (2,), (3,))


@pytest.mark.parametrize(("n", "expected"), [(10, 8), (1000, 8), (39000, 512), (10_000_000, 2048)])
def test_batch_size_heuristic(n, expected):
    assert batch_size_heuristic(n) == expected


def test_learn_rate_heuristic_matches_reference():
    assert learn_rate_heuristic(32) == 0.001
    assert learn_rate_heuristic(128) == 0.002
    assert learn_rate_heuristic(4096) == 0.01131


def test_config_round_trip_rebuilds_the_same_network(mixed_columns):
    context = [ColumnSpec("k", ("cat",), (5,))]
    model = FlatARGN.from_preset(mixed_columns, context=context, size="medium", generator=_gen(3))
    config = json.loads(json.dumps(model.config))
    rebuilt = FlatARGN.from_config(config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    rebuilt.load_state_dict(torch.load(buffer, weights_only=True))
    codes, ctx = _random_codes(16, [3, 4, 10, 70]), _random_codes(16, [5], seed=1)
    torch.testing.assert_close(rebuilt.eval()(codes, ctx), model.eval()(codes, ctx))
    assert rebuilt.spec == model.spec


def test_model_spec_rejects_bad_output_groups(mixed_columns):
    spec = build_model_spec(mixed_columns).to_dict()
    spec["output_groups"] = [[0, 1], [3]]
    with pytest.raises(ValueError, match="must partition the sub-columns 0..3"):
        ModelSpec.from_dict(spec)


# --- network ----------------------------------------------------------------------------------------------


def test_forward_shapes_and_finite_loss(mixed_columns):
    model = FlatARGN.from_preset(mixed_columns)
    nll = model(_random_codes(32, [3, 4, 10, 70]), order=[2, 0, 1])
    assert nll.shape == (32,)
    assert torch.isfinite(nll).all() and (nll > 0).all()


def test_forward_rejects_wrong_width(mixed_columns):
    model = FlatARGN.from_preset(mixed_columns)
    with pytest.raises(ValueError, match=r"codes must have shape \(batch, 4\); got \(5, 3\)"):
        model(torch.zeros(5, 3, dtype=torch.long))


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_likelihood_is_normalised_for_every_order(order):
    # exp(-NLL) summed over every possible row is 1 only if no head sees its own or later columns.
    columns = [ColumnSpec("a", ("cat",), (2,)), ColumnSpec("b", ("hi", "lo"), (3, 2)), ColumnSpec("c", ("x",), (3,))]
    model = FlatARGN.from_preset(columns, context=[ColumnSpec("k", ("cat",), (4,))], generator=_gen(5)).eval()
    rows = torch.tensor(list(itertools.product(range(2), range(3), range(2), range(3))))
    ctx = torch.full((len(rows), 1), 2)
    total = torch.exp(-model(rows, ctx, order=order).double()).sum()
    assert total.item() == pytest.approx(1.0, abs=1e-5)


def test_generation_path_matches_training_likelihood(mixed_columns):
    # Sampling fills inputs step by step; its conditionals must be those the forward pass trains.
    model = FlatARGN.from_preset(mixed_columns, generator=_gen(2)).eval()
    gen = _gen(9)
    order = [2, 0, 1]
    sampled = model.sample(2000, column_order=order, generator=gen)
    nll_sampled = model(sampled, order=order).mean()
    nll_other = model(_random_codes(2000, [3, 4, 10, 70], seed=4), order=order).mean()
    # Rows drawn from the model have the model's entropy as expected NLL, below that of uniform rows.
    entropy_bound = sum(math.log(k) for k in (3, 4, 10, 70))
    assert nll_sampled < nll_other
    assert nll_sampled < entropy_bound


def test_sample_shapes_and_ranges(mixed_columns):
    model = FlatARGN.from_preset(mixed_columns)
    out = model.sample(300, generator=_gen(), batch_size=128)
    assert out.shape == (300, 4) and out.dtype == torch.long
    assert (out >= 0).all()
    assert (out.max(0).values < torch.tensor([3, 4, 10, 70])).all()
    assert model.sample(0, generator=_gen()).shape == (0, 4)


def test_sampled_rows_follow_the_model_distribution():
    # Enumerate every row of a tiny model: sampled frequencies must match exp(-NLL), for two orders.
    columns = [ColumnSpec("a", ("cat",), (3,)), ColumnSpec("b", ("hi", "lo"), (2, 3))]
    model = FlatARGN.from_preset(columns, generator=_gen(6)).eval()
    with torch.no_grad():
        model.in_weight.mul_(4.0)  # sharpen the conditionals so that mistakes would show
    rows = torch.tensor(list(itertools.product(range(3), range(2), range(3))))
    row_index = torch.tensor([6, 3, 1])  # position of (a, hi, lo) in ``rows``
    for order in ([0, 1], [1, 0]):
        probs = torch.exp(-model(rows, order=order).double()).detach()
        out = model.sample(40000, column_order=order, generator=_gen(1))
        shares = torch.bincount(out @ row_index, minlength=len(rows)).double() / len(out)
        assert 0.5 * (shares - probs).abs().sum() < 0.015


def test_same_seed_same_samples(mixed_columns):
    model = FlatARGN.from_preset(mixed_columns)
    first = model.sample(200, generator=_gen(7), temperature=0.8, top_p=0.9)
    second = model.sample(200, generator=_gen(7), temperature=0.8, top_p=0.9)
    third = model.sample(200, generator=_gen(8), temperature=0.8, top_p=0.9)
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_init_output_bias_uses_laplace_smoothed_frequencies():
    model = FlatARGN.from_preset([ColumnSpec("a", ("cat",), (3,))], size="small")
    codes = torch.tensor([[0], [0], [0], [1]])
    model.init_output_bias(codes)
    expected = torch.log(torch.tensor([4.0, 2.0, 1.0]) / 7.0)
    torch.testing.assert_close(model.out_biases[0][0, 0, :3], expected)


# --- sampling primitive -----------------------------------------------------------------------------------


def _logits(probs: list[float], n: int) -> torch.Tensor:
    return torch.log(torch.tensor(probs)).expand(n, -1)


def _shares(codes: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(codes, minlength=k).double() / len(codes)


def test_sample_categorical_follows_probabilities():
    codes = sample_categorical(_logits([0.5, 0.3, 0.2], 20000), generator=_gen())
    torch.testing.assert_close(_shares(codes, 3), torch.tensor([0.5, 0.3, 0.2], dtype=torch.double), atol=0.015, rtol=0)


def test_low_temperature_reduces_entropy():
    logits = _logits([0.4, 0.3, 0.2, 0.1], 20000)

    def entropy(temperature: float) -> float:
        shares = _shares(sample_categorical(logits, temperature=temperature, generator=_gen()), 4)
        return float(-(shares[shares > 0] * shares[shares > 0].log()).sum())

    assert entropy(0.5) < entropy(1.0) - 0.1 < entropy(2.0) - 0.15
    # Temperature 0 is floored at 1e-3: greedy.
    assert (sample_categorical(logits, temperature=0.0, generator=_gen()) == 0).all()


def test_top_p_removes_unlikely_codes():
    logits = _logits([0.6, 0.3, 0.05, 0.05], 20000)
    codes = sample_categorical(logits, top_p=0.8, generator=_gen())
    shares = _shares(codes, 4)
    assert shares[2] == 0 and shares[3] == 0
    assert shares[0].item() == pytest.approx(2 / 3, abs=0.015)
    assert (sample_categorical(logits, top_p=0.1, generator=_gen()) == 0).all()


def test_fixed_probabilities_suppress_and_rebalance():
    logits = _logits([0.5, 0.3, 0.2], 20000)
    suppressed = sample_categorical(
        logits, fixed=FixedProbabilities(torch.tensor([0]), torch.tensor([0.0])), generator=_gen()
    )
    shares = _shares(suppressed, 3)
    assert shares[0] == 0
    assert shares[1].item() == pytest.approx(0.6, abs=0.015)
    rebalanced = sample_categorical(
        logits, fixed=FixedProbabilities(torch.tensor([2]), torch.tensor([0.6])), generator=_gen()
    )
    torch.testing.assert_close(_shares(rebalanced, 3), torch.tensor([0.25, 0.15, 0.6], dtype=torch.double), atol=0.015, rtol=0)


def test_all_codes_fixed_to_zero_falls_back_to_uniform():
    fixed = FixedProbabilities(torch.tensor([0, 1]), torch.tensor([0.0, 0.0]))
    shares = _shares(sample_categorical(_logits([0.9, 0.1], 20000), fixed=fixed, generator=_gen()), 2)
    assert shares[0].item() == pytest.approx(0.5, abs=0.015)


@pytest.mark.parametrize("n", [1, 2, 7, 1000])
def test_stratified_uniforms_put_one_uniform_in_each_stratum(n):
    u = stratified_uniforms(n, generator=_gen(n))
    assert u.shape == (n,) and u.dtype == torch.float32
    assert bool((u >= 0).all()) and bool((u < 1).all())
    assert torch.equal(torch.sort((u.double() * n).floor().long()).values, torch.arange(n))


def test_stratified_draws_of_no_rows():
    assert stratified_uniforms(0, generator=_gen()).shape == (0,)
    assert sample_categorical(torch.zeros(0, 3), generator=_gen()).shape == (0,)


@pytest.mark.parametrize("n_rows", [1, 5])
def test_stratified_draws_keep_each_rows_distribution(n_rows):
    # rows with different distributions, drawn together many times: each row position must follow its own
    # probabilities (a strata order that depended on the row would give row 0 the low uniforms, i.e. code 0)
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.05, 0.9, 0.05], [0.5, 0.0, 0.5]])
    probs = probs[:n_rows]
    logits = probs.clamp(min=1e-12).log()
    gen = _gen(7)
    draws = torch.stack([sample_categorical(logits, generator=gen) for _ in range(4000)])
    for row in range(n_rows):
        torch.testing.assert_close(_shares(draws[:, row], 3), probs[row].double(), atol=0.03, rtol=0)
    if n_rows == 5:  # a code of probability 0 is never drawn
        assert not bool((draws[:, 4] == 1).any())


@pytest.mark.parametrize("seed", range(5))
def test_stratified_draws_count_each_code_within_two_of_its_expectation(seed):
    # i.i.d. draws would miss n * p by about sqrt(n p (1 - p)) = 32 rows here
    probs = torch.tensor([0.47, 0.33, 0.15, 0.05])
    n = 4096
    codes = sample_categorical(_logits(probs.tolist(), n), generator=_gen(seed))
    counts = torch.bincount(codes, minlength=4).double()
    assert bool(((counts - n * probs.double()).abs() <= 2).all()), counts
    # the count of codes up to each one (what a KS distance compares) is within 1 of its expectation
    assert bool(((counts.cumsum(0) - n * probs.double().cumsum(0)).abs() <= 1 + 1e-3).all()), counts


def test_iid_draws_remain_available(monkeypatch):
    monkeypatch.setattr(_sampling, "STRATIFIED_DRAWS", False)
    n = 4096
    counts = torch.stack([torch.bincount(sample_categorical(_logits([0.5, 0.5], n), generator=_gen(seed)),
                                         minlength=2) for seed in range(8)])
    # binomial noise: some of 8 draws miss n / 2 by more than 2 (each does with probability about 0.95)
    assert bool(((counts[:, 0] - n / 2).abs() > 2).any())
    assert counts[:, 0].double().mean().item() == pytest.approx(n / 2, abs=4 * math.sqrt(n / 4 / 8))


def test_stratified_draws_are_deterministic_per_seed():
    logits = torch.randn(300, 6, generator=_gen(1))
    first = sample_categorical(logits, generator=_gen(3))
    assert torch.equal(first, sample_categorical(logits, generator=_gen(3)))
    assert not torch.equal(first, sample_categorical(logits, generator=_gen(4)))


# --- sorted-block draws (issue 15, seventh round) ------------------------------------------------------


def _distinct_keys(n: int, seed: int) -> torch.Tensor:
    # distinct at the 2**-15 resolution the rows are ranked at: the rank of each row is known
    return torch.randperm(n, generator=_gen(seed)).float() / n


@pytest.mark.parametrize("n", [17, 64, 100, 1000])
def test_sorted_block_uniforms_stratify_over_all_rows_and_within_blocks(n):
    keys = _distinct_keys(n, n)
    u = sorted_block_uniforms(keys, block=16, generator=_gen(n + 1))
    assert u.shape == (n,) and u.dtype == torch.float32
    assert bool((u >= 0).all()) and bool((u < 1).all())
    n_strata = -(-n // 16) * 16
    fine = (u.double() * n_strata).floor().long()
    assert len(fine.unique()) == n  # each stratum at most once; all of them when 16 divides n
    if n % 16 == 0:
        assert torch.equal(fine.sort().values, torch.arange(n))
    # every full block of 16 consecutive ranks has one uniform in each sixteenth of [0, 1)
    by_rank = u[keys.argsort()]
    for start in range(0, n - 15, 16):
        assert torch.equal((by_rank[start : start + 16].double() * 16).floor().long().sort().values,
                           torch.arange(16))


def test_sorted_block_uniforms_of_few_rows_are_the_stratified_ones():
    keys = _distinct_keys(16, 0)
    assert torch.equal(sorted_block_uniforms(keys, block=16, generator=_gen(2)),
                       stratified_uniforms(16, generator=_gen(2)))
    assert sorted_block_uniforms(torch.zeros(0), generator=_gen()).shape == (0,)
    assert sample_categorical(torch.zeros(0, 3), generator=_gen(), sort_rows=True).shape == (0,)


def test_sorted_block_uniforms_torch_path_matches_the_numpy_one(monkeypatch):
    # the torch path (accelerators) deals exactly as the numpy one (the CPU), tie order included
    keys = torch.randint(0, 20, (1000,), generator=_gen(8), dtype=torch.int16)
    on_cpu = sorted_block_uniforms(keys, generator=_gen(9))
    monkeypatch.setattr(_sampling, "_NUMPY_ON_CPU", False)
    assert torch.equal(sorted_block_uniforms(keys, generator=_gen(9)), on_cpu)


def test_sorted_block_uniforms_need_a_power_of_two_block():
    with pytest.raises(ValueError, match="block must be a power of 2; got 12"):
        sorted_block_uniforms(torch.rand(40), block=12)


def test_sorted_block_uniforms_are_uniform_for_every_row_whatever_its_rank():
    # 70 rows (a short last block) with fixed keys, dealt 3000 times: a deal that depended on the rank (the order
    # of the rows' distributions) would skew the quarters of [0, 1) a row's uniform falls in
    keys = _distinct_keys(70, 3)
    gen = _gen(4)
    u = torch.stack([sorted_block_uniforms(keys, generator=gen) for _ in range(3000)])
    quarters = torch.stack([((u * 4).floor() == q).double().mean(dim=0) for q in range(4)])
    assert float((quarters - 0.25).abs().max()) < 0.04  # 5 standard deviations of one share


def test_sorted_block_draws_keep_each_rows_distribution():
    # 70 rows of different distributions over 4 codes, drawn together 3000 times: each row follows its own
    probs = torch.softmax(2 * torch.randn(70, 4, generator=_gen(5)), dim=1)
    gen = _gen(6)
    draws = torch.stack([sample_categorical(probs.log(), generator=gen, sort_rows=True) for _ in range(3000)])
    shares = torch.stack([_shares(draws[:, row], 4) for row in range(70)])
    torch.testing.assert_close(shares, probs.double(), atol=0.045, rtol=0)  # 5 standard deviations


def _spread_rows(n: int = 4096, cardinality: int = 12) -> torch.Tensor:
    """Log-probabilities of ``n`` rows, each a discretised normal around its own random mean."""
    means = torch.rand(n, generator=_gen(7)) * (cardinality - 1)
    return torch.log_softmax(-0.5 * ((torch.arange(cardinality) - means[:, None]) / 1.5) ** 2, dim=1)


def test_sorted_block_draws_track_counts_of_rows_with_different_distributions():
    logits = _spread_rows()
    expected = logits.exp().double().sum(dim=0).cumsum(0)

    def largest_miss(sort_rows: bool, seed: int) -> float:
        codes = sample_categorical(logits, generator=_gen(seed), sort_rows=sort_rows)
        return float((torch.bincount(codes, minlength=12).double().cumsum(0) - expected).abs().max())

    sorted_misses = [largest_miss(True, seed) for seed in range(5)]
    plain_misses = [largest_miss(False, seed) for seed in range(5)]
    # the count of codes up to each code (what a KS distance compares): plain stratified uniforms miss it by
    # about 28 rows here (i.i.d. ones by about 35), sorted blocks by about 5; the bound leaves room for chance
    assert max(sorted_misses) <= 12, sorted_misses
    assert sum(sorted_misses) < 0.4 * sum(plain_misses), (sorted_misses, plain_misses)


def test_sorted_block_draws_are_deterministic_per_seed():
    logits = torch.randn(300, 6, generator=_gen(1))
    first = sample_categorical(logits, generator=_gen(3), sort_rows=True)
    assert torch.equal(first, sample_categorical(logits, generator=_gen(3), sort_rows=True))
    assert not torch.equal(first, sample_categorical(logits, generator=_gen(4), sort_rows=True))


def test_sorted_block_draws_can_be_switched_off(monkeypatch):
    logits = torch.randn(300, 6, generator=_gen(1))
    sorted_codes = sample_categorical(logits, generator=_gen(3), sort_rows=True)
    monkeypatch.setattr(_sampling, "SORTED_BLOCK_DRAWS", False)
    plain = sample_categorical(logits, generator=_gen(3), sort_rows=False)
    assert torch.equal(sample_categorical(logits, generator=_gen(3), sort_rows=True), plain)
    assert not torch.equal(sorted_codes, plain)


# --- model.sample controls --------------------------------------------------------------------------------


def test_learns_a_deterministic_copy(copy_model):
    out = copy_model.sample(1000, generator=_gen(2))
    assert (out[:, 0] == out[:, 1]).double().mean() > 0.95


@pytest.mark.parametrize("fixed_sub", [0, 1])
def test_fixed_codes_are_kept_and_condition_the_rest(copy_model, fixed_sub):
    seed = torch.randint(0, 8, (1000,), generator=_gen(3))
    out = copy_model.sample(1000, fixed_codes={fixed_sub: seed}, generator=_gen(4))
    assert torch.equal(out[:, fixed_sub], seed)
    assert (out[:, 1 - fixed_sub] == seed).double().mean() > 0.95


def test_fixed_probs_suppress_a_code_in_model_sampling(copy_model):
    out = copy_model.sample(2000, fixed_probs={0: {3: 0.0, 5: 0.5}}, generator=_gen(5))
    shares = _shares(out[:, 0], 8)
    assert shares[3] == 0
    assert shares[5].item() == pytest.approx(0.5, abs=0.03)
    assert (out[:, 0] == out[:, 1]).double().mean() > 0.95


def test_temperature_reduces_distinct_values_in_model_sampling(copy_model):
    cold = copy_model.sample(2000, temperature=0.05, generator=_gen(6))
    warm = copy_model.sample(2000, generator=_gen(6))
    # The first column's codes are nearly equally likely; a low temperature concentrates them.
    assert _shares(cold[:, 0], 8).max() > 2 * _shares(warm[:, 0], 8).max()
    assert (cold[:, 0] == cold[:, 1]).double().mean() > 0.99


def test_invalid_sample_arguments(copy_model):
    with pytest.raises(ValueError, match=r"fixed_codes of sub-column 1 must lie in 0..7; got values in 0..9"):
        copy_model.sample(10, fixed_codes={1: torch.arange(10)})
    with pytest.raises(ValueError, match=r"fixed_codes of sub-column 0 must hold 10 codes; got 3"):
        copy_model.sample(10, fixed_codes={0: torch.zeros(3, dtype=torch.long)})
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]; got 0.0"):
        copy_model.sample(10, top_p=0.0)
    with pytest.raises(ValueError, match=r"fixed_probs of sub-column 0 must add up to at most 1; got 1.2"):
        copy_model.sample(10, fixed_probs={0: {1: 0.6, 2: 0.6}})
    with pytest.raises(ValueError, match=r"fixed_probs of sub-column 0 has codes \[8\], but its codes are 0..7"):
        copy_model.sample(10, fixed_probs={0: {8: 0.1}})
    with pytest.raises(ValueError, match=r"column_order must be a permutation of the column indices 0..1"):
        copy_model.sample(10, column_order=[0, 0])
    with pytest.raises(ValueError, match="context_codes were given, but the model has no context columns"):
        copy_model.sample(10, context_codes=torch.zeros(10, 1, dtype=torch.long))


def test_non_flexible_model_rejects_orders_other_than_training_order(mixed_columns):
    model = FlatARGN.from_preset(mixed_columns, flexible=False)
    seed = torch.zeros(20, dtype=torch.long)
    # Seeding the first column is a prefix of the training order.
    assert torch.equal(model.sample(20, fixed_codes={0: seed}, generator=_gen())[:, 0], seed)
    with pytest.raises(ValueError, match=r"training order \[0, 1, 2\] \(seeded columns must be a prefix"):
        model.sample(20, fixed_codes={1: seed}, generator=_gen())
    with pytest.raises(ValueError, match=r"enable_flexible_generation=False"):
        model.sample(20, column_order=[1, 0, 2], generator=_gen())
    with pytest.raises(ValueError, match=r"enable_flexible_generation=False"):
        model(_random_codes(4, [3, 4, 10, 70]), order=[2, 1, 0])


def test_context_conditions_the_target():
    gen = _gen(11)
    ctx = torch.randint(0, 6, (800, 1), generator=gen)
    noise = torch.randint(0, 3, (800, 1), generator=gen)
    codes = torch.cat([ctx, noise], dim=1)
    model = FlatARGN.from_preset(
        [ColumnSpec("t", ("cat",), (6,)), ColumnSpec("n", ("cat",), (3,))],
        context=[ColumnSpec("k", ("cat",), (6,))],
        size="small",
        generator=gen,
    )
    train_model(
        model, codes[:700], codes[700:], trn_context=ctx[:700], val_context=ctx[700:],
        batch_size=32, max_epochs=25, learn_rate=0.01, generator=gen,
    )
    wanted = torch.randint(0, 6, (1000, 1), generator=gen)
    out = model.sample(1000, context_codes=wanted, generator=gen)
    assert (out[:, 0] == wanted[:, 0]).double().mean() > 0.95
    with pytest.raises(ValueError, match=r"context_codes are required: the model has 1 context sub-columns"):
        model.sample(5)


# --- training loop ----------------------------------------------------------------------------------------


def _tiny_model(seed: int = 0, **kwargs) -> FlatARGN:
    columns = [ColumnSpec("a", ("cat",), (5,)), ColumnSpec("b", ("hi", "lo"), (3, 4))]
    return FlatARGN.from_preset(columns, size="small", generator=_gen(seed), **kwargs)


def _tiny_data(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    codes = _random_codes(n, [5, 3, 4], seed=seed)
    codes[:, 1] = codes[:, 0] % 3
    return codes[: n * 4 // 5], codes[n * 4 // 5 :]


def test_same_seed_same_training():
    trn, val = _tiny_data()
    results = []
    for _ in range(2):
        model = _tiny_model()
        train_model(model, trn, val, batch_size=16, max_epochs=3, generator=_gen(42))
        results.append(model.state_dict())
    for key in results[0]:
        assert torch.equal(results[0][key], results[1][key]), key


def test_history_records_and_fractional_epochs():
    trn, val = _tiny_data()
    result = train_model(_tiny_model(), trn, val, batch_size=16, max_epochs=2.5, generator=_gen())
    steps_per_epoch = math.ceil(len(trn) / 16)
    # 2.5 epochs of 15 steps: 38 steps, the last epoch cut after 8 of its steps.
    assert [r["steps"] for r in result.history] == [15, 30, 38] and steps_per_epoch == 15
    assert [r["epoch"] for r in result.history] == [1.0, 2.0, 38 / 15]
    assert result.history[0]["samples"] == len(trn)
    assert result.stop_reason == "max_epochs"
    assert set(result.history[0]) == {
        "epoch", "steps", "samples", "trn_loss", "val_loss", "learn_rate", "total_time", "is_checkpoint"
    }
    assert all(math.isfinite(r["val_loss"]) for r in result.history)
    best = min(range(3), key=lambda i: result.history[i]["val_loss"])
    assert result.history[best]["is_checkpoint"]


def test_time_budget_stops_training():
    trn, val = _tiny_data(3000)
    result = train_model(
        _tiny_model(), trn, val, batch_size=8, max_epochs=1000, max_training_time_s=0.3, generator=_gen()
    )
    assert result.stop_reason == "max_training_time"
    # The budget plus one step (a generous bound: on a loaded machine a tiny step can take a second; ignoring the
    # budget would run 1000 epochs for minutes).
    assert 0.3 <= result.history[-1]["total_time"] < 0.3 + 5
    # Cut short inside the first epoch: the current weights are kept and the epoch is not validated.
    assert math.isnan(result.history[-1]["val_loss"])
    # the current raw weights, not the floor phase's weight average (which only the floor validates)
    assert result.state["weight_average"] is not None
    assert all(torch.equal(result.best_state_dict[k], v) for k, v in result.state["model"].items())


def test_early_stopping_on_unlearnable_data():
    # Independent uniform codes: the model starts at the marginals and can only overfit.
    columns = [ColumnSpec("a", ("cat",), (30,)), ColumnSpec("b", ("cat",), (30,))]
    model = FlatARGN.from_preset(columns, size="medium", generator=_gen())
    trn, val = _random_codes(150, [30, 30], seed=1), _random_codes(150, [30, 30], seed=2)
    result = train_model(model, trn, val, batch_size=8, max_epochs=200, learn_rate=0.01, generator=_gen())
    assert result.stop_reason == "early_stopping"
    assert len(result.history) < 200
    assert [r["is_checkpoint"] for r in result.history[-5:]] == [False] * 5
    best = min(r["val_loss"] for r in result.history)
    assert all(r["val_loss"] > best for r in result.history[-5:])
    # The model is left holding the best weights, not the last ones.
    weights = model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in result.best_state_dict.items())
    assert not all(torch.equal(weights[k], v) for k, v in result.state["model"].items())


def test_progress_callback_can_stop_training():
    trn, val = _tiny_data()
    seen = []
    result = train_model(
        _tiny_model(), trn, val, batch_size=16, max_epochs=50, generator=_gen(),
        on_progress=lambda record: seen.append(record) or len(seen) >= 2,
    )
    assert result.stop_reason == "callback"
    assert len(result.history) == 2 and len(seen) == 2


def test_resume_continues_counters_and_state():
    trn, val = _tiny_data()
    checkpoints = []
    first_model = _tiny_model()
    first = train_model(
        first_model, trn, val, batch_size=16, max_epochs=2, generator=_gen(), on_checkpoint=checkpoints.append
    )
    assert len(checkpoints) == 2
    buffer = io.BytesIO()
    torch.save(checkpoints[-1], buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    model = FlatARGN.from_config(first_model.config)
    resumed = train_model(model, trn, val, max_epochs=4, generator=_gen(1), resume_state=state)
    steps_per_epoch = math.ceil(len(trn) / 16)
    assert [r["steps"] for r in resumed.history] == [steps_per_epoch * i for i in (1, 2, 3, 4)]
    assert resumed.history[:2] == first.history
    assert resumed.history[2]["samples"] == 3 * len(trn)
    assert resumed.history[2]["total_time"] > first.history[-1]["total_time"]
    assert resumed.state["batch_size"] == 16


def test_train_model_validates_inputs():
    trn, val = _tiny_data()
    bad = trn.clone()
    bad[0, 2] = 4
    with pytest.raises(ValueError, match=r"trn_codes sub-column 2 must hold codes in 0..3; got values in 0..4"):
        train_model(_tiny_model(), bad, val, generator=_gen())
    with pytest.raises(ValueError, match=r"max_epochs must be a number in the range \(0, inf\); got -1"):
        train_model(_tiny_model(), trn, val, max_epochs=-1, generator=_gen())
    with pytest.raises(ValueError, match=r"trn_context was given, but the model has no context columns"):
        train_model(_tiny_model(), trn, val, trn_context=trn, generator=_gen())


def test_training_without_validation_rows_uses_training_loss():
    trn, _ = _tiny_data()
    result = train_model(_tiny_model(), trn, None, batch_size=16, max_epochs=2, generator=_gen())
    assert [r["val_loss"] for r in result.history] == [r["trn_loss"] for r in result.history]


# --- the floor phase of the flat model's schedule (early stopping above the learning-rate floor) ---------------


def _unlearnable_run(floor_epochs, seed: int = 0, **kwargs):
    # Independent uniform codes at a high learning rate: validation stops improving at once.
    columns = [ColumnSpec("a", ("cat",), (30,)), ColumnSpec("b", ("cat",), (30,))]
    model = FlatARGN.from_preset(columns, size="small", generator=_gen(seed))
    trn, val = _random_codes(150, [30, 30], seed=1), _random_codes(150, [30, 30], seed=2)
    result = train_model(model, trn, val, batch_size=8, max_epochs=200, learn_rate=0.01, generator=_gen(seed),
                         floor_epochs=floor_epochs, **kwargs)
    return model, result


def _floor_epoch_indices(result, learn_rate: float) -> list[int]:
    from synthgen.models.tabular._loop import MIN_LR_RATIO

    floor = MIN_LR_RATIO * learn_rate
    return [i for i, r in enumerate(result.history) if r["learn_rate"] <= floor * (1 + 1e-6)]


def test_a_run_that_stops_before_the_floor_is_unchanged_by_the_floor_phase():
    # 5 validations without improvement halve the rate once (after 3): early stopping ends the run above the
    # floor, exactly as without a floor phase (the small-table case, planes)
    model, result = _unlearnable_run(16)
    plain_model, plain = _unlearnable_run(None)
    assert result.stop_reason == plain.stop_reason == "early_stopping"
    assert not _floor_epoch_indices(result, 0.01)
    assert len(result.history) == len(plain.history)
    untimed = [{**r, "total_time": 0.0} for r in result.history]
    assert untimed == [{**r, "total_time": 0.0} for r in plain.history]
    # the weight average was kept along but never validated nor returned: the model holds the best raw weights
    assert result.state["weight_average"] is not None and plain.state["weight_average"] is None
    for key, value in plain_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def _floor_run(monkeypatch, floor_epochs, seed: int = 0, **kwargs):
    # a patience long enough for the plateau schedule to reach its floor (4 halvings) before early stopping
    from synthgen.models.tabular import _loop

    monkeypatch.setattr(_loop, "EARLY_STOPPING_PATIENCE", 40)
    return _unlearnable_run(floor_epochs, seed, **kwargs)


def test_at_the_floor_the_run_trains_the_floor_epochs_and_keeps_averaged_weights(monkeypatch):
    from synthgen.models.tabular._loop import FLAT_WEIGHT_AVERAGE_DECAY, PLATEAU_TOLERANCE

    floor_epochs = 6
    model, result = _floor_run(monkeypatch, floor_epochs)
    _, plain = _floor_run(monkeypatch, None)
    at_floor = _floor_epoch_indices(result, 0.01)
    entry = at_floor[0]  # the epoch whose validation lowered the rate to the floor
    # the epoch that lowered the rate to the floor, then exactly floor_epochs epochs trained there
    assert at_floor == list(range(entry, len(result.history))) and len(at_floor) == floor_epochs + 1
    assert result.stop_reason == "early_stopping"
    # the same training up to the floor, with or without the floor phase (plain stops later, on its patience)
    assert [r["val_loss"] for r in result.history[: entry + 1]] == [r["val_loss"] for r in plain.history[: entry + 1]]
    # the raw iterates train the same at the floor too; what is validated there is the average
    assert result.history[entry + 1]["trn_loss"] == plain.history[entry + 1]["trn_loss"]
    assert result.history[entry + 1]["val_loss"] != plain.history[entry + 1]["val_loss"]
    # the average runs along from the first step; it is validated (and kept) only at the floor
    average = result.state["weight_average"]
    assert average["decay"] == FLAT_WEIGHT_AVERAGE_DECAY
    assert average["updates"] == result.history[-1]["steps"]
    # above the floor only improvements are kept; at the floor every average within the tolerance of the best
    losses = [r["val_loss"] for r in result.history]
    for i, record in enumerate(result.history):
        best = min(losses[: i + 1])
        within = i > entry and losses[i] <= best + PLATEAU_TOLERANCE * abs(best)
        assert record["is_checkpoint"] == (losses[i] < min(losses[:i], default=math.inf) or within), i
    weights = model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in result.best_state_dict.items())
    if result.history[-1]["is_checkpoint"]:  # the last average kept: the model holds the average, not the iterate
        for name, value in average["params"].items():
            assert torch.equal(weights[name], value), name
        assert not all(torch.equal(result.state["model"][k], v) for k, v in average["params"].items())


def test_the_floor_phase_is_deterministic_with_a_seed(monkeypatch):
    runs = [_floor_run(monkeypatch, 4, seed=3)[1] for _ in range(2)]
    assert _floor_epoch_indices(runs[0], 0.01)
    for key, value in runs[0].best_state_dict.items():
        assert torch.equal(value, runs[1].best_state_dict[key]), key
    assert [r["val_loss"] for r in runs[0].history] == [r["val_loss"] for r in runs[1].history]


def test_a_run_resumed_in_the_floor_phase_keeps_its_weight_average(monkeypatch):
    checkpoints = []
    _, result = _floor_run(monkeypatch, 4, on_checkpoint=checkpoints.append)
    entry = _floor_epoch_indices(result, 0.01)[0]
    state = checkpoints[entry + 2]  # two epochs into the floor phase
    steps_per_epoch = result.history[0]["steps"]
    assert state["weight_average"]["updates"] == (entry + 3) * steps_per_epoch
    columns = [ColumnSpec("a", ("cat",), (30,)), ColumnSpec("b", ("cat",), (30,))]
    model = FlatARGN.from_preset(columns, size="small", generator=_gen())
    trn, val = _random_codes(150, [30, 30], seed=1), _random_codes(150, [30, 30], seed=2)
    resumed = train_model(model, trn, val, max_epochs=200, generator=_gen(), resume_state=state, floor_epochs=4)
    # two more floor epochs, then the stop; the average carried on from the checkpoint's
    assert len(resumed.history) == len(result.history) and resumed.stop_reason == "early_stopping"
    assert resumed.state["weight_average"]["updates"] == len(result.history) * steps_per_epoch


def test_the_flat_schedule_has_a_floor_phase_by_default_and_the_context_model_none():
    import inspect

    from synthgen.models.tabular._loop import FLOOR_EPOCHS
    from synthgen.stages._context_model import FLAT_CONTEXT_FLOOR_EPOCHS

    assert inspect.signature(train_model).parameters["floor_epochs"].default == FLOOR_EPOCHS == 20
    assert FLAT_CONTEXT_FLOOR_EPOCHS is None  # the two-table context model stops early as before
