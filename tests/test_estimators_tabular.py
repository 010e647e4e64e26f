import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from synthgen import Analyzer, Encoder, Splitter, TabularSynthesizer


@pytest.fixture(scope="module")
def adult_slice():
    from conftest import load_dataset

    return load_dataset("adult").sample(n=3000, random_state=11).reset_index(drop=True)


@pytest.fixture(scope="module")
def fitted(adult_slice):
    """One synthesizer trained long enough to learn the strong sex/relationship dependency."""
    return TabularSynthesizer(model="small", max_epochs=12, random_state=0).fit(adult_slice)


def test_sample_has_the_training_columns_and_dtypes(fitted, adult_slice):
    sample = fitted.sample(500)
    assert list(sample.columns) == list(adult_slice.columns)
    assert sample.dtypes.to_dict() == adult_slice.dtypes.to_dict()
    assert len(sample) == 500
    for column in ["workclass", "education", "sex", "income"]:
        assert set(sample[column].dropna()) <= set(adult_slice[column].dropna())
    assert "_RARE_" not in set(sample["native_country"].dropna())


def test_default_sample_size_is_the_training_size(fitted, adult_slice):
    assert len(fitted.sample()) == len(adult_slice)


def test_marginals_are_learned(fitted, adult_slice):
    sample = fitted.sample(3000, random_state=1)
    for column in ["sex", "income", "race"]:
        original = adult_slice[column].value_counts(normalize=True)
        synthetic = sample[column].value_counts(normalize=True).reindex(original.index, fill_value=0)
        assert 0.5 * (original - synthetic).abs().sum() < 0.08, column
    assert abs(sample["age"].mean() - adult_slice["age"].mean()) < 3


def test_seed_values_are_kept_and_condition_the_rest(fitted):
    seed = pd.DataFrame({"sex": ["Female"] * 600 + ["Male"] * 600})
    sample = fitted.sample(seed_data=seed, random_state=2)
    assert sample["sex"].tolist() == seed["sex"].tolist()
    husbands = sample.groupby("sex")["relationship"].apply(lambda s: (s == "Husband").mean())
    wives = sample.groupby("sex")["relationship"].apply(lambda s: (s == "Wife").mean())
    assert husbands["Male"] > husbands["Female"] + 0.25
    assert wives["Female"] > wives["Male"]


def test_unseen_seed_values_are_kept_verbatim(fitted):
    seed = pd.DataFrame({"age": [17, 200], "workclass": ["Astronaut", "Private"]})
    sample = fitted.sample(seed_data=seed, random_state=3)
    assert sample["age"].tolist() == [17, 200]
    assert sample["workclass"].tolist() == ["Astronaut", "Private"]


def _entropy(values: pd.Series) -> float:
    p = values.value_counts(normalize=True).to_numpy()
    return float(-(p * np.log(p)).sum())


def test_temperature_and_top_p_change_diversity(fitted):
    base = fitted.sample(3000, random_state=4)
    cold = fitted.sample(3000, sampling_temperature=0.3, random_state=4)
    hot = fitted.sample(3000, sampling_temperature=2.0, random_state=4)
    nucleus = fitted.sample(3000, sampling_top_p=0.5, random_state=4)
    for column in ["occupation", "education"]:
        assert _entropy(cold[column]) < _entropy(base[column]) < _entropy(hot[column]), column
        assert nucleus[column].nunique() < base[column].nunique(), column


def test_same_random_state_gives_identical_samples(fitted):
    pd.testing.assert_frame_equal(fitted.sample(200, random_state=5), fitted.sample(200, random_state=5))
    assert not fitted.sample(200, random_state=5).equals(fitted.sample(200, random_state=6))


def test_same_random_state_gives_identical_models(adult_slice):
    data = adult_slice.head(600)
    a = TabularSynthesizer(model="small", max_epochs=1, random_state=7).fit(data)
    b = TabularSynthesizer(model="small", max_epochs=1, random_state=7).fit(data)
    pd.testing.assert_frame_equal(a.sample(100), b.sample(100))
    pd.testing.assert_frame_equal(a.history_.drop(columns="total_time"), b.history_.drop(columns="total_time"))


