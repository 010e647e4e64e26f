"""Generation of flat tables from a :class:`ModelBundle`, streamed in batches of decoded DataFrames.

Shared by the engine's ``generate`` (which writes the batches as parquet parts) and by
``TabularSynthesizer.sample`` (which concatenates them), so the logic lives once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._seeding import derive_seed
from .._threads import resolve_n_threads, step_work
from ..column_encodings import SequenceIndex, get_encoding
from ..column_encodings._categorical import rare_decodes_to_token
from ..domain import (
    FairnessConfig,
    ImputationConfig,
    ModelEncodingType,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)
from ..models.tabular._bundle import ModelBundle, column_specs
from ..models.tabular._calibration import calibration_rows, fit_marginal_offsets, fit_sequential_offsets
from ..models.tabular._sampling import generator_on
from . import _fairness
from ._codec import decode_table, encode_table
from ._context_rows import checked_context_rows
from ._derived_columns import derive

__all__ = ["TabularGenerator", "DEFAULT_GENERATION_BATCH", "subset_of_default_context"]

DEFAULT_GENERATION_BATCH = 100_000
# Sequences are generated step by step for a whole batch of subjects at once, so larger batches amortise the
# per-step work; a batch holds about this many rows unless `batch_size` says otherwise.
SEQUENCE_GENERATION_ROWS = 500_000
# Rows per forward pass of flat sampling.
_SAMPLING_BATCH = 4096


def subset_of_default_context(context: pd.DataFrame, sample_size: int | None, seed_data: pd.DataFrame | None,
                              rng: np.random.Generator, *, size_name: str,
                              context_name: str) -> tuple[pd.DataFrame, int | None]:
    """The default (training) context rows to generate for, and the sample size left to pass on.

    ``sample_size`` subjects are drawn at random (by ``rng``, in their original order) unless seed rows decide
    the subjects; ``size_name`` and ``context_name`` are the caller's names of the two parameters.
    """
    if sample_size is None or seed_data is not None:
        return context, sample_size
    if sample_size > len(context):
        raise ValueError(f"{size_name} ({sample_size}) exceeds the {len(context)} training context rows; "
                         f"pass {context_name}= with the rows to generate for.")
    return context.iloc[np.sort(rng.choice(len(context), size=sample_size, replace=False))], None


def planned_rows(stats: dict, sample_size: int | None, ctx_data, seed_data, *, sequential: bool = False) -> int:
    """The rows (subjects of a sequential model) a generation makes, for progress.

    Estimates only: invalid arguments are reported by the generator's ``generate``.
    """
    limit = int(sample_size) if isinstance(sample_size, (int, np.integer)) and sample_size >= 0 else None
    if isinstance(ctx_data, pd.DataFrame):
        return len(ctx_data) if limit is None else min(limit, len(ctx_data))
    if isinstance(seed_data, pd.DataFrame):
        return len(seed_data)
    if sequential:
        return 0
    return stats["no_of_training_records"] + stats["no_of_validation_records"] if limit is None else limit


def aligned_seeds(seed_data: pd.DataFrame, ctx: pd.DataFrame | None, bundle, columns) -> pd.DataFrame:
    """``seed_data`` checked against the model's ``columns`` (and keys); with context rows ``ctx``, one seed row
    per context row, matched by the context key."""
    keys = bundle.stats["keys"]
    extra = [c for c in seed_data.columns if c not in columns and c not in keys.values()]
    if extra:
        raise ValueError(f"seed_data has columns the model does not know: {extra}; "
                         f"known columns are {list(columns)}.")
    if ctx is None:
        return seed_data.reset_index(drop=True)
    context_key, ctx_key = keys["context_key"], bundle.ctx_stats["keys"]["primary_key"]
    if context_key not in seed_data.columns:
        raise ValueError(f"seed_data must hold the context key column {context_key!r}.")
    position = pd.Index(seed_data[context_key]).get_indexer(ctx[ctx_key])
    if (position < 0).any() or seed_data[context_key].duplicated().any():
        raise ValueError(f"seed_data must hold exactly one row per context row, keyed by {context_key!r}.")
    return seed_data.iloc[position].reset_index(drop=True)


def _seed_like(values: pd.Series, like: pd.Series) -> pd.Series:
    """Seed values in the dtype of the generated column where they fit, else as given (kept verbatim)."""
    try:
        cast = values.astype(like.dtype)
    except (TypeError, ValueError):
        return values
    same = (cast.astype(object).to_numpy() == values.astype(object).to_numpy()) | (cast.isna() & values.isna()).to_numpy()
    return cast if bool(np.all(same)) else values


def _generated_keys(start: int, n: int, dtype: str) -> np.ndarray | list:
    if pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype)):
        return np.arange(start, start + n)
    return [f"syn-{i:010d}" for i in range(start, start + n)]


class TabularGenerator:
    """Samples flat rows from a trained model, with seeding, rare-category handling, imputation, rebalancing."""

    def __init__(self, bundle: ModelBundle, device: torch.device):
        self.bundle = bundle
        self.device = device
        self.model = bundle.build_model(device)
        self.columns: dict[str, dict[str, Any]] = bundle.stats["columns"]
        specs = column_specs(self.columns)
        self._column_index = {spec.name: j for j, spec in enumerate(specs)}
        names = [s for spec in specs for s in spec.sub_columns]
        self._sub_index = {name: i for i, name in enumerate(names)}
        self._sub_names = names
        # columns that are exact functions of another, re-imposed after decoding (see _derived_columns)
        self.derived: dict[str, dict[str, Any]] = bundle.stats.get("derived_columns") or {}

    def n_threads_for(self, n_threads: int | None, batch_size: int | None = None) -> int:
        """The torch thread count to generate with: ``n_threads``, or the automatic choice for a batch."""
        if self.bundle.is_sequential:  # one step of a batch of subjects at a time
            rows = self._subjects_per_batch(batch_size)
        else:
            rows = batch_size or _SAMPLING_BATCH
        return resolve_n_threads(n_threads, device=self.device, work=step_work(self.model, rows))

    def plan(self, sample_size: int | None, ctx_data, seed_data, batch_size: int | None) -> tuple[int, int, str]:
        """``(total, per_batch, unit)`` of a generation, for progress: rows (flat) or subjects (sequences).

        Estimates only: invalid arguments are reported by :meth:`generate`.
        """
        n = planned_rows(self.bundle.stats, sample_size, ctx_data, seed_data, sequential=self.bundle.is_sequential)
        if self.bundle.is_sequential:
            return n, self._subjects_per_batch(batch_size), "subjects"
        return n, batch_size or DEFAULT_GENERATION_BATCH, "rows"

    def _subjects_per_batch(self, batch_size: int | None) -> int:
        # batches of subjects sized so that a batch holds about `batch_size` rows: memory stays flat in n
        rows_per_subject = max(1, int(self.bundle.stats["seq_len"]["median"]))
        return max(1, (batch_size or SEQUENCE_GENERATION_ROWS) // rows_per_subject)

    # -- calibration -----------------------------------------------------------------------------------
    def fit_marginal_calibration(self, n_training_rows: int, generator: torch.Generator,
                                 context_codes: torch.Tensor | None = None,
                                 n_pilot_subjects: int | None = None) -> dict[str, torch.Tensor]:
        """Fit the model's marginal calibration for default generation (see :mod:`..models.tabular.
        _calibration`): the default column order, protected rare codes suppressed as ``SAMPLE`` does.

        A sequential model is calibrated on pilot sequences of ``n_pilot_subjects`` rows of ``context_codes``
        (the training contexts) per round, a fresh sample each round (all rows by default); a flat model with
        context is not calibrated (zero offsets). Returns the fitted calibration buffers on the CPU, by their
        names in the network's state dict: ``sampling_offsets`` of a flat model; ``step_model.sampling_offsets``,
        ``progress_offsets`` (the offsets per progress bucket of trending columns) and ``pair_offsets`` (of value
        parts given the part before them) of a sequential one. A flat model's pilot has ``n_pilot_subjects`` rows
        per round when given (default :func:`calibration_rows` of the training rows).
        """
        model = self.model
        fixed_probs = self._fixed_probs(RareCategoryReplacementMethod.SAMPLE, None, None)
        suppressed = {sub: [c for c, p in probs.items() if p == 0.0] for sub, probs in fixed_probs.items()}
        order = self._column_order([], None, None)
        if self.bundle.is_sequential:
            if context_codes is None:
                for name in model.CALIBRATION_OFFSETS:
                    model.get_buffer(name).zero_()
            else:
                fit_sequential_offsets(model, context_codes.long().to(self.device), n_subjects=n_pilot_subjects,
                                       order=order, suppressed=suppressed,
                                       uncalibrated=self._set_after_drawing(order),
                                       generator=generator_on(generator, self.device))
            return {name: model.get_buffer(name).detach().cpu().clone()
                    for name in model.CALIBRATION_OFFSETS}
        if self.bundle.ctx_stats is not None:
            return {"sampling_offsets": torch.zeros_like(model.sampling_offsets).cpu()}
        n_rows = calibration_rows(n_training_rows) if n_pilot_subjects is None else n_pilot_subjects
        fit_marginal_offsets(model, order=order, suppressed=suppressed, n_rows=n_rows,
                             generator=generator_on(generator, self.device))
        return {"sampling_offsets": model.sampling_offsets.detach().cpu().clone()}

    def _set_after_drawing(self, order: list[int]) -> list[int]:
        """The sub-columns of derived columns that ``order`` generates after their determinant: their emitted
        value is ``map[determinant]``, set after decoding, so offsets on the model's own draw would not move
        what is emitted; they would only tilt the draw away from the determinant's value, and the columns drawn
        later (conditioned on it) with it. Derived columns drawn *before* their determinant stay calibrated: the
        determinant's draw follows them."""
        position = {column: k for k, column in enumerate(order)}
        late = [b for b, spec in self.derived.items() if b in self.columns and spec["from"] in self.columns
                and position[self._column_index[spec["from"]]] < position[self._column_index[b]]]
        prefixes = tuple(f"{self.columns[b]['argn_processor']}:{self.columns[b]['argn_column']}__" for b in late)
        return [i for i, name in enumerate(self._sub_names) if prefixes and name.startswith(prefixes)]

    # -- configuration ---------------------------------------------------------------------------------
    def _sub(self, column: str, sub: str) -> int:
        stats = self.columns[column]
        return self._sub_index[f"{stats['argn_processor']}:{stats['argn_column']}__{sub}"]

    def _check_columns(self, names, parameter: str) -> None:
        unknown = [c for c in names if c not in self.columns]
        if unknown:
            raise ValueError(f"{parameter} names columns the model does not know: {unknown}; "
                             f"known columns are {list(self.columns)}.")

    def _fixed_probs(self, rare_method: RareCategoryReplacementMethod, imputation: ImputationConfig | None,
                     rebalancing: RebalancingConfig | None) -> dict[int, dict[int, float]]:
        probs: dict[int, dict[int, float]] = {}
        imputed = set(imputation.columns) if imputation is not None else set()
        if imputation is not None:
            self._check_columns(imputation.columns, "imputation")
        for column, stats in self.columns.items():
            encoding = get_encoding(stats["encoding_type"])
            is_categorical = stats["encoding_type"] == ModelEncodingType.TABULAR_CATEGORICAL.value
            # CONSTANT keeps the rare code of categoricals: the literal _RARE_ in string columns, NULL in others
            # (see rare_decodes_to_token); without published categories the rare code is all there is (NULL)
            keep_rare = is_categorical and (not stats["categories"] or (
                rare_method == RareCategoryReplacementMethod.CONSTANT and stats.get("no_of_rare_categories", 0) > 0
                and (column not in imputed or rare_decodes_to_token(stats))))
            if not keep_rare:
                for sub, code in encoding.rare_codes(stats).items():
                    probs.setdefault(self._sub(column, sub), {})[code] = 0.0
        for column in imputed:
            stats = self.columns[column]
            for sub, code in get_encoding(stats["encoding_type"]).null_codes(stats).items():
                probs.setdefault(self._sub(column, sub), {})[code] = 0.0
        if rebalancing is not None:
            self._check_columns([rebalancing.column], "rebalancing")
            stats = self.columns[rebalancing.column]
            if stats["encoding_type"] != ModelEncodingType.TABULAR_CATEGORICAL.value:
                raise ValueError(f"rebalancing column {rebalancing.column!r} must be TABULAR_CATEGORICAL; it is "
                                 f"{stats['encoding_type']}.")
            offset = 1 + int(stats["has_nan"])
            code_of = {c: i + offset for i, c in enumerate(stats["categories"])}
            unknown = [c for c in rebalancing.probabilities if c not in code_of]
            if unknown:
                raise ValueError(f"rebalancing probabilities name categories that column {rebalancing.column!r} "
                                 f"does not publish: {unknown}.")
            target = probs.setdefault(self._sub(rebalancing.column, "cat"), {})
            target.update({code_of[c]: float(p) for c, p in rebalancing.probabilities.items()})
        return probs

    def _column_order(self, seeded: list[str], rebalancing: RebalancingConfig | None,
                      imputation: ImputationConfig | None,
                      fairness: _fairness.FairnessPlan | None = None) -> list[int]:
        first = list(seeded)
        if rebalancing is not None and rebalancing.column not in first:
            first.append(rebalancing.column)
        last = [c for c in (imputation.columns if imputation else []) if c not in first]
        middle = [c for c in self.columns if c not in first and c not in last]
        names = first + middle + last if fairness is None else fairness.order(first + middle + last)
        order = [self._column_index[c] for c in names]
        step_model = self.model.step_model if self.bundle.is_sequential else self.model
        if not step_model.spec.flexible:
            training = step_model.training_order
            if order[: len(seeded)] != training[: len(seeded)]:
                raise ValueError(
                    "This model was trained with enable_flexible_generation=False, so seeded columns must be the "
                    f"first columns of the training order {list(self.columns)}; got {seeded}."
                )
            if fairness is not None:
                position = {c: training.index(self._column_index[c]) for c in self.columns}
                late = [c for c in fairness.table_sensitive if position[c] > position[fairness.target]]
                if late:
                    raise ValueError(
                        "This model was trained with enable_flexible_generation=False, so it generates columns in "
                        f"the training order {list(self.columns)}, where the sensitive columns {late} come after "
                        f"the fairness target {fairness.target!r}; fairness needs them first. Retrain with "
                        "enable_flexible_generation=True or pick other columns."
                    )
            return training
        return order

    def _derive(self, frame: pd.DataFrame, enabled: bool, *, fixed: list[str],
                rebalancing: RebalancingConfig | None, imputation: ImputationConfig | None,
                fairness: _fairness.FairnessPlan | None) -> None:
        """Set the derived columns of ``frame`` from their determinants, except columns the caller fixed (seeded,
        rebalanced, the fairness target and sensitive columns); imputed columns get no NULL from a map."""
        if not enabled or not self.derived:
            return
        kept = set(fixed)
        if rebalancing is not None:
            kept.add(rebalancing.column)
        if fairness is not None:
            kept.update([fairness.target, *fairness.table_sensitive])
        derive(frame, self.derived, self.columns, keep=kept,
               never_null=imputation.columns if imputation is not None else ())

    # -- inputs --------------------------------------------------------------------------------------------
    def _context(self, ctx_data: pd.DataFrame | None, sample_size: int | None, rng: np.random.Generator,
                 names: tuple[str, str]) -> tuple[pd.DataFrame | None, np.ndarray | None]:
        """The context rows to generate for (validated) and their codes; ``(None, None)`` without context."""
        ctx_stats = self.bundle.ctx_stats
        if ctx_stats is None:
            if ctx_data is not None:
                raise ValueError(f"{names[0]} is given, but this model was trained without a context table.")
            return None, None
        if ctx_data is None:
            raise ValueError("This model was trained with a context table; pass the context rows to generate for.")
        ctx_data = checked_context_rows(ctx_data, ctx_stats, sample_size, parameter=names[0],
                                        size_parameter=names[1])
        codes = encode_table(ctx_data, ctx_stats["columns"], table="ctx", rng=rng)
        names = [s for spec in column_specs(ctx_stats["columns"]) for s in spec.sub_columns]
        matrix = np.stack([codes[n] for n in names], axis=1) if names else np.zeros((len(ctx_data), 0), np.int64)
        return ctx_data, matrix

    def _seeds(self, seed_data: pd.DataFrame | None, ctx: pd.DataFrame | None) -> tuple[pd.DataFrame | None, list]:
        """Seed rows aligned with the rows to generate, and the seeded columns."""
        if seed_data is None:
            return None, []
        if not isinstance(seed_data, pd.DataFrame):
            raise TypeError(f"seed_data must be a pandas DataFrame; got {type(seed_data).__name__} instead.")
        aligned = aligned_seeds(seed_data, ctx, self.bundle, self.columns)
        return aligned, [c for c in self.columns if c in seed_data.columns]

    # -- generation ------------------------------------------------------------------------------------
    def generate(
        self,
        *,
        sample_size: int | None = None,
        ctx_data: pd.DataFrame | None = None,
        seed_data: pd.DataFrame | None = None,
        batch_size: int | None = None,
        sampling_temperature: float = 1.0,
        sampling_top_p: float = 1.0,
        rare_category_replacement_method: RareCategoryReplacementMethod | str | None = None,
        rebalancing: RebalancingConfig | dict | None = None,
        imputation: ImputationConfig | dict | None = None,
        fairness: FairnessConfig | dict | None = None,
        marginal_calibration: bool = True,
        derived_columns: bool = True,
        rng: np.random.Generator,
        ctx_parameter: str = "ctx_data",
        size_parameter: str = "sample_size",
    ) -> Iterator[pd.DataFrame]:
        """Yield batches of generated rows (columns in the original order, dtypes restored).

        The options are validated by the callers (``generate``, ``TabularSynthesizer.sample``). No rows to
        generate (``sample_size=0``, no context rows) yield one empty frame of the output columns and dtypes.
        ``marginal_calibration=False`` draws flat rows without the model's calibration offsets;
        ``derived_columns=False`` leaves the columns that are exact functions of another as the model drew them.
        ``ctx_parameter`` and ``size_parameter`` are the caller's names of ``ctx_data`` and ``sample_size``
        (``context`` and ``n_samples`` of the estimators' ``sample``), used in the errors about them.
        """
        rare_method = RareCategoryReplacementMethod.parse(
            rare_category_replacement_method or RareCategoryReplacementMethod.SAMPLE,
            name="rare_category_replacement_method")
        rebalancing = RebalancingConfig.coerce(rebalancing, name="rebalancing")
        imputation = ImputationConfig.coerce(imputation, name="imputation")
        fairness = FairnessConfig.coerce(fairness, name="fairness")
        ctx_columns = self.bundle.ctx_stats["columns"] if self.bundle.ctx_stats is not None else None
        if (sample_size == 0 or (ctx_data is not None and len(ctx_data) == 0)) and seed_data is None:
            self._fixed_probs(rare_method, imputation, rebalancing)  # still reject columns the model lacks
            _fairness.plan_fairness(fairness, self.columns, ctx_columns, seeded=[])
            yield self.empty_frame()
            return
        stats = self.bundle.stats
        keys = stats["keys"]
        if self.bundle.is_sequential:
            plan = _fairness.plan_fairness(fairness, self.columns, ctx_columns, seeded=[])
            ctx, ctx_codes = self._context(ctx_data, sample_size, rng, (ctx_parameter, size_parameter))
            yield from self._generate_sequences(
                ctx, ctx_codes, seed_data, batch_size=batch_size, temperature=sampling_temperature,
                top_p=sampling_top_p, fixed_probs=self._fixed_probs(rare_method, imputation, rebalancing),
                rebalancing=rebalancing, imputation=imputation, fairness=plan, rng=rng,
                calibrate=marginal_calibration, derive_columns=derived_columns)
            return
        ctx, ctx_codes = self._context(ctx_data, sample_size, rng, (ctx_parameter, size_parameter))
        seed_data, seeded = self._seeds(seed_data, ctx)
        plan = _fairness.plan_fairness(fairness, self.columns, ctx_columns, seeded=seeded)
        if ctx is not None:
            n = len(ctx)
        elif seed_data is not None:
            if sample_size is not None and sample_size != len(seed_data):
                raise ValueError(f"{size_parameter} ({sample_size}) must equal the number of seed_data rows "
                                 f"({len(seed_data)}) or be None.")
            n = len(seed_data)
        else:
            n = stats["no_of_training_records"] + stats["no_of_validation_records"] if sample_size is None else (
                int(sample_size))

        fixed_probs = self._fixed_probs(rare_method, imputation, rebalancing)
        order = self._column_order(seeded, rebalancing, imputation, plan)
        seed_codes = (encode_table(seed_data, {c: self.columns[c] for c in seeded}, table="seed", rng=rng)
                      if seeded else {})
        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(rng))
        calibrated = None  # the biases of batches too small to fit their own
        target_last = plan is not None and order[-1] == self._column_index[plan.target]
        chunk = batch_size or DEFAULT_GENERATION_BATCH
        output_order = [c for c in stats.get("column_order", list(self.columns))
                        if c in self.columns or c in keys.values()]
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            fixed = {self._sub_index[name]: torch.as_tensor(codes[start:start + m].astype(np.int64),
                                                            device=self.device)
                     for name, codes in seed_codes.items()}
            context = (None if ctx_codes is None else
                       torch.as_tensor(ctx_codes[start:start + m].astype(np.int64), device=self.device))
            tilt = None
            if plan is not None and target_last and m >= _fairness.CALIBRATION_ROWS[0]:
                tilt = plan.tilt("defer")  # biases fitted on this batch's own rows
            elif plan is not None:
                if calibrated is None:
                    calibrated = _fairness.calibrate_flat(
                        self.model, plan, n, order=order,
                        seed_codes={self._sub_index[name]: codes for name, codes in seed_codes.items()},
                        ctx_codes=ctx_codes, fixed_probs=fixed_probs, temperature=sampling_temperature,
                        top_p=sampling_top_p, generator=generator, rng=rng, device=self.device,
                        calibrated=marginal_calibration)
                tilt = calibrated
            with torch.no_grad():
                codes = self.model.sample(m, context_codes=context, fixed_codes=fixed or None, column_order=order,
                                          temperature=sampling_temperature, top_p=sampling_top_p,
                                          fixed_probs=fixed_probs or None, generator=generator,
                                          batch_size=min(m, batch_size or _SAMPLING_BATCH), tilt=tilt,
                                          calibrated=marginal_calibration)
            if tilt is not None and tilt.mode == "defer" and start == 0:
                _fairness.check_parity(tilt, plan)
            matrix = codes.cpu().numpy()
            frame = decode_table({name: matrix[:, i] for i, name in enumerate(self._sub_names)}, self.columns,
                                 rng=rng)
            for column in seeded:
                frame[column] = _seed_like(seed_data[column].iloc[start:start + m].reset_index(drop=True),
                                           frame[column])
            self._derive(frame, derived_columns, fixed=seeded, rebalancing=rebalancing, imputation=imputation,
                         fairness=plan)
            if ctx is not None:
                frame[keys["context_key"]] = ctx[self.bundle.ctx_stats["keys"]["primary_key"]].iloc[
                    start:start + m].to_numpy()
            if "primary_key" in keys:
                key = keys["primary_key"]
                if seed_data is not None and key in seed_data.columns:
                    frame[key] = seed_data[key].iloc[start:start + m].to_numpy()
                else:
                    frame[key] = _generated_keys(start, m, stats["key_dtypes"][key])
            yield frame[output_order]

    def empty_frame(self) -> pd.DataFrame:
        """No rows, with the columns and dtypes of generated data."""
        stats = self.bundle.stats
        codes = {name: np.zeros(0, dtype=np.int64) for name in self._sub_names}
        sequence = SequenceIndex(np.zeros(0, dtype=np.int64)) if self.bundle.is_sequential else None
        frame = decode_table(codes, self.columns, rng=np.random.default_rng(0), sequence=sequence)
        for key in stats["keys"].values():
            frame[key] = pd.Series([], dtype=object).astype(pd.api.types.pandas_dtype(stats["key_dtypes"][key]))
        return frame[[c for c in stats.get("column_order", list(self.columns)) if c in frame.columns]]

    # -- sequences -------------------------------------------------------------------------------------
    def _sequence_seeds(self, seed_data: pd.DataFrame | None, ctx: pd.DataFrame, rng: np.random.Generator):
        """Seed prefixes: rows sorted by subject (context order), their subject positions and codes."""
        if seed_data is None:
            return None, None, None
        if not isinstance(seed_data, pd.DataFrame):
            raise TypeError(f"seed_data must be a pandas DataFrame; got {type(seed_data).__name__} instead.")
        context_key = self.bundle.stats["keys"]["context_key"]
        ctx_key = self.bundle.ctx_stats["keys"]["primary_key"]
        missing = [c for c in [context_key, *self.columns] if c not in seed_data.columns]
        if missing:
            raise ValueError(f"seed_data of a sequential model holds whole rows (a prefix of each sequence) and "
                             f"its context key; it lacks the columns {missing}.")
        position = pd.Index(ctx[ctx_key]).get_indexer(seed_data[context_key])
        if (position < 0).any():
            example = seed_data[context_key][position < 0].iloc[0]
            raise ValueError(f"seed_data has context keys that are not among the context rows to generate, "
                             f"e.g. {example!r}.")
        order = np.argsort(position, kind="stable")
        seeds = seed_data.iloc[order].reset_index(drop=True)
        position = position[order]
        codes = encode_table(seeds, self.columns, table="seed", rng=rng, sequence=SequenceIndex(position))
        matrix = np.stack([codes[n] for n in self._sub_names], axis=1).astype(np.int64)
        return seeds, position, matrix

    def _generate_sequences(self, ctx, ctx_codes, seed_data, *, batch_size, temperature, top_p, fixed_probs,
                            rebalancing, imputation, fairness, rng, calibrate=True,
                            derive_columns=True) -> Iterator[pd.DataFrame]:
        stats, ctx_stats = self.bundle.stats, self.bundle.ctx_stats
        keys = stats["keys"]
        context_key, ctx_key = keys["context_key"], ctx_stats["keys"]["primary_key"]
        seeds, seed_subject, seed_matrix = self._sequence_seeds(seed_data, ctx, rng)
        n = len(ctx)
        seed_lengths = np.bincount(seed_subject, minlength=n) if seeds is not None else None
        seed_offsets = np.concatenate([[0], np.cumsum(seed_lengths)]) if seeds is not None else None
        order = self._column_order([], rebalancing, imputation, fairness)
        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(rng))
        calibrated = None  # the biases of batches too small to fit their own
        chunk = self._subjects_per_batch(batch_size)
        output_order = [c for c in stats.get("column_order", list(self.columns))
                        if c in self.columns or c in keys.values()]
        next_key = 0
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            context = torch.as_tensor(ctx_codes[start:stop].astype(np.int64), device=self.device)
            seed_kwargs = {}
            if seeds is not None:
                rows = slice(seed_offsets[start], seed_offsets[stop])
                seed_kwargs = {"seed_steps": torch.as_tensor(seed_matrix[rows], device=self.device),
                               "seed_lengths": torch.as_tensor(seed_lengths[start:stop], device=self.device)}
            tilt = None
            if fairness is not None and stop - start >= _fairness.CALIBRATION_SUBJECTS:
                tilt = fairness.tilt()  # biases fitted step by step on this batch's own rows
            elif fairness is not None:
                if calibrated is None:
                    calibrated = _fairness.calibrate_sequential(
                        self.model, fairness, ctx_codes, order=order,
                        seeds=None if seeds is None else (seed_lengths, seed_matrix), fixed_probs=fixed_probs,
                        temperature=temperature, top_p=top_p, generator=generator, rng=rng, device=self.device,
                        calibrated=calibrate)
                tilt = calibrated
            with torch.no_grad():
                lengths, codes = self.model.sample(context, column_order=order, temperature=temperature,
                                                   top_p=top_p, fixed_probs=fixed_probs or None,
                                                   generator=generator, tilt=tilt, calibrated=calibrate,
                                                   **seed_kwargs)
            if tilt is not None and tilt.mode == "calibrate" and start == 0:
                _fairness.check_parity(tilt, fairness)
            lengths, matrix = lengths.cpu().numpy(), codes.cpu().numpy()
            subject = np.repeat(np.arange(stop - start), lengths)
            frame = decode_table({name: matrix[:, i] for i, name in enumerate(self._sub_names)}, self.columns,
                                 rng=rng, sequence=SequenceIndex(subject))
            frame[context_key] = np.repeat(ctx[ctx_key].iloc[start:stop].to_numpy(), lengths)
            # before the seed rows are written back: those are kept verbatim, derived columns included
            self._derive(frame, derive_columns, fixed=[], rebalancing=rebalancing, imputation=imputation,
                         fairness=fairness)
            if seeds is not None:
                self._restore_seed_prefixes(frame, seeds, seed_offsets, seed_lengths, lengths, start, stop)
            if "primary_key" in keys:
                key = keys["primary_key"]
                frame[key] = _generated_keys(next_key, len(frame), stats["key_dtypes"][key])
                next_key += len(frame)
            yield frame[output_order]

    def _restore_seed_prefixes(self, frame, seeds, seed_offsets, seed_lengths, lengths, start, stop) -> None:
        """Write the seed rows back verbatim over the first steps of their sequences."""
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        rows = slice(seed_offsets[start], seed_offsets[stop])
        batch_seed_lengths = seed_lengths[start:stop]
        subject = np.repeat(np.arange(stop - start), batch_seed_lengths)
        rank = np.arange(len(subject)) - np.repeat(offsets_of(batch_seed_lengths), batch_seed_lengths)
        destination = offsets[subject] + rank
        for column in self.columns:
            values = seeds[column].iloc[rows].reset_index(drop=True)
            merged = frame[column].to_numpy(dtype=object, copy=True)
            merged[destination] = values.astype(object).to_numpy()
            frame[column] = _seed_like(pd.Series(merged), frame[column])


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    """Start index of each run of ``lengths`` rows."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, dtype=np.int64)
