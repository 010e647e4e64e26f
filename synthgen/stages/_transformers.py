"""The data stages as scikit-learn transformers: ``Splitter`` → ``Analyzer`` → ``Encoder``.

Each stage passes a :class:`~synthgen.Workspace` handle on to the next, so
``make_pipeline(Splitter(), Analyzer(), Encoder())`` leaves a complete workspace, and a synthesizer at the
end of the pipeline trains from it. Route a context table to the splitter with
``pipeline.fit(X, splitter__context=ctx)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._options import ESTIMATOR_DEFAULTS, validate_all
from .._workspace import Workspace
from ..domain import DifferentialPrivacyConfig, ModelEncodingType, ModelType
from ..privacy._ledger import ledger_frame
from ._analyze import analyze
from ._encode import encode
from ._split import split

__all__ = ["Splitter", "Analyzer", "Encoder", "frame_with_target"]


def frame_with_target(X: pd.DataFrame, y, *, owner: str) -> pd.DataFrame:
    """``X`` with ``y`` (if given) appended as a column, the way scikit-learn users pass a target.

    Parameters
    ----------
    X : DataFrame
        The table.
    y : array-like of shape (n_samples,) or DataFrame with one column, optional
        Appended as a column named after ``y`` (else ``"target"``).
    owner : str
        The caller, as error messages name it.

    Returns
    -------
    DataFrame
        ``X`` itself when ``y`` is None, else a new frame.
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{owner}.fit expects a pandas DataFrame; got {type(X).__name__} instead.")
    if y is None:
        return X
    y = pd.Series(y) if not isinstance(y, (pd.Series, pd.DataFrame)) else y
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"{owner}.fit takes y with one column; got {y.shape[1]} columns.")
        y = y.iloc[:, 0]
    if len(y) != len(X):
        raise ValueError(f"{owner}.fit: X has {len(X)} rows but y has {len(y)}.")
    name = y.name if isinstance(y.name, str) else "target"
    if name in X.columns:
        raise ValueError(f"{owner}.fit: y is named {name!r}, which is already a column of X.")
    return X.assign(**{name: y.to_numpy()})


def _validate_params(estimator: BaseEstimator) -> dict:
    """Every parameter of ``estimator``, checked and normalised before its ``fit`` does anything."""
    return validate_all(type(estimator).__name__, estimator.get_params(deep=False), estimator=True)


def _require_workspace(X, owner: str) -> Workspace:
    if not isinstance(X, Workspace):
        raise TypeError(
            f"{owner} expects the Workspace that the previous stage returns (put a Splitter before it); "
            f"got {type(X).__name__} instead."
        )
    return X


