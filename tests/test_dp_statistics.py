"""Differentially private statistics in analyze: the mechanisms, the budget split and the ledger."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import synthgen as sg
from synthgen.privacy._dp_budget import resolve_dp_budget
from synthgen.privacy._dp_mechanisms import (
    ValueGrid,
    dp_bounds,
    exponential_rank,
    log_grid,
    threshold,
    threshold_categories,
)
from synthgen.privacy._ledger import ledger_totals

# -- mechanisms ----------------------------------------------------------------------------------------------


def test_threshold_matches_the_accounted_delta():
    assert threshold(1 / 16, 1e-6) == pytest.approx(1 + math.log(1 / 2e-6) * 16)  # ~211, NEXT-CAPABILITIES §2.2
    rng = np.random.default_rng(0)
    epsilon, delta = 1.0, 0.02
    released = sum("rare" in threshold_categories({"common": 500, "rare": 1}, epsilon, delta, rng)[0]
                   for _ in range(20_000))
    assert released / 20_000 <= delta * 1.2  # one subject's value clears the threshold with probability <= delta


def test_a_value_of_one_subject_is_never_released_over_many_seeds():
    for seed in range(300):
        kept, _ = threshold_categories({"a": 400, "b": 250, "secret": 1}, 0.5, 1e-6, np.random.default_rng(seed))
        assert set(kept) == {"a", "b"}


def test_exponential_rank_spends_the_epsilon_it_reports():
    """Neighbouring data (one value more) changes the probability of any cell by at most exp(epsilon)."""
    epsilon, n = 1.0, 40_000
    base = np.array([3, 2, 4, 1, 3, 2, 0, 5])
    neighbour = base.copy()
    neighbour[0] += 1
    rng = np.random.default_rng(1)
    draws = [np.bincount([exponential_rank(counts, 6, epsilon, rng) for _ in range(n)], minlength=len(base)) / n
             for counts in (base, neighbour)]
    frequent = (draws[0] > 0.02) & (draws[1] > 0.02)
    ratios = draws[0][frequent] / draws[1][frequent]
    assert frequent.sum() >= 4
    assert ratios.max() <= math.exp(epsilon) * 1.1 and ratios.min() >= math.exp(-epsilon) / 1.1
    assert ratios.max() > math.exp(epsilon / 2) * 1.05 or ratios.min() < math.exp(-epsilon / 2) / 1.05  # not ε/2


def test_bounds_never_exceed_the_data_and_are_noisy():
    grid = log_grid()
    values = np.random.default_rng(2).normal(50, 15, 5000).round(1)
    counts = grid.counts(values)
    lows, highs = [], []
    for seed in range(200):
        low, high, k = dp_bounds(grid, counts, 0.5, 0.5, len(values), np.random.default_rng(seed))
        lows.append(low)
        highs.append(high)
    assert min(lows) >= values.min() and max(highs) <= values.max()
    assert len(set(lows)) > 5 and len(set(highs)) > 5  # noisy
    assert np.median(lows) < np.quantile(values, 0.1) and np.median(highs) > np.quantile(values, 0.9)


def test_bounds_on_a_grid_of_whole_numbers_are_values():
    grid = ValueGrid(np.arange(0, 101, dtype=np.float64))
    lengths = np.random.default_rng(3).integers(3, 40, 2000)
    for seed in range(50):
        low, high, _ = dp_bounds(grid, grid.counts(lengths), 1.0, 1.0, len(lengths), np.random.default_rng(seed),
                                 exact=True)
        assert low.is_integer() and high.is_integer()
        assert lengths.min() <= low <= high <= lengths.max()


# -- analyze -------------------------------------------------------------------------------------------------

def _flat(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "color": rng.choice(["red", "green", "blue"], n).astype(object),
        "income": np.round(rng.lognormal(10, 0.8, n), 2),
        "joined": pd.to_datetime("2015-01-01") + pd.to_timedelta(rng.integers(0, 3000, n), unit="D"),
    })
    frame.loc[7, "color"] = "only-one-person"
    return frame


_TYPES = {"color": "TABULAR_CATEGORICAL", "income": "TABULAR_NUMERIC_BINNED", "joined": "TABULAR_DATETIME"}


@pytest.fixture(scope="module")
def flat_workspace(tmp_path_factory):
    return sg.split(_flat(), tgt_encoding_types=_TYPES, workspace_dir=tmp_path_factory.mktemp("dp") / "ws",
                    random_state=0)


def _dp_stats(ws, seed, **config):
    sg.analyze(workspace_dir=ws, differential_privacy=config, random_state=seed)
    return ws.read_stats("tgt"), ws.read_privacy_ledger()


def test_dp_analyze_releases_no_rare_value_and_bounds_inside_the_data(flat_workspace):
    data = _flat()
    seen = {"income": set(), "joined": set()}
    for seed in range(4):
        stats, _ = _dp_stats(flat_workspace, seed, epsilon=8.0, stats_share=0.5)
        columns = stats["columns"]
        assert set(columns["color"]["categories"]) == {"blue", "green", "red"}
        bins = columns["income"]["bins"]
        assert data["income"].min() <= bins[0] <= bins[-1] <= data["income"].max()
        low, high = pd.Timestamp(columns["joined"]["min"]), pd.Timestamp(columns["joined"]["max"])
        assert data["joined"].min() <= low <= high <= data["joined"].max()
        seen["income"].add((bins[0], bins[-1]))
        seen["joined"].add((low, high))
        assert stats["differential_privacy"] and not stats["value_protection"]
    assert len(seen["income"]) > 1 and len(seen["joined"]) > 1  # noisy: they differ across seeds


def test_the_budget_split_adds_up_to_the_statistics_share(flat_workspace):
    stats, ledger = _dp_stats(flat_workspace, 0, epsilon=8.0, stats_share=0.25, delta=1e-6)
    budget = resolve_dp_budget({"epsilon": 8.0, "stats_share": 0.25, "delta": 1e-6}, 1500)
    epsilon, delta = ledger_totals(ledger)
    assert epsilon == pytest.approx(budget.stats_epsilon) == pytest.approx(2.0)
    assert delta == pytest.approx(budget.stats_delta)  # the one thresholded column gets all of it
    assert {entry.column for entry in ledger} == {"color", "income", "joined"}
    for column in ("color", "income", "joined"):  # evenly over the columns
        assert sum(e.epsilon for e in ledger if e.column == column) == pytest.approx(2.0 / 3)
    assert all(entry.stage == "analyze" for entry in ledger)


def test_same_random_state_same_dp_statistics(flat_workspace):
    first, ledger = _dp_stats(flat_workspace, 5, epsilon=20.0)
    second, again = _dp_stats(flat_workspace, 5, epsilon=20.0)
    assert first == second and ledger == again


def test_analyze_without_dp_writes_no_ledger_and_clears_an_old_one(flat_workspace):
    _dp_stats(flat_workspace, 0, epsilon=20.0)
    assert flat_workspace.read_privacy_ledger()
    sg.analyze(workspace_dir=flat_workspace, random_state=0)
    assert flat_workspace.read_privacy_ledger() == []
    stats = flat_workspace.read_stats("tgt")
    assert stats["value_protection"] and not stats["differential_privacy"]


def _relative_events(n_subjects: int = 400, seed: int = 0):
    """Sequences starting in 2020-2021, a day to a month apart at day resolution; subject 0 is extreme: it starts
    in 1950 and waits 4,000 days between its two events."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 8, n_subjects)
    subject = np.repeat(np.arange(n_subjects), lengths)
    first = np.r_[True, subject[1:] != subject[:-1]]
    gaps = np.where(first, 0, rng.integers(1, 31, len(subject)))
    starts = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 730, n_subjects), unit="D")
    start_of_row = starts.to_numpy()[subject]
    cumulative = pd.Series(gaps).groupby(subject).cumsum().to_numpy()
    at = pd.Series(start_of_row + pd.to_timedelta(cumulative, unit="D").to_numpy())
    at[rng.random(len(at)) < 0.05] = pd.NaT
    heavy = pd.DataFrame({"id": [0, 0], "at": pd.to_datetime(["1950-01-01", "1950-01-01"]) +
                          pd.to_timedelta([0, 4000], unit="D")})
    tgt = pd.concat([heavy, pd.DataFrame({"id": subject, "at": at})[subject != 0]], ignore_index=True)
    return pd.DataFrame({"id": np.arange(n_subjects)}), tgt