def test_history_and_fitted_attributes(fitted, adult_slice):
    assert fitted.n_features_in_ == 15
    assert list(fitted.feature_names_in_) == list(adult_slice.columns)
    assert fitted.encoding_types_["workclass"] == "TABULAR_CATEGORICAL"
    assert fitted.stats_["no_of_training_records"] == 2400
    assert {"epoch", "trn_loss", "val_loss", "learn_rate", "is_checkpoint"} <= set(fitted.history_.columns)
    assert fitted.history_["epoch"].iloc[-1] <= 12
    assert fitted.history_["val_loss"].iloc[-1] < fitted.history_["val_loss"].iloc[0]
    # without differential privacy there is no guarantee to report: no ledger attributes (not an epsilon of 0)
    assert not any(hasattr(fitted, name) for name in ("privacy_report_", "epsilon_", "delta_"))


def test_the_workspace_privacy_ledger_becomes_fitted_attributes_and_is_pickled(tmp_path):
    from synthgen import analyze, encode, split

    data = pd.DataFrame({"x": np.arange(60) % 7, "y": ["a", "b", "c"] * 20})
    ws = split(data, workspace_dir=tmp_path / "ws", random_state=0)
    config = {"epsilon": 8.0, "domains": {"x": list(range(7)), "y": ["a", "b", "c"]}}
    analyze(workspace_dir=ws, random_state=0, differential_privacy=config)
    encode(workspace_dir=ws, random_state=0)
    synth = TabularSynthesizer(max_epochs=1, random_state=0, differential_privacy=config).fit(ws)
    assert list(synth.privacy_report_.columns) == ["stage", "column", "mechanism", "epsilon", "delta"]
    assert synth.privacy_report_["column"].tolist()[:2] == ["x", "y"]
    assert synth.privacy_report_["stage"].tolist() == ["analyze", "analyze", "train"]
    assert synth.epsilon_ == pytest.approx(synth.privacy_report_["epsilon"].sum())
    assert 0 < synth.epsilon_ <= 8.0 * 0.9 + 1e-9  # the declared domains cost nothing; training its share
    path = tmp_path / "synth.joblib"
    joblib.dump(synth, path)
    restored = joblib.load(path)
    assert restored.epsilon_ == synth.epsilon_ and restored.privacy_report_.equals(synth.privacy_report_)


def test_time_budget_stops_training(adult_slice):
    synth = TabularSynthesizer(model="small", max_training_time=0.02, max_epochs=1000, random_state=0)
    synth.fit(adult_slice)
    assert synth.history_["total_time"].iloc[-1] < 1.2 + 5  # 1.2 s budget plus one step and a validation
    assert synth.history_["epoch"].iloc[-1] < 1000


