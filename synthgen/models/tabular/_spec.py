"""Value objects describing what a flat tabular model learns and how wide its layers are.

A :class:`ModelSpec` records every width of the network, so a saved model is rebuilt exactly from its
JSON-serializable :meth:`ModelSpec.to_dict`, even if the size heuristics in :mod:`._presets` change later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["ColumnSpec", "ModelSpec"]


def _int_tuple(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _str_tuple(values: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str):
        return (values,)
    return tuple(str(v) for v in values)


@attrs.frozen
class ColumnSpec:
    """One column as the model sees it: a name and its integer sub-columns.

    Parameters
    ----------
    name : str
        The column name (only used in messages and configs).
    sub_columns : tuple of str
        The sub-column names, in the fixed order in which they are modelled.
    cardinalities : tuple of int
        The number of codes of each sub-column; codes run ``0 .. cardinality - 1``.

    Examples
    --------
    >>> ColumnSpec("age", ("cat",), (74,)).n_sub_columns
    1
    """

    name: str = attrs.field(converter=str)
    sub_columns: tuple[str, ...] = attrs.field(converter=_str_tuple)
    cardinalities: tuple[int, ...] = attrs.field(converter=_int_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.sub_columns:
            raise ValueError(f"Column {self.name!r} must have at least one sub-column; got none.")
        if len(self.sub_columns) != len(self.cardinalities):
            raise ValueError(
                f"Column {self.name!r} has {len(self.sub_columns)} sub-columns but "
                f"{len(self.cardinalities)} cardinalities; they must match."
            )
        bad = [(s, c) for s, c in zip(self.sub_columns, self.cardinalities, strict=True) if c < 1]
        if bad:
            raise ValueError(
                f"Cardinalities of column {self.name!r} must be >= 1; got {dict(bad)!r}."
            )

    @property
    def n_sub_columns(self) -> int:
        """The number of sub-columns."""
        return len(self.sub_columns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict that :meth:`from_dict` reads back."""
        return {
            "name": self.name,
            "sub_columns": list(self.sub_columns),
            "cardinalities": list(self.cardinalities),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSpec:
        """Rebuild a column spec written by :meth:`to_dict`."""
        return cls(data["name"], data["sub_columns"], data["cardinalities"])


def _column_tuple(values: Sequence[ColumnSpec | dict[str, Any]]) -> tuple[ColumnSpec, ...]:
    return tuple(v if isinstance(v, ColumnSpec) else ColumnSpec.from_dict(v) for v in values)


def _group_tuple(values: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(_int_tuple(g) for g in values)


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"ModelSpec.{name} must be >= 1; got {value}.")


@attrs.frozen
class ModelSpec:
    """The complete architecture of a flat any-order autoregressive model.

    Parameters
    ----------
    columns : tuple of ColumnSpec
        The target columns; the code matrix has one column per sub-column, columns in this order and
        sub-columns in their order. This is also the fixed training order of non-flexible models.
    embedding_dims : tuple of int
        The embedding width of every target sub-column (flat, in code-matrix order).
    hidden_dim : int
        The width of every sub-column head.
    n_blocks : int
        The number of residual blocks (Linear → ReLU, per head) after the first head layer.
    output_groups : tuple of tuple of int
        A partition of the target sub-columns into groups whose output layers are computed together
        (padded to the group's largest cardinality).
    context : tuple of ColumnSpec
        The flat context columns (empty when the model has no context).
    context_embedding_dims : tuple of int
        The embedding width of every context sub-column.
    context_dim : int
        The width of the context vector (0 without context).
    condition_dim : int
        The width of a dense per-row conditioning vector that every head sees (0: none). The sequential
        model passes each step's history and position this way.
    dropout : float
        The dropout probability on the embedded inputs (target and context) during training.
    flexible : bool
        Whether the model is trained under random column orders (any-order generation) or the fixed order.
    size : str
        The preset the widths came from (informational).
    """

    columns: tuple[ColumnSpec, ...] = attrs.field(converter=_column_tuple)
    embedding_dims: tuple[int, ...] = attrs.field(converter=_int_tuple)
    hidden_dim: int = attrs.field(converter=int)
    n_blocks: int = attrs.field(converter=int)
    output_groups: tuple[tuple[int, ...], ...] = attrs.field(converter=_group_tuple)
    context: tuple[ColumnSpec, ...] = attrs.field(default=(), converter=_column_tuple)
    context_embedding_dims: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)
    context_dim: int = attrs.field(default=0, converter=int)
    condition_dim: int = attrs.field(default=0, converter=int)
    dropout: float = attrs.field(default=0.0, converter=float)
    flexible: bool = attrs.field(default=True, converter=bool)
    size: str = attrs.field(default="custom", converter=str)

    def __attrs_post_init__(self) -> None:
        if not self.columns:
            raise ValueError("ModelSpec.columns must hold at least one column; got none.")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"ModelSpec.columns must have unique names; got {names!r}.")
        n_sub = self.n_sub_columns
        if len(self.embedding_dims) != n_sub:
            raise ValueError(
                f"ModelSpec.embedding_dims must have one entry per sub-column ({n_sub}); "
                f"got {len(self.embedding_dims)}."
            )
        n_ctx = sum(c.n_sub_columns for c in self.context)
        if len(self.context_embedding_dims) != n_ctx:
            raise ValueError(
                f"ModelSpec.context_embedding_dims must have one entry per context sub-column ({n_ctx}); "
                f"got {len(self.context_embedding_dims)}."
            )
        if n_ctx and self.context_dim < 1:
            raise ValueError(f"ModelSpec.context_dim must be >= 1 with context; got {self.context_dim}.")
        if self.condition_dim < 0:
            raise ValueError(f"ModelSpec.condition_dim must be >= 0; got {self.condition_dim}.")
        for d in (*self.embedding_dims, *self.context_embedding_dims):
            _positive("embedding_dims", d)
        _positive("hidden_dim", self.hidden_dim)
        if self.n_blocks < 0:
            raise ValueError(f"ModelSpec.n_blocks must be >= 0; got {self.n_blocks}.")
        grouped = sorted(i for g in self.output_groups for i in g)
        if grouped != list(range(n_sub)) or any(not g for g in self.output_groups):
            raise ValueError(
                "ModelSpec.output_groups must partition the sub-columns "
                f"0..{n_sub - 1} into non-empty groups; got {self.output_groups!r}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelSpec.dropout must be in [0, 1); got {self.dropout}.")

    @property
    def n_sub_columns(self) -> int:
        """The number of target sub-columns (columns of the code matrix)."""
        return sum(c.n_sub_columns for c in self.columns)

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """The cardinality of every target sub-column, in code-matrix order."""
        return tuple(k for c in self.columns for k in c.cardinalities)

    @property
    def context_cardinalities(self) -> tuple[int, ...]:
        """The cardinality of every context sub-column, in context-matrix order."""
        return tuple(k for c in self.context for k in c.cardinalities)

    @property
    def sub_column_owner(self) -> tuple[int, ...]:
        """The column index of every target sub-column."""
        return tuple(j for j, c in enumerate(self.columns) for _ in c.sub_columns)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict that :meth:`from_dict` reads back."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "embedding_dims": list(self.embedding_dims),
            "hidden_dim": self.hidden_dim,
            "n_blocks": self.n_blocks,
            "output_groups": [list(g) for g in self.output_groups],
            "context": [c.to_dict() for c in self.context],
            "context_embedding_dims": list(self.context_embedding_dims),
            "context_dim": self.context_dim,
            "condition_dim": self.condition_dim,
            "dropout": self.dropout,
            "flexible": self.flexible,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Rebuild a spec written by :meth:`to_dict`."""
        return cls(**data)