def test_relative_datetimes_under_dp_count_each_subject_once(tmp_path):
    from synthgen.column_encodings import SequenceIndex
    from synthgen.column_encodings._datetime_relative import DatetimeRelativeEncoding

    ctx, tgt = _relative_events()
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id",
                  tgt_encoding_types={"at": "TABULAR_DATETIME_RELATIVE"}, workspace_dir=tmp_path / "ws",
                  random_state=0)
    data_itts = tgt.groupby("id")["at"].diff().dropna()
    normal = tgt[tgt["id"] != 0]["at"]
    seen = set()
    for seed in range(3):
        stats, ledger = _dp_stats(ws, seed, epsilon=20.0, stats_share=0.5)
        at = stats["columns"]["at"]
        assert at["encoding_type"] == "TABULAR_DATETIME_RELATIVE" and not at["has_time"]
        low, high = pd.Timestamp(at["min"]), pd.Timestamp(at["max"])
        assert normal.min() <= low <= high <= normal.max()  # inside the data, the 1950 start not released
        assert at["itt_min"] == 0 and not at["has_neg"]  # no event goes back in time
        assert 0 < at["itt_max"] <= pd.Timedelta(days=30).value // 1000  # the 4,000-day wait not released
        assert at["max_values"]["itt_week"] <= 4
        seen.add((low, high, at["itt_max"]))
        lines = [e for e in ledger if e.column == "at"]
        assert sorted(e.mechanism for e in lines) == [
            "exponential mechanism (ITT lower bound)", "exponential mechanism (ITT upper bound)",
            "exponential mechanism (lower bound)", "exponential mechanism (upper bound)",
            "laplace finest class (resolution)"]
        assert sum(e.epsilon for e in lines) == pytest.approx(10.0 / 2)  # the column and the sequence lengths
        assert all(e.delta == 0 for e in lines)
    assert len(seen) > 1  # noisy
    assert data_itts.max() == pd.Timedelta(days=4000)
    # the published stats encode and decode the column (clipped into them)
    encoding, rng = DatetimeRelativeEncoding(), np.random.default_rng(0)
    sequence = SequenceIndex(pd.factorize(tgt["id"])[0])
    codes = encoding.encode(tgt["at"], at, rng=rng, sequence=sequence)
    decoded = encoding.decode(codes, at, rng=rng, sequence=sequence)
    assert decoded.notna().sum() == tgt["at"].notna().sum()
    assert decoded.min() >= low


