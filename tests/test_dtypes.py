"""Dtypes round-trip: recorded at split, published by analyze, restored at decoding; unrestorable columns refused."""

import datetime
import decimal
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from synthgen import TabularSynthesizer, Workspace, analyze, split
from synthgen._dtypes import restore_dtype
from synthgen.stages._codec import decode_table, encode_table

N = 60


def _round_trip(frame: pd.DataFrame, workspace, *, value_protection=False) -> tuple[pd.DataFrame, dict]:
    """Split and analyze ``frame``, then encode and decode it with the published stats."""
    split(frame, workspace_dir=workspace, random_state=0)
    analyze(value_protection=value_protection, workspace_dir=workspace, random_state=0)
    columns = Workspace(workspace).read_stats("tgt")["columns"]
    rng = np.random.default_rng(0)
    return decode_table(encode_table(frame, columns, table="tgt", rng=rng), columns, rng=rng), columns


def _objects(values) -> pd.Series:
    return pd.Series((values * N)[:N], dtype=object)


@pytest.mark.parametrize("values", [
    [True, False, None],
    [1, -2, 2**70, None],
    [1.5, -0.25, 1e16, None],
    [decimal.Decimal("3.25"), decimal.Decimal("1.5"), decimal.Decimal("-7"), None],
], ids=["bool", "int", "float", "Decimal"])
def test_object_columns_of_python_values_come_back_as_those_values(values, workspace):
    frame = pd.DataFrame({"v": _objects(values)})
    decoded, _ = _round_trip(frame, workspace)
    assert decoded["v"].dtype == object
    assert [(type(v), str(v)) for v in decoded["v"]] == [(type(v), str(v)) for v in frame["v"]]


@pytest.mark.parametrize("dtype", [
    pd.CategoricalDtype(["c", "b", "a", "unused"], ordered=True),
    pd.CategoricalDtype([30, 10, 20, 40]),
    pd.CategoricalDtype([2.5, 0.5, 1.5, 9.0], ordered=True),
    pd.CategoricalDtype([True, False]),
    pd.CategoricalDtype(pd.DatetimeIndex(["2021-03-28 01:30", "2020-01-01", "2022-06-01"], tz="Europe/Berlin")
                        .as_unit("us")),
], ids=["str-ordered", "int", "float", "bool", "datetime-tz"])
def test_category_columns_keep_every_category_their_order_type_and_orderedness(dtype, workspace):
    used = list(dtype.categories[:3]) if len(dtype.categories) > 2 else list(dtype.categories)
    frame = pd.DataFrame({"c": pd.Series((used * N)[:N] + [None], dtype=dtype)})
    decoded, _ = _round_trip(frame, workspace)
    assert decoded["c"].dtype == dtype
    pd.testing.assert_index_equal(decoded["c"].cat.categories, dtype.categories)
    pd.testing.assert_series_equal(decoded["c"], frame["c"], check_names=False)


def test_protected_categories_leave_the_published_category_dtype(workspace):
    dtype = pd.CategoricalDtype(["z", "rare", "a", "unused"], ordered=True)
    frame = pd.DataFrame({"c": pd.Series(["z", "a"] * 30 + ["rare"], dtype=dtype)})
    decoded, columns = _round_trip(frame, workspace, value_protection=True)
    assert columns["c"]["dtype"] == {"dtype": "category", "categories": ["z", "a", "unused"],
                                     "categories_dtype": "str", "ordered": True}
    assert decoded["c"].dtype == pd.CategoricalDtype(["z", "a", "unused"], ordered=True)
    assert decoded["c"].isna().sum() == 1  # the protected value's row comes back NULL, not as "rare"


def test_old_plain_dtype_names_still_restore():
    decoded = pd.Series(["True", "_RARE_", None, "False"], dtype="str")
    assert restore_dtype(decoded, "bool").tolist() == [True, pd.NA, pd.NA, False]
    assert restore_dtype(decoded, "category").dtype == "category"


BERLIN, UTC = pd.Timestamp("2020-01-01", tz="Europe/Berlin"), pd.Timestamp("2020-01-01", tz="UTC")


