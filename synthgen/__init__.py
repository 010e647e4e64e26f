"""synthgen: privacy-safe synthetic data for flat and two-table data.

The engine API runs in stages over an on-disk workspace: :func:`split`, :func:`analyze`, :func:`encode`
(and, with a model, ``train`` and ``generate``, and the inference functions :func:`predict_proba`,
:func:`predict`, :func:`log_likelihood` and :func:`impute`). The same stages are scikit-learn transformers
(:class:`Splitter`, :class:`Analyzer`, :class:`Encoder`).
"""

import logging

from ._version import __version__
from ._workspace import Workspace, WorkspaceError
from .domain import (
    DifferentialPrivacyConfig,
    FairnessConfig,
    ImputationConfig,
    ModelEncodingType,
    ModelStateStrategy,
    ModelType,
    ProgressCallback,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)
from .estimators import LanguageSynthesizer, TabularSynthesizer
from .evaluation import EvaluationResult, evaluate, fidelity_scorer
from .stages import (
    Analyzer,
    Encoder,
    Splitter,
    analyze,
    encode,
    generate,
    impute,
    log_likelihood,
    predict,
    predict_proba,
    read_synthetic_data,
    split,
    train,
)

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "split",
    "analyze",
    "encode",
    "train",
    "generate",
    "read_synthetic_data",
    "predict_proba",
    "predict",
    "log_likelihood",
    "impute",
    "TabularSynthesizer",
    "LanguageSynthesizer",
    "evaluate",
    "EvaluationResult",
    "fidelity_scorer",
    "Splitter",
    "Analyzer",
    "Encoder",
    "Workspace",
    "WorkspaceError",
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
