"""The architecture of the sequential model and the heuristics that size it.

A :class:`SequentialSpec` wraps the :class:`ModelSpec` of the within-step heads (whose dense condition is
the step's context, history and position) and adds the widths of the context encoder, the history LSTM,
the position embeddings and the length head. Like :class:`ModelSpec` it records every width, so a saved
model is rebuilt exactly from :meth:`SequentialSpec.to_dict`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from ._positions import n_position_buckets
from ._presets import build_model_spec, resolve_model_size
from ._spec import ColumnSpec, ModelSpec, _column_tuple, _int_tuple

__all__ = ["SequentialSpec", "build_sequential_spec"]

# (scale, lower bound, upper bound) of the history width per preset: scale * ln*(step width * median length).
_HISTORY_SIZES = {
    "MOSTLY_AI/Small": (8, 16, 64),
    "MOSTLY_AI/Medium": (16, 32, 192),
    "MOSTLY_AI/Large": (32, 64, 384),
}
_MAX_POSITION_DIM = 16
# Equal buckets of the share of a sequence already generated: 5 % each.
PROGRESS_BUCKETS = 20


def _model_spec(value: ModelSpec | dict[str, Any]) -> ModelSpec:
    return value if isinstance(value, ModelSpec) else ModelSpec.from_dict(dict(value))


def _ln_star(x: float) -> int:
    return round(math.log(max(x, math.e)))


@attrs.frozen
class SequentialSpec:
    """The complete architecture of a sequential (context table + event sequences) model.

    Parameters
    ----------
    step : ModelSpec
        The within-step heads over the target columns. It has no context columns of its own; its dense
        condition is the output of the trunk layer, ``step.condition_dim`` wide.
    context : tuple of ColumnSpec
        The context columns (one row per subject); may be empty.
    context_embedding_dims : tuple of int
        The embedding width of every context sub-column.
    context_dim : int
        The width of the context vector (0 without context).
    max_len : int
        The largest sequence length the length head can produce.
    history_dim : int
        The hidden width of the history LSTM.
    history_layers : int
        The number of LSTM layers.
    position_dim : int
        The width of each of the two position embeddings (steps done, steps remaining).
        The trunk layer (Linear → ReLU) maps ``[context, history, previous step, positions]``
        (:attr:`trunk_input_dim` wide) to the heads' condition.
    length_hidden_dim : int
        The hidden width of the length head (only used with context).
    progress_buckets : int, default=0
        Rows of a third position table indexed by the share of the sequence already generated (steps done over
        the sequence's length, in equal buckets): a clock for events that spread over a period (a plane's
        flights over a year) that the logarithmic done/remaining buckets give only coarsely far from the ends.
        0 (specs written before it existed) means no such table.
    size : str
        The preset the widths came from (informational).
    """

    step: ModelSpec = attrs.field(converter=_model_spec)
    context: tuple[ColumnSpec, ...] = attrs.field(converter=_column_tuple)
    context_embedding_dims: tuple[int, ...] = attrs.field(converter=_int_tuple)
    context_dim: int = attrs.field(converter=int)
    max_len: int = attrs.field(converter=int)
    history_dim: int = attrs.field(converter=int)
    history_layers: int = attrs.field(converter=int)
    position_dim: int = attrs.field(converter=int)
    length_hidden_dim: int = attrs.field(converter=int)
    size: str = attrs.field(default="custom", converter=str)
    progress_buckets: int = attrs.field(default=0, converter=int)

    def __attrs_post_init__(self) -> None:
        if self.step.context:
            raise ValueError(
                "SequentialSpec.step must not have context columns of its own (the sequential model encodes "
                f"the context); got {[c.name for c in self.step.context]}."
            )
        n_ctx = sum(c.n_sub_columns for c in self.context)
        if len(self.context_embedding_dims) != n_ctx:
            raise ValueError(
                "SequentialSpec.context_embedding_dims must have one entry per context sub-column "
                f"({n_ctx}); got {len(self.context_embedding_dims)}."
            )
        if (n_ctx > 0) != (self.context_dim > 0):
            raise ValueError(
                f"SequentialSpec.context_dim must be >= 1 with context columns and 0 without; got "
                f"{self.context_dim} with {n_ctx} context sub-columns."
            )
        for name in ("history_dim", "history_layers", "position_dim", "length_hidden_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"SequentialSpec.{name} must be >= 1; got {getattr(self, name)}.")
        if self.progress_buckets < 0:
            raise ValueError(f"SequentialSpec.progress_buckets must be >= 0; got {self.progress_buckets}.")
        if self.max_len < 0:
            raise ValueError(f"SequentialSpec.max_len must be >= 0; got {self.max_len}.")
        if self.step.condition_dim < 1:
            raise ValueError(
                f"SequentialSpec.step.condition_dim must be >= 1; got {self.step.condition_dim}."
            )

    @property
    def trunk_input_dim(self) -> int:
        """The width of the trunk's input: context, history, previous step's embeddings and positions."""
        n_tables = 2 + (self.progress_buckets > 0)
        return self.context_dim + self.history_dim + sum(self.step.embedding_dims) + n_tables * self.position_dim

    @property
    def context_cardinalities(self) -> tuple[int, ...]:
        """The cardinality of every context sub-column, in context-matrix order."""
        return tuple(k for c in self.context for k in c.cardinalities)

    @property
    def n_position_buckets(self) -> int:
        """The rows of each position embedding table."""
        return n_position_buckets(self.max_len)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict that :meth:`from_dict` reads back."""
        return {
            "step": self.step.to_dict(),
            "context": [c.to_dict() for c in self.context],
            "context_embedding_dims": list(self.context_embedding_dims),
            "context_dim": self.context_dim,
            "max_len": self.max_len,
            "history_dim": self.history_dim,
            "history_layers": self.history_layers,
            "position_dim": self.position_dim,
            "length_hidden_dim": self.length_hidden_dim,
            "size": self.size,
            "progress_buckets": self.progress_buckets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SequentialSpec:
        """Rebuild a spec written by :meth:`to_dict`."""
        return cls(**data)


def build_sequential_spec(
    columns: Sequence[ColumnSpec],
    *,
    context: Sequence[ColumnSpec] = (),
    max_len: int,
    median_len: float,
    size: str = "MOSTLY_AI/Medium",
    flexible: bool = True,
) -> SequentialSpec:
    """Derive all widths of a sequential model from a size preset.

    The heads, embeddings and context encoder are sized as in :func:`build_model_spec`; the history LSTM
    gets ``scale * ln*(step embedding width * median_len)`` units (scale 8 / 16 / 32 for Small / Medium /
    Large, bounded to [16, 64] / [32, 192] / [64, 384]; narrower than the reference's, which is slow on a CPU
    for no measured gain). The trunk that condenses context, history and positions for the heads is as wide
    as a head, so every head reads a condition of ``hidden_dim`` values rather than the much wider
    concatenation.

    Parameters
    ----------
    columns : sequence of ColumnSpec
        The target (step) columns, in code-matrix order.
    context : sequence of ColumnSpec, default=()
        The context columns, in context-matrix order.
    max_len : int
        The protected maximum sequence length.
    median_len : float
        The median sequence length.
    size : str, default="MOSTLY_AI/Medium"
        The preset (see :func:`resolve_model_size`).
    flexible : bool, default=True
        Train the within-step heads under random column orders.

    Returns
    -------
    SequentialSpec

    Examples
    --------
    >>> columns = [ColumnSpec("a", ("cat",), (3,))]
    >>> spec = build_sequential_spec(columns, max_len=10, median_len=4, size="small")
    >>> spec.max_len, spec.context_dim, spec.step.condition_dim == spec.step.hidden_dim
    (10, 0, True)
    """
    if int(max_len) != max_len or max_len < 0:
        raise ValueError(f"max_len must be a non-negative integer; got {max_len!r}.")
    if not (isinstance(median_len, int | float) and math.isfinite(median_len) and median_len >= 0):
        raise ValueError(f"median_len must be a finite number >= 0; got {median_len!r}.")
    size = resolve_model_size(size)
    flat = build_model_spec(columns, context=context, size=size, flexible=flexible)
    scale, low, high = _HISTORY_SIZES[size]
    history_dim = min(high, max(low, scale * _ln_star(sum(flat.embedding_dims) * max(1.0, median_len))))
    position_dim = min(_MAX_POSITION_DIM, max(4, 4 * _ln_star(max_len + 1)))
    context_dim = flat.context_dim
    step = attrs.evolve(
        flat,
        context=(),
        context_embedding_dims=(),
        context_dim=0,
        condition_dim=flat.hidden_dim,
    )
    return SequentialSpec(
        step=step,
        context=flat.context,
        context_embedding_dims=flat.context_embedding_dims,
        context_dim=context_dim,
        max_len=int(max_len),
        history_dim=history_dim,
        history_layers=1,
        position_dim=position_dim,
        length_hidden_dim=flat.hidden_dim,
        size=size,
        progress_buckets=min(PROGRESS_BUCKETS, max(1, int(max_len))),
    )
