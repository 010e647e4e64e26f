"""Domain types of the engine API: encoding types, model types, strategies and generation configs.

Enums accept their member names and values case-insensitively (``"tabular_categorical"``,
``ModelStateStrategy.reset``); configs are frozen attrs classes that also accept plain dicts (snake_case
or the camelCase keys of the MOSTLY AI engine) through :meth:`coerce`.
"""

from __future__ import annotations

import math
import re
from enum import Enum, StrEnum
from typing import Any, Protocol

import attrs

__all__ = [
    "DifferentialPrivacyConfig",
    "FairnessConfig",
    "ImputationConfig",
    "ModelEncodingType",
    "ModelStateStrategy",
    "ModelType",
    "ProgressCallback",
    "RareCategoryReplacementMethod",
    "RebalancingConfig",
]


class _CaseInsensitiveEnum(StrEnum):
    """A string enum that parses its values case-insensitively and says what is allowed otherwise."""

    @classmethod
    def _missing_(cls, value: object) -> Enum | None:
        if isinstance(value, str):
            wanted = value.strip().upper()
            for member in cls:
                if member.value.upper() == wanted or member.name.upper() == wanted:
                    return member
        return None

    @classmethod
    def parse(cls, value: Any, *, name: str) -> _CaseInsensitiveEnum:
        """Parse ``value`` or raise a ``ValueError`` naming the parameter ``name`` and the allowed values."""
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls.__members__.values() if m.name == m.name.upper())
            raise ValueError(
                f"{name} must be one of {allowed}; got {value!r} instead."
            ) from None


class ModelType(_CaseInsensitiveEnum):
    """The type of model: ``TABULAR`` (trained from scratch) or ``LANGUAGE`` (a language model).

    Examples
    --------
    >>> from synthgen import ModelType
    >>> ModelType("tabular")
    <ModelType.TABULAR: 'TABULAR'>
    """

    TABULAR = "TABULAR"
    LANGUAGE = "LANGUAGE"


class ModelEncodingType(_CaseInsensitiveEnum):
    """How a column is encoded for model training and decoded at generation.

    Examples
    --------
    >>> from synthgen import TabularSynthesizer
    >>> synth = TabularSynthesizer(tgt_encoding_types={"zip": "TABULAR_CHARACTER"})
    >>> from synthgen import ModelEncodingType
    >>> ModelEncodingType("tabular_character").model_type
    <ModelType.TABULAR: 'TABULAR'>
    """

    AUTO = "AUTO"
    TABULAR_CATEGORICAL = "TABULAR_CATEGORICAL"
    TABULAR_NUMERIC_AUTO = "TABULAR_NUMERIC_AUTO"
    TABULAR_NUMERIC_DISCRETE = "TABULAR_NUMERIC_DISCRETE"
    TABULAR_NUMERIC_BINNED = "TABULAR_NUMERIC_BINNED"
    TABULAR_NUMERIC_DIGIT = "TABULAR_NUMERIC_DIGIT"
    TABULAR_CHARACTER = "TABULAR_CHARACTER"
    TABULAR_DATETIME = "TABULAR_DATETIME"
    TABULAR_DATETIME_RELATIVE = "TABULAR_DATETIME_RELATIVE"
    TABULAR_LAT_LONG = "TABULAR_LAT_LONG"
    LANGUAGE_TEXT = "LANGUAGE_TEXT"
    LANGUAGE_CATEGORICAL = "LANGUAGE_CATEGORICAL"
    LANGUAGE_NUMERIC = "LANGUAGE_NUMERIC"
    LANGUAGE_DATETIME = "LANGUAGE_DATETIME"

    @property
    def model_type(self) -> ModelType | None:
        """The model type this encoding belongs to (``None`` for ``AUTO``)."""
        if self.value.startswith("TABULAR_"):
            return ModelType.TABULAR
        if self.value.startswith("LANGUAGE_"):
            return ModelType.LANGUAGE
        return None


