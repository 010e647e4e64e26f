"""scikit-learn estimators that run the whole engine: ``fit`` learns, ``sample`` generates."""

from ._language import LanguageSynthesizer
from ._tabular import TabularSynthesizer

__all__ = ["LanguageSynthesizer", "TabularSynthesizer"]
