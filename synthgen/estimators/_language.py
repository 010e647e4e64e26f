"""``LanguageSynthesizer``: the engine's stages for LANGUAGE tables behind scikit-learn's ``fit`` / ``sample``."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._device import resolve_device
from .._options import ESTIMATOR_DEFAULTS, validate_all
from .._seeding import as_generator, derive_seed
from .._threads import torch_threads
from .._workspace import Workspace
from ..domain import (
    DifferentialPrivacyConfig,
    ImputationConfig,
    ModelEncodingType,
    ModelStateStrategy,
    ModelType,
    RareCategoryReplacementMethod,
)
from ..stages import analyze, encode, split, train
from ..stages._context_model import train_context_model
from ..stages._language_generation import LanguageGenerator
from ..stages._language_model import LanguageBundle, install_language_model
from ..stages._warm_start import adopt_statistics, check_workspace_matches
from ._base import _join_frames, _SynthesizerMixin
from ._tabular import CONTEXT_TIME_SHARE
from ._to_parquet import _ParquetSamplingMixin

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["LanguageSynthesizer"]

_log = logging.getLogger(__name__)


class LanguageSynthesizer(_ParquetSamplingMixin, _SynthesizerMixin, BaseEstimator):
    """Learn a table with free text and sample synthetic rows from a language model.

    ``fit`` runs split (``model_type="LANGUAGE"``) → analyze → encode → train in a workspace; ``sample``
    generates from the model kept in memory (tokenizer and weights, or the LoRA adapter, as CPU bytes), so a
    fitted synthesizer pickled with joblib samples without its workspace and without a GPU. Every sampled
    value is valid: categories among the published ones, numbers and datetimes within the published ranges,
    text as valid UTF-8 of bounded length.

    Columns are inferred as ``LANGUAGE_NUMERIC`` (numbers), ``LANGUAGE_DATETIME`` (datetimes) and
    ``LANGUAGE_CATEGORICAL`` (everything else); declare free text ``LANGUAGE_TEXT`` in ``tgt_encoding_types``.

    Parameters
    ----------
    model : str, optional
        ``"MOSTLY_AI/LSTMFromScratch-3m"`` (default: an LSTM and a tokenizer trained on the data) or the
        folder of a local Hugging Face causal LM with a byte-level ``tokenizer.json``, fine-tuned with LoRA.
        Nothing is downloaded; sampling from a fine-tuned model reads the base weights from that folder.
    max_training_time : float, default=14400.0
        Training budget in minutes (of both models with a context table: the context model gets at most 10 %).
    max_epochs : float, default=100.0
        Training budget in epochs (of each model).
    batch_size, gradient_accumulation_steps : int, optional
        Determined automatically when None (32 records per batch for the LSTM, 8 for a Hugging Face model);
        the language model's.
    value_protection : bool, default=True
        Hide rare categories and extreme values (and text lengths) from the published statistics.
    differential_privacy : DifferentialPrivacyConfig or dict, optional
        Not available in this version; must be None.
    tgt_primary_key, tgt_context_key, ctx_primary_key : str, optional
        Key columns; with a context table each record is conditioned on its context row, and a flat tabular
        model of the context table (its non-key columns) is trained too, so that ``sample`` can generate
        synthetic context rows: the fitted object holds statistics and weights, never rows.
    tgt_encoding_types, ctx_encoding_types : dict, optional
        Encoding type per column: ``LANGUAGE_*`` for the target, flat ``TABULAR_*`` for the context.
    model_state_strategy : {"RESET", "REUSE", "RESUME"}, default="RESET"
        ``RESET`` refits from scratch. ``REUSE`` fine-tunes the model of the last fit (or the trained model in
        ``workspace_dir``) on the data passed to ``fit``, with a new optimizer and new budgets; ``RESUME``
        continues its run on that data. The data is written with the model's statistics and tokenizer and must
        have the model's columns.
    n_partitions : int, default=1
    device : str, optional
        CUDA when available, else CPU.
    n_threads : int, optional
        torch threads while training and sampling (restored afterwards); None chooses for the model and the
        machine (one thread unless a step is large and cores are idle).
    workspace_dir : str or Path, optional
        Where the workspace goes; a temporary folder (removed with this object) when None.
    random_state : None, int or RandomState, optional
        Seeds the split, the protection thresholds, the weights, the data order and (unless ``sample`` gets
        its own) sampling.
    verbose : bool, int or "auto", default="auto"
        Show progress bars ("auto": where a person is watching).

    Attributes
    ----------
    stats_ : dict
        The published (protected) statistics of the target.
    ctx_stats_ : dict or None
        The published statistics of the context.
    encoding_types_ : dict
        The resolved encoding type of every column.
    history_ : DataFrame
        One row per training epoch (loss and validation loss in nats per record, learning rate, time).
    ctx_history_ : DataFrame or None
        The same for the context model (empty for a context of keys only); None without a context.
    workspace_ : Workspace
        The workspace of the last fit (a temporary one disappears with the estimator).
    privacy_report_ : DataFrame
        Only with ``differential_privacy``: the privacy ledger, one row per mechanism that touched the data
        (columns ``stage, column, mechanism, epsilon, delta``).
    epsilon_, delta_ : float
        Only with ``differential_privacy``: the totals of the ledger (basic composition).
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen import LanguageSynthesizer
    >>> reviews = pd.DataFrame({"stars": [1, 5, 4, 2] * 50,
    ...                         "review": ["awful", "loved it", "pretty good", "not great"] * 50})
    >>> synth = LanguageSynthesizer(tgt_encoding_types={"review": "LANGUAGE_TEXT"}, max_epochs=1,
    ...                             random_state=0).fit(reviews)
    >>> synth.sample(3).shape
    (3, 2)
    """

    _model_type = ModelType.LANGUAGE
    _wrong_workspace = "split for TABULAR. Use Splitter(model_type='LANGUAGE'), or TabularSynthesizer."
    _generator_class = LanguageGenerator
    _live_attributes = ("_generator", "_context_generator")
    # the keywords of sample() that sample_to_parquet passes on, with their defaults
    _parquet_sample_options = {
        "context": None, "seed_data": None, "batch_size": None,
        "sampling_temperature": ESTIMATOR_DEFAULTS.sampling_temperature,
        "sampling_top_p": ESTIMATOR_DEFAULTS.sampling_top_p, "device": None,
        "rare_category_replacement_method": None, "imputation": None, "random_state": None,
    }

    def __init__(
        self,
        *,
        model: str | None = None,
        max_training_time: float = ESTIMATOR_DEFAULTS.max_training_time,
        max_epochs: float = ESTIMATOR_DEFAULTS.max_epochs,
        batch_size: int | None = None,
        gradient_accumulation_steps: int | None = None,
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
        workspace_dir: str | os.PathLike | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: bool | int | str = ESTIMATOR_DEFAULTS.verbose,
    ) -> None:
        self.model = model
        self.max_training_time = max_training_time
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.gradient_accumulation_steps = gradient_accumulation_steps
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
        self.workspace_dir = workspace_dir
        self.random_state = random_state
        self.verbose = verbose

    # -- fit -------------------------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame | np.ndarray | Workspace, y: pd.Series | np.ndarray | None = None, *,
            context: pd.DataFrame | None = None) -> LanguageSynthesizer:
        """Learn ``X`` (and its ``context`` table); ``X`` may also be the Workspace of an ``Encoder``.

        Parameters
        ----------
        X : DataFrame, array-like of shape (n_samples, n_features) or Workspace
            The target table; arrays get columns ``col_0 .. col_k``. A Workspace must have been split with
            ``model_type="LANGUAGE"``.
        y : array-like of shape (n_samples,), optional
            Appended to ``X`` as a column (named after ``y``, else ``"target"``).
        context : DataFrame, optional
            The context table: one row per ``tgt_context_key``, conditioning that key's records.

        Returns
        -------
        self : LanguageSynthesizer
            The fitted synthesizer.

        Raises
        ------
        ValueError
            An invalid parameter (checked before any stage runs, in scikit-learn's form) or invalid data
            (a LANGUAGE_TEXT column without any text, a context key missing from the context table, ...).
        """
        params = self._validate_fit_params(context)
        strategy = params["model_state_strategy"]
        rng = as_generator(self.random_state)
        seeds = {stage: derive_seed(rng) for stage in ("split", "analyze", "encode", "train", "context")}
        if isinstance(X, Workspace):
            self._check_workspace(X)
        saved = self._saved_model(strategy, X)
        if isinstance(X, Workspace):
            ws = X
            feature_names = list(ws.read_meta("tgt")["dtypes"])
        else:
            frame, feature_names = self._training_frame(X, y, context, saved, strategy)
            ws = self._fit_workspace()
        with ws.lock("fit"):
            if not isinstance(X, Workspace):
                split(frame, ctx_data=context, tgt_primary_key=self.tgt_primary_key,
                      ctx_primary_key=self.ctx_primary_key, tgt_context_key=self.tgt_context_key,
                      model_type=ModelType.LANGUAGE, tgt_encoding_types=self.tgt_encoding_types,
                      ctx_encoding_types=self.ctx_encoding_types, n_partitions=self.n_partitions,
                      workspace_dir=ws, random_state=seeds["split"], verbose=self.verbose)
            if saved is not None:  # encode the data with the statistics the model was trained with
                check_workspace_matches(ws, saved[0], strategy)
                adopt_statistics(ws, saved[0])
                encode(workspace_dir=ws, random_state=seeds["encode"], verbose=self.verbose)
                install_language_model(ws, *saved)
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
                    ws, model=None, max_epochs=self.max_epochs,
                    max_training_time_s=CONTEXT_TIME_SHARE * self.max_training_time * 60.0,
                    enable_flexible_generation=True, device=resolve_device(self.device),
                    previous=previous.bundle if previous is not None else None, random_state=seeds["context"],
                    verbose=self.verbose, n_threads=self.n_threads)
            remaining = self.max_training_time - (time.perf_counter() - start) / 60.0
            train(model=self.model, max_training_time=max(remaining, 1e-6), max_epochs=self.max_epochs,
                  batch_size=self.batch_size, gradient_accumulation_steps=self.gradient_accumulation_steps,
                  differential_privacy=self.differential_privacy,
                  model_state_strategy=strategy if saved is not None else "RESET", device=self.device,
                  n_threads=self.n_threads, workspace_dir=ws, random_state=seeds["train"], verbose=self.verbose)
            self._bundle = LanguageBundle.from_workspace(ws)
            self._context_model = context_model
            self.history_ = ws.read_progress()
            self.ctx_history_ = pd.DataFrame(context_model.history) if context_model is not None else None
        self._set_fitted(ws, feature_names)
        return self

    def _holds_saved_model(self, ws: Workspace) -> bool:
        return super()._holds_saved_model(ws) and ws.tokenizer_path.exists()

    def _load_bundle(self, ws: Workspace) -> LanguageBundle:
        return LanguageBundle.from_workspace(ws)

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
        imputation: ImputationConfig | dict | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Generate synthetic rows.

        Parameters
        ----------
        n_samples : int, optional
            Rows to generate; default the number of training rows (or of ``seed_data`` rows). With a context
            table: the number of context rows (entities), by default as many as the training context had; with
            ``context``, its first ``n_samples`` rows. ``0`` gives an empty frame with the training columns and
            dtypes.
        seed_data : DataFrame, optional
            Fixed values of some columns (any of them); the rest is generated conditionally on them, and
            seed values are kept verbatim. With a context table, seed rows refer to context rows by the context
            key, so they need ``context``.
        context : DataFrame, optional
            Context rows to generate one record each for, used as given. Without it, a model with a context
            table first generates synthetic context rows (with new primary keys) from its context model.
        return_context : bool, default=False
            Models with a context table only: return ``(context, target)``, the context rows the records were
            generated for (the synthetic ones, or the rows of ``context`` that were used) and the records.
        batch_size : int, optional
            Records per generation batch (default 512 for the LSTM, 64 for a Hugging Face model).
        sampling_temperature : float, default=1.0
            Above 1 more diverse, below 1 more typical; 0 takes the most probable token or category.
        sampling_top_p : float, default=1.0
            Nucleus sampling threshold.
        device : str, optional
        rare_category_replacement_method : {"SAMPLE", "CONSTANT"}, optional
            ``SAMPLE`` (default) never emits ``_RARE_``; ``CONSTANT`` may, where rare categories were hidden.
        imputation : ImputationConfig or dict, optional
            Columns that are never generated as NULL.
        random_state : None, int or RandomState, optional
            Defaults to the estimator's ``random_state``.

        Returns
        -------
        DataFrame or tuple of DataFrame
            Columns and dtypes as in the training data; ``(context, target)`` with ``return_context=True``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            An invalid keyword (in scikit-learn's form, naming ``LanguageSynthesizer.sample``) or invalid
            seeds or context rows.
        """
        check_is_fitted(self)
        validate_all(f"{type(self).__name__}.sample", {
            "n_samples": n_samples, "seed_data": seed_data, "context": context, "return_context": return_context,
            "batch_size": batch_size,
            "sampling_temperature": sampling_temperature, "sampling_top_p": sampling_top_p, "device": device,
            "rare_category_replacement_method": rare_category_replacement_method, "imputation": imputation,
            "random_state": random_state}, estimator=True)
        rng = as_generator(random_state if random_state is not None else self.random_state)
        two_table = self._check_context_request(context=context, seed_data=seed_data, return_context=return_context)
        generator = self._generator_for(device)
        with torch_threads(generator.n_threads_for(self.n_threads, batch_size)):
            context, n_samples = self._context_to_sample(
                two_table, context, n_samples, batch_size=batch_size, sampling_temperature=sampling_temperature,
                sampling_top_p=sampling_top_p, rare_category_replacement_method=rare_category_replacement_method,
                device=device, rng=rng)
            frames = list(generator.generate(
                sample_size=n_samples, ctx_data=context, seed_data=seed_data, batch_size=batch_size,
                ctx_parameter="context", size_parameter="n_samples",
                sampling_temperature=sampling_temperature, sampling_top_p=sampling_top_p,
                rare_category_replacement_method=rare_category_replacement_method, imputation=imputation,
                rng=rng))
        return self._with_used_context(_join_frames(frames, generator), context, n_samples, return_context)

    # -- sample_to_parquet -----------------------------------------------------------------------------
    def sample_to_parquet(self, path: str | os.PathLike, n_samples: int | None = None, *,
                          n_partitions: int | None = None, client: Client | None = None,
                          n_jobs: int | None = None, **sample_options) -> Path:
        """Generate synthetic records in partitions and write them as parquet parts into the folder ``path``.

        As ``TabularSynthesizer.sample_to_parquet``: the records (the entities of a model with a context table)
        are cut into blocks of ``batch_size`` (default 10,000), each generated with its own seed, the block's
        child of ``SeedSequence(random_state)``; a partition is a run of whole blocks written as one parquet
        file, one block at a time, so memory stays flat for any ``n_samples``. The output depends on the seed and
        ``batch_size`` only: not on the number of partitions, the backend or the number of workers. See
        ``docs/scale.md``.

        Parameters
        ----------
        path : str or path-like
            A new or empty folder; a model without a context table writes ``part.NNNNNN.parquet`` into it, one
            with a context table ``context/part.NNNNNN.parquet`` and ``target/part.NNNNNN.parquet`` (each
            entity's record in the part of the same number as its context row, linked by the keys as
            ``sample(return_context=True)``). On a cluster the folder must be reachable by every worker, and so
            must the base model's folder of a fine-tuned Hugging Face model.
        n_samples : int, optional
            As in :meth:`sample`: records, or entities of a model with a context table (the first
            ``n_samples`` rows of a given ``context``).
        n_partitions : int, optional
            Parquet parts (tasks) to write; default one per block.
        client : dask.distributed.Client, optional
            Run the partitions on this Dask cluster (``pip install 'synthgen[dask]'``); else locally with joblib.
        n_jobs : int, optional
            Local processes (joblib's meaning: None is one unless a ``joblib.parallel_config`` says otherwise, -1
            all cores); ignored with ``client``.
        **sample_options
            The keywords of :meth:`sample` except ``return_context``: ``context``, ``seed_data`` (models without
            a context table), ``batch_size``, ``sampling_temperature``, ``sampling_top_p``, ``device``,
            ``rare_category_replacement_method``, ``imputation``, ``random_state``. Each partition uses
            ``n_threads`` torch threads (one by default).

        Returns
        -------
        Path
            ``path``; ``pd.read_parquet(path)`` (``path / "target"`` and ``path / "context"`` with a context
            table) reads the records back with the training dtypes.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        ValueError
            An invalid argument, or a ``path`` that holds files.

        Examples
        --------
        >>> import pandas as pd
        >>> from synthgen import LanguageSynthesizer
        >>> reviews = pd.DataFrame({"stars": [1, 5, 4, 2] * 50,
        ...                         "review": ["awful", "loved it", "pretty good", "not great"] * 50})
        >>> synth = LanguageSynthesizer(tgt_encoding_types={"review": "LANGUAGE_TEXT"}, max_epochs=1,
        ...                             random_state=0).fit(reviews)
        >>> folder = synth.sample_to_parquet("synthetic-reviews", 60, batch_size=20)
        >>> len(list(folder.glob("*.parquet"))), len(pd.read_parquet(folder))
        (3, 60)
        """
        return self._sample_to_parquet(path, n_samples, n_partitions=n_partitions, client=client, n_jobs=n_jobs,
                                       sample_options=sample_options)