class Splitter(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Split a target table (and its context table) into a workspace; see :func:`synthgen.split`.

    Parameters
    ----------
    tgt_primary_key, tgt_context_key, ctx_primary_key : str, optional
        Key columns.
    model_type : str, optional
    tgt_encoding_types, ctx_encoding_types : dict, optional
    n_partitions : int, default=1
    trn_val_split : float or callable, default=0.8
    workspace_dir : str or Path, optional
        Where to write; a temporary folder (removed with the last object using it) when None.
    random_state : None, int or RandomState, optional
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Attributes
    ----------
    workspace_ : Workspace
        The workspace written by ``fit``; ``transform`` returns it.
    encoding_types_ : dict
        Resolved encoding type of every target column.
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from synthgen import Splitter, Analyzer, Encoder
    >>> from synthgen.datasets import load_census
    >>> ws = make_pipeline(Splitter(random_state=0), Analyzer(), Encoder()).fit_transform(load_census())
    """

    def __init__(
        self,
        *,
        tgt_primary_key: str | None = None,
        tgt_context_key: str | None = None,
        ctx_primary_key: str | None = None,
        model_type: str | ModelType | None = None,
        tgt_encoding_types: Mapping[str, str | ModelEncodingType] | None = None,
        ctx_encoding_types: Mapping[str, str | ModelEncodingType] | None = None,
        n_partitions: int = ESTIMATOR_DEFAULTS.n_partitions,
        trn_val_split: float | Callable = ESTIMATOR_DEFAULTS.trn_val_split,
        workspace_dir: str | os.PathLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int | str = ESTIMATOR_DEFAULTS.verbose,
    ) -> None:
        self.tgt_primary_key = tgt_primary_key
        self.tgt_context_key = tgt_context_key
        self.ctx_primary_key = ctx_primary_key
        self.model_type = model_type
        self.tgt_encoding_types = tgt_encoding_types
        self.ctx_encoding_types = ctx_encoding_types
        self.n_partitions = n_partitions
        self.trn_val_split = trn_val_split
        self.workspace_dir = workspace_dir
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray | None = None,
            context: pd.DataFrame | None = None) -> Splitter:
        """Split ``X`` (and its ``context`` table) into a new workspace.

        Parameters
        ----------
        X : DataFrame
            The target table.
        y : array-like of shape (n_samples,), optional
            Appended to ``X`` as a column (named after ``y``, else ``"target"``).
        context : DataFrame, optional
            The context table of two-table data.

        Returns
        -------
        self : Splitter
            The fitted splitter; its workspace is ``workspace_``.
        """
        _validate_params(self)
        validate_all(f"{type(self).__name__}.fit", {"context": context}, estimator=True)
        X = frame_with_target(X, y, owner=type(self).__name__)
        workspace = Workspace(self.workspace_dir) if self.workspace_dir is not None else Workspace.temporary()
        self.workspace_ = split(
            X, ctx_data=context, tgt_primary_key=self.tgt_primary_key, ctx_primary_key=self.ctx_primary_key,
            tgt_context_key=self.tgt_context_key, model_type=self.model_type,
            tgt_encoding_types=self.tgt_encoding_types, ctx_encoding_types=self.ctx_encoding_types,
            n_partitions=self.n_partitions, trn_val_split=self.trn_val_split, workspace_dir=workspace,
            random_state=self.random_state, verbose=self.verbose,
        )
        self.encoding_types_ = self.workspace_.read_meta("tgt")["encoding_types"]
        self.feature_names_in_ = X.columns.to_numpy(dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: object = None) -> Workspace:
        """Return the workspace written by ``fit`` (the data itself went there at fit time).

        Parameters
        ----------
        X : object, optional
            Ignored.

        Returns
        -------
        Workspace
            The workspace of the last ``fit``.
        """
        check_is_fitted(self)
        return self.workspace_

    def fit_transform(self, X: pd.DataFrame, y: pd.Series | np.ndarray | None = None,
                      context: pd.DataFrame | None = None) -> Workspace:
        """``fit`` and return the workspace.

        Parameters
        ----------
        X : DataFrame
            The target table.
        y : array-like of shape (n_samples,), optional
            Appended to ``X`` as a column.
        context : DataFrame, optional
            The context table of two-table data.

        Returns
        -------
        Workspace
            The workspace written by ``fit``.
        """
        return self.fit(X, y, context=context).workspace_


class Analyzer(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Compute the protected column statistics of a workspace; see :func:`synthgen.analyze`.

    Parameters
    ----------
    value_protection : bool, default=True
    differential_privacy : DifferentialPrivacyConfig or dict, optional
        Publish only differentially private statistics, spending the statistics share of the budget (see
        :doc:`/privacy`); give the synthesizer that trains on the workspace the same configuration, so that
        training spends the rest. The mechanisms are written to the workspace's privacy ledger.
    random_state : None, int or RandomState, optional
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Attributes
    ----------
    workspace_ : Workspace
    stats_ : dict
        The target statistics (``stats.json``).
    ctx_stats_ : dict or None
    privacy_report_ : pandas.DataFrame
        Only with ``differential_privacy``: the statistics' lines of the privacy ledger (``stage``, ``column``,
        ``mechanism``, ``epsilon``, ``delta``).

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from synthgen import Analyzer, Encoder, Splitter
    >>> from synthgen.datasets import load_census
    >>> pipe = make_pipeline(Splitter(random_state=0), Analyzer(random_state=0), Encoder(random_state=0))
    >>> workspace = pipe.fit_transform(load_census())
    >>> pipe[1].stats_["columns"]["age"]["encoding_type"]
    'TABULAR_NUMERIC_DISCRETE'
    """

    def __init__(
        self,
        *,
        value_protection: bool = ESTIMATOR_DEFAULTS.value_protection,
        differential_privacy: DifferentialPrivacyConfig | dict | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int | str = ESTIMATOR_DEFAULTS.verbose,
    ) -> None:
        self.value_protection = value_protection
        self.differential_privacy = differential_privacy
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Workspace, y: object = None) -> Analyzer:
        """Compute the statistics of the split workspace ``X``.

        Parameters
        ----------
        X : Workspace
            The workspace a ``Splitter`` returns.
        y : object, optional
            Ignored.

        Returns
        -------
        self : Analyzer
            The fitted analyzer (``stats_``, ``ctx_stats_``).
        """
        params = _validate_params(self)
        ws = _require_workspace(X, type(self).__name__)
        self.workspace_ = analyze(value_protection=params["value_protection"],
                                  differential_privacy=params["differential_privacy"], workspace_dir=ws,
                                  random_state=self.random_state, verbose=self.verbose)
        self.stats_ = ws.read_stats("tgt")
        self.ctx_stats_ = ws.read_stats("ctx") if ws.has_context() else None
        if params["differential_privacy"] is not None:
            self.privacy_report_ = ledger_frame(ws.read_privacy_ledger())
        elif "privacy_report_" in vars(self):
            del self.privacy_report_
        return self

    def transform(self, X: Workspace) -> Workspace:
        """Pass the workspace on to the next stage.

        Parameters
        ----------
        X : Workspace
            The analyzed workspace.

        Returns
        -------
        Workspace
            ``X``.
        """
        check_is_fitted(self)
        return _require_workspace(X, type(self).__name__)


class Encoder(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """Encode an analyzed workspace into training codes; see :func:`synthgen.encode`.

    Parameters
    ----------
    random_state : None, int or RandomState, optional
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Attributes
    ----------
    workspace_ : Workspace

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from synthgen import Analyzer, Encoder, Splitter
    >>> from synthgen.datasets import load_census
    >>> pipe = make_pipeline(Splitter(random_state=0), Analyzer(random_state=0), Encoder(random_state=0))
    >>> workspace = pipe.fit_transform(load_census())
    >>> workspace.encoded_data.name
    'encoded-data'
    """

    def __init__(
        self,
        *,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int | str = ESTIMATOR_DEFAULTS.verbose,
    ) -> None:
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Workspace, y: object = None) -> Encoder:
        """Encode the analyzed workspace ``X`` into training codes.

        Parameters
        ----------
        X : Workspace
            The workspace an ``Analyzer`` returns.
        y : object, optional
            Ignored.

        Returns
        -------
        self : Encoder
            The fitted encoder.
        """
        _validate_params(self)
        ws = _require_workspace(X, type(self).__name__)
        self.workspace_ = encode(workspace_dir=ws, random_state=self.random_state, verbose=self.verbose)
        return self

    def transform(self, X: Workspace) -> Workspace:
        """Pass the workspace on to the next stage (a synthesizer trains from it).

        Parameters
        ----------
        X : Workspace
            The encoded workspace.

        Returns
        -------
        Workspace
            ``X``.
        """
        check_is_fitted(self)
        return _require_workspace(X, type(self).__name__)
