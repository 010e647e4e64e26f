"""synthgen.evaluation.diagnose: which columns and column groups lose most against the holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthgen.evaluation import diagnose, evaluate


def _frame(n: int, seed: int, *, break_b: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.choice(["x", "y", "z"], n)
    b = np.where(a == "x", "p", rng.choice(["p", "q"], n))
    if break_b:  # right marginal of b, but no longer tied to a
        b = rng.permutation(b)
    return pd.DataFrame({"a": a, "b": b, "c": rng.normal(size=n)})


@pytest.fixture(scope="module")
def result():
    original, holdout = _frame(2000, 0), _frame(1000, 1)
    return evaluate(original, _frame(2000, 2, break_b=True), holdout, privacy=False, discriminator=False)


def test_losses_add_up_to_the_gap_and_rank_the_broken_pair_first(result):
    groups = diagnose(result, top=None)
    assert set(groups["part"]) == {"univariate", "bivariate", "trivariate"}
    assert groups["loss"].sum() == pytest.approx(result.reference["overall"] - result.overall)
    assert groups.iloc[0]["columns"] in {("a", "b"), ("b", "a"), ("a", "b", "c")}
    np.testing.assert_allclose(groups["gap"], groups["reference"] - groups["accuracy"])
    assert (groups["loss"].diff().dropna() <= 0).all()


def test_by_column_splits_each_groups_loss_among_its_columns(result):
    columns = diagnose(result, by="column", top=None)
    assert list(columns.columns[:2]) == ["column", "loss"]
    assert columns["loss"].sum() == pytest.approx(diagnose(result, top=None)["loss"].sum())
    assert set(columns["column"].iloc[:2]) == {"a", "b"}
    assert len(diagnose(result, by="column", top=1)) == 1


def test_errors_name_the_parameter():
    original = _frame(200, 0)
    no_holdout = evaluate(original, _frame(200, 2), privacy=False, discriminator=False)
    with pytest.raises(ValueError, match="needs an evaluation with a holdout"):
        diagnose(no_holdout)
    with_holdout = evaluate(original, _frame(200, 2), _frame(200, 1), privacy=False, discriminator=False)
    with pytest.raises(ValueError, match="The 'by' parameter of diagnose"):
        diagnose(with_holdout, by="pair")
    with pytest.raises(ValueError, match="The 'top' parameter of diagnose"):
        diagnose(with_holdout, top=0)
