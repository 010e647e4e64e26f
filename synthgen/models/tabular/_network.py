"""The flat any-order autoregressive network (TabularARGN-style) over integer sub-columns.

Every sub-column has a *head* that predicts its code from the embeddings of the columns that precede its
column in the current column order, the earlier sub-columns of its own column, and the context vector. All
heads are evaluated together:

- one embedding table for all sub-columns (codes shifted by per-sub-column offsets);
- the first head layer is a single matrix product ``inputs @ (W * mask)`` where the order's visibility mask
  zeroes, per head, the weights of the inputs it may not see (one column order per batch, as in MADE);
- heads are Linear → ReLU → (residual blocks of Linear → ReLU) → Linear; blocks and output layers are
  batched over heads with ``baddbmm``; output layers are grouped
  by cardinality so narrow heads are not padded to the widest one.

Generation visits the columns in the requested order and fills the embedding inputs as codes are drawn;
not-yet-drawn inputs stay zero, exactly as the training mask hides them.

*Marginal calibration* (see :mod:`._calibration`): the model carries the target histograms of its sub-columns
(``marginal_counts``: the training codes' counts, or under DP the noisy counts of the private output prior) and
per-code logit offsets (``sampling_offsets``) fitted after training, which :meth:`FlatARGN.sample` adds to every
drawn sub-column's logits so that generated marginals match the targets. Both are persistent buffers (they
travel with the weights); weights saved before they existed load with zero offsets.

An optional *copy bonus* (``copy_codes``, ``copy_gain``) adds, per row and sub-column, a gain to the logit of
one code: the sequential model uses it to let every head repeat the previous step's code with a learned
confidence, which the heads alone reach only slowly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ._fairness import BoundTilt, FairnessTilt
from ._presets import build_model_spec
from ._sampling import FixedProbabilities, generator_on, prepare_fixed_probs, sample_categorical
from ._spec import ColumnSpec, ModelSpec

__all__ = ["FlatARGN"]

_INIT_SEED = 0
_CALIBRATION_BUFFERS = ("marginal_counts", "marginal_noise_std", "sampling_offsets")


def keep_missing_buffers(module: nn.Module, state_dict: dict, prefix: str, names: Sequence[str]) -> None:
    """Let weights saved before the buffers ``names`` existed load: the missing ones keep ``module``'s current
    values (for ``_load_from_state_dict``, which gets a copy of the state dict)."""
    for name in names:
        state_dict.setdefault(prefix + name, getattr(module, name).detach().clone())


def _offsets(cardinalities: Sequence[int]) -> torch.Tensor:
    return torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0)


def _kept_dims(dims: Sequence[int], width: int) -> torch.Tensor:
    # Flat positions of the first ``dims[s]`` entries of every ``width``-wide embedding slot.
    return torch.tensor([s * width + i for s, d in enumerate(dims) for i in range(d)], dtype=torch.long)


class _Embedder(nn.Module):
    """All sub-columns of a code matrix embedded by one table; returns the concatenated embeddings."""

    def __init__(self, cardinalities: Sequence[int], dims: Sequence[int]) -> None:
        super().__init__()
        self.width = max(dims)
        self.weight = nn.Parameter(torch.empty(sum(cardinalities), self.width))
        self.register_buffer("offsets", _offsets(cardinalities), persistent=False)
        self.register_buffer("kept", _kept_dims(dims, self.width), persistent=False)
        self.dims = tuple(dims)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        emb = F.embedding(codes + self.offsets, self.weight)
        return emb.flatten(1).index_select(1, self.kept)

    def embed_one(self, sub: int, codes: torch.Tensor) -> torch.Tensor:
        """The embeddings of the codes of sub-column ``sub``."""
        return F.embedding(codes + self.offsets[sub], self.weight)[:, : self.dims[sub]]


class _HeadPlan(NamedTuple):
    """One head's parameters for generation, sliced once per :meth:`FlatARGN.generation_layout`.

    Slicing the stacked parameters (``in_bias[sub]``, ``w[sub]``, the output group's slot, the embedding rows of
    the sub-column) costs a few microseconds per view; generation of a sequence visits every head at every step
    (about 70,000 head calls for the flights calibration), so the views are made once. The arithmetic is the
    same as :meth:`FlatARGN._head_logits` and :meth:`_Embedder.embed_one`: the draws are bit-identical.
    """

    sub: int
    in_weight: torch.Tensor | None
    in_bias: torch.Tensor
    blocks: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    out_bias: torch.Tensor
    out_weight: torch.Tensor
    offsets: torch.Tensor
    embedding: torch.Tensor


class GenerationLayout(NamedTuple):
    """What :meth:`FlatARGN.sample_batch` needs of a column order (see :meth:`FlatARGN.generation_layout`)."""

    subs: list[int]
    starts: list[int]
    heads: list[torch.Tensor | None]
    plans: list[_HeadPlan]


class FlatARGN(nn.Module):
    """Any-order autoregressive model of a flat table of integer codes, with optional flat context.

    Parameters
    ----------
    spec : ModelSpec
        The architecture (see :func:`build_model_spec` and :meth:`from_preset`).
    generator : torch.Generator or None, default=None
        The source of the initial weights; ``None`` uses a fixed seed, so construction is deterministic.

    Attributes
    ----------
    spec : ModelSpec
        The architecture.
    config : dict
        ``spec.to_dict()``: JSON-serializable; :meth:`from_config` rebuilds the same network.

    Examples
    --------
    >>> gen = torch.Generator().manual_seed(0)
    >>> model = FlatARGN.from_preset([ColumnSpec("a", ("cat",), (3,))], size="small")
    >>> nll = model(torch.zeros(4, 1, dtype=torch.long))
    >>> tuple(nll.shape), tuple(model.sample(5, generator=gen).shape)
    ((4,), (5, 1))
    """

    def __init__(self, spec: ModelSpec, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.spec = spec
        cards = spec.cardinalities
        n_sub, n_cols, hidden = len(cards), len(spec.columns), spec.hidden_dim
        self.embedder = _Embedder(cards, spec.embedding_dims)
        # Inputs are laid out as [target embeddings, context vector, condition vector].
        n_inputs = sum(spec.embedding_dims) + spec.context_dim + spec.condition_dim
        self.context_embedder = None
        if spec.context:
            self.context_embedder = _Embedder(spec.context_cardinalities, spec.context_embedding_dims)
            self.context_weight = nn.Parameter(torch.empty(sum(spec.context_embedding_dims), spec.context_dim))
            self.context_bias = nn.Parameter(torch.zeros(spec.context_dim))
        self.in_weight = nn.Parameter(torch.empty(n_inputs, n_sub, hidden))
        self.in_bias = nn.Parameter(torch.zeros(n_sub, hidden))
        self.block_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(n_sub, hidden, hidden)) for _ in range(spec.n_blocks)]
        )
        self.block_biases = nn.ParameterList(
            [nn.Parameter(torch.zeros(n_sub, 1, hidden)) for _ in range(spec.n_blocks)]
        )
        group_cards = [[cards[s] for s in g] for g in spec.output_groups]
        self.out_weights = nn.ParameterList(
            [nn.Parameter(torch.empty(len(g), hidden, max(g))) for g in group_cards]
        )
        self.out_biases = nn.ParameterList([nn.Parameter(torch.zeros(len(g), 1, max(g))) for g in group_cards])
        for i, (group, gcards) in enumerate(zip(spec.output_groups, group_cards, strict=True)):
            self.register_buffer(f"_group_{i}", torch.tensor(group, dtype=torch.long), persistent=False)
            pad = torch.zeros(len(group), 1, max(gcards))
            for j, k in enumerate(gcards):
                pad[j, 0, k:] = -math.inf
            self.register_buffer(f"_pad_{i}", pad, persistent=False)
        # head_slot[s] = (group, position in group) of sub-column s
        self._head_slot = {s: (i, j) for i, g in enumerate(spec.output_groups) for j, s in enumerate(g)}
        owner = torch.tensor(spec.sub_column_owner, dtype=torch.long)
        self.register_buffer("_owner", owner, persistent=False)
        index = torch.arange(n_sub)
        same_earlier = (owner[None, :] == owner[:, None]) & (index[None, :] < index[:, None])
        self.register_buffer("_same_column_earlier", same_earlier, persistent=False)
        dim_owner = torch.repeat_interleave(index, torch.tensor(spec.embedding_dims))
        self.register_buffer("_dim_owner", dim_owner, persistent=False)
        # The calibration of generation (persistent: saved with the weights). Counts in float64, exact up to 2**53.
        n_codes = sum(cards)
        self.register_buffer("marginal_counts", torch.zeros(n_codes, dtype=torch.float64))
        self.register_buffer("marginal_noise_std", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sampling_offsets", torch.zeros(n_codes))
        self._n_cols = n_cols
        self._sub_columns_of = [[s for s in range(n_sub) if spec.sub_column_owner[s] == j] for j in range(n_cols)]
        dim_starts = [0, *torch.tensor(spec.embedding_dims).cumsum(0).tolist()]
        self._dim_slices = [slice(dim_starts[s], dim_starts[s + 1]) for s in range(n_sub)]
        self.reset_parameters(generator)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        # weights saved before marginal calibration existed load uncalibrated
        keep_missing_buffers(self, state_dict, prefix, _CALIBRATION_BUFFERS)
        super()._load_from_state_dict(state_dict, prefix, *args)

    @classmethod
    def from_preset(
        cls,
        columns: Sequence[ColumnSpec],
        *,
        context: Sequence[ColumnSpec] = (),
        size: str = "MOSTLY_AI/Medium",
        flexible: bool = True,
        generator: torch.Generator | None = None,
    ) -> FlatARGN:
        """Build a model whose widths come from a size preset (see :func:`build_model_spec`)."""
        return cls(build_model_spec(columns, context=context, size=size, flexible=flexible), generator=generator)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, generator: torch.Generator | None = None) -> FlatARGN:
        """Rebuild a model from its :attr:`config`; load its weights with ``load_state_dict``."""
        return cls(ModelSpec.from_dict(dict(config)), generator=generator)

    @property
    def config(self) -> dict[str, Any]:
        """The JSON-serializable architecture (``spec.to_dict()``)."""
        return self.spec.to_dict()

    @property
    def training_order(self) -> list[int]:
        """The fixed column order of a non-flexible model (and the default order of a flexible one)."""
        return list(range(self._n_cols))

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh weights: Xavier-uniform per head, normal embeddings, zero biases."""
        if generator is None:
            generator = torch.Generator().manual_seed(_INIT_SEED)

        def uniform_(param: torch.Tensor, fan_in: int, fan_out: int) -> None:
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            values = torch.rand(param.shape, generator=generator) * (2 * bound) - bound
            param.copy_(values)

        self.embedder.weight.copy_(torch.randn(self.embedder.weight.shape, generator=generator))
        hidden = self.spec.hidden_dim
        # A head sees about half the inputs under a random order; use that as its fan-in.
        uniform_(self.in_weight, max(1, self.in_weight.shape[0] // 2), hidden)
        for w in self.block_weights:
            uniform_(w, hidden, hidden)
            w.mul_(0.5)
        for w in self.out_weights:
            uniform_(w, hidden, w.shape[-1])
        if self.context_embedder is not None:
            self.context_embedder.weight.copy_(torch.randn(self.context_embedder.weight.shape, generator=generator))
            uniform_(self.context_weight, *self.context_weight.shape)
        for p in (self.in_bias, *self.block_biases, *self.out_biases):
            p.zero_()
        if self.context_embedder is not None:
            self.context_bias.zero_()

    @torch.no_grad()
    def init_output_bias(self, codes: torch.Tensor) -> None:
        """Set the output biases to the Laplace-smoothed log-frequencies of ``codes``.

        The model then starts from the marginal distributions. Do not use under differential privacy:
        the biases would reveal exact counts.

        Parameters
        ----------
        codes : torch.Tensor
            ``(n, n_sub_columns)`` training codes.
        """
        self.init_output_bias_from_counts(self.code_counts(codes), len(codes))

    def code_counts(self, codes: torch.Tensor) -> torch.Tensor:
        """How often each code of each sub-column occurs in ``codes``, flattened over the sub-columns: what
        :meth:`init_output_bias_from_counts` takes, summable over parts of the data."""
        offsets = self.embedder.offsets.to(codes.device)
        return torch.bincount((codes.long() + offsets).reshape(-1), minlength=sum(self.spec.cardinalities))

    @torch.no_grad()
    def init_output_bias_from_counts(self, counts: torch.Tensor, n_rows: int) -> None:
        """:meth:`init_output_bias` from the :meth:`code_counts` of ``n_rows`` training rows."""
        cards = self.spec.cardinalities
        offsets = self.embedder.offsets
        counts = counts.double()
        self.marginal_counts.copy_(counts.to(self.marginal_counts.device))  # the calibration's target
        self.marginal_noise_std.zero_()
        for group, bias in zip(self.spec.output_groups, self.out_biases, strict=True):
            for j, s in enumerate(group):
                start, k = int(offsets[s]), cards[s]
                freq = (counts[start : start + k] + 1.0) / (n_rows + k)
                bias[j, 0, :k] = freq.log().to(bias)

    def check_order(self, order: Sequence[int] | torch.Tensor) -> list[int]:
        """Validate a column order and return it as a list.

        Raises
        ------
        ValueError
            If ``order`` is not a permutation of the column indices, or differs from the training order of a
            model trained without flexible order.
        """
        order = [int(j) for j in order]
        if sorted(order) != list(range(self._n_cols)):
            raise ValueError(
                f"column_order must be a permutation of the column indices 0..{self._n_cols - 1}; got {order}."
            )
        if not self.spec.flexible and order != self.training_order:
            raise ValueError(
                "This model was trained with enable_flexible_generation=False, so columns can only be "
                f"generated in the training order {self.training_order} (seeded columns must be a prefix "
                f"of it); got {order}."
            )
        return order

    def draw_order(self, generator: torch.Generator | None = None) -> list[int]:
        """A random column order for a flexible model, the training order otherwise."""
        if not self.spec.flexible:
            return self.training_order
        return torch.randperm(self._n_cols, generator=generator).tolist()

    def _input_mask(self, order: Sequence[int]) -> torch.Tensor:
        rank = torch.empty(self._n_cols, dtype=torch.long)
        rank[torch.tensor(order, dtype=torch.long)] = torch.arange(self._n_cols)
        sub_rank = rank.to(self._owner.device)[self._owner]
        visible = (sub_rank[None, :] < sub_rank[:, None]) | self._same_column_earlier
        mask = visible.t()[self._dim_owner].to(self.in_weight.dtype)
        always_visible = self.spec.context_dim + self.spec.condition_dim
        if always_visible:
            mask = torch.cat([mask, mask.new_ones(always_visible, mask.shape[1])])
        return mask

    def _dropout(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.spec.dropout
        if not self.training or p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
        return x * keep.mul_(1.0 / (1.0 - p))

    def _context_vector(self, context_codes: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        assert self.context_embedder is not None
        emb = self._dropout(self.context_embedder(context_codes), generator)
        return F.relu(torch.addmm(self.context_bias, emb, self.context_weight))

    def _check_context(self, context_codes: torch.Tensor | None, n: int) -> None:
        n_ctx = len(self.spec.context_cardinalities)
        if n_ctx == 0:
            if context_codes is not None:
                raise ValueError("context_codes were given, but the model has no context columns.")
            return
        if context_codes is None:
            raise ValueError(f"context_codes are required: the model has {n_ctx} context sub-columns.")
        if tuple(context_codes.shape) != (n, n_ctx):
            raise ValueError(
                f"context_codes must have shape ({n}, {n_ctx}); got {tuple(context_codes.shape)}."
            )

    def _check_condition(self, condition: torch.Tensor | None, n: int) -> None:
        dim = self.spec.condition_dim
        if dim == 0:
            if condition is not None:
                raise ValueError("condition was given, but the model has condition_dim=0.")
            return
        if condition is None:
            raise ValueError(f"condition is required: the model has condition_dim={dim}.")
        if tuple(condition.shape) != (n, dim):
            raise ValueError(f"condition must have shape ({n}, {dim}); got {tuple(condition.shape)}.")

    def _check_copy(self, copy_codes: torch.Tensor | None, copy_gain: torch.Tensor | None, n: int) -> None:
        if (copy_codes is None) != (copy_gain is None):
            raise ValueError("copy_codes and copy_gain must be given together.")
        shape = (n, self.spec.n_sub_columns)
        for name, value in (("copy_codes", copy_codes), ("copy_gain", copy_gain)):
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"{name} must have shape {shape}; got {tuple(value.shape)}.")

    def forward(
        self,
        codes: torch.Tensor,
        context_codes: torch.Tensor | None = None,
        order: Sequence[int] | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        *,
        condition: torch.Tensor | None = None,
        copy_codes: torch.Tensor | None = None,
        copy_gain: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The negative log-likelihood of every row under one column order.

        Parameters
        ----------
        codes : torch.Tensor
            ``(batch, n_sub_columns)`` integer codes.
        context_codes : torch.Tensor or None
            ``(batch, n_context_sub_columns)`` context codes; required when the model has context.
        order : sequence of int or None
            The column order; ``None`` means the training order. Sub-columns of a column always follow their
            fixed order.
        generator : torch.Generator or None
            The source of the dropout masks in training mode.
        condition : torch.Tensor or None
            ``(batch, condition_dim)`` dense conditioning vectors; required when ``spec.condition_dim > 0``.
            Gradients flow into it, so an upstream network can be trained through the heads.
        copy_codes, copy_gain : torch.Tensor or None
            ``(batch, n_sub_columns)`` codes and gains, given together: head ``s`` of row ``r`` adds
            ``copy_gain[r, s]`` to the logit of code ``copy_codes[r, s]`` (a zero gain leaves it unchanged).
            Gradients flow into the gains.

        Returns
        -------
        torch.Tensor
            ``(batch,)`` per-row NLL in nats, summed over sub-columns.
        """
        n_sub = self.spec.n_sub_columns
        if codes.dim() != 2 or codes.shape[1] != n_sub:
            raise ValueError(f"codes must have shape (batch, {n_sub}); got {tuple(codes.shape)}.")
        self._check_context(context_codes, len(codes))
        self._check_condition(condition, len(codes))
        self._check_copy(copy_codes, copy_gain, len(codes))
        order = self.training_order if order is None else self.check_order(order)
        codes = codes.long()
        parts = [self._dropout(self.embedder(codes), generator)]
        if context_codes is not None:
            parts.append(self._context_vector(context_codes.long(), generator))
        if condition is not None:
            parts.append(condition.to(parts[0].dtype))
        inputs = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        weight = self.in_weight * self._input_mask(order).unsqueeze(-1)
        hidden_dim = self.spec.hidden_dim
        hidden = torch.addmm(self.in_bias.view(1, -1), inputs, weight.view(len(weight), -1))
        hidden = F.relu(hidden).view(len(codes), n_sub, hidden_dim).transpose(0, 1).contiguous()
        for w, b in zip(self.block_weights, self.block_biases, strict=True):
            hidden = hidden + F.relu(torch.baddbmm(b, hidden, w))
        targets = codes.t()
        if copy_codes is not None:
            copy_codes, copy_gain = copy_codes.long().t(), copy_gain.to(hidden.dtype).t()
        nll = codes.new_zeros(len(codes), dtype=hidden.dtype)
        for i, (w, b) in enumerate(zip(self.out_weights, self.out_biases, strict=True)):
            group = getattr(self, f"_group_{i}")
            if len(self.out_weights) > 1:
                head_hidden, head_targets = hidden.index_select(0, group), targets.index_select(0, group)
            else:
                head_hidden, head_targets = hidden, targets
            logits = torch.baddbmm(b + getattr(self, f"_pad_{i}"), head_hidden, w)
            if copy_codes is not None:
                # A copied code is below its head's cardinality, so the bonus never lands on padding.
                logits.scatter_add_(
                    2, copy_codes.index_select(0, group)[..., None], copy_gain.index_select(0, group)[..., None]
                )
            ce = F.cross_entropy(logits.view(-1, logits.shape[-1]), head_targets.reshape(-1), reduction="none")
            nll = nll + ce.view(len(group), -1).sum(0)
        return nll

    def _head_logits(self, sub: int, inputs: torch.Tensor, in_weight: torch.Tensor | None) -> torch.Tensor:
        # ``inputs`` holds only what the head may see and ``in_weight`` the matching rows (None: no inputs).
        if in_weight is None:
            hidden = F.relu(self.in_bias[sub]).expand(len(inputs), -1)
        else:
            hidden = F.relu(torch.addmm(self.in_bias[sub], inputs, in_weight))
        for w, b in zip(self.block_weights, self.block_biases, strict=True):
            hidden = hidden + F.relu(torch.addmm(b[sub, 0], hidden, w[sub]))
        group, pos = self._head_slot[sub]
        k = self.spec.cardinalities[sub]
        return torch.addmm(self.out_biases[group][pos, 0, :k], hidden, self.out_weights[group][pos, :, :k])

    def _generation_order(self, column_order: Sequence[int] | None, fixed_columns: set[int]) -> list[int]:
        if column_order is None:
            default = self.training_order
            column_order = [j for j in default if j in fixed_columns] + [
                j for j in default if j not in fixed_columns
            ]
        return self.check_order(column_order)

    def _check_fixed_codes(self, fixed_codes: Mapping[int, torch.Tensor], n: int) -> dict[int, torch.Tensor]:
        cards = self.spec.cardinalities
        checked = {}
        for sub, values in fixed_codes.items():
            sub = int(sub)
            if not 0 <= sub < len(cards):
                raise ValueError(
                    f"fixed_codes has sub-column {sub}, but the model has sub-columns 0..{len(cards) - 1}."
                )
            values = torch.as_tensor(values).reshape(-1)
            if len(values) != n:
                raise ValueError(f"fixed_codes of sub-column {sub} must hold {n} codes; got {len(values)}.")
            if n and (int(values.min()) < 0 or int(values.max()) >= cards[sub]):
                raise ValueError(
                    f"fixed_codes of sub-column {sub} must lie in 0..{cards[sub] - 1}; "
                    f"got values in {int(values.min())}..{int(values.max())}."
                )
            checked[sub] = values.long()
        return checked

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        context_codes: torch.Tensor | None = None,
        fixed_codes: Mapping[int, torch.Tensor] | None = None,
        column_order: Sequence[int] | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        fixed_probs: Mapping[int, Mapping[int, float]] | None = None,
        generator: torch.Generator | None = None,
        batch_size: int = 4096,
        condition: torch.Tensor | None = None,
        tilt: FairnessTilt | None = None,
        calibrated: bool = True,
    ) -> torch.Tensor:
        """Draw ``n`` rows of codes.

        Parameters
        ----------
        n : int
            The number of rows.
        context_codes : torch.Tensor or None
            ``(n, n_context_sub_columns)`` context codes, one row per sample; required with context.
        fixed_codes : mapping of int to torch.Tensor or None
            Per sub-column index, ``n`` codes that are used verbatim instead of being drawn (seeding).
        column_order : sequence of int or None
            The order in which columns are generated; default: columns with fixed codes first, then the
            others, each in training order.
        temperature : float, default=1.0
            Divides the log-probabilities (floored at 1e-3).
        top_p : float, default=1.0
            Nucleus sampling threshold in ``(0, 1]``.
        fixed_probs : mapping or None
            Per sub-column index, ``{code: probability}`` forced at every draw; the other codes share the rest
            in proportion to the model (``{code: 0.0}`` suppresses a code).
        generator : torch.Generator or None
            The source of randomness (one on another device seeds a generator on the model's device).
        batch_size : int, default=4096
            Rows generated at once (a few thousand keep the activations in the CPU caches).
        condition : torch.Tensor or None
            ``(n, condition_dim)`` dense conditioning vectors; required when ``spec.condition_dim > 0``.
        tilt : FairnessTilt or None
            The fairness tilt of the target sub-column (see :mod:`._fairness`); its sensitive sub-columns must
            come before the target in ``column_order``. A calibrating tilt that stops after the target leaves
            the codes after it undrawn (unspecified); a deferred tilt needs the target last and draws it for all
            ``n`` rows at the end, with biases fitted on them.
        calibrated : bool, default=True
            Add the marginal calibration's ``sampling_offsets`` to the logits (before temperature, top-p and
            fixed probabilities); ``False`` draws from the network alone.

        Returns
        -------
        torch.Tensor
            ``(n, n_sub_columns)`` int64 codes on the model's device.

        Raises
        ------
        ValueError
            For invalid arguments, or a column order that a non-flexible model cannot generate.
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer; got {n!r}.")
        if not (math.isfinite(temperature) and temperature >= 0.0):
            raise ValueError(f"temperature must be a finite number >= 0; got {temperature!r}.")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1]; got {top_p!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size!r}.")
        n = int(n)
        self._check_context(context_codes, n)
        self._check_condition(condition, n)
        fixed_codes = self._check_fixed_codes(fixed_codes or {}, n)
        owner = self.spec.sub_column_owner
        order = self._generation_order(column_order, {owner[s] for s in fixed_codes})
        device = self.in_weight.device
        generator = generator_on(generator, device)
        probs = {s: f.to(device) for s, f in prepare_fixed_probs(fixed_probs, self.spec.cardinalities).items()}
        if tilt is not None:
            self.check_tilt_order(tilt, order)
            if tilt.mode == "defer" and self._sub_columns_of[order[-1]] != [tilt.target_sub]:
                raise ValueError("A deferred fairness tilt needs the target to be the last column drawn.")
        was_training = self.training
        self.eval()
        try:
            layout = self.generation_layout(order)
            out = torch.empty(n, self.spec.n_sub_columns, dtype=torch.long, device=device)
            for start in range(0, n, batch_size):
                rows = slice(start, min(n, start + batch_size))
                ctx = None if context_codes is None else context_codes[rows].to(device)
                cond = None if condition is None else condition[rows].to(device)
                fixed = {s: v[rows].to(device) for s, v in fixed_codes.items()}
                m = rows.stop - rows.start
                bound = None if tilt is None else tilt.bind(tilt.groups.context_keys(ctx, m, device))
                # inference mode (no autograd bookkeeping per op) unless a tilt keeps state across batches
                with torch.inference_mode(tilt is None):
                    out[rows] = self.sample_batch(
                        layout, ctx, fixed, temperature, top_p, probs, generator,
                        condition=cond, n=m, tilt=bound, calibrated=calibrated,
                    )
            if tilt is not None and tilt.mode == "defer" and n:
                out[:, tilt.target_sub] = tilt.draw(generator)
        finally:
            self.train(was_training)
        return out

    def check_tilt_order(self, tilt: FairnessTilt, order: Sequence[int]) -> None:
        """Raise unless ``order`` draws the tilt's sensitive sub-columns before its target sub-column."""
        position = {s: i for i, s in enumerate(s for col in order for s in self._sub_columns_of[col])}
        late = [s for s in tilt.groups.subs if position[s] >= position[tilt.target_sub]]
        if late:
            raise ValueError(
                f"The fairness tilt needs its sensitive sub-columns {late} before its target sub-column "
                f"{tilt.target_sub} in the column order {list(order)}."
            )
        if len(self._sub_columns_of[self.spec.sub_column_owner[tilt.target_sub]]) != 1:
            raise ValueError(f"The fairness target sub-column {tilt.target_sub} must be its column's only one.")

    def generation_layout(self, order: list[int]) -> GenerationLayout:
        """Sub-columns in generation order, their input offsets, and each head's visible first-layer weights.

        Inputs are laid out as [context, condition, sub-columns in generation order], so a head sees a prefix
        of them and its first layer needs only the matching prefix of weight rows (half the work on average).
        Compute it once per order and pass it to :meth:`sample_batch`.
        """
        subs = [s for col in order for s in self._sub_columns_of[col]]
        n_emb = sum(self.spec.embedding_dims)
        rows = [torch.arange(n_emb, self.in_weight.shape[0])]
        rows += [torch.arange(self._dim_slices[s].start, self._dim_slices[s].stop) for s in subs]
        weight = self.in_weight[torch.cat(rows).to(self.in_weight.device)]
        always_visible = self.spec.context_dim + self.spec.condition_dim
        starts = torch.tensor([always_visible] + [self.spec.embedding_dims[s] for s in subs]).cumsum(0)
        starts = starts.tolist()
        heads: list[torch.Tensor | None] = []
        for i, s in enumerate(subs):
            # Earlier sub-columns of the same column are visible too, and they precede s in this layout.
            visible = starts[i]
            heads.append(weight[:visible, s, :].contiguous() if visible else None)
        cards, code_starts = self.spec.cardinalities, self.embedder.offsets.tolist()
        plans = []
        for s, in_weight in zip(subs, heads, strict=True):
            group, pos = self._head_slot[s]
            k, first = cards[s], code_starts[s]
            plans.append(_HeadPlan(
                sub=s, in_weight=in_weight, in_bias=self.in_bias[s],
                blocks=tuple((b[s, 0], w[s]) for w, b in zip(self.block_weights, self.block_biases, strict=True)),
                out_bias=self.out_biases[group][pos, 0, :k], out_weight=self.out_weights[group][pos, :, :k],
                offsets=self.sampling_offsets[first : first + k],
                embedding=self.embedder.weight[first : first + k, : self.embedder.dims[s]]))
        return GenerationLayout(subs, starts, heads, plans)

    @staticmethod
    def _planned_logits(plan: _HeadPlan, inputs: torch.Tensor) -> torch.Tensor:
        # the arithmetic of _head_logits on the pre-sliced parameters
        if plan.in_weight is None:
            hidden = F.relu(plan.in_bias).expand(len(inputs), -1)
        else:
            hidden = F.relu(torch.addmm(plan.in_bias, inputs, plan.in_weight))
        for b, w in plan.blocks:
            hidden = hidden + F.relu(torch.addmm(b, hidden, w))
        return torch.addmm(plan.out_bias, hidden, plan.out_weight)

    def sample_batch(
        self,
        layout: GenerationLayout,
        context_codes: torch.Tensor | None,
        fixed_codes: Mapping[int, torch.Tensor],
        temperature: float,
        top_p: float,
        fixed_probs: Mapping[int, FixedProbabilities],
        generator: torch.Generator | None,
        *,
        condition: torch.Tensor | None = None,
        n: int | None = None,
        copy_codes: torch.Tensor | None = None,
        copy_gain: torch.Tensor | None = None,
        tilt: BoundTilt | None = None,
        calibrated: bool = True,
        row_offsets: Mapping[int, torch.Tensor] | None = None,
        pair_offsets: Mapping[int, tuple[int, torch.Tensor]] | None = None,
        sort_rows: bool = False,
    ) -> torch.Tensor:
        """Draw one batch of rows from already validated inputs (the inner loop of :meth:`sample`).

        Parameters
        ----------
        layout : tuple
            :meth:`generation_layout` of the column order.
        context_codes, condition : torch.Tensor or None
            The batch's context codes and conditioning vectors, on the model's device.
        fixed_codes : mapping of int to torch.Tensor
            Per sub-column, the batch's seeded codes.
        temperature, top_p : float
            As in :meth:`sample`.
        fixed_probs : mapping of int to FixedProbabilities
            :func:`prepare_fixed_probs` output on the model's device.
        generator : torch.Generator or None
            The source of randomness, on the model's device.
        n : int or None
            The number of rows; default the length of ``condition``.
        copy_codes, copy_gain : torch.Tensor or None
            As in :meth:`forward`: per row and sub-column, a gain added to one code's logit before
            temperature, top-p and fixed probabilities apply.
        tilt : BoundTilt or None
            The fairness tilt of the batch, applied to the target sub-column's final sampling weights.
        calibrated : bool, default=True
            Add ``sampling_offsets`` to the logits (a model never calibrated has zero offsets).
        row_offsets : mapping of int to torch.Tensor or None
            Per sub-column, ``(n, cardinality)`` offsets added to its logits row by row (with
            ``sampling_offsets``): a sequential model's calibration by the share of the sequence done.
        pair_offsets : mapping of int to (int, torch.Tensor) or None
            Per sub-column, an earlier sub-column of the same column and a ``(its cardinality, cardinality)``
            table: the row of the code drawn for the earlier one is added to the logits (a sequential model's
            joint calibration of value parts, such as a clock time's minute given its hour).
        sort_rows : bool, default=False
            Stratify the draws within blocks of rows with similar distributions (``sample_categorical``): a
            sequence step's subjects.

        Returns
        -------
        torch.Tensor
            ``(n, n_sub_columns)`` int64 codes.
        """
        device = self.in_weight.device
        n = len(condition) if n is None else n
        starts = layout.starts
        inputs = torch.empty(n, self.in_weight.shape[0], device=device)
        if context_codes is not None:
            inputs[:, : self.spec.context_dim] = self._context_vector(context_codes.long(), generator)
        if condition is not None:
            inputs[:, self.spec.context_dim : starts[0]] = condition
        # One contiguous row per sub-column; transposed on return.
        out = torch.empty(self.spec.n_sub_columns, n, dtype=torch.long, device=device)
        offset = calibrated and bool(self.sampling_offsets.any())
        for i, plan in enumerate(layout.plans):
            sub = plan.sub
            if sub in fixed_codes:
                codes = fixed_codes[sub]
            else:
                logits = self._planned_logits(plan, inputs[:, : starts[i]])
                if copy_codes is not None:
                    logits.scatter_add_(1, copy_codes[:, sub : sub + 1], copy_gain[:, sub : sub + 1])
                if offset:
                    logits = logits + plan.offsets
                if row_offsets and sub in row_offsets:
                    logits = logits + row_offsets[sub]
                if pair_offsets and sub in pair_offsets:
                    parent, table = pair_offsets[sub]
                    logits = logits + table[out[parent]]
                targeted = tilt is not None and sub == tilt.sub
                codes = sample_categorical(
                    logits,
                    temperature=temperature,
                    top_p=top_p,
                    fixed=fixed_probs.get(sub),
                    generator=generator,
                    reweight=(lambda weights: tilt(weights, out)) if targeted else None,
                    sort_rows=sort_rows,
                )
                if targeted and tilt.stops:
                    out[sub] = codes
                    break
            out[sub] = codes
            inputs[:, starts[i] : starts[i + 1]] = F.embedding(codes, plan.embedding)
        return out.t()
