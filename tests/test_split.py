import json

import numpy as np
import pandas as pd
import pytest

from synthgen import Workspace, WorkspaceError, analyze, split


def _read_parts(ws_root, table="tgt"):
    parts = sorted((ws_root / "OriginalData" / f"{table}-data").glob("part.*.parquet"))
    return {p.name: pd.read_parquet(p) for p in parts}


def test_flat_split_writes_seed_layout_and_keeps_every_row(adult, workspace):
    split(adult, workspace_dir=workspace, n_partitions=3, random_state=0)
    parts = _read_parts(workspace)
    assert sorted(parts) == [f"part.{i:06d}-{s}.parquet" for i in range(3) for s in ("trn", "val")]
    together = pd.concat(parts.values())
    assert len(together) == len(adult)
    n_trn = sum(len(f) for n, f in parts.items() if n.endswith("trn.parquet"))
    assert n_trn == round(0.8 * len(adult))
    meta = workspace / "OriginalData" / "tgt-meta"
    assert json.loads((meta / "keys.json").read_text()) == {}
    types = json.loads((meta / "encoding-types.json").read_text())
    assert types["age"] == "TABULAR_NUMERIC_AUTO"
    assert types["workclass"] == "TABULAR_CATEGORICAL"
    assert json.loads((meta / "dtypes.json").read_text())["age"] == "int64"
    # rows are the original ones (as multisets)
    key = ["age", "fnlwgt", "education", "hours_per_week"]
    assert sorted(map(tuple, together[key].to_numpy().tolist())) == sorted(map(tuple, adult[key].to_numpy().tolist()))


