"""Tests of synthgen.evaluation on constructed data with known answers, adult, bad input and the scorer."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV
from sklearn.utils import check_random_state

from synthgen.evaluation import EvaluationResult, _distances, evaluate, fidelity_scorer
from synthgen.evaluation._accuracy import accuracy, joint_distribution
from synthgen.evaluation._discretize import NULL_LABEL, OTHER_LABEL, fit_bins

FAST = {"privacy": False, "discriminator": False}


def correlated(n: int, seed: int) -> pd.DataFrame:
    """Flat data with strong dependencies between mixed-type columns, and some NULLs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = x + 0.3 * rng.normal(size=n)
    group = np.where(x > 0.5, "high", np.where(x < -0.5, "low", "mid")).astype(object)
    group[rng.random(n) < 0.05] = None
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.round((x + 4) * 100), unit="D")
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "count": np.round(np.exp(x)).astype("int64"),
            "group": pd.Series(group, dtype="str"),
            "flag": x + rng.normal(scale=0.5, size=n) > 0,
            "start": start,
        }
    )


def shuffle_columns(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Permute every column independently: marginals are kept exactly, dependencies destroyed."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: frame[c].to_numpy()[rng.permutation(len(frame))] for c in frame}).astype(
        frame.dtypes
    )


def sequences(n_sequences: int, length: int | np.ndarray, seed: int) -> pd.DataFrame:
    """Sequences whose values drift slowly from step to step (strong step-to-step coherence)."""
    rng = np.random.default_rng(seed)
    lengths = np.broadcast_to(length, n_sequences)
    key = np.repeat([f"k{seed}_{i}" for i in range(n_sequences)], lengths)
    level = np.repeat(rng.normal(size=n_sequences), lengths)
    step = np.concatenate([np.arange(n) for n in lengths])
    value = level + 0.05 * step + 0.05 * rng.normal(size=len(key))
    state = np.where(value > level + 0.05 * step, "up", "down")
    return pd.DataFrame({"key": key, "value": value, "step": step, "state": state, "level": level})


# --- the definitions -------------------------------------------------------------------------------------


def test_accuracy_is_one_minus_total_variation_distance():
    original = pd.DataFrame({"a": ["x", "x", "y", "y"]})
    synthetic = pd.DataFrame({"a": ["x", "x", "x", "y"]})
    result = evaluate(original, synthetic, **FAST)
    # p = (0.5, 0.5), q = (0.75, 0.25): TVD = 0.5 * (0.25 + 0.25) = 0.25
    assert result.univariate == pytest.approx(0.75)
    assert result.overall == pytest.approx(0.75)
    assert result.bivariate is None and result.trivariate is None


def test_joint_distribution_counts_bucket_combinations_with_weights():
    p = joint_distribution([np.array([0, 1, 1]), np.array([1, 0, 0])], [2, 2], np.array([2.0, 1.0, 1.0]))
    np.testing.assert_allclose(p, [0.0, 0.5, 0.5, 0.0])
    assert accuracy(p, np.array([0.0, 0.0, 1.0, 0.0])) == pytest.approx(0.5)
    assert accuracy(p, np.zeros(4)) == 0.0


def test_numeric_bins_are_ten_quantile_buckets_fitted_on_the_original():
    bins = fit_bins(np.arange(1.0, 101.0), "numeric")
    codes = bins.codes(np.arange(1.0, 101.0))
    assert bins.n_bins == 11  # 10 value buckets + NULL
    # mostlyai-qa's boundaries: the values at the integer parts of linspace(0, n - 1, 11)
    np.testing.assert_array_equal(bins.bounds, [1, 10, 20, 30, 40, 50, 60, 70, 80, 90])
    np.testing.assert_array_equal(np.bincount(codes, minlength=11), [9] + [10] * 8 + [11, 0])
    # values outside the original range fall into the outer buckets, NULL into its own
    np.testing.assert_array_equal(bins.codes(np.array([-5.0, 1000.0, np.nan])), [0, 9, 10])


