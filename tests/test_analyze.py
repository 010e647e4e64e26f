import json

import numpy as np
import pandas as pd
import pytest

from synthgen import WorkspaceError, analyze, split


def _stats(ws, table="tgt"):
    return json.loads((ws / "ModelStore" / f"{table}-stats" / "stats.json").read_text())


def _frame_with_rare(n_holders: int, n=300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = rng.choice(["a", "b", "c"], size=n).astype(object)
    values[:n_holders] = "secret"
    return pd.DataFrame({"cat": values, "x": rng.normal(size=n)})


@pytest.mark.parametrize("seed", range(5))
def test_category_of_four_subjects_is_never_published(workspace, seed):
    split(_frame_with_rare(4), workspace_dir=workspace, random_state=seed)
    analyze(workspace_dir=workspace, random_state=seed)
    stats = _stats(workspace)["columns"]["cat"]
    assert "secret" not in stats["categories"]
    assert stats["no_of_rare_categories"] == 1


def test_category_of_eight_subjects_is_published(workspace):
    split(_frame_with_rare(8), workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    assert "secret" in _stats(workspace)["columns"]["cat"]["categories"]


def test_without_value_protection_everything_is_published(workspace):
    split(_frame_with_rare(1), workspace_dir=workspace, random_state=0)
    analyze(value_protection=False, workspace_dir=workspace)
    assert "secret" in _stats(workspace)["columns"]["cat"]["categories"]


def test_rare_counts_subjects_not_rows_in_two_table_targets(workspace):
    # one heavy subject holds "secret" in 40 rows; with rows counted it would look common
    rng = np.random.default_rng(1)
    keys = np.repeat(np.arange(60), 10)
    events = pd.DataFrame({"key": keys, "cat": rng.choice(["a", "b"], size=len(keys)).astype(object)})
    events.loc[:39, "cat"] = "secret"  # subjects 0..3 only
    ctx = pd.DataFrame({"key": np.arange(60), "size": rng.integers(0, 5, 60)})
    split(events, ctx_data=ctx, tgt_context_key="key", ctx_primary_key="key", workspace_dir=workspace,
          random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    assert "secret" not in _stats(workspace)["columns"]["cat"]["categories"]


def test_four_rows_of_one_subject_stay_rare(workspace):
    rng = np.random.default_rng(2)
    keys = np.repeat(np.arange(50), 4)
    events = pd.DataFrame({"key": keys, "cat": rng.choice(["a", "b"], size=len(keys)).astype(object)})
    events.loc[events["key"] == 7, "cat"] = "secret"
    split(events, tgt_context_key="key", workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    assert "secret" not in _stats(workspace)["columns"]["cat"]["categories"]


def test_flat_stats_have_counts_and_argn_ids(adult, workspace):
    split(adult, workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    stats = _stats(workspace)
    assert stats["no_of_training_records"] == 1600
    assert stats["no_of_validation_records"] == 400
    assert stats["is_sequential"] is False
    assert list(stats["columns"]) == list(adult.columns)
    assert [c["argn_column"] for c in stats["columns"].values()] == [f"c{i}" for i in range(15)]
    # numeric AUTO is resolved at analysis (rare ages of this small slice push age from DISCRETE to DIGIT)
    assert stats["columns"]["age"]["encoding_type"] in ("TABULAR_NUMERIC_DISCRETE", "TABULAR_NUMERIC_DIGIT")
    assert stats["columns"]["fnlwgt"]["encoding_type"] == "TABULAR_NUMERIC_BINNED"
    for column in stats["columns"].values():
        assert all(isinstance(n, int) and n >= 1 for n in column["cardinalities"].values())


def test_extreme_values_are_clipped_out_of_published_range(workspace):
    rng = np.random.default_rng(3)
    values = rng.normal(50, 5, size=500)
    extremes = np.array([1000.0, 1001.0, 1002.0, 1003.0, 1004.0])
    values[:5] = extremes
    values[5:10] = -extremes
    split(pd.DataFrame({"v": values}), tgt_encoding_types={"v": "TABULAR_NUMERIC_BINNED"},
          workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    stats = _stats(workspace)["columns"]["v"]
    assert stats["bins"][-1] < 1000.0
    assert stats["bins"][0] > -1000.0


def test_two_table_sequence_lengths(planes_flights, workspace):
    planes, flights = planes_flights
    planes = pd.concat([planes, pd.DataFrame({"tailnum": ["NO-FLIGHTS"]})], ignore_index=True)
    split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
          workspace_dir=workspace, random_state=0)
    analyze(value_protection=False, workspace_dir=workspace, random_state=0)
    stats = _stats(workspace)
    lengths = flights.groupby("tailnum").size().reindex(planes["tailnum"], fill_value=0)
    assert stats["seq_len"] == {"min": 0, "max": int(lengths.max()), "median": int(np.median(lengths)),
                                "value_protection": False}
    assert stats["is_sequential"] is True
    assert stats["no_of_training_records"] + stats["no_of_validation_records"] == len(planes)
    ctx_stats = _stats(workspace, "ctx")
    assert set(ctx_stats["columns"]) == set(planes.columns) - {"tailnum"}
    assert all(c["argn_processor"] == "ctx" for c in ctx_stats["columns"].values())
    # with protection the longest sequences are clipped
    analyze(workspace_dir=workspace, random_state=0)
    protected = _stats(workspace)["seq_len"]
    assert protected["max"] < lengths.max()
    assert protected["max"] <= sorted(lengths)[-6]


def test_analyze_requires_split(workspace):
    with pytest.raises(WorkspaceError, match="holds no completed 'split' stage; run split\\(\\) first"):
        analyze(workspace_dir=workspace)


def test_all_null_column_is_handled(adult, workspace):
    frame = adult.assign(nothing=pd.Series([None] * len(adult), dtype=object),
                         no_number=np.full(len(adult), np.nan))
    split(frame, workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    stats = _stats(workspace)["columns"]
    assert stats["nothing"]["categories"] == []
    assert stats["nothing"]["has_nan"] is True


def test_analyze_reports_progress_and_is_reproducible(adult, tmp_path):
    calls = []
    split(adult, workspace_dir=tmp_path / "a", random_state=0, n_partitions=2)
    analyze(workspace_dir=tmp_path / "a", random_state=7, update_progress=lambda **kw: calls.append(kw))
    assert calls[0] == {"total": 4, "completed": 0}
    assert calls[-1]["completed"] == 4
    split(adult, workspace_dir=tmp_path / "b", random_state=0, n_partitions=2)
    analyze(workspace_dir=tmp_path / "b", random_state=7)
    assert _stats(tmp_path / "a") == _stats(tmp_path / "b")
