"""``sample_to_parquet`` of both synthesizers: the checks before any partition runs, the partition plan and the
job (see :mod:`synthgen.stages._partitioned`, which generates with whichever generator the model needs)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.utils.validation import check_is_fitted

from .._options import validate, validate_all
from .._progress import ProgressReporter
from .._seeding import as_generator, derive_seed
from ..stages._context_rows import checked_context_rows
from ..stages._partitioned import (
    GenerationJob,
    block_size_for,
    check_client,
    plan_partitions,
    prepare_folder,
    run_partitions,
)

__all__ = ["_ParquetSamplingMixin"]


class _ParquetSamplingMixin:
    """Generation in partitions written as parquet parts; goes left of ``BaseEstimator``.

    A subclass sets ``_parquet_sample_options`` (the keywords of its ``sample`` that ``sample_to_parquet``
    passes on, with their defaults) and defines a public ``sample_to_parquet`` (its own docstring) that calls
    :meth:`_sample_to_parquet`.
    """

    _parquet_sample_options: dict[str, Any]

    def _sample_to_parquet(self, path: str | os.PathLike, n_samples: int | None, *, n_partitions: int | None,
                           client, n_jobs: int | None, sample_options: dict[str, Any]) -> Path:
        check_is_fitted(self)
        owner = f"{type(self).__name__}.sample_to_parquet"
        accepted = self._parquet_sample_options
        unknown = sorted(set(sample_options) - set(accepted))
        if unknown:
            raise TypeError(f"{owner}() got unexpected keyword argument(s) {unknown}; it takes the keywords of "
                            f"sample() except return_context: {list(accepted)}.")
        options = {name: sample_options.get(name, default) for name, default in accepted.items()}
        validate_all(owner, {"path": path, "n_samples": n_samples, "n_jobs": n_jobs, **options}, estimator=True)
        if n_partitions is not None:
            validate("n_partitions", n_partitions, owner, estimator=True)
        check_client(client, owner)
        self._refuse_in_parts(owner)
        context, seed_data = options.pop("context"), options.pop("seed_data")
        device, random_state = options.pop("device"), options.pop("random_state")
        two_table = self._bundle.ctx_stats is not None
        n_units, context = self._units_to_generate(owner, n_samples, context, seed_data)
        block_size = block_size_for(self._bundle, options["batch_size"])
        specs = plan_partitions(n_units, block_size, n_partitions, owner=owner, context=context,
                                seed_data=seed_data)
        folder = prepare_folder(path, owner=owner, two_table=two_table)
        rng = as_generator(random_state if random_state is not None else self.random_state)
        device = device if device is not None else self.device
        job = GenerationJob.create(
            self._bundle, self._context_model if two_table else None, entropy=derive_seed(rng),
            block_size=block_size, options=options, device=None if device is None else str(device),
            n_threads=self.n_threads or 1, folder=os.fspath(folder))
        unit = "entities" if two_table else "rows"
        with ProgressReporter(n_units, description="generate", verbose=self.verbose, unit=unit) as progress:
            run_partitions(job, specs, client=client, n_jobs=n_jobs,
                           on_done=lambda rows: progress.update(rows.get("context", rows["target"])))
        return folder

    def _refuse_in_parts(self, owner: str) -> None:
        """Refuse, before anything is written, what a model cannot generate in parts (nothing by default)."""

    def _units_to_generate(self, owner: str, n_samples: int | None, context,
                           seed_data) -> tuple[int, pd.DataFrame | None]:
        """Rows (entities of a two-table model) to generate and the checked ``context`` rows they are for;
        refuses inputs that do not fit the model."""
        if self._bundle.ctx_stats is None:
            if context is not None:
                raise ValueError("context is given, but this model was trained without a context table.")
            if seed_data is not None:
                if n_samples is not None and n_samples != len(seed_data):
                    raise ValueError(f"n_samples ({n_samples}) must equal the number of seed_data rows "
                                     f"({len(seed_data)}) or be None.")
                return len(seed_data), None
            stats = self._bundle.stats
            return (stats["no_of_training_records"] + stats["no_of_validation_records"] if n_samples is None
                    else int(n_samples)), None
        if seed_data is not None:
            raise ValueError(f"seed_data is not supported by {owner} for two-table models; use sample().")
        if context is not None:
            context = checked_context_rows(context, self._bundle.ctx_stats, n_samples, parameter="context",
                                           size_parameter="n_samples")
            return len(context), context
        self._require_context_model()
        if n_samples is not None:
            return int(n_samples), None
        stats = self._context_model.stats
        return int(stats["no_of_training_records"] + stats["no_of_validation_records"]), None
