"""Every option of the engine functions, the transformers and the estimators, declared once.

An :class:`Option` holds the default, what is allowed and how a valid value is normalised (an enum parsed, a
config dict coerced). :func:`validate` checks a value on behalf of its caller and raises in scikit-learn's
form, naming the caller (``train``, ``TabularSynthesizer``, ``TabularSynthesizer.sample``)::

    The 'max_epochs' parameter of TabularSynthesizer must be a float in the range (0, inf]. Got -1 instead.

Engine functions use :data:`OPTIONS`; the estimators' parameters that differ from the engine (a temporary
workspace by default, ``n_samples`` for ``sample_size``) are derived from it in :data:`ESTIMATOR_OPTIONS`.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import attrs

from .domain import (
    DifferentialPrivacyConfig,
    FairnessConfig,
    ImputationConfig,
    ModelStateStrategy,
    ModelType,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)

__all__ = ["InvalidParameterError", "Option", "OPTIONS", "ESTIMATOR_OPTIONS", "ENGINE_DEFAULTS",
           "ESTIMATOR_DEFAULTS", "LANGUAGE_MODEL_DEFAULT", "validate", "validate_all",
           "validate_model_family"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter has a wrong type or value (both a ``ValueError`` and a ``TypeError``, as in scikit-learn)."""


# -- constraints -----------------------------------------------------------------------------------------
# Each constraint is a (test, description) pair; a value is valid when any constraint of its option holds.

@attrs.frozen
class _Constraint:
    test: Callable[[Any], bool]
    description: str


# numpy registers its scalar types with ``numbers`` (``np.bool_`` is neither Integral nor Real), and numpy and
# pandas types are looked up only in modules already imported: a value cannot be an instance of a type whose
# module was never imported. So this module (and the command line's --help) imports neither.

def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def _is_instance(value, module: str, name: str) -> bool:
    imported = sys.modules.get(module)
    return imported is not None and isinstance(value, getattr(imported, name))


def _bound(value: float) -> str:
    return "inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:g}"


def _interval(kind: str, low: float, high: float, closed: str) -> _Constraint:
    """``kind`` is ``"int"`` or ``"float"``; ``closed`` is one of ``"both"``, ``"left"``, ``"right"``, ``"neither"``."""
    left_closed, right_closed = closed in ("both", "left"), closed in ("both", "right")

    def test(value) -> bool:
        if not (_is_int(value) if kind == "int" else _is_real(value)):
            return False
        above = value >= low if left_closed else value > low
        below = value <= high if right_closed else value < high
        return bool(above and below)

    article = "an" if kind == "int" else "a"
    brackets = ("[" if left_closed else "(", "]" if right_closed else ")")
    return _Constraint(test, f"{article} {kind} in the range {brackets[0]}{_bound(low)}, {_bound(high)}{brackets[1]}")


def _among(values: Iterable[str], *, case_insensitive: bool = True) -> _Constraint:
    allowed = tuple(values)
    folded = {v.upper() for v in allowed} if case_insensitive else set(allowed)

    def test(value) -> bool:
        return isinstance(value, str) and (value.strip().upper() if case_insensitive else value) in folded

    listed = ", ".join(repr(v) for v in allowed)
    return _Constraint(test, f"a str among {{{listed}}}" + (" (case-insensitive)" if case_insensitive else ""))


def _instance(types: tuple[type, ...], description: str) -> _Constraint:
    return _Constraint(lambda value: isinstance(value, types), description)


_BOOL = _Constraint(lambda value: isinstance(value, bool) or _is_instance(value, "numpy", "bool_"), "a bool")
_CALLABLE = _Constraint(callable, "a callable")
_STR = _instance((str,), "a str")
_MAPPING = _instance((Mapping,), "a dict")
_DATAFRAME = _Constraint(lambda value: _is_instance(value, "pandas", "DataFrame"), "a pandas DataFrame")
_PATH = _instance((str, os.PathLike), "a str or path-like")
_BUDGET = _interval("float", 0, math.inf, "neither")
_POSITIVE_INT = _interval("int", 1, math.inf, "left")
_RANDOM_STATE = (
    _interval("int", 0, math.inf, "left"),
    _Constraint(lambda value: _is_instance(value, "numpy.random", "RandomState"),
                "an instance of 'numpy.random.RandomState'"),
    _Constraint(lambda value: _is_instance(value, "numpy.random", "Generator"),
                "an instance of 'numpy.random.Generator'"),
)
# "auto": progress bars where a person is watching (a terminal or a notebook)
_VERBOSE = (_BOOL, _interval("int", 0, math.inf, "left"),
            _Constraint(lambda value: isinstance(value, str) and value == "auto", "'auto'"))