def test_resume_continues_from_the_saved_state(adult_slice, tmp_path):
    synth = TabularSynthesizer(model="small", max_epochs=2, workspace_dir=tmp_path / "ws", random_state=0)
    synth.fit(adult_slice.head(800))
    steps = synth.history_["steps"].iloc[-1]
    synth.set_params(model_state_strategy="RESUME", max_epochs=4)
    synth.fit(adult_slice.head(800))
    assert synth.history_["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert synth.history_["steps"].iloc[-1] == 2 * steps


def _shifted(share_b: float, n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Two columns whose category ``b`` has the given share; the categories a, b, c are in every version."""
    rng = np.random.default_rng(seed)
    n_b, n_c = int(share_b * n), 20
    return pd.DataFrame({"kind": ["b"] * n_b + ["c"] * n_c + ["a"] * (n - n_b - n_c),
                         "size": rng.integers(0, 40, n)})


def _share_b(synth) -> float:
    return float((synth.sample(600, random_state=1)["kind"] == "b").mean())


def test_reuse_fine_tunes_on_the_data_passed_to_fit(tmp_path):
    a, b = _shifted(0.05), _shifted(0.9, seed=1)
    synth = TabularSynthesizer(model="small", max_epochs=3, workspace_dir=tmp_path / "ws", random_state=0).fit(a)
    assert _share_b(synth) < 0.2
    synth.set_params(model_state_strategy="REUSE", max_epochs=4).fit(b)
    assert synth.history_["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0]  # new counters and budgets
    assert _share_b(synth) > 0.6
    ws = synth.workspace_
    assert sorted(ws.read_table_data("tgt")["kind"]) == sorted(b["kind"])  # B's rows, coded as the model knows
    assert ws.read_stats("tgt")["columns"]["kind"]["categories"] == ["a", "b", "c"]
    assert len(synth.sample()) == len(b)


def test_resume_continues_the_saved_run_on_the_data_passed_to_fit(tmp_path):
    a, b = _shifted(0.05), _shifted(0.9, seed=1)
    synth = TabularSynthesizer(model="small", max_epochs=2, workspace_dir=tmp_path / "ws", random_state=0).fit(a)
    steps = synth.history_["steps"].iloc[-1]
    synth.set_params(model_state_strategy="RESUME", max_epochs=4).fit(b)
    history = synth.history_
    assert history["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0]  # the budget counts from the start of the run
    assert history["steps"].iloc[-1] == 2 * steps
    # from epoch 3 on, validation is on B, which the model of A explains badly
    assert history["val_loss"].iloc[2] > history["val_loss"].iloc[1] + 1
    assert history["val_loss"].iloc[3] < history["val_loss"].iloc[2]
    assert sorted(synth.workspace_.read_table_data("tgt")["kind"]) == sorted(b["kind"])
    # a new estimator continues the run that its workspace_dir holds (e.g. one that was interrupted)
    resumed = TabularSynthesizer(model="small", max_epochs=5, workspace_dir=tmp_path / "ws",
                                 model_state_strategy="RESUME", random_state=0).fit(b)
    pd.testing.assert_frame_equal(resumed.history_.iloc[:4], history)
    assert resumed.history_["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.drop(columns="size"), r"tgt_data lacks the columns ['size']"),
        (lambda d: d.assign(colour="red"), r"tgt_data has columns the model does not know: ['colour']"),
        (lambda d: d.assign(size=d["size"].map("s{}".format)),
         r"column 'size' of tgt_data is TABULAR_CATEGORICAL, the model's is TABULAR_NUMERIC_DIGIT"),
    ],
)
def test_warm_starts_refuse_data_with_other_columns(tmp_path, change, message):
    synth = TabularSynthesizer(model="small", max_epochs=1, workspace_dir=tmp_path / "ws", random_state=0)
    synth.fit(_shifted(0.05))
    weights = synth._bundle.weights
    synth.set_params(model_state_strategy="REUSE")
    with pytest.raises(ValueError) as error:
        synth.fit(change(_shifted(0.9)))
    assert str(error.value) == (
        f"model_state_strategy='REUSE' continues the saved model, but the data does not match the columns it was "
        f"trained on: {message}. Pass data with the model's columns, or use model_state_strategy='RESET' to "
        f"train a new model.")
    assert synth._bundle.weights is weights  # the fitted model is untouched
    assert len(synth.sample(5)) == 5


def test_not_fitted_raises():
    with pytest.raises(NotFittedError):
        TabularSynthesizer().sample(5)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"max_epochs": -1}, r"The 'max_epochs' parameter of TabularSynthesizer must be a float in the range "
                             r"\(0, inf\)\. Got -1 instead\."),
        ({"model": "huge"}, r"The 'model' parameter of TabularSynthesizer must be a str among \{'MOSTLY_AI/Small', "
                            r"'MOSTLY_AI/Medium', 'MOSTLY_AI/Large', 'small', 'medium', 'large'\} "
                            r"\(case-insensitive\), 'MOSTLY_AI/LSTMFromScratch-3m' or the folder of a local "
                            r"Hugging Face causal LM \(LANGUAGE models\) or None\. Got 'huge' instead\."),
        ({"batch_size": -3}, r"The 'batch_size' parameter of TabularSynthesizer must be an int in the range "
                             r"\[1, inf\) or None\. Got -3 instead\."),
        ({"device": "tpu"}, r"The 'device' parameter of TabularSynthesizer must be a str among \{'cpu', 'cuda', "
                            r"'mps'\} \(with an optional index, e\.g\. 'cuda:1'\), a torch\.device or None\. "
                            r"Got 'tpu' instead\."),
        ({"model_state_strategy": "forget"}, r"The 'model_state_strategy' parameter of TabularSynthesizer must be a "
                                             r"str among \{'RESET', 'REUSE', 'RESUME'\} \(case-insensitive\)\. "
                                             r"Got 'forget' instead\."),
        ({"value_protection": "yes"}, r"The 'value_protection' parameter of TabularSynthesizer must be a bool\. "
                                      r"Got 'yes' instead\."),
        ({"differential_privacy": {"epsilon": -1}}, r"The 'differential_privacy' parameter of TabularSynthesizer is "
                                                    r"invalid: epsilon must be a positive finite number or None; "
                                                    r"got -1 instead\."),
        ({"tgt_encoding_types": ["age"]}, r"The 'tgt_encoding_types' parameter of TabularSynthesizer must be a "
                                          r"dict or None\. Got \['age'\] instead\."),
        ({"random_state": -1}, r"The 'random_state' parameter of TabularSynthesizer must be an int in the range "
                               r"\[0, inf\), an instance of 'numpy\.random\.RandomState', an instance of "
                               r"'numpy\.random\.Generator' or None\. Got -1 instead\."),
    ],
)
def test_invalid_parameters_are_reported_at_the_start_of_fit(adult_slice, tmp_path, monkeypatch, params, message):
    import synthgen.estimators._tabular as module

    def no_stage(*args, **kwargs):
        raise AssertionError("a stage ran before the parameters were validated")

    for stage in ("split", "analyze", "encode", "train"):
        monkeypatch.setattr(module, stage, no_stage)
    synth = TabularSynthesizer(workspace_dir=tmp_path / "ws", **params)
    with pytest.raises(ValueError, match=f"^{message}"):
        synth.fit(adult_slice.head(100))
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sampling_top_p": 0}, r"The 'sampling_top_p' parameter of TabularSynthesizer\.sample must be a float in "
                                r"the range \(0, 1\]\. Got 0 instead\."),
        ({"sampling_temperature": -1}, r"The 'sampling_temperature' parameter of TabularSynthesizer\.sample must be "
                                       r"a float in the range \[0, inf\)\. Got -1 instead\."),
        ({"batch_size": 0}, r"The 'batch_size' parameter of TabularSynthesizer\.sample must be an int in the range "
                            r"\[1, inf\) or None\. Got 0 instead\."),
        ({"fairness": {"target_column": "income", "sensitive_columns": ["age"]}},
         r"fairness sensitive column 'age' must be a categorical column \(TABULAR_CATEGORICAL\)"),
        ({"fairness": "income"}, r"The 'fairness' parameter of TabularSynthesizer\.sample must be a "
                                 r"FairnessConfig, a dict or None"),
        ({"seed_data": pd.DataFrame({"nope": [1]})}, r"seed_data has columns the model does not know: \['nope'\]"),
        ({"imputation": {"columns": ["nope"]}}, r"imputation names columns the model does not know"),
        ({"rebalancing": {"column": "sex", "probabilities": {"Other": 0.5}}},
         r"rebalancing probabilities name categories that column 'sex' does not publish: \['Other'\]"),
        ({"rare_category_replacement_method": "DROP"}, r"The 'rare_category_replacement_method' parameter of "
                                                       r"TabularSynthesizer\.sample must be a str among "
                                                       r"\{'CONSTANT', 'SAMPLE'\} \(case-insensitive\) or None\. "
                                                       r"Got 'DROP' instead\."),
    ],
)
def test_invalid_sample_arguments(fitted, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fitted.sample(10, **kwargs)


def test_rebalancing_and_imputation(fitted):
    sample = fitted.sample(2000, rebalancing={"column": "sex", "probabilities": {"Female": 0.8}}, random_state=8)
    assert abs((sample["sex"] == "Female").mean() - 0.8) < 0.04
    imputed = fitted.sample(2000, imputation={"columns": ["workclass", "occupation"]}, random_state=8)
    assert imputed["workclass"].notna().all() and imputed["occupation"].notna().all()


def test_pipeline_with_the_stages_and_clone(adult_slice):
    pipe = make_pipeline(Splitter(random_state=0), Analyzer(random_state=0), Encoder(random_state=0),
                         TabularSynthesizer(model="small", max_epochs=1, random_state=0))
    pipe.fit(adult_slice.head(600))
    assert pipe[-1].sample(20).shape == (20, 15)
    assert clone(pipe[-1]).get_params() == pipe[-1].get_params()


def test_pickle_round_trip_samples_in_a_fresh_process_without_the_workspace(fitted, tmp_path):
    synth = TabularSynthesizer(model="small", max_epochs=1, workspace_dir=tmp_path / "ws", random_state=0)
    synth.fit(fitted.sample(500, random_state=9))
    expected = synth.sample(50, random_state=10)
    joblib.dump(synth, tmp_path / "model.joblib")
    import shutil

    shutil.rmtree(tmp_path / "ws")
    code = textwrap.dedent(f"""
        import joblib
        synth = joblib.load({str(tmp_path / "model.joblib")!r})
        synth.sample(50, random_state=10, device="cpu").to_pickle({str(tmp_path / "out.pkl")!r})
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "out.pkl"), expected)


