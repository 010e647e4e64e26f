"""Per-sample clipping of a flat TabularARGN without per-sample gradients ("ghost clipping").

Every layer of :class:`~synthgen.models.tabular.FlatARGN` sees one input vector per sample and head (no
sequence dimension), so the per-sample gradient of a weight is an outer product ``a_i g_i^T`` of the layer's
input and the gradient of its output, and its squared norm is ``|a_i|^2 |g_i|^2`` (for the masked input layer
``sum_s (a_i^2 @ mask^2)_s |g_{i,s}|^2``; an embedding row per sub-column, all distinct, gives
``sum_s |g_{i,s}|^2``). One backward pass to the layer outputs gives every sample's gradient norm; a second,
of the loss weighted by the clip factors, gives the sum of the clipped gradients exactly. That costs about two
training steps instead of materialising a gradient per sample (30x slower with ``torch.func.vmap``).

The forward pass is the network's own (same operations, same order); ``tests/test_dp_training.py`` checks
that losses and clipped gradients equal those of the per-sample (vmap) path, so a change of the network that
is not mirrored here fails there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.tabular import FlatARGN

__all__ = ["flat_clipped_gradients", "supports_ghost_clipping"]


def supports_ghost_clipping(model: FlatARGN) -> bool:
    """Whether ``model`` is a flat network without context or conditioning (the layers handled here)."""
    return (isinstance(model, FlatARGN) and model.context_embedder is None and model.spec.condition_dim == 0
            and model.spec.context_dim == 0)


def flat_clipped_gradients(model: FlatARGN, codes: torch.Tensor, order: list[int],
                           generator: torch.Generator | None, max_grad_norm: float,
                           params: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The sum over rows of the gradients of each row's NLL clipped to ``max_grad_norm``, and the NLLs.

    Parameters
    ----------
    model : FlatARGN
        Without context or conditioning (:func:`supports_ghost_clipping`).
    codes : torch.Tensor
        ``(batch, n_sub_columns)`` codes of the rows.
    order : list of int
        The column order of the batch.
    generator : torch.Generator or None
        Dropout masks (in training mode).
    max_grad_norm : float
    params : list of torch.Tensor
        The trainable parameters, in the order of the returned gradients.
    """
    spec = model.spec
    n, n_sub, hidden_dim = len(codes), spec.n_sub_columns, spec.hidden_dim
    codes = codes.long()
    table = model.embedder
    emb = F.embedding(codes + table.offsets, table.weight)
    x = model._dropout(emb.flatten(1).index_select(1, table.kept), generator)
    mask = model._input_mask(model.check_order(order))
    weight = model.in_weight * mask.unsqueeze(-1)
    pre = torch.addmm(model.in_bias.view(1, -1), x, weight.view(len(weight), -1))
    hidden = F.relu(pre).view(n, n_sub, hidden_dim).transpose(0, 1).contiguous()
    block_inputs, block_pre = [], []
    for w, b in zip(model.block_weights, model.block_biases, strict=True):
        block_inputs.append(hidden)
        block_pre.append(torch.baddbmm(b, hidden, w))
        hidden = hidden + F.relu(block_pre[-1])
    targets = codes.t()
    nll = codes.new_zeros(n, dtype=hidden.dtype)
    head_inputs, head_logits = [], []
    for i, (w, b) in enumerate(zip(model.out_weights, model.out_biases, strict=True)):
        group = getattr(model, f"_group_{i}")
        if len(model.out_weights) > 1:
            head_hidden, head_targets = hidden.index_select(0, group), targets.index_select(0, group)
        else:
            head_hidden, head_targets = hidden, targets
        logits = torch.baddbmm(b + getattr(model, f"_pad_{i}"), head_hidden, w)
        head_inputs.append(head_hidden)
        head_logits.append(logits)
        ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), head_targets.reshape(-1), reduction="none")
        nll = nll + ce.view(len(group), -1).sum(0)

    # 1. per-sample gradients of the layer outputs (each sample's loss depends on its own outputs only)
    outputs = [emb, pre, *block_pre, *head_logits]
    grads = torch.autograd.grad(nll.sum(), outputs, retain_graph=True)
    g_emb, g_pre, g_blocks, g_heads = grads[0], grads[1], grads[2:2 + len(block_pre)], grads[2 + len(block_pre):]
    with torch.no_grad():
        sq = g_emb.square().sum((1, 2))  # embedding rows (distinct per sub-column)
        g_pre_sq = g_pre.view(n, n_sub, hidden_dim).square().sum(2)  # (n, n_sub)
        sq += ((x.square() @ mask.square()) * g_pre_sq).sum(1) + g_pre_sq.sum(1)  # input layer and its bias
        for a, g in zip(block_inputs, g_blocks, strict=True):  # (n_sub, n, hidden)
            g_sq = g.square().sum(2)
            sq += (a.square().sum(2) * g_sq).sum(0) + g_sq.sum(0)
        for a, g in zip(head_inputs, g_heads, strict=True):
            g_sq = g.square().sum(2)
            sq += (a.square().sum(2) * g_sq).sum(0) + g_sq.sum(0)
        factor = (max_grad_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    # 2. the sum of the clipped per-sample gradients: the gradient of the factor-weighted loss
    clipped = torch.autograd.grad((nll * factor).sum(), params, allow_unused=True)
    clipped = [torch.zeros_like(p) if g is None else g for p, g in zip(params, clipped, strict=True)]
    return clipped, nll.detach()
