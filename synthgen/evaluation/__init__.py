"""Evaluation of synthetic data: fidelity and privacy figures, an HTML report and a model-selection scorer.

Works on pandas DataFrames only. See ``docs/evaluation.md`` for the definitions of the figures.
"""

from synthgen.evaluation._diagnosis import diagnose
from synthgen.evaluation._evaluate import evaluate
from synthgen.evaluation._fairness import disparate_impact, parity_shares, statistical_parity_difference
from synthgen.evaluation._result import EvaluationResult
from synthgen.evaluation._scorer import fidelity_scorer

__all__ = [
    "EvaluationResult",
    "diagnose",
    "disparate_impact",
    "evaluate",
    "fidelity_scorer",
    "parity_shares",
    "statistical_parity_difference",
]
