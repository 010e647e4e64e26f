"""Exact likelihoods and conditionals of a :class:`FlatARGN`, by teacher forcing (no sampling).

Under a column order the network factorises a row as ``p(x) = prod_s p(x_s | visible inputs of s)``, one head
per sub-column; feeding the *given* codes as inputs (teacher forcing) yields every factor in one pass:

- :func:`sub_column_log_probs`: ``log p`` of each given code under one order (the training loss, per head);
- :func:`log_likelihood`: ``log p`` of the codes of some columns, the other columns marginalised by ordering
  them last; for a model trained under random orders it averages the likelihood over several orders
  (``log mean_k p_k(x)``, a mixture of normalised distributions, so still a proper likelihood);
- :func:`conditional_logits`: the logits of one sub-column given any set of columns (they come first in the
  order, then the sub-column's own column): ``P(target | given)`` in one forward pass of one head;
- :func:`sample_column`: draws of one column's sub-columns given other columns, for statistics such as the
  conditional median of a many-sub-column (digit, datetime) column.

Pure tensors: columns are indices into ``model.spec.columns``, codes are ``(n, n_sub_columns)`` int64 matrices
(the codes of columns that are neither given nor scored are ignored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from ._network import FlatARGN
from ._sampling import FixedProbabilities, sample_categorical

__all__ = [
    "DEFAULT_INFERENCE_BATCH",
    "conditional_logits",
    "given_order",
    "log_likelihood",
    "sample_column",
    "sub_column_log_probs",
    "sub_columns_of",
]

DEFAULT_INFERENCE_BATCH = 2048


def sub_columns_of(model: FlatARGN, column: int) -> list[int]:
    """The sub-column indices of ``column``, in their fixed order."""
    return [s for s, owner in enumerate(model.spec.sub_column_owner) if owner == column]


def given_order(model: FlatARGN, given: Sequence[int], then: Sequence[int] = ()) -> list[int]:
    """The column order ``given + then + the rest`` (each part in the order given, the rest in training order).

    Raises
    ------
    ValueError
        If the model was trained in one fixed order and ``given + then`` is not a prefix of it: its other
        conditionals were never trained, so they are not available exactly.
    """
    first = [int(j) for j in given] + [int(j) for j in then]
    order = first + [j for j in model.training_order if j not in first]
    if not model.spec.flexible and order != model.training_order:
        names = [model.spec.columns[j].name for j in model.training_order]
        raise ValueError(
            "This model was trained with enable_flexible_generation=False, so only the conditionals of its "
            f"training order {names} are available: the given columns must be the first columns of that order "
            f"(and a target the next one); got {[model.spec.columns[j].name for j in first]}."
        )
    return order


def _inputs(model: FlatARGN, codes: torch.Tensor, context_codes: torch.Tensor | None) -> torch.Tensor:
    parts = [model.embedder(codes)]
    if context_codes is not None:
        parts.append(model._context_vector(context_codes, None))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _check(model: FlatARGN, codes: torch.Tensor, context_codes: torch.Tensor | None) -> None:
    n_sub = model.spec.n_sub_columns
    if codes.dim() != 2 or codes.shape[1] != n_sub:
        raise ValueError(f"codes must have shape (n, {n_sub}); got {tuple(codes.shape)}.")
    if model.spec.condition_dim:
        raise ValueError("Inference needs a model without dense condition vectors (condition_dim=0).")
    model._check_context(context_codes, len(codes))


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


@torch.no_grad()
def sub_column_log_probs(
    model: FlatARGN,
    codes: torch.Tensor,
    order: Sequence[int],
    *,
    context_codes: torch.Tensor | None = None,
    batch_size: int = DEFAULT_INFERENCE_BATCH,
) -> torch.Tensor:
    """``log p`` of every given code under one column order, per row and sub-column.

    The same computation as :meth:`FlatARGN.forward` in eval mode (all heads in one masked matrix product),
    without summing over sub-columns. Summing a row gives ``-forward(...)``.

    Parameters
    ----------
    model : FlatARGN
    codes : torch.Tensor
        ``(n, n_sub_columns)`` codes, on the model's device.
    order : sequence of int
        A column order the model accepts (:meth:`FlatARGN.check_order`).
    context_codes : torch.Tensor or None
        ``(n, n_context_sub_columns)`` context codes; required when the model has context.
    batch_size : int
        Rows per pass (the activations take ``batch_size * n_sub_columns * hidden_dim`` floats).

    Returns
    -------
    torch.Tensor
        ``(n, n_sub_columns)`` float32 log-probabilities (natural log).
    """
    _check(model, codes, context_codes)
    order = model.check_order(order)
    codes = codes.long()
    weight = model.in_weight * model._input_mask(order).unsqueeze(-1)
    weight = weight.view(len(weight), -1)
    n_sub, hidden_dim = model.spec.n_sub_columns, model.spec.hidden_dim
    out = torch.empty(len(codes), n_sub, device=codes.device)
    for rows in _batches(len(codes), batch_size):
        batch = codes[rows]
        ctx = None if context_codes is None else context_codes[rows].long()
        hidden = torch.addmm(model.in_bias.view(1, -1), _inputs(model, batch, ctx), weight)
        hidden = F.relu(hidden).view(len(batch), n_sub, hidden_dim).transpose(0, 1).contiguous()
        for w, b in zip(model.block_weights, model.block_biases, strict=True):
            hidden = hidden + F.relu(torch.baddbmm(b, hidden, w))
        targets = batch.t()
        for i, (w, b) in enumerate(zip(model.out_weights, model.out_biases, strict=True)):
            group = getattr(model, f"_group_{i}")
            logits = torch.baddbmm(b + getattr(model, f"_pad_{i}"), hidden.index_select(0, group), w)
            log_p = torch.log_softmax(logits, dim=-1).gather(2, targets.index_select(0, group)[..., None])
            out[rows, group] = log_p.squeeze(-1).t()
    return out


@torch.no_grad()
def log_likelihood(
    model: FlatARGN,
    codes: torch.Tensor,
    columns: Sequence[int],
    *,
    counted: torch.Tensor | None = None,
    n_orders: int = 8,
    generator: torch.Generator | None = None,
    context_codes: torch.Tensor | None = None,
    batch_size: int = DEFAULT_INFERENCE_BATCH,
) -> torch.Tensor:
    """``log p(codes of columns)`` per row, the other columns marginalised.

    The scored columns come first in every order (in a random order for a flexible model), so the heads of
    the other columns, which would need them, are never used: their codes are ignored.

    Parameters
    ----------
    model : FlatARGN
    codes : torch.Tensor
        ``(n, n_sub_columns)`` codes.
    columns : sequence of int
        The scored columns (not empty).
    counted : torch.Tensor or None
        ``(n, n_sub_columns)`` bool: which sub-columns' factors enter each row's likelihood; default all
        sub-columns of ``columns``. Use it to leave out filler codes (the value sub-columns of a NULL).
        Must be ``False`` outside ``columns``.
    n_orders : int, default=8
        Orders averaged by a flexible model (``log mean_k p_k``); a fixed-order model uses its training order,
        which must then start with ``columns``.
    generator : torch.Generator or None
        The source of the random orders.
    context_codes : torch.Tensor or None
    batch_size : int

    Returns
    -------
    torch.Tensor
        ``(n,)`` float64 log-likelihoods in nats.
    """
    columns = [int(j) for j in columns]
    if not columns:
        raise ValueError("log_likelihood needs at least one scored column.")
    if n_orders < 1:
        raise ValueError(f"n_orders must be >= 1; got {n_orders!r}.")
    scored = torch.zeros(model.spec.n_sub_columns, dtype=torch.bool, device=codes.device)
    for j in columns:
        scored[sub_columns_of(model, j)] = True
    counted = scored.expand(len(codes), -1) if counted is None else counted.to(codes.device)
    if bool((counted & ~scored).any()):
        raise ValueError("counted marks sub-columns outside the scored columns.")
    if not model.spec.flexible:
        orders = [given_order(model, columns)]
    else:
        orders = []
        for _ in range(n_orders):
            perm = torch.randperm(len(columns), generator=generator).tolist()
            orders.append(given_order(model, [columns[i] for i in perm]))
    per_order = torch.stack([
        (sub_column_log_probs(model, codes, order, context_codes=context_codes, batch_size=batch_size).double()
         * counted).sum(1)
        for order in orders
    ])
    return torch.logsumexp(per_order, dim=0) - math.log(len(orders))


@torch.no_grad()
def conditional_logits(
    model: FlatARGN,
    codes: torch.Tensor,
    given: Sequence[int],
    sub_column: int,
    *,
    context_codes: torch.Tensor | None = None,
    batch_size: int = DEFAULT_INFERENCE_BATCH,
) -> torch.Tensor:
    """Logits of ``sub_column`` given the codes of the ``given`` columns (and the earlier sub-columns of its
    own column), in one pass of its head; ``log_softmax`` of them is the exact model conditional.

    Parameters
    ----------
    model : FlatARGN
    codes : torch.Tensor
        ``(n, n_sub_columns)`` codes; only those of ``given`` and of earlier sub-columns of the target's
        column are read.
    given : sequence of int
        The conditioning columns (may be empty: the marginal); must not hold the target's column.
    sub_column : int
        The target sub-column.
    context_codes : torch.Tensor or None
    batch_size : int

    Returns
    -------
    torch.Tensor
        ``(n, cardinality)`` unnormalised log-probabilities.
    """
    _check(model, codes, context_codes)
    column = model.spec.sub_column_owner[sub_column]
    if column in given:
        raise ValueError(f"The target's column {column} cannot also be given.")
    order = given_order(model, given, [column])
    visible = (model._input_mask(order)[:, sub_column] > 0).nonzero().squeeze(1)
    weight = model.in_weight[visible, sub_column, :] if len(visible) else None
    out = torch.empty(len(codes), model.spec.cardinalities[sub_column], device=codes.device)
    for rows in _batches(len(codes), batch_size):
        ctx = None if context_codes is None else context_codes[rows].long()
        inputs = _inputs(model, codes[rows].long(), ctx)
        out[rows] = model._head_logits(sub_column, inputs.index_select(1, visible), weight)
    return out


@torch.no_grad()
def sample_column(
    model: FlatARGN,
    codes: torch.Tensor,
    given: Sequence[int],
    column: int,
    *,
    suppressed: Mapping[int, Sequence[int]] | None = None,
    generator: torch.Generator | None = None,
    uniforms: torch.Tensor | None = None,
    context_codes: torch.Tensor | None = None,
    batch_size: int = DEFAULT_INFERENCE_BATCH,
) -> torch.Tensor:
    """One draw per row of the codes of ``column`` given the ``given`` columns.

    Parameters
    ----------
    model : FlatARGN
    codes : torch.Tensor
        ``(n, n_sub_columns)`` codes holding the given columns.
    given : sequence of int
    column : int
        The drawn column; its sub-columns are drawn in their fixed order.
    suppressed : mapping of int to sequence of int, optional
        Per sub-column, codes that are never drawn (e.g. NULL and protected codes).
    generator : torch.Generator or None
        The source of randomness when ``uniforms`` is None.
    uniforms : torch.Tensor or None
        ``(n, n_sub_columns of column)`` numbers in ``[0, 1)``, one inverse-CDF draw per row and sub-column:
        with uniforms derived from each row's own content, a row's draws do not depend on the other rows.
    context_codes : torch.Tensor or None
    batch_size : int

    Returns
    -------
    torch.Tensor
        A copy of ``codes`` with the sub-columns of ``column`` drawn.
    """
    codes = codes.clone().long()
    subs = sub_columns_of(model, column)
    if uniforms is not None and tuple(uniforms.shape) != (len(codes), len(subs)):
        raise ValueError(f"uniforms must have shape ({len(codes)}, {len(subs)}); got {tuple(uniforms.shape)}.")
    for i, sub in enumerate(subs):
        logits = conditional_logits(model, codes, given, sub, context_codes=context_codes, batch_size=batch_size)
        blocked = list((suppressed or {}).get(sub, ()))
        block = torch.tensor(blocked, dtype=torch.long, device=logits.device)
        if uniforms is None:
            fixed = FixedProbabilities(block, torch.zeros(len(blocked), device=logits.device)) if blocked else None
            codes[:, sub] = sample_categorical(logits, fixed=fixed, generator=generator)
            continue
        # the epsilon keeps a draw among the allowed codes when the model put all its mass on blocked ones
        weights = (torch.softmax(logits.double(), dim=1) + 1e-30).index_fill_(1, block, 0.0)
        cdf = weights.cumsum(1)
        drawn = torch.searchsorted(cdf, uniforms[:, i:i + 1].to(cdf) * cdf[:, -1:], right=True).squeeze(1)
        codes[:, sub] = drawn.clamp_(max=cdf.shape[1] - 1)
    return codes
