"""``TabularSynthesizer``: the engine's stages behind scikit-learn's ``fit`` / ``sample``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import ClassifierTags
from sklearn.utils.validation import check_is_fitted

from .._device import resolve_device
from .._free_text import free_text_columns
from .._options import ESTIMATOR_DEFAULTS, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator, derive_seed
from .._threads import torch_threads
from .._workspace import Workspace
from ..domain import (
    DifferentialPrivacyConfig,
    FairnessConfig,
    ImputationConfig,
    ModelEncodingType,
    ModelStateStrategy,
    ModelType,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)
from ..models.tabular._bundle import ModelBundle
from ..stages import analyze, encode, split, train
from ..stages._context_model import train_context_model
from ..stages._generate import load_bundle
from ..stages._generation import TabularGenerator
from ..stages._language_generation import LanguageGenerator
from ..stages._parquet_source import ParquetSource, is_table_source
from ..stages._text_columns import (
    TextModel,
    fit_text_model,
    generate_texts,
    null_flag_names,
    saved_text_model,
)
from ..stages._warm_start import adopt_statistics, check_columns, check_workspace_matches, install_model
from ._base import _join_frames, _SynthesizerMixin
from ._inference import InferenceMixin
from ._to_parquet import _ParquetSamplingMixin

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["TabularSynthesizer"]

_log = logging.getLogger(__name__)

# The context model's share of max_training_time at most (it trains first; the target gets what is left).
# Context tables are small: one row per entity, where the target has a sequence of rows per entity.
CONTEXT_TIME_SHARE = 0.1
# With free-text columns, the tabular model's share of max_training_time at most (it trains first; the language
# model of the texts gets what is left): a language model needs many times the tabular model's time per epoch.
TABULAR_TIME_SHARE_WITH_TEXT = 0.25
_LANGUAGE_TEXT = ModelEncodingType.LANGUAGE_TEXT.value


def _is_language_text(encoding_type) -> bool:
    return str(getattr(encoding_type, "value", encoding_type)).strip().upper() == _LANGUAGE_TEXT


class TabularSynthesizer(InferenceMixin, _ParquetSamplingMixin, _SynthesizerMixin, BaseEstimator):
    """Learn a table and sample synthetic rows from it (TabularARGN).

    ``fit`` runs split → analyze → encode → train in a workspace; ``sample`` generates from the model kept
    in memory, so a fitted synthesizer pickled with joblib samples without its workspace. With a context table,
    ``fit`` also learns the context table (a flat model of its non-key columns), so that ``sample`` generates
    synthetic entities and their sequences; the fitted object holds statistics and weights, never rows. The flat
    model is also a classifier, a density estimator and an imputer: ``predict_proba``, ``predict``,
    ``score_samples``, ``score`` and ``impute`` (see ``docs/inference.md``).

    Parameters
    ----------
    model : str, optional
        ``"MOSTLY_AI/Small"``, ``"MOSTLY_AI/Medium"`` (default) or ``"MOSTLY_AI/Large"`` (or ``small`` /
        ``medium`` / ``large``).
    language_model : str, optional
        The language model of free-text (``LANGUAGE_TEXT``) columns, as ``LanguageSynthesizer``'s ``model``:
        ``"MOSTLY_AI/LSTMFromScratch-3m"`` (default) or the folder of a local Hugging Face causal LM (fine-tuned
        with LoRA). Unused by a table without free text.
    max_training_time : float, default=14400.0
        Training budget in minutes (of all models: with a context table the context model gets at most 10 %;
        with free-text columns the tabular model gets at most 25 % and the language model the rest). The
        marginal calibration after training is inside it (its cost is reserved; see docs/tabular.md, "train()").
    max_epochs : float, default=100.0
        Training budget in epochs (of each model).
    batch_size, gradient_accumulation_steps : int, optional
        Determined automatically when None.
    enable_flexible_generation : bool, default=True
        Train under random column orders, so any columns can be seeded.
    max_sequence_window : int, optional
        For sequential two-table data.
    value_protection : bool, default=True
        Hide rare categories and extreme values from the published statistics.
    differential_privacy : DifferentialPrivacyConfig or dict, optional
        Not available in this version; must be None.
    tgt_primary_key, tgt_context_key, ctx_primary_key : str, optional
        Key columns.
    tgt_encoding_types, ctx_encoding_types : dict, optional
        Encoding type per column; inferred from dtypes otherwise. ``"LANGUAGE_TEXT"`` declares a free-text
        column of the target, learned by a language model conditioned on the row's other columns (see
        ``docs/tabular.md``); string columns that are clearly free text are inferred as such (the rule of
        ``synthgen._free_text``), unless their encoding type is declared.
    model_state_strategy : {"RESET", "REUSE", "RESUME"}, default="RESET"
        ``RESET`` refits from scratch. ``REUSE`` fine-tunes the model of the last fit (or the trained model in
        ``workspace_dir``) on the data passed to ``fit``, with a new optimizer and new budgets; ``RESUME``
        continues its run on that data (optimizer, schedule, counters and budgets carry on). The data is
        encoded with the model's statistics and must have the model's columns.
    n_partitions : int, default=1
    device : str, optional
        CUDA when available, else CPU.
    n_threads : int, optional
        torch threads during ``fit`` and ``sample`` (the previous count is restored afterwards). None chooses
        for the model and the machine: one thread unless a step is large and cores are idle, because torch's
        default of one thread per core is many times slower for these models when anything else runs.
    n_processes : int, optional
        Train the target model data-parallel on this many processes of this machine (one per GPU with CUDA,
        gloo processes on CPUs; see docs/scale.md): ``fit`` is rank 0 and spawns the others. ``batch_size`` is
        then per process; the context model of two-table data trains in this process.
    workspace_dir : str or Path, optional
        Where the workspace goes; a temporary folder (removed with this object) when None. ``fit`` holds the
        workspace's lock: a second fit into the same folder at the same time raises ``WorkspaceError``. The
        workspace holds a copy of the raw training data (both tables); an explicit ``workspace_dir`` is never
        deleted.
    random_state : None, int or RandomState, optional
        Seeds the split, the protection thresholds, the weights, the data order and (unless ``sample`` gets
        its own) sampling.
    verbose : bool, int or "auto", default="auto"
        Show progress bars (each stage; training with its epoch, validation loss and time left, its total the
        epochs or the time budget, whichever binds first). ``"auto"`` shows them where a person is watching:
        when stderr is a terminal or in a notebook. ``TQDM_DISABLE=1`` hides them.
    target : str, optional
        A column that ``predict`` / ``predict_proba`` answer for by default; it makes the synthesizer a
        classifier to scikit-learn (``cross_val_score`` stratifies, scorers use ``classes_``). ``fit(X, y)``
        learns ``y`` as this column. ``score`` stays the mean log-likelihood of whole rows.

    Attributes
    ----------
    stats_ : dict
        The published (protected) statistics of the target.
    ctx_stats_ : dict or None
        The published statistics of the context.
    encoding_types_ : dict
        The resolved encoding type of every column.
    history_ : DataFrame
        One row per training epoch (loss, validation loss, learning rate, time).
    ctx_history_ : DataFrame or None
        The same for the context model (empty for a context of keys only); None without a context.
    text_columns_ : list of str
        The free-text (``LANGUAGE_TEXT``) columns, declared or inferred; empty when there are none.
    text_history_ : DataFrame or None
        One row per epoch of the language model of the free-text columns; None without them.
    workspace_ : Workspace
        The workspace of the last fit (a temporary one disappears with the estimator).
    privacy_report_ : DataFrame
        Only with ``differential_privacy``: the privacy ledger, one row per mechanism that touched the data
        (columns ``stage, column, mechanism, epsilon, delta``).
    epsilon_, delta_ : float
        Only with ``differential_privacy``: the totals of the ledger (basic composition).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    classes_ : ndarray
        The classes of ``target`` in the order of ``predict_proba``'s columns (only when ``target`` is set and
        categorical or discrete).

    Examples
    --------
    >>> from synthgen import TabularSynthesizer
    >>> from synthgen.datasets import load_census
    >>> synth = TabularSynthesizer(max_epochs=1, random_state=0).fit(load_census().head(500))
    >>> synth.sample(5).shape
    (5, 15)
    """

    _model_type = ModelType.TABULAR
    _wrong_workspace = "split for LANGUAGE. Use LanguageSynthesizer, or Splitter(model_type='TABULAR')."
    _generator_class = TabularGenerator
    # the keywords of sample() that sample_to_parquet passes on, with their defaults
    _parquet_sample_options = {
        "context": None, "seed_data": None, "batch_size": None,
        "sampling_temperature": ESTIMATOR_DEFAULTS.sampling_temperature,
        "sampling_top_p": ESTIMATOR_DEFAULTS.sampling_top_p, "device": None,
        "rare_category_replacement_method": None, "rebalancing": None, "imputation": None, "fairness": None,
        "marginal_calibration": ESTIMATOR_DEFAULTS.marginal_calibration,
        "derived_columns": ESTIMATOR_DEFAULTS.derived_columns, "random_state": None,
    }
    _live_attributes = ("_generator", "_context_generator", "_text_generator")

    def __init__(
        self,
        *,
        model: str | None = None,
        language_model: str | None = None,
        max_training_time: float = ESTIMATOR_DEFAULTS.max_training_time,
        max_epochs: float = ESTIMATOR_DEFAULTS.max_epochs,
        batch_size: int | None = None,
        gradient_accumulation_steps: int | None = None,
        enable_flexible_generation: bool = ESTIMATOR_DEFAULTS.enable_flexible_generation,
        max_sequence_window: int | None = None,
        value_protection: bool = ESTIMATOR_DEFAULTS.value_protection,
        differential_privacy: DifferentialPrivacyConfig | dict | None = None,
        tgt_primary_key: str | None = None,
        tgt_context_key: str | None = None,
        ctx_primary_key: str | None = None,
        tgt_encoding_types: Mapping[str, str | ModelEncodingType] | None = None,
        ctx_encoding_types: Mapping[str, str | ModelEncodingType] | None = None,
        model_state_strategy: ModelStateStrategy | str = ESTIMATOR_DEFAULTS.model_state_strategy,
        n_partitions: int = ESTIMATOR_DEFAULTS.n_partitions,
        device: str | torch.device | None = None,
        n_threads: int | None = None,
        n_processes: int | None = None,
        workspace_dir: str | os.PathLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int | str = ESTIMATOR_DEFAULTS.verbose,
        target: str | None = None,
    ) -> None:
        self.model = model
        self.language_model = language_model
        self.max_training_time = max_training_time
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.enable_flexible_generation = enable_flexible_generation
        self.max_sequence_window = max_sequence_window
        self.value_protection = value_protection
        self.differential_privacy = differential_privacy
        self.tgt_primary_key = tgt_primary_key
        self.tgt_context_key = tgt_context_key
        self.ctx_primary_key = ctx_primary_key
        self.tgt_encoding_types = tgt_encoding_types
        self.ctx_encoding_types = ctx_encoding_types
        self.model_state_strategy = model_state_strategy
        self.n_partitions = n_partitions
        self.device = device
        self.n_threads = n_threads
        self.n_processes = n_processes
        self.workspace_dir = workspace_dir
        self.random_state = random_state
        self.verbose = verbose
        self.target = target

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.target is not None:  # a classifier of that column to scikit-learn (scorers, stratified CV)
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        return tags

    # -- fit -------------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame | np.ndarray | Workspace | str | os.PathLike | pads.Dataset,
            y: pd.Series | np.ndarray | None = None, *,
            context: pd.DataFrame | str | os.PathLike | pads.Dataset | None = None) -> TabularSynthesizer:
        """Learn ``X`` (and its ``context`` table); ``X`` may also be the Workspace of an ``Encoder``.

        Parameters
        ----------
        X : DataFrame, array-like of shape (n_samples, n_features), Workspace, str, PathLike or pyarrow Dataset
            The target table; arrays get columns ``col_0 .. col_k``. Sparse, 1-D, empty and complex input is
            rejected. A parquet file, a folder of parquet files or a ``pyarrow.dataset.Dataset`` is read in
            batches, never whole, for tables larger than memory (see docs/scale.md, "Out of core").
        y : array-like of shape (n_samples,), optional
            Appended to ``X`` as a column (named after ``y``, else ``"target"``).
        context : DataFrame, str, PathLike or pyarrow Dataset, optional
            The context table of two-table data; a flat model of its non-key columns is trained too. Like ``X``,
            it may be a parquet file, folder or dataset.

        Returns
        -------
        self : TabularSynthesizer
            The fitted synthesizer.

        Raises
        ------
        ValueError
            An invalid parameter (checked before any stage runs, in scikit-learn's form) or invalid data.

        Examples
        --------
        >>> from synthgen import TabularSynthesizer
        >>> from synthgen.datasets import load_flights
        >>> planes, flights = load_flights()
        >>> synth = TabularSynthesizer(tgt_context_key="tailnum", ctx_primary_key="tailnum", max_epochs=1,
        ...                            random_state=0)
        >>> synth.fit(flights, context=planes)  # a few seconds
        TabularSynthesizer(ctx_primary_key='tailnum', max_epochs=1, random_state=0,
                           tgt_context_key='tailnum')
        """
        params = self._validate_fit_params(context)
        strategy = params["model_state_strategy"]
        rng = as_generator(self.random_state)
        seeds = {stage: derive_seed(rng) for stage in ("split", "analyze", "encode", "train", "context", "text")}
        saved = self._saved_model(strategy, X)
        text_columns: list[str] = []
        if isinstance(X, Workspace):
            ws = X
            self._check_workspace(ws)  # refuse before training, not after
            feature_names = list(ws.read_meta("tgt")["dtypes"])
            column_order = feature_names
        else:
            frame, feature_names = self._training_frame(X, y, context, None, strategy)
            if is_table_source(frame):  # a table on disk, streamed by split; free text would need it in memory
                self._refuse_free_text_on_disk(frame, context)
                tabular, columns, column_order = frame, pd.Index(feature_names), list(feature_names)
            else:
                column_order = list(frame.columns)
                text_columns = self._free_text_columns(frame, context)
                # the tabular model learns the other columns and whether each text is NULL
                tabular = frame.drop(columns=text_columns).assign(
                    **{flag: frame[c].isna() for c, flag in null_flag_names(frame, text_columns).items()})
                columns = tabular.columns
            if saved is not None:  # refuse other columns before the workspace is touched
                check_columns(saved[0], strategy, columns,
                              None if context is None else getattr(context, "columns", None))
            ws = self._fit_workspace()
        saved_text = self._saved_text_model(strategy, X, text_columns)
        with ws.lock("fit"):
            if not isinstance(X, Workspace):
                split(tabular, ctx_data=context, tgt_primary_key=self.tgt_primary_key,
                      ctx_primary_key=self.ctx_primary_key, tgt_context_key=self.tgt_context_key,
                      tgt_encoding_types=self._tabular_encoding_types(text_columns),
                      ctx_encoding_types=self.ctx_encoding_types, n_partitions=self.n_partitions, workspace_dir=ws,
                      random_state=seeds["split"], verbose=self.verbose)
            if saved is not None:  # encode the data with the statistics the model was trained with
                check_workspace_matches(ws, saved[0], strategy)
                adopt_statistics(ws, saved[0])
                encode(workspace_dir=ws, random_state=seeds["encode"], verbose=self.verbose)
                install_model(ws, *saved)
            elif not isinstance(X, Workspace):
                analyze(value_protection=params["value_protection"], differential_privacy=self.differential_privacy,
                        workspace_dir=ws,
                        random_state=seeds["analyze"], verbose=self.verbose)
                encode(workspace_dir=ws, random_state=seeds["encode"], verbose=self.verbose)
            start = time.perf_counter()
            context_model = None
            # the context table gets a flat model of its own, so no raw row is kept; under differential privacy
            # none is trained (it would learn the context rows outside the budget): sample() then needs context=
            if ws.has_context() and self.differential_privacy is None:
                previous = getattr(self, "_context_model", None) if saved is not None else None
                context_model = train_context_model(
                    ws, model=self.model, max_epochs=self.max_epochs,
                    max_training_time_s=CONTEXT_TIME_SHARE * self.max_training_time * 60.0,
                    enable_flexible_generation=params["enable_flexible_generation"],
                    device=resolve_device(self.device), previous=previous.bundle if previous is not None else None,
                    random_state=seeds["context"], verbose=self.verbose, n_threads=self.n_threads)
            # one budget for all models: the target gets what the context model left (at most its share when a
            # language model of free text follows)
            share = TABULAR_TIME_SHARE_WITH_TEXT if text_columns else 1.0
            remaining = share * self.max_training_time - (time.perf_counter() - start) / 60.0
            train(model=self.model, max_training_time=max(remaining, 1e-6), max_epochs=self.max_epochs,
                  batch_size=self.batch_size, gradient_accumulation_steps=self.gradient_accumulation_steps,
                  enable_flexible_generation=params["enable_flexible_generation"],
                  max_sequence_window=self.max_sequence_window, differential_privacy=self.differential_privacy,
                  model_state_strategy=strategy if saved is not None else "RESET", device=self.device,
                  n_threads=self.n_threads, n_processes=self.n_processes, workspace_dir=ws,
                  random_state=seeds["train"], verbose=self.verbose)
            self._bundle = load_bundle(ws)
            self._context_model = context_model
            self.history_ = ws.read_progress()
            self.ctx_history_ = pd.DataFrame(context_model.history) if context_model is not None else None
            text_model = None
            if text_columns:
                remaining = self.max_training_time - (time.perf_counter() - start) / 60.0
                text_model = self._fit_text_model(frame, text_columns, ws, params, max(remaining, 1e-6),
                                                  strategy, saved_text, as_generator(seeds["text"]))
            self._text_model = text_model
            self.text_columns_ = list(text_columns)
            self.text_history_ = text_model.history if text_model is not None else None
        self._set_fitted(ws, feature_names)
        self._column_order = column_order
        if text_columns:
            types = {**self.encoding_types_, **{c: _LANGUAGE_TEXT for c in text_columns}}
            self.encoding_types_ = {c: types[c] for c in column_order if c in types}
        self._set_target(y)
        return self

    # -- free-text columns -----------------------------------------------------------------------------
    def _rows(self, X) -> pd.DataFrame:
        """``X`` for the inference methods, without free-text columns: they are not TabularARGN's to condition on."""
        rows = super()._rows(X)
        text = [c for c in getattr(self, "text_columns_", ()) if c in rows.columns]
        return rows.drop(columns=text) if text else rows

    def _refuse_free_text_on_disk(self, source, context) -> None:
        """Free-text columns (declared, or inferred from the first rows) of a table on disk are not supported."""
        head = ParquetSource(source, name="X").head()
        text = self._free_text_columns(head, None if is_table_source(context) else context)
        if text:
            raise ValueError(f"Free-text columns {text} are learned by a language model, which needs the table in "
                             "memory; X given as a path or dataset supports tabular columns only. Pass a DataFrame, "
                             "or declare them another encoding type in tgt_encoding_types.")

    def _free_text_columns(self, frame: pd.DataFrame, context) -> list[str]:
        """The declared ``LANGUAGE_TEXT`` columns and the inferred free-text ones, in column order; refuses what
        cannot be learned before anything runs."""
        declared = dict(self.tgt_encoding_types or {})
        named = [c for c, t in declared.items() if _is_language_text(t)]
        unknown = [c for c in named if c not in frame.columns]
        if unknown:
            raise ValueError(f"tgt_encoding_types declares {unknown} LANGUAGE_TEXT, but the table has no such "
                             f"column; its columns are {list(frame.columns)}.")
        keys = {k for k in (self.tgt_primary_key, self.tgt_context_key, self.target) if k is not None}
        inferred = free_text_columns(frame, exclude=set(declared) | keys)
        text = [c for c in frame.columns if c in named or c in inferred]
        if not text:
            return []
        for column in text:
            if frame[column].isna().all():
                raise ValueError(f"Column {column!r} is declared LANGUAGE_TEXT but every value is NULL, so there is "
                                 "no text to learn. Drop the column or give it another encoding type.")
        if self.differential_privacy is not None:  # the language model would train without the guarantee
            raise ValueError(f"Free-text columns {text} are learned by a language model, which differential_privacy "
                             "does not cover yet. Declare them another encoding type or drop them.")
        if context is not None or self.tgt_context_key is not None:
            raise ValueError(f"Free-text columns {text} are not supported in a two-table (context) model yet. Declare "
                             "them another encoding type in tgt_encoding_types (e.g. TABULAR_CATEGORICAL), drop "
                             "them, or learn them with LanguageSynthesizer.")
        if not [c for c in frame.columns if c not in text and c not in keys - {self.target}]:
            raise ValueError(f"The table has no column besides its free-text columns {text} (and keys) for the "
                             "tabular model; learn it with LanguageSynthesizer.")
        _log.info("free-text columns %s are learned by a language model (%s inferred)", text,
                  [c for c in text if c in inferred])
        return text

    def _tabular_encoding_types(self, text_columns: list[str]) -> dict | None:
        if self.tgt_encoding_types is None:
            return None
        return {c: t for c, t in self.tgt_encoding_types.items() if c not in text_columns}

    def _saved_text_model(self, strategy: ModelStateStrategy, X, text_columns: list[str]):
        """The text model (and ``RESUME`` state) that ``REUSE`` / ``RESUME`` continue, as :meth:`_saved_model`."""
        if strategy == ModelStateStrategy.RESET or not text_columns:
            return None
        if hasattr(self, "_bundle"):
            model, source = getattr(self, "_text_model", None), self.workspace_.text_model
        else:
            root = X if isinstance(X, Workspace) else (
                Workspace(self.workspace_dir) if self.workspace_dir is not None else None)
            source = root.text_model if root is not None else None
            model = saved_text_model(source, text_columns) if source is not None else None
        if model is None:
            _log.warning("model_state_strategy=%s: there is no saved language model of %s to continue; training it "
                         "from scratch", strategy.value, text_columns)
            return None
        state = None
        if (strategy == ModelStateStrategy.RESUME and source.has_trained_model()
                and source.read_model_config() == model.bundle.model_config):
            state = source.read_training_state()
        return model, state

    def _fit_text_model(self, frame: pd.DataFrame, text_columns: list[str], ws: Workspace, params: dict,
                        max_training_time: float, strategy: ModelStateStrategy, saved_text,
                        rng: np.random.Generator) -> TextModel:
        keys = {k for k in (self.tgt_primary_key, self.tgt_context_key) if k is not None}
        prompt_columns = [c for c in frame.columns if c not in text_columns and c not in keys]
        declared = self._tabular_encoding_types(text_columns) or {}
        return fit_text_model(
            frame, text_columns, prompt_columns, ws=ws.text_model, model=self.language_model,
            prompt_encoding_types={c: t for c, t in declared.items() if c in prompt_columns},
            value_protection=params["value_protection"], max_training_time=max_training_time,
            max_epochs=self.max_epochs, strategy=strategy, previous=saved_text, device=self.device,
            n_threads=self.n_threads, seeds={s: derive_seed(rng) for s in ("split", "analyze", "encode", "train")},
            verbose=self.verbose)

    def _load_bundle(self, ws: Workspace) -> ModelBundle:
        return load_bundle(ws)

    # -- sample ----------------------------------------------------------------------------------------
    def sample(
        self,
        n_samples: int | None = None,
        *,
        seed_data: pd.DataFrame | None = None,
        context: pd.DataFrame | None = None,
        return_context: bool = ESTIMATOR_DEFAULTS.return_context,
        batch_size: int | None = None,
        sampling_temperature: float = ESTIMATOR_DEFAULTS.sampling_temperature,
        sampling_top_p: float = ESTIMATOR_DEFAULTS.sampling_top_p,
        device: str | torch.device | None = None,
        rare_category_replacement_method: RareCategoryReplacementMethod | str | None = None,
        rebalancing: RebalancingConfig | dict | None = None,
        imputation: ImputationConfig | dict | None = None,
        fairness: FairnessConfig | dict | None = None,
        marginal_calibration: bool = ESTIMATOR_DEFAULTS.marginal_calibration,
        derived_columns: bool = ESTIMATOR_DEFAULTS.derived_columns,
        random_state: int | np.random.RandomState | None = None,
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Generate synthetic rows.

        Parameters
        ----------
        n_samples : int, optional
            Rows to generate; default the number of training rows (or of ``seed_data`` rows). For two-table
            data: the number of entities (context rows), by default as many as the training context had; with
            ``context``, its first ``n_samples`` rows. ``0`` (or an empty ``context``) gives an empty frame with the
            training columns and dtypes.
        seed_data : DataFrame, optional
            Fixed values of some columns; the rest is generated conditionally; seed values are kept verbatim.
            Two-table models match seed rows to context rows by the context key, so they need ``context``.
        context : DataFrame, optional
            Context rows to generate targets for (two-table models), used as given. Without it, a two-table
            model first generates synthetic context rows (with new primary keys) from its context model, then
            their targets.
        return_context : bool, default=False
            Two-table models only: return ``(context, target)``, the context rows the target was generated for
            (the synthetic ones, or the rows of ``context`` that were used) and the target.
        batch_size : int, optional
            Rows per generation batch.
        sampling_temperature : float, default=1.0
        sampling_top_p : float, default=1.0
        device : str, optional
        rare_category_replacement_method : {"SAMPLE", "CONSTANT"}, optional
            ``SAMPLE`` (default) never emits the ``_RARE_`` token; ``CONSTANT`` emits it in string columns and
            NULL in categorical columns of other types.
        rebalancing : RebalancingConfig or dict, optional
        imputation : ImputationConfig or dict, optional
        fairness : FairnessConfig or dict, optional
            ``{"target_column": ..., "sensitive_columns": [...]}``: the categorical target is generated
            independently of the categorical sensitive columns (statistical parity); see docs/tabular.md.
        marginal_calibration : bool, default=True
            Add the per-code logit offsets fitted after training, so that the generated marginals of a flat
            table match the training marginals (under DP: the noisy marginals of the release, no extra epsilon);
            they stay additive under every other option. ``False`` draws from the network alone. Sequential
            and two-table targets are not calibrated. See docs/tabular.md, "Marginal calibration".
        derived_columns : bool, default=True
            Set each column that is an exact function of another column in the training data (``education_num``
            of ``education``, ``hour`` of a clock time) from that column after generation, where the generated
            value is in the stored map (``stats_["derived_columns"]``); seeded and rebalanced columns are kept. ``False``
            keeps the model's own draws. See docs/tabular.md, "Derived columns".
        random_state : None, int or RandomState, optional
            Defaults to the estimator's ``random_state``.

        ``batch_size``, ``sampling_temperature``, ``sampling_top_p`` and ``rare_category_replacement_method``
        apply to synthetic context rows too; ``rebalancing`` and ``imputation`` name target columns. With
        free-text columns, the tabular columns are generated first and the texts conditioned on them;
        ``seed_data`` may hold text columns (kept verbatim; the tabular columns see only whether they are NULL),
        and ``imputation`` may name them (never NULL).

        Returns
        -------
        DataFrame or tuple of DataFrame
            The target, columns and dtypes as in the training data; ``(context, target)`` with
            ``return_context=True``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            An invalid keyword (in scikit-learn's form, naming ``TabularSynthesizer.sample``).

        Examples
        --------
        >>> from synthgen import TabularSynthesizer
        >>> from synthgen.datasets import load_census
        >>> census = load_census().head(500)
        >>> synth = TabularSynthesizer(max_epochs=1, random_state=0).fit(census)
        >>> synth.sample(5).shape
        (5, 15)
        >>> seeded = synth.sample(seed_data=census[["sex"]].head(3))
        >>> seeded["sex"].tolist() == census["sex"].head(3).tolist()
        True
        """
        check_is_fitted(self)
        validate_all(f"{type(self).__name__}.sample", {
            "n_samples": n_samples, "seed_data": seed_data, "context": context, "return_context": return_context,
            "batch_size": batch_size, "sampling_temperature": sampling_temperature, "sampling_top_p": sampling_top_p,
            "device": device, "rare_category_replacement_method": rare_category_replacement_method,
            "rebalancing": rebalancing, "imputation": imputation, "fairness": fairness,
            "marginal_calibration": marginal_calibration, "derived_columns": derived_columns,
            "random_state": random_state}, estimator=True)
        rng = as_generator(random_state if random_state is not None else self.random_state)
        two_table = self._check_context_request(context=context, seed_data=seed_data, return_context=return_context)
        text_model = getattr(self, "_text_model", None)
        text_seeds, text_imputation = None, None
        if text_model is not None:
            seed_data, text_seeds, n_samples = self._split_text_seeds(seed_data, n_samples, text_model)
            imputation, text_imputation = self._split_text_imputation(imputation, text_model)
        generator = self._generator_for(device)
        frames = []
        with torch_threads(generator.n_threads_for(self.n_threads, batch_size)):
            context, n_samples = self._context_to_sample(
                two_table, context, n_samples, batch_size=batch_size, sampling_temperature=sampling_temperature,
                sampling_top_p=sampling_top_p, rare_category_replacement_method=rare_category_replacement_method,
                device=device, rng=rng, derived_columns=bool(derived_columns))
            batches = generator.generate(
                sample_size=n_samples, ctx_data=context, seed_data=seed_data, batch_size=batch_size,
                ctx_parameter="context", size_parameter="n_samples",
                sampling_temperature=sampling_temperature, sampling_top_p=sampling_top_p,
                rare_category_replacement_method=rare_category_replacement_method, rebalancing=rebalancing,
                imputation=imputation, fairness=fairness, marginal_calibration=bool(marginal_calibration),
                derived_columns=bool(derived_columns), rng=rng,
            )
            total, per_batch, unit = generator.plan(n_samples, context, seed_data, batch_size)
            with ProgressReporter(total, description="generate", verbose=self.verbose, unit=unit) as progress:
                for frame in batches:
                    frames.append(frame)
                    progress.update(max(0, min(per_batch, total - progress.completed)))
        synthetic = _join_frames(frames, generator)
        if text_model is not None:
            synthetic = self._with_texts(synthetic, text_model, text_seeds, device=device, batch_size=batch_size,
                                         sampling_temperature=sampling_temperature, sampling_top_p=sampling_top_p,
                                         rare_category_replacement_method=rare_category_replacement_method,
                                         imputation=text_imputation, rng=rng)
        return self._with_used_context(synthetic, context, n_samples, return_context)

    @staticmethod
    def _split_text_seeds(seed_data: pd.DataFrame | None, n_samples: int | None, text_model: TextModel):
        """``seed_data`` as the tabular model's seeds and the text model's (kept verbatim), and the sample size."""
        if seed_data is None:
            return None, None, n_samples
        text = [c for c in seed_data.columns if c in text_model.text_columns]
        if not text:
            return seed_data, None, n_samples
        # a seeded text seeds its NULL indicator, so the other columns follow whether it is NULL
        tabular = seed_data.drop(columns=text).assign(
            **{text_model.null_flags[c]: seed_data[c].isna() for c in text if c in text_model.null_flags})
        if len(tabular.columns):
            return tabular, seed_data[text], n_samples
        if n_samples is not None and n_samples != len(seed_data):
            raise ValueError(f"n_samples ({n_samples}) must equal the number of seed_data rows ({len(seed_data)}) "
                             "or be None.")
        return None, seed_data[text], len(seed_data)  # seeds of text only: as many unseeded tabular rows

    @staticmethod
    def _split_text_imputation(imputation, text_model: TextModel):
        """``imputation`` for the tabular model and for the text model (each None when it names no column)."""
        config = ImputationConfig.coerce(imputation, name="imputation")
        if config is None:
            return None, None
        text = [c for c in config.columns if c in text_model.text_columns]
        tabular = [c for c in config.columns if c not in text]
        return (ImputationConfig(columns=tabular) if tabular else None,
                ImputationConfig(columns=text) if text else None)

    def _with_texts(self, synthetic: pd.DataFrame, text_model: TextModel, seeds: pd.DataFrame | None, *, device,
                    batch_size, sampling_temperature, sampling_top_p, rare_category_replacement_method, imputation,
                    rng: np.random.Generator) -> pd.DataFrame:
        """The generated tabular rows with their free-text columns, in the training column order."""
        resolved = resolve_device(device if device is not None else self.device)
        generator = self._text_generator
        if generator is None or generator.device != resolved:
            generator = self._text_generator = LanguageGenerator(text_model.bundle, resolved)
        with (torch_threads(generator.n_threads_for(self.n_threads, batch_size)),
              ProgressReporter(len(synthetic), description="generate text", verbose=self.verbose,
                               unit="rows") as progress):
            texts = generate_texts(generator, text_model, synthetic, seed_data=seeds, batch_size=batch_size,
                                   sampling_temperature=sampling_temperature, sampling_top_p=sampling_top_p,
                                   rare_category_replacement_method=rare_category_replacement_method,
                                   imputation=imputation, rng=rng, on_rows=progress.update)
        joined = pd.concat([synthetic.reset_index(drop=True), texts], axis=1)
        return joined[[c for c in self._column_order if c in joined.columns]]

    # -- sample_to_parquet -----------------------------------------------------------------------------
    def sample_to_parquet(self, path: str | os.PathLike, n_samples: int | None = None, *,
                          n_partitions: int | None = None, client: Client | None = None,
                          n_jobs: int | None = None,
                          **sample_options) -> Path:
        """Generate synthetic rows in partitions and write them as parquet parts into the folder ``path``.

        The rows are cut into blocks of ``batch_size`` rows (entities of a two-table model), each generated with
        its own seed, the block's child of ``SeedSequence(random_state)``; a partition is a run of whole blocks
        written as one parquet file, one block at a time, so memory stays flat for any ``n_samples``. The output
        depends on the seed and ``batch_size`` only: not on the number of partitions, the backend or the number
        of workers. Synthetic keys are unique across partitions. See ``docs/scale.md``.

        Parameters
        ----------
        path : str or path-like
            A new or empty folder; flat models write ``part.NNNNNN.parquet`` into it, two-table models
            ``context/part.NNNNNN.parquet`` and ``target/part.NNNNNN.parquet`` (each entity's sequence whole in
            the part of the same number as its context row; linked by the keys as ``sample(return_context=True)``).
            On a cluster the folder must be reachable by every worker.
        n_samples : int, optional
            As in :meth:`sample`: rows, or entities of a two-table model (the first ``n_samples`` rows of a
            given ``context``).
        n_partitions : int, optional
            Parquet parts (tasks) to write; default one per block.
        client : dask.distributed.Client, optional
            Run the partitions on this Dask cluster (``pip install 'synthgen[dask]'``); else locally with joblib.
        n_jobs : int, optional
            Local processes (joblib's meaning: None is one unless a ``joblib.parallel_config`` says otherwise, -1
            all cores); ignored with ``client``.
        **sample_options
            The keywords of :meth:`sample` except ``return_context``: ``context``, ``seed_data`` (flat models),
            ``batch_size``, ``sampling_temperature``, ``sampling_top_p``, ``device``,
            ``rare_category_replacement_method``, ``rebalancing``, ``imputation``, ``fairness``,
            ``marginal_calibration``, ``derived_columns``, ``random_state``. Each partition uses ``n_threads`` torch threads (one by default).

        Returns
        -------
        Path
            ``path``; ``pd.read_parquet(path)`` (``path / "target"`` and ``path / "context"`` for two tables)
            reads the rows back with the training dtypes.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            An invalid argument, or a ``path`` that holds files.

        Examples
        --------
        >>> import pandas as pd
        >>> from synthgen import TabularSynthesizer
        >>> from synthgen.datasets import load_census
        >>> synth = TabularSynthesizer(max_epochs=1, random_state=0).fit(load_census().head(500))
        >>> folder = synth.sample_to_parquet("synthetic", 1_000, batch_size=250)
        >>> len(list(folder.glob("*.parquet"))), len(pd.read_parquet(folder))
        (4, 1000)
        """
        return self._sample_to_parquet(path, n_samples, n_partitions=n_partitions, client=client, n_jobs=n_jobs,
                                       sample_options=sample_options)

    def _refuse_in_parts(self, owner: str) -> None:
        text_model = getattr(self, "_text_model", None)
        if text_model is not None:
            raise ValueError(f"{owner} does not generate free-text columns yet ({list(text_model.text_columns)}); "
                             "use sample().")