@pytest.mark.parametrize("values, declared, message", [
    ([BERLIN, UTC], None,
     "Column 'v' of tgt_data holds Python datetimes (time zones Europe/Berlin, UTC) in an object column, which "
     "cannot come back as they went in; convert it to a datetime64 column, e.g. "
     "df['v'] = pd.to_datetime(df['v'], utc=True)."),
    ([BERLIN, UTC], {"v": "TABULAR_DATETIME"},
     "Column 'v' of tgt_data holds Python datetimes (time zones Europe/Berlin, UTC) in an object column"),
    ([datetime.date(2020, 1, 1)], None,
     "Column 'v' of tgt_data holds Python dates in an object column, which cannot come back as they went in; "
     "convert it to a datetime64 column, e.g. df['v'] = pd.to_datetime(df['v'], utc=True)."),
    ([datetime.timedelta(days=1)], None,
     "Column 'v' of tgt_data holds Python timedeltas in an object column, which cannot come back as they went "
     "in; convert it to numbers, e.g. df['v'] = pd.to_timedelta(df['v']).dt.total_seconds()."),
    ([b"x", b"y"], None,
     "Column 'v' of tgt_data holds Python bytes values in an object column, which cannot come back as they went "
     "in; convert it to strings (df['v'] = df['v'].astype(str)) or to numbers."),
    (pd.Categorical([decimal.Decimal("1.5")]), None,
     "Column 'v' of tgt_data is a category column whose categories are decimal values (object), which cannot be "
     "restored; convert them to strings, e.g. df['v'] = df['v'].cat.rename_categories(str)."),
    (pd.Categorical([1, 2]), {"v": "TABULAR_NUMERIC_AUTO"},
     "Column 'v' of tgt_data has a category dtype, so tgt_encoding_types must leave it TABULAR_CATEGORICAL (its "
     "categories, their order and 'ordered' come back); got TABULAR_NUMERIC_AUTO. To encode it as "
     "TABULAR_NUMERIC_AUTO, convert it first, e.g. df['v'] = df['v'].astype('int64')."),
], ids=["mixed-tz", "mixed-tz-declared", "date", "timedelta", "bytes", "decimal-categories", "category-numeric"])
def test_columns_that_cannot_come_back_are_refused_at_split(values, declared, message, workspace):
    column = pd.Series(values, dtype=object) if isinstance(values, list) else pd.Series(values)
    frame = pd.DataFrame({"v": column, "x": np.arange(len(column))})
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        split(frame, tgt_encoding_types=declared, workspace_dir=workspace)
    assert not (workspace / "OriginalData").exists()


def test_context_columns_are_checked_too(workspace):
    ctx = pd.DataFrame({"id": [1, 2], "when": pd.Series([datetime.date(2020, 1, 1)] * 2, dtype=object)})
    tgt = pd.DataFrame({"id": [1, 2, 2], "x": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"^Column 'when' of ctx_data holds Python dates"):
        split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id", workspace_dir=workspace)


# -- no internal token and no protected value in sampled output -------------------------------------------------

N_ROWS = 1000


@pytest.fixture(scope="module")
def protected_fit():
    """Columns whose protected values cannot be written as ``_RARE_``, and columns without publishable values."""
    common = N_ROWS - 3
    frame = pd.DataFrame({
        "flag": [True] * common + [False] * 3,
        "code": pd.Series([7] * common + [99] * 3, dtype=object),
        "level": pd.Series(pd.Categorical([1] * common + [2] * 3, categories=[1, 2, 3])),
        "word": ["common"] * common + ["secret"] * 3,
        "user_id": [f"u{i}" for i in range(N_ROWS)],
        "tiny_flag": pd.Series([True, False, None] + [None] * (N_ROWS - 3), dtype="boolean"),
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(frame)
    return model, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_columns_without_publishable_categories_are_named_at_fit(protected_fit):
    _, messages = protected_fit
    assert (
        "Column 'user_id' of tgt_data: value protection publishes none of its 1000 categories (each is held by "
        "fewer than 5 to 7 subjects), so it is sampled as NULL in every row. If it identifies rows, make it a key "
        "or drop it; for free text or codes declare TABULAR_CHARACTER; convert numbers or dates to a numeric or "
        "datetime dtype; or fit with value_protection=False."
    ) in messages
    assert any(m.startswith("Column 'tiny_flag' of tgt_data: value protection publishes none of its 2 ") for m in
               messages)


@pytest.mark.parametrize("method", ["SAMPLE", "CONSTANT"])
def test_columns_without_publishable_categories_sample_null_in_their_dtype(protected_fit, method):
    model, _ = protected_fit
    sample = model.sample(2000, rare_category_replacement_method=method, random_state=1)
    assert sample["user_id"].isna().all() and sample["user_id"].dtype == "str"
    assert sample["tiny_flag"].isna().all() and sample["tiny_flag"].dtype == "boolean"


@pytest.mark.parametrize("method", ["SAMPLE", "CONSTANT"])
def test_protected_values_never_come_back_and_the_token_only_in_string_columns(protected_fit, method):
    model, _ = protected_fit
    sample = model.sample(20_000, rare_category_replacement_method=method, random_state=2)
    assert not (sample["flag"] == False).any()  # noqa: E712
    assert set(sample["code"].dropna()) == {7} and {type(v) for v in sample["code"].dropna()} == {int}
    assert set(sample["level"].dropna()) == {1}
    assert sample["level"].dtype == pd.CategoricalDtype([1, 3])  # 2 is protected; 3 was never used
    assert "secret" not in set(sample["word"].dropna())
    if method == "SAMPLE":
        assert sample["flag"].dtype == bool and sample["code"].notna().all() and sample["level"].notna().all()
        assert set(sample["word"]) == {"common"}
    else:  # CONSTANT: the token where it is a string of the column's type, NULL where it is not
        assert sample["flag"].dtype == "boolean" and sample["flag"].isna().any()
        assert sample["code"].isna().any() and sample["level"].isna().any()
        assert set(sample["word"]) == {"common", "_RARE_"}


def test_imputed_columns_get_published_values_for_protected_rows_under_constant(protected_fit):
    model, _ = protected_fit
    sample = model.sample(20_000, rare_category_replacement_method="CONSTANT",
                          imputation={"columns": ["flag", "level"]}, random_state=2)
    assert sample["flag"].dtype == bool and sample["flag"].all()
    assert sample["level"].notna().all() and set(sample["level"]) == {1}
