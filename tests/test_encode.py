import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from synthgen import Workspace, WorkspaceError, analyze, encode, split
from synthgen.stages._codec import decode_table, encode_table
from synthgen.stages._encode import sequence_layout


def _encoded(ws, split_name="trn"):
    return pq.read_table(ws / "OriginalData" / "encoded-data" / f"part.000000-{split_name}.parquet")


def _stats(ws, table="tgt"):
    return json.loads((ws / "ModelStore" / f"{table}-stats" / "stats.json").read_text())


def test_flat_encoding_has_one_code_column_per_sub_column(adult, workspace):
    split(adult, workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    encode(workspace_dir=workspace, random_state=0)
    stats = _stats(workspace)
    table = _encoded(workspace)
    expected = [f"tgt:{c['argn_column']}__{sub}" for c in stats["columns"].values() for sub in c["cardinalities"]]
    assert table.column_names == expected
    assert table.num_rows == stats["no_of_training_records"]
    assert _encoded(workspace, "val").num_rows == stats["no_of_validation_records"]
    for column in stats["columns"].values():
        for sub, card in column["cardinalities"].items():
            codes = table.column(f"tgt:{column['argn_column']}__{sub}").to_numpy()
            assert codes.min() >= 0 and codes.max() < card


def test_encode_requires_analyze(adult, workspace):
    split(adult, workspace_dir=workspace)
    with pytest.raises(WorkspaceError, match="holds no completed 'analyze' stage"):
        encode(workspace_dir=workspace)


def test_round_trip_of_a_whole_table_keeps_values_and_dtypes(adult, workspace):
    adult = adult.astype({"age": "Int64", "sex": "category"})
    adult.loc[:9, "age"] = pd.NA
    split(adult, workspace_dir=workspace, random_state=0)
    analyze(value_protection=False, workspace_dir=workspace, random_state=0)
    columns = _stats(workspace)["columns"]
    rng = np.random.default_rng(0)
    codes = encode_table(adult, columns, table="tgt", rng=rng)
    decoded = decode_table(codes, columns, rng=rng)
    for column in adult.columns:
        if columns[column]["encoding_type"] == "TABULAR_NUMERIC_BINNED":
            continue
        assert decoded[column].dtype == adult[column].dtype, column
        pd.testing.assert_series_equal(decoded[column], adult[column], check_names=False,
                                       check_categorical=False)


def test_sequence_layout_pads_each_sequence_with_an_end_step():
    subjects = np.array([0, 0, 0, 2, 2, 3])
    keep, destination, lengths, offsets = sequence_layout(subjects, 4, max_len=2)
    assert keep.tolist() == [True, True, False, True, True, True]
    assert lengths.tolist() == [2, 0, 2, 1]
    assert offsets.tolist() == [0, 3, 4, 7, 9]
    assert destination.tolist() == [0, 1, 4, 5, 7]


def test_two_table_encoding_layout(planes_flights, workspace):
    planes, flights = planes_flights
    planes = pd.concat([planes, pd.DataFrame({"tailnum": ["NO-FLIGHTS"], "seats": [3]})], ignore_index=True)
    split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
          workspace_dir=workspace, random_state=0, trn_val_split=lambda keys: (keys, []))
    analyze(value_protection=False, workspace_dir=workspace, random_state=0)
    encode(workspace_dir=workspace, random_state=0)
    stats, ctx_stats = _stats(workspace), _stats(workspace, "ctx")
    table = _encoded(workspace).to_pandas()
    assert len(table) == len(planes)
    slen = table["tgt:/__slen"].map(lambda v: v[0])
    lengths = flights.groupby("tailnum").size().reindex(planes["tailnum"], fill_value=0)
    assert sorted(slen) == sorted(lengths)
    assert (slen == 0).sum() == 1
    carrier = f"tgt:{stats['columns']['carrier']['argn_column']}__cat"
    for _, row in table.iterrows():
        n = row["tgt:/__slen"][0]
        assert list(row["tgt:/__sidx"]) == list(range(n + 1))
        assert list(row["tgt:/__ridx"]) == list(range(n, -1, -1))
        assert len(row[carrier]) == n + 1 and row[carrier][-1] == 0  # the end-of-sequence step
        assert min(row[carrier][:-1], default=1) >= 1  # real steps never use the end code for known carriers
    ctx_cols = [c for c in table.columns if c.startswith("ctx:")]
    assert len(ctx_cols) == sum(len(c["cardinalities"]) for c in ctx_stats["columns"].values())
    assert all(np.isscalar(v) for v in table[ctx_cols[0]])


def test_sequences_are_truncated_to_the_protected_maximum(planes_flights, workspace):
    planes, flights = planes_flights
    split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
          workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    encode(workspace_dir=workspace, random_state=0)
    max_len = _stats(workspace)["seq_len"]["max"]
    table = _encoded(workspace).to_pandas()
    assert table["tgt:/__slen"].map(lambda v: v[0]).max() <= max_len
    assert max_len < flights.groupby("tailnum").size().max()


def test_encode_is_reproducible(adult, tmp_path):
    for name in "ab":
        split(adult, workspace_dir=tmp_path / name, random_state=0)
        analyze(workspace_dir=tmp_path / name, random_state=0)
        encode(workspace_dir=tmp_path / name, random_state=1)
    assert _encoded(tmp_path / "a").equals(_encoded(tmp_path / "b"))


def test_interrupted_encode_leaves_no_encoded_data(adult, workspace, monkeypatch):
    split(adult, workspace_dir=workspace, random_state=0, n_partitions=2)
    analyze(workspace_dir=workspace, random_state=0)
    calls = []

    def stop_midway(**kwargs):
        calls.append(kwargs)
        if kwargs.get("completed", 0) >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode(workspace_dir=workspace, update_progress=stop_midway)
    with pytest.raises(WorkspaceError):
        Workspace(workspace).require("encode")
    assert not any(p.name.startswith("part.") for p in (workspace / "OriginalData").rglob("*encoded*/*"))
