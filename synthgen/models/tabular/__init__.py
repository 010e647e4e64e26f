"""The tabular models: any-order autoregressive networks over integer-encoded sub-columns.

:class:`FlatARGN` models a flat table (optionally conditioned on a context row), :class:`SequentialARGN`
a context table with a sequence of event rows per subject. Pure torch: the models take code tensors and
column specs, not files or DataFrames.
"""

from ._loop import TrainingResult, resume_on_new_data
from ._network import FlatARGN
from ._presets import (
    MODEL_SIZES,
    batch_size_heuristic,
    build_model_spec,
    learn_rate_heuristic,
    resolve_model_size,
)
from ._sampling import FixedProbabilities, prepare_fixed_probs, sample_categorical
from ._sequence_batches import SequenceData
from ._sequential import SequentialARGN
from ._sequential_spec import SequentialSpec, build_sequential_spec
from ._sequential_trainer import train_sequential_model
from ._spec import ColumnSpec, ModelSpec
from ._trainer import train_model

__all__ = [
    "MODEL_SIZES",
    "ColumnSpec",
    "FixedProbabilities",
    "FlatARGN",
    "ModelSpec",
    "SequenceData",
    "SequentialARGN",
    "SequentialSpec",
    "TrainingResult",
    "batch_size_heuristic",
    "build_model_spec",
    "build_sequential_spec",
    "learn_rate_heuristic",
    "prepare_fixed_probs",
    "resolve_model_size",
    "resume_on_new_data",
    "sample_categorical",
    "train_model",
    "train_sequential_model",
]
