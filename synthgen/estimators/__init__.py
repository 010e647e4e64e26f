"""scikit-learn estimators that run the whole engine: ``fit`` learns, ``sample`` generates."""

from .language import LanguageSynthesizer
from .tabular import TabularSynthesizer

__all__ = ["LanguageSynthesizer", "TabularSynthesizer"]
