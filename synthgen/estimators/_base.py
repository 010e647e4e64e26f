"""What ``TabularSynthesizer`` and ``LanguageSynthesizer`` share: input checks, the fit workspace, warm starts,
fitted attributes, cached generators and pickling with a version stamp."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.utils.validation import validate_data

from .._device import resolve_device
from .._dtypes import restore_dtype
from .._options import validate_all
from .._user_warnings import warn
from .._version import __version__
from .._workspace import Workspace
from ..domain import ModelStateStrategy, ModelType
from ..privacy._ledger import ledger_frame, ledger_totals
from ..stages._generation import TabularGenerator, _generated_keys
from ..stages._parquet_source import ParquetSource, is_table_source
from ..stages._transformers import frame_with_target
from ..stages._warm_start import check_columns

_log = logging.getLogger(__name__)

# the fitted privacy ledger (see _SynthesizerMixin._set_privacy_ledger)
_LEDGER_ATTRIBUTES = ("privacy_report_", "epsilon_", "delta_")


def _two_dimensional(X) -> np.ndarray:
    """``X`` as an array, refused with scikit-learn's message unless it is 2-D."""
    array = np.asarray(X)
    if array.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {array.ndim}D array instead: shape {array.shape}. Reshape your data "
            "either using array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) "
            "if it contains a single sample (a Series: series.to_frame())."
        )
    return array


def _as_frame(X, owner: str) -> pd.DataFrame:
    """A DataFrame from ``X``; arrays get columns ``col_0 .. col_k`` (a copy, the input is never modified).

    Rejects, with scikit-learn's messages, what is not a 2-D table with at least one row and one column.
    """
    if sparse.issparse(X):
        raise TypeError(f"Sparse data not supported: {owner} learns a dense table; pass X.toarray() or a "
                        "DataFrame.")
    if not isinstance(X, pd.DataFrame):
        array = _two_dimensional(X)
        X = pd.DataFrame(array, columns=[f"col_{i}" for i in range(array.shape[1])])
    if X.shape[0] == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required by "
                         f"{owner}.")
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required by "
                         f"{owner}.")
    duplicated = X.columns[X.columns.duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"X has duplicate column names: {duplicated}.")
    return X


def _join_frames(frames: list[pd.DataFrame], generator) -> pd.DataFrame:
    """The generated batches as one frame; the generator's empty frame (training columns, dtypes) if none."""
    if not frames:
        return generator.empty_frame()
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