def test_numeric_bins_handle_ties_and_few_distinct_values():
    zero_inflated = np.r_[np.zeros(900), np.arange(1.0, 101.0)]
    bins = fit_bins(zero_inflated, "numeric")
    assert bins.n_bins - 1 >= 10  # still about ten buckets although 90 % of the values are 0
    few = fit_bins(np.array([3.0, 1.0, 2.0, 2.0, np.nan]), "numeric")
    assert few.labels == ["≥ 1", "≥ 2", "≥ 3", NULL_LABEL]


def test_categorical_bins_keep_ten_most_frequent_and_an_other_bucket():
    values = np.array([f"c{i:02d}" for i in range(12) for _ in range(12 - i)] + [None], dtype=object)
    bins = fit_bins(values, "categorical")
    assert bins.labels == [f"c{i:02d}" for i in range(10)] + [OTHER_LABEL, NULL_LABEL]
    codes = bins.codes(np.array(["c00", "c11", "unseen", None], dtype=object))
    np.testing.assert_array_equal(codes, [0, 10, 10, 11])


# --- constructed data with known answers -----------------------------------------------------------------


def test_identical_data_scores_full_accuracy():
    original = correlated(1500, seed=0)
    result = evaluate(original, original.copy(), random_state=0, discriminator=False)
    for part in ("univariate", "bivariate", "trivariate", "overall"):
        assert getattr(result, part) == pytest.approx(1.0), part
    assert (result.univariates["accuracy"] == 1.0).all()
    assert result.exact_match_share == 1.0
    assert result.dcr_training == 0.0


def test_same_distribution_gives_dcr_share_near_half_and_accuracy_near_reference():
    original, synthetic, holdout = (correlated(2000, seed=s) for s in (1, 2, 3))
    result = evaluate(original, synthetic, holdout, random_state=0)
    # 2000 records: the standard error of the share is about 1.1 %
    assert 0.45 < result.dcr_share < 0.55
    assert result.exact_match_share == 0.0
    assert result.overall == pytest.approx(result.reference["overall"], abs=0.02)
    assert result.overall > 0.9
    assert 0.4 < result.discriminator_auc < 0.6
    assert 0.4 < result.reference["discriminator_auc"] < 0.6


def test_small_holdout_compares_every_synthetic_record_with_equal_size_samples():
    original, synthetic, holdout = (correlated(n, seed=s) for n, s in ((2500, 100), (2500, 200), (500, 300)))
    result = evaluate(original, synthetic, holdout, random_state=0, discriminator=False)
    # all 2,500 synthetic records against the 500 holdout records and five training samples of 500
    assert len(result.distances["synthetic_training"]) == 2500
    assert len(result.distances["holdout_training"]) == 500
    assert 0.44 < result.dcr_share < 0.56  # the spread over seeds is about 1.5 %
    assert result.dcr_training == pytest.approx(result.dcr_holdout, rel=0.1)


def test_default_seed_gives_the_same_figures_in_every_call():
    # more column triples than max_trivariates and more rows than max_rows: every draw is a sample
    original, synthetic, holdout = (shuffle_columns(correlated(1200, seed=s), seed=s) for s in (20, 21, 22))
    kwargs = {"max_rows": 500, "max_trivariates": 2}
    first, second = (evaluate(original, synthetic, holdout, **kwargs) for _ in range(2))
    for figure in ("overall", "trivariate", "dcr_share", "discriminator_auc"):
        assert getattr(first, figure) == getattr(second, figure), figure
    other_seeds = [evaluate(original, synthetic, holdout, random_state=seed, **kwargs) for seed in (1, 2, 3)]
    assert len({result.dcr_share for result in [first, *other_seeds]}) > 1  # the seed is what fixes them


