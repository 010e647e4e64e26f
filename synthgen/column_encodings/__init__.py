"""Column encodings: one module per encoding type, looked up by :func:`get_encoding`."""

from __future__ import annotations

from importlib import import_module

from ..domain import ModelEncodingType
from ._base import ColumnEncoding, SequenceIndex, code_dtype

__all__ = ["ColumnEncoding", "SequenceIndex", "code_dtype", "get_encoding", "TABULAR_ENCODINGS"]

_MODULES = {
    ModelEncodingType.TABULAR_CATEGORICAL: ("_categorical", "CategoricalEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_AUTO: ("_numeric_auto", "NumericAutoEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_DISCRETE: ("_numeric_discrete", "NumericDiscreteEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_BINNED: ("_numeric_binned", "NumericBinnedEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_DIGIT: ("_numeric_digit", "NumericDigitEncoding"),
    ModelEncodingType.TABULAR_CHARACTER: ("_character", "CharacterEncoding"),
    ModelEncodingType.TABULAR_DATETIME: ("_datetime_absolute", "DatetimeEncoding"),
    ModelEncodingType.TABULAR_DATETIME_RELATIVE: ("_datetime_relative", "DatetimeRelativeEncoding"),
    ModelEncodingType.TABULAR_LAT_LONG: ("_lat_long", "LatLongEncoding"),
}

TABULAR_ENCODINGS = tuple(_MODULES)


def get_encoding(encoding_type: ModelEncodingType | str) -> ColumnEncoding:
    """The encoding object for ``encoding_type``."""
    encoding_type = ModelEncodingType.parse(encoding_type, name="encoding type")
    if encoding_type not in _MODULES:
        raise ValueError(f"{encoding_type.value} is not a tabular encoding type.")
    module_name, class_name = _MODULES[encoding_type]
    module = import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()
