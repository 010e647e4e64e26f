"""TABULAR_LAT_LONG: quadtile round trips, parsing, NULLs, quad protection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import encoding_round_trip

from synthgen.column_encodings._lat_long import QUAD_LEVELS, LatLongEncoding

DIGITS = [f"P{i}" for i in range(26)]
CITIES = np.array([[48.20849, 16.37208], [40.71278, -74.00597], [-33.86882, 151.20929], [35.67620, 139.65031]])


def _round_trip(values, **kwargs):
    return encoding_round_trip(LatLongEncoding(), values, **kwargs)


def _floats(strings: pd.Series) -> np.ndarray:
    return strings.str.split(",", expand=True).astype(float).to_numpy()


def _positions(n: int, rng: np.random.Generator) -> np.ndarray:
    """Half uniform over the globe, half clustered around four cities."""
    uniform = np.column_stack([rng.uniform(-90, 90, n - n // 2), rng.uniform(-180, 180, n - n // 2)])
    clustered = CITIES[rng.integers(0, len(CITIES), n // 2)] + rng.normal(0, 0.05, (n // 2, 2))
    return np.concatenate([uniform, clustered])


def test_random_and_clustered_positions_round_trip_within_1e5_degrees():
    positions = _positions(4000, np.random.default_rng(0))
    values = pd.Series([f"{float(lat)!r}, {float(long)!r}" for lat, long in positions])
    stats, _, decoded = _round_trip(values)
    assert list(stats["cardinalities"])[-26:] == DIGITS
    assert all(stats["cardinalities"][name] == 4 for name in DIGITS)
    assert decoded.str.fullmatch(r"-?\d{1,3}\.\d{5}, -?\d{1,3}\.\d{5}").all()
    assert np.abs(_floats(decoded) - positions).max() <= 0.5e-5 + 1e-9


def test_five_decimal_strings_round_trip_exactly():
    positions = _positions(1000, np.random.default_rng(1))
    values = pd.Series([f"{lat:.5f}, {long:.5f}" for lat, long in positions])
    _, _, decoded = _round_trip(values)
    assert decoded.tolist() == values.tolist()


def test_poles_and_date_line():
    values = pd.Series(["90, 180", "-90,-180", "0,0", "  -0.000001 , 179.999996 ", "+45.5,-1e-5"])
    _, _, decoded = _round_trip(values)
    assert decoded.tolist() == [
        "90.00000, 180.00000", "-90.00000, -180.00000", "0.00000, 0.00000", "0.00000, 180.00000",
        "45.50000, -0.00001",
    ]


def test_digits_beyond_the_globe_decode_onto_its_edge():
    enc = LatLongEncoding()
    stats, codes, _ = _round_trip(pd.Series(["1, 2", "3, 4"]))
    codes = codes | {name: np.full(2, 3, dtype=np.int16) for name in DIGITS}
    assert enc.decode(codes, stats, rng=np.random.default_rng(0)).tolist() == ["90.00000, 180.00000"] * 2


def test_too_few_common_places_leave_out_every_quad_level():
    positions = CITIES[np.repeat(np.arange(4), 30)] + np.random.default_rng(2).normal(0, 1e-4, (120, 2))
    values = pd.Series([f"{lat:.5f}, {long:.5f}" for lat, long in positions])
    values[::7] = None
    stats, codes, decoded = _round_trip(values, protect=True)
    quads = [name for name in stats["cardinalities"] if name.startswith("QUAD")]
    assert list(stats["cardinalities"]) == ["nan", *quads, *DIGITS]
    # with only 4 places, no level holds 5 common prefixes: every quad level is left out
    assert quads == [] and stats["quad_codes"] == {}
    assert decoded.isna().tolist() == values.isna().tolist()


def test_quad_held_by_four_subjects_is_never_published():
    # 8 places of 30 subjects each, plus a lonely place with 4 subjects (40 rows)
    centres = np.column_stack([np.linspace(-60, 60, 8), np.linspace(-150, 150, 8)])
    positions = np.concatenate([centres[np.repeat(np.arange(8), 30)], np.tile([[-75.0, 100.0]], (40, 1))])
    values = pd.Series([f"{lat:.5f}, {long:.5f}" for lat, long in positions])
    subjects = np.concatenate([np.arange(240), 1000 + np.arange(40) % 4])
    for protect in (True, False):
        stats, codes, decoded = _round_trip(values, protect=protect, subjects=subjects)
        assert list(stats["quad_codes"]) == [f"QUAD{level}" for level in QUAD_LEVELS]
        for quad, quad_codes in stats["quad_codes"].items():
            assert len(quad_codes) == 9 and quad_codes["_RARE_"] == 0
            assert (codes[quad][-40:] == 0).all()  # the lonely place is rare on every level
            assert (codes[quad][:240] > 0).all()
        assert decoded.tolist() == values.tolist()  # the digits still place it exactly


def test_nulls_are_flagged_first_and_imputed_from_observed_positions():
    rng = np.random.default_rng(4)
    values = pd.Series(rng.choice(["10.00000, 20.00000", "-30.00000, 40.00000"], 200))
    values[rng.random(200) < 0.25] = None
    stats, codes, decoded = _round_trip(values)
    assert list(stats["cardinalities"])[0] == "nan"
    is_null = values.isna().to_numpy()
    assert (codes["nan"] == is_null).all()
    digits = np.column_stack([codes[name] for name in DIGITS])
    assert {tuple(row) for row in digits[is_null]} == {tuple(row) for row in digits[~is_null]}
    assert decoded.isna().tolist() == is_null.tolist()
    assert decoded[~is_null].tolist() == values[~is_null].tolist()


def test_all_null_and_empty_partitions_decode_to_null():
    enc = LatLongEncoding()
    rng = np.random.default_rng(0)
    partials = [enc.analyze(pd.Series([], dtype="str"), np.array([])),
                enc.analyze(pd.Series([None, None], dtype="str"), np.arange(2))]
    stats = enc.reduce(partials, value_protection=True, rng=rng)
    assert stats["cardinalities"] == {"nan": 2}
    assert enc.encode(pd.Series([None], dtype="str"), stats, rng=rng) == {"nan": np.ones(1, dtype=np.int16)}
    assert enc.decode({"nan": np.array([0, 1])}, stats, rng=rng).isna().all()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["1, 2", "north", "1;2", None], r"^cannot parse 2 values as 'latitude, longitude', e\.g\. 'north'; "),
        (["1, 2", "1, 2, 3"], r"^cannot parse 1 value as 'latitude, longitude', e\.g\. '1, 2, 3'; "),
        (["91, 0", "0, 180"], r"^has 1 value outside \|latitude\| <= 90 and \|longitude\| <= 180, e\.g\. '91, 0'\.$"),
        (["0, -180.5", "-95, 0"], r"^has 2 values outside .* e\.g\. '0, -180\.5'\.$"),
    ],
)
def test_invalid_values_raise(values, message):
    with pytest.raises(ValueError, match=message):
        LatLongEncoding().analyze(pd.Series(values, dtype="str"), np.arange(len(values)))


def test_numbers_raise():
    with pytest.raises(ValueError, match=r"^holds float64 values; a lat/long column needs strings"):
        LatLongEncoding().analyze(pd.Series([1.5]), np.arange(1))


def test_two_partials_merge_like_one():
    positions = _positions(2000, np.random.default_rng(5))
    values = pd.Series([f"{lat:.5f}, {long:.5f}" for lat, long in positions])
    enc = LatLongEncoding()
    whole, _, _ = _round_trip(values)
    partials = [enc.analyze(values.iloc[:500], np.arange(500)), enc.analyze(values.iloc[500:], np.arange(500, 2000))]
    assert enc.reduce(partials, value_protection=False, rng=np.random.default_rng(0)) == whole