def test_shuffled_independent_columns_keep_univariates_but_lose_bivariates():
    original = correlated(2000, seed=4)
    result = evaluate(original, shuffle_columns(original, seed=5), random_state=0, privacy=False)
    assert result.univariate == pytest.approx(1.0)
    assert result.bivariate < 0.85
    assert result.trivariate < result.bivariate
    xy = result.bivariates.set_index(["column_1", "column_2"]).loc[("x", "y"), "accuracy"]
    assert xy < 0.6  # the strongest dependency is lost the most
    assert result.discriminator_auc > 0.8


def test_copy_of_training_rows_has_dcr_share_and_exact_copies_of_one():
    original, holdout = correlated(1000, seed=6), correlated(1000, seed=7)
    result = evaluate(original, original.sample(frac=1, random_state=0), holdout, random_state=0)
    assert result.dcr_share == 1.0
    assert result.exact_match_share == 1.0
    assert result.exact_match_share_holdout == 0.0
    assert result.reference["exact_match_share"] == 0.0
    assert np.all(result.distances["synthetic_training"] == 0.0)


def test_ties_between_training_and_holdout_count_half():
    rng = np.random.default_rng(8)
    categories = np.array(["a", "b", "c"])
    original, synthetic, holdout = (
        pd.DataFrame({"u": categories[rng.integers(0, 3, 600)], "v": categories[rng.integers(0, 3, 600)]})
        for _ in range(3)
    )
    result = evaluate(original, synthetic, holdout, random_state=0, discriminator=False)
    # all 9 combinations occur in both training and holdout: every synthetic row is at distance 0 from both
    assert result.dcr_share == 0.5
    assert result.exact_match_share == 1.0


def test_nearest_two_matches_brute_force_across_blocks(monkeypatch):
    rng = np.random.default_rng(9)
    query, reference = rng.random((70, 5), dtype=np.float32), rng.random((40, 5), dtype=np.float32)
    monkeypatch.setattr(_distances, "_BLOCK_SCORES", 40 * 8)  # blocks of 8 query rows
    nearest, second = _distances.nearest_two(query, reference)
    full = np.sqrt(((query[:, None, :].astype(float) - reference[None, :, :]) ** 2).sum(-1))
    full.sort(axis=1)
    np.testing.assert_allclose(nearest, full[:, 0], rtol=1e-12)
    np.testing.assert_allclose(second, full[:, 1], rtol=1e-12)


# --- adult: agreement with the published definitions -----------------------------------------------------


def test_adult_independent_resampling_keeps_univariates_above_99_percent(adult_full):
    rng = np.random.default_rng(0)
    order = rng.permutation(len(adult_full))
    training = adult_full.iloc[order[: int(0.8 * len(adult_full))]].reset_index(drop=True)
    synthetic = pd.DataFrame(
        {c: training[c].to_numpy()[rng.integers(0, len(training), len(training))] for c in training}
    )
    result = evaluate(training, synthetic, random_state=0, **FAST)
    assert result.univariate >= 0.99
    assert result.bivariate < result.univariate - 0.05
    assert len(result.bivariates) == 15 * 14 // 2
    assert len(result.trivariates) == 100  # 455 triples, 100 sampled


# --- sequences -------------------------------------------------------------------------------------------


def test_identical_sequences_score_full_accuracy_and_coherence():
    original = sequences(60, np.arange(1, 61) % 7 + 2, seed=0)
    result = evaluate(original, original.copy(), context_key="key", random_state=0, discriminator=False)
    for part in ("univariate", "bivariate", "trivariate", "coherence", "sequence_length", "overall"):
        assert getattr(result, part) == pytest.approx(1.0), part
    assert list(result.coherences["column"]) == ["value", "step", "state", "level"]
    assert "key" not in set(result.univariates["column"])
    assert result.exact_match_share == 1.0
    assert result.n_records == {"original": 60, "synthetic": 60}