def test_relative_datetimes_with_a_declared_range_spend_nothing_on_the_start(tmp_path):
    ctx, tgt = _relative_events(seed=1)
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id",
                  tgt_encoding_types={"at": "TABULAR_DATETIME_RELATIVE"}, workspace_dir=tmp_path / "ws",
                  random_state=0)
    stats, ledger = _dp_stats(ws, 0, epsilon=20.0, stats_share=0.5, domains={"at": ("1940-01-01", "2030-01-01")})
    assert (stats["columns"]["at"]["min"], stats["columns"]["at"]["max"]) == ("1940-01-01", "2030-01-01")
    lines = {e.mechanism: e.epsilon for e in ledger if e.column == "at"}
    assert lines["declared domain (start bounds)"] == 0.0
    assert sum(lines.values()) == pytest.approx(5.0)  # the start's share went to the ITT and the resolution


def test_characters_of_one_subject_are_never_released(tmp_path):
    rng = np.random.default_rng(5)
    codes = pd.Series(rng.choice(["AB1", "AB2", "CD1"], 3000)).astype(object)
    codes[0] = "ZZZ9"
    ws = sg.split(pd.DataFrame({"code": codes}), tgt_encoding_types={"code": "TABULAR_CHARACTER"},
                  workspace_dir=tmp_path / "ws", random_state=0)
    for seed in range(3):
        stats, ledger = _dp_stats(ws, seed, epsilon=40.0, stats_share=0.5)
        published = stats["columns"]["code"]["codes"]
        assert list(published) == ["P0", "P1", "P2"]  # the fourth position is one subject's: not published
        assert set(published["P0"]) == {"\0", "A", "C"} and set(published["P2"]) == {"\0", "1", "2"}
        assert [(e.mechanism, e.epsilon) for e in ledger] == [("laplace threshold (characters per position)", 20.0)]


