"""Generation in partitions written as parquet parts, on local processes (joblib) or a Dask cluster, for
tabular models (:class:`TabularGenerator`) and language models (:class:`LanguageGenerator`) alike.

The rows (the entities of a two-table model) are cut into *blocks* of ``batch_size`` rows (entities); block
``b`` is generated with its own random generator, ``SeedSequence(entropy, spawn_key=(b,))``, the ``b``-th child
of the root seed that ``random_state`` gives. A partition is a run of whole blocks and writes one parquet file,
block by block (one row group each), so its memory is that of one block. Everything a partition does is a pure
function of (model bytes, its blocks, the root seed, its slice of ``context`` / ``seed_data``): the output is
the same whichever backend runs it, on however many workers, and however many partitions the blocks are
grouped into. Synthetic keys are offsets of the global row (entity) index, so they are unique across partitions:
a flat table's keys and a synthetic context's keys count up from 0 as in ``sample``; a sequence's rows get
``entity * max_len + step`` (``max_len`` the longest training sequence), unique but not consecutive; a language
model's record (one per entity) gets the entity's index.

A two-table model writes ``context/part.NNNNNN.parquet`` (the entities: synthetic ones, or the slice of the
given context table) and ``target/part.NNNNNN.parquet`` (their sequences or records, whole in the same part
number).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._device import resolve_device
from .._dtypes import restore_dtype
from .._threads import torch_threads
from ._generation import DEFAULT_GENERATION_BATCH, SEQUENCE_GENERATION_ROWS, TabularGenerator, _generated_keys
from ._language_generation import DEFAULT_PART_ROWS, LanguageGenerator
from ._language_model import LanguageBundle

__all__ = ["GenerationJob", "PartitionSpec", "plan_partitions", "prepare_folder", "run_partitions",
           "synthetic_context", "write_partition"]

PART_NAME = "part.{:06d}.parquet"


@attrs.frozen(eq=False)
class GenerationJob:
    """What every partition shares: the pickled models, the generation options and the root seed.

    Attributes
    ----------
    model_bytes : bytes
        ``pickle`` of ``(bundle, context_model)`` (``context_model`` None for a flat model).
    token : str
        The SHA-256 of ``model_bytes``: a worker builds the networks once per token.
    entropy : int
        The root seed; block ``b`` draws from ``SeedSequence(entropy, spawn_key=(b,))``.
    block_size : int
        Rows (flat) or entities (two-table) per block.
    options : dict
        Keyword arguments of ``TabularGenerator.generate`` (temperature, top-p, rare categories, ...).
    device : str or None
        Where each worker generates (resolved on the worker: CUDA when available unless a device is named).
    n_threads : int
        torch threads of each worker (fixed, so the floating-point path and hence the rows do not depend on
        the machine's load).
    folder : str
        The output folder (shared by all workers).
    """

    model_bytes: bytes
    token: str
    entropy: int
    block_size: int
    options: dict[str, Any]
    device: str | None
    n_threads: int
    folder: str

    @classmethod
    def create(cls, bundle, context_model, **fields) -> GenerationJob:
        """A job for ``bundle`` (and the ``context_model`` of a two-table model); ``fields`` as the attributes."""
        data = pickle.dumps((bundle, context_model), protocol=pickle.HIGHEST_PROTOCOL)
        return cls(model_bytes=data, token=hashlib.sha256(data).hexdigest(), **fields)


@attrs.frozen(eq=False)
class PartitionSpec:
    """One partition: its index, its blocks ``[first_block, stop_block)`` of units ``[start, stop)``, and its
    slices of the given ``context`` and ``seed_data`` (None when not given)."""

    index: int
    first_block: int
    stop_block: int
    start: int
    stop: int
    context: pd.DataFrame | None = None
    seed_data: pd.DataFrame | None = None


# -- planning (in the caller) ------------------------------------------------------------------------------

def block_size_for(bundle, batch_size: int | None) -> int:
    """Rows (flat) or entities (two-table) per block: ``batch_size``, or as many as one generation batch."""
    if isinstance(bundle, LanguageBundle):  # one record per row (entity), generated in chunks of batch_size
        return int(batch_size or DEFAULT_PART_ROWS)
    if bundle.ctx_stats is None:
        return int(batch_size or DEFAULT_GENERATION_BATCH)
    rows_per_subject = max(1, int(bundle.stats["seq_len"]["median"])) if bundle.is_sequential else 1
    return max(1, (batch_size or SEQUENCE_GENERATION_ROWS) // rows_per_subject)


def plan_partitions(n_units: int, block_size: int, n_partitions: int | None, *, owner: str,
                    context: pd.DataFrame | None = None,
                    seed_data: pd.DataFrame | None = None) -> list[PartitionSpec]:
    """Whole blocks grouped into ``n_partitions`` runs of nearly equal length (default: one block each).

    Raises
    ------
    ValueError
        ``n_partitions`` exceeds the number of blocks.
    """
    n_blocks = max(1, math.ceil(n_units / block_size))
    if n_partitions is None:
        n_partitions = n_blocks
    if n_partitions > n_blocks:
        raise ValueError(
            f"The 'n_partitions' parameter of {owner} ({n_partitions}) exceeds the {n_blocks} block(s) of "
            f"{block_size} that {n_units} rows (entities) make: a partition holds whole blocks of batch_size. "
            f"Pass batch_size={max(1, n_units // n_partitions)} or less, or fewer partitions.")
    specs = []
    for index in range(n_partitions):
        first, stop = index * n_blocks // n_partitions, (index + 1) * n_blocks // n_partitions
        start, end = min(n_units, first * block_size), min(n_units, stop * block_size)
        specs.append(PartitionSpec(
            index=index, first_block=first, stop_block=stop, start=start, stop=end,
            context=None if context is None else context.iloc[start:end],
            seed_data=None if seed_data is None else seed_data.iloc[start:end]))
    return specs


def prepare_folder(path: str | os.PathLike, *, owner: str, two_table: bool) -> Path:
    """Create the output folder; an existing one must be empty (parts of another run would mix in)."""
    folder = Path(path)
    if folder.exists():
        if not folder.is_dir():
            raise ValueError(f"The 'path' parameter of {owner} must name a folder; {str(folder)!r} is a file.")
        if any(folder.iterdir()):
            raise ValueError(f"The 'path' parameter of {owner} must name a new or empty folder; {str(folder)!r} "
                             "holds files (parts of another run would mix in).")
    for sub in (("context", "target") if two_table else ("",)):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


# -- the partition (on a worker) ---------------------------------------------------------------------------

_CACHE: dict[str, tuple] = {}
_CACHE_LOCK = threading.Lock()


def _generator_of(bundle, device) -> TabularGenerator | LanguageGenerator:
    """The generator of a tabular (:class:`ModelBundle`) or language (:class:`LanguageBundle`) model."""
    return (LanguageGenerator if isinstance(bundle, LanguageBundle) else TabularGenerator)(bundle, device)


def _cached_models(job: GenerationJob) -> tuple[TabularGenerator | LanguageGenerator, TabularGenerator | None, Any]:
    """The target generator, the context generator and the context model of ``job``, built once per worker
    (one model at a time: a worker serves one generation)."""
    with _CACHE_LOCK:
        key = (job.token, str(job.device))
        if key not in _CACHE:
            bundle, context_model = pickle.loads(job.model_bytes)  # noqa: S301 - bytes the caller pickled
            device = resolve_device(job.device)
            target = _generator_of(bundle, device)
            context = None
            if context_model is not None and context_model.bundle is not None:
                context = TabularGenerator(context_model.bundle, device)
            _CACHE.clear()
            _CACHE[key] = (target, context, context_model)
        return _CACHE[key]


def block_rng(entropy: int, block: int) -> np.random.Generator:
    """The random generator of block ``block``: the ``block``-th child of the root seed."""
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(block,)))


def synthetic_context(context_model, generator: TabularGenerator | None, n: int, start: int, *,
                      rng: np.random.Generator, batch_size: int | None = None, sampling_temperature: float = 1.0,
                      sampling_top_p: float = 1.0, rare_category_replacement_method=None,
                      derived_columns: bool = True) -> pd.DataFrame:
    """``n`` synthetic context rows with the primary keys of entities ``start .. start + n - 1``."""
    stats = context_model.stats
    key = stats["keys"]["primary_key"]
    key_dtype = stats["key_dtypes"][key]
    if generator is None:  # a context of keys only
        frame = pd.DataFrame({key: _generated_keys(start, n, key_dtype)})
    else:
        frames = list(generator.generate(
            sample_size=n, batch_size=batch_size, sampling_temperature=sampling_temperature,
            sampling_top_p=sampling_top_p, rare_category_replacement_method=rare_category_replacement_method,
            derived_columns=derived_columns, rng=rng))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        frame[key] = _generated_keys(start, len(frame), key_dtype)
    keys = restore_dtype(frame[key], key_dtype)
    if keys.notna().all():  # generated keys are ints or strings; keep them as such where the dtype cannot
        frame[key] = keys
    return frame


class _PartWriter:
    """One parquet file written row group by row group, under a hidden name until it is complete."""

    def __init__(self, path: Path, empty: pd.DataFrame) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")  # hidden: readers skip files starting with "."
        self.empty = empty
        self.schema = pa.Schema.from_pandas(empty, preserve_index=False)
        self.writer = pq.ParquetWriter(self.tmp, self.schema)
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        self.writer.write_table(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        self.rows += len(frame)

    def close(self) -> int:
        if self.rows == 0:  # an empty part still carries the columns and dtypes
            self.write(self.empty)
        self.writer.close()
        os.replace(self.tmp, self.path)
        return self.rows


def _sequence_keys(frame: pd.DataFrame, ctx_keys: pd.Series, context_key: str, first_entity: int,
                   max_len: int, dtype: str):
    """``entity * max_len + step`` for the rows of a block's sequences (grouped by entity, in context order)."""
    entity = pd.Index(ctx_keys).get_indexer(frame[context_key])
    n = len(entity)
    starts = np.flatnonzero(np.r_[True, entity[1:] != entity[:-1]]) if n else np.zeros(0, dtype=np.int64)
    step = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    if n and step.max() >= max_len:
        raise RuntimeError(f"A generated sequence has {step.max() + 1} rows, more than the {max_len} that keys "
                           "are reserved for.")
    values = (first_entity + entity) * max_len + step
    if pd.api.types.is_integer_dtype(pd.api.types.pandas_dtype(dtype)):
        return values
    return [f"syn-{v:010d}" for v in values]


def _flat_blocks(job: GenerationJob, spec: PartitionSpec,
                 target: TabularGenerator | LanguageGenerator) -> Iterator[pd.DataFrame]:
    stats = target.bundle.stats
    key = stats["keys"].get("primary_key")
    for block in range(spec.first_block, spec.stop_block):
        start = block * job.block_size
        m = min(job.block_size, spec.stop - start)
        local = slice(start - spec.start, start - spec.start + m)
        seeds = None if spec.seed_data is None else spec.seed_data.iloc[local]
        offset = start
        for frame in target.generate(sample_size=None if seeds is not None else m, seed_data=seeds,
                                     rng=block_rng(job.entropy, block), **job.options):
            if key is not None and (seeds is None or key not in seeds.columns):
                frame[key] = _generated_keys(offset, len(frame), stats["key_dtypes"][key])
            offset += len(frame)
            yield frame


def _two_table_blocks(job: GenerationJob, spec: PartitionSpec, target: TabularGenerator | LanguageGenerator,
                      context_generator, context_model) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
    stats, ctx_stats = target.bundle.stats, target.bundle.ctx_stats
    keys = stats["keys"]
    ctx_key = ctx_stats["keys"]["primary_key"]
    one_record_per_entity = isinstance(target.bundle, LanguageBundle)
    for block in range(spec.first_block, spec.stop_block):
        start = block * job.block_size
        m = min(job.block_size, spec.stop - start)
        rng = block_rng(job.entropy, block)
        if spec.context is not None:
            ctx = spec.context.iloc[start - spec.start:start - spec.start + m].reset_index(drop=True)
        else:
            ctx = synthetic_context(context_model, context_generator, m, start, rng=rng,
                                    **{k: job.options.get(k) for k in (
                                        "batch_size", "rare_category_replacement_method")},
                                    sampling_temperature=job.options.get("sampling_temperature", 1.0),
                                    sampling_top_p=job.options.get("sampling_top_p", 1.0),
                                    derived_columns=job.options.get("derived_columns", True))
        frames = list(target.generate(ctx_data=ctx, rng=rng, **job.options))
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if "primary_key" in keys and len(frame):
            key, dtype = keys["primary_key"], stats["key_dtypes"][keys["primary_key"]]
            if one_record_per_entity:  # the records are in context order: the entity's index is the key
                frame[key] = _generated_keys(start, len(frame), dtype)
            else:
                frame[key] = _sequence_keys(frame, ctx[ctx_key], keys["context_key"], start,
                                            max(1, int(stats["seq_len"]["max"])), dtype)
        yield ctx, frame


def write_partition(job: GenerationJob, spec: PartitionSpec) -> dict[str, int]:
    """Generate partition ``spec`` and write it as parquet; returns the rows written per table.

    A pure function of ``job`` and ``spec``: the part it writes is the same on any worker.
    """
    target, context_generator, context_model = _cached_models(job)
    folder, name = Path(job.folder), PART_NAME.format(spec.index)
    with torch_threads(job.n_threads):
        if target.bundle.ctx_stats is None:
            writer = _PartWriter(folder / name, target.empty_frame())
            for frame in _flat_blocks(job, spec, target):
                writer.write(frame)
            return {"target": writer.close()}
        ctx_empty = (spec.context.iloc[:0] if spec.context is not None else
                     synthetic_context(context_model, context_generator, 0, 0, rng=np.random.default_rng(0)))
        ctx_writer = _PartWriter(folder / "context" / name, ctx_empty.reset_index(drop=True))
        writer = _PartWriter(folder / "target" / name, target.empty_frame())
        for ctx, frame in _two_table_blocks(job, spec, target, context_generator, context_model):
            ctx_writer.write(ctx)
            writer.write(frame)
        return {"context": ctx_writer.close(), "target": writer.close()}


# -- backends ------------------------------------------------------------------------------------------

def _is_dask_client(client) -> bool:
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(client, Client)


def check_client(client, owner: str) -> None:
    """Refuse a ``client`` that is not a ``dask.distributed.Client``."""
    if client is not None and not _is_dask_client(client):
        raise ValueError(f"The 'client' parameter of {owner} must be a dask.distributed.Client or None "
                         f"(pip install 'synthgen[dask]'). Got {client!r} instead.")


def run_partitions(job: GenerationJob, specs: list[PartitionSpec], *, client=None, n_jobs: int | None = None,
                   on_done: Callable[[dict[str, int]], None] | None = None) -> list[dict[str, int]]:
    """Run :func:`write_partition` for every spec: on the Dask cluster of ``client``, else with joblib.

    ``n_jobs`` follows joblib (None: one process unless a ``joblib.parallel_config`` says otherwise; -1: all
    cores); ``on_done`` is called with each partition's row counts as it completes.
    """
    results: list[dict[str, int] | None] = [None] * len(specs)
    if client is not None:
        from distributed import as_completed

        shared = client.scatter(job, broadcast=True)  # the model goes to each worker once
        futures = client.map(write_partition, [shared] * len(specs), specs, pure=False)
        position = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures):
            results[position[future.key]] = future.result()
            if on_done is not None:
                on_done(results[position[future.key]])
        return results
    from joblib import Parallel, delayed

    tasks = [delayed(write_partition)(job, spec) for spec in specs]
    try:  # results as they complete, for progress
        completed = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    except ValueError:  # a backend chosen by joblib.parallel_config that returns lists only
        completed = Parallel(n_jobs=n_jobs)(tasks)
    for i, result in enumerate(completed):
        results[i] = result
        if on_done is not None:
            on_done(result)
    with _CACHE_LOCK:  # partitions that ran in this process leave no network behind
        _CACHE.clear()
    return results