def test_rows_shuffled_across_sequences_lose_coherence_not_univariates():
    original = sequences(80, 10, seed=1)
    synthetic = original.copy()
    synthetic[["value", "step", "state", "level"]] = shuffle_columns(
        original[["value", "step", "state", "level"]].sample(frac=1, random_state=0), seed=2
    ).to_numpy()
    result = evaluate(original, synthetic, context_key="key", random_state=0, privacy=False)
    assert result.univariate == pytest.approx(1.0)  # equal lengths: equal row weights
    assert result.sequence_length == 1.0
    assert result.coherence < 0.7
    assert result.bivariate < 0.9


def test_sequence_weighting_counts_every_sequence_once():
    original = pd.DataFrame({"key": ["long"] * 9 + ["short"], "v": ["a"] * 9 + ["b"]})
    result = evaluate(original, original, context_key="key", **FAST)
    np.testing.assert_allclose(result.distributions["v"].loc[["a", "b"], "original"], [0.5, 0.5])
    assert result.coherence == 1.0


def test_sequence_lengths_are_compared():
    original = sequences(100, np.tile([5, 10], 50), seed=3)
    longer = sequences(100, 10, seed=3)
    result = evaluate(original, longer, context_key="key", random_state=0, **FAST)
    # buckets "≥ 5" and "≥ 10" hold half of the original sequences each, all synthetic ones are in "≥ 10"
    assert result.sequence_length == pytest.approx(0.5)
    np.testing.assert_array_equal(result.sequence_lengths["synthetic"], np.full(100, 10))


def test_copied_sequences_are_detected():
    original, holdout = sequences(120, 6, seed=4), sequences(120, 6, seed=5)
    copy = original.copy()
    result = evaluate(original, copy, holdout, context_key="key", random_state=0)
    assert result.exact_match_share == 1.0
    assert result.dcr_share == 1.0
    fresh = evaluate(original, sequences(120, 6, seed=6), holdout, context_key="key", random_state=0)
    assert fresh.exact_match_share == 0.0
    assert 0.35 < fresh.dcr_share < 0.65
    assert 0.0 <= fresh.discriminator_auc <= 1.0


# --- dtypes, reproducibility, result views ---------------------------------------------------------------


def test_values_compare_across_dtypes():
    original = pd.DataFrame(
        {
            "n": pd.Series([1, 2, 3, 4], dtype="int64"),
            "t": pd.to_datetime(["2020-01-01", "2021-06-01", None, "2023-01-01"]).astype("datetime64[ns]"),
            "b": [True, False, True, False],
            "s": ["a", "b", None, "a"],
        }
    )
    synthetic = pd.DataFrame(
        {
            "n": pd.Series(["1", "2", "3", "4"], dtype="str"),
            "t": pd.to_datetime(["2020-01-01", "2021-06-01", None, "2023-01-01"]).astype("datetime64[us]"),
            "b": pd.Series([True, False, True, False], dtype="boolean"),
            "s": pd.Series(["a", "b", None, "a"], dtype="category"),
        }
    )
    result = evaluate(original, synthetic, random_state=0, discriminator=False)
    assert result.overall == 1.0
    assert result.exact_match_share == 1.0
    assert list(result.univariates["kind"]) == ["numeric", "datetime", "categorical", "categorical"]


def test_same_random_state_gives_identical_results():
    original = pd.concat([correlated(600, seed=10), correlated(600, seed=11).add_suffix("_2")], axis=1)
    synthetic = shuffle_columns(original, seed=12)
    first = evaluate(original, synthetic, original.iloc[:300], random_state=3, max_trivariates=20)
    second = evaluate(original, synthetic, original.iloc[:300], random_state=3, max_trivariates=20)
    assert first.to_dict() == second.to_dict()
    pd.testing.assert_frame_equal(first.trivariates, second.trivariates)
    assert len(first.trivariates) == 20


