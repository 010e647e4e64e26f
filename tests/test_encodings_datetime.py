"""TABULAR_DATETIME and TABULAR_DATETIME_RELATIVE: round trips, resolutions, NULLs, protection, errors."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import encoding_round_trip

from synthgen.column_encodings import SequenceIndex
from synthgen.column_encodings._datetime_absolute import DatetimeEncoding, parse_datetime
from synthgen.column_encodings._datetime_relative import DatetimeRelativeEncoding


def _same(decoded: pd.Series, expected: pd.Series) -> None:
    decoded, expected = decoded.reset_index(drop=True), expected.reset_index(drop=True)
    assert decoded.dtype == expected.dtype
    pd.testing.assert_series_equal(decoded, expected, check_names=False)


@pytest.fixture(scope="module")
def flights(planes_flights_full):
    return planes_flights_full[1][["tailnum", "time_hour"]].iloc[:13052]  # the first 100 planes, in file order


# ---------------------------------------------------------------------------------------------------------
# TABULAR_DATETIME


def test_flights_time_hour_round_trips_exactly(flights):
    values = flights["time_hour"]
    stats, _, decoded = encoding_round_trip(DatetimeEncoding(), values)
    assert list(stats["cardinalities"]) == ["year", "month", "day", "hour", "minute", "second"]
    assert (stats["has_time"], stats["has_ms"], stats["has_us"]) == (True, False, False)
    assert stats["cardinalities"]["minute"] == 1  # an hourly series spends nothing on minutes
    _same(decoded, values.astype("datetime64[us]"))


def test_tweets_created_at_round_trips_exactly(tweets_full):
    values = tweets_full["created_at"].iloc[:5000]
    stats, _, decoded = encoding_round_trip(DatetimeEncoding(), values)
    assert stats["min"] == values.min().isoformat(timespec="seconds")
    assert stats["max"] == values.max().isoformat(timespec="seconds")
    _same(decoded, values.astype("datetime64[us]"))


@pytest.mark.parametrize(
    ("unit", "step", "flags", "finest"),
    [
        ("s", "1s", (True, False, False), "second"),
        ("ms", "1ms", (True, True, False), "ms_E0"),
        ("us", "1us", (True, True, True), "us_E0"),
        ("ns", "7us", (True, True, True), "us_E0"),
    ],
)
def test_units_and_resolutions_round_trip(unit, step, flags, finest):
    rng = np.random.default_rng(1)
    offsets = pd.to_timedelta(rng.integers(0, 10**9, 500), unit="s") + pd.to_timedelta(step) * np.arange(500)
    values = pd.Series((pd.Timestamp("1950-03-01") + offsets).astype(f"datetime64[{unit}]"))
    stats, _, decoded = encoding_round_trip(DatetimeEncoding(), values)
    assert (stats["has_time"], stats["has_ms"], stats["has_us"]) == flags
    assert list(stats["cardinalities"])[-1] == finest
    _same(decoded, values.astype("datetime64[us]"))


def test_nanoseconds_are_truncated_to_microseconds():
    values = pd.Series(pd.to_datetime(["2020-01-01 00:00:00.000001999", "2021-06-01 12:00:00.000000000"]))
    _, _, decoded = encoding_round_trip(DatetimeEncoding(), values)
    assert decoded.iloc[0] == pd.Timestamp("2020-01-01 00:00:00.000001")


def test_dates_only_have_three_parts_and_repair_invalid_days():
    values = pd.Series(pd.date_range("2023-01-01", "2024-12-31", freq="D"))
    enc = DatetimeEncoding()
    stats, _, decoded = encoding_round_trip(enc, values)
    assert list(stats["cardinalities"]) == ["year", "month", "day"]
    assert stats["min"] == "2023-01-01"
    _same(decoded, values.astype("datetime64[us]"))
    # Feb 30 2023, Feb 30 2024 (leap year), Apr 31: clamped to the last day of their month
    codes = {"year": np.array([0, 1, 0]), "month": np.array([1, 1, 3]), "day": np.array([29, 29, 30])}
    repaired = enc.decode(codes, stats, rng=np.random.default_rng(0))
    assert repaired.tolist() == [pd.Timestamp(d) for d in ("2023-02-28", "2024-02-29", "2023-04-30")]


def test_time_zone_is_restored():
    values = pd.Series(pd.date_range("2021-03-27 12:00", periods=300, freq="37min", tz="Europe/Vienna"))
    stats, _, decoded = encoding_round_trip(DatetimeEncoding(), values)
    assert stats["tz"] == "Europe/Vienna"
    assert stats["min"] == "2021-03-27T12:00:00+01:00"
    assert stats["max"].endswith("+02:00")  # after the switch to summer time
    _same(decoded, values.astype("datetime64[us, Europe/Vienna]"))


def test_strings_and_pyarrow_timestamps_are_parsed():
    strings = pd.Series(["2020-01-05 10:11:12", "5 March 2021", None, "2019-12-31T23:59:59"], dtype="str")
    _, codes, decoded = encoding_round_trip(DatetimeEncoding(), strings)
    _same(decoded, pd.to_datetime(strings, format="mixed").astype("datetime64[us]"))
    assert codes["nan"].tolist() == [0, 0, 1, 0]
    arrow = pd.Series(pd.array(pd.to_datetime(strings, format="mixed"), dtype=pd.ArrowDtype(pa.timestamp("ms"))))
    _, _, decoded = encoding_round_trip(DatetimeEncoding(), arrow)
    _same(decoded, pd.to_datetime(strings, format="mixed").astype("datetime64[us]"))


def test_strings_with_different_offsets_are_brought_to_utc():
    strings = pd.Series(["2020-01-01T12:00:00+02:00", "2020-01-01T12:00:00-05:00"])
    stats, _, decoded = encoding_round_trip(DatetimeEncoding(), strings)
    assert stats["tz"] == "UTC"
    assert decoded.tolist() == [pd.Timestamp("2020-01-01 10:00", tz="UTC"), pd.Timestamp("2020-01-01 17:00", tz="UTC")]


def test_unparseable_strings_raise():
    values = pd.Series(["2020-01-01", "abc", "soon", None])
    with pytest.raises(ValueError, match=r"^cannot parse 2 values as datetimes, e\.g\. 'abc'; use datetime"):
        DatetimeEncoding().analyze(values, np.arange(4))


def test_numbers_raise():
    with pytest.raises(ValueError, match=r"^holds int64 values; a datetime column needs datetime values"):
        DatetimeEncoding().analyze(pd.Series([1, 2]), np.arange(2))


def test_nulls_are_flagged_and_imputed_from_observed_values():
    rng = np.random.default_rng(3)
    values = pd.Series(pd.to_datetime(rng.choice(["2001-01-01", "2003-05-05"], 400)))
    values[rng.random(400) < 0.3] = pd.NaT
    stats, codes, decoded = encoding_round_trip(DatetimeEncoding(), values)
    assert list(stats["cardinalities"])[0] == "nan" and stats["has_nan"]
    is_null = values.isna().to_numpy()
    assert (codes["nan"] == is_null).all()
    assert set(codes["year"][is_null].tolist()) == {0, 2}  # both observed years, never the unseen 2002
    _same(decoded, values.astype("datetime64[us]"))


def test_all_null_and_empty_partitions_decode_to_null():
    enc = DatetimeEncoding()
    rng = np.random.default_rng(0)
    empty = enc.analyze(pd.Series([], dtype="datetime64[ns]"), np.array([], dtype=int))
    nulls = enc.analyze(pd.Series([pd.NaT] * 3, dtype="datetime64[ns]"), np.arange(3))
    stats = enc.reduce([empty, nulls], value_protection=True, rng=rng)
    assert stats["cardinalities"] == {"nan": 2}
    assert stats["min"] is None and stats["max"] is None
    codes = enc.encode(pd.Series([pd.NaT] * 3, dtype="datetime64[ns]"), stats, rng=rng)
    assert codes["nan"].tolist() == [1, 1, 1]
    assert enc.decode({"nan": np.array([0, 1])}, stats, rng=rng).isna().all()


def test_protection_drops_the_most_extreme_subjects():
    values = pd.Series(pd.date_range("2000-01-01", periods=200, freq="D"))
    values.iloc[:5] = pd.date_range("1900-01-01", periods=5, freq="D")
    values.iloc[-5:] = pd.date_range("2100-01-01", periods=5, freq="D")
    stats, _, decoded = encoding_round_trip(DatetimeEncoding(), values, protect=True)
    low, high = parse_datetime(stats["min"]), parse_datetime(stats["max"])
    micros = values.astype("datetime64[us]").to_numpy().view(np.int64)
    assert np.sort(micros)[4] < low and high < np.sort(micros)[-5]
    assert stats["min_values"]["year"] == 2000 and stats["max_values"]["year"] == 2000
    inside = (micros >= low) & (micros <= high)
    _same(decoded[inside], values[inside].astype("datetime64[us]"))
    assert decoded[~inside].isin([pd.Timestamp(stats["min"]), pd.Timestamp(stats["max"])]).all()


def test_protection_counts_subjects_not_rows():
    # one subject owns ten very early rows: its extremes count once and are clipped away
    values = pd.Series(pd.date_range("2000-01-01", periods=100, freq="D"))
    values.iloc[:10] = pd.Timestamp("1800-01-01")
    subjects = np.concatenate([np.zeros(10, dtype=int), np.arange(1, 91)])
    stats, _, _ = encoding_round_trip(DatetimeEncoding(), values, protect=True, subjects=subjects)
    assert stats["min_values"]["year"] == 2000


def test_fewer_than_20_subjects_hide_the_range():
    values = pd.Series(pd.date_range("2000-01-01", periods=40, freq="D"))
    enc = DatetimeEncoding()
    hidden, _, decoded = encoding_round_trip(enc, values, protect=True, subjects=np.arange(40) % 19)
    assert hidden["min"] is None and hidden["max"] is None
    assert hidden["cardinalities"] == {"nan": 2}
    assert decoded.isna().all()
    shown, _, _ = encoding_round_trip(enc, values, protect=True, subjects=np.arange(40) % 20)
    assert shown["min"] is not None


def test_two_partials_merge_like_one(tweets_full):
    values = tweets_full["created_at"].iloc[:2000]
    enc = DatetimeEncoding()
    whole, _, _ = encoding_round_trip(enc, values)
    parts = [enc.analyze(values.iloc[:700], np.arange(700)), enc.analyze(values.iloc[700:], np.arange(700, 2000))]
    assert enc.reduce(parts, value_protection=False, rng=np.random.default_rng(0)) == whole


def test_encode_and_decode_of_300k_values_is_fast():
    values = pd.Series(pd.Timestamp("2000-01-01") + pd.to_timedelta(np.arange(300_000) * 7919, unit="s"))
    enc = DatetimeEncoding()
    rng = np.random.default_rng(0)
    stats = enc.reduce([enc.analyze(values, np.arange(300_000))], value_protection=False, rng=rng)
    start = time.perf_counter()
    decoded = enc.decode(enc.encode(values, stats, rng=rng), stats, rng=rng)
    assert time.perf_counter() - start < 2.0  # about 0.05 s; per-row Python would take several seconds
    _same(decoded, values.astype("datetime64[us]"))


# ---------------------------------------------------------------------------------------------------------
# TABULAR_DATETIME_RELATIVE


def _sequence(keys) -> tuple[np.ndarray, SequenceIndex]:
    group = pd.factorize(pd.Series(keys), sort=False)[0]
    return group, SequenceIndex(group=group)


def test_relative_flights_time_hour_round_trips_exactly(flights):
    subjects, sequence = _sequence(flights["tailnum"])
    values = flights["time_hour"]
    stats, codes, decoded = encoding_round_trip(DatetimeRelativeEncoding(), values, subjects=subjects, sequence=sequence)
    assert list(stats["cardinalities"]) == [
        "start_year", "start_month", "start_day", "start_hour", "start_minute", "start_second",
        "itt_week", "itt_day", "itt_hour", "itt_minute", "itt_second",
    ]
    _same(decoded, values.astype("datetime64[us]"))
    # the start parts repeat on every row of a sequence
    start_day = pd.Series(codes["start_day"]).groupby(subjects).nunique()
    assert (start_day == 1).all()


def test_relative_nulls_single_events_and_negative_gaps():
    keys = ["a", "a", "a", "a", "b", "c", "c", "c", "d", "d"]
    values = pd.Series(pd.to_datetime([
        "2020-01-01 10:00:00.250", None, "2020-01-03 09:00:00", "2020-01-02 08:00:00",  # gap back in time
        "2019-06-01",                                      # a single event
        None, "2021-02-01 00:00:01", "2021-03-01",         # leading NULL
        None, None,                                        # no value at all
    ], format="mixed"))
    subjects, sequence = _sequence(keys)
    stats, codes, decoded = encoding_round_trip(DatetimeRelativeEncoding(), values, subjects=subjects, sequence=sequence)
    assert stats["has_neg"] and stats["has_ms"] and not stats["has_us"]
    names = list(stats["cardinalities"])
    assert names[0] == "nan" and names.index("itt_neg") == names.index("itt_week") - 1
    assert names[-3:] == ["itt_ms_E2", "itt_ms_E1", "itt_ms_E0"]
    assert codes["nan"].tolist() == values.isna().astype(int).tolist()
    _same(decoded, values.astype("datetime64[us]"))


def test_relative_decoding_forces_the_first_gap_to_zero():
    values = pd.Series(pd.to_datetime(["2020-01-01", "2020-01-15", "2020-02-01", "2020-02-02"] * 10))
    subjects, sequence = _sequence(np.repeat(np.arange(20), 2))
    enc = DatetimeRelativeEncoding()
    stats, codes, _ = encoding_round_trip(enc, values, subjects=subjects, sequence=sequence)
    codes = {name: code.copy() for name, code in codes.items()}
    codes["itt_week"][sequence.starts] = codes["itt_week"].max()
    decoded = enc.decode(codes, stats, rng=np.random.default_rng(0), sequence=sequence)
    _same(decoded, values.astype("datetime64[us]"))


def test_relative_protection_clips_gaps_and_hides_small_populations():
    rng = np.random.default_rng(5)
    n_subjects = 60
    gaps = rng.integers(1, 20, (n_subjects, 4)).astype("m8[D]")
    gaps[:5, 1] = np.timedelta64(400, "D")  # five subjects with a huge gap
    values = pd.Series((np.datetime64("2015-01-01") + gaps.cumsum(axis=1)).ravel())
    subjects, sequence = _sequence(np.repeat(np.arange(n_subjects), 4))
    enc = DatetimeRelativeEncoding()
    stats, _, decoded = encoding_round_trip(enc, values, protect=True, subjects=subjects, sequence=sequence)
    assert stats["itt_max"] < 400 * 86_400 * 10**6
    assert stats["max_values"]["itt_week"] < 400 // 7
    assert (decoded.groupby(subjects).diff().dropna() <= pd.Timedelta(stats["itt_max"], unit="us")).all()
    hidden, _, decoded = encoding_round_trip(enc, values.iloc[:76], protect=True, subjects=subjects[:76],
                                     sequence=SequenceIndex(group=subjects[:76]))
    assert hidden["min"] is None and hidden["cardinalities"] == {"nan": 2}
    assert decoded.isna().all()


def test_relative_without_sequence_raises():
    values = pd.Series(pd.to_datetime(["2020-01-01"]))
    with pytest.raises(ValueError, match=r"^needs the sequences of a two-table target"):
        DatetimeRelativeEncoding().analyze(values, np.arange(1))


def test_relative_all_null_column_decodes_to_null():
    values = pd.Series([pd.NaT] * 4, dtype="datetime64[us]")
    subjects, sequence = _sequence([0, 0, 1, 1])
    stats, _, decoded = encoding_round_trip(DatetimeRelativeEncoding(), values, subjects=subjects, sequence=sequence)
    assert stats["cardinalities"] == {"nan": 2}
    assert decoded.isna().all() and len(decoded) == 4
