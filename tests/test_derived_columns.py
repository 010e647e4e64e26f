"""Derived columns: exact single-column functional dependencies found at analyze and re-imposed at generation."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

import synthgen as sg
from synthgen import TabularSynthesizer
from synthgen._options import InvalidParameterError
from synthgen.stages._derived_columns import MIN_SUBJECTS_PER_ENTRY, derive

CLOCKS = [500, 515, 600, 645, 730, 1200, 1330, 1745]
GRADES = {"a": 1, "b": 2, "c": 3, "d": 4}


def _table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    clock = rng.choice(CLOCKS, size=n)
    grade = rng.choice(list(GRADES), size=n)
    return pd.DataFrame({"clock": clock, "grade": grade, "x": rng.normal(size=n), "hour": clock // 100,
                         "minute": clock % 100, "grade_num": pd.Series(grade).map(GRADES).to_numpy()})


def _derived(frame: pd.DataFrame, tmp_path, **split_options) -> dict:
    ws = sg.split(frame, workspace_dir=tmp_path / "ws", verbose=False, **split_options)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False, **split_options.get("analyze", {}))
    return ws.read_stats("tgt")["derived_columns"]


def _sources(derived: dict) -> dict:
    return {b: spec["from"] for b, spec in derived.items()}


def _agreement(frame: pd.DataFrame) -> tuple[float, float, float]:
    return (float((frame["hour"] == frame["clock"] // 100).mean()),
            float((frame["minute"] == frame["clock"] % 100).mean()),
            float((frame["grade_num"] == frame["grade"].map(GRADES)).mean()))


@pytest.fixture(scope="module")
def fitted() -> TabularSynthesizer:
    return TabularSynthesizer(max_epochs=1, random_state=0, verbose=False).fit(_table())


# -- detection -------------------------------------------------------------------------------------------

def test_detects_functions_of_a_few_valued_column(tmp_path):
    derived = _derived(_table(), tmp_path)
    # grade <-> grade_num is 1:1: the earlier column is kept, the later derived
    assert _sources(derived) == {"hour": "clock", "minute": "clock", "grade_num": "grade"}
    assert derived["hour"]["map"] == [[float(c), float(c // 100)] for c in CLOCKS]
    assert derived["grade_num"]["map"] == [[g, float(v)] for g, v in GRADES.items()]


def test_an_empty_partition_rules_nothing_out(tmp_path):
    ws = sg.split(_table(), workspace_dir=tmp_path / "ws", verbose=False, n_partitions=2)
    last = ws.partitions(ws.data_dir("tgt"))[-1]
    pd.read_parquet(last).iloc[:0].to_parquet(last, index=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    assert _sources(ws.read_stats("tgt")["derived_columns"]) == {"hour": "clock", "minute": "clock",
                                                                 "grade_num": "grade"}


def test_one_to_one_pair_keeps_the_earlier_column(tmp_path):
    frame = _table()[["grade_num", "x", "grade"]]
    assert _sources(_derived(frame, tmp_path)) == {"grade": "grade_num"}


def test_a_chain_derives_every_column_from_its_root(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.integers(0, 12, size=500)
    frame = pd.DataFrame({"c": (a // 4).astype(str), "b": a // 2, "a": a.astype(str), "noise": rng.normal(size=500)})
    # a -> b -> c; neither b nor c determines a, so a is the root of both, although it comes last
    assert _sources(_derived(frame, tmp_path)) == {"c": "a", "b": "a"}


def test_many_valued_or_constant_columns_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    n = 400
    many = rng.permutation(n) // 2  # 200 values of 2 rows each: every column is a function of it by chance
    frame = pd.DataFrame({"many": many, "flag": rng.choice(["u", "v"], size=n), "const": "k",
                          "y": rng.choice(["p", "q", "r"], size=n)})
    assert _derived(frame, tmp_path) == {}


def test_null_is_a_value_of_its_own(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.choice(["p", "q", None], size=500)
    b = np.where(a == "p", "one", np.where(a == "q", "two", "none"))
    derived = _derived(pd.DataFrame({"a": a, "b": b, "x": rng.normal(size=500)}), tmp_path / "1")
    assert derived["b"]["map"] == [["p", "one"], ["q", "two"], [None, "none"]]
    # NULL rows with two different B values: no dependency
    b_mixed = b.copy()
    b_mixed[np.flatnonzero(pd.isna(a))[:3]] = "one"
    assert _derived(pd.DataFrame({"a": a, "b": b_mixed}), tmp_path / "2") == {}


def test_keys_and_character_columns_take_no_part(tmp_path):
    # a context key and a character column (first in the order) that each determine grade: neither takes part
    frame = _table(600)
    frame.insert(0, "code", frame["grade"] + "-x")
    frame["id"] = np.random.default_rng(4).integers(0, 25, len(frame)) * 4 + frame["grade_num"]  # 100 subjects
    derived = _derived(frame, tmp_path, tgt_context_key="id", tgt_encoding_types={"code": "TABULAR_CHARACTER"})
    assert _sources(derived) == {"hour": "clock", "minute": "clock", "grade_num": "grade"}


def test_nothing_is_detected_under_differential_privacy(tmp_path):
    grades = _table()["grade"]
    frame = pd.DataFrame({"grade": grades, "grade_upper": grades.str.upper()})
    assert _sources(_derived(frame, tmp_path / "exact")) == {"grade_upper": "grade"}
    ws = sg.split(frame, workspace_dir=tmp_path / "dp", verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False, differential_privacy={"epsilon": 10.0, "delta": 1e-5})
    assert ws.read_stats("tgt")["columns"]["grade"]["categories"]  # the DP release publishes the categories
    assert ws.read_stats("tgt")["derived_columns"] == {}


# -- privacy ---------------------------------------------------------------------------------------------

def test_rare_values_are_neither_stored_nor_generated(tmp_path):
    frame = _table(400)
    rare = np.arange(3)  # a clock time held by 3 rows, with an hour no other row has
    frame.loc[rare, ["clock", "hour", "minute"]] = [2359, 23, 59]
    frame["grade"] = frame["grade"].astype(object)
    frame.loc[rare, ["grade", "grade_num"]] = ["z", 9]  # a rare category, with a value only it has
    synth = TabularSynthesizer(max_epochs=1, random_state=0, verbose=False).fit(frame)
    stored = synth.stats_["derived_columns"]
    assert 3 < MIN_SUBJECTS_PER_ENTRY
    assert [2359.0, 23.0] not in stored["hour"]["map"] and [2359.0, 59.0] not in stored["minute"]["map"]
    assert all(a != "z" and b != 9.0 for a, b in stored["grade_num"]["map"])
    out = synth.sample(2000, random_state=1)
    assert not (out["grade"] == "z").any() and not (out["grade_num"] == 9).any()
    assert not (out["clock"] == 2359).any()


# -- generation ------------------------------------------------------------------------------------------

def test_relations_hold_on_every_generated_row(fitted):
    out = fitted.sample(1000, random_state=1)
    assert _agreement(out) == (1.0, 1.0, 1.0)
    assert out.dtypes.to_dict() == fitted.sample(5, random_state=2).dtypes.to_dict()
    assert out["hour"].dtype == np.int64


def test_the_option_off_keeps_the_model_draws(fitted):
    on = fitted.sample(1000, random_state=1)
    off = fitted.sample(1000, random_state=1, derived_columns=False)
    assert min(_agreement(off)) < 1.0  # a one-epoch model does not learn the relations exactly
    # the same rows: only the derived columns differ
    pd.testing.assert_frame_equal(on.drop(columns=["hour", "minute", "grade_num"]),
                                  off.drop(columns=["hour", "minute", "grade_num"]))
    with pytest.raises(InvalidParameterError, match="'derived_columns' parameter of TabularSynthesizer.sample"):
        fitted.sample(5, derived_columns="yes")


def test_seeded_and_rebalanced_columns_are_kept(fitted):
    seeds = pd.DataFrame({"hour": [23, 5, 7, 12]})  # 23 never occurs; the other hours do
    out = fitted.sample(seed_data=seeds, random_state=1)
    assert out["hour"].tolist() == [23, 5, 7, 12]
    assert (out["minute"] == out["clock"] % 100).all()  # minute is not seeded: still derived
    seeded_clock = fitted.sample(seed_data=pd.DataFrame({"clock": [645, 1330]}), random_state=1)
    assert seeded_clock["hour"].tolist() == [6, 13] and seeded_clock["minute"].tolist() == [45, 30]
    rebalanced = fitted.sample(2000, rebalancing={"column": "grade", "probabilities": {"a": 0.7}}, random_state=1)
    assert (rebalanced["grade"] == "a").mean() > 0.6
    assert (rebalanced["grade_num"] == rebalanced["grade"].map(GRADES)).mean() == 1.0


def test_joblib_round_trip_and_parquet_path(fitted, tmp_path):
    joblib.dump(fitted, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    pd.testing.assert_frame_equal(loaded.sample(300, random_state=4), fitted.sample(300, random_state=4))
    folder = loaded.sample_to_parquet(tmp_path / "parts", 500, batch_size=200, random_state=4)
    assert _agreement(pd.read_parquet(folder)) == (1.0, 1.0, 1.0)


def test_engine_generate_derives_too(tmp_path):
    ws = sg.split(_table(300), workspace_dir=tmp_path / "ws", verbose=False)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    sg.train(workspace_dir=ws, max_epochs=1, random_state=0, verbose=False)
    sg.generate(workspace_dir=ws, sample_size=400, random_state=1, verbose=False)
    assert _agreement(sg.read_synthetic_data(ws)) == (1.0, 1.0, 1.0)


def test_imputed_columns_get_no_null_from_a_map():
    columns = {"a": {"encoding_type": "TABULAR_CATEGORICAL", "dtype": "object"},
               "b": {"encoding_type": "TABULAR_CATEGORICAL", "dtype": "object"}}
    derived = {"b": {"from": "a", "map": [["p", "one"], ["q", None]]}}
    frame = pd.DataFrame({"a": ["p", "q", "r"], "b": ["x", "y", "z"]})
    assert derive(frame.copy(), derived, columns)["b"].tolist() == ["one", None, "z"]
    assert derive(frame.copy(), derived, columns, never_null=["b"])["b"].tolist() == ["one", "y", "z"]
    assert derive(frame.copy(), derived, columns, keep=["b"])["b"].tolist() == ["x", "y", "z"]


def test_sequential_target_and_context_derive(tmp_path):
    rng = np.random.default_rng(5)
    n_subjects, steps = 60, 8
    kinds = rng.choice(["small", "large"], size=n_subjects)
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "kind": kinds,
                        "seats": np.where(kinds == "small", 50, 200), "year": rng.integers(1990, 2010, n_subjects)})
    clock = rng.choice(CLOCKS, size=n_subjects * steps)
    tgt = pd.DataFrame({"id": np.repeat(np.arange(n_subjects), steps), "clock": clock, "hour": clock // 100,
                        "minute": clock % 100, "delay": rng.normal(size=n_subjects * steps)})
    synth = TabularSynthesizer(tgt_context_key="id", ctx_primary_key="id", max_epochs=1, random_state=0,
                               verbose=False).fit(tgt, context=ctx)
    assert _sources(synth.stats_["derived_columns"]) == {"hour": "clock", "minute": "clock"}
    assert _sources(synth.ctx_stats_["derived_columns"]) == {"seats": "kind"}
    out = synth.sample(context=ctx, random_state=1)
    assert ((out["hour"] == out["clock"] // 100) & (out["minute"] == out["clock"] % 100)).all()
    planes, flights = synth.sample(return_context=True, random_state=2)
    assert (planes["seats"] == planes["kind"].map({"small": 50, "large": 200})).all()
    assert ((flights["hour"] == flights["clock"] // 100) & (flights["minute"] == flights["clock"] % 100)).all()
    off = synth.sample(context=ctx, random_state=1, derived_columns=False)
    pd.testing.assert_frame_equal(out.drop(columns=["hour", "minute"]), off.drop(columns=["hour", "minute"]))
    prefix = tgt.groupby("id").head(1).assign(hour=23)  # a seed prefix whose hour contradicts its clock
    seeded = synth.sample(context=ctx, seed_data=prefix, random_state=3)
    assert (seeded.groupby("id").head(1)["hour"] == 23).all()


def test_impute_fills_a_derived_column_from_its_determinant(fitted):
    rows = _table(200, seed=7)
    holes = rows.copy()
    holes.loc[::2, "hour"] = np.nan
    holes.loc[1::4, ["clock", "minute"]] = np.nan  # the determinant itself imputed too
    filled = fitted.impute(holes, random_state=0)
    assert filled[["clock", "hour", "minute"]].notna().all().all()
    assert (filled["hour"] == filled["clock"] // 100)[::2].all()  # imputed hours follow their clock
    assert (filled["minute"] == filled["clock"] % 100).all()  # imputed with the clock: from the imputed clock
    pd.testing.assert_frame_equal(filled[1::2].drop(columns=["clock", "minute"]),
                                  holes[1::2].drop(columns=["clock", "minute"]))  # observed cells verbatim


def test_a_map_left_with_one_value_by_protection_is_not_stored(tmp_path):
    rng = np.random.default_rng(6)
    model = np.array(["m1"] * 200 + ["m2"] * 200 + ["m3"] * 3)
    kind = np.where(model == "m3", "single", "multi")  # the only "single" model is rare
    frame = pd.DataFrame({"model": model, "kind": kind, "x": rng.normal(size=len(model))})
    assert _derived(frame, tmp_path / "protected") == {}
    ws = sg.split(frame, workspace_dir=tmp_path / "open", verbose=False)
    sg.analyze(workspace_dir=ws, value_protection=False, random_state=0, verbose=False)
    assert ws.read_stats("tgt")["derived_columns"]["kind"]["map"] == [["m1", "multi"], ["m2", "multi"],
                                                                      ["m3", "single"]]


def test_predictions_of_a_derived_column_follow_its_map(fitted):
    rows = _table(300, seed=8)
    X = rows.drop(columns=["hour", "minute", "grade_num"])
    encodings = {c: fitted.stats_["columns"][c]["encoding_type"] for c in ("hour", "grade_num")}
    assert encodings == {"hour": "TABULAR_NUMERIC_DISCRETE", "grade_num": "TABULAR_NUMERIC_DISCRETE"}
    # a one-epoch model alone does not get the relation exactly; the map does, for every row
    proba = fitted.predict_proba(X, target="hour")
    classes = fitted.predict_classes("hour")
    assert proba.shape == (300, len({c // 100 for c in CLOCKS})) and sorted(classes) == sorted({c // 100 for c in CLOCKS})
    assert (proba.max(axis=1) == 1.0).all() and np.allclose(proba.sum(axis=1), 1.0)
    assert (classes[proba.argmax(axis=1)] == rows["clock"] // 100).all()
    assert (fitted.predict(X, target="hour") == rows["clock"] // 100).all()
    assert (fitted.predict(X, target="grade_num") == rows["grade"].map(GRADES)).all()
    # without its determinant the target is the model's prediction, not a certainty
    assert (fitted.predict_proba(X.drop(columns="clock"), target="hour").max(axis=1) < 1.0).all()
    # a determinant value the map lacks keeps the model's prediction
    assert (fitted.predict_proba(X.head(5).assign(clock=2359), target="hour").max(axis=1) < 1.0).all()


def test_a_numeric_derived_target_is_predicted_from_its_map():
    rows = _table(600, seed=9)
    synth = TabularSynthesizer(max_epochs=1, random_state=0, verbose=False,
                               tgt_encoding_types={"minute": "TABULAR_NUMERIC_BINNED"}).fit(rows)
    assert synth.stats_["derived_columns"]["minute"]["from"] == "clock"
    X = rows.head(200).drop(columns=["minute"])
    predicted = synth.predict(X, target="minute")  # the median path: binned values are not classes
    assert (predicted == rows["clock"].head(200) % 100).all()
    assert predicted.dtype == rows["minute"].dtype
    off_map = synth.predict(X.head(20).assign(clock=2359), target="minute")
    assert not (off_map == 59).all()  # an unmapped determinant keeps the model's median
