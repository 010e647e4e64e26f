"""The flat tabular model: an any-order autoregressive network over integer-encoded sub-columns.

Pure torch: the model takes code tensors and a column spec, not files or DataFrames.
"""

from ._network import FlatARGN
from ._presets import (
    MODEL_SIZES,
    batch_size_heuristic,
    build_model_spec,
    learn_rate_heuristic,
    resolve_model_size,
)
from ._sampling import FixedProbabilities, prepare_fixed_probs, sample_categorical
from ._spec import ColumnSpec, ModelSpec
from ._trainer import TrainingResult, train_model

__all__ = [
    "MODEL_SIZES",
    "ColumnSpec",
    "FixedProbabilities",
    "FlatARGN",
    "ModelSpec",
    "TrainingResult",
    "batch_size_heuristic",
    "build_model_spec",
    "learn_rate_heuristic",
    "prepare_fixed_probs",
    "resolve_model_size",
    "sample_categorical",
    "train_model",
]