@pytest.mark.parametrize(("config", "message"), [
    ({"epsilon": -1}, "epsilon must be a positive finite number or None; got -1 instead."),
    ({"epsilon": 1, "delta": 1.0}, r"delta must be a number in the open interval \(0, 1\) or None; got 1.0 instead."),
    ({"epsilon": 1, "max_epsilon": 2}, "give either epsilon"),
])
def test_bad_dp_configs_are_named(flat_workspace, config, message):
    with pytest.raises(ValueError, match=r"^The 'differential_privacy' parameter of analyze is invalid: .*" + message):
        sg.analyze(workspace_dir=flat_workspace, differential_privacy=config)


def test_auto_numbers_under_dp_resolve_from_dp_outputs(tmp_path):
    rng = np.random.default_rng(4)
    data = pd.DataFrame({"few": rng.choice([1, 2, 3], 2000), "age": rng.integers(100, 1000, 2000),
                         "amount": np.round(rng.lognormal(8, 1, 2000), 2)})
    ws = sg.split(data, workspace_dir=tmp_path / "ws", random_state=0)
    stats, ledger = _dp_stats(ws, 0, epsilon=20.0, stats_share=0.5)
    types = {c: s["encoding_type"] for c, s in stats["columns"].items()}
    assert types == {"few": "TABULAR_NUMERIC_DISCRETE", "age": "TABULAR_NUMERIC_DIGIT",
                     "amount": "TABULAR_NUMERIC_BINNED"}
    assert stats["columns"]["amount"]["min_decimal"] == -2
    assert data["age"].min() <= stats["columns"]["age"]["min"] <= stats["columns"]["age"]["max"] <= data["age"].max()
    assert ledger_totals(ledger)[0] <= 10.0 + 1e-9


# -- two-table -----------------------------------------------------------------------------------------------

def _two_table(n_subjects: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    ctx = pd.DataFrame({"id": np.arange(n_subjects), "kind": rng.choice(["x", "y"], n_subjects).astype(object)})
    lengths = rng.integers(2, 30, n_subjects)
    tgt = pd.DataFrame({"id": np.repeat(ctx["id"], lengths).to_numpy(),
                        "item": rng.choice(["p", "q", "r"], lengths.sum()).astype(object)})
    # one subject with many events of one value: it must still count as a single subject
    heavy = pd.DataFrame({"id": 0, "item": ["heavy-user-secret"] * 400})
    return ctx, pd.concat([tgt, heavy], ignore_index=True), lengths


def test_two_table_sequence_lengths_and_heavy_subjects_under_dp(tmp_path):
    ctx, tgt, lengths = _two_table()
    lengths[0] += 400
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id", workspace_dir=tmp_path / "ws",
                  random_state=0)
    for seed in range(3):
        stats, ledger = _dp_stats(ws, seed, epsilon=10.0, stats_share=0.5)
        assert set(stats["columns"]["item"]["categories"]) == {"p", "q", "r"}
        seq = stats["seq_len"]
        assert lengths.min() <= seq["min"] <= seq["median"] <= seq["max"] <= lengths.max()
        assert seq["max"] < 400  # the heavy subject's length is not released
        assert sg.Workspace(ws.root).read_stats("ctx")["columns"]["kind"]["categories"] == ["x", "y"]
        lines = [entry for entry in ledger if entry.column is None]
        assert len(lines) == 3 and all("sequence length" in entry.mechanism for entry in lines)
        assert ledger_totals(ledger)[0] == pytest.approx(5.0)  # tgt item, ctx kind, sequence lengths
        assert stats["is_sequential"]


