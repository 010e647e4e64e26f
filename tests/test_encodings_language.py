"""The LANGUAGE_* encodings: statistics with value protection, and the record text of values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synthgen.column_encodings._language import generated_as_null, get_language_encoding


def _reduce(kind: str, values: pd.Series, *, protect: bool, subjects=None, seed: int = 0):
    encoding = get_language_encoding(kind)
    subjects = np.arange(len(values)) if subjects is None else subjects
    stats = encoding.reduce([encoding.analyze(values, subjects)], value_protection=protect,
                            rng=np.random.default_rng(seed))
    return encoding, stats


@pytest.mark.parametrize("values, scale", [([1.0, 2.0, 30.0], 0), ([1.5, 2.25, 3.0], 2), ([0.1 + 0.2, 1.0], 1),
                                           ([1e-12, 1.0], 8)])
def test_numeric_scale(values, scale):
    _, stats = _reduce("LANGUAGE_NUMERIC", pd.Series(values), protect=False)
    assert stats["max_scale"] == scale


def test_numeric_range_is_protected_per_subject_and_values_are_clipped():
    values = pd.Series(np.arange(100, dtype=float) + 0.5)
    encoding, stats = _reduce("LANGUAGE_NUMERIC", values, protect=True)
    assert 5.5 <= stats["min"] <= 7.5 and 92.5 <= stats["max"] <= 94.5 and stats["max_scale"] == 1
    texts = encoding.texts(pd.Series([-1e9, 50.25, None, 1e9]), stats)
    assert texts == [f"{stats['min']:g}", "50.2", None, f"{stats['max']:g}"]
    # one subject holding every extreme row is one subject: fewer than 20 subjects publish no range
    _, hidden = _reduce("LANGUAGE_NUMERIC", values, protect=True, subjects=np.arange(100) % 10)
    assert hidden["min"] is None and generated_as_null(hidden)


def test_numeric_beyond_18_digits_is_refused():
    with pytest.raises(ValueError, match="18 digits"):
        _reduce("LANGUAGE_NUMERIC", pd.Series([1e19, 2e19]), protect=False)


def test_datetime_bounds_and_layout():
    days = pd.Series(pd.date_range("2020-01-01", periods=60, freq="D"))
    encoding, stats = _reduce("LANGUAGE_DATETIME", days, protect=True)
    assert not stats["has_time"] and "2020-01-06" <= stats["min"] <= "2020-01-09"
    assert encoding.texts(pd.Series([pd.Timestamp("1999-01-01"), pd.NaT]), stats) == [stats["min"][:10], None]
    _, timed = _reduce("LANGUAGE_DATETIME", days + pd.Timedelta(seconds=5), protect=False)
    assert timed["has_time"] and timed["min"] == "2020-01-01T00:00:05"


def test_categorical_rare_values_become_the_rare_token():
    values = pd.Series(["a"] * 10 + ["b"] * 10 + ["rare"] * 2 + [None])
    encoding, stats = _reduce("LANGUAGE_CATEGORICAL", values, protect=True)
    assert stats["categories"] == ["a", "b"] and stats["no_of_rare_categories"] == 1 and stats["has_nan"]
    assert encoding.texts(pd.Series(["a", "rare", None, "new"]), stats) == ["a", "_RARE_", None, "_RARE_"]
    _, all_rare = _reduce("LANGUAGE_CATEGORICAL", pd.Series(list("abcdefgh")), protect=True)
    assert not all_rare["categories"] and not generated_as_null(all_rare)  # "_RARE_" is left to generate


def test_text_length_is_protected_and_values_cut():
    values = pd.Series(["x" * n for n in range(1, 101)] + [None])
    encoding, stats = _reduce("LANGUAGE_TEXT", values, protect=True)
    assert 93 <= stats["nchar_max"] <= 95 and stats["nchar_avg"] == 50.5 and stats["has_nan"]
    assert encoding.texts(pd.Series(["y" * 200, None, 12]), stats) == ["y" * stats["nchar_max"], None, "12"]
    with pytest.raises(ValueError, match="every value is NULL"):
        _reduce("LANGUAGE_TEXT", pd.Series([None, None]), protect=True)


def test_only_language_types():
    with pytest.raises(ValueError, match="not a LANGUAGE encoding type"):
        get_language_encoding("TABULAR_CATEGORICAL")