def test_grid_search_with_the_fidelity_scorer(adult_slice):
    from sklearn.model_selection import GridSearchCV

    from synthgen import fidelity_scorer

    search = GridSearchCV(TabularSynthesizer(max_epochs=1, random_state=0), {"model": ["small", "medium"]},
                          scoring=fidelity_scorer, cv=2).fit(adult_slice.head(800))
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["model"] in ("small", "medium")
    assert all(0.5 < s <= 1.0 for s in scores)


def test_every_dtype_comes_back_as_it_went_in():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame({
        "nullable_int": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 50, n)), dtype="Int64"),
        "flag": pd.array(rng.random(n) < 0.3, dtype="boolean"),
        "plain_bool": rng.random(n) < 0.5,
        "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
        "city": pd.array(rng.choice(["Wien", "Graz", "Linz"], n), dtype="string[pyarrow]"),
        "score": rng.normal(size=n),
        "arrow_int": pd.array(rng.integers(0, 9, n), dtype=pd.ArrowDtype(__import__("pyarrow").int64())),
        "when_us": pd.Series(pd.date_range("2020-01-01", periods=n, freq="h")).astype("datetime64[us]"),
        "when_ns_tz": pd.Series(pd.date_range("2021-06-01", periods=n, freq="D", tz="Europe/Vienna")),
        "text": rng.choice(["a", "b", None], n),
    })
    synth = TabularSynthesizer(model="small", max_epochs=1, value_protection=False, random_state=0).fit(frame)
    sample = synth.sample(300)
    assert sample.dtypes.to_dict() == frame.dtypes.to_dict()
    assert set(sample["colour"].cat.categories) <= {"red", "green", "blue"}


