import gc
import pickle

import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from synthgen import Analyzer, Encoder, Splitter, Workspace


def test_pipeline_leaves_a_full_workspace(adult):
    pipe = make_pipeline(Splitter(random_state=0), Analyzer(random_state=0), Encoder(random_state=0))
    ws = pipe.fit_transform(adult)
    assert isinstance(ws, Workspace)
    for stage in ("split", "analyze", "encode"):
        ws.require(stage)
    assert pipe[1].stats_["no_of_training_records"] == 1600
    assert pipe[0].n_features_in_ == 15
    assert list(pipe[0].feature_names_in_) == list(adult.columns)


def test_pipeline_routes_context_to_the_splitter(planes_flights, tmp_path):
    planes, flights = planes_flights
    pipe = make_pipeline(
        Splitter(tgt_context_key="tailnum", ctx_primary_key="tailnum", workspace_dir=tmp_path / "ws",
                 random_state=0),
        Analyzer(), Encoder(),
    )
    ws = pipe.fit_transform(flights, splitter__context=planes)
    assert ws.has_context()
    assert pipe[1].ctx_stats_ is not None
    assert pipe[1].stats_["is_sequential"] is True
    assert (tmp_path / "ws" / "OriginalData" / "encoded-data" / "part.000000-trn.parquet").exists()


def test_y_is_appended_as_a_column(adult):
    splitter = Splitter(random_state=0).fit(adult.drop(columns="income"), adult["income"])
    assert splitter.encoding_types_["income"] == "TABULAR_CATEGORICAL"
    assert splitter.n_features_in_ == 15


def test_temporary_workspace_lives_as_long_as_its_users(adult):
    splitter = Splitter(random_state=0).fit(adult)
    root = splitter.workspace_.root
    assert root.exists()
    ws = splitter.transform()
    del splitter
    gc.collect()
    assert root.exists()  # still used by ws
    del ws
    gc.collect()
    assert not root.exists()


def test_explicit_workspace_is_never_deleted(adult, tmp_path):
    splitter = Splitter(workspace_dir=tmp_path / "mine").fit(adult)
    del splitter
    gc.collect()
    assert (tmp_path / "mine" / "OriginalData").exists()


def test_stages_reject_data_that_is_not_a_workspace(adult):
    with pytest.raises(TypeError, match="Analyzer expects the Workspace that the previous stage returns"):
        Analyzer().fit(adult)
    with pytest.raises(TypeError, match="Splitter.fit expects a pandas DataFrame; got list instead"):
        Splitter().fit([1, 2])


def test_params_round_trip_and_clone(tmp_path):
    splitter = Splitter(tgt_context_key="k", n_partitions=2)
    assert splitter.get_params()["n_partitions"] == 2
    assert clone(splitter).get_params() == splitter.get_params()
    splitter.set_params(n_partitions=3)
    assert splitter.n_partitions == 3


def test_fitted_splitter_pickles_without_owning_the_temp_folder(adult):
    splitter = Splitter(random_state=0).fit(adult)
    copy = pickle.loads(pickle.dumps(splitter))
    assert copy.workspace_.root == splitter.workspace_.root
    assert copy.workspace_._owner is None
