"""Size presets and the heuristics that turn a column layout into layer widths, batch sizes and rates."""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ._spec import ColumnSpec, ModelSpec

__all__ = [
    "MODEL_SIZES",
    "batch_size_heuristic",
    "build_model_spec",
    "learn_rate_heuristic",
    "resolve_model_size",
]


@attrs.frozen
class _SizePreset:
    embedding_scale: int
    embedding_power: float
    hidden_scale: int
    hidden_bounds: tuple[int, int]
    n_blocks: int
    context_scale: int
    dropout: float


_PRESETS: dict[str, _SizePreset] = {
    "MOSTLY_AI/Small": _SizePreset(2, 0.15, 8, (16, 128), 0, 8, 0.1),
    "MOSTLY_AI/Medium": _SizePreset(3, 0.25, 16, (32, 256), 0, 16, 0.25),
    "MOSTLY_AI/Large": _SizePreset(4, 0.33, 24, (64, 384), 1, 32, 0.4),
}

MODEL_SIZES: tuple[str, ...] = tuple(_PRESETS)
"""The preset names accepted by :func:`resolve_model_size` (plus their short, case-insensitive aliases)."""

_ALIASES = {name.lower(): name for name in MODEL_SIZES} | {
    name.split("/")[1].lower(): name for name in MODEL_SIZES
}

# Cardinalities up to 4**_MIN_GROUP_LEVEL share one output group: padding small heads costs little, and
# fewer groups mean fewer (small, overhead-bound) matrix products.
_MIN_GROUP_LEVEL = 2


def resolve_model_size(name: str) -> str:
    """The canonical preset name for ``name``.

    Parameters
    ----------
    name : str
        ``"MOSTLY_AI/Small"``, ``"MOSTLY_AI/Medium"`` or ``"MOSTLY_AI/Large"``, or the short aliases
        ``"small"``, ``"medium"``, ``"large"``; case-insensitive.

    Returns
    -------
    str
        The canonical preset name.

    Raises
    ------
    ValueError
        If ``name`` is none of these.
    """
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in _ALIASES:
        allowed = ", ".join(repr(n) for n in (*MODEL_SIZES, "small", "medium", "large"))
        raise ValueError(f"model size must be one of {allowed} (case-insensitive); got {name!r} instead.")
    return _ALIASES[key]


def _ln_star(x: float) -> int:
    return round(math.log(max(x, math.e)))


def _embedding_dim(cardinality: int, preset: _SizePreset) -> int:
    dim = preset.embedding_scale * math.ceil(cardinality**preset.embedding_power)
    return min(cardinality, max(10, dim))


def _output_groups(cardinalities: Sequence[int]) -> list[list[int]]:
    # Heads are grouped by powers of four of their cardinality, so a group pads each head to at most four
    # times its size while one wide column does not inflate the output layers of all others.
    levels = [max(_MIN_GROUP_LEVEL, math.ceil(math.log(max(k, 2), 4))) for k in cardinalities]
    return [[i for i, lv in enumerate(levels) if lv == level] for level in sorted(set(levels))]


def build_model_spec(
    columns: Sequence[ColumnSpec],
    *,
    context: Sequence[ColumnSpec] = (),
    size: str = "MOSTLY_AI/Medium",
    flexible: bool = True,
) -> ModelSpec:
    """Derive all layer widths of a model over ``columns`` from a size preset.

    Parameters
    ----------
    columns : sequence of ColumnSpec
        The target columns, in code-matrix order.
    context : sequence of ColumnSpec, default=()
        The flat context columns, in context-matrix order.
    size : str, default="MOSTLY_AI/Medium"
        The preset (see :func:`resolve_model_size`).
    flexible : bool, default=True
        Train under random column orders (any-order generation) rather than the fixed order of ``columns``.

    Returns
    -------
    ModelSpec
        The complete architecture.

    Examples
    --------
    >>> spec = build_model_spec([ColumnSpec("a", ("cat",), (3,))], size="small")
    >>> spec.size, spec.embedding_dims
    ('MOSTLY_AI/Small', (3,))
    """
    size = resolve_model_size(size)
    preset = _PRESETS[size]
    columns = list(columns)
    context = list(context)
    cards = [k for c in columns for k in c.cardinalities]
    ctx_cards = [k for c in context for k in c.cardinalities]
    lo, hi = preset.hidden_bounds
    hidden = min(hi, max(lo, preset.hidden_scale * _ln_star(max(cards, default=1))))
    ctx_dims = [_embedding_dim(k, preset) for k in ctx_cards]
    context_dim = 0
    if ctx_dims:
        context_dim = min(hi, max(lo, preset.context_scale * _ln_star(sum(ctx_dims))))
    return ModelSpec(
        columns=columns,
        embedding_dims=[_embedding_dim(k, preset) for k in cards],
        hidden_dim=hidden,
        n_blocks=preset.n_blocks,
        output_groups=_output_groups(cards),
        context=context,
        context_embedding_dims=ctx_dims,
        context_dim=context_dim,
        dropout=preset.dropout,
        flexible=flexible,
        size=size,
    )


def batch_size_heuristic(n_samples: int) -> int:
    """The training batch size for ``n_samples`` training rows.

    At least 64 batches per epoch, as a power of two clipped to ``[8, 2048]``.
    """
    if n_samples < 128:
        return 8
    return int(min(2048, max(8, 2 ** math.floor(math.log2(n_samples / 64)))))


def learn_rate_heuristic(batch_size: int) -> float:
    """The initial AdamW learning rate for a logical batch size: ``1e-3 * sqrt(batch_size / 32)``."""
    return round(1e-3 * math.sqrt(batch_size / 32), 5)