@pytest.mark.parametrize("n_samples", [-1, 1.5, "10"])
def test_n_samples_is_validated_with_its_own_name(fitted, n_samples):
    with pytest.raises(ValueError) as error:
        fitted.sample(n_samples)
    assert str(error.value) == ("The 'n_samples' parameter of TabularSynthesizer.sample must be an int in the range "
                                f"[0, inf) or None. Got {n_samples!r} instead.")


def test_zero_samples_give_an_empty_frame_of_the_training_dtypes(fitted, adult_slice):
    empty = fitted.sample(0)
    assert empty.shape == (0, adult_slice.shape[1])
    assert empty.dtypes.to_dict() == adult_slice.dtypes.to_dict()


@pytest.mark.parametrize(
    "X, error, message",
    [
        (np.arange(6.0), ValueError,
         "Expected 2D array, got 1D array instead: shape (6,). Reshape your data either using array.reshape(-1, 1) "
         "if your data has a single feature or array.reshape(1, -1) if it contains a single sample (a Series: "
         "series.to_frame())."),
        (np.empty((0, 3)), ValueError,
         "Found array with 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required by TabularSynthesizer."),
        (np.empty((12, 0)), ValueError,
         "Found array with 0 feature(s) (shape=(12, 0)) while a minimum of 1 is required by TabularSynthesizer."),
        (pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"]), ValueError, "X has duplicate column names: ['a']."),
        (np.eye(3) * (1 + 1j), ValueError,
         "Complex data not supported: column 'col_0' of tgt_data has dtype complex128. Split it into real and "
         "imaginary columns (values.real, values.imag)."),
        (__import__("scipy").sparse.csr_array(np.eye(3)), TypeError,
         "Sparse data not supported: TabularSynthesizer learns a dense table; pass X.toarray() or a DataFrame."),
    ],
    ids=["1d", "no-rows", "no-columns", "duplicate-names", "complex", "sparse"],
)
def test_unusable_input_is_named_before_any_stage_writes(tmp_path, X, error, message):
    with pytest.raises(error) as raised:
        TabularSynthesizer(workspace_dir=tmp_path / "ws").fit(X)
    assert str(raised.value) == message
    assert not (tmp_path / "ws" / "OriginalData").exists()
