"""``analyze``: per-column statistics of the split data, computed per partition and reduced, with value protection."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._dtypes import published_dtype, spec_name
from .._options import ENGINE_DEFAULTS, InvalidParameterError, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator
from .._user_warnings import warn
from .._workspace import Workspace, locks_workspace
from ..column_encodings import SequenceIndex, get_encoding
from ..column_encodings._language import get_language_encoding
from ..domain import DifferentialPrivacyConfig, ModelEncodingType, ModelType, ProgressCallback
from ..privacy._dp_budget import DPBudget, resolve_dp_budget
from ..privacy._dp_sequence_lengths import check_sequence_length_budget, dp_sequence_length_stats
from ..privacy._dp_statistics import (
    DP_ENCODING_TYPES,
    ColumnBudget,
    check_domain,
    dp_partial,
    dp_reduce,
    needs_delta,
    not_supported_message,
    spends_nothing,
)
from ..privacy._dp_text_lengths import check_text_length_budget
from ..privacy._ledger import LedgerEntry
from ..privacy._value_protection import MIN_SUBJECTS_FOR_RANGE, protected_range
from ._derived_columns import dependency_partial, derived_columns, eligible_columns

__all__ = ["analyze", "column_error"]

_log = logging.getLogger(__name__)


_CATEGORICAL = (ModelEncodingType.TABULAR_CATEGORICAL.value, ModelEncodingType.LANGUAGE_CATEGORICAL.value)
_RELATIVE = ModelEncodingType.TABULAR_DATETIME_RELATIVE.value


def _is_language(meta: dict) -> bool:
    return any(t.startswith("LANGUAGE_") for t in meta["encoding_types"].values())


def column_error(err: Exception, column: str, table: str) -> ValueError:
    """``err`` re-raised with the column it concerns."""
    return ValueError(f"Column {column!r} of {table}_data: {err}")


def _subjects(frame: pd.DataFrame, key: str | None, offset: int) -> np.ndarray:
    if key is None:
        return np.arange(offset, offset + len(frame))
    return frame[key].to_numpy()


def _sequence(frame: pd.DataFrame, context_key: str | None) -> SequenceIndex | None:
    if context_key is None:
        return None
    return SequenceIndex(pd.factorize(frame[context_key])[0])


def _key_summary(frame: pd.DataFrame, keys: dict, table: str):
    """What the sequence lengths need of a partition, without holding its key columns: the rows per context key
    of a two-table target, the row count of a flat one, the subject keys (one per row) of a context."""
    if table == "ctx":
        return frame[keys["primary_key"]]
    if keys.get("context_key") is not None:
        return frame[keys["context_key"]].value_counts()
    return len(frame)


def _one_row_per_subject(frame: pd.DataFrame, key: str | None, rng: np.random.Generator) -> pd.DataFrame:
    """One row drawn at random per subject (all rows when every row is its own subject): under differential
    privacy each subject then adds at most 1 to any count of the statistics."""
    if key is None:
        return frame
    shuffled = frame.iloc[rng.permutation(len(frame))]
    return shuffled[~shuffled[key].duplicated().to_numpy()]


def _analyze_table(ws: Workspace, table: str, meta: dict, progress: ProgressReporter,
                   value_protection: bool, rng: np.random.Generator,
                   dp: _DPAnalysis | None = None) -> tuple[dict, list[tuple], dict]:
    """Reduced column stats of one table, per partition the summary of its keys (for sequence lengths), and its
    derived columns (none under differential privacy: their detection reads exact data)."""
    keys = meta["keys"]
    subject_key = keys.get("context_key") if table == "tgt" else keys.get("primary_key")
    lookup = get_language_encoding if _is_language(meta) else get_encoding
    encodings = {c: lookup(t) for c, t in meta["encoding_types"].items()}
    partials: dict[str, list] = {c: [] for c in encodings}
    dependency_kinds = ({} if dp is not None or _is_language(meta)
                        else eligible_columns(meta["encoding_types"], keys.values()))
    dependency_partials: list[dict] = []
    key_frames, offset = [], 0
    # the draw of one row per subject gets its own stream, so analyze without DP keeps its random draws
    sample_rng = rng.spawn(1)[0] if dp is not None else None
    for path in ws.partitions(ws.data_dir(table)):
        frame = ws.read_parquet(path)
        key_frames.append((path.name, _key_summary(frame, keys, table)))  # before one row per subject
        # relative datetimes summarise each subject's whole sequence (one value per subject per histogram)
        full_frame = frame
        full_sequence = (_sequence(frame, keys.get("context_key")) if table == "tgt" and dp is not None
                         and _RELATIVE in meta["encoding_types"].values() else None)
        if dp is not None:
            frame = _one_row_per_subject(frame, keys.get("context_key") if table == "tgt" else None, sample_rng)
        subjects = _subjects(frame, subject_key, offset)
        offset += len(frame)
        if dependency_kinds and len(frame):  # an empty partition says nothing, so it must not rule anything out
            dependency_partials.append(dependency_partial(frame, dependency_kinds, subjects))
        sequence = _sequence(frame, keys.get("context_key")) if table == "tgt" else None
        for column, encoding in encodings.items():
            try:
                if dp is not None and meta["encoding_types"][column] == _RELATIVE:
                    partials[column].append(dp_partial(_RELATIVE, full_frame[column], sequence=full_sequence))
                elif dp is not None:
                    partials[column].append(dp_partial(meta["encoding_types"][column], frame[column]))
                else:
                    partials[column].append(encoding.analyze(frame[column], subjects, sequence=sequence))
            except ValueError as err:
                raise column_error(err, column, table) from None
        progress.update()
    column_rngs = rng.spawn(len(encodings)) if encodings else []
    columns: dict[str, dict[str, Any]] = {}
    for index, (column, encoding) in enumerate(encodings.items()):
        try:
            if dp is not None:
                budget = dp.column_budget(table, column)
                stats = dp_reduce(meta["encoding_types"][column], partials[column], budget, dp.n_subjects,
                                  column_rngs[index], dp.domain(column), max_text_length=dp.max_text_length)
                stats["value_protection"] = False
                for note in budget.notes:
                    warn(f"Column {column!r} of {table}_data: {note}")
            else:
                stats = encoding.reduce(partials[column], value_protection=value_protection, rng=column_rngs[index])
        except ValueError as err:
            raise column_error(err, column, table) from None
        stats["dtype"] = published_dtype(meta["dtypes"].get(column, "object"), stats.get("categories"))
        if stats["encoding_type"] in _CATEGORICAL and not stats["categories"] and (
                stats["no_of_rare_categories"] or dp is not None):
            warn(_no_category_message(column, table, stats["no_of_rare_categories"],
                                      text_type="LANGUAGE_TEXT" if _is_language(meta) else "TABULAR_CHARACTER",
                                      dp=dp))
        stats["argn_processor"] = table
        stats["argn_column"] = f"c{index}"
        columns[column] = stats
    derived = (derived_columns(dependency_partials, {c: columns[c] for c in dependency_kinds},
                               list(meta["dtypes"]), n_rows=offset, value_protection=value_protection)
               if dependency_kinds else {})
    return columns, key_frames, derived


class _DPAnalysis:
    """The statistics budget of one analyze run, split evenly over its units: every column of both tables whose
    release is not entirely declared, and the sequence lengths of two-table data. Delta goes evenly to the units
    that threshold categories (the only mechanisms that spend it)."""

    def __init__(self, budget: DPBudget, n_subjects: int, metas: dict[str, dict], has_context: bool,
                 domains: dict[str, Any] | None, max_text_length: int | None = None):
        self.budget, self.n_subjects, self.domains = budget, n_subjects, dict(domains or {})
        self.max_text_length = max_text_length
        self.types = {(table, column): encoding_type for table, meta in metas.items()
                      for column, encoding_type in meta["encoding_types"].items()}
        unknown = sorted(set(self.domains) - {column for _, column in self.types})
        if unknown:
            raise ValueError(f"differential_privacy declares domains of columns that no table has: {unknown}.")
        self.units = [unit for unit, encoding_type in self.types.items()
                      if not spends_nothing(encoding_type, self.domains.get(unit[1]))]
        if has_context:
            self.units.append(("tgt", None))
        n_delta = sum(needs_delta(t, self.domains.get(column)) for (_, column), t in self.types.items())
        self.epsilon = budget.stats_epsilon / max(len(self.units), 1)
        self.delta = budget.stats_delta / n_delta if n_delta else 0.0
        self.budgets: list[ColumnBudget] = []

    def check(self) -> None:
        """Refuse, before anything is read, columns without a DP mechanism and domains that do not fit."""
        for (table, column), encoding_type in self.types.items():
            try:
                if encoding_type not in DP_ENCODING_TYPES:
                    raise ValueError(not_supported_message(encoding_type))
                if column in self.domains:
                    check_domain(encoding_type, self.domains[column])
            except ValueError as err:
                raise column_error(err, column, table) from None

    def domain(self, column: str) -> Any:
        return self.domains.get(column)

    def column_budget(self, table: str, column: str | None) -> ColumnBudget:
        if column is None:
            epsilon, delta = self.epsilon, 0.0
        else:
            domain = self.domains.get(column)
            epsilon = 0.0 if spends_nothing(self.types[(table, column)], domain) else self.epsilon
            delta = self.delta if needs_delta(self.types[(table, column)], domain) else 0.0
        budget = ColumnBudget(column=column, epsilon=epsilon, delta=delta)
        self.budgets.append(budget)
        return budget

    @property
    def entries(self) -> list[LedgerEntry]:
        return [entry for budget in self.budgets for entry in budget.entries]


def _no_category_message(column: str, table: str, n_categories: int, *, text_type: str,
                         dp: _DPAnalysis | None = None) -> str:
    fate = "sampled as NULL in every row" if table == "tgt" else "NULL in every row for the model"
    if dp is not None:
        return (f"Column {column!r} of {table}_data: under differential privacy no category cleared the noisy "
                f"threshold (epsilon {dp.epsilon:.3g}, delta {dp.delta:.3g} for this column), so it is {fate}. "
                "Raise the statistics budget (epsilon, stats_share), or drop the column.")
    return (f"Column {column!r} of {table}_data: value protection publishes none of its {n_categories} categories "
            f"(each is held by fewer than 5 to 7 subjects), so it is {fate}. If it identifies rows, make it a key "
            f"or drop it; for free text or codes declare {text_type}; convert numbers or dates to a numeric "
            "or datetime dtype; or fit with value_protection=False.")


def _sequence_lengths(tgt_keys, ctx_keys, context_key: str, ctx_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Length of every subject's sequence (zero for subjects without target rows), and trn flags."""
    lengths, is_trn = [], []
    ctx_by_name = dict(ctx_keys)
    for name, frame in tgt_keys:
        subjects = ctx_by_name[name]
        lengths.append(frame.reindex(subjects, fill_value=0).to_numpy())
        is_trn.append(np.full(len(subjects), name.endswith("-trn.parquet")))
    return np.concatenate(lengths), np.concatenate(is_trn)


