import pickle

import pytest

from synthgen.domain import (
    DifferentialPrivacyConfig,
    FairnessConfig,
    ImputationConfig,
    ModelEncodingType,
    ModelStateStrategy,
    ModelType,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("TABULAR_CATEGORICAL", ModelEncodingType.TABULAR_CATEGORICAL),
        ("tabular_numeric_digit", ModelEncodingType.TABULAR_NUMERIC_DIGIT),
        (ModelEncodingType.LANGUAGE_TEXT, ModelEncodingType.LANGUAGE_TEXT),
    ],
)
def test_encoding_type_parses_strings_case_insensitively(value, expected):
    assert ModelEncodingType.parse(value, name="x") is expected


def test_all_seed_encoding_types_exist():
    names = {m.value for m in ModelEncodingType}
    assert {
        "AUTO", "TABULAR_CATEGORICAL", "TABULAR_NUMERIC_AUTO", "TABULAR_NUMERIC_DISCRETE",
        "TABULAR_NUMERIC_BINNED", "TABULAR_NUMERIC_DIGIT", "TABULAR_CHARACTER", "TABULAR_DATETIME",
        "TABULAR_DATETIME_RELATIVE", "TABULAR_LAT_LONG", "LANGUAGE_TEXT", "LANGUAGE_CATEGORICAL",
        "LANGUAGE_NUMERIC", "LANGUAGE_DATETIME",
    } <= names
    assert ModelEncodingType.LANGUAGE_TEXT.model_type is ModelType.LANGUAGE
    assert ModelEncodingType.TABULAR_LAT_LONG.model_type is ModelType.TABULAR


def test_unknown_encoding_type_names_parameter_and_allowed_values():
    with pytest.raises(ValueError, match=r"^tgt_encoding_types\['a'\] must be one of .*'TABULAR_CATEGORICAL'.*; "
                                         r"got 'TABULAR_FOO' instead\.$"):
        ModelEncodingType.parse("TABULAR_FOO", name="tgt_encoding_types['a']")


def test_strategy_lowercase_aliases_are_the_same_members():
    assert ModelStateStrategy.reset is ModelStateStrategy.RESET
    assert ModelStateStrategy("resume") is ModelStateStrategy.RESUME
    assert RareCategoryReplacementMethod("sample") is RareCategoryReplacementMethod.SAMPLE
    assert [m.value for m in ModelStateStrategy] == ["RESET", "REUSE", "RESUME"]


def test_dp_config_defaults():
    config = DifferentialPrivacyConfig()
    assert (config.epsilon, config.max_epsilon, config.noise_multiplier, config.max_grad_norm, config.delta,
            config.value_protection_epsilon, config.stats_share, config.accountant) == (
        None, None, None, 1.0, None, None, 0.1, "prv")
    assert DifferentialPrivacyConfig(accountant="RDP").accountant == "rdp"


def test_configs_coerce_dicts_with_snake_or_camel_keys():
    assert DifferentialPrivacyConfig.coerce({"maxEpsilon": 5, "noise_multiplier": 2.0}) == (
        DifferentialPrivacyConfig(max_epsilon=5, noise_multiplier=2.0))
    assert ImputationConfig.coerce({"columns": "age"}).columns == ["age"]
    assert FairnessConfig.coerce({"targetColumn": "income", "sensitiveColumns": ["sex"]}).sensitive_columns == ["sex"]
    assert DifferentialPrivacyConfig.coerce(None) is None


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: DifferentialPrivacyConfig(noise_multiplier=-1),
         "^noise_multiplier must be a positive finite number or None; got -1 instead.$"),
        (lambda: DifferentialPrivacyConfig(epsilon=-1),
         "^epsilon must be a positive finite number or None; got -1 instead.$"),
        (lambda: DifferentialPrivacyConfig(epsilon=0),
         "^epsilon must be a positive finite number or None; got 0 instead.$"),
        (lambda: DifferentialPrivacyConfig(max_epsilon=float("inf")),
         "^max_epsilon must be a positive finite number or None; got inf instead.$"),
        (lambda: DifferentialPrivacyConfig(delta=1.5),
         r"^delta must be a number in the open interval \(0, 1\) or None; got 1.5 instead.$"),
        (lambda: DifferentialPrivacyConfig(delta=1),
         r"^delta must be a number in the open interval \(0, 1\) or None; got 1 instead.$"),
        (lambda: DifferentialPrivacyConfig(delta=0.0),
         r"^delta must be a number in the open interval \(0, 1\) or None; got 0.0 instead.$"),
        (lambda: DifferentialPrivacyConfig(stats_share=1.0),
         r"^stats_share must be a number in the open interval \(0, 1\); got 1.0 instead.$"),
        (lambda: DifferentialPrivacyConfig(stats_share=0),
         r"^stats_share must be a number in the open interval \(0, 1\); got 0 instead.$"),
        (lambda: DifferentialPrivacyConfig(accountant="moments"),
         "^accountant must be one of 'prv', 'rdp', 'gdp'; got 'moments' instead.$"),
        (lambda: DifferentialPrivacyConfig(epsilon=1, max_epsilon=5),
         r"^differential_privacy: give either epsilon \(the total budget, split by stats_share\) or max_epsilon / "
         r"value_protection_epsilon \(the training and statistics budgets\), not both; got epsilon=1 and "
         r"max_epsilon=5.$"),
        (lambda: DifferentialPrivacyConfig.coerce({"epsilon": 1, "valueProtectionEpsilon": 0.5}),
         "got epsilon=1 and value_protection_epsilon=0.5"),
        (lambda: DifferentialPrivacyConfig.coerce({"eps": 1}), "has no field 'eps'"),
        (lambda: RebalancingConfig(column="sex", probabilities={"Male": 0.8, "Female": 0.4}),
         "must sum to at most 1"),
        (lambda: RebalancingConfig(column="sex", probabilities={"Male": 1.5}), "must be a number in \\[0, 1\\]"),
        (lambda: FairnessConfig(target_column="y", sensitive_columns=["y"]), "must not be one of the sensitive"),
        (lambda: ImputationConfig(columns=[]), "must be a non-empty list"),
        (lambda: DifferentialPrivacyConfig.coerce(3), "must be a DifferentialPrivacyConfig, a dict or None"),
    ],
)
def test_invalid_configs_raise_clear_errors(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_configs_are_frozen_and_picklable():
    config = RebalancingConfig(column="sex", probabilities={"Male": 0.5})
    with pytest.raises(AttributeError):
        config.column = "x"
    assert pickle.loads(pickle.dumps(config)) == config