class ModelStateStrategy(_CaseInsensitiveEnum):
    """What training does with an existing model state in the workspace.

    Examples
    --------
    >>> from synthgen import ModelStateStrategy, TabularSynthesizer
    >>> synth = TabularSynthesizer(model_state_strategy=ModelStateStrategy.REUSE)   # or "REUSE"
    >>> ModelStateStrategy("resume")
    <ModelStateStrategy.RESUME: 'RESUME'>
    """

    RESET = "RESET"
    REUSE = "REUSE"
    RESUME = "RESUME"
    # Lower-case aliases, as the engine API spells them (``ModelStateStrategy.reset``).
    reset = "RESET"
    reuse = "REUSE"
    resume = "RESUME"


class RareCategoryReplacementMethod(_CaseInsensitiveEnum):
    """How rare (protected) categories are sampled: a ``_RARE_`` constant (NULL where the column holds no
    strings) or a non-rare category.

    Examples
    --------
    >>> from synthgen import RareCategoryReplacementMethod
    >>> RareCategoryReplacementMethod("constant")
    <RareCategoryReplacementMethod.CONSTANT: 'CONSTANT'>
    """

    CONSTANT = "CONSTANT"
    SAMPLE = "SAMPLE"
    constant = "CONSTANT"
    sample = "SAMPLE"


class ProgressCallback(Protocol):
    """The engine's progress callback; returning ``{"stopExecution": True}`` asks the stage to stop.

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> def report(total=None, completed=None, advance=None, message=None):
    ...     if message is not None:
    ...         print(sorted(message))
    >>> ws = sg.split(load_census(), workspace_dir="ws", update_progress=report, random_state=0)
    """

    def __call__(
        self,
        total: int | None = None,
        completed: int | None = None,
        advance: int | None = None,
        message: dict | None = None,
    ) -> dict | None: ...


# ---------------------------------------------------------------------------------------------------------
# configs

def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _Config:
    """Mixin: build a config from an instance, a dict (snake_case or camelCase keys) or ``None``."""

    @classmethod
    def coerce(cls, value: Any, *, name: str | None = None):
        name = name or _camel_to_snake(cls.__name__.removesuffix("Config"))
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            fields = {f.name for f in attrs.fields(cls)}
            kwargs = {}
            for key, item in value.items():
                snake = _camel_to_snake(key) if isinstance(key, str) else key
                if snake not in fields:
                    raise ValueError(
                        f"{name} has no field {key!r}; allowed fields are {sorted(fields)}."
                    )
                kwargs[snake] = item
            try:
                return cls(**kwargs)
            except TypeError as err:
                raise ValueError(f"{name}: {err}") from None
        raise TypeError(f"{name} must be a {cls.__name__}, a dict or None; got {type(value).__name__} instead.")

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def _optional_positive_float(name: str):
    def check(instance, attribute, value):
        if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive finite number or None; got {value!r} instead.")

    return check


def _positive_float(name: str, upper: float | None = None):
    def check(instance, attribute, value):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value)
        if ok and upper is not None:
            ok = value < upper
        if not ok:
            bound = f" and below {upper}" if upper is not None else ""
            raise ValueError(f"{name} must be a positive number{bound}; got {value!r} instead.")

    return check


@attrs.frozen(kw_only=True)
class DifferentialPrivacyConfig(_Config):
    """Differential privacy for training (DP-SGD) and for the published statistics.

    Parameters
    ----------
    max_epsilon : float or None, default=None
        Training stops before the total epsilon would exceed this value; ``None`` means no limit.
    noise_multiplier : float, default=1.5
        Standard deviation of the Gaussian noise relative to ``max_grad_norm``.
    max_grad_norm : float, default=1.0
        Per-sample gradient clipping norm.
    delta : float, default=1e-5
        Probability of the privacy guarantee not holding.
    value_protection_epsilon : float, default=1.0
        Epsilon spent on the differentially private column statistics at analysis.

    Examples
    --------
    >>> from synthgen import DifferentialPrivacyConfig
    >>> config = DifferentialPrivacyConfig(max_epsilon=5.0)   # not yet accepted by train or fit
    >>> config.max_epsilon
    5.0
    """

    max_epsilon: float | None = attrs.field(default=None, validator=_optional_positive_float("max_epsilon"))
    noise_multiplier: float = attrs.field(default=1.5, validator=_positive_float("noise_multiplier"))
    max_grad_norm: float = attrs.field(default=1.0, validator=_positive_float("max_grad_norm"))
    delta: float = attrs.field(default=1e-5, validator=_positive_float("delta", upper=1.0))
    value_protection_epsilon: float = attrs.field(
        default=1.0, validator=_positive_float("value_protection_epsilon")
    )


