"""One declaration per option: the same defaults, rules and messages for the engine and the estimators."""

import inspect

import numpy as np
import pandas as pd
import pytest

import synthgen as sg
from synthgen import Analyzer, Encoder, Splitter, TabularSynthesizer
from synthgen._options import ENGINE_DEFAULTS, ESTIMATOR_DEFAULTS, ESTIMATOR_OPTIONS, OPTIONS, validate

ENGINE_FUNCTIONS = [sg.split, sg.analyze, sg.encode, sg.train, sg.generate]
ESTIMATOR_CALLABLES = [TabularSynthesizer.__init__, TabularSynthesizer.sample, Splitter.__init__,
                       Analyzer.__init__, Encoder.__init__]


@pytest.mark.parametrize("function", ENGINE_FUNCTIONS, ids=lambda f: f.__name__)
def test_engine_defaults_come_from_the_options(function):
    parameters = inspect.signature(function).parameters
    declared = [name for name in parameters if name in OPTIONS]
    assert len(declared) >= len(parameters) - 1  # all but the data argument of split
    for name in declared:
        assert parameters[name].default == getattr(ENGINE_DEFAULTS, name), name
        assert parameters[name].annotation != inspect.Parameter.empty, name


@pytest.mark.parametrize("function", ESTIMATOR_CALLABLES, ids=lambda f: f.__qualname__)
def test_estimator_defaults_come_from_the_options(function):
    parameters = {n: p for n, p in inspect.signature(function).parameters.items() if n != "self"}
    assert set(parameters) <= set(ESTIMATOR_OPTIONS)
    for name, parameter in parameters.items():
        assert parameter.default == getattr(ESTIMATOR_DEFAULTS, name), name
        assert parameter.annotation != inspect.Parameter.empty, name


@pytest.mark.parametrize(
    "name, value, requirement",
    [
        ("max_epochs", -1, "a float in the range (0, inf)"),
        ("max_training_time", float("nan"), "a float in the range (0, inf)"),
        ("max_epochs", True, "a float in the range (0, inf)"),
        ("batch_size", 2.0, "an int in the range [1, inf) or None"),
        ("value_protection", "yes", "a bool"),
        ("n_partitions", 0, "an int in the range [1, inf)"),
        ("sampling_top_p", 1.5, "a float in the range (0, 1]"),
        ("verbose", -1, "a bool, an int in the range [0, inf) or 'auto'"),
        ("n_threads", 0, "an int in the range [1, inf) or None"),
    ],
)
def test_engine_and_estimators_share_one_rule(name, value, requirement):
    for owner, estimator in (("train", False), ("TabularSynthesizer", True)):
        with pytest.raises(ValueError) as error:
            validate(name, value, owner, estimator=estimator)
        assert str(error.value) == f"The {name!r} parameter of {owner} must be {requirement}. Got {value!r} instead."
        assert isinstance(error.value, TypeError)  # as scikit-learn's InvalidParameterError


def test_valid_values_are_normalised():
    assert validate("model_state_strategy", "resume", "train") == sg.ModelStateStrategy.RESUME
    assert validate("rebalancing", {"column": "sex", "probabilities": {"Male": 0.3}}, "generate") == (
        sg.RebalancingConfig(column="sex", probabilities={"Male": 0.3}))
    assert validate("value_protection", np.bool_(False), "analyze") is False
    assert validate("device", "cuda:1", "train") == "cuda:1"
    assert validate("workspace_dir", None, "TabularSynthesizer", estimator=True) is None


def test_value_protection_is_rejected_alike_by_analyze_and_the_estimator(tmp_path):
    messages = []
    for call in (lambda: sg.analyze(value_protection="yes", workspace_dir=tmp_path),
                 lambda: TabularSynthesizer(value_protection="yes").fit(np.zeros((3, 2)))):
        with pytest.raises(ValueError) as error:
            call()
        messages.append(str(error.value))
    assert messages == ["The 'value_protection' parameter of analyze must be a bool. Got 'yes' instead.",
                        "The 'value_protection' parameter of TabularSynthesizer must be a bool. Got 'yes' instead."]


@pytest.mark.parametrize(
    "transformer, fit_with, message",
    [
        (Splitter(n_partitions=0), "frame", "The 'n_partitions' parameter of Splitter must be an int in the range "
                                            "[1, inf). Got 0 instead."),
        (Splitter(trn_val_split=1), "frame", "The 'trn_val_split' parameter of Splitter must be a float in the range "
                                             "(0, 1) or a callable. Got 1 instead."),
        (Analyzer(value_protection=1), "workspace", "The 'value_protection' parameter of Analyzer must be a bool. "
                                                    "Got 1 instead."),
        (Encoder(verbose="loud"), "workspace", "The 'verbose' parameter of Encoder must be a bool, an int in the "
                                               "range [0, inf) or 'auto'. Got 'loud' instead."),
    ],
)
def test_transformers_validate_their_parameters_at_fit(transformer, fit_with, message, tmp_path):
    X = pd.DataFrame({"a": [1, 2, 3]}) if fit_with == "frame" else sg.Workspace(tmp_path)
    with pytest.raises(ValueError) as error:
        transformer.fit(X)
    assert str(error.value) == message


def _small_frame() -> pd.DataFrame:
    return pd.DataFrame({"a": np.arange(10), "b": list("xy") * 5})


def test_workspace_dir_that_is_a_file_is_named(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a workspace")
    message = (f"The 'workspace_dir' parameter of {{}} is invalid: it must name a folder, but {str(path)!r} is an "
               "existing file.")
    with pytest.raises(ValueError) as error:
        sg.split(_small_frame(), workspace_dir=path)
    assert str(error.value) == message.format("split")
    with pytest.raises(ValueError) as error:
        TabularSynthesizer(workspace_dir=path).fit(_small_frame())
    assert str(error.value) == message.format("TabularSynthesizer")
    assert path.read_text() == "not a workspace"
