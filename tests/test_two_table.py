"""Two-table data end to end: planes (context) and their flights (sequences)."""

import io
import re
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


def test_default_sample_generates_one_sequence_per_synthetic_context_row(fitted, planes_and_flights):
    planes, flights = planes_and_flights
    context, sample = fitted.sample(return_context=True, random_state=1)
    assert len(context) == len(planes)
    assert not context["tailnum"].isin(planes["tailnum"]).any()
    assert list(sample.columns) == COLUMNS
    assert sample.dtypes.to_dict() == flights.dtypes.to_dict()
    assert set(sample["tailnum"]) <= set(context["tailnum"])
    lengths = sample.groupby("tailnum").size().reindex(context["tailnum"], fill_value=0)
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


def test_n_samples_is_the_number_of_entities(fitted, planes_and_flights):
    planes, _ = planes_and_flights
    context, sample = fitted.sample(20, return_context=True, random_state=4)
    assert len(context) == 20
    assert set(sample["tailnum"]) <= set(context["tailnum"])
    given, _ = fitted.sample(5, context=planes, return_context=True, random_state=4)
    pd.testing.assert_frame_equal(given, planes.head(5))
    with pytest.raises(ValueError, match="exceeds the 5 context rows"):
        fitted.sample(10, context=planes.head(5))


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
    context, sample = synth.fit(flights).sample(return_context=True, random_state=0)
    # a context of keys only: new keys, one per training entity
    assert list(context.columns) == ["tailnum"]
    assert len(context) == flights["tailnum"].nunique() and context["tailnum"].is_unique
    assert not context["tailnum"].isin(flights["tailnum"]).any()
    assert set(sample["tailnum"]) <= set(context["tailnum"])


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
    with pytest.raises(ValueError, match=r"^context lacks the context columns \['seats'\]"):
        fitted.sample(context=pd.DataFrame({"tailnum": ["X"], "engines": [2], "type": ["t"]}))
    with pytest.raises(ValueError, match="seed_data has context keys that are not among the context rows"):
        fitted.sample(seed_data=pd.DataFrame({"tailnum": ["nope"], "carrier": ["UA"], "origin": ["EWR"],
                                              "dest": ["ORD"], "time_hour": [pd.Timestamp("2013-01-01")]}),
                      context=pd.DataFrame({"tailnum": ["X"], "engines": [2], "seats": [3], "type": ["t"]}))


