"""Inference with the trained model of a workspace: ``predict_proba``, ``predict``, ``log_likelihood``, ``impute``.

The any-order model gives the exact conditional distribution of a column given any other columns in one
forward pass, and the likelihood of a row by teacher forcing: no sampling for probabilities and scores.
See ``docs/inference.md``. Flat models without a context table only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._device import resolve_device
from .._seeding import as_generator
from .._workspace import Workspace
from ._generate import load_bundle
from ._generation import TabularGenerator
from ._inference_common import DEFAULT_N_DRAWS, DEFAULT_N_ORDERS, TabularInference

__all__ = ["predict_proba", "predict", "log_likelihood", "impute"]


def _inference(workspace_dir, device) -> TabularInference:
    ws = workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    return TabularInference(TabularGenerator(load_bundle(ws), resolve_device(device)))


def predict_proba(
    X: pd.DataFrame,
    target: str,
    *,
    workspace_dir: str | Path | Workspace = "engine-ws",
    device: torch.device | str | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Exact class probabilities of a categorical (or discrete numeric) ``target`` given the columns of ``X``.

    Parameters
    ----------
    X : DataFrame
        Rows holding any subset of the model's columns; the columns it lacks are marginalised, a ``target``
        column in it is ignored, NaN is the value NULL.
    target : str
        A ``TABULAR_CATEGORICAL`` or ``TABULAR_NUMERIC_DISCRETE`` column.
    workspace_dir : str, Path or Workspace, default="engine-ws"
        The workspace holding the trained model (and the statistics of its columns).
    device : str or torch.device, optional
        Where the model runs; by default CUDA when available, else CPU.
    batch_size : int, optional
        Rows per forward pass (default 2048).

    Returns
    -------
    DataFrame
        One column per published class (in the column's dtype), rows summing to 1, indexed like ``X``. The
        protected ``_RARE_`` and NULL codes are left out and the published classes renormalised. A target that
        derives from a column of ``X`` (``stats["derived_columns"]``) gets probability 1 on the map's value
        wherever that row's value is in the map.

    Raises
    ------
    WorkspaceError
        If the workspace holds no trained model.
    ValueError
        If the model has a context table, ``X`` has columns the model does not know or none besides
        ``target``, or ``target`` is not a categorical or discrete column with published classes.

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> ws = sg.split(census, workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> ws = sg.encode(workspace_dir="ws", random_state=0)
    >>> ws = sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # a few seconds
    >>> proba = sg.predict_proba(census.head(3).drop(columns="income"), "income", workspace_dir="ws")
    >>> list(proba.columns)
    ['<=50K', '>50K']
    """
    inference = _inference(workspace_dir, device)
    proba = inference.predict_proba(X, target, batch_size=batch_size)
    return pd.DataFrame(proba, columns=pd.Index(inference.classes(target), name=target), index=X.index)


def predict(
    X: pd.DataFrame,
    target: str,
    *,
    workspace_dir: str | Path | Workspace = "engine-ws",
    n_draws: int = DEFAULT_N_DRAWS,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
) -> pd.Series:
    """The most likely class of a categorical / discrete target, or the conditional median of another target.

    Parameters
    ----------
    X : DataFrame
        As in :func:`predict_proba`.
    target : str
        Any column of the model.
    workspace_dir : str, Path or Workspace, default="engine-ws"
        The workspace holding the trained model (and the statistics of its columns).
    n_draws : int, default=100
        Conditional draws per row whose median predicts a numeric or datetime target (exact argmax otherwise).
    device : str or torch.device, optional
        Where the model runs; by default CUDA when available, else CPU.
    batch_size : int, optional
        Rows per forward pass (default 2048).
    random_state : None, int, RandomState or Generator, optional
        Seeds the draws of numeric and datetime targets.

    Returns
    -------
    Series
        Named ``target``, in its training dtype, indexed like ``X``. A derived target is its map's value wherever
        the row's determinant value is in the map.

    Raises
    ------
    WorkspaceError
        If the workspace holds no trained model.
    ValueError
        If the model has a context table, ``target`` is not a column of the model, ``X`` has columns the
        model does not know or none besides ``target``, or ``n_draws`` is not a positive int.

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> ws = sg.split(census, workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> ws = sg.encode(workspace_dir="ws", random_state=0)
    >>> ws = sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # a few seconds
    >>> sg.predict(census.head(3).drop(columns="income"), "income", workspace_dir="ws").name
    'income'
    """
    inference = _inference(workspace_dir, device)
    values = inference.predict(X, target, n_draws=n_draws, rng=as_generator(random_state), batch_size=batch_size)
    values.index = X.index
    return values


def log_likelihood(
    X: pd.DataFrame,
    *,
    workspace_dir: str | Path | Workspace = "engine-ws",
    n_orders: int = DEFAULT_N_ORDERS,
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int | None = None,
) -> np.ndarray:
    """Log-likelihood (nats) of every row of ``X``: ``log P`` of its encoded values, other columns marginalised.

    Parameters
    ----------
    X : DataFrame
        Rows holding any subset of the model's columns.
    workspace_dir : str, Path or Workspace, default="engine-ws"
        The workspace holding the trained model (and the statistics of its columns).
    n_orders : int, default=8
        Column orders averaged (``log mean_k P_k``) by a model trained with flexible generation; a fixed-order
        model scores in its training order.
    seed : int, default=0
        Seeds the orders: the same seed scores every call (and model of the same columns) under the same
        orders, so scores are comparable.
    device : str or torch.device, optional
        Where the model runs; by default CUDA when available, else CPU.
    batch_size : int, optional
        Rows per forward pass (default 2048).

    Returns
    -------
    ndarray of shape (n_rows,)

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> ws = sg.split(census, workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> ws = sg.encode(workspace_dir="ws", random_state=0)
    >>> ws = sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # a few seconds
    >>> sg.log_likelihood(census.head(3), workspace_dir="ws").shape
    (3,)
    """
    return _inference(workspace_dir, device).log_likelihood(X, n_orders=n_orders, seed=seed, batch_size=batch_size)


def impute(
    X: pd.DataFrame,
    *,
    workspace_dir: str | Path | Workspace = "engine-ws",
    device: torch.device | str | None = None,
    batch_size: int | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
) -> pd.DataFrame:
    """``X`` with its NULL cells drawn from the model given every non-NULL cell of their row.

    Parameters
    ----------
    X : DataFrame
        Rows holding any subset of the model's columns (others are not filled in, and marginalised).
    workspace_dir : str, Path or Workspace, default="engine-ws"
        The workspace holding the trained model (and the statistics of its columns).
    device : str or torch.device, optional
        Where the model runs; by default CUDA when available, else CPU.
    batch_size : int, optional
        Rows generated at once (default 4096).
    random_state : None, int, RandomState or Generator, optional
        Seeds the drawn values.

    Returns
    -------
    DataFrame
        A copy of ``X``; only cells that were NULL differ, and they are never NULL or ``_RARE_``.

    Raises
    ------
    WorkspaceError
        If the workspace holds no trained model.
    ValueError
        If the model has a context table, or ``X`` has columns the model does not know or none of its columns.

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(500)
    >>> ws = sg.split(census, workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> ws = sg.encode(workspace_dir="ws", random_state=0)
    >>> ws = sg.train(workspace_dir="ws", max_epochs=1, random_state=0)  # a few seconds
    >>> filled = sg.impute(census.head(3).assign(workclass=None), workspace_dir="ws", random_state=0)
    >>> bool(filled["workclass"].notna().all())
    True
    """
    return _inference(workspace_dir, device).impute(X, rng=as_generator(random_state), batch_size=batch_size)
