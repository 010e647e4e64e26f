"""Column encodings: one module per encoding type, looked up by :func:`get_encoding`."""

from __future__ import annotations

from importlib import import_module

from ..domain import ModelEncodingType
from ._base import ColumnEncoding, SequenceIndex, code_dtype

__all__ = ["ColumnEncoding", "SequenceIndex", "code_dtype", "get_encoding", "TABULAR_ENCODINGS"]

_MODULES = {
    ModelEncodingType.TABULAR_CATEGORICAL: ("categorical", "CategoricalEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_AUTO: ("numeric_auto", "NumericAutoEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_DISCRETE: ("numeric_discrete", "NumericDiscreteEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_BINNED: ("numeric_binned", "NumericBinnedEncoding"),
    ModelEncodingType.TABULAR_NUMERIC_DIGIT: ("numeric_digit", "NumericDigitEncoding"),
    ModelEncodingType.TABULAR_CHARACTER: ("character", "CharacterEncoding"),
    ModelEncodingType.TABULAR_DATETIME: ("datetime", "DatetimeEncoding"),
    ModelEncodingType.TABULAR_DATETIME_RELATIVE: ("datetime_relative", "DatetimeRelativeEncoding"),
    ModelEncodingType.TABULAR_LAT_LONG: ("lat_long", "LatLongEncoding"),
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
