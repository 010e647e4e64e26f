"""The engine functions train() and generate() on a workspace."""

import json

import pandas as pd
import pytest

import synthgen as sg
from synthgen import WorkspaceError


@pytest.fixture
def encoded(adult, workspace):
    sg.split(adult.head(800), workspace_dir=workspace, random_state=0)
    sg.analyze(workspace_dir=workspace, random_state=0)
    sg.encode(workspace_dir=workspace, random_state=0)
    return workspace


def test_train_writes_the_model_store(encoded):
    messages = []
    uploads = []
    sg.train(model="small", max_epochs=2, workspace_dir=encoded, random_state=0,
             update_progress=lambda **kw: messages.append(kw), upload_model_data_callback=lambda: uploads.append(1))
    model_data = encoded / "ModelStore" / "model-data"
    assert sorted(p.name for p in model_data.iterdir()) == [
        "model-configs.json", "model-weights.pt", "progress-messages.csv", "training-state.pt"]
    config = json.loads((model_data / "model-configs.json").read_text())
    assert config["model_id"] == "MOSTLY_AI/Small"
    assert config["enable_flexible_generation"] is True
    progress = pd.read_csv(model_data / "progress-messages.csv")
    assert progress["epoch"].tolist() == [1.0, 2.0]
    assert len(uploads) == 2
    assert messages[0] == {"total": 2, "completed": 0}
    assert messages[-1]["completed"] == 2 and messages[-1]["message"]["epoch"] == 2.0


def test_progress_callback_can_stop_training(encoded):
    sg.train(model="small", max_epochs=50, workspace_dir=encoded, random_state=0,
             update_progress=lambda **kw: {"stopExecution": True} if kw.get("completed", 0) >= 1 else None)
    progress = pd.read_csv(encoded / "ModelStore" / "model-data" / "progress-messages.csv")
    assert progress["epoch"].iloc[-1] == 1.0


def test_generate_writes_parts_and_reads_back(encoded):
    sg.train(model="small", max_epochs=1, workspace_dir=encoded, random_state=0)
    sg.generate(sample_size=250, batch_size=100, workspace_dir=encoded, random_state=0)
    parts = sorted(p.name for p in (encoded / "SyntheticData").iterdir())
    assert parts == ["part.000000.parquet", "part.000001.parquet", "part.000002.parquet"]
    synthetic = sg.read_synthetic_data(encoded)
    assert len(synthetic) == 250
    assert list(synthetic.columns) == list(pd.read_parquet(
        encoded / "OriginalData" / "tgt-data" / "part.000000-trn.parquet").columns)


def test_generate_default_size_is_the_original_size(encoded):
    sg.train(model="small", max_epochs=1, workspace_dir=encoded, random_state=0)
    sg.generate(workspace_dir=encoded, random_state=0)
    assert len(sg.read_synthetic_data(encoded)) == 800


def test_generate_is_reproducible(encoded):
    sg.train(model="small", max_epochs=1, workspace_dir=encoded, random_state=0)
    sg.generate(sample_size=100, workspace_dir=encoded, random_state=3)
    first = sg.read_synthetic_data(encoded)
    sg.generate(sample_size=100, workspace_dir=encoded, random_state=3)
    pd.testing.assert_frame_equal(first, sg.read_synthetic_data(encoded))


def test_generate_requires_a_trained_model(encoded):
    with pytest.raises(WorkspaceError, match=r"holds no trained model: no training run saved weights "
                                             r"\(model-weights\.pt\) here; run train\(\) first\."):
        sg.generate(workspace_dir=encoded)


class Killed(Exception):
    """Stands for the signal that kills a training run."""


def _kill_at_first_message(**message):
    raise Killed


def test_generation_refuses_a_run_killed_before_its_first_checkpoint(encoded):
    with pytest.raises(Killed):
        sg.train(model="small", max_epochs=1, workspace_dir=encoded, update_progress=_kill_at_first_message)
    with pytest.raises(WorkspaceError, match=r"holds no trained model: no training run saved weights "
                                             r"\(model-weights\.pt\) here; run train\(\) first\."):
        sg.generate(workspace_dir=encoded)
    assert not (encoded / "SyntheticData").exists()


def test_generation_refuses_a_model_without_weights(encoded):
    sg.train(model="small", max_epochs=1, workspace_dir=encoded, random_state=0)
    (encoded / "ModelStore" / "model-data" / "model-weights.pt").unlink()
    with pytest.raises(WorkspaceError, match=r"holds no trained model: no training run saved weights"):
        sg.generate(workspace_dir=encoded)


def test_train_requires_encoded_data(adult, workspace):
    sg.split(adult, workspace_dir=workspace)
    with pytest.raises(WorkspaceError, match="holds no completed 'encode' stage"):
        sg.train(workspace_dir=workspace)


def test_reuse_fine_tunes_and_resume_continues(encoded):
    sg.train(model="small", max_epochs=2, workspace_dir=encoded, random_state=0)
    progress = encoded / "ModelStore" / "model-data" / "progress-messages.csv"
    steps = pd.read_csv(progress)["steps"].iloc[-1]
    sg.train(model="small", max_epochs=3, model_state_strategy="resume", workspace_dir=encoded, random_state=0)
    resumed = pd.read_csv(progress)
    assert resumed["epoch"].tolist() == [1.0, 2.0, 3.0]
    assert resumed["steps"].iloc[-1] == steps * 3 // 2
    sg.train(model="small", max_epochs=1, model_state_strategy="REUSE", workspace_dir=encoded, random_state=0)
    assert pd.read_csv(progress)["epoch"].tolist() == [1.0]  # fine-tuning restarts the counters


def test_non_flexible_model_only_accepts_prefix_seeds(encoded):
    sg.train(model="small", max_epochs=1, enable_flexible_generation=False, workspace_dir=encoded, random_state=0)
    sg.generate(seed_data=pd.DataFrame({"age": [30, 40]}), workspace_dir=encoded, random_state=0)
    assert sg.read_synthetic_data(encoded)["age"].tolist() == [30, 40]
    with pytest.raises(ValueError, match="enable_flexible_generation=False, so seeded columns must be the first"):
        sg.generate(seed_data=pd.DataFrame({"sex": ["Male"]}), workspace_dir=encoded)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_epochs": -2}, r"The 'max_epochs' parameter of train must be a float in the range \(0, inf\)\. "
                             r"Got -2 instead\."),
        ({"model": "MOSTLY_AI/Huge"}, r"MOSTLY_AI/Huge"),
        ({"batch_size": 0}, r"The 'batch_size' parameter of train must be an int in the range \[1, inf\)"),
        ({"differential_privacy": {"epsilon": -1}}, r"The 'differential_privacy' parameter of train is invalid: "
                                                    r"epsilon must be a positive finite number or None; got -1"),
        ({"model_state_strategy": "again"}, r"The 'model_state_strategy' parameter of train must be a str among "
                                            r"\{'RESET', 'REUSE', 'RESUME'\} \(case-insensitive\)\. Got 'again' instead\."),
    ],
)
def test_invalid_train_arguments(encoded, kwargs, message):
    with pytest.raises(ValueError, match=message):
        sg.train(workspace_dir=encoded, **kwargs)


def test_failed_generation_leaves_no_synthetic_data(encoded):
    sg.train(model="small", max_epochs=1, workspace_dir=encoded, random_state=0)
    with pytest.raises(ValueError, match="'salary' is not a column of the model"):
        sg.generate(fairness={"target_column": "salary", "sensitive_columns": ["sex"]}, workspace_dir=encoded)
    assert not (encoded / "SyntheticData").exists()
