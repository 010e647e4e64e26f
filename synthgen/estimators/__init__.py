"""scikit-learn estimators that run the whole engine: ``fit`` learns, ``sample`` generates."""

from .tabular import TabularSynthesizer

__all__ = ["TabularSynthesizer"]
