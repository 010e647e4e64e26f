"""Exact likelihoods and conditionals of FlatARGN (synthgen.models.tabular._inference)."""

import itertools

import pytest
import torch

from synthgen.models.tabular import ColumnSpec, FlatARGN
from synthgen.models.tabular._inference import (
    conditional_logits,
    given_order,
    log_likelihood,
    sample_column,
    sub_column_log_probs,
)

COLUMNS = [ColumnSpec("a", ("cat",), (3,)), ColumnSpec("b", ("x", "y"), (4, 5)), ColumnSpec("c", ("cat",), (6,))]


def _trained(flexible: bool = True) -> FlatARGN:
    """A small model fitted for a few steps to a dependent toy distribution (so conditionals differ)."""
    gen = torch.Generator().manual_seed(0)
    model = FlatARGN.from_preset(COLUMNS, size="small", flexible=flexible, generator=gen)
    a = torch.randint(0, 3, (512,), generator=gen)
    data = torch.stack([a, (a + torch.randint(0, 2, (512,), generator=gen)) % 4,
                        torch.randint(0, 5, (512,), generator=gen), (2 * a) % 6], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimizer.zero_grad()
        model(data, order=model.draw_order(gen)).mean().backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return _trained()


@pytest.fixture(scope="module")
def every_row():
    return torch.tensor(list(itertools.product(range(3), range(4), range(5), range(6))))


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 0, 1], [1, 2, 0]])
def test_sub_column_log_probs_sum_to_the_training_loss(model, every_row, order):
    per_sub = sub_column_log_probs(model, every_row, order, batch_size=97)
    assert per_sub.shape == every_row.shape
    torch.testing.assert_close(per_sub.sum(1), -model(every_row, order=order))


@pytest.mark.parametrize("given, sub", [([], 0), ([2], 0), ([0, 2], 1), ([0, 2], 2), ([1], 3)])
def test_conditional_logits_are_the_head_under_the_given_first_order(model, every_row, given, sub):
    column = model.spec.sub_column_owner[sub]
    order = given_order(model, given, [column])
    expected = sub_column_log_probs(model, every_row, order)[:, sub]
    logits = conditional_logits(model, every_row, given, sub, batch_size=50)
    torch.testing.assert_close(torch.log_softmax(logits, 1).gather(1, every_row[:, sub:sub + 1]).squeeze(1), expected)


@pytest.mark.parametrize("columns", [[0, 1, 2], [1], [2, 0]])
def test_log_likelihood_is_normalised_with_the_other_columns_marginalised(model, every_row, columns):
    ll = log_likelihood(model, every_row, columns, n_orders=4, generator=torch.Generator().manual_seed(1))
    # every combination of the scored columns appears (the product of the other cardinalities) times
    repeats = len(every_row) // torch.tensor(
        [model.spec.cardinalities[s] for s, j in enumerate(model.spec.sub_column_owner) if j in columns]).prod()
    assert float(ll.exp().sum() / repeats) == pytest.approx(1.0, abs=1e-6)


def test_log_likelihood_ignores_the_codes_of_unscored_columns(model, every_row):
    other = every_row.clone()
    other[:, 3] = (other[:, 3] + 1) % 6
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(log_likelihood(model, every_row, [0, 1], generator=gen()),
                               log_likelihood(model, other, [0, 1], generator=gen()))


def test_conditional_probabilities_match_the_frequencies_of_seeded_samples(model):
    """The statistical check: given column 0, draws of column 2 in the order [0, 2, 1] follow the conditional."""
    n = 6000
    seeds = torch.full((n,), 1)
    draws = model.sample(n, fixed_codes={0: seeds}, column_order=[0, 2, 1],
                         generator=torch.Generator().manual_seed(5))
    codes = torch.zeros(1, model.spec.n_sub_columns, dtype=torch.long)
    codes[0, 0] = 1
    probs = torch.softmax(conditional_logits(model, codes, [0], 3), 1)[0].double()
    freq = torch.bincount(draws[:, 3], minlength=6).double() / n
    tolerance = 4.5 * (probs * (1 - probs) / n).sqrt() + 1e-3
    assert bool(((freq - probs).abs() <= tolerance).all()), (freq, probs)


def test_sample_column_draws_only_that_column_and_skips_suppressed_codes(model, every_row):
    drawn = sample_column(model, every_row, [0], 1, suppressed={1: [0, 1]},
                          generator=torch.Generator().manual_seed(0))
    keep = [0, 3]
    torch.testing.assert_close(drawn[:, keep], every_row[:, keep])
    assert int(drawn[:, 1].min()) >= 2


def test_fixed_order_model_only_answers_its_training_order():
    model = _trained(flexible=False)
    codes = torch.zeros(4, model.spec.n_sub_columns, dtype=torch.long)
    assert conditional_logits(model, codes, [0, 1], 3).shape == (4, 6)
    with pytest.raises(ValueError, match="enable_flexible_generation=False"):
        conditional_logits(model, codes, [1], 3)
    with pytest.raises(ValueError, match="enable_flexible_generation=False"):
        log_likelihood(model, codes, [2])
    assert log_likelihood(model, codes, [0, 1]).shape == (4,)


def test_log_likelihood_rejects_bad_arguments(model, every_row):
    with pytest.raises(ValueError, match="at least one"):
        log_likelihood(model, every_row, [])
    with pytest.raises(ValueError, match="n_orders"):
        log_likelihood(model, every_row, [0], n_orders=0)
    with pytest.raises(ValueError, match="codes must have shape"):
        log_likelihood(model, every_row[:, :2], [0])


def test_sample_column_with_given_uniforms_follows_the_conditional(model):
    n = 6000
    codes = torch.zeros(n, model.spec.n_sub_columns, dtype=torch.long)
    codes[:, 0] = 2
    uniforms = torch.rand(n, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    drawn = sample_column(model, codes, [0], 2, uniforms=uniforms)[:, 3]
    probs = torch.softmax(conditional_logits(model, codes[:1], [0], 3), 1)[0].double()
    freq = torch.bincount(drawn, minlength=6).double() / n
    assert bool(((freq - probs).abs() <= 4.5 * (probs * (1 - probs) / n).sqrt() + 1e-3).all()), (freq, probs)
    # the same uniforms give the same draws, whatever the other rows
    torch.testing.assert_close(sample_column(model, codes[:10], [0], 2, uniforms=uniforms[:10])[:, 3], drawn[:10])