def test_a_budget_too_small_for_sequence_length_bounds_is_refused_unless_a_maximum_is_declared(tmp_path):
    ctx, tgt, lengths = _two_table(n_subjects=200)  # lengths 2..29, one subject with 400 more
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id", workspace_dir=tmp_path / "ws",
                  random_state=0)
    message = ("The 'differential_privacy' parameter of analyze is invalid: the sequence lengths get an epsilon of "
               "0.01 per bound, too small to find bounds inside the data of 200 subjects: the upper bound could "
               "reach 65,536 events per sequence. Declare the public maximum number of events per subject "
               "(differential_privacy={..., 'max_sequence_length': n}; longer sequences are cut to it), or raise "
               "epsilon or stats_share.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        _dp_stats(ws, 0, epsilon=1.0)  # 0.1 for 3 units: 0.0333 each, 0.3 of it per bound
    assert not ws.stats_path("tgt").exists()  # refused before anything was written
    for seed in range(3):  # the declared maximum caps what the too small budget publishes
        with pytest.warns(UserWarning, match=r"they may be wider than the data's \(at most the declared "
                                             r"max_sequence_length 40\)"):
            stats, ledger = _dp_stats(ws, seed, epsilon=1.0, max_sequence_length=40)
        seq = stats["seq_len"]
        assert 0 <= seq["min"] <= seq["median"] <= seq["max"] <= 40
        lines = [(e.mechanism, e.epsilon) for e in ledger if e.column is None]
        assert lines[0] == ("declared maximum (sequence length)", 0.0)  # public knowledge, on the ledger
        assert sum(epsilon for _, epsilon in lines) == pytest.approx(0.1 / 3)
    # a budget that can bound the lengths: inside the data and the declared maximum, the longer sequences cut
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # this budget bounds the lengths: no warning
        stats, _ = _dp_stats(ws, 0, epsilon=40.0, stats_share=0.5, max_sequence_length=20)
    assert lengths.min() <= stats["seq_len"]["min"] <= stats["seq_len"]["max"] <= 20
    sg.encode(workspace_dir=ws, random_state=0)
    assert sg.Workspace(ws.root).read_stats("tgt")["is_sequential"]


@pytest.mark.parametrize("name", ["max_sequence_length", "max_text_length"])
@pytest.mark.parametrize("value", [0, 2**16 + 1, 2.5, True, "40"])
def test_declared_maxima_must_be_whole_numbers_in_range(name, value):
    with pytest.raises(ValueError, match="^" + re.escape(f"{name} must be an int in [1, 65536] or None; got "
                                                         f"{value!r} instead.") + "$"):
        sg.DifferentialPrivacyConfig(epsilon=1.0, **{name: value})
    assert getattr(sg.DifferentialPrivacyConfig.coerce({"epsilon": 1.0, name: 2**16}), name) == 2**16


def test_the_sequence_length_bound_can_reach_the_declared_maximum(tmp_path):
    ctx, tgt, lengths = _two_table(n_subjects=600)  # lengths 2..29, one subject with 400 more
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id", workspace_dir=tmp_path / "ws",
                  random_state=0)
    stats, _ = _dp_stats(ws, 0, epsilon=40.0, stats_share=0.5, max_sequence_length=2)
    assert stats["seq_len"]["max"] == 2  # every subject has at least 2 events: the bound is the maximum itself


# -- text lengths ----------------------------------------------------------------------------------------------

def _texts(tmp_path, n: int, longest: int = 30):
    rng = np.random.default_rng(8)
    texts = ["a" * int(k) for k in rng.integers(longest - 5, longest + 1, n)]
    texts[0] = "x" * 500  # one subject's very long text
    return sg.split(pd.DataFrame({"review": texts}), model_type="LANGUAGE", workspace_dir=tmp_path / "ws",
                    random_state=0, tgt_encoding_types={"review": "LANGUAGE_TEXT"})


