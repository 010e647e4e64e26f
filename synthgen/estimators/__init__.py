"""scikit-learn estimators that run the whole engine: ``fit`` learns, ``sample`` generates."""

from ._tabular import TabularSynthesizer

__all__ = ["TabularSynthesizer"]
