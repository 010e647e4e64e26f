"""Numeric encodings: DISCRETE, DIGIT, BINNED and AUTO on real columns and constructed data."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import check_codes

from synthgen.column_encodings import get_encoding
from synthgen.column_encodings._numeric import format_value

DATA = Path("/work/shared/data")
N_ROWS = 20_000

DISCRETE = "TABULAR_NUMERIC_DISCRETE"
DIGIT = "TABULAR_NUMERIC_DIGIT"
BINNED = "TABULAR_NUMERIC_BINNED"
AUTO = "TABULAR_NUMERIC_AUTO"

REAL_COLUMNS = [
    ("adult", "age"),
    ("adult", "fnlwgt"),
    ("adult", "capital_gain"),
    ("adult", "hours_per_week"),
    ("flights", "dep_delay"),
    ("flights", "air_time"),
    ("flights", "distance"),
    ("planes", "year"),
]


@cache
def _column(table: str, name: str) -> pd.Series:
    return (
        pd.read_parquet(DATA / f"{table}.parquet", columns=[name])[name].iloc[:N_ROWS].reset_index(drop=True)
    )


def column(table: str, name: str) -> pd.Series:
    return _column(table, name).copy()


def fit(encoding_type, values, *, value_protection=False, subjects=None, n_partitions=1, seed=0):
    """analyze (per partition) → reduce; the stats go through JSON to prove they are serializable."""
    encoding = get_encoding(encoding_type)
    subjects = np.arange(len(values)) if subjects is None else np.asarray(subjects)
    parts = np.array_split(np.arange(len(values)), n_partitions)
    partials = [encoding.analyze(values.iloc[p].reset_index(drop=True), subjects[p]) for p in parts]
    stats = encoding.reduce(partials, value_protection=value_protection, rng=np.random.default_rng(seed))
    assert json.loads(json.dumps(stats)) == stats
    assert stats["encoding_type"] != AUTO and isinstance(stats["value_protection"], bool)
    if "codes" in stats:
        assert list(stats["codes"].values()) == list(range(len(stats["codes"])))
    return encoding, json.loads(json.dumps(stats))


def encode(encoding, values, stats, seed=0):
    codes = encoding.encode(values, stats, rng=np.random.default_rng(seed))
    check_codes(codes, stats, len(values))
    return codes


def round_trip(encoding_type, values, **kwargs):
    """analyze → reduce → encode → decode; returns (stats, codes, decoded values as float64)."""
    encoding, stats = fit(encoding_type, values, **kwargs)
    codes = encode(encoding, values, stats)
    decoded = encoding.decode(codes, stats, rng=np.random.default_rng(1))
    assert decoded.dtype == np.float64 and len(decoded) == len(values)
    return stats, codes, decoded.to_numpy()


def as_float(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


# --------------------------------------------------------------------------------------------------------
# round trips on real columns


@pytest.mark.parametrize("encoding_type", [DISCRETE, DIGIT])
@pytest.mark.parametrize(("table", "name"), REAL_COLUMNS)
def test_round_trip_is_exact_without_protection(encoding_type, table, name):
    values = column(table, name)
    stats, _, decoded = round_trip(encoding_type, values)
    assert stats["encoding_type"] == encoding_type
    np.testing.assert_array_equal(decoded, as_float(values))  # NaN positions must match too


@pytest.mark.parametrize(("table", "name"), REAL_COLUMNS)
def test_digit_round_trip_with_protection_is_exact_inside_the_range(table, name):
    values = column(table, name)
    stats, _, decoded = round_trip(DIGIT, values, value_protection=True)
    x = as_float(values)
    low, high = stats["min"], stats["max"]
    inside = (x >= low) & (x <= high)
    np.testing.assert_array_equal(decoded[inside], x[inside])
    np.testing.assert_array_equal(np.isnan(decoded), np.isnan(x))
    np.testing.assert_array_equal(decoded[x < low], low)
    np.testing.assert_array_equal(decoded[x > high], high)


@pytest.mark.parametrize(("table", "name"), REAL_COLUMNS)
def test_discrete_round_trip_with_protection_keeps_common_values(table, name):
    values = column(table, name)
    stats, codes, decoded = round_trip(DISCRETE, values, value_protection=True)
    x = as_float(values)
    common = codes["cat"] > (1 if stats["has_nan"] else 0)
    np.testing.assert_array_equal(decoded[common], x[common])
    rare = codes["cat"] == 0
    assert rare.any()
    if stats["has_nan"]:
        assert np.isnan(decoded[rare]).all()
        np.testing.assert_array_equal(np.isnan(decoded[np.isnan(x)]), True)
    else:
        categories = [float(k) for k in stats["codes"] if k != "_RARE_"]
        assert np.isin(decoded[rare], categories).all()


@pytest.mark.parametrize("value_protection", [False, True])
@pytest.mark.parametrize(("table", "name"), REAL_COLUMNS)
def test_binned_decodes_into_the_same_bin(table, name, value_protection):
    values = column(table, name)
    encoding, stats = fit(BINNED, values, value_protection=value_protection)
    codes = encode(encoding, values, stats)
    decoded = encoding.decode(codes, stats, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(encode(encoding, decoded, stats)["bin"], codes["bin"])
    x = as_float(values)
    np.testing.assert_array_equal(np.isnan(decoded.to_numpy()), np.isnan(x))
    edges = np.array(stats["bins"])
    assert len(edges) <= 101 and np.all(np.diff(edges) > 0)
    present = decoded.dropna().to_numpy()
    assert edges[0] <= present.min() and present.max() <= edges[-1]
    np.testing.assert_array_equal(present, np.round(present, -stats["min_decimal"]))


def test_binned_uses_one_hundred_quantile_bins_and_exact_extremes():
    values = column("adult", "fnlwgt")
    encoding, stats = fit(BINNED, values)
    edges = np.array(stats["bins"])
    assert len(edges) == 101
    assert edges[0] == values.min() and edges[-1] == values.max()
    # Quantile bins: every bin holds roughly 1 % of the rows.
    codes = encode(encoding, values, stats)["bin"]
    shares = np.bincount(codes, minlength=stats["cardinalities"]["bin"])[3:] / len(values)
    assert shares.max() < 0.02 and shares.min() > 0.005
    tokens = {"<<MIN>>": edges[0], "<<MAX>>": edges[-1]}
    for token, edge in tokens.items():
        code = np.full(4, stats["codes"][token], dtype=np.int16)
        np.testing.assert_array_equal(
            encoding.decode({"bin": code}, stats, rng=np.random.default_rng(0)), edge
        )


def test_binned_clips_values_outside_the_range():
    values = pd.Series(np.arange(100.0))
    encoding, stats = fit(BINNED, values)
    codes = encode(encoding, pd.Series([-50.0, 0.0, 99.0, 1e6, np.nan]), stats)["bin"]
    tokens = stats["codes"]
    assert "<<NULL>>" not in tokens
    np.testing.assert_array_equal(
        codes, [tokens["<<MIN>>"], tokens["<<MIN>>"], tokens["<<MAX>>"], tokens["<<MAX>>"], tokens["<<UNK>>"]]
    )


# --------------------------------------------------------------------------------------------------------
# constructed data


def test_digit_round_trips_decimals_and_large_integers():
    floats = pd.Series([0.1, 2.25, -3.5, 7.0, 0.0, 123456.789, np.nan, -0.05])
    stats, codes, decoded = round_trip(DIGIT, floats)
    np.testing.assert_array_equal(decoded, as_float(floats))
    assert stats["min_decimal"] == -3 and stats["max_decimal"] == 5
    assert list(stats["cardinalities"])[:3] == ["nan", "neg", "E5"]
    assert list(stats["cardinalities"])[-1] == "E-3"

    integers = pd.Series([0, 1, 10**15, 10**15 - 1, 123456789012345, -(10**15)], dtype="int64")
    stats, _, decoded = round_trip(DIGIT, integers)
    np.testing.assert_array_equal(decoded, integers.to_numpy(dtype=np.float64))
    assert stats["min_decimal"] == 0 and stats["max_decimal"] == 15


@pytest.mark.parametrize("value_protection", [False, True])
@pytest.mark.parametrize("encoding_type", [DISCRETE, DIGIT, BINNED, AUTO])
def test_constant_column_round_trips(encoding_type, value_protection):
    values = pd.Series(np.r_[np.full(40, -7.25), np.nan])
    stats, _, decoded = round_trip(encoding_type, values, value_protection=value_protection)
    np.testing.assert_array_equal(decoded, as_float(values))


@pytest.mark.parametrize(
    ("values", "min_decimal"),
    [([100, 2500, 90000], 2), ([1.5, 2.0], -1), ([0.01, 3], -2), ([0, 0], 0), ([1 / 3, 1], -8), ([7, 12], 0)],
)
def test_min_decimal_is_the_finest_non_zero_digit(values, min_decimal):
    stats, _, _ = round_trip(DIGIT, pd.Series(values, dtype=np.float64))
    assert stats["min_decimal"] == min_decimal


def test_digit_imputes_nulls_with_observed_values_and_clips_new_values():
    values = pd.Series([3.0, 14.0, np.nan, 15.0, np.nan, 92.0, 65.0, np.nan])
    encoding, stats = fit(DIGIT, values)
    codes = encode(encoding, values, stats)
    null = values.isna().to_numpy()
    np.testing.assert_array_equal(codes["nan"], null)
    as_present = encoding.decode(
        {**codes, "nan": np.zeros_like(codes["nan"])}, stats, rng=np.random.default_rng(0)
    )
    assert np.isin(as_present[null], values.dropna()).all()
    # Observed last digits are 2..5, so an unseen 50 clamps its last digit to 2.
    new = encode(encoding, pd.Series([-1000.0, 1000.0, 55.0, 50.0]), stats)
    np.testing.assert_array_equal(
        encoding.decode(new, stats, rng=np.random.default_rng(0)), [3.0, 92.0, 55.0, 52.0]
    )


def test_digit_rejects_values_of_1e18_and_more():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "holds values as large as 2e+18 in absolute value, which TABULAR_NUMERIC_DIGIT cannot represent "
            "(the limit is below 1e+18); use TABULAR_NUMERIC_BINNED instead."
        ),
    ):
        fit(DIGIT, pd.Series([1.0, -2e18]))
    stats, _, _ = round_trip(AUTO, pd.Series(np.arange(1000.0) * 1e18))
    assert stats["encoding_type"] == BINNED


def test_discrete_codes_are_sorted_numerically_and_unseen_values_are_rare():
    values = pd.Series([10.0, 2.0, np.nan, 2.0, -1.5, 10.0])
    encoding, stats = fit(DISCRETE, values)
    assert stats["codes"] == {"_RARE_": 0, "<<NULL>>": 1, "-1.5": 2, "2": 3, "10": 4}
    assert stats["min_decimal"] == -1
    codes = encode(encoding, pd.Series([2.0, 3.0, np.nan, -1.5, 10.000001]), stats)["cat"]
    np.testing.assert_array_equal(codes, [3, 0, 1, 2, 0])


def test_discrete_rare_code_decodes_to_null_or_a_category():
    with_null = fit(DISCRETE, pd.Series([1.0, np.nan, 2.0]))
    without_null = fit(DISCRETE, pd.Series([1.0, 5.0, 2.0]))
    rare = {"cat": np.zeros(200, dtype=np.int16)}
    rng = np.random.default_rng(0)
    assert with_null[0].decode(rare, with_null[1], rng=rng).isna().all()
    decoded = without_null[0].decode(rare, without_null[1], rng=rng)
    assert set(decoded) == {1.0, 2.0, 5.0}


# --------------------------------------------------------------------------------------------------------
# value protection


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("encoding_type", [DISCRETE, AUTO])
def test_rare_values_count_subjects_not_rows(encoding_type, seed):
    # 20,000 and 7 subjects: never rare (the threshold is 5..7); enough rows for AUTO to pick DISCRETE.
    common = np.repeat([1.0, 4.0], [20_000, 7])
    held_by_four = np.full(4, 2.0)  # 4 subjects: always rare
    one_subject = np.full(10, 3.0)  # 10 rows of one subject: rare
    values = pd.Series(np.concatenate([common, held_by_four, one_subject]))
    subjects = np.concatenate([np.arange(20_011), np.full(10, 20_011)])
    _, stats = fit(encoding_type, values, subjects=subjects, value_protection=True, seed=seed)
    assert stats["encoding_type"] == DISCRETE
    assert list(stats["codes"]) == ["_RARE_", "1", "4"]
    _, unprotected = fit(encoding_type, values, subjects=subjects)
    assert list(unprotected["codes"]) == ["_RARE_", "1", "2", "3", "4"]


def test_reduce_merges_partitions():
    # Value 5 is held by 4 subjects in each partition: rare in either alone, common (8 subjects) together.
    first = pd.Series(np.r_[np.full(4, 5.0), np.arange(100.0, 130.0), np.nan])
    second = pd.Series(np.r_[np.full(4, 5.0), np.arange(200.0, 230.0)])
    values = pd.concat([first, second], ignore_index=True)
    subjects = np.arange(len(values))
    encoding = get_encoding(DISCRETE)
    partials = [
        encoding.analyze(first, subjects[: len(first)]),
        encoding.analyze(second, subjects[len(first) :]),
    ]
    merged = encoding.reduce(partials, value_protection=True, rng=np.random.default_rng(0))
    alone = encoding.reduce(partials[:1], value_protection=True, rng=np.random.default_rng(0))
    assert "5" in merged["codes"] and "5" not in alone["codes"]
    assert merged["has_nan"]
    assert not encoding.reduce(partials[1:], value_protection=False, rng=np.random.default_rng(0))["has_nan"]

    real = column("flights", "dep_delay")
    for encoding_type in [DISCRETE, DIGIT]:
        _, one = fit(encoding_type, real)
        _, two = fit(encoding_type, real, n_partitions=2)
        assert one == two
    _, one = fit(BINNED, real)
    stats, codes, decoded = round_trip(BINNED, real, n_partitions=2)
    assert stats["bins"][0] == one["bins"][0] and stats["bins"][-1] == one["bins"][-1]
    assert abs(len(stats["bins"]) - len(one["bins"])) <= 2
    np.testing.assert_array_equal(
        encode(get_encoding(BINNED), pd.Series(decoded), stats)["bin"], codes["bin"]
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("encoding_type", [DIGIT, BINNED])
def test_extreme_values_fall_outside_the_published_range(encoding_type, seed):
    rng = np.random.default_rng(seed)
    lows, highs = -1000.0 * np.arange(1, 6), 5000.0 + 1000.0 * np.arange(5)
    values = pd.Series(rng.permutation(np.r_[rng.integers(0, 1000, 200).astype(float), lows, highs]))
    encoding, stats = fit(encoding_type, values, value_protection=True, seed=seed)
    low, high = (
        (stats["min"], stats["max"]) if encoding_type == DIGIT else (stats["bins"][0], stats["bins"][-1])
    )
    assert lows.max() < low and high < highs.min()
    assert 0 <= low and high < 1000
    decoded = encoding.decode(encode(encoding, pd.Series(np.r_[lows, highs]), stats), stats, rng=rng)
    np.testing.assert_array_equal(decoded, np.r_[np.full(5, low), np.full(5, high)])
    # Without protection the published range is the true one.
    _, plain = fit(encoding_type, values, seed=seed)
    expected = (
        [plain["min"], plain["max"]] if encoding_type == DIGIT else plain["bins"][:: len(plain["bins"]) - 1]
    )
    assert expected == [-5000.0, 9000.0]


@pytest.mark.parametrize("encoding_type", [DIGIT, BINNED])
@pytest.mark.parametrize(
    ("n_rows", "n_subjects", "hidden"), [(20, 20, True), (200, 10, True), (21, 21, False)]
)
def test_fewer_than_20_subjects_hide_the_range(encoding_type, n_rows, n_subjects, hidden):
    values = pd.Series(np.r_[np.arange(1.0, n_rows), np.nan])
    subjects = np.arange(n_rows) % n_subjects
    stats, _, decoded = round_trip(encoding_type, values, subjects=subjects, value_protection=True)
    if encoding_type == DIGIT:
        assert (stats["min"] is None) == hidden
    else:
        assert (stats["bins"] == []) == hidden
    assert np.isnan(decoded).all() == hidden
    assert np.isnan(decoded[-1])


# --------------------------------------------------------------------------------------------------------
# AUTO


@pytest.mark.parametrize("value_protection", [False, True])
def test_auto_resolves_like_the_reference(value_protection):
    hundreds = pd.Series(np.random.default_rng(0).integers(0, 901, 5000) * 100.0)
    cases = [(column("adult", "age"), DISCRETE), (column("adult", "fnlwgt"), BINNED), (hundreds, DIGIT)]
    for values, expected in cases:
        stats, codes, decoded = round_trip(AUTO, values, value_protection=value_protection)
        assert stats["encoding_type"] == expected
        if expected != BINNED and not value_protection:
            np.testing.assert_array_equal(decoded, as_float(values))
    assert list(round_trip(AUTO, hundreds)[0]["cardinalities"]) == ["E4", "E3", "E2"]


def test_auto_discrete_needs_at_most_100_published_values():
    many = pd.Series(np.tile(np.arange(150.0), 20))  # 150 distinct values, 3 digit positions
    assert round_trip(AUTO, many)[0]["encoding_type"] == DIGIT
    assert round_trip(AUTO, many, n_partitions=2)[0]["encoding_type"] == DIGIT
    few = pd.Series(np.tile(np.arange(90.0) * 1.37, 20))
    assert round_trip(AUTO, few, n_partitions=2)[0]["encoding_type"] == DISCRETE


def test_auto_rejects_discrete_when_rare_values_hold_too_many_rows():
    # 1.2 % of the rows sit in values held by fewer than 5 subjects.
    values = pd.Series(np.r_[np.repeat(np.arange(10.0), 499), np.arange(1000.0, 1060.0)] / 8)
    stats = round_trip(AUTO, values, value_protection=True)[0]
    assert stats["encoding_type"] == BINNED
    assert round_trip(AUTO, values)[0]["encoding_type"] == DISCRETE


def test_auto_keeps_spiky_amounts_discrete():
    # like adult's capital_gain: 80 exact amounts with 4+ digits, plus 0.5 % of rows in one-off amounts
    rng = np.random.default_rng(4)
    amounts = np.sort(rng.choice(np.arange(1000, 99999), size=80, replace=False)).astype(float)
    common = np.repeat(amounts, rng.integers(40, 120, size=80))
    rare = np.arange(20) * 7.0 + 100_001
    stats = round_trip(AUTO, pd.Series(np.r_[common, rare]), value_protection=True)[0]
    assert stats["encoding_type"] == DISCRETE
    assert len(stats["codes"]) == 1 + 80 and format_value(amounts[0]) in stats["codes"]


# --------------------------------------------------------------------------------------------------------
# inputs and errors


@pytest.mark.parametrize(
    "values",
    [
        pd.Series([1, None, 3, -4], dtype="Int64"),
        pd.Series([1.5, None, 3.0, -4.0], dtype="Float64"),
        pd.Series([1, None, 3, -4], dtype="int64[pyarrow]"),
        pd.Series([1.5, None, 3.0, -4.0], dtype="double[pyarrow]"),
        pd.Series(["1.5", None, "3", "-4"]),
        pd.Series([1, None, 3, -4], dtype="category"),
    ],
)
@pytest.mark.parametrize("encoding_type", [DISCRETE, DIGIT, AUTO])
def test_accepts_nullable_arrow_string_and_category_numbers(values, encoding_type):
    _, _, decoded = round_trip(encoding_type, values)
    expected = pd.to_numeric(values.astype(object)).to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("dtype", ["bool", "boolean", "bool[pyarrow]"])
def test_booleans_encode_as_zero_and_one(dtype):
    values = pd.Series([True, False, True, True], dtype=dtype)
    _, _, decoded = round_trip(DIGIT, values)
    np.testing.assert_array_equal(decoded, [1.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("encoding_type", [DISCRETE, DIGIT, BINNED, AUTO])
def test_invalid_values_raise(encoding_type):
    encoding = get_encoding(encoding_type)
    subjects = np.arange(4)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "contains 2 non-numeric value(s) such as 'abc', 'x'; numeric encodings accept numbers, booleans "
            "and strings that parse as numbers (use TABULAR_CATEGORICAL otherwise)."
        ),
    ):
        encoding.analyze(pd.Series(["1", "abc", None, "x"]), subjects)
    with pytest.raises(
        ValueError,
        match=re.escape("contains 1 infinite value(s); numeric encodings accept finite numbers only."),
    ):
        encoding.analyze(pd.Series([1.0, np.inf, 2.0, np.nan]), subjects)
    with pytest.raises(
        ValueError, match=re.escape("has dtype datetime64[us]; numeric encodings accept numbers")
    ):
        encoding.analyze(pd.Series(pd.to_datetime(["2020-01-01"] * 4)).astype("datetime64[us]"), subjects)
    _, stats = fit(encoding_type, pd.Series(np.arange(50.0)))
    with pytest.raises(ValueError, match="infinite"):
        encoding.encode(pd.Series([-np.inf]), stats, rng=np.random.default_rng(0))


@pytest.mark.parametrize("value_protection", [False, True])
@pytest.mark.parametrize("encoding_type", [DISCRETE, DIGIT, BINNED, AUTO])
def test_all_null_and_empty_columns_decode_to_null(encoding_type, value_protection):
    for values in [
        pd.Series([np.nan] * 30),
        pd.Series([None] * 30, dtype="Int64"),
        pd.Series([], dtype=float),
    ]:
        stats, _, decoded = round_trip(
            encoding_type, values, value_protection=value_protection, n_partitions=2
        )
        assert np.isnan(decoded).all()
    if encoding_type in (DISCRETE, AUTO):
        stats = round_trip(encoding_type, pd.Series([np.nan] * 30), n_partitions=2)[0]
        assert stats["codes"] == {"_RARE_": 0, "<<NULL>>": 1}


# --------------------------------------------------------------------------------------------------------
# BINNED: values inside a bin come from the published per-bin statistics


def _clock_times(n: int, seed: int = 0) -> pd.Series:
    """HHMM clock times (minutes 0–59 only) peaking in the morning, plus a few rare night times."""
    rng = np.random.default_rng(seed)
    minutes = np.clip(rng.normal(600, 240, n), 300, 1439).astype(np.int64)
    minutes[:3] = [1, 2, 3]  # three night times, each held by one subject: rare
    return pd.Series((minutes // 60) * 100 + minutes % 60)


@pytest.mark.parametrize("value_protection", [False, True])
def test_binned_decodes_no_impossible_clock_times(value_protection):
    values = _clock_times(20_000)
    encoding, stats = fit(BINNED, values, value_protection=value_protection, n_partitions=2)
    assert stats["in_bin_residues"] == list(range(60))
    codes = encode(encoding, values, stats)
    decoded = encoding.decode(codes, stats, rng=np.random.default_rng(1)).to_numpy()
    assert ((decoded % 100) < 60).all()
    # Each bin's decoded values come from its published values or (its rest) a lattice draw inside the bin.
    np.testing.assert_array_equal(encode(encoding, pd.Series(decoded), stats)["bin"], codes["bin"])
    # The shape inside the bins is the training values' own: KS against the original is tiny.
    a, b = np.sort(values.to_numpy(float)), np.sort(decoded)
    grid = np.concatenate([a, b])
    ks = np.abs(np.searchsorted(a, grid, "right") - np.searchsorted(b, grid, "right")).max() / len(a)
    assert ks < 0.01


def test_binned_publishes_only_common_in_bin_values():
    values = _clock_times(20_000)
    subjects = np.arange(len(values)) // 4  # four rows per subject: a value needs 5–7 holders to be common
    _, stats = fit(BINNED, values, value_protection=True, subjects=subjects)
    held = pd.DataFrame({"v": values, "s": subjects}).groupby("v")["s"].nunique()
    published = np.concatenate([np.asarray(v, dtype=float) for v in stats["in_bin_values"]])
    assert len(published) and (held.loc[published] >= 5).all()
    assert not np.isin([1, 2, 3], published).any()
    edges = np.array(stats["bins"])
    for index, (bin_values, shares, rest) in enumerate(
        zip(stats["in_bin_values"], stats["in_bin_shares"], stats["in_bin_rest"], strict=True)
    ):
        assert all(edges[index] <= v < edges[index + 1] for v in bin_values)
        assert len(bin_values) == len(shares) <= 32
        assert sum(shares) + rest == pytest.approx(1.0, abs=1e-4)


def test_binned_decodes_published_values_by_their_shares():
    # 300 even values; multiples of 4 four times as frequent: a uniform in-bin draw would give odd values
    # and equal shares, the published values give even values only, multiples of 4 in 4 of 5 draws.
    even = np.arange(0.0, 600.0, 2.0)
    values = pd.Series(np.repeat(even, np.where(even % 4 == 0, 4, 1)))
    encoding, stats = fit(BINNED, values)
    assert all(rest == 0.0 for rest in stats["in_bin_rest"])
    codes = encode(encoding, values, stats)
    decoded = encoding.decode(codes, stats, rng=np.random.default_rng(0)).to_numpy()
    assert (decoded % 2 == 0).all()
    assert np.mean(decoded % 4 == 0) == pytest.approx(0.8, abs=0.02)


def _prices(n_common_rows: int, n_rare: int, seed: int = 0) -> pd.Series:
    """Prices ending in .49 or .99: 400 common ones (about n_common_rows / 400 rows each) and n_rare rare ones."""
    rng = np.random.default_rng(seed)
    common = np.arange(400) * 7 + 0.99
    rare = rng.integers(0, 100_000, n_rare) + rng.choice([0.49, 0.99], n_rare)
    values = np.concatenate([rng.choice(common, n_common_rows, p=np.linspace(1, 3, 400) / 800), rare])
    return pd.Series(rng.permutation(values))


def test_observed_values_of_a_partition_are_bounded(monkeypatch):
    from synthgen.column_encodings import _observed

    values = _prices(20_000, 40_000)  # ~35,000 distinct rare prices: more than EXACT_VALUES
    partial = get_encoding(BINNED).analyze(values, np.arange(len(values)))
    listed = len(partial["observed_values"])
    assert listed <= _observed.LOCAL_BINS * _observed.PER_LOCAL_BIN < values.nunique()
    assert partial["observed_rows"].sum() + partial["observed_rest_rows"] == len(values)
    assert set(np.flatnonzero(partial["observed_rest_residue_subjects"])) == {49, 99}
    spread = pd.Series(np.arange(5_000.0))  # more than EXACT_VALUES, but 50 per local bin: all listed
    complete = get_encoding(BINNED).analyze(spread, np.arange(len(spread)))
    assert len(complete["observed_values"]) == 5_000 and complete["observed_rest_rows"] == 0
    monkeypatch.setattr(_observed, "EXACT_VALUES", 10**9)
    exact = get_encoding(BINNED).analyze(values, np.arange(len(values)))
    assert len(exact["observed_values"]) == values.nunique() and exact["observed_rest_rows"] == 0


@pytest.mark.parametrize("value_protection", [False, True])
def test_sketched_in_bin_values_match_the_exact_ones(monkeypatch, value_protection):
    from synthgen.column_encodings import _observed

    values = _prices(60_000, 30_000, seed=1)  # 3 partitions of ~10,000 distinct values each: sketched
    _, sketched = fit(BINNED, values, value_protection=value_protection, n_partitions=3)
    monkeypatch.setattr(_observed, "EXACT_VALUES", 10**9)
    _, exact = fit(BINNED, values, value_protection=value_protection, n_partitions=3)
    assert sketched["bins"] == exact["bins"]
    # no .00 price is invented; with protection only the common prices (ending in .99) count
    assert sketched["in_bin_residues"] == exact["in_bin_residues"] == ([99] if value_protection else [49, 99])
    for b in range(len(exact["bins"]) - 1):
        published = dict(zip(sketched["in_bin_values"][b], sketched["in_bin_shares"][b], strict=True))
        for value, share in zip(exact["in_bin_values"][b], exact["in_bin_shares"][b], strict=True):
            if share >= 0.02:  # the values that matter are found, with their shares
                assert published.get(value, 0.0) == pytest.approx(share, abs=0.01), (b, value)
        # the rest differs by the rows of rare values listed in one partition only (a share of 0.1 % each)
        assert sketched["in_bin_rest"][b] == pytest.approx(exact["in_bin_rest"][b], abs=0.05), b


# AUTO: HHMM clock times


@pytest.mark.parametrize("value_protection", [False, True])
@pytest.mark.parametrize("name", ["dep_time", "sched_arr_time"])
def test_auto_codes_clock_times_as_hour_and_minute(name, value_protection):
    values = column("flights", name)
    subjects = pd.read_parquet(DATA / "flights.parquet", columns=["tailnum"])["tailnum"].iloc[:N_ROWS]
    stats, codes, decoded = round_trip(AUTO, values, value_protection=value_protection, subjects=subjects,
                                       n_partitions=2)
    assert stats["encoding_type"] == DIGIT and stats["clock"]
    assert [k for k in stats["cardinalities"] if k != "nan"] == ["hour", "minute"]
    assert stats["cardinalities"]["minute"] == 60
    inside = (values >= stats["min"]) & (values <= stats["max"])
    np.testing.assert_array_equal(decoded[inside.to_numpy()], as_float(values[inside]))
    assert np.array_equal(np.isnan(decoded), values.isna().to_numpy())


def test_clock_decodes_only_real_times_inside_the_range():
    rng = np.random.default_rng(0)
    times = rng.integers(1, 23, 3000) * 100 + rng.integers(0, 60, 3000)
    values = pd.Series(np.r_[[5.0, 2359.0, np.nan], times])
    encoding, stats = fit(AUTO, values)
    assert stats["clock"] and (stats["min"], stats["max"]) == (5.0, 2359.0)
    # every code combination, including the hours 00 and 23 cut by the range
    hours, minutes = np.meshgrid(np.arange(stats["cardinalities"]["hour"]), np.arange(60))
    codes = {"nan": np.zeros(hours.size, dtype=np.int16), "hour": hours.ravel(), "minute": minutes.ravel()}
    decoded = encoding.decode(codes, stats, rng=np.random.default_rng(0)).to_numpy()
    assert (decoded % 100 < 60).all() and decoded.min() == 5 and decoded.max() == 2359


@pytest.mark.parametrize("values", [
    np.arange(0, 2400, 100.0),             # whole hours only: the minute digits never vary
    np.arange(0.0, 2400.0),                # counts that use the tens digits 6-9
    np.arange(0, 2400, 10.0) + 0.5,        # not integers
    np.r_[np.arange(0, 2400, 7.0), 2500],  # above 24:00
    np.r_[np.arange(0, 2400, 7.0), -7],    # negative
])
def test_auto_takes_only_hhmm_columns_for_clock_times(values):
    stats = fit(AUTO, pd.Series(np.tile(values, 3)))[1]
    assert not stats.get("clock")


def test_auto_keeps_up_to_256_values_exact_rather_than_binned():
    rng = np.random.default_rng(0)
    routes = rng.choice(np.arange(17.0, 5000.0), size=300, replace=False)  # 4 digit positions: no DIGIT
    for n_values, expected in [(200, DISCRETE), (300, BINNED)]:
        values = pd.Series(np.tile(routes[:n_values], 20))
        stats, _, decoded = round_trip(AUTO, values, n_partitions=2)
        assert stats["encoding_type"] == expected
        assert np.array_equal(decoded, as_float(values)) == (expected == DISCRETE)
