"""Fairness figures: statistical parity difference, disparate impact, and evaluate(fairness=...)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from synthgen import FairnessConfig
from synthgen.evaluation import disparate_impact, evaluate, parity_shares, statistical_parity_difference


def people(n_f_hi, n_f, n_m_hi, n_m, n_x=0):
    sex = ["F"] * n_f + ["M"] * n_m + [None] * n_x
    income = ["hi"] * n_f_hi + ["lo"] * (n_f - n_f_hi) + ["hi"] * n_m_hi + ["lo"] * (n_m - n_m_hi) + ["lo"] * n_x
    return pd.DataFrame({"sex": sex, "income": income, "race": (["a", "b"] * (len(sex) // 2 + 1))[: len(sex)]})


def test_parity_shares_per_group_with_null_as_a_group():
    shares = parity_shares(people(10, 40, 30, 60, n_x=5), "income", "sex")
    assert list(shares.index) == ["<NULL>", "F", "M"]
    assert shares.loc["F", "n"] == 40 and shares.loc["F", "hi"] == pytest.approx(0.25)
    assert shares.loc["M", "hi"] == pytest.approx(0.5)
    assert shares.loc["<NULL>", "lo"] == 1.0
    both = parity_shares(people(10, 40, 30, 60), "income", ["sex", "race"])
    assert both.index.names == ["sex", "race"] and both["n"].sum() == 100


def test_parity_difference_and_disparate_impact():
    frame = people(10, 40, 30, 60)  # P(hi | F) = 0.25, P(hi | M) = 0.5
    assert statistical_parity_difference(frame, "income", "sex") == pytest.approx(0.25)
    assert statistical_parity_difference(frame, "income", "sex", positive="hi") == pytest.approx(0.25)
    assert disparate_impact(frame, "income", "sex", positive="hi") == pytest.approx(0.5)
    # without a positive class: the worst class (P(lo | .) = 0.75 vs 0.5 gives 0.667 > 0.5)
    assert disparate_impact(frame, "income", "sex") == pytest.approx(0.5)
    fair = people(20, 40, 30, 60)
    assert statistical_parity_difference(fair, "income", "sex") == pytest.approx(0.0)
    assert disparate_impact(fair, "income", "sex") == pytest.approx(1.0)


def test_small_groups_are_left_out():
    frame = people(10, 40, 30, 60, n_x=5)  # the NULL group (5 rows, no "hi") is small
    assert statistical_parity_difference(frame, "income", "sex", min_group_size=30) == pytest.approx(0.25)
    assert statistical_parity_difference(frame, "income", "sex", min_group_size=1) == pytest.approx(0.5)
    assert math.isnan(statistical_parity_difference(frame, "income", "sex", min_group_size=50))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"target_column": "salary", "sensitive_columns": "sex"}, ValueError, r"lacks the fairness columns \['salary'\]"),
        ({"target_column": "income", "sensitive_columns": []}, ValueError, "at least one column"),
        ({"target_column": "income", "sensitive_columns": ["income"]}, ValueError, "must not be one of"),
        ({"target_column": "income", "sensitive_columns": "sex", "min_group_size": 0}, ValueError, "min_group_size"),
        ({"target_column": "income", "sensitive_columns": "sex", "positive": "rich"}, ValueError, "'rich' does not"),
    ],
)
def test_bad_input_is_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        statistical_parity_difference(people(10, 40, 30, 60), **kwargs)


def test_evaluate_adds_fairness_figures_per_frame():
    original, holdout = people(10, 40, 30, 60), people(12, 40, 27, 60)
    synthetic = people(20, 40, 30, 60)
    fairness = FairnessConfig(target_column="income", sensitive_columns=["sex"])
    result = evaluate(original, synthetic, holdout, privacy=False, discriminator=False, fairness=fairness)
    assert result.statistical_parity_difference == pytest.approx(0.0)
    assert result.disparate_impact == pytest.approx(1.0)
    assert result.reference["statistical_parity_difference"] == pytest.approx(0.45 - 0.3)
    assert list(result.fairness.index) == ["original", "synthetic", "holdout"]
    assert result.fairness.loc["original", "statistical_parity_difference"] == pytest.approx(0.25)
    assert result.fairness_shares.loc[("synthetic", "F"), "hi"] == pytest.approx(0.5)
    assert result.fairness_columns == {"target_column": "income", "sensitive_columns": ["sex"]}
    assert result.to_dict()["reference_disparate_impact"] == pytest.approx(0.3 / 0.45)
    assert "statistical_parity_difference" in repr(result)


def test_evaluate_without_fairness_has_no_fairness_figures():
    frame = people(10, 40, 30, 60)
    result = evaluate(frame, frame, privacy=False, discriminator=False)
    assert result.statistical_parity_difference is None and result.fairness is None
    assert "disparate_impact" not in repr(result)


def test_evaluate_names_missing_fairness_columns():
    frame = people(10, 40, 30, 60)
    with pytest.raises(ValueError, match=r"do not have: \['gender'\]"):
        evaluate(frame, frame, fairness={"target_column": "income", "sensitive_columns": ["gender"]})