def _non_empty_str(name: str):
    def check(instance, attribute, value):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string; got {value!r} instead.")

    return check


def _str_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return list(value)


def _non_empty_str_list(name: str):
    def check(instance, attribute, value):
        if not value or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{name} must be a non-empty list of column names; got {value!r} instead.")
        if len(set(value)) != len(value):
            raise ValueError(f"{name} must not repeat a column; got {value!r}.")

    return check


@attrs.frozen(kw_only=True)
class FairnessConfig(_Config):
    """Statistical parity of ``target_column`` with respect to the categorical ``sensitive_columns``.

    Generation draws the categorical target so that the share of each of its classes is the same in every
    group of values of the sensitive columns; ``evaluate(..., fairness=...)`` measures it.

    Parameters
    ----------
    target_column : str
        A categorical column of the generated table.
    sensitive_columns : str or list of str
        Categorical columns (of the generated table or, for two-table models, of the context table).

    Examples
    --------
    >>> from synthgen import FairnessConfig
    >>> FairnessConfig.coerce({"targetColumn": "income", "sensitiveColumns": ["sex", "race"]})
    FairnessConfig(target_column='income', sensitive_columns=['sex', 'race'])
    """

    target_column: str = attrs.field(validator=_non_empty_str("target_column"))
    sensitive_columns: list[str] = attrs.field(
        converter=_str_list, validator=_non_empty_str_list("sensitive_columns")
    )

    def __attrs_post_init__(self):
        if self.target_column in self.sensitive_columns:
            raise ValueError(
                f"fairness target_column {self.target_column!r} must not be one of the sensitive_columns."
            )


@attrs.frozen(kw_only=True)
class ImputationConfig(_Config):
    """Columns whose NULLs are imputed: generation never samples NULL for them.

    Examples
    --------
    >>> from synthgen import ImputationConfig, TabularSynthesizer
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> synth = TabularSynthesizer(max_epochs=1, random_state=0).fit(census)
    >>> rows = synth.sample(100, imputation=ImputationConfig(columns=["workclass"]))
    >>> int(rows["workclass"].isna().sum())
    0
    """

    columns: list[str] = attrs.field(converter=_str_list, validator=_non_empty_str_list("imputation columns"))


def _probabilities(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"rebalancing probabilities must be a dict of category to share; got {value!r} instead.")
    return {str(k): v for k, v in value.items()}


@attrs.frozen(kw_only=True)
class RebalancingConfig(_Config):
    """Target shares of some categories of one categorical column.

    Examples
    --------
    >>> from synthgen import RebalancingConfig, TabularSynthesizer
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> synth = TabularSynthesizer(max_epochs=1, random_state=0).fit(census)
    >>> rows = synth.sample(1000, rebalancing=RebalancingConfig(column="sex", probabilities={"Female": 0.5}))
    >>> bool(0.4 < (rows["sex"] == "Female").mean() < 0.6)
    True
    """

    column: str = attrs.field(validator=_non_empty_str("rebalancing column"))
    probabilities: dict[str, float] = attrs.field(converter=_probabilities)

    @probabilities.validator
    def _check(self, attribute, value):
        for category, share in value.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.0 <= share <= 1.0:
                raise ValueError(
                    f"rebalancing probability of {category!r} must be a number in [0, 1]; got {share!r} instead."
                )
        total = sum(value.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"rebalancing probabilities must sum to at most 1; they sum to {total:.6g}.")