def test_a_budget_too_small_for_the_text_length_bound_is_refused_unless_a_maximum_is_declared(tmp_path):
    ws = _texts(tmp_path, 200)
    message = ("The 'differential_privacy' parameter of analyze is invalid: the LANGUAGE_TEXT column 'review' gets an "
               "epsilon of 0.05 for the upper bound of its text lengths, too small to find a bound inside the data "
               "of 200 subjects: it could reach 65,536 characters per text. Declare the public maximum number of "
               "characters per text (differential_privacy={..., 'max_text_length': n}; longer texts are cut to it), "
               "or raise epsilon or stats_share.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        _dp_stats(ws, 0, epsilon=1.0)  # 0.1 for the one column, half of it for the bound
    assert not ws.stats_path("tgt").exists()  # refused before anything was written
    warning = ("Column 'review' of tgt_data: under differential privacy the upper bound of its text lengths gets an "
               "epsilon of 0.05, too small for 200 subjects to keep it inside the data: texts may be cut to and "
               "generated with more characters than the data's longest (at most the declared max_text_length 12). "
               "Raise epsilon or stats_share.")
    for seed in range(3):  # the declared maximum caps what the too small budget publishes
        with pytest.warns(UserWarning, match="^" + re.escape(warning) + "$"):
            stats, ledger = _dp_stats(ws, seed, epsilon=1.0, max_text_length=12)
        assert 1 <= stats["columns"]["review"]["nchar_avg"] <= stats["columns"]["review"]["nchar_max"] <= 12
        lines = [(e.mechanism, e.epsilon) for e in ledger if e.column == "review"]
        assert lines[0] == ("declared maximum (text length)", 0.0)  # public knowledge, on the ledger
        assert sum(epsilon for _, epsilon in lines) == pytest.approx(0.1)


def test_a_declared_text_maximum_caps_the_bound_and_the_encoded_texts(tmp_path):
    ws = _texts(tmp_path, 1000)  # lengths 25..30 and one of 500
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # this budget bounds the lengths: no warning
        stats, _ = _dp_stats(ws, 0, epsilon=40.0, stats_share=0.5)
        assert 25 <= stats["columns"]["review"]["nchar_max"] <= 30  # inside the data: the 500 is not published
        stats, _ = _dp_stats(ws, 0, epsilon=40.0, stats_share=0.5, max_text_length=20)
    assert stats["columns"]["review"]["nchar_max"] == 20  # every text is longer: the bound is the maximum itself
    sg.encode(workspace_dir=ws, random_state=0)
    encoded = pd.concat([pd.read_parquet(p) for p in ws.partitions(ws.encoded_data)])
    assert set(encoded["tgt:review"].str.len()) == {20}  # longer texts are cut to the bound when encoded


# -- declared domains and small budgets ----------------------------------------------------------------------

def test_declared_domains_are_published_free_and_the_rest_gets_the_budget(flat_workspace):
    domains = {"color": ["red", "green", "blue", "violet"], "joined": ("2014-01-01", "2024-01-01")}
    stats, ledger = _dp_stats(flat_workspace, 0, epsilon=2.0, stats_share=0.5, domains=domains)
    columns = stats["columns"]
    assert columns["color"]["categories"] == ["blue", "green", "red", "violet"]
    assert (columns["joined"]["min"], columns["joined"]["max"]) == ("2014-01-01", "2024-01-01")
    free = [entry for entry in ledger if entry.mechanism.startswith("declared domain")]
    assert {(e.column, e.epsilon, e.delta) for e in free} == {("color", 0.0, 0.0), ("joined", 0.0, 0.0)}
    # color costs nothing: the statistics budget of 1.0 goes to the two other columns, half each
    for column in ("income", "joined"):
        assert sum(e.epsilon for e in ledger if e.column == column) == pytest.approx(0.5)
    assert ledger_totals(ledger) == (pytest.approx(1.0), 0.0)  # no threshold ran: no delta spent


@pytest.mark.parametrize(("domains", "message"), [
    ({"income": ["a", "b"]}, r"Column 'income' of tgt_data: its declared domain \['a', 'b'\] does not fit its "
                             r"encoding type TABULAR_NUMERIC_BINNED; declare a \(low, high\) pair \(a tuple; a list "
                             r"declares categories; in JSON \{\"low\": \.\.\., \"high\": \.\.\.\}\) or no domain\.$"),
    ({"joined": (5, "x")}, r"Column 'joined' of tgt_data: its declared domain \(5, 'x'\) holds values that are not "
                           r"datetimes."),
    ({"nope": ["a"]}, r"The 'differential_privacy' parameter of analyze is invalid: differential_privacy declares "
                      r"domains of columns that no table has: \['nope'\]."),
])
def test_declared_domains_that_do_not_fit_are_refused_before_anything_changes(flat_workspace, domains, message):
    sg.analyze(workspace_dir=flat_workspace, random_state=0)
    with pytest.raises(ValueError, match="^" + message):
        sg.analyze(workspace_dir=flat_workspace, differential_privacy={"epsilon": 1.0, "domains": domains})
    assert flat_workspace.stats_path("tgt").exists()  # the previous analysis is intact


def test_a_two_item_list_for_a_numeric_auto_column_is_refused_not_read_as_two_categories(tmp_path):
    data = pd.DataFrame({"age": np.random.default_rng(0).integers(17, 91, 300)})  # AUTO: a list or a pair fits
    ws = sg.split(data, workspace_dir=tmp_path / "ws", random_state=0)
    message = ("Column 'age' of tgt_data: its declared domain [17, 90] is a list, which declares categories, not a "
               "range; for the range declare the pair (17, 90) (in JSON {\"low\": 17, \"high\": 90}), for two "
               "categories give the column the encoding type TABULAR_NUMERIC_DISCRETE.")
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        sg.analyze(workspace_dir=ws, differential_privacy={"epsilon": 1.0, "domains": {"age": [17, 90]}})
    for domain in [(17, 90), {"low": 17, "high": 90}]:  # the two forms of a range: published as declared, free
        stats, ledger = _dp_stats(ws, 0, epsilon=1.0, domains={"age": domain})
        assert (stats["columns"]["age"]["min"], stats["columns"]["age"]["max"]) == (17, 90)
        assert ("declared domain (bounds)", 0.0) in [(e.mechanism, e.epsilon) for e in ledger]
    stats, _ = _dp_stats(ws, 0, epsilon=1.0, domains={"age": list(range(17, 91))})  # longer lists: categories
    assert stats["columns"]["age"]["encoding_type"] == "TABULAR_NUMERIC_DISCRETE"


def test_a_budget_too_small_for_bounds_publishes_no_range_and_says_so(flat_workspace):
    with pytest.warns(UserWarning, match=r"Column 'income' of tgt_data: its epsilon of .* per bound is too small "
                                         r"to find bounds inside the data of 1500 subjects"):
        stats, ledger = _dp_stats(flat_workspace, 0, epsilon=0.3)
    assert stats["columns"]["income"]["bins"] == [] and stats["columns"]["joined"]["min"] is None
    assert not [entry for entry in ledger if "bound" in entry.mechanism]  # nothing spent on bounds not run


def test_language_columns_under_dp(tmp_path):
    rng = np.random.default_rng(6)
    n = 3000
    data = pd.DataFrame({
        "stars": rng.choice(["1", "3", "5"], n).astype(object),
        "price": np.round(rng.uniform(10, 100, n), 2),
        "day": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
        "review": rng.choice(["great", "not bad at all", "awful"], n).astype(object),
    })
    data.loc[0, "review"] = "x" * 500  # one subject's very long text: its length is not published
    ws = sg.split(data, model_type="LANGUAGE", workspace_dir=tmp_path / "ws", random_state=0,
                  tgt_encoding_types={"stars": "LANGUAGE_CATEGORICAL", "price": "LANGUAGE_NUMERIC",
                                      "day": "LANGUAGE_DATETIME", "review": "LANGUAGE_TEXT"})
    stats, ledger = _dp_stats(ws, 0, epsilon=40.0, stats_share=0.5)
    columns = stats["columns"]
    assert columns["stars"]["categories"] == ["1", "3", "5"]
    assert 10 <= columns["price"]["min"] <= columns["price"]["max"] <= 100 and columns["price"]["max_scale"] == 2
    assert "2024-01-01" <= columns["day"]["min"] <= columns["day"]["max"] <= "2024-10-27"
    assert 5 <= columns["review"]["nchar_max"] <= 14 and 1 <= columns["review"]["nchar_avg"] <= 14
    assert ledger_totals(ledger)[0] == pytest.approx(20.0)


def test_a_column_of_mostly_zeros_keeps_its_declared_range(tmp_path):
    rng = np.random.default_rng(7)
    gains = np.where(rng.random(4000) < 0.9, 0, rng.integers(100, 99_999, 4000))
    ws = sg.split(pd.DataFrame({"gain": gains}), tgt_encoding_types={"gain": "TABULAR_NUMERIC_BINNED"},
                  workspace_dir=tmp_path / "ws", random_state=0)
    for epsilon in (0.05, 5.0):  # zeros say nothing about decimals: the range never collapses onto 0
        stats, _ = _dp_stats(ws, 0, epsilon=epsilon, stats_share=0.5, domains={"gain": (0, 99_999)})
        gain = stats["columns"]["gain"]
        assert (gain["bins"][0], gain["bins"][-1]) == (0, 99_999) and gain["min_decimal"] <= 4
