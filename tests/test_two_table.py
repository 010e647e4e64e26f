"""Two-table data end to end: planes (context) and their flights (sequences)."""

import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest

import synthgen as sg
from synthgen import TabularSynthesizer

COLUMNS = ["tailnum", "carrier", "origin", "dest", "time_hour"]


@pytest.fixture(scope="module")
def planes_and_flights():
    from conftest import load_dataset

    planes = load_dataset("planes").sample(n=150, random_state=5).reset_index(drop=True)
    flights = load_dataset("flights", columns=COLUMNS)
    flights = flights[flights["tailnum"].isin(planes["tailnum"])].reset_index(drop=True)
    # planes without flights: zero-length sequences
    idle = pd.DataFrame({"tailnum": [f"IDLE{i}" for i in range(40)], "engines": 2, "seats": 100})
    planes = pd.concat([planes[["tailnum", "engines", "seats", "type"]], idle], ignore_index=True)
    planes["type"] = planes["type"].fillna("unknown")
    return planes, flights


@pytest.fixture(scope="module")
def fitted(planes_and_flights):
    planes, flights = planes_and_flights
    synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum", model="small",
                               tgt_encoding_types={"time_hour": "TABULAR_DATETIME_RELATIVE"},
                               max_epochs=100, max_sequence_window=50, random_state=0)
    return synth.fit(flights, context=planes)


def test_fit_learns_a_sequential_model(fitted):
    assert fitted.stats_["is_sequential"] is True
    assert fitted.ctx_stats_ is not None
    assert fitted.history_["val_loss"].iloc[-1] < fitted.history_["val_loss"].iloc[0]


def test_sample_generates_one_sequence_per_training_context_row(fitted, planes_and_flights):
    planes, flights = planes_and_flights
    sample = fitted.sample(random_state=1)
    assert list(sample.columns) == COLUMNS
    assert sample.dtypes.to_dict() == flights.dtypes.to_dict()
    assert set(sample["tailnum"]) <= set(planes["tailnum"])
    lengths = sample.groupby("tailnum").size().reindex(planes["tailnum"], fill_value=0)
    original = flights.groupby("tailnum").size().reindex(planes["tailnum"], fill_value=0)
    # the length distribution: zero-length planes exist, the median is in the right region
    assert (lengths == 0).sum() >= 10
    assert 0.5 * np.median(original) <= np.median(lengths) <= 2 * np.median(original) + 1
    assert lengths.max() <= fitted.stats_["seq_len"]["max"]


def test_sequences_keep_carrier_and_time_order(fitted):
    sample = fitted.sample(random_state=2)
    per_plane = sample.groupby("tailnum")
    long_enough = per_plane.size() >= 3
    one_carrier = (per_plane["carrier"].nunique() == 1)[long_enough]
    assert one_carrier.mean() > 0.8
    in_order = per_plane["time_hour"].apply(lambda t: t.is_monotonic_increasing)[long_enough]
    assert in_order.mean() > 0.95


def test_new_context_rows_at_generation(fitted):
    new = pd.DataFrame({"tailnum": ["NEW1", "NEW2", "NEW3"], "engines": [2, 2, 4], "seats": [55, 180, 400],
                        "type": ["Fixed wing multi engine"] * 3})
    sample = fitted.sample(context=new, random_state=3)
    assert set(sample["tailnum"]) <= {"NEW1", "NEW2", "NEW3"}


def test_n_samples_draws_a_subset_of_training_subjects(fitted, planes_and_flights):
    sample = fitted.sample(20, random_state=4)
    assert sample["tailnum"].nunique() <= 20
    with pytest.raises(ValueError, match="exceeds the 190 training context rows"):
        fitted.sample(10_000)


def test_seeded_prefixes_are_kept_and_continued(fitted, planes_and_flights):
    planes, flights = planes_and_flights
    plane = flights["tailnum"].iloc[0]
    seed = flights[flights["tailnum"] == plane].head(3)
    sample = fitted.sample(seed_data=seed, context=planes[planes["tailnum"] == plane], random_state=5)
    assert len(sample) >= 3
    pd.testing.assert_frame_equal(sample.head(3).reset_index(drop=True), seed.reset_index(drop=True))


def test_engine_generate_defaults_to_the_training_context(planes_and_flights, tmp_path):
    planes, flights = planes_and_flights
    ws = tmp_path / "ws"
    sg.split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum", workspace_dir=ws,
             random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(model="small", max_epochs=1, workspace_dir=ws, random_state=0)
    sg.generate(workspace_dir=ws, random_state=0)
    synthetic = sg.read_synthetic_data(ws)
    assert set(synthetic["tailnum"]) <= set(planes["tailnum"])
    assert list(synthetic.columns) == COLUMNS


