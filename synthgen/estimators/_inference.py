"""The inference methods of ``TabularSynthesizer``: ``predict_proba``, ``predict``, ``score_samples``, ``score``
and ``impute`` (see ``docs/inference.md``); thin wrappers of :class:`synthgen.stages._inference_common.TabularInference`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .._seeding import as_generator
from .._threads import torch_threads
from ..stages._inference_common import CLASS_ENCODINGS, DEFAULT_N_DRAWS, DEFAULT_N_ORDERS, TabularInference
from ..stages._transformers import frame_with_target
from ._base import _two_dimensional

__all__ = ["InferenceMixin"]


def _default_target_has_classes(estimator) -> bool:
    """False only for a fitted synthesizer whose default target is numeric or datetime (no classes)."""
    if not hasattr(estimator, "stats_"):
        return True  # unfitted: the method is there and raises NotFittedError
    default = estimator.target if estimator.target is not None else getattr(estimator, "_fit_target", None)
    column = estimator.stats_["columns"].get(default) if default is not None else None
    return column is None or column["encoding_type"] in CLASS_ENCODINGS


class InferenceMixin:
    """Classifier, density-estimator and imputer methods of a fitted flat synthesizer."""

    # -- fit-time target -------------------------------------------------------------------------------
    def _named_y(self, y):
        """``y`` named after the ``target`` parameter when one is set (so arrays and Series alike land there)."""
        if y is None or self.target is None:
            return y
        if isinstance(y, pd.DataFrame):
            if y.shape[1] != 1:
                raise ValueError(f"{type(self).__name__}.fit takes y with one column; got {y.shape[1]} columns.")
            y = y.iloc[:, 0]
        return pd.Series(np.asarray(y) if not isinstance(y, pd.Series) else y.to_numpy(), name=self.target)

    def _check_target_column(self, columns) -> None:
        """Fail before training when the ``target`` parameter names no column of the table to learn."""
        if self.target is not None and (not isinstance(self.target, str) or self.target not in columns):
            raise ValueError(f"The 'target' parameter of {type(self).__name__} must name a column of the learned "
                             f"table {list(columns)} (or be None). Got {self.target!r} instead.")

    def _set_target(self, y) -> None:
        """Record the column ``y`` became (the default target) and, for a fixed target, ``classes_``."""
        self.__dict__.pop("classes_", None)  # a refit may have another target
        self._generator_for(None)  # load the network now, so that predicting leaves the estimator unchanged
        if y is None:
            self._fit_target = None
        else:
            named = self._named_y(y)  # named as frame_with_target names the learned column
            name = getattr(named.iloc[:, 0] if isinstance(named, pd.DataFrame) else named, "name", None)
            self._fit_target = name if isinstance(name, str) else "target"
        if self.target is None:
            return
        self._check_target_column(list(self.stats_["columns"]))
        if self.stats_["columns"][self.target]["encoding_type"] in CLASS_ENCODINGS:
            self.classes_ = self._inference().classes(self.target)

    def _inference(self) -> TabularInference:
        return TabularInference(self._generator_for(None))

    @contextmanager
    def _inference_on_threads(self, n_rows: int) -> Iterator[TabularInference]:
        """The inference object, with torch on ``n_threads`` (or the automatic choice) for the block, as in sample."""
        generator = self._generator_for(None)
        with torch_threads(generator.n_threads_for(self.n_threads, max(n_rows, 1))):
            yield TabularInference(generator)

    def _resolve_target(self, target, method: str) -> str:
        if target is not None:
            return target
        if self.target is not None:
            return self.target
        if getattr(self, "_fit_target", None) is not None:
            return self._fit_target
        raise ValueError(f"{method} needs a target column: pass target=..., construct the synthesizer with "
                         "target=..., or fit it with y.")

    def _rows(self, X) -> pd.DataFrame:
        """``X`` as a DataFrame: any subset of the learned columns, or an array of exactly the fitted features."""
        if isinstance(X, pd.DataFrame):
            return X
        array = _two_dimensional(X)
        if array.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {array.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        return pd.DataFrame(array, columns=list(self.feature_names_in_))

    # -- classifier ----------------------------------------------------------------------------------------
    @available_if(_default_target_has_classes)
    def predict_proba(self, X, *, target=None) -> np.ndarray:
        """Exact class probabilities of a categorical target given the other columns of ``X``.

        One forward pass of the target's head with ``X``'s columns first in the column order (no sampling).
        Not available (``hasattr`` is False, as for scikit-learn's regressors) when the default target, the
        ``target`` parameter or the column of ``y``, is numeric or datetime.

        Parameters
        ----------
        X : DataFrame or array-like
            A DataFrame with any subset of the learned columns (missing columns are marginalised, NaN is the
            value NULL, a target column in it is ignored), or an array of the ``n_features_in_`` fitted features.
        target : str, optional
            A ``TABULAR_CATEGORICAL`` or ``TABULAR_NUMERIC_DISCRETE`` column; default the ``target`` parameter,
            else the column ``y`` became in ``fit``.

        Returns
        -------
        ndarray of shape (n_rows, n_classes)
            Rows sum to 1. Columns follow ``classes_`` for the fixed target, else
            ``predict_classes(target)``: the published categories, sorted. ``_RARE_`` (protected categories)
            and NULL are left out and the published classes renormalised.
        """
        check_is_fitted(self)
        rows = self._rows(X)
        target = self._resolve_target(target, "predict_proba")
        with self._inference_on_threads(len(rows)) as inference:
            return inference.predict_proba(rows, target)

    def predict_classes(self, target=None) -> np.ndarray:
        """The classes of ``target`` in the order of :meth:`predict_proba`'s columns, in the column's dtype."""
        check_is_fitted(self)
        return self._inference().classes(self._resolve_target(target, "predict_classes"))

    def predict(self, X, *, target=None, n_draws=DEFAULT_N_DRAWS) -> np.ndarray:
        """The most likely value of a target column given the other columns of ``X``.

        Categorical and discrete targets get the class of highest exact probability. Numeric and datetime
        targets get the median of ``n_draws`` draws from the model's conditional distribution (never NULL),
        seeded by ``random_state``; integer columns round it.

        Parameters
        ----------
        X : DataFrame or array-like
            As in :meth:`predict_proba`.
        target : str, optional
            Any learned column; default as in :meth:`predict_proba`.
        n_draws : int, default=100
            Draws per row for numeric and datetime targets.

        Returns
        -------
        ndarray of shape (n_rows,)
            The values of the target column in its training dtype (as numpy holds it).
        """
        check_is_fitted(self)
        rows = self._rows(X)
        target = self._resolve_target(target, "predict")
        with self._inference_on_threads(len(rows) * n_draws) as inference:
            values = inference.predict(rows, target, n_draws=n_draws, rng=as_generator(self.random_state))
        return values.to_numpy()

    # -- density -----------------------------------------------------------------------------------------
    def score_samples(self, X, *, n_orders=DEFAULT_N_ORDERS) -> np.ndarray:
        """Log-likelihood (nats) of every row: ``log P`` of its encoded values.

        Numbers and datetimes are scored as the probability of their codes (bin, digits, date parts): all
        values of one cell score the same, there is no within-cell density. Columns absent from ``X`` are
        marginalised. A model trained with flexible generation averages ``n_orders`` random column orders,
        fixed across calls (``log mean_k P_k(x)``); a fixed-order model uses its training order.

        Parameters
        ----------
        X : DataFrame or array-like
            A DataFrame with any subset of the learned columns, or an array of the fitted features.
        n_orders : int, default=8

        Returns
        -------
        ndarray of shape (n_rows,)
            Higher is more likely.
        """
        check_is_fitted(self)
        rows = self._rows(X)
        with self._inference_on_threads(len(rows)) as inference:
            return inference.log_likelihood(rows, n_orders=n_orders)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of the rows (with ``y`` as its column, as in ``fit``); higher is better.

        ``GridSearchCV`` and ``cross_val_score`` select by held-out likelihood with it by default.
        """
        check_is_fitted(self)
        rows = self._rows(X)
        if y is not None:
            rows = frame_with_target(rows, self._named_y(y), owner=type(self).__name__)
        with self._inference_on_threads(len(rows)) as inference:
            return float(np.mean(inference.log_likelihood(rows, n_orders=DEFAULT_N_ORDERS, method="score")))

    # -- imputation --------------------------------------------------------------------------------------
    def impute(self, X, *, random_state=None) -> pd.DataFrame:
        """``X`` with its NULL cells drawn from the model given every non-NULL cell of their row.

        Other cells are kept verbatim; imputed cells are never NULL or ``_RARE_``.

        Parameters
        ----------
        X : DataFrame or array-like
            A DataFrame with any subset of the learned columns (only those are filled), or an array of the
            fitted features.
        random_state : None, int or RandomState, optional
            Defaults to the estimator's ``random_state``.

        Returns
        -------
        DataFrame
            A copy of ``X``.
        """
        check_is_fitted(self)
        rng = as_generator(random_state if random_state is not None else self.random_state)
        rows = self._rows(X)
        with self._inference_on_threads(len(rows)) as inference:
            return inference.impute(rows, rng=rng)