def _customers_and_orders(max_orders: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """60 customers whose ids, e-mails and phone numbers are distinctive strings, and 0..max_orders orders each."""
    rng = np.random.default_rng(7)
    n = 60
    customers = pd.DataFrame({
        "customer_id": [f"CUST-QX{i:04d}" for i in range(n)],
        "email": [f"person.{i:04d}.zyxw@mailhost-{i % 7}.example" for i in range(n)],
        "phone": [f"+43-660-{i:04d}-{(i * 37) % 1000:03d}" for i in range(n)],
        "age": rng.integers(18, 80, n),
        "segment": rng.choice(["retail", "business", "student"], n),
    })
    counts = rng.integers(0, max_orders + 1, n)
    orders = pd.DataFrame({
        "customer_id": np.repeat(customers["customer_id"].to_numpy(), counts),
        "amount": rng.gamma(2.0, 30.0, int(counts.sum())).round(2),
        "channel": rng.choice(["web", "store"], int(counts.sum())),
    })
    return customers, orders


@pytest.fixture(scope="module", params=[6, 1], ids=["sequential", "flat"])
def customers_fitted(request):
    customers, orders = _customers_and_orders(request.param)
    # e-mails as characters (a model per position), phone numbers as categories (each one rare: none published)
    synth = TabularSynthesizer(tgt_context_key="customer_id", ctx_primary_key="customer_id", model="small",
                               ctx_encoding_types={"email": "TABULAR_CHARACTER"}, max_epochs=3, random_state=0)
    with pytest.warns(UserWarning, match="Column 'phone' of ctx_data: value protection publishes none"):
        return customers, orders, synth.fit(orders, context=customers)


def test_pickle_holds_no_context_value(customers_fitted):
    customers, _, synth = customers_fitted
    buffer = io.BytesIO()
    joblib.dump(synth, buffer)
    dumped = buffer.getvalue()
    values = [*customers["customer_id"], *customers["email"], *customers["phone"]]
    assert [v for v in values if v.encode() in dumped] == []


def test_default_sample_is_a_synthetic_context_with_its_sequences(customers_fitted):
    customers, orders, synth = customers_fitted
    context, target = synth.sample(return_context=True, random_state=1)
    assert len(context) == len(customers)
    assert list(context.columns) == list(customers.columns)
    assert context.dtypes.to_dict() == customers.dtypes.to_dict()
    # new keys, unique, none of them a real customer's; no real e-mail comes back
    assert context["customer_id"].is_unique
    assert not context["customer_id"].isin(customers["customer_id"]).any()
    # no phone number is published, so none comes back (e-mails are drawn character by character: regular ones
    # like these can be regenerated from the published per-position characters, as in a target column)
    assert context["phone"].isna().all()
    assert set(context["segment"]) <= set(customers["segment"])
    # the targets belong to the synthetic context rows
    assert list(target.columns) == list(orders.columns)
    assert len(target) > 0
    assert target["customer_id"].isin(context["customer_id"]).all()
    # without return_context, the same target table alone
    alone = synth.sample(random_state=1)
    pd.testing.assert_frame_equal(alone, target)
    assert not alone["customer_id"].isin(customers["customer_id"]).any()


def test_n_samples_is_the_number_of_synthetic_context_rows(customers_fitted):
    _, _, synth = customers_fitted
    context, target = synth.sample(100, return_context=True, random_state=2)
    assert len(context) == 100 and context["customer_id"].is_unique
    assert target["customer_id"].isin(context["customer_id"]).all()


def test_given_context_is_returned_as_given(customers_fitted):
    customers, _, synth = customers_fitted
    given = customers.iloc[10:15]
    context, target = synth.sample(context=given, return_context=True, random_state=3)
    pd.testing.assert_frame_equal(context, given.reset_index(drop=True))
    assert set(target["customer_id"]) <= set(given["customer_id"])


def test_context_model_keeps_to_the_epoch_budget(customers_fitted):
    _, _, synth = customers_fitted
    assert 0 < synth.ctx_history_["epoch"].iloc[-1] <= 3
    assert synth.history_["epoch"].iloc[-1] <= 3


def test_sample_arguments_that_need_a_context(customers_fitted, adult):
    customers, orders, synth = customers_fitted
    with pytest.raises(ValueError, match="seed_data of a model with a context table refers to context rows by its "
                                         "context key 'customer_id'; pass those rows as context="):
        synth.sample(seed_data=orders.head(2))
    flat = TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(adult.head(200))
    with pytest.raises(ValueError, match="return_context=True needs a model fitted with a context table"):
        flat.sample(5, return_context=True)


def test_continued_training_continues_the_context_model(customers_fitted):
    customers, orders, _ = customers_fitted
    customers = customers.drop(columns="phone")
    synth = TabularSynthesizer(tgt_context_key="customer_id", ctx_primary_key="customer_id", model="small",
                               ctx_encoding_types={"email": "TABULAR_CHARACTER"}, max_epochs=1,
                               random_state=0).fit(orders, context=customers)
    first = synth._context_model.bundle.weights
    synth.set_params(model_state_strategy="REUSE", max_epochs=2)
    synth.fit(orders, context=customers)
    assert synth._context_model.bundle.weights != first
    context, target = synth.sample(return_context=True, random_state=0)
    assert target["customer_id"].isin(context["customer_id"]).all()
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
    context, empty = fitted.sample(0, return_context=True)
    assert len(context) == 0 and len(empty) == 0
    assert context.dtypes.to_dict() == planes.dtypes.to_dict()


def test_engine_draws_a_subset_of_the_training_context_and_the_estimator_new_subjects(tmp_path):
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
    assert len(engine_subjects) == 12
    training_order = pd.concat([pd.read_parquet(p) for p in sorted((ws / "OriginalData" / "ctx-data").glob("*"))])
    assert engine_subjects != training_order["id"].head(12).tolist()  # a random subset, not the first rows
    # the estimator (here on the same workspace) generates 12 synthetic people instead, numbered anew
    synth = TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(sg.Workspace(ws))
    context, target = synth.sample(12, return_context=True, random_state=7)
    assert context["id"].tolist() == list(range(12))
    assert target["person"].tolist() == context["id"].tolist()  # one row per subject
    with pytest.raises(ValueError, match=r"^sample_size \(61\) exceeds the 60 training context rows; pass ctx_data="):
        sg.generate(sample_size=61, workspace_dir=ws)
    # each entry point names its own parameters: ctx_data / sample_size of generate, context / n_samples of sample
    lacking = "{} lacks the context columns ['id']; it needs the context key 'id' and the columns ['group']."
    for call, names in [(lambda ctx, n: sg.generate(ctx_data=ctx, sample_size=n, workspace_dir=ws),
                         ("ctx_data", "sample_size")),
                        (lambda ctx, n: synth.sample(n, context=ctx), ("context", "n_samples"))]:
        with pytest.raises(ValueError, match="^" + re.escape(lacking.format(names[0])) + "$"):
            call(people.drop(columns="id"), None)
        with pytest.raises(ValueError, match="^" + re.escape(
                f"{names[1]} (61) exceeds the 60 context rows; generation makes the target of each context row "
                "once.") + "$"):
            call(people, 61)