def test_max_rows_caps_the_compared_records():
    original = correlated(500, seed=13)
    result = evaluate(
        original, original, max_rows=100, max_distance_rows=50, random_state=0, discriminator=False
    )
    assert result.n_records == {"original": 100, "synthetic": 100}
    assert len(result.distances["synthetic_training"]) == 50
    steps = sequences(40, 3, seed=21)
    result = evaluate(steps, steps, context_key="key", max_rows=10, random_state=0, **FAST)
    assert result.n_records == {"original": 10, "synthetic": 10}
    assert (result.sequence_lengths["original"] == 3).all()


def test_result_views():
    original, holdout = correlated(300, seed=14), correlated(300, seed=15)
    result = evaluate(original, shuffle_columns(original, seed=16), holdout, random_state=0)
    assert isinstance(result, EvaluationResult)
    frame = result.to_frame()
    assert list(frame.columns) == ["group", "synthetic", "reference"]
    assert frame.loc["bivariate", "synthetic"] == result.bivariate
    assert frame.loc["bivariate", "reference"] == result.reference["bivariate"]
    assert np.isnan(frame.loc["coherence", "synthetic"])
    figures = result.to_dict()
    assert figures["dcr_share"] == result.dcr_share
    assert figures["reference_overall"] == result.reference["overall"]
    text = repr(result)
    assert text.startswith("EvaluationResult(rows: original=300, synthetic=300, holdout=300)")
    assert re.search(r"bivariate\s+\d+\.\d%\s+\d+\.\d%", text)
    assert "coherence" not in text


def test_without_holdout_there_is_no_reference_or_dcr_share():
    original = correlated(300, seed=17)
    result = evaluate(original, correlated(300, seed=18), random_state=0, discriminator=False)
    assert result.reference is None
    assert result.dcr_share is None and result.dcr_holdout is None
    assert result.dcr_training > 0.0
    assert "reference_overall" not in result.to_dict()


# --- bad input -------------------------------------------------------------------------------------------


def test_mismatched_columns_are_named():
    original = pd.DataFrame({"a": [1, 2], "b": [1, 2]})
    synthetic = pd.DataFrame({"a": [1, 2], "c": [1, 2]})
    message = "The synthetic data lacks the original's columns ['b'] and has columns the original lacks ['c']"
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate(original, synthetic)
    with pytest.raises(ValueError, match=re.escape("The holdout data lacks the original's columns ['b']")):
        evaluate(original, original, original[["a"]])


@pytest.mark.parametrize("empty", ["original", "synthetic", "holdout"])
def test_empty_frames_are_rejected(empty):
    frames = {name: pd.DataFrame({"a": [1, 2]}) for name in ("original", "synthetic", "holdout")}
    frames[empty] = frames[empty].iloc[:0]
    with pytest.raises(ValueError, match=f"The {empty} data has no rows"):
        evaluate(frames["original"], frames["synthetic"], frames["holdout"])


def test_frames_without_columns_or_with_duplicates_are_rejected():
    with pytest.raises(ValueError, match="The original data has no columns"):
        evaluate(pd.DataFrame(index=[0, 1]), pd.DataFrame({"a": [1]}))
    duplicated = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValueError, match=re.escape("The synthetic data has duplicate column names: ['a']")):
        evaluate(pd.DataFrame({"a": [1]}), duplicated)
    with pytest.raises(
        TypeError, match="The synthetic data must be a pandas DataFrame. Got ndarray instead."
    ):
        evaluate(pd.DataFrame({"a": [1]}), np.array([[1]]))


def test_all_null_columns_are_evaluated():
    original = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "empty": [None] * 4, "gone": [np.nan] * 4})
    synthetic = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0, 4.0], "empty": [None] * 4, "gone": [5.0, 6.0, np.nan, np.nan]}
    )
    result = evaluate(original, synthetic, random_state=0, discriminator=False)
    accuracies = result.univariates.set_index("column")["accuracy"]
    assert accuracies["empty"] == 1.0  # both entirely in the NULL bucket
    assert accuracies["gone"] == pytest.approx(0.5)  # half of the synthetic values left the NULL bucket
    assert result.dcr_training >= 0.0