_DEVICE_TYPES = ("cpu", "cuda", "mps")


def _is_device(value) -> bool:
    if isinstance(value, str):
        kind, _, index = value.strip().lower().partition(":")
        return kind in _DEVICE_TYPES and (not index or index.isdigit())
    import torch  # the data stages do not need torch; keep it out of their import

    return isinstance(value, torch.device) and value.type in _DEVICE_TYPES


_DEVICE = _Constraint(_is_device, "a str among {'cpu', 'cuda', 'mps'} (with an optional index, e.g. 'cuda:1'), "
                                  "a torch.device")


def _model_names() -> tuple[str, ...]:
    from .models.tabular._presets import MODEL_SIZES

    return (*MODEL_SIZES, "small", "medium", "large")


LANGUAGE_MODEL_DEFAULT = "MOSTLY_AI/LSTMFromScratch-3m"
"""The language model trained from scratch (an LSTM and a tokenizer learned on the data)."""


def _is_model(value) -> bool:
    return isinstance(value, str) and value.strip().lower() in {n.lower() for n in _model_names()}


def validate_model_family(model) -> ModelType:
    """The model type a valid ``model`` option value belongs to."""
    return ModelType.TABULAR if _is_model(model) else ModelType.LANGUAGE


def _is_language_model(value) -> bool:
    """The from-scratch LSTM's name or an existing local folder (a Hugging Face causal LM, checked at train)."""
    if isinstance(value, str) and value.strip().lower() == LANGUAGE_MODEL_DEFAULT.lower():
        return True
    return isinstance(value, (str, os.PathLike)) and os.path.isdir(value)


def _workspace_types() -> tuple[type, ...]:
    from ._workspace import Workspace

    return (str, os.PathLike, Workspace)


_WORKSPACE = _Constraint(lambda value: isinstance(value, _workspace_types()), "a str, a path-like or a Workspace")


# -- options ---------------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class Option:
    """One option: its default, the constraints a value must meet (any of them) and its normalisation.

    Parameters
    ----------
    name : str
        The parameter name.
    default : object
        The default value.
    constraints : tuple of constraints
        A value is valid when one of them holds (or it is None and ``none`` is true).
    none : bool
        Whether None is allowed.
    convert : callable, optional
        Turns a valid value into the form the implementation uses (``convert(value, name)``).
    """

    name: str
    default: Any
    constraints: tuple[_Constraint, ...]
    none: bool = False
    convert: Callable[[Any, str], Any] | None = None

    def describe(self) -> str:
        parts = [c.description for c in self.constraints] + (["None"] if self.none else [])
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]

    def evolve(self, **changes) -> Option:
        return attrs.evolve(self, **changes)


def _error(name: str, owner: str, requirement: str, value) -> InvalidParameterError:
    return InvalidParameterError(f"The {name!r} parameter of {owner} must be {requirement}. Got {value!r} instead.")


def _no_existing_file(value, name: str):
    from ._workspace import Workspace

    path = value.root if isinstance(value, Workspace) else value
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"it must name a folder, but {os.fspath(path)!r} is an existing file")
    return value


def _parse(enum) -> Callable[[Any, str], Any]:
    return lambda value, name: enum.parse(value, name=name)


def _coerce(config) -> Callable[[Any, str], Any]:
    return lambda value, name: config.coerce(value, name=name)


def _declare(*options: Option) -> dict[str, Option]:
    return {option.name: option for option in options}


def _values(enum) -> tuple[str, ...]:
    return tuple(member.value for member in enum)  # iteration skips the lower-case aliases


