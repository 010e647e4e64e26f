"""Generation of LANGUAGE tables from a :class:`LanguageBundle`, streamed in batches of decoded DataFrames.

Shared by the engine's ``generate`` and ``LanguageSynthesizer.sample``. Every value is valid by construction
(the constrained sampling loop of :mod:`synthgen.models.language`): categories among the published ones,
numbers and datetimes within the published ranges, text valid UTF-8 of bounded length. Seeded columns are
fed to the model in their place in the record and returned verbatim; each record is conditioned on its
context row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._dtypes import holds_text, restore_dtype
from .._seeding import derive_seed
from .._threads import resolve_n_threads, step_work
from ..column_encodings._common import RARE_TOKEN
from ..domain import (
    FairnessConfig,
    ImputationConfig,
    ModelEncodingType,
    RareCategoryReplacementMethod,
    RebalancingConfig,
)
from ._context_rows import checked_context_rows
from ._generation import _generated_keys, _seed_like, aligned_seeds, planned_rows
from ._language import forced_nulls, prompt_values, record_fields
from ._language_model import LanguageBundle

__all__ = ["LanguageGenerator"]

# Rows per yielded frame (and per parquet part of ``generate``), and rows per model batch by model kind.
DEFAULT_PART_ROWS = 10_000
# The LSTM's: 512 rows per batch sampled 1.6x more rows per CPU second than 128 (one thread, tweets).
DEFAULT_MODEL_BATCH = {"lstm": 512, "hf": 64}


class LanguageGenerator:
    """Samples records of a LANGUAGE table, with seeds and context rows."""

    def __init__(self, bundle: LanguageBundle, device: torch.device):
        self.bundle = bundle
        self.device = device
        self.tokenizer = bundle.build_tokenizer()
        self.model = bundle.build_model(device, self.tokenizer.vocab_size)
        self.columns: dict[str, dict[str, Any]] = bundle.stats["columns"]

    def _model_batch(self, batch_size: int | None) -> int:
        return batch_size or DEFAULT_MODEL_BATCH[self.bundle.model_config["model_kind"]]

    def n_threads_for(self, n_threads: int | None, batch_size: int | None = None) -> int:
        """The torch thread count to generate with: ``n_threads``, or the automatic choice for a batch."""
        return resolve_n_threads(n_threads, device=self.device, work=step_work(self.model,
                                                                                self._model_batch(batch_size)))

    def plan(self, sample_size: int | None, ctx_data, seed_data, batch_size: int | None) -> tuple[int, int, str]:
        """``(total, per_batch, unit)`` of a generation, for progress (estimates; :meth:`generate` validates)."""
        n = planned_rows(self.bundle.stats, sample_size, ctx_data, seed_data)
        return n, max(batch_size or DEFAULT_PART_ROWS, 1), "rows"

    def _check_columns(self, names, parameter: str) -> None:
        unknown = [c for c in names if c not in self.columns]
        if unknown:
            raise ValueError(f"{parameter} names columns the model does not know: {unknown}; "
                             f"known columns are {list(self.columns)}.")

    def _context(self, ctx_data: pd.DataFrame | None, sample_size: int | None,
                 names: tuple[str, str]) -> pd.DataFrame | None:
        ctx_stats = self.bundle.ctx_stats
        if ctx_stats is None:
            if ctx_data is not None:
                raise ValueError(f"{names[0]} is given, but this model was trained without a context table.")
            return None
        if ctx_data is None:
            raise ValueError("This model was trained with a context table; pass the context rows to generate for.")
        return checked_context_rows(ctx_data, ctx_stats, sample_size, parameter=names[0], size_parameter=names[1])

    def _seeds(self, seed_data: pd.DataFrame | None, ctx: pd.DataFrame | None) -> pd.DataFrame | None:
        if seed_data is None:
            return None
        return aligned_seeds(seed_data, ctx, self.bundle, self.columns)

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
        rng: np.random.Generator,
        ctx_parameter: str = "ctx_data",
        size_parameter: str = "sample_size",
    ) -> Iterator[pd.DataFrame]:
        """Yield batches of generated rows (columns in the original order, dtypes restored).

        ``rebalancing`` and ``fairness`` apply to TABULAR models only and must be None. ``imputation`` names
        columns that are never generated as NULL. ``ctx_parameter`` and ``size_parameter`` are the caller's names
        of ``ctx_data`` and ``sample_size`` (``context`` and ``n_samples`` of the estimators' ``sample``), used in
        the errors about them.
        """
        for name, value in (("rebalancing", rebalancing), ("fairness", fairness)):
            if value is not None:
                raise ValueError(f"{name} is only applicable to TABULAR models; this is a LANGUAGE model. "
                                 "Pass None.")
        rare_method = RareCategoryReplacementMethod.parse(
            rare_category_replacement_method or RareCategoryReplacementMethod.SAMPLE,
            name="rare_category_replacement_method")
        imputation = ImputationConfig.coerce(imputation, name="imputation")
        imputed = list(imputation.columns) if imputation is not None else []
        self._check_columns(imputed, "imputation")
        if (sample_size == 0 or (ctx_data is not None and len(ctx_data) == 0)) and seed_data is None:
            yield self.empty_frame()
            return
        stats = self.bundle.stats
        keys = stats["keys"]
        ctx = self._context(ctx_data, sample_size, (ctx_parameter, size_parameter))
        seeds = self._seeds(seed_data, ctx)
        if ctx is not None:
            n = len(ctx)
        elif seeds is not None:
            if sample_size is not None and sample_size != len(seeds):
                raise ValueError(f"{size_parameter} ({sample_size}) must equal the number of seed_data rows "
                                 f"({len(seeds)}) or be None.")
            n = len(seeds)
        else:
            n = stats["no_of_training_records"] + stats["no_of_validation_records"] if sample_size is None else (
                int(sample_size))
        seeded = [c for c in self.columns if seeds is not None and c in seeds.columns]
        fields = record_fields(self.columns, self.bundle.model_config["max_tokens"], rare_method=rare_method,
                               imputed=imputed)
        forced = forced_nulls(self.columns, rare_method, n)
        prompts_ctx = prompt_values(ctx, self.bundle.ctx_stats, rng) if ctx is not None else {}
        from ..models.language import encode_prompts, sample_records

        generator = torch.Generator(device=self.device)
        generator.manual_seed(derive_seed(rng))
        model_batch = self._model_batch(batch_size)
        chunk = max(batch_size or DEFAULT_PART_ROWS, 1)
        output_order = [c for c in stats.get("column_order", list(self.columns))
                        if c in self.columns or c in keys.values()]
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            rows = slice(start, stop)
            prompts = encode_prompts(self.tokenizer, {c: v[rows] for c, v in prompts_ctx.items()}, stop - start)
            seed_values = {c: v[rows] for c, v in forced.items()}
            for column in seeded:
                seed_values[column] = seeds[column].iloc[rows].astype(object).tolist()
            out = sample_records(self.model, self.tokenizer, fields, prompts, seeds=seed_values,
                                 temperature=sampling_temperature, top_p=sampling_top_p, batch_size=model_batch,
                                 generator=generator, device=self.device)
            frame = pd.DataFrame({column: self._decode(column, out[column]) for column in self.columns})
            for column in seeded:
                frame[column] = _seed_like(seeds[column].iloc[rows].reset_index(drop=True), frame[column])
            if ctx is not None:
                frame[keys["context_key"]] = ctx[self.bundle.ctx_stats["keys"]["primary_key"]].iloc[rows].to_numpy()
            if "primary_key" in keys:
                key = keys["primary_key"]
                if seeds is not None and key in seeds.columns:
                    frame[key] = seeds[key].iloc[rows].to_numpy()
                else:
                    frame[key] = _generated_keys(start, stop - start, stats["key_dtypes"][key])
            yield frame[output_order]

    def _decode(self, column: str, values: list) -> pd.Series:
        stats = self.columns[column]
        kind = stats["encoding_type"]
        if kind == ModelEncodingType.LANGUAGE_CATEGORICAL.value and not holds_text(stats["dtype"]):
            values = [None if v == RARE_TOKEN else v for v in values]  # _RARE_ is no value of a bool column
        if kind == ModelEncodingType.LANGUAGE_TEXT.value:
            # a token holds several characters: the published length bounds the text exactly
            values = [v[: stats["nchar_max"]] if isinstance(v, str) else None for v in values]
        if kind == ModelEncodingType.LANGUAGE_NUMERIC.value:
            series = pd.Series(values, dtype="float64")
        elif kind == ModelEncodingType.LANGUAGE_DATETIME.value:
            series = pd.Series(pd.to_datetime(pd.Series(values, dtype=object)), dtype="datetime64[us]")
        else:
            series = pd.Series(values, dtype=object)
        return restore_dtype(series.rename(column), stats["dtype"])

    def empty_frame(self) -> pd.DataFrame:
        """No rows, with the columns and dtypes of generated data."""
        stats = self.bundle.stats
        frame = pd.DataFrame({column: self._decode(column, []) for column in self.columns})
        for key in stats["keys"].values():
            frame[key] = pd.Series([], dtype=object).astype(pd.api.types.pandas_dtype(stats["key_dtypes"][key]))
        return frame[[c for c in stats.get("column_order", list(self.columns)) if c in frame.columns]]
