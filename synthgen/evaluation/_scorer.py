"""A scikit-learn scorer that ranks synthesizers by the fidelity of their samples."""

from __future__ import annotations

from typing import Any

import pandas as pd

from synthgen.evaluation._evaluate import evaluate


def fidelity_scorer(estimator: Any, X: pd.DataFrame, y: Any = None) -> float:
    """Overall accuracy of a fitted synthesizer's sample against held-out data.

    A scikit-learn scorer (a callable ``scorer(estimator, X, y)``), so it can be passed as
    ``GridSearchCV(..., scoring=fidelity_scorer)``: for each validation fold it draws
    ``estimator.sample(n_samples=len(X))`` and returns :attr:`EvaluationResult.overall` of that sample
    compared with ``X``. Higher is better. Only accuracy is computed (no privacy figures, no
    discriminator), so scoring is fast. Flat tables only: an estimator whose ``tgt_context_key`` is set
    (a sequence model) is refused.

    Parameters
    ----------
    estimator : object
        A fitted synthesizer with a ``sample(n_samples=...)`` method returning a DataFrame.
    X : pandas.DataFrame
        The validation fold.
    y : None
        Ignored; present for the scorer signature.

    Returns
    -------
    float
        Overall accuracy in [0, 1].

    Raises
    ------
    TypeError
        If ``X`` is not a DataFrame or the estimator cannot sample one.
    ValueError
        If the estimator models sequences (``tgt_context_key`` is set).

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from synthgen.evaluation import fidelity_scorer
    >>> search = GridSearchCV(synthesizer, {"max_epochs": [5, 20]}, scoring=fidelity_scorer, cv=3)  # doctest: +SKIP
    >>> search.fit(train).best_params_  # doctest: +SKIP
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"fidelity_scorer needs X as a pandas DataFrame. Got {type(X).__name__} instead.")
    if not callable(getattr(estimator, "sample", None)):
        raise TypeError(
            f"fidelity_scorer needs an estimator with a sample(n_samples=...) method; "
            f"{type(estimator).__name__} has none."
        )
    context_key = getattr(estimator, "tgt_context_key", None)
    if context_key is not None:
        raise ValueError(
            f"fidelity_scorer scores flat tables only; {type(estimator).__name__} models sequences "
            f"(tgt_context_key={context_key!r}). Use evaluate(..., context_key={context_key!r}) instead."
        )
    synthetic = estimator.sample(n_samples=len(X))
    if not isinstance(synthetic, pd.DataFrame):
        raise TypeError(
            f"{type(estimator).__name__}.sample must return a pandas DataFrame. Got {type(synthetic).__name__} instead."
        )
    # evaluate's fixed default seed keeps the score a function of the sample; its randomness is the estimator's
    # the score is the tabular overall accuracy: skip the text classifiers, whose figures it does not use
    result = evaluate(X, synthetic, privacy=False, discriminator=False, text_context_columns=[])
    return result.overall