def test_split_is_reproducible_and_seed_dependent(adult, tmp_path):
    split(adult, workspace_dir=tmp_path / "a", random_state=5)
    split(adult, workspace_dir=tmp_path / "b", random_state=5)
    split(adult, workspace_dir=tmp_path / "c", random_state=6)
    a, b, c = (_read_parts(tmp_path / x)["part.000000-trn.parquet"] for x in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_two_table_split_keeps_subjects_on_one_side(planes_flights, workspace):
    planes, flights = planes_flights
    split(flights, ctx_data=planes, tgt_context_key="tailnum", ctx_primary_key="tailnum",
          workspace_dir=workspace, n_partitions=2, random_state=0)
    tgt, ctx = _read_parts(workspace, "tgt"), _read_parts(workspace, "ctx")
    assert sorted(tgt) == sorted(ctx)
    seen = {}
    for name in tgt:
        keys = set(ctx[name]["tailnum"])
        assert set(tgt[name]["tailnum"]) <= keys
        for key in keys:
            assert key not in seen
            seen[key] = name
        # rows of a subject are contiguous and in their original order
        frame = tgt[name]
        first = frame.groupby("tailnum", sort=False).cumcount()
        assert (frame.loc[first == 0, "tailnum"].is_unique)
        for key, rows in frame.groupby("tailnum", sort=False):
            original = flights[flights["tailnum"] == key]
            assert rows["time_hour"].tolist() == original["time_hour"].tolist()
    assert len(seen) == len(planes)
    assert sum(len(f) for f in tgt.values()) == len(flights)
    assert json.loads((workspace / "OriginalData" / "ctx-meta" / "keys.json").read_text()) == {"primary_key": "tailnum"}


def test_context_key_without_context_table_synthesizes_key_only_context(planes_flights, workspace):
    _, flights = planes_flights
    split(flights, tgt_context_key="tailnum", workspace_dir=workspace, random_state=0)
    ctx = pd.concat(_read_parts(workspace, "ctx").values())
    assert list(ctx.columns) == ["tailnum"]
    assert set(ctx["tailnum"]) == set(flights["tailnum"])


@pytest.mark.parametrize(
    "make, kwargs, error, message",
    [
        (lambda a, p, f: a.assign(id=1), {"tgt_primary_key": "id"}, ValueError,
         r"tgt_primary_key 'id' is not unique: 1999 duplicate values, e.g. 1\."),
        (lambda a, p, f: f, {"ctx_data": "planes_missing", "tgt_context_key": "tailnum", "ctx_primary_key": "tailnum"},
         ValueError, r"rows of tgt_data have a tgt_context_key 'tailnum' that is not a ctx_primary_key of ctx_data"),
        (lambda a, p, f: f, {"ctx_data": "planes_dup", "tgt_context_key": "tailnum", "ctx_primary_key": "tailnum"},
         ValueError, r"ctx_primary_key 'tailnum' is not unique: 1 duplicate values"),
        (lambda a, p, f: f, {"ctx_data": "planes", "tgt_context_key": "nope", "ctx_primary_key": "tailnum"},
         ValueError, r"tgt_context_key 'nope' is not a column of tgt_data"),
        (lambda a, p, f: f, {"ctx_data": "planes", "tgt_context_key": "tailnum"}, ValueError,
         r"ctx_primary_key must name its primary key column"),
        (lambda a, p, f: a, {"tgt_encoding_types": {"agee": "TABULAR_CATEGORICAL"}}, ValueError,
         r"tgt_encoding_types names columns that tgt_data does not have: \['agee'\]"),
        (lambda a, p, f: a, {"tgt_encoding_types": {"age": "TABULAR_FOO"}}, ValueError,
         r"tgt_encoding_types\['age'\] must be one of .*; got 'TABULAR_FOO' instead"),
        (lambda a, p, f: a.iloc[:0], {}, ValueError, r"tgt_data is empty \(0 rows\)"),
        (lambda a, p, f: a.values, {}, TypeError, r"tgt_data must be a pandas DataFrame; got ndarray instead"),
        (lambda a, p, f: a.assign(mixed=[1, "a"] * 1000), {}, ValueError,
         r"Column 'mixed' of tgt_data mixes Python types \(int, str\)"),
        (lambda a, p, f: a.assign(x=["1.5", "abc"] * 1000), {"tgt_encoding_types": {"x": "TABULAR_NUMERIC_AUTO"}},
         ValueError, r"Column 'x' of tgt_data is declared TABULAR_NUMERIC_AUTO but 1000 values are not numbers, "
                     r"e.g. 'abc'"),
        (lambda a, p, f: a, {"tgt_encoding_types": {"age": "LANGUAGE_TEXT", "sex": "TABULAR_CATEGORICAL"}},
         ValueError, r"do not mix TABULAR_\* and LANGUAGE_\* encodings"),
        (lambda a, p, f: a.rename(columns={"age": 0}), {}, ValueError, r"column names must be strings; got 0"),
        (lambda a, p, f: a, {"n_partitions": 0}, ValueError, r"The 'n_partitions' parameter of split must be an int in the range \[1, inf\)\. Got 0 instead\."),
        (lambda a, p, f: a, {"trn_val_split": 1.5}, ValueError, r"The 'trn_val_split' parameter of split must be a float in the range \(0, 1\) or a callable\. "
                     r"Got 1\.5 instead\."),
        (lambda a, p, f: a.assign(t=pd.Timestamp("2020-01-01")),
         {"tgt_encoding_types": {"t": "TABULAR_DATETIME_RELATIVE"}}, ValueError, r"needs a tgt_context_key"),
        (lambda a, p, f: f.assign(tailnum=f["tailnum"].where(f.index > 0)), {"tgt_context_key": "tailnum"},
         ValueError, r"tgt_context_key column 'tailnum' of tgt_data has 1 NULL values"),
    ],
)
def test_bad_input_gets_a_clear_error_and_leaves_no_valid_workspace(
        adult, planes_flights, workspace, make, kwargs, error, message):
    planes, flights = planes_flights
    contexts = {"planes": planes, "planes_missing": planes.iloc[1:],
                "planes_dup": pd.concat([planes, planes.iloc[:1]])}
    if isinstance(kwargs.get("ctx_data"), str):
        kwargs = {**kwargs, "ctx_data": contexts[kwargs["ctx_data"]]}
    with pytest.raises(error, match=message):
        split(make(adult, planes, flights), workspace_dir=workspace, **kwargs)
    with pytest.raises(WorkspaceError, match="holds no completed 'split' stage"):
        analyze(workspace_dir=workspace)


def test_failed_resplit_invalidates_previous_outputs(adult, workspace):
    split(adult, workspace_dir=workspace, random_state=0)
    analyze(workspace_dir=workspace, random_state=0)
    with pytest.raises(ValueError):
        split(adult.iloc[:0], workspace_dir=workspace)
    # a failed validation happens before anything is touched: the earlier complete split stays valid
    Workspace(workspace).require("split")
    with pytest.raises(ValueError):
        split(adult.assign(x=["1", "b"] * 1000), tgt_encoding_types={"x": "TABULAR_NUMERIC_DIGIT"},
              workspace_dir=workspace)
    with pytest.raises(WorkspaceError):
        Workspace(workspace).require("analyze")


def test_declared_categorical_turns_mixed_values_into_strings(adult, workspace):
    frame = adult.assign(mixed=[1, "a"] * 1000)
    split(frame, tgt_encoding_types={"mixed": "TABULAR_CATEGORICAL"}, workspace_dir=workspace, random_state=0)
    stored = pd.concat(_read_parts(workspace).values())
    assert set(stored["mixed"]) == {"1", "a"}


def test_split_does_not_modify_input(adult, workspace):
    before = adult.copy()
    split(adult, tgt_encoding_types={"age": "TABULAR_CATEGORICAL"}, workspace_dir=workspace)
    pd.testing.assert_frame_equal(adult, before)


def test_unicode_names_and_values_survive(workspace):
    frame = pd.DataFrame({"größe ✓": ["ä", "😀", "中文", None] * 10, "n": np.arange(40)})
    split(frame, workspace_dir=workspace, random_state=0)
    stored = pd.concat(_read_parts(workspace).values())
    assert sorted(stored["größe ✓"].dropna().unique()) == sorted(["ä", "😀", "中文"])


def test_any_index_of_the_input_is_ignored(adult, workspace):
    shuffled = adult.sample(frac=1.0, random_state=0)
    shuffled.index = shuffled.index.astype(str) + "x"
    split(shuffled, workspace_dir=workspace, random_state=0)
    stored = pd.concat(_read_parts(workspace).values())
    assert stored.notna().sum().to_dict() == shuffled.notna().sum().to_dict()
    assert sorted(stored["fnlwgt"]) == sorted(shuffled["fnlwgt"])


@pytest.mark.parametrize(
    "make, kwargs, message",
    [
        (lambda a, p, f: a.assign(id=[2**70 + i for i in range(2000)]), {"tgt_primary_key": "id"},
         "tgt_primary_key column 'id' of tgt_data holds 2000 integers outside the 64-bit range [-2**63, 2**63 - 1], "
         "e.g. 1180591620717411303424. Convert it, e.g. df['id'].astype(str)."),
        (lambda a, p, f: f.assign(tailnum=pd.Series([-(2**63) - 1] + [0] * (len(f) - 1), dtype=object)),
         {"tgt_context_key": "tailnum"},
         "tgt_context_key column 'tailnum' of tgt_data holds 1 integers outside the 64-bit range "
         "[-2**63, 2**63 - 1], e.g. -9223372036854775809. Convert it, e.g. df['tailnum'].astype(str)."),
        (lambda a, p, f: a.assign(id=[i if i % 2 else str(i) for i in range(2000)]), {"tgt_primary_key": "id"},
         "tgt_primary_key column 'id' of tgt_data mixes Python types (int, str); keys must be of one type. "
         "Convert it, e.g. df['id'].astype(str)."),
        (lambda a, p, f: a.assign(z=np.arange(2000) * 1j), {},
         "Complex data not supported: column 'z' of tgt_data has dtype complex128. Split it into real and "
         "imaginary columns (values.real, values.imag)."),
        (lambda a, p, f: pd.concat([a[["age", "sex"]], a[["age", "sex"]]], axis=1), {},
         "tgt_data has duplicate column names: ['age', 'sex']."),
    ],
)
def test_data_that_parquet_cannot_store_is_named(adult, planes_flights, workspace, make, kwargs, message):
    with pytest.raises(ValueError) as error:
        split(make(adult, *planes_flights), workspace_dir=workspace, **kwargs)
    assert str(error.value) == message
    assert not workspace.exists()


def test_context_keys_of_another_dtype_than_the_target_keys_are_named(workspace):
    ctx = pd.DataFrame({"id": np.arange(20), "c": list("ab") * 10})
    tgt = pd.DataFrame({"ref": np.repeat(np.arange(20), 2).astype(str), "v": np.arange(40)})
    with pytest.raises(ValueError) as error:
        split(tgt, ctx_data=ctx, tgt_context_key="ref", ctx_primary_key="id", workspace_dir=workspace)
    assert str(error.value) == (
        "The key dtypes differ: tgt_context_key 'ref' of tgt_data holds str values (dtype str), "
        "ctx_primary_key 'id' of ctx_data holds int values (dtype int64), so no target row finds its context. Convert one to the type "
        "of the other, e.g. .astype(str).")