OPTIONS: dict[str, Option] = _declare(
    # shared
    Option(name="workspace_dir", default="engine-ws", constraints=(_WORKSPACE,), convert=_no_existing_file),
    Option(name="update_progress", default=None, constraints=(_CALLABLE,), none=True),
    Option(name="random_state", default=None, constraints=_RANDOM_STATE, none=True),
    Option(name="verbose", default="auto", constraints=_VERBOSE),
    Option(name="device", default=None, constraints=(_DEVICE,), none=True),
    Option(name="n_threads", default=None, constraints=(_POSITIVE_INT,), none=True),
    Option(name="n_processes", default=None, constraints=(_POSITIVE_INT,), none=True),
    Option(name="batch_size", default=None, constraints=(_POSITIVE_INT,), none=True),
    Option(name="differential_privacy", default=None,
           constraints=(_instance((DifferentialPrivacyConfig, dict), "a DifferentialPrivacyConfig, a dict"),),
           none=True, convert=_coerce(DifferentialPrivacyConfig)),
    # split
    Option(name="tgt_primary_key", default=None, constraints=(_STR,), none=True),
    Option(name="ctx_primary_key", default=None, constraints=(_STR,), none=True),
    Option(name="tgt_context_key", default=None, constraints=(_STR,), none=True),
    Option(name="model_type", default=None, constraints=(_among(_values(ModelType)),), none=True,
           convert=_parse(ModelType)),
    Option(name="tgt_encoding_types", default=None, constraints=(_MAPPING,), none=True),
    Option(name="ctx_encoding_types", default=None, constraints=(_MAPPING,), none=True),
    Option(name="n_partitions", default=1, constraints=(_POSITIVE_INT,)),
    Option(name="trn_val_split", default=0.8, constraints=(_interval("float", 0, 1, "neither"), _CALLABLE)),
    # analyze
    Option(name="value_protection", default=True, constraints=(_BOOL,), convert=lambda value, name: bool(value)),
    # train
    Option(name="model", default=None, none=True,
           constraints=(_Constraint(_is_model, "a str among {'MOSTLY_AI/Small', 'MOSTLY_AI/Medium', "
                                               "'MOSTLY_AI/Large', 'small', 'medium', 'large'} (case-insensitive)"),
                        _Constraint(_is_language_model, f"{LANGUAGE_MODEL_DEFAULT!r} or the folder of a local "
                                                        "Hugging Face causal LM (LANGUAGE models)"))),
    Option(name="max_training_time", default=14400.0, constraints=(_BUDGET,)),
    Option(name="max_epochs", default=100.0, constraints=(_BUDGET,)),
    Option(name="gradient_accumulation_steps", default=None, constraints=(_POSITIVE_INT,), none=True),
    Option(name="enable_flexible_generation", default=True, constraints=(_BOOL,),
           convert=lambda value, name: bool(value)),
    Option(name="max_sequence_window", default=None, constraints=(_POSITIVE_INT,), none=True),
    Option(name="model_state_strategy", default=ModelStateStrategy.RESET,
           constraints=(_among(_values(ModelStateStrategy)),), convert=_parse(ModelStateStrategy)),
    Option(name="upload_model_data_callback", default=None, constraints=(_CALLABLE,), none=True),
    # generate
    Option(name="ctx_data", default=None, constraints=(_DATAFRAME,), none=True),
    Option(name="seed_data", default=None, constraints=(_DATAFRAME,), none=True),
    Option(name="sample_size", default=None, constraints=(_interval("int", 0, math.inf, "left"),), none=True),
    Option(name="sampling_temperature", default=1.0, constraints=(_interval("float", 0, math.inf, "left"),)),
    Option(name="sampling_top_p", default=1.0, constraints=(_interval("float", 0, 1, "right"),)),
    Option(name="rare_category_replacement_method", default=None, none=True,
           constraints=(_among(_values(RareCategoryReplacementMethod)),),
           convert=_parse(RareCategoryReplacementMethod)),
    Option(name="rebalancing", default=None, none=True, convert=_coerce(RebalancingConfig),
           constraints=(_instance((RebalancingConfig, dict), "a RebalancingConfig, a dict"),)),
    Option(name="imputation", default=None, none=True, convert=_coerce(ImputationConfig),
           constraints=(_instance((ImputationConfig, dict), "an ImputationConfig, a dict"),)),
    Option(name="fairness", default=None, none=True, convert=_coerce(FairnessConfig),
           constraints=(_instance((FairnessConfig, dict), "a FairnessConfig, a dict"),)),
    # flat TABULAR models: add the logit offsets fitted after training so generated marginals match the targets
    Option(name="marginal_calibration", default=True, constraints=(_BOOL,),
           convert=lambda value, name: bool(value)),
    # TABULAR models: set the columns that analyze found to be exact functions of another column from it
    Option(name="derived_columns", default=True, constraints=(_BOOL,), convert=lambda value, name: bool(value)),
)
"""The options of the engine functions (``split``, ``analyze``, ``encode``, ``train``, ``generate``)."""