class _SynthesizerMixin:
    """The fit and persistence machinery of a synthesizer; goes left of ``BaseEstimator``.

    A subclass sets ``_model_type`` (the tables it trains), ``_wrong_workspace`` (the end of the message that
    refuses a workspace of the other model type), ``_generator_class`` and ``_live_attributes`` (cached live
    networks, dropped when pickling), and implements ``_load_bundle``.
    """

    _model_type: ModelType
    _wrong_workspace: str
    _generator_class: type
    _live_attributes: tuple[str, ...] = ("_generator",)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.input_tags.allow_nan = True
        tags.non_deterministic = self.random_state is None
        return tags

    # -- fit -------------------------------------------------------------------------------------------
    def _validate_fit_params(self, context) -> dict:
        """Every parameter and the ``context`` keyword, checked before anything runs; returns the parameters
        normalised (enums parsed)."""
        owner = type(self).__name__
        params = validate_all(owner, self.get_params(deep=False), estimator=True)
        # a context on disk (parquet path or pyarrow dataset) is checked when split opens it
        validate_all(f"{owner}.fit", {"context": None if is_table_source(context) else context}, estimator=True)
        return params

    def _check_workspace(self, ws: Workspace) -> None:
        """Refuse, before training, a workspace that is not encoded or was split for the other model type, and
        under differential privacy one whose statistics were not differentially private (the ledger would then
        miss what they reveal)."""
        ws.require("encode")
        if ws.read_model_type() != self._model_type.value:
            raise ValueError(f"{type(self).__name__} trains {self._model_type.value} tables; the workspace "
                             f"{str(ws.root)!r} was {self._wrong_workspace}")
        if getattr(self, "differential_privacy", None) is not None and not ws.read_stats("tgt").get(
                "differential_privacy"):
            raise ValueError(
                f"{type(self).__name__} has differential_privacy, but the statistics of the workspace "
                f"{str(ws.root)!r} were not computed under differential privacy, so no epsilon would cover them: "
                "give the Analyzer (or analyze) the same differential_privacy.")

    def _named_y(self, y):
        return y

    def _check_target_column(self, columns) -> None:
        """No target column to check by default."""

    def _training_frame(self, X, y, context, saved, strategy: ModelStateStrategy) -> tuple[pd.DataFrame, list[str]]:
        """The checked training table (``X`` with ``y``) and the feature names of ``X``."""
        owner = type(self).__name__
        if is_table_source(X):
            return self._training_source(X, y, context, saved, strategy)
        features = _as_frame(X, owner)
        frame = frame_with_target(features, self._named_y(y), owner=owner)
        self._check_target_column(frame.columns)
        if saved is not None:  # refuse other columns before the workspace is touched
            check_columns(saved[0], strategy, frame.columns,
                          None if context is None else getattr(context, "columns", None))
        validate_data(self, features, skip_check_array=True, reset=True)  # the features of X (y is extra)
        return frame, list(self.feature_names_in_)

    def _training_source(self, X, y, context, saved, strategy: ModelStateStrategy) -> tuple[object, list[str]]:
        """A table on disk as ``X``: checked (it exists, its parts agree) but not read; split streams it."""
        if y is not None:
            raise ValueError(f"{type(self).__name__}.fit: y cannot be combined with X given as a path or dataset; "
                             "write the target column into the parquet files instead.")
        columns = ParquetSource(X, name="X").columns
        self._check_target_column(columns)
        if saved is not None:
            check_columns(saved[0], strategy, pd.Index(columns), None if is_table_source(context) or context is None
                          else context.columns)
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        return X, columns

    def _fit_workspace(self) -> Workspace:
        """``workspace_dir`` (the user's, never deleted), else a temporary workspace."""
        return Workspace(self.workspace_dir) if self.workspace_dir is not None else Workspace.temporary()

    def _holds_saved_model(self, ws: Workspace) -> bool:
        return ws.has_trained_model() and ws.stats_path("tgt").exists()

    def _load_bundle(self, ws: Workspace):
        """The in-memory model of ``ws``; each estimator loads its own model kind (tabular or language)."""
        raise NotImplementedError(f"{type(self).__name__} must define _load_bundle")

    def _saved_model(self, strategy: ModelStateStrategy, X) -> tuple[object, dict | None] | None:
        """The model ``REUSE`` / ``RESUME`` continue, and the training state ``RESUME`` continues from.

        That is the model of the last fit, else the trained model that the workspace (``X`` or ``workspace_dir``)
        holds, e.g. of a run that was interrupted.
        """
        if strategy == ModelStateStrategy.RESET:
            return None
        if hasattr(self, "_bundle"):
            bundle, source = self._bundle, self.workspace_
        else:
            source = X if isinstance(X, Workspace) else (
                Workspace(self.workspace_dir) if self.workspace_dir is not None else None)
            if source is None or not self._holds_saved_model(source):
                _log.warning("model_state_strategy=%s: there is no saved model to continue; training from scratch",
                             strategy.value)
                return None
            bundle = self._load_bundle(source)
        state = None
        if (strategy == ModelStateStrategy.RESUME and source.has_trained_model()
                and source.read_model_config() == bundle.model_config):
            state = source.read_training_state()
        return bundle, state

    def _set_fitted(self, ws: Workspace, feature_names: list[str]) -> None:
        """The fitted attributes of ``self._bundle``, trained in ``ws``; the cached generators are dropped."""
        for name in self._live_attributes:
            setattr(self, name, None)
        self.workspace_ = ws
        self.stats_ = self._bundle.stats
        self.ctx_stats_ = self._bundle.ctx_stats
        self.encoding_types_ = {c: s["encoding_type"] for c, s in self.stats_["columns"].items()}
        self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self._set_privacy_ledger(ws)

    def _set_privacy_ledger(self, ws: Workspace) -> None:
        """``privacy_report_``, ``epsilon_`` and ``delta_`` from the workspace's privacy ledger.

        They exist only for a model fitted with differential privacy; without it they are absent, as there is no
        guarantee to report (not an epsilon of 0), even when the workspace's statistics were DP.
        """
        entries = ws.read_privacy_ledger()
        # DP statistics alone (a workspace analyzed with DP, trained without) give no guarantee for the weights
        if getattr(self, "differential_privacy", None) is None:
            for name in _LEDGER_ATTRIBUTES:
                if name in vars(self):
                    delattr(self, name)
            return
        self.privacy_report_ = ledger_frame(entries)
        self.epsilon_, self.delta_ = ledger_totals(entries)

    # -- sample ----------------------------------------------------------------------------------------
    def _cached_generator(self, attribute: str, bundle, device: str | torch.device | None):
        """The generator of ``bundle`` on ``device`` (default the estimator's), kept in ``attribute``."""
        resolved = resolve_device(device if device is not None else self.device)
        generator = getattr(self, attribute)
        if generator is None or generator.device != resolved:
            generator = self._generator_class(bundle, resolved)
            setattr(self, attribute, generator)
        return generator

    def _generator_for(self, device: str | torch.device | None):
        return self._cached_generator("_generator", self._bundle, device)

    def _context_generator_for(self, device: str | torch.device | None) -> TabularGenerator:
        """The generator of the context model (``self._context_model``, a flat TabularARGN model)."""
        resolved = resolve_device(device if device is not None else self.device)
        generator = getattr(self, "_context_generator", None)
        if generator is None or generator.device != resolved:
            generator = self._context_generator = TabularGenerator(self._context_model.bundle, resolved)
        return generator

    def _check_context_request(self, *, context, seed_data, return_context: bool) -> bool:
        """Whether the model has a context table; refuses what ``sample`` cannot do with or without one.

        ``return_context`` needs a context table; seeds of a two-table model refer to their context rows by key,
        which a sample without ``context=`` (new context rows) cannot give them.
        """
        two_table = self._bundle.ctx_stats is not None
        if return_context and not two_table:
            raise ValueError("return_context=True needs a model fitted with a context table; this one has none.")
        if two_table and context is None and seed_data is not None:
            raise ValueError(
                f"seed_data of a model with a context table refers to context rows by its context key "
                f"{self._bundle.stats['keys']['context_key']!r}; pass those rows as context= (a sample without "
                "context= generates new context rows, which no seed row refers to).")
        return two_table

    def _context_to_sample(self, two_table: bool, context, n_samples: int | None, *, batch_size,
                           sampling_temperature, sampling_top_p, rare_category_replacement_method, device,
                           rng: np.random.Generator,
                           derived_columns: bool = True) -> tuple[pd.DataFrame | None, int | None]:
        """The context rows and sample size to generate with: ``context`` as given, or, for a two-table model
        without it, ``n_samples`` new context rows from the context model (then one record set per row: the
        sample size is None)."""
        if not two_table or context is not None:
            return context, n_samples
        self._require_context_model()
        return self._sample_context(n_samples, batch_size=batch_size, sampling_temperature=sampling_temperature,
                                    sampling_top_p=sampling_top_p, device=device, rng=rng,
                                    rare_category_replacement_method=rare_category_replacement_method,
                                    derived_columns=derived_columns), None

    @staticmethod
    def _with_used_context(synthetic: pd.DataFrame, context: pd.DataFrame | None, n_samples: int | None,
                           return_context: bool):
        """``synthetic``, or ``(context rows used, synthetic)`` with ``return_context``."""
        if not return_context:
            return synthetic
        used = context if n_samples is None else context.iloc[:n_samples]
        return used.reset_index(drop=True), synthetic

    def _require_context_model(self) -> None:
        """Refuse to invent context rows without a context model (a two-table fit under differential privacy)."""
        if getattr(self, "_context_model", None) is None:
            raise ValueError(
                "This model was fitted with differential_privacy and a context table: the context table is not "
                "learned under differential privacy, so sample() needs context= (context rows you may publish, "
                "e.g. a public or separately protected table with the same columns).")

    def _sample_context(self, n_samples: int | None, *, batch_size, sampling_temperature, sampling_top_p,
                        rare_category_replacement_method, device, rng: np.random.Generator,
                        derived_columns: bool = True) -> pd.DataFrame:
        """``n_samples`` synthetic context rows (default: as many as the training context) with new keys, from
        the context model (see :mod:`synthgen.stages._context_model`)."""
        stats = self._context_model.stats
        key = stats["keys"]["primary_key"]
        key_dtype = stats["key_dtypes"][key]
        if self._context_model.bundle is None:  # a context of keys only
            n = stats["no_of_training_records"] + stats["no_of_validation_records"] if n_samples is None else n_samples
            frame = pd.DataFrame({key: _generated_keys(0, int(n), key_dtype)})
        else:
            generator = self._context_generator_for(device)
            frame = _join_frames(list(generator.generate(
                sample_size=n_samples, batch_size=batch_size, sampling_temperature=sampling_temperature,
                sampling_top_p=sampling_top_p, rare_category_replacement_method=rare_category_replacement_method,
                derived_columns=derived_columns, rng=rng)), generator)
        keys = restore_dtype(frame[key], key_dtype)
        if keys.notna().all():  # generated keys are ints or strings; keep them as such where the dtype cannot
            frame[key] = keys
        return frame

    # -- persistence -----------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = super().__getstate__()
        for name in self._live_attributes:  # live networks; rebuilt from the bundles on first use
            state[name] = None
        state["_synthgen_version"] = __version__
        return state

    def __setstate__(self, state: dict) -> None:
        version = state.pop("_synthgen_version", None)
        if version is not None and version != __version__:
            warn(f"This {type(self).__name__} was pickled with synthgen {version}; this is {__version__}.")
        super().__setstate__(state)
