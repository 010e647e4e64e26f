"""The :func:`evaluate` entry point."""

from __future__ import annotations

import logging
import numbers
import time

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from synthgen.domain import FairnessConfig
from synthgen.evaluation._columns import column_kind, validate_frames
from synthgen.evaluation._discriminator import discriminator_auc
from synthgen.evaluation._distances import privacy_metrics
from synthgen.evaluation._encode import DistanceEncoder
from synthgen.evaluation._fairness import (
    MIN_GROUP_SIZE,
    disparate_impact,
    parity_shares,
    statistical_parity_difference,
)
from synthgen.evaluation._fidelity import ACCURACY_PARTS, fidelity
from synthgen.evaluation._prepare import prepare_frame
from synthgen.evaluation._result import EvaluationResult
from synthgen.evaluation._text import text_evaluation
from synthgen.evaluation._text_columns import resolve_context_columns, resolve_text_columns

_LOG = logging.getLogger(__name__)

_TABLE_NAMES = {"synthetic": "accuracy", "holdout": "reference"}


def evaluate(
    original: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
    *,
    context_key: str | None = None,
    privacy: bool = True,
    discriminator: bool = True,
    max_rows: int = 100_000,
    max_distance_rows: int = 50_000,
    max_discriminator_rows: int = 20_000,
    max_trivariates: int = 100,
    fairness: FairnessConfig | dict | None = None,
    text_columns: list[str] | None = None,
    text_context_columns: list[str] | None = None,
    privacy_report: pd.DataFrame | None = None,
    random_state: int | np.random.RandomState | None = 0,
) -> EvaluationResult:
    """Measure how faithful synthetic data is and whether it leaks the original records.

    Parameters
    ----------
    original : pandas.DataFrame
        The data the generator was trained on.
    synthetic : pandas.DataFrame
        The generated data, with the same columns.
    holdout : pandas.DataFrame, optional
        Real data of the same distribution that the generator did not see. It gives the reference figures
        (``result.reference``) and the DCR share.
    context_key : str, optional
        For two-table target data: the column that groups rows into sequences. Rows of a sequence must be in
        step order. The key itself is not evaluated as a column. Univariate, bivariate and trivariate
        accuracies then weigh each row by ``1 / length of its sequence`` (each sequence counts once),
        coherence compares consecutive steps, and privacy and discriminator figures compare whole sequences.
    privacy : bool, default=True
        Compute the distance-based privacy figures (DCR, DCR share, exact copies, NNDR).
    discriminator : bool, default=True
        Compute the discriminator AUC.
    max_rows : int, default=100_000
        Rows (flat) or sequences (with ``context_key``) drawn at most from each frame for all figures.
    max_distance_rows : int, default=50_000
        Records drawn at most from each frame for the distance figures. Training samples are of the holdout
        sample's size; with a larger training frame the DCR share is averaged over up to five disjoint
        training samples (at most ``max_distance_rows`` training records in all).
    max_discriminator_rows : int, default=20_000
        Records drawn at most per class for the discriminator.
    max_trivariates : int, default=100
        Column triples evaluated at most; more are sampled at random.
    fairness : FairnessConfig or dict, optional
        ``{"target_column": ..., "sensitive_columns": [...]}`` (categorical columns of the frames): adds the
        statistical parity difference and disparate impact of every frame, over all its rows, leaving out
        groups of fewer than 30 rows (``result.fairness``, ``result.fairness_shares``). For two-table data,
        join the sensitive context columns onto the frames first.
    text_columns : list of str, optional
        The free-text columns (a tweet, a comment): they get the text figures (``result.text``) and are left
        out of the accuracy, discriminator and distance figures, where a column of unique strings would be
        one meaningless "(other)" bucket (exact copies still compare whole rows, text included). By default
        the columns of the original that the project's free-text rule picks (the one ``TabularSynthesizer``
        infers ``LANGUAGE_TEXT`` columns with; docs/language.md, "Which columns are free text"): mostly distinct
        strings of several words; ``[]`` evaluates every column as before.
    text_context_columns : list of str, optional
        Columns whose value of the same row a classifier predicts from the text (``context_auc[<column>]``
        of ``result.text``). By default the first three categorical, non-text columns with 2 to 50 distinct
        values; ``[]`` for none. With two-table data, join context-table columns onto the rows first.
    privacy_report : pandas.DataFrame, optional
        The differential-privacy ledger of the generator (``synth.privacy_report_``: columns ``stage``,
        ``column``, ``mechanism``, ``epsilon``, ``delta``); kept as ``result.privacy_report`` and shown in the
        HTML report with its totals. It is reported, not measured.
    random_state : int, RandomState instance or None, default=0
        Seeds every sampling step (row samples, column triples, distance samples, discriminator folds). The
        default, a fixed seed, gives the same figures for the same frames in every call, as a metric that
        compares models must; ``None`` draws fresh samples each call. See docs/evaluation.md for how much
        the figures move across seeds.

    Returns
    -------
    EvaluationResult
        The figures, per-column tables and the data for plots.

    Raises
    ------
    TypeError
        If a frame is not a DataFrame.
    ValueError
        If the frames' columns differ, a frame is empty, the context key is missing or NULL, a column cannot
        be read as the original's type, ``text_columns`` or ``text_context_columns`` names a column the data
        lacks (or a text column names one that does not hold strings), or a parameter is out of range.

    Examples
    --------
    >>> import pandas as pd
    >>> from synthgen.evaluation import evaluate
    >>> df = pd.read_parquet("adult.parquet")  # doctest: +SKIP
    >>> train, holdout = df.iloc[:39_000], df.iloc[39_000:]  # doctest: +SKIP
    >>> result = evaluate(train, synthetic, holdout, random_state=0)  # doctest: +SKIP
    >>> result.overall, result.dcr_share  # doctest: +SKIP
    (0.93, 0.51)
    """
    for name, value in {
        "max_rows": max_rows,
        "max_distance_rows": max_distance_rows,
        "max_discriminator_rows": max_discriminator_rows,
        "max_trivariates": max_trivariates,
    }.items():
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(
                f"The {name!r} parameter of evaluate must be an int in the range [1, inf). Got {value!r} instead."
            )
    for name, value in {"privacy": privacy, "discriminator": discriminator}.items():
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"The {name!r} parameter of evaluate must be a bool. Got {value!r} instead.")
    columns = validate_frames(original, synthetic, holdout, context_key)
    _check_privacy_report(privacy_report)
    fairness = _fairness_config(fairness, columns)
    random = check_random_state(random_state)
    seeds = random.randint(np.iinfo(np.int32).max, size=6)
    started = time.perf_counter()

    texts = resolve_text_columns(text_columns, original, columns, context_key)
    kinds = {c: "text" if c in texts else column_kind(original[c]) for c in columns}
    contexts = resolve_context_columns(text_context_columns, texts, kinds, original, columns, context_key)
    tabular = [c for c in columns if c not in texts]
    inputs = {"original": original, "synthetic": synthetic}
    if holdout is not None:
        inputs["holdout"] = holdout
    frames = {
        name: prepare_frame(
            frame,
            name=name,
            columns=columns,
            kinds=kinds,
            context_key=context_key,
            max_units=max_rows,
            rng=np.random.RandomState(seed),
        )
        for (name, frame), seed in zip(inputs.items(), seeds[:3], strict=False)
    }
    # The tabular figures see the other columns only: a free-text column is not a category.
    tabular_frames = {name: frame.select(tabular) for name, frame in frames.items()}
    fid = fidelity(tabular_frames, kinds, max_triples=max_trivariates, rng=np.random.RandomState(seeds[3]))
    _LOG.debug("fidelity figures done after %.2f s", time.perf_counter() - started)

    privacy_figures: dict[str, float | None] = {}
    privacy_reference: dict[str, float | None] = {}
    distances: dict[str, np.ndarray] = {}
    if privacy and tabular:
        encoder = DistanceEncoder.fit(frames["original"], kinds)
        privacy_figures, privacy_reference, distances = privacy_metrics(
            encoder,
            synthetic=frames["synthetic"],
            training=frames["original"],
            holdout=frames.get("holdout"),
            max_rows=max_distance_rows,
            rng=np.random.RandomState(seeds[4]),
        )
        _LOG.debug("privacy figures done after %.2f s", time.perf_counter() - started)

    auc: dict[str, float | None] = {"synthetic": None, "holdout": None}
    if discriminator and tabular:
        rng = np.random.RandomState(seeds[5])
        for name in [name for name in auc if name in frames]:
            auc[name] = discriminator_auc(
                tabular_frames["original"], tabular_frames[name], kinds, max_rows=max_discriminator_rows, rng=rng
            )
        _LOG.debug("discriminator done after %.2f s", time.perf_counter() - started)

    text = None
    if texts:
        # drawn after the other seeds, so that the tabular figures do not change with text columns present
        text = text_evaluation(
            frames, kinds, texts, contexts, discriminator=discriminator,
            max_discriminator_rows=max_discriminator_rows, rng=np.random.RandomState(random.randint(np.iinfo(np.int32).max)),
        )
        _LOG.debug("text figures done after %.2f s", time.perf_counter() - started)

    fairness_figures = fairness_shares = None
    if fairness is not None:
        fairness_figures, fairness_shares = _fairness_figures(inputs, fairness)
    reference = None
    if holdout is not None:
        reference = {
            **fid.figures["holdout"],
            "discriminator_auc": auc["holdout"],
            **privacy_reference,
            **_frame_figures(fairness_figures, "holdout"),
        }
    synthetic_figures = fid.figures["synthetic"]
    return EvaluationResult(
        overall=synthetic_figures["overall"],
        **{part: synthetic_figures[part] for part in ACCURACY_PARTS},
        discriminator_auc=auc["synthetic"],
        dcr_share=privacy_figures.get("dcr_share"),
        exact_match_share=privacy_figures.get("exact_match_share"),
        exact_match_share_holdout=privacy_figures.get("exact_match_share_holdout"),
        dcr_training=privacy_figures.get("dcr_training"),
        dcr_holdout=privacy_figures.get("dcr_holdout"),
        nndr_training=privacy_figures.get("nndr_training"),
        nndr_holdout=privacy_figures.get("nndr_holdout"),
        reference=reference,
        univariates=fid.univariates.rename(columns=_TABLE_NAMES),
        bivariates=fid.bivariates.rename(columns=_TABLE_NAMES),
        trivariates=fid.trivariates.rename(columns=_TABLE_NAMES),
        coherences=fid.coherences.rename(columns=_TABLE_NAMES),
        distributions=fid.distributions,
        sequence_lengths=fid.sequence_lengths,
        distances=distances,
        n_records={name: frame.n_units for name, frame in frames.items()},
        context_key=context_key,
        **_frame_figures(fairness_figures, "synthetic"),
        fairness=fairness_figures,
        fairness_shares=fairness_shares,
        fairness_columns=None if fairness is None else fairness.to_dict(),
        text=None if text is None else text.table,
        text_lengths=None if text is None else text.lengths,
        privacy_report=None if privacy_report is None else privacy_report.copy(),
    )