ESTIMATOR_OPTIONS: dict[str, Option] = {
    **OPTIONS,
    # an estimator without a workspace_dir works in a temporary folder, removed with it
    "workspace_dir": OPTIONS["workspace_dir"].evolve(default=None, none=True, constraints=(_PATH,)),
    "model_state_strategy": OPTIONS["model_state_strategy"].evolve(default="RESET"),
    # sample(): the scikit-learn names of the engine's generate options
    "n_samples": OPTIONS["sample_size"].evolve(name="n_samples"),
    "context": OPTIONS["ctx_data"].evolve(name="context"),
    # the column predict / predict_proba answer for by default (a classifier's target); see docs/inference.md
    "target": Option(name="target", default=None, constraints=(_STR,), none=True),
    # TabularSynthesizer: the language model of its free-text (LANGUAGE_TEXT) columns; the values of
    # LanguageSynthesizer's `model` (None: the from-scratch LSTM)
    "language_model": Option(name="language_model", default=None, none=True,
                             constraints=(_Constraint(_is_language_model, f"{LANGUAGE_MODEL_DEFAULT!r} or the folder "
                                                                          "of a local Hugging Face causal LM"),)),
    # sample() of a two-table model: also return the context rows the target was generated for
    "return_context": Option(name="return_context", default=False, constraints=(_BOOL,),
                             convert=lambda value, name: bool(value)),
    # sample_to_parquet(): the output folder and the local processes (joblib's n_jobs: -1 all cores, 0 invalid)
    "path": Option(name="path", default=None, constraints=(_PATH,)),
    "n_jobs": Option(name="n_jobs", default=None, none=True,
                     constraints=(_Constraint(lambda value: _is_int(value) and value != 0, "an int other than 0"),)),
}
"""The options of the transformers and estimators (same rules, estimator defaults and names)."""


ENGINE_DEFAULTS = SimpleNamespace(**{name: option.default for name, option in OPTIONS.items()})
"""The defaults of the engine functions' options, as attributes (``ENGINE_DEFAULTS.max_epochs``)."""

ESTIMATOR_DEFAULTS = SimpleNamespace(**{name: option.default for name, option in ESTIMATOR_OPTIONS.items()})
"""The defaults of the transformers' and estimators' parameters, as attributes."""


def validate(name: str, value: Any, owner: str, *, estimator: bool = False) -> Any:
    """Check ``value`` of option ``name`` for its caller ``owner``; return it in normalised form.

    Parameters
    ----------
    name : str
        The option.
    value : object
        The value given.
    owner : str
        Who takes the option, as the message should name it: ``"train"``, ``"TabularSynthesizer"``...
    estimator : bool, default=False
        Use the estimators' variant of the option (:data:`ESTIMATOR_OPTIONS`).

    Returns
    -------
    object
        The value, normalised by the option (enums parsed, config dicts coerced, None for unset defaults).

    Raises
    ------
    InvalidParameterError
        A ``ValueError`` (and ``TypeError``) in scikit-learn's form, naming the parameter and ``owner``.
    """
    option = (ESTIMATOR_OPTIONS if estimator else OPTIONS)[name]
    if value is None and option.none:
        return None
    if not any(constraint.test(value) for constraint in option.constraints):
        raise _error(name, owner, option.describe(), value)
    if option.convert is not None:
        try:
            value = option.convert(value, name)
        except (TypeError, ValueError) as err:
            reason = str(err) if str(err).endswith(".") else f"{err}."
            raise InvalidParameterError(f"The {name!r} parameter of {owner} is invalid: {reason}") from None
    return value


def validate_all(owner: str, params: Mapping[str, Any], *, estimator: bool = False) -> dict[str, Any]:
    """:func:`validate` every ``name: value`` of ``params``, in order; return the normalised values."""
    return {name: validate(name, value, owner, estimator=estimator) for name, value in params.items()}