def test_context_key_errors():
    frame = pd.DataFrame({"key": ["a", "a", "b"], "v": [1, 2, 3]})
    with pytest.raises(
        ValueError, match=re.escape("The context key 'id' is not a column of the original data")
    ):
        evaluate(frame, frame, context_key="id")
    with_null = frame.assign(key=["a", None, "b"])
    with pytest.raises(ValueError, match="The context key 'key' is NULL in 1 rows of the synthetic data"):
        evaluate(frame, with_null, context_key="key")
    with pytest.raises(ValueError, match="no column besides the context key 'key'"):
        evaluate(frame[["key"]], frame[["key"]], context_key="key")


@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_values_that_do_not_fit_the_original_type_are_named():
    original = pd.DataFrame({"age": [30, 40]})
    with pytest.raises(
        ValueError, match="Column 'age' is numeric in the original data, but the synthetic data"
    ):
        evaluate(original, pd.DataFrame({"age": ["thirty", "forty"]}))
    stamps = pd.DataFrame({"when": pd.to_datetime(["2020-01-01", "2020-02-01"])})
    with pytest.raises(ValueError, match="Column 'when' is a datetime in the original data"):
        evaluate(stamps, pd.DataFrame({"when": ["soon", "later"]}))


@pytest.mark.parametrize(
    ("parameter", "value", "expected"),
    [
        (
            "max_rows",
            0,
            "The 'max_rows' parameter of evaluate must be an int in the range [1, inf). Got 0 instead.",
        ),
        ("max_trivariates", 2.5, "The 'max_trivariates' parameter of evaluate must be an int"),
        ("privacy", "yes", "The 'privacy' parameter of evaluate must be a bool. Got 'yes' instead."),
    ],
)
def test_parameters_are_validated(parameter, value, expected):
    frame = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(ValueError, match=re.escape(expected)):
        evaluate(frame, frame, **{parameter: value})


# --- model selection -------------------------------------------------------------------------------------


class ResamplingSynthesizer(BaseEstimator):
    """A stand-in synthesizer: resamples whole rows (joint=True) or each column independently."""

    def __init__(self, joint: bool = False, random_state=None):
        self.joint = joint
        self.random_state = random_state

    def fit(self, X, y=None):
        self.data_ = X.reset_index(drop=True)
        return self

    def sample(self, n_samples):
        rng = check_random_state(self.random_state)
        if self.joint:
            return self.data_.iloc[rng.randint(0, len(self.data_), n_samples)].reset_index(drop=True)
        return pd.DataFrame(
            {c: self.data_[c].to_numpy()[rng.randint(0, len(self.data_), n_samples)] for c in self.data_}
        )


def test_fidelity_scorer_selects_the_more_faithful_synthesizer():
    data = correlated(1200, seed=19)
    search = GridSearchCV(
        ResamplingSynthesizer(random_state=0), {"joint": [False, True]}, scoring=fidelity_scorer, cv=2
    ).fit(data)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"joint": True}
    assert scores[1] > scores[0] + 0.05
    assert 0.0 < scores[0] < 1.0


def test_fidelity_scorer_equals_overall_accuracy_of_the_sample():
    data = correlated(400, seed=20)
    model = ResamplingSynthesizer(random_state=1).fit(data)
    expected = evaluate(data, model.sample(len(data)), random_state=0, **FAST).overall
    assert fidelity_scorer(model, data) == pytest.approx(expected)


def test_fidelity_scorer_needs_a_flat_sampler():
    with pytest.raises(TypeError, match="needs an estimator with a sample"):
        fidelity_scorer(object(), pd.DataFrame({"a": [1]}))
    model = ResamplingSynthesizer().fit(pd.DataFrame({"a": [1]}))
    model.tgt_context_key = "id"
    with pytest.raises(ValueError, match="fidelity_scorer scores flat tables only"):
        fidelity_scorer(model, pd.DataFrame({"a": [1]}))
