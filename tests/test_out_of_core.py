"""Tables larger than memory: split / analyze / encode from parquet files, batch by batch and partition by partition."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
import torch

import synthgen as sg

_CAPPED = Path(__file__).with_name("_capped_pipeline.py")
_REPO = Path(__file__).resolve().parents[1]


def _write_parts(frame: pd.DataFrame, folder: Path, n_files: int) -> Path:
    folder.mkdir(parents=True)
    for index, rows in enumerate(np.array_split(np.arange(len(frame)), n_files)):
        frame.iloc[rows].to_parquet(folder / f"part-{index}.parquet")
    return folder


def _stage(data, ws: Path, *, n_partitions: int = 1, **split_kwargs) -> sg.Workspace:
    sg.split(data, workspace_dir=ws, n_partitions=n_partitions, random_state=0, verbose=False, **split_kwargs)
    sg.analyze(workspace_dir=ws, random_state=0, verbose=False)
    return sg.Workspace(ws)


def _rank_distance(values: np.ndarray, left_edges, right_edges) -> float:
    """The largest distance in rank (share of values) from an edge of one set to the nearest edge of the other;
    a tied value spans its whole rank range, so edges on one tie are at distance 0."""
    values = np.sort(values[~np.isnan(values)])

    def span(edges):
        edges = np.asarray(edges, dtype=float)[:, None]
        return (np.searchsorted(values, edges, side="left") / len(values),
                np.searchsorted(values, edges, side="right") / len(values))

    (low_a, high_a), (low_b, high_b) = span(left_edges), span(right_edges)
    gaps = np.maximum(0.0, np.maximum(low_a - high_b.T, low_b.T - high_a))  # (edges of left, edges of right)
    return float(max(gaps.min(axis=1).max(), gaps.min(axis=0).max()))


def _assert_same_stats(left: dict, right: dict, data: pd.DataFrame) -> None:
    """Everything exact except the quantile bins (a sketch): every edge within 2.5 % of rank of an edge of the
    other (measured: up to 2 % on columns with few distinct values, where several edges compete for one tie).
    The number of edges (so the cardinalities) may differ on such columns: more partitions, more distinct atoms
    (capital_gain, 92 % zeros: 61 edges from one partition, 101 from seven)."""
    assert left.keys() == right.keys()
    for column in left:
        a, b = dict(left[column]), dict(right[column])
        if "bins" in a:
            bins_a, bins_b = a.pop("bins"), b.pop("bins")
            assert _rank_distance(data[column].to_numpy(float), bins_a, bins_b) < 0.025, column
            a.pop("cardinalities"), b.pop("cardinalities")
            for key in [k for k in a if k.startswith("in_bin_")]:  # per bin of the sketched edges
                a.pop(key), b.pop(key, None)
        assert a == b, column


# -- memory ---------------------------------------------------------------------------------------------
def test_folder_larger_than_the_memory_cap_goes_through_split_analyze_encode(tmp_path):
    """Under an address-space cap that reading the table whole exceeds, the streamed stages still succeed.

    The cap is calibrated in each subprocess: the peak of the same stages on one partition's worth of rows, plus
    40 MiB. The 300,000-row table holds two 152-character string columns (about 90 MB in memory, 0.5 MB of
    dictionary-encoded parquet); read whole it needs about 150 MiB more than the one-partition run, streamed in
    8 partitions the stages stay within 16-21 MiB of it (measured uncapped; 16 MiB was too tight a margin). pyarrow allocates with the system allocator here, so that freed
    memory leaves the address space (its default pool keeps large reservations that hide what a step needs).
    """
    rows, n_partitions, n_files = 300_000, 8, 4
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir()
    small.mkdir()
    rng = np.random.default_rng(0)
    words = np.array([f"{i}-" + "x" * 150 for i in range(10)], dtype=object)
    for index in range(n_files):
        n = rows // n_files
        table = pa.table({"n": rng.integers(0, 20, n), "s1": words[rng.integers(0, 10, n)],
                          "s2": words[rng.integers(0, 10, n)]})
        pq.write_table(table, big / f"p{index}.parquet", row_group_size=16_384)
        if index == 0:
            pq.write_table(table.slice(0, rows // n_partitions), small / "p0.parquet", row_group_size=16_384)
    env = dict(os.environ, MALLOC_ARENA_MAX="2", OMP_NUM_THREADS="1", ARROW_DEFAULT_MEMORY_POOL="system",
               PYTHONPATH=str(_REPO))

    def run(mode: str) -> dict:
        done = subprocess.run([sys.executable, str(_CAPPED), mode, str(small), str(big), str(tmp_path),
                               str(40 * 2**20), str(n_partitions)], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.splitlines()[-1])

    assert run("whole")["outcome"] == "MemoryError"  # the cap binds: the table read whole does not fit
    streamed = run("streamed")
    assert streamed["outcome"] == "done", streamed
    assert streamed["peak"] <= streamed["cap"]
    ws = sg.Workspace(tmp_path / "ws-streamed")
    assert ws.count_rows(ws.data_dir("tgt")) == rows
    assert ws.count_rows(ws.encoded_data) == rows
    assert len(ws.partitions(ws.encoded_data)) == 2 * n_partitions


# -- statistics ---------------------------------------------------------------------------------------------
def test_partitioned_statistics_equal_those_of_the_whole_table(tmp_path, adult_full):
    adult_full = adult_full.head(20_000)
    folder = _write_parts(adult_full, tmp_path / "adult", 4)
    whole = _stage(adult_full, tmp_path / "ws-frame").read_stats("tgt")
    one = _stage(folder, tmp_path / "ws-one").read_stats("tgt")
    many = _stage(folder, tmp_path / "ws-many", n_partitions=7).read_stats("tgt")
    for stats in (one, many):
        _assert_same_stats(stats["columns"], whole["columns"], adult_full)
        assert stats["no_of_training_records"] == whole["no_of_training_records"]  # 80 % of the rows, exactly
        assert stats["no_of_validation_records"] == whole["no_of_validation_records"]
    # the reduction does not depend on how the rows are partitioned: only the bins are sketched
    _assert_same_stats(one["columns"], many["columns"], adult_full)


def test_two_table_statistics_from_parquet_equal_those_of_frames(tmp_path, planes_flights_full):
    planes, flights = planes_flights_full
    planes = planes.sample(n=600, random_state=0).reset_index(drop=True)
    flights = flights[flights["tailnum"].isin(planes["tailnum"])].reset_index(drop=True)
    keys = dict(tgt_context_key="tailnum", ctx_primary_key="tailnum")
    frames = _stage(flights, tmp_path / "ws-frame", ctx_data=planes, **keys)
    paths = _stage(_write_parts(flights, tmp_path / "flights", 3), tmp_path / "ws-path", n_partitions=4,
                   ctx_data=_write_parts(planes, tmp_path / "planes", 2), **keys)
    # value protection counts distinct planes per category: a plane's flights share one partition, so exact
    _assert_same_stats(paths.read_stats("tgt")["columns"], frames.read_stats("tgt")["columns"], flights)
    _assert_same_stats(paths.read_stats("ctx")["columns"], frames.read_stats("ctx")["columns"], planes)
    assert paths.read_stats("tgt")["seq_len"] == frames.read_stats("tgt")["seq_len"]
    n_subjects = paths.read_stats("tgt")["no_of_training_records"] + paths.read_stats("tgt")["no_of_validation_records"]
    assert n_subjects == len(planes)
    # every plane's flights are whole, contiguous and in their original order within one part
    for path in paths.partitions(paths.data_dir("tgt")):
        part = pd.read_parquet(path)
        ctx = pd.read_parquet(paths.data_dir("ctx") / path.name)
        assert set(part["tailnum"]) <= set(ctx["tailnum"])
        order = pd.Index(ctx["tailnum"]).get_indexer(part["tailnum"])
        assert (np.diff(order) >= 0).all()
        for tailnum, rows in part.groupby("tailnum", sort=False):
            expected = flights[flights["tailnum"] == tailnum]
            assert len(rows) == len(expected)
            assert rows["time_hour"].tolist() == expected["time_hour"].tolist()


def test_a_pyarrow_dataset_and_a_context_key_without_context(tmp_path, planes_flights):
    _, flights = planes_flights
    folder = _write_parts(flights, tmp_path / "flights", 2)
    ws = _stage(pads.dataset(str(folder), format="parquet"), tmp_path / "ws", n_partitions=3,
                tgt_context_key="tailnum")
    ctx = ws.read_table_data("ctx")
    assert sorted(ctx["tailnum"]) == sorted(flights["tailnum"].unique())
    assert ws.read_stats("tgt")["is_sequential"]
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    assert ws.count_rows(ws.encoded_data) == flights["tailnum"].nunique()


# -- errors ---------------------------------------------------------------------------------------------------
def test_bad_sources_get_clear_errors(tmp_path, adult):
    with pytest.raises(FileNotFoundError, match=r"tgt_data '.*nowhere' does not exist"):
        sg.split(tmp_path / "nowhere", workspace_dir=tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"is a folder without \*\.parquet files"):
        sg.split(tmp_path / "empty", workspace_dir=tmp_path / "ws")
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(ValueError, match="is not a readable parquet file"):
        sg.split(tmp_path / "text.parquet", workspace_dir=tmp_path / "ws")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    adult.head(10).to_parquet(mixed / "a.parquet")
    adult.head(10).drop(columns=["age"]).assign(sex=1).to_parquet(mixed / "b.parquet")
    with pytest.raises(ValueError, match=r"do not share one schema: '.*b\.parquet' lacks columns \['age'\]; "
                                         r"'sex' is int64 instead of (large_)?string"):
        sg.split(mixed, workspace_dir=tmp_path / "ws")
    adult.head(0).to_parquet(tmp_path / "no-rows.parquet")
    with pytest.raises(ValueError, match=r"is empty \(0 rows\)"):
        sg.split(tmp_path / "no-rows.parquet", workspace_dir=tmp_path / "ws")
    adult.to_parquet(tmp_path / "adult.parquet")
    with pytest.raises(ValueError, match="'id' is not a column of tgt_data"):
        sg.split(tmp_path / "adult.parquet", tgt_primary_key="id", workspace_dir=tmp_path / "ws")


def test_key_errors_are_found_across_batches_and_parts(tmp_path, planes_flights):
    planes, flights = planes_flights
    ids = pd.DataFrame({"id": np.r_[np.arange(99), 7], "x": np.arange(100) % 3})
    _write_parts(ids, tmp_path / "ids", 4)  # the duplicate 7 sits in the first and the last file
    with pytest.raises(ValueError, match=r"tgt_primary_key 'id' is not unique: 1 duplicate values, e.g. 7"):
        sg.split(tmp_path / "ids", tgt_primary_key="id", n_partitions=3, workspace_dir=tmp_path / "ws")
    folder = _write_parts(flights, tmp_path / "flights", 2)
    keys = dict(tgt_context_key="tailnum", ctx_primary_key="tailnum", workspace_dir=tmp_path / "ws")
    with pytest.raises(ValueError, match=r"rows of tgt_data have a tgt_context_key 'tailnum' that is not a "
                                         r"ctx_primary_key of ctx_data"):
        sg.split(folder, ctx_data=planes.iloc[1:], n_partitions=2, **keys)
    with pytest.raises(ValueError, match="ctx_primary_key 'tailnum' is not unique"):
        sg.split(folder, ctx_data=pd.concat([planes, planes.head(1)]), n_partitions=2, **keys)
    with pytest.raises(ValueError, match="The key dtypes differ"):
        sg.split(folder, ctx_data=planes.assign(tailnum=np.arange(len(planes))), **keys)
    with pytest.raises(ValueError, match="keys must not be NULL"):
        sg.split(_write_parts(flights.assign(tailnum=flights["tailnum"].where(flights.index != 5)),
                              tmp_path / "null-keys", 2), ctx_data=planes, **keys)
    assert not sg.Workspace(tmp_path / "ws").data_dir("tgt").exists()  # nothing half-written reads as valid



# -- streamed training ---------------------------------------------------------------------------------------------
class _Parts:
    """Code parts held in memory (a CodeParts for the tests)."""

    def __init__(self, codes: torch.Tensor, n_parts: int, ctx: torch.Tensor | None = None) -> None:
        self.chunks = list(codes.tensor_split(n_parts))
        self.ctx_chunks = list(ctx.tensor_split(n_parts)) if ctx is not None else None
        self.sizes = [len(c) for c in self.chunks]

    def load(self, index):
        return self.chunks[index], None if self.ctx_chunks is None else self.ctx_chunks[index]


def _tiny_model(codes: torch.Tensor):
    from synthgen.models.tabular import FlatARGN
    from synthgen.models.tabular._spec import ColumnSpec

    cards = [int(codes[:, j].max()) + 1 for j in range(codes.shape[1])]
    columns = [ColumnSpec(name=f"c{j}", sub_columns=(f"c{j}__cat",), cardinalities=(card,))
               for j, card in enumerate(cards)]
    return FlatARGN.from_preset(columns, size="small", flexible=True, generator=torch.Generator().manual_seed(0))


def test_streamed_epochs_visit_every_row_once_and_validate_like_memory():
    from synthgen.models.tabular._streaming import _StreamedFlatTask

    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 5, (1003, 3), generator=gen, dtype=torch.int16)
    model = _tiny_model(codes)
    task = _StreamedFlatTask(model, _Parts(codes, 4), _Parts(codes, 3), torch.device("cpu"), gen)
    seen, n_batches = [], 0
    for rows in task.epoch_batches(64, gen):
        seen.append(task.window[rows])
        n_batches += 1
    assert n_batches == -(-1003 // 64)  # as many steps as an in-memory epoch
    epoch = torch.cat(seen)
    assert sorted(map(tuple, epoch.tolist())) == sorted(map(tuple, codes.tolist()))
    orders = [model.draw_order(gen) for _ in range(8)]
    streamed = task.validation_loss(orders)
    model.eval()
    with torch.no_grad():  # in memory: each order scores its contiguous share of all the rows at once
        whole = sum(model(codes[share], None, order).double().sum()
                    for order, share in zip(orders, torch.arange(len(codes)).tensor_split(8), strict=True))
    assert streamed == pytest.approx(float(whole) / len(codes), rel=1e-9)


def test_streamed_training_of_the_workspace_gives_a_working_model(tmp_path, adult, monkeypatch):
    from synthgen.stages import _encoded

    folder = _write_parts(adult, tmp_path / "adult", 2)
    ws = _stage(folder, tmp_path / "ws", n_partitions=4)
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    loaded = []
    monkeypatch.setattr(_encoded, "STREAMING_THRESHOLD_BYTES", 0)  # stream even this small table
    monkeypatch.setattr(_encoded.EncodedParts, "load", lambda self, i, _load=_encoded.EncodedParts.load:
                        loaded.append(i) or _load(self, i))
    sg.train(workspace_dir=ws, model="MOSTLY_AI/Small", max_epochs=3, random_state=0, verbose=False)
    assert loaded, "training did not stream the parts"
    history = ws.read_progress()
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    sg.generate(workspace_dir=ws, sample_size=500, random_state=0, verbose=False)
    synthetic = sg.read_synthetic_data(ws)
    assert list(synthetic.columns) == list(adult.columns)
    assert len(synthetic) == 500
    assert set(synthetic["sex"].dropna()) <= set(adult["sex"])
    # the marginals are learned: the share of the commonest income class within 10 points
    share = (synthetic["income"] == adult["income"].mode()[0]).mean()
    assert share == pytest.approx((adult["income"] == adult["income"].mode()[0]).mean(), abs=0.1)


class _SequenceParts:
    """Parts of whole subjects held in memory (a SequenceParts for the tests)."""

    def __init__(self, data, n_parts: int) -> None:
        self.chunks = [data.subset(s) for s in torch.arange(data.n_subjects).tensor_split(n_parts)]
        self.sizes = [c.n_subjects for c in self.chunks]

    def load(self, index):
        return self.chunks[index]

    def lengths(self, index):
        return self.chunks[index].lengths


def _entities_and_model(n: int, seed: int = 0):
    """``n`` entities whose context code is their id, 0..5 steps each, and a small sequential model."""
    from synthgen.models.tabular import ColumnSpec, SequenceData, SequentialARGN

    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, 6, (n,), generator=gen)
    data = SequenceData(torch.arange(n)[:, None], torch.randint(0, 4, (int(lengths.sum()), 2), generator=gen), lengths)
    steps = [ColumnSpec(name, ("cat",), (4,)) for name in ("a", "b")]
    model = SequentialARGN.from_preset(steps, context=[ColumnSpec("id", ("cat",), (n,))], max_len=6, median_len=3,
                                       size="small", generator=torch.Generator().manual_seed(1))
    return data, model


def test_streamed_sequence_epochs_visit_every_entity_once_and_match_memory():
    from synthgen.models.tabular._sequential_streaming import _StreamedSequentialTask
    from synthgen.models.tabular._sequential_trainer import _SequentialTask

    data, model = _entities_and_model(203)
    cpu, gen = torch.device("cpu"), torch.Generator().manual_seed(0)
    streamed = _StreamedSequentialTask(model, _SequenceParts(data, 4), _SequenceParts(data, 3), 40, 40, cpu, gen)
    batches = []
    for rows in streamed.epoch_batches(16, gen):
        batches.append(streamed.trn.subset(rows))
    assert len(batches) == -(-203 // 16)  # as many steps as an in-memory epoch
    epoch = batches[0]
    for batch in batches[1:]:
        epoch = epoch.concat(batch)
    entities = epoch.context[:, 0]
    assert sorted(entities.tolist()) == list(range(203))  # every entity exactly once
    whole = data.subset(entities)  # ... with its whole sequence
    assert torch.equal(epoch.lengths, whole.lengths) and torch.equal(epoch.steps, whole.steps)
    _, twin = _entities_and_model(203)  # the same initial weights
    in_memory = _SequentialTask(twin, data, data, 40, 40, cpu, gen)
    orders = [model.step_model.draw_order(gen) for _ in range(8)]
    assert streamed.validation_loss(orders) == pytest.approx(in_memory.validation_loss(orders), rel=1e-6)
    in_memory.init_prior()  # output biases from counts summed over the parts: those of the whole data
    streamed.init_prior()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, twin.state_dict()[name], msg=name)


def test_streamed_two_table_training_gives_a_working_model(tmp_path, planes_flights, monkeypatch):
    from synthgen.stages import _encoded, _train

    planes, flights = planes_flights
    planes = planes[["tailnum", "type", "seats"]].head(60)
    flights = flights.loc[flights["tailnum"].isin(planes["tailnum"]), ["tailnum", "carrier", "dest", "dep_delay"]]
    ws = _stage(flights, tmp_path / "ws", n_partitions=3, ctx_data=planes, tgt_context_key="tailnum",
                ctx_primary_key="tailnum")
    sg.encode(workspace_dir=ws, random_state=0, verbose=False)
    loaded = []
    monkeypatch.setattr(_encoded, "STREAMING_THRESHOLD_BYTES", 0)  # stream even these small sequences
    monkeypatch.setattr(_encoded.EncodedSequenceParts, "load", lambda self, i, _load=_encoded.EncodedSequenceParts.load:
                        loaded.append((self.paths[i].name, i)) or _load(self, i))
    monkeypatch.setattr(_train, "load_sequences", lambda *a, **k: pytest.fail("loaded the sequences whole"))
    sg.train(workspace_dir=ws, model="MOSTLY_AI/Small", max_epochs=3, random_state=0, verbose=False)
    assert len({name for name, _ in loaded}) >= 3, "training did not stream the parts"
    history = ws.read_progress()
    assert history["val_loss"].iloc[-1] < history["val_loss"].iloc[0]
    sg.generate(workspace_dir=ws, sample_size=30, random_state=0, verbose=False)
    synthetic = sg.read_synthetic_data(ws)
    assert list(synthetic.columns) == list(flights.columns)
    assert set(synthetic["carrier"].dropna()) <= set(flights["carrier"])
    assert synthetic["tailnum"].nunique() <= 30


# -- estimator ---------------------------------------------------------------------------------------------------
def test_fit_on_a_parquet_path_equals_fit_on_the_frame(tmp_path, planes_flights):
    planes, flights = planes_flights
    flights = flights.drop(columns=["year", "month", "day", "hour", "minute", "time_hour"])
    params = dict(tgt_context_key="tailnum", ctx_primary_key="tailnum", model="MOSTLY_AI/Small", max_epochs=1,
                  random_state=0, verbose=False)
    from_frames = sg.TabularSynthesizer(**params).fit(flights, context=planes)
    from_paths = sg.TabularSynthesizer(**params).fit(_write_parts(flights, tmp_path / "flights", 2),
                                                      context=_write_parts(planes, tmp_path / "planes", 1))
    _assert_same_stats(from_paths.stats_["columns"], from_frames.stats_["columns"], flights)
    _assert_same_stats(from_paths.ctx_stats_["columns"], from_frames.ctx_stats_["columns"], planes)
    assert from_paths.stats_["seq_len"] == from_frames.stats_["seq_len"]
    assert list(from_paths.feature_names_in_) == list(flights.columns)
    assert from_paths.n_features_in_ == flights.shape[1]
    synthetic = from_paths.sample(5)
    assert list(synthetic.columns) == list(flights.columns)
    assert synthetic.dtypes.to_dict() == flights.dtypes.to_dict()


def test_fit_on_a_path_refuses_y_and_bad_paths(tmp_path, adult):
    adult.to_parquet(tmp_path / "adult.parquet")
    synth = sg.TabularSynthesizer(max_epochs=1)
    with pytest.raises(ValueError, match="y cannot be combined with X given as a path"):
        synth.fit(tmp_path / "adult.parquet", adult["income"])
    with pytest.raises(FileNotFoundError, match="X '.*missing.parquet' does not exist"):
        synth.fit(str(tmp_path / "missing.parquet"))