def _seq_len_stats(lengths: np.ndarray, value_protection: bool, rng: np.random.Generator) -> dict[str, Any]:
    lengths = lengths.astype(np.int64)
    low, high = protected_range([np.sort(lengths)], [np.sort(lengths)[::-1]], len(lengths),
                                value_protection=value_protection, rng=rng)
    median = int(np.median(lengths)) if len(lengths) else 0
    if low is None:  # too few subjects to publish a range: every sequence gets the median length
        _log.warning("fewer than %d subjects: sequence lengths are protected to the median length %d",
                     MIN_SUBJECTS_FOR_RANGE, median)
        low = high = median
    return {"min": int(low), "max": int(high), "median": int(min(max(median, low), high)),
            "value_protection": bool(value_protection)}


@locks_workspace("analyze")
def analyze(
    *,
    value_protection: bool = ENGINE_DEFAULTS.value_protection,
    differential_privacy: DifferentialPrivacyConfig | dict | None = None,
    workspace_dir: str | Path | Workspace = ENGINE_DEFAULTS.workspace_dir,
    update_progress: ProgressCallback | None = None,
    random_state: int | np.random.RandomState | np.random.Generator | None = None,
    verbose: bool | int | str = ENGINE_DEFAULTS.verbose,
) -> Workspace:
    """Compute the (privacy-protected) column statistics of the split data.

    Writes ``ModelStore/tgt-stats/stats.json`` and, with a context, ``ModelStore/ctx-stats/stats.json``.

    Parameters
    ----------
    value_protection : bool, default=True
        Hide categories held by fewer than 5–7 subjects and the 5–7 most extreme values of every range;
        ranges of fewer than 20 subjects are hidden entirely.
    differential_privacy : DifferentialPrivacyConfig or dict, optional
        Publish only statistics of differentially private mechanisms, under the statistics share of the budget
        (see :doc:`/privacy`); value protection is then not applied (DP replaces it). Every mechanism is written
        to the workspace's privacy ledger (:meth:`Workspace.read_privacy_ledger`).
    workspace_dir : str, Path or Workspace, default="engine-ws"
    update_progress : callable, optional
    random_state : None, int, RandomState or Generator, optional
        Seed of the stochastic protection thresholds.
    verbose : bool, int or "auto", default="auto"
        Show a progress bar; "auto" where a person is watching (stderr is a terminal, or a notebook).

    Returns
    -------
    Workspace

    Examples
    --------
    >>> import synthgen as sg
    >>> from synthgen.datasets import load_census
    >>> ws = sg.split(load_census(), workspace_dir="ws", random_state=0)
    >>> ws = sg.analyze(workspace_dir="ws", random_state=0)
    >>> stats = ws.read_stats("tgt")
    >>> stats["columns"]["sex"]["encoding_type"]
    'TABULAR_CATEGORICAL'
    """
    params = validate_all("analyze", {
        "value_protection": value_protection, "differential_privacy": differential_privacy,
        "workspace_dir": workspace_dir, "update_progress": update_progress, "random_state": random_state,
        "verbose": verbose})
    value_protection, dp_config = params["value_protection"], params["differential_privacy"]
    ws = workspace_dir if isinstance(workspace_dir, Workspace) else Workspace(workspace_dir)
    ws.require("split")
    model_type = ws.read_model_type()
    tgt_meta = ws.read_meta("tgt")
    has_ctx = ws.has_context()
    ctx_meta = ws.read_meta("ctx") if has_ctx else None
    dp = None
    if dp_config is not None:  # the subjects: context rows of two-table data, else target rows (a public count)
        n_subjects = ws.count_rows(ws.data_dir("ctx" if has_ctx else "tgt"))
        metas = {"tgt": tgt_meta} | ({"ctx": ctx_meta} if has_ctx else {})
        try:
            dp = _DPAnalysis(resolve_dp_budget(dp_config, n_subjects), n_subjects, metas, has_ctx, dp_config.domains,
                             dp_config.max_text_length)
            if has_ctx and model_type == ModelType.TABULAR.value:  # a sequential model is built to the bound
                check_sequence_length_budget(dp.epsilon, n_subjects, dp_config.max_sequence_length)
            for (_, column), encoding_type in dp.types.items():  # texts are cut to and generated up to the bound
                if encoding_type == ModelEncodingType.LANGUAGE_TEXT.value:
                    check_text_length_budget(dp.epsilon, n_subjects, dp_config.max_text_length, column)
        except ValueError as err:
            raise InvalidParameterError(f"The 'differential_privacy' parameter of analyze is invalid: {err}") from None
        dp.check()
    ws.clear_from("analyze")
    rng = as_generator(random_state)
    tgt_rng, ctx_rng, len_rng = rng.spawn(3)
    n_files = len(ws.partitions(ws.data_dir("tgt"))) * (2 if has_ctx else 1)
    with ProgressReporter(n_files, description="analyze", callback=update_progress, verbose=verbose) as progress:
        tgt_columns, tgt_keys, tgt_derived = _analyze_table(ws, "tgt", tgt_meta, progress, value_protection, tgt_rng, dp)
        context_key = tgt_meta["keys"].get("context_key")
        if has_ctx:
            ctx_columns, ctx_keys, ctx_derived = _analyze_table(ws, "ctx", ctx_meta, progress, value_protection, ctx_rng, dp)
            lengths, is_trn = _sequence_lengths(tgt_keys, ctx_keys, context_key, ctx_meta["keys"]["primary_key"])
            n_trn, n_val = int(is_trn.sum()), int((~is_trn).sum())
        else:
            # every flat subject is one row, so the length stats of one row are those of all rows
            lengths = np.ones(1, dtype=np.int64)
            n_trn = sum(rows for name, rows in tgt_keys if name.endswith("-trn.parquet"))
            n_val = sum(rows for _, rows in tgt_keys) - n_trn
        if dp is not None and has_ctx:
            seq_len = dp_sequence_length_stats(lengths, dp.column_budget("tgt", None), dp.n_subjects, len_rng,
                                               max_sequence_length=dp_config.max_sequence_length)
            observed_min, observed_max = seq_len["min"], seq_len["max"]
        else:
            seq_len = _seq_len_stats(lengths, value_protection and has_ctx, len_rng)
            observed_min, observed_max = int(lengths.min()), int(lengths.max())
        stats = {
            "model_type": model_type,
            "columns": tgt_columns,
            # B: {"from": A, "map": [[a, b], ...]}: columns that are exact functions of another (see _derived_columns)
            "derived_columns": tgt_derived,
            "keys": tgt_meta["keys"],
            "key_dtypes": {k: spec_name(tgt_meta["dtypes"][k]) for k in tgt_meta["keys"].values()},
            "column_order": list(tgt_meta["dtypes"]),
            "no_of_training_records": n_trn,
            "no_of_validation_records": n_val,
            "seq_len": seq_len,
            # a LANGUAGE model writes one record per target row, conditioned on its context row
            "is_sequential": bool(has_ctx and model_type == ModelType.TABULAR.value
                                  and not (observed_min == observed_max == 1)),
            "value_protection": bool(value_protection) and dp is None,
            "differential_privacy": dp is not None,
        }
        if has_ctx:
            ws.write_stats("ctx", {"columns": ctx_columns, "keys": ctx_meta["keys"], "derived_columns": ctx_derived,
                                   "value_protection": bool(value_protection) and dp is None,
                                   "differential_privacy": dp is not None})
        if dp is not None:
            ws.write_privacy_ledger("analyze", dp.entries)
        # written last: its presence marks a completed analysis
        ws.write_stats("tgt", stats)
    return ws
