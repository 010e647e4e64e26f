"""synthgen: privacy-safe synthetic data for flat and two-table data.

The engine API runs in stages over an on-disk workspace: :func:`split`, :func:`analyze`, :func:`encode`
(and, with a model, ``train`` and ``generate``, and the inference functions :func:`predict_proba`,
:func:`predict`, :func:`log_likelihood` and :func:`impute`). The same stages are scikit-learn transformers
(:class:`Splitter`, :class:`Analyzer`, :class:`Encoder`).

The public names are imported on first use (PEP 562), so ``import synthgen`` and the command line's
``--help`` do not pay for torch; ``from synthgen import TabularSynthesizer`` works as usual.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
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

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["split", "analyze", "encode", "train", "generate", "read_synthetic_data", "predict_proba",
                     "predict", "log_likelihood", "impute", "Splitter", "Analyzer", "Encoder"], ".stages"),
    **dict.fromkeys(["TabularSynthesizer", "LanguageSynthesizer"], ".estimators"),
    **dict.fromkeys(["evaluate", "EvaluationResult", "fidelity_scorer"], ".evaluation"),
    **dict.fromkeys(["Workspace", "WorkspaceError"], "._workspace"),
    **dict.fromkeys(["DifferentialPrivacyConfig", "FairnessConfig", "ImputationConfig", "ModelEncodingType",
                     "ModelStateStrategy", "ModelType", "ProgressCallback", "RareCategoryReplacementMethod",
                     "RebalancingConfig"], ".domain"),
}
"""Where each public name lives; imported by :func:`__getattr__` on first access."""

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


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
