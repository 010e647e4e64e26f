"""Inference with TabularSynthesizer and the engine functions: predict_proba, predict, score_samples, impute."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score
from sklearn.model_selection import cross_val_score

import synthgen as sg
from synthgen import TabularSynthesizer

COLUMNS = ["age", "workclass", "education", "marital_status", "occupation", "relationship", "sex",
           "hours_per_week", "income"]


@pytest.fixture(scope="module")
def adult_split():
    from conftest import load_dataset

    data = load_dataset("adult", columns=COLUMNS).sample(n=4000, random_state=0).reset_index(drop=True)
    return data.iloc[:3000].reset_index(drop=True), data.iloc[3000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(adult_split):
    return TabularSynthesizer(model="small", max_epochs=5, random_state=0).fit(adult_split[0])


@pytest.fixture(scope="module")
def holdout(adult_split):
    return adult_split[1]


# -- predict_proba / predict -------------------------------------------------------------------------
def test_predict_proba_rows_sum_to_one_in_class_order(fitted, holdout):
    X = holdout.drop(columns="income")
    proba = fitted.predict_proba(X, target="income")
    assert proba.shape == (len(X), 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert list(fitted.predict_classes("income")) == ["<=50K", ">50K"]
    # the target column in X is ignored; any subset of the columns is a valid condition
    np.testing.assert_allclose(fitted.predict_proba(holdout, target="income"), proba)
    subset = fitted.predict_proba(X[["sex", "age"]], target="income")
    np.testing.assert_allclose(subset.sum(1), 1.0)
    assert not np.allclose(subset, proba)


def test_predict_proba_agrees_with_the_frequencies_of_seeded_samples(fitted, holdout):
    """Statistical check: draws of income seeded with every other column follow predict_proba."""
    rows = holdout.drop(columns="income").iloc[:4]
    n = 1500
    seeds = rows.loc[rows.index.repeat(n)].reset_index(drop=True)
    drawn = fitted.sample(seed_data=seeds, random_state=3)["income"].to_numpy().reshape(len(rows), n)
    freq = (drawn == ">50K").mean(axis=1)
    p = fitted.predict_proba(rows, target="income")[:, 1]
    assert np.all(np.abs(freq - p) <= 4.5 * np.sqrt(p * (1 - p) / n) + 1e-3), (freq, p)


def test_predict_accuracy_is_close_to_gradient_boosting(fitted, adult_split):
    train, holdout = adult_split
    X, Xh = train.drop(columns="income"), holdout.drop(columns="income")
    categorical = {c: "category" for c in X if not pd.api.types.is_numeric_dtype(X[c])}
    hgb = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    hgb.fit(X.astype(categorical), train["income"])
    hgb_accuracy = accuracy_score(holdout["income"], hgb.predict(Xh.astype(categorical)))
    predicted = fitted.predict(Xh, target="income")
    assert set(predicted) <= {"<=50K", ">50K"}
    assert accuracy_score(holdout["income"], predicted) >= hgb_accuracy - 0.03


def test_predict_numeric_target_is_a_conditional_median_in_the_column_dtype(fitted, holdout):
    X = holdout.head(200)
    predicted = fitted.predict(X, target="age", n_draws=40)
    assert predicted.dtype == np.int64 and len(predicted) == 200
    np.testing.assert_array_equal(predicted, fitted.predict(X, target="age", n_draws=40))
    # each row's draws depend on the row alone: the same prediction in any order and any subset
    np.testing.assert_array_equal(predicted[::-1], fitted.predict(X.iloc[::-1], target="age", n_draws=40))
    np.testing.assert_array_equal(predicted[50:60], fitted.predict(X.iloc[50:60], target="age", n_draws=40))
    # never-married people are younger: the conditional median follows the condition
    married = X["marital_status"] == "Married-civ-spouse"
    never = X["marital_status"] == "Never-married"
    assert predicted[never.to_numpy()].mean() < predicted[married.to_numpy()].mean() - 5


# -- likelihood ----------------------------------------------------------------------------------------
def test_score_samples_is_lower_for_corrupted_rows(fitted, holdout):
    real = fitted.score_samples(holdout)
    rng = np.random.default_rng(0)
    shuffled = holdout.apply(lambda column: column.to_numpy()[rng.permutation(len(column))])
    corrupted = holdout.assign(age=holdout["age"] + 60, sex=holdout["sex"].map({"Male": "Female", "Female": "Male"}))
    assert real.shape == (len(holdout),) and np.isfinite(real).all()
    assert fitted.score_samples(shuffled).mean() < real.mean() - 1.0
    assert np.mean(fitted.score_samples(corrupted) < real) > 0.9


def test_score_is_the_mean_log_likelihood_and_reproducible(fitted, holdout):
    assert fitted.score(holdout) == pytest.approx(fitted.score_samples(holdout).mean())
    assert fitted.score(holdout) == fitted.score(holdout)
    X, y = holdout.drop(columns="income"), holdout["income"]
    assert fitted.score(X, y) == pytest.approx(fitted.score(holdout))


def test_score_samples_of_a_column_subset_is_a_normalised_marginal(fitted):
    # an unknown category scores as the protected-category code, so published classes + one unknown cover all
    classes = [*fitted.predict_classes("sex"), "unknown"]
    relationship = [*fitted.predict_classes("relationship"), "_RARE_"]
    grid = pd.DataFrame([(s, r) for s in classes for r in relationship], columns=["sex", "relationship"])
    assert np.exp(fitted.score_samples(grid)).sum() == pytest.approx(1.0, abs=1e-6)
    assert np.exp(fitted.score_samples(pd.DataFrame({"sex": classes}))).sum() == pytest.approx(1.0, abs=1e-6)


# -- impute --------------------------------------------------------------------------------------------
def test_impute_changes_only_null_cells(fitted, holdout):
    X = holdout.head(300).copy()
    X["age"] = X["age"].astype("Int64")
    rng = np.random.default_rng(1)
    holes = {c: rng.random(len(X)) < 0.3 for c in ["age", "workclass", "relationship", "hours_per_week"]}
    for column, mask in holes.items():
        X.loc[mask, column] = pd.NA if column == "age" else None
    before = X.copy()
    out = fitted.impute(X, random_state=0)
    pd.testing.assert_frame_equal(X, before)  # the input is untouched
    assert out.dtypes.to_dict() == X.dtypes.to_dict()
    was_null = X.isna().to_numpy()
    assert not out[list(holes)].isna().any().any()
    kept = out.astype(object).where(~was_null, "hole")
    pd.testing.assert_frame_equal(kept, X.astype(object).where(~was_null, "hole"))
    assert set(out["relationship"]) <= set(fitted.predict_classes("relationship"))


def test_impute_conditions_on_the_rest_of_the_row(fitted, holdout):
    X = holdout.head(400).assign(relationship=None)
    out = fitted.impute(X, random_state=0)
    husband = out["relationship"] == "Husband"
    assert husband[X["sex"] == "Female"].mean() < 0.15 < husband[X["sex"] == "Male"].mean()


# -- errors --------------------------------------------------------------------------------------------
def test_bad_input_gets_clear_errors(fitted, holdout):
    X = holdout.head(5)
    with pytest.raises(ValueError, match="target 'salary' is not a column of the model"):
        fitted.predict_proba(X, target="salary")
    with pytest.raises(ValueError, match="needs a target column"):
        fitted.predict(X)
    with pytest.raises(ValueError, match="none of the model's columns besides the target 'income'"):
        fitted.predict_proba(X[["income"]], target="income")
    with pytest.raises(ValueError, match="none of the model's columns"):
        fitted.score_samples(X.iloc[:, :0])
    with pytest.raises(ValueError, match=r"columns the model does not know: \['id'\]"):
        fitted.impute(X.assign(id=1))
    with pytest.raises(ValueError, match="TABULAR_CATEGORICAL"):
        fitted.predict_proba(X, target="hours_per_week")
    with pytest.raises(ValueError, match="X has 2 features, but TabularSynthesizer is expecting 9 features"):
        fitted.score_samples(X.to_numpy()[:, :2])
    with pytest.raises(ValueError, match=r"^Expected 2D array, got 1D array instead: shape \(9,\)\. Reshape"):
        fitted.score_samples(X.to_numpy()[0])
    with pytest.raises(ValueError, match="n_draws"):
        fitted.predict(X, target="age", n_draws=0)
    with pytest.raises(NotFittedError):
        TabularSynthesizer().predict_proba(X, target="income")
    with pytest.raises(ValueError, match="The 'target' parameter of TabularSynthesizer must name a column"):
        TabularSynthesizer(target="salary").fit(X)


# -- engine functions ------------------------------------------------------------------------------------
def test_engine_functions_match_the_estimator(fitted, holdout):
    ws = fitted.workspace_
    X = holdout.head(50)
    proba = sg.predict_proba(X.drop(columns="income"), "income", workspace_dir=ws)
    assert list(proba.columns) == ["<=50K", ">50K"] and proba.index.equals(X.index)
    np.testing.assert_allclose(proba.to_numpy(), fitted.predict_proba(X, target="income"))
    np.testing.assert_allclose(sg.log_likelihood(X, workspace_dir=ws), fitted.score_samples(X))
    predicted = sg.predict(X, "income", workspace_dir=ws)
    assert predicted.name == "income"
    np.testing.assert_array_equal(predicted.to_numpy(), fitted.predict(X, target="income"))
    holes = X.assign(sex=None)
    assert sg.impute(holes, workspace_dir=ws, random_state=0)["sex"].notna().all()


# -- classifier use ------------------------------------------------------------------------------------
def test_target_parameter_makes_a_classifier_for_cross_validation(adult_split):
    data = adult_split[0].head(1600)
    X, y = data.drop(columns="income"), data["income"].to_numpy()
    synth = TabularSynthesizer(model="small", max_epochs=4, random_state=0, target="income")
    assert is_classifier(synth) and not is_classifier(TabularSynthesizer())
    scores = cross_val_score(synth, X, y, cv=2, scoring="roc_auc")
    assert scores.shape == (2,) and np.all(scores > 0.75)
    fitted = synth.fit(X, y)
    assert list(fitted.classes_) == ["<=50K", ">50K"]
    assert fitted.predict(X.head(3)).shape == (3,)


def test_fixed_order_model_answers_only_its_training_order(adult_split):
    data = adult_split[0][["sex", "relationship", "income"]].head(300)
    synth = TabularSynthesizer(model="small", max_epochs=1, enable_flexible_generation=False,
                               random_state=0).fit(data)
    assert synth.predict_proba(data[["sex", "relationship"]], target="income").shape == (300, 2)
    with pytest.raises(ValueError, match="enable_flexible_generation=False"):
        synth.predict_proba(data[["relationship"]], target="income")
    assert np.isfinite(synth.score_samples(data[["sex"]])).all()


@pytest.mark.filterwarnings("ignore:Column .code. of tgt_data:UserWarning")
def test_a_column_whose_categories_are_all_protected_has_no_classes_and_imputes_to_null(adult_split):
    data = adult_split[0][["sex", "income"]].head(200).assign(code=[f"c{i}" for i in range(200)])
    synth = TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(data)
    assert synth.stats_["columns"]["code"]["categories"] == []
    with pytest.raises(ValueError, match="target 'code' has no published classes"):
        synth.predict_proba(data[["sex"]], target="code")
    out = synth.impute(data.head(20).assign(code=None, sex=None), random_state=0)
    assert out["sex"].notna().all() and out["code"].isna().all()


def test_fitted_inference_survives_a_joblib_round_trip(fitted, holdout, tmp_path):
    import joblib

    joblib.dump(fitted, tmp_path / "synth.joblib")
    loaded = joblib.load(tmp_path / "synth.joblib")
    X = holdout.head(20)
    np.testing.assert_allclose(loaded.predict_proba(X, target="income"), fitted.predict_proba(X, target="income"))
    np.testing.assert_allclose(loaded.score_samples(X), fitted.score_samples(X))


@pytest.mark.parametrize("tz", [None, "Europe/Vienna"])
def test_row_medians_of_datetime_draws_keep_unit_and_zone(tz):
    from synthgen.stages._inference_common import _row_medians

    days = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-10", None, "2021-05-01", "2021-05-03"])
                     .astype("datetime64[us]"))
    if tz is not None:
        days = days.dt.tz_localize(tz)
    medians = _row_medians(days, 3)
    assert medians.dtype == days.dtype
    expected = pd.Series(pd.to_datetime(["2020-01-03", "2021-05-02"]).astype("datetime64[us]"))
    pd.testing.assert_series_equal(medians, expected.dt.tz_localize(tz) if tz is not None else expected)


def test_predict_datetime_target_is_a_datetime():
    rng = np.random.default_rng(0)
    group = rng.choice(["a", "b"], 300)
    offsets = np.where(group == "a", rng.integers(0, 30, 300), rng.integers(300, 330, 300))
    data = pd.DataFrame({"group": group, "day": pd.Timestamp("2020-01-01") + pd.to_timedelta(offsets, unit="D")})
    data["day"] = data["day"].astype("datetime64[us]")
    synth = TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(data)
    predicted = synth.predict(data[["group"]].head(10), target="day", n_draws=10)
    assert predicted.dtype == np.dtype("datetime64[us]")
    assert (predicted >= np.datetime64("2019-12-01")).all() and (predicted <= np.datetime64("2021-01-01")).all()


def test_grid_search_selects_by_held_out_likelihood(adult_split):
    from sklearn.model_selection import GridSearchCV

    data = adult_split[0][["age", "sex", "relationship", "income"]].head(800)
    search = GridSearchCV(TabularSynthesizer(model="small", random_state=0), {"max_epochs": [0.2, 4]}, cv=2)
    search.fit(data)
    assert search.best_params_ == {"max_epochs": 4}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))


def test_predict_proba_is_hidden_when_the_default_target_has_no_classes(fitted):
    import copy

    numeric, categorical = copy.deepcopy(fitted), copy.deepcopy(fitted)
    numeric.set_params(target="age")
    categorical.set_params(target="income")
    assert not hasattr(numeric, "predict_proba") and hasattr(categorical, "predict_proba")
    assert hasattr(fitted, "predict_proba") and hasattr(TabularSynthesizer(target="age"), "predict_proba")