_LEDGER_COLUMNS = ["stage", "column", "mechanism", "epsilon", "delta"]


def _check_privacy_report(report) -> None:
    if report is None:
        return
    if not isinstance(report, pd.DataFrame) or list(report.columns) != _LEDGER_COLUMNS:
        raise ValueError(f"The 'privacy_report' parameter of evaluate must be a privacy ledger (a DataFrame with "
                         f"columns {_LEDGER_COLUMNS}, as a synthesizer's privacy_report_) or None. "
                         f"Got {type(report).__name__} instead.")


def _fairness_config(fairness, columns: list[str]) -> FairnessConfig | None:
    config = FairnessConfig.coerce(fairness, name="fairness")
    if config is not None:
        missing = [c for c in [config.target_column, *config.sensitive_columns] if c not in columns]
        if missing:
            raise ValueError(
                f"fairness names columns the frames do not have: {missing}; their columns are {list(columns)}."
            )
    return config


def _fairness_figures(frames: dict[str, pd.DataFrame], config) -> tuple[pd.DataFrame, pd.DataFrame]:
    target, sensitive = config.target_column, list(config.sensitive_columns)
    figures = pd.DataFrame(
        {
            "statistical_parity_difference": [
                statistical_parity_difference(frame, target, sensitive, min_group_size=MIN_GROUP_SIZE)
                for frame in frames.values()
            ],
            "disparate_impact": [
                disparate_impact(frame, target, sensitive, min_group_size=MIN_GROUP_SIZE) for frame in frames.values()
            ],
        },
        index=pd.Index(list(frames), name="frame"),
    )
    shares = pd.concat(
        {name: parity_shares(frame, target, sensitive) for name, frame in frames.items()}, names=["frame"]
    ).fillna(0.0)
    return figures, shares


def _frame_figures(figures: pd.DataFrame | None, frame: str) -> dict[str, float]:
    if figures is None or frame not in figures.index:
        return {}
    return {name: float(value) for name, value in figures.loc[frame].items()}
