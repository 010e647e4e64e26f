"""TABULAR_CHARACTER: round trips, unicode, truncation, NULLs, value protection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import encoding_round_trip

from synthgen.column_encodings._character import MAX_LENGTH, CharacterEncoding


@pytest.fixture(scope="module")
def tables(adult_full, planes_flights_full):
    return {"adult": adult_full.iloc[:5000], "planes": planes_flights_full[0]}


def _round_trip(values, **kwargs):
    return encoding_round_trip(CharacterEncoding(), values, **kwargs)


def _same(decoded: pd.Series, expected: pd.Series) -> None:
    assert decoded.isna().tolist() == expected.isna().tolist()
    assert decoded[expected.notna().to_numpy()].tolist() == expected.dropna().tolist()


@pytest.mark.parametrize(
    ("table", "column"), [("adult", "education"), ("adult", "occupation"), ("planes", "tailnum"), ("planes", "model")]
)
def test_real_columns_round_trip(tables, table, column):
    values = tables[table][column]
    n_positions = int(values.dropna().str.len().max())  # e.g. 12, 17, 6 and 18 on the full tables
    stats, _, decoded = _round_trip(values)
    assert stats["max_string_length"] == n_positions
    assert list(stats["cardinalities"]) == ["nan"] * int(values.isna().any()) + [f"P{i}" for i in range(n_positions)]
    _same(decoded, values)


def test_unicode_spaces_and_empty_strings_round_trip():
    values = pd.Series(
        ["Zoë", "naïve café", "日本語テキスト", "emoji 😀🎉", "e\u0301", "  lead", "trail  ", "", " ", "x" * MAX_LENGTH]
        * 3
    )
    stats, _, decoded = _round_trip(values)
    assert stats["max_string_length"] == MAX_LENGTH
    assert stats["codes"]["P0"]["\0"] == 0
    _same(decoded, values)


def test_longer_strings_are_cut_to_50_characters():
    long = "abcdefghij" * 7
    stats, _, decoded = _round_trip(pd.Series([long, "short"]))
    assert stats["max_string_length"] == MAX_LENGTH
    assert decoded.tolist() == [long[:MAX_LENGTH], "short"]


def test_codes_are_padding_then_sorted_characters():
    stats, codes, _ = _round_trip(pd.Series(["ba", "ab", "c"]))
    assert stats["codes"] == {"P0": {"\0": 0, "a": 1, "b": 2, "c": 3}, "P1": {"\0": 0, "a": 1, "b": 2}}
    assert codes["P0"].tolist() == [2, 1, 3] and codes["P1"].tolist() == [1, 2, 0]


def test_nulls_are_flagged_and_imputed_from_observed_rows():
    rng = np.random.default_rng(2)
    values = pd.Series(rng.choice(["alpha", "beta"], 300), dtype="str")
    values[rng.random(300) < 0.3] = None
    stats, codes, decoded = _round_trip(values)
    assert list(stats["cardinalities"])[0] == "nan"
    is_null = values.isna().to_numpy()
    assert (codes["nan"] == is_null).all()
    # the P codes of NULL rows spell observed values (both of them), not padding
    observed = {tuple(codes[f"P{i}"][j] for i in range(5)) for j in np.flatnonzero(~is_null)}
    imputed = {tuple(codes[f"P{i}"][j] for i in range(5)) for j in np.flatnonzero(is_null)}
    assert imputed == observed and len(observed) == 2
    _same(decoded, values)


def test_all_null_and_empty_partitions_decode_to_null():
    enc = CharacterEncoding()
    rng = np.random.default_rng(0)
    partials = [enc.analyze(pd.Series([], dtype="str"), np.array([])),
                enc.analyze(pd.Series([None, None], dtype="str"), np.arange(2))]
    stats = enc.reduce(partials, value_protection=True, rng=rng)
    assert stats["cardinalities"] == {"nan": 2} and stats["codes"] == {}
    assert enc.encode(pd.Series([None, None]), stats, rng=rng)["nan"].tolist() == [1, 1]
    assert enc.decode({"nan": np.array([0, 1, 0])}, stats, rng=rng).isna().all()


def test_protection_drops_characters_of_few_subjects():
    # "Q" at position 1 is held by 4 subjects (40 rows): rare despite its row count
    values = pd.Series(["aQc"] * 40 + ["abc"] * 60 + ["abcdefgh"] * 3)
    subjects = np.concatenate([np.arange(40) % 4, np.arange(100, 163)])
    stats, codes, decoded = _round_trip(values, protect=True, subjects=subjects)
    assert "Q" not in stats["codes"]["P1"]
    assert set(stats["codes"]["P1"]) == {"\0", "b"}
    # positions only rare values reach are not published
    assert stats["max_string_length"] == 3
    assert (codes["P1"][:40] == 0).all()
    assert decoded.tolist() == ["ac"] * 40 + ["abc"] * 63
    unprotected, _, _ = _round_trip(values, subjects=subjects)
    assert "Q" in unprotected["codes"]["P1"] and unprotected["max_string_length"] == 8


def test_everything_rare_keeps_one_empty_position():
    stats, _, decoded = _round_trip(pd.Series(["xyz", "uvw"]), protect=True)
    assert stats["cardinalities"] == {"P0": 1}
    assert decoded.tolist() == ["", ""]


def test_unseen_characters_encode_as_padding():
    enc = CharacterEncoding()
    rng = np.random.default_rng(0)
    stats = enc.reduce([enc.analyze(pd.Series(["ab", "ba"]), np.arange(2))], value_protection=False, rng=rng)
    codes = enc.encode(pd.Series(["az", "abc"]), stats, rng=rng)
    assert codes["P1"].tolist() == [0, 2]
    assert enc.decode(codes, stats, rng=rng).tolist() == ["a", "ab"]


def test_two_partials_merge_like_one(adult_full):
    values = adult_full["occupation"].iloc[:3000]
    enc = CharacterEncoding()
    whole, _, _ = _round_trip(values)
    partials = [enc.analyze(values.iloc[:1000], np.arange(1000)), enc.analyze(values.iloc[1000:], np.arange(1000, 3000))]
    assert enc.reduce(partials, value_protection=False, rng=np.random.default_rng(0)) == whole