def test_sequences_without_a_context_table(planes_and_flights):
    _, flights = planes_and_flights
    synth = TabularSynthesizer(tgt_context_key="tailnum", model="small", max_epochs=1, random_state=0)
    sample = synth.fit(flights).sample(random_state=0)
    assert set(sample["tailnum"]) <= set(flights["tailnum"])


def test_pickle_round_trip_in_a_fresh_process(fitted, tmp_path):
    expected = fitted.sample(15, random_state=6)
    joblib.dump(fitted, tmp_path / "model.joblib")
    code = textwrap.dedent(f"""
        import joblib
        synth = joblib.load({str(tmp_path / "model.joblib")!r})
        synth.sample(15, random_state=6, device="cpu").to_pickle({str(tmp_path / "out.pkl")!r})
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "out.pkl"), expected)


@pytest.mark.parametrize(
    "change, kwargs, message",
    [
        (lambda p, f: (p.iloc[1:], f), {}, r"rows of tgt_data have a tgt_context_key 'tailnum' that is not a "
                                            r"ctx_primary_key of ctx_data"),
        (lambda p, f: (p, f.drop(columns="tailnum")), {}, r"tgt_context_key 'tailnum' is not a column of tgt_data"),
        (lambda p, f: (pd.concat([p, p.iloc[:2]]), f), {}, r"ctx_primary_key 'tailnum' is not unique: 2 duplicate"),
        (lambda p, f: (p.drop(columns="tailnum"), f), {}, r"ctx_primary_key 'tailnum' is not a column of ctx_data"),
    ],
)
def test_bad_two_table_input(planes_and_flights, change, kwargs, message):
    planes, flights = change(*planes_and_flights)
    synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum", max_epochs=1, **kwargs)
    with pytest.raises(ValueError, match=message):
        synth.fit(flights, context=planes)


def test_bad_context_at_generation(fitted):
    with pytest.raises(ValueError, match=r"ctx_data lacks the context columns \['seats'\]"):
        fitted.sample(context=pd.DataFrame({"tailnum": ["X"], "engines": [2], "type": ["t"]}))
    with pytest.raises(ValueError, match="seed_data has context keys that are not among the context rows"):
        fitted.sample(seed_data=pd.DataFrame({"tailnum": ["nope"], "carrier": ["UA"], "origin": ["EWR"],
                                              "dest": ["ORD"], "time_hour": [pd.Timestamp("2013-01-01")]}),
                      context=pd.DataFrame({"tailnum": ["X"], "engines": [2], "seats": [3], "type": ["t"]}))


@pytest.mark.parametrize("n_samples", [-1, 1.5])
def test_n_samples_of_two_table_models_is_validated(fitted, n_samples):
    with pytest.raises(ValueError) as error:
        fitted.sample(n_samples)
    assert str(error.value) == ("The 'n_samples' parameter of TabularSynthesizer.sample must be an int in the range "
                                f"[0, inf) or None. Got {n_samples!r} instead.")


def test_no_subjects_give_an_empty_frame_of_the_training_dtypes(fitted, planes_and_flights):
    planes, flights = planes_and_flights
    for empty in (fitted.sample(0), fitted.sample(context=planes.iloc[:0])):
        assert list(empty.columns) == COLUMNS
        assert len(empty) == 0
        assert empty.dtypes.to_dict() == flights.dtypes.to_dict()


def test_engine_and_estimator_draw_the_same_subset_of_the_training_context(tmp_path):
    rng = np.random.default_rng(0)
    people = pd.DataFrame({"id": np.arange(60), "group": rng.choice(["a", "b"], 60)})
    visits = pd.DataFrame({"person": np.arange(60), "score": rng.integers(0, 5, 60)})  # one row per subject
    ws = tmp_path / "ws"
    sg.split(visits, ctx_data=people, tgt_context_key="person", ctx_primary_key="id", workspace_dir=ws,
             random_state=0)
    sg.analyze(workspace_dir=ws, random_state=0)
    sg.encode(workspace_dir=ws, random_state=0)
    sg.train(model="small", max_epochs=1, workspace_dir=ws, random_state=0)
    sg.generate(sample_size=12, workspace_dir=ws, random_state=7)
    engine_subjects = sg.read_synthetic_data(ws)["person"].tolist()
    synth = TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(sg.Workspace(ws))
    estimator_subjects = synth.sample(12, random_state=7)["person"].tolist()
    assert len(engine_subjects) == 12
    assert engine_subjects == estimator_subjects
    training_order = pd.concat([pd.read_parquet(p) for p in sorted((ws / "OriginalData" / "ctx-data").glob("*"))])
    assert engine_subjects != training_order["id"].head(12).tolist()  # a random subset, not the first rows
    with pytest.raises(ValueError, match=r"^sample_size \(61\) exceeds the 60 training context rows; pass ctx_data="):
        sg.generate(sample_size=61, workspace_dir=ws)
