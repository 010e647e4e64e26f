"""The sequential model: a context table (one row per subject) and a sequence of event rows per subject.

The likelihood of a subject factorises as ``p(L | c) * prod_t p(step_t | c, steps_<t, t, L - t)``:

- the context codes are embedded into a context vector ``c`` (as in :class:`FlatARGN`);
- a length head predicts the length ``L`` from ``c`` once, as a categorical over ``0 .. max_len``; the
  length is known before the first step, so the steps can depend on how many remain (training may give
  smoothed length targets, :mod:`._lengths`, so that it does not reproduce single entities' exact lengths);
- a step is modelled by the any-order within-step heads of a :class:`FlatARGN` whose dense condition is
  a trunk layer (Linear → ReLU) over ``[c, history_t, e_{t-1}, position(t), position(L - t)]``:
  ``history_t`` is an LSTM over the embeddings of the earlier steps (zeros at ``t = 0``), ``e_{t-1}`` the
  previous step's embeddings (a direct path, so that copying a value from one step to the next, such as a
  plane's carrier, does not have to pass through the LSTM's memory), and the positions are bucketed
  embeddings (see :mod:`._positions`). The trunk mixes these non-linearly once per step and keeps the
  heads' input narrow (every head reads the condition, so its width multiplies the heads' cost);
- a *copy path* adds ``a_s(condition)`` to the logit of the previous step's code in every head ``s``, with
  ``a_s`` a linear function of the condition (zero at ``t = 0``). A column that stays constant within a
  sequence (a plane's carrier) is then repeated with near certainty once ``a_s`` is large, instead of
  leaking a little probability at every step, which compounds over long sequences.

Compared with the reference engine there are no positional pseudo-columns: the length is one explicit
draw whose loss is separate from the steps' losses, the loss is per subject (not normalised by the batch's
step count), and generation unrolls only up to each batch's longest drawn length, keeping the still-active
subjects as a prefix of a length-sorted batch, so finished subjects cost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from ._fairness import BoundTilt, FairnessTilt
from ._network import FlatARGN, _Embedder, keep_missing_buffers
from ._positions import position_buckets, progress_buckets, step_progress
from ._sampling import generator_on, prepare_fixed_probs, sample_categorical
from ._sequence_batches import StepBatch
from ._sequential_spec import SequentialSpec, build_sequential_spec
from ._spec import ColumnSpec
from ._trainer import check_codes
from ._value_pairs import ValuePairs, value_part_pairs

__all__ = ["CALIBRATION_PROGRESS_BUCKETS", "SequentialARGN"]

_INIT_SEED = 0
# The marginal calibration of a column that trends along the sequences (a month, a date, a counter) is fitted per
# share of the sequence done, in this many equal buckets (see `_calibration`). Every subject has steps in almost
# every bucket, so a bucket's pilot holds nearly all pilot subjects and its shares are about as precise as the
# whole pilot's.
CALIBRATION_PROGRESS_BUCKETS = 8
# Calibration buffers added after the first saved models: weights without them load with zeros (no calibration by
# progress, as those models were fitted).
_PROGRESS_BUFFERS = ("progress_counts", "progress_offsets")
# Calibration buffers of the joint calibration of value parts (`_value_pairs`), added in issue 15's seventh round:
# weights without them load with zeros (no joint calibration, as those models were fitted).
_PAIR_BUFFERS = ("pair_counts", "pair_offsets")


@attrs.frozen
class _DrawSettings:
    """How the step heads draw during :meth:`SequentialARGN.sample` (fixed for a whole call)."""

    layout: tuple
    temperature: float
    top_p: float
    probs: dict
    generator: torch.Generator | None
    calibrated: bool = True
    # per sub-column calibrated by progress, its (CALIBRATION_PROGRESS_BUCKETS, cardinality) offsets
    progress_tables: dict = attrs.field(factory=dict)
    # per value part calibrated given the part before it: (parent sub-column, (parent card, card) offsets)
    pair_tables: dict = attrs.field(factory=dict)

    def row_offsets(self, t: int, lengths: torch.Tensor) -> dict[int, torch.Tensor] | None:
        """The progress offsets of step ``t`` of subjects of ``lengths`` (``None`` when there are none)."""
        if not self.progress_tables:
            return None
        bucket = progress_buckets(torch.full_like(lengths, t), lengths, CALIBRATION_PROGRESS_BUCKETS)
        return {sub: table[bucket] for sub, table in self.progress_tables.items()}


@attrs.frozen
class _Guide:
    """The copy path's addition to one step's logits (``None`` at the first step), and the step's calibration
    offsets by progress (:meth:`_DrawSettings.row_offsets`)."""

    copy_codes: torch.Tensor | None = None
    copy_gain: torch.Tensor | None = None
    row_offsets: dict | None = None

    def rows(self, index: torch.Tensor) -> _Guide:
        """The guide of the rows ``index`` only."""
        copy = (None if v is None else v[index] for v in (self.copy_codes, self.copy_gain))
        offsets = None if self.row_offsets is None else {s: v[index] for s, v in self.row_offsets.items()}
        return _Guide(*copy, offsets)

    def as_kwargs(self) -> dict[str, torch.Tensor | None]:
        """The keyword arguments of :meth:`FlatARGN.sample_batch` that apply the guide."""
        return attrs.asdict(self, recurse=False)


def _uniform_(param: torch.Tensor, bound: float, generator: torch.Generator) -> None:
    param.copy_(torch.rand(param.shape, generator=generator) * (2 * bound) - bound)


def _check_lengths(name: str, lengths: torch.Tensor, n: int) -> torch.Tensor:
    lengths = torch.as_tensor(lengths)
    if lengths.shape != (n,) or lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ValueError(
            f"{name} must be an integer tensor of shape ({n},); got {lengths.dtype} {tuple(lengths.shape)}."
        )
    if n and int(lengths.min()) < 0:
        raise ValueError(f"{name} must be >= 0; got a minimum of {int(lengths.min())}.")
    return lengths.long()


class SequentialARGN(nn.Module):
    """Any-order autoregressive model of event sequences conditioned on a context row per subject.

    Parameters
    ----------
    spec : SequentialSpec
        The architecture (see :func:`build_sequential_spec` and :meth:`from_preset`).
    generator : torch.Generator or None, default=None
        The source of the initial weights; ``None`` uses a fixed seed, so construction is deterministic.

    Attributes
    ----------
    spec : SequentialSpec
        The architecture.
    step_model : FlatARGN
        The within-step heads (and the step embeddings the history reads).
    config : dict
        ``spec.to_dict()``: JSON-serializable; :meth:`from_config` rebuilds the same network.

    Examples
    --------
    >>> model = SequentialARGN.from_preset([ColumnSpec("a", ("cat",), (3,))], max_len=5, median_len=2)
    >>> lengths, steps = model.sample(torch.zeros(4, 0, dtype=torch.long), generator=torch.Generator())
    >>> lengths.shape, steps.shape[0] == int(lengths.sum())
    (torch.Size([4]), True)
    """

    # The buffers a marginal calibration fits (`_calibration.fit_sequential_offsets`), by their state-dict names:
    # what generation stages save with the weights, or zero when a model is not calibrated.
    CALIBRATION_OFFSETS = ("step_model.sampling_offsets", "progress_offsets", "pair_offsets")

    def __init__(self, spec: SequentialSpec, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.step_model = FlatARGN(spec.step, generator=generator)
        self.context_embedder = None
        if spec.context:
            self.context_embedder = _Embedder(spec.context_cardinalities, spec.context_embedding_dims)
            self.context_weight = nn.Parameter(
                torch.empty(sum(spec.context_embedding_dims), spec.context_dim)
            )
            self.context_bias = nn.Parameter(torch.zeros(spec.context_dim))
            self.length_hidden_weight = nn.Parameter(torch.empty(spec.context_dim, spec.length_hidden_dim))
            self.length_hidden_bias = nn.Parameter(torch.zeros(spec.length_hidden_dim))
            self.length_weight = nn.Parameter(torch.empty(spec.length_hidden_dim, spec.max_len + 1))
        self.length_bias = nn.Parameter(torch.zeros(spec.max_len + 1))
        # Built on the meta device so that construction does not draw from the global generator.
        self.history = nn.LSTM(
            sum(spec.step.embedding_dims),
            spec.history_dim,
            num_layers=spec.history_layers,
            batch_first=True,
            device="meta",
        ).to_empty(device="cpu")
        n_buckets = spec.n_position_buckets
        self.position_done = nn.Parameter(torch.empty(n_buckets, spec.position_dim))
        self.position_left = nn.Parameter(torch.empty(n_buckets, spec.position_dim))
        self.position_progress = None
        if spec.progress_buckets:
            self.position_progress = nn.Parameter(torch.empty(spec.progress_buckets, spec.position_dim))
        self.trunk_weight = nn.Parameter(torch.empty(spec.trunk_input_dim, spec.step.condition_dim))
        self.trunk_bias = nn.Parameter(torch.zeros(spec.step.condition_dim))
        self.copy_weight = nn.Parameter(torch.empty(spec.step.condition_dim, spec.step.n_sub_columns))
        self.copy_bias = nn.Parameter(torch.zeros(spec.step.n_sub_columns))
        # The calibration by progress (see `_calibration`, persistent: saved with the weights): the training steps'
        # code counts per bucket of the share of the sequence done, and the offsets fitted on them.
        n_codes = sum(spec.step.cardinalities)
        self.register_buffer(
            "progress_counts", torch.zeros(CALIBRATION_PROGRESS_BUCKETS, n_codes, dtype=torch.float64)
        )
        self.register_buffer("progress_offsets", torch.zeros(CALIBRATION_PROGRESS_BUCKETS, n_codes))
        # The joint calibration of value parts (a clock time's minute given its hour; `_calibration`): the
        # training steps' counts of each (parent code, child code) pair, and the offsets fitted on them.
        self.value_pairs = ValuePairs(value_part_pairs(spec.step.columns), spec.step.cardinalities)
        self.register_buffer("pair_counts", torch.zeros(self.value_pairs.n_cells, dtype=torch.float64))
        self.register_buffer("pair_offsets", torch.zeros(self.value_pairs.n_cells))
        self.reset_parameters(generator)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        keep_missing_buffers(self, state_dict, prefix, _PROGRESS_BUFFERS + _PAIR_BUFFERS)
        super()._load_from_state_dict(state_dict, prefix, *args)

    @classmethod
    def from_preset(
        cls,
        columns: Sequence[ColumnSpec],
        *,
        context: Sequence[ColumnSpec] = (),
        max_len: int,
        median_len: float,
        size: str = "MOSTLY_AI/Medium",
        flexible: bool = True,
        generator: torch.Generator | None = None,
    ) -> SequentialARGN:
        """Build a model whose widths come from a size preset (see :func:`build_sequential_spec`)."""
        spec = build_sequential_spec(
            columns, context=context, max_len=max_len, median_len=median_len, size=size, flexible=flexible
        )
        return cls(spec, generator=generator)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, generator: torch.Generator | None = None
    ) -> SequentialARGN:
        """Rebuild a model from its :attr:`config`; load its weights with ``load_state_dict``."""
        return cls(SequentialSpec.from_dict(dict(config)), generator=generator)

    @property
    def config(self) -> dict[str, Any]:
        """The JSON-serializable architecture (``spec.to_dict()``)."""
        return self.spec.to_dict()

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Draw fresh weights (the step heads as in :class:`FlatARGN`, LSTM and tables uniform / normal)."""
        if generator is None:
            generator = torch.Generator().manual_seed(_INIT_SEED)
        self.step_model.reset_parameters(generator)
        spec = self.spec
        bound = 1.0 / math.sqrt(spec.history_dim)
        for param in self.history.parameters():
            _uniform_(param, bound, generator)
        for table in (self.position_done, self.position_left, self.position_progress):
            if table is not None:
                table.copy_(torch.randn(table.shape, generator=generator))
        self.length_bias.zero_()
        _uniform_(self.trunk_weight, math.sqrt(6.0 / sum(self.trunk_weight.shape)), generator)
        self.trunk_bias.zero_()
        # The copy path starts neutral: the heads alone decide until the data shows that codes repeat.
        self.copy_weight.zero_()
        self.copy_bias.zero_()
        if self.context_embedder is not None:
            self.context_embedder.weight.copy_(
                torch.randn(self.context_embedder.weight.shape, generator=generator)
            )
            for weight in (self.context_weight, self.length_hidden_weight, self.length_weight):
                _uniform_(weight, math.sqrt(6.0 / sum(weight.shape)), generator)
            self.context_bias.zero_()
            self.length_hidden_bias.zero_()

    @torch.no_grad()
    def init_output_bias(
        self, steps: torch.Tensor, lengths: torch.Tensor, length_counts: torch.Tensor | None = None
    ) -> None:
        """Start the step heads and the length head at the smoothed log-frequencies of the data.

        Do not use under differential privacy: the biases would reveal exact counts.

        Parameters
        ----------
        steps : torch.Tensor
            ``(total_steps, n_sub_columns)`` training step codes.
        lengths : torch.Tensor
            ``(n_subjects,)`` training sequence lengths.
        length_counts : torch.Tensor, optional
            ``(max_len + 1,)`` (possibly fractional) subjects per length to start the length head at instead
            of the counts of ``lengths``: the smoothed histogram of :class:`~._lengths.LengthSmoother`.
        """
        if len(steps):
            self.step_model.init_output_bias(steps)
            if int(lengths.sum()) == len(steps):  # the calibration's targets by progress
                self.progress_counts.copy_(self.progress_code_counts(steps, lengths))
            self.pair_counts.copy_(self.value_pairs.counts(steps))  # and of the value parts' joint tables
        if length_counts is None:
            length_counts = torch.bincount(
                lengths.long().clamp(max=self.spec.max_len), minlength=self.spec.max_len + 1
            )
        # One pseudo-subject spread over all lengths keeps every length possible without flattening the
        # distribution of a small training set (one per length would outweigh 100 subjects at max_len 400).
        n_lengths = self.spec.max_len + 1
        freq = (length_counts.double() + 1.0 / n_lengths) / (len(lengths) + 1.0)
        self.length_bias.copy_(freq.log().to(self.length_bias))

    def progress_code_counts(self, steps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(CALIBRATION_PROGRESS_BUCKETS, n_codes)``: :meth:`FlatARGN.code_counts` of the steps of each
        bucket of the share of its sequence done; ``steps`` hold sequences of ``lengths`` back to back."""
        n_codes = sum(self.spec.step.cardinalities)
        bucket = step_progress(lengths.to(steps.device), CALIBRATION_PROGRESS_BUCKETS)
        index = steps.long() + self.step_model.embedder.offsets.to(steps.device) + (bucket * n_codes)[:, None]
        counts = torch.bincount(index.reshape(-1), minlength=CALIBRATION_PROGRESS_BUCKETS * n_codes)
        return counts.reshape(CALIBRATION_PROGRESS_BUCKETS, n_codes)

    def _progress_tables(self) -> dict[int, torch.Tensor]:
        """Per sub-column with calibration offsets by progress, its ``(buckets, cardinality)`` table."""
        starts, cards = self.step_model.embedder.offsets.tolist(), self.spec.step.cardinalities
        tables = {s: self.progress_offsets[:, starts[s] : starts[s] + k] for s, k in enumerate(cards)}
        return {s: table for s, table in tables.items() if bool(table.any())}

    def _pair_tables(self) -> dict[int, tuple[int, torch.Tensor]]:
        """Per value part with joint calibration offsets, its parent sub-column and its offsets table."""
        return {child: (parent, table) for child, (parent, table) in self.value_pairs.tables(self.pair_offsets).items()
                if bool(table.any())}

    def _dropout(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        p = self.spec.step.dropout
        if not self.training or p == 0.0:
            return x
        keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
        return x * keep.mul_(1.0 / (1.0 - p))

    def context_vector(
        self, context_codes: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The ``(n, context_dim)`` context vectors (``(n, 0)`` without context columns)."""
        if self.context_embedder is None:
            return self.length_bias.new_zeros(len(context_codes), 0)
        emb = self._dropout(self.context_embedder(context_codes.long()), generator)
        return F.relu(torch.addmm(self.context_bias, emb, self.context_weight))

    def length_logits(self, context: torch.Tensor) -> torch.Tensor:
        """``(n, max_len + 1)`` unnormalised log-probabilities of the length given context vectors."""
        if self.context_embedder is None:
            return self.length_bias.expand(len(context), -1)
        hidden = F.relu(torch.addmm(self.length_hidden_bias, context, self.length_hidden_weight))
        return torch.addmm(self.length_bias, hidden, self.length_weight)

    def _condition(
        self,
        context: torch.Tensor,
        history: torch.Tensor,
        previous: torch.Tensor,
        done: torch.Tensor,
        left: torch.Tensor,
    ) -> torch.Tensor:
        n_buckets = self.spec.n_position_buckets
        done_emb = F.embedding(position_buckets(done, n_buckets), self.position_done)
        left_emb = F.embedding(position_buckets(left, n_buckets), self.position_left)
        parts = [context, history, previous, done_emb.expand(len(history), -1), left_emb]
        if self.position_progress is not None:
            progress = progress_buckets(done, done + left, self.spec.progress_buckets)
            parts.append(F.embedding(progress, self.position_progress))
        inputs = torch.cat(parts, dim=1)
        return F.relu(torch.addmm(self.trunk_bias, inputs, self.trunk_weight))

    def _copy_gain(self, condition: torch.Tensor, has_previous: torch.Tensor | None = None) -> torch.Tensor:
        gain = torch.addmm(self.copy_bias, condition, self.copy_weight)
        return gain if has_previous is None else gain * has_previous[:, None].to(gain.dtype)

    def forward(
        self,
        batch: StepBatch,
        order: Sequence[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The negative log-likelihood of every subject of a batch: its length plus its scored steps.

        Parameters
        ----------
        batch : StepBatch
            Contexts, lengths and step windows (see :func:`gather_batch`).
        order : sequence of int or None
            The within-step column order; ``None`` means the training order.
        generator : torch.Generator or None
            The source of the dropout masks in training mode.

        Returns
        -------
        torch.Tensor
            ``(batch,)`` NLL in nats: the length term plus the sum over the scored steps of the window.
        """
        context = self.context_vector(batch.context, generator)
        targets = batch.lengths.clamp(max=self.spec.max_len)
        if batch.length_targets is not None:
            targets = batch.length_targets
        nll = F.cross_entropy(self.length_logits(context), targets, reduction="none")
        n, width, n_sub = batch.codes.shape
        if width == 0:
            return nll
        embedder = self.step_model.embedder
        embedded = embedder(batch.codes.reshape(-1, n_sub)).view(n, width, -1)
        previous = embedder(batch.previous) * (batch.start > 0).unsqueeze(1).to(embedded.dtype)
        inputs = torch.cat([previous.unsqueeze(1), embedded[:, :-1]], dim=1)
        inputs = self._dropout(inputs, generator)
        previous_codes = torch.cat([batch.previous.unsqueeze(1), batch.codes[:, :-1]], dim=1)
        history, _ = self.history(inputs)
        position = torch.arange(width, device=nll.device)
        scored = (position >= batch.n_warmup[:, None]) & (position < batch.n_steps[:, None])
        rows, steps = scored.nonzero(as_tuple=True)
        done = batch.start[rows] + steps
        condition = self._condition(
            context[rows], history[rows, steps], inputs[rows, steps], done, batch.lengths[rows] - done
        )
        step_nll = self.step_model(
            batch.codes[rows, steps],
            order=order,
            generator=generator,
            condition=condition,
            copy_codes=previous_codes[rows, steps],
            copy_gain=self._copy_gain(condition, done > 0),
        )
        return nll.index_add(0, rows, step_nll)

    def _check_sample_arguments(
        self,
        context_codes: torch.Tensor,
        fixed_lengths: torch.Tensor | None,
        seed_steps: torch.Tensor | None,
        seed_lengths: torch.Tensor | None,
        temperature: float,
        top_p: float,
        batch_size: int,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        if not isinstance(context_codes, torch.Tensor) or context_codes.dim() != 2:
            raise ValueError(
                f"context_codes must be a 2-d integer tensor; got {type(context_codes).__name__}."
            )
        check_codes("context_codes", context_codes, self.spec.context_cardinalities)
        n = len(context_codes)
        if not (math.isfinite(temperature) and temperature >= 0.0):
            raise ValueError(f"temperature must be a finite number >= 0; got {temperature!r}.")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1]; got {top_p!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size!r}.")
        if fixed_lengths is not None:
            fixed_lengths = _check_lengths("fixed_lengths", fixed_lengths, n)
        if (seed_steps is None) != (seed_lengths is None):
            raise ValueError("seed_steps and seed_lengths must be given together.")
        if seed_lengths is not None:
            seed_lengths = _check_lengths("seed_lengths", seed_lengths, n)
            total = int(seed_lengths.sum())
            if len(seed_steps) != total:
                raise ValueError(
                    f"seed_steps must hold sum(seed_lengths) = {total} rows; got {len(seed_steps)}."
                )
            check_codes("seed_steps", seed_steps, self.spec.step.cardinalities)
            if fixed_lengths is not None and bool((fixed_lengths < seed_lengths).any()):
                bad = int((fixed_lengths < seed_lengths).nonzero()[0])
                raise ValueError(
                    f"fixed_lengths must be >= seed_lengths; subject {bad} has length "
                    f"{int(fixed_lengths[bad])} "
                    f"but {int(seed_lengths[bad])} seeded steps."
                )
            if fixed_lengths is None and n and int(seed_lengths.max()) > self.spec.max_len:
                raise ValueError(
                    f"seed_lengths must be <= max_len ({self.spec.max_len}) unless fixed_lengths are given; "
                    f"got {int(seed_lengths.max())}."
                )
        return fixed_lengths, seed_steps, seed_lengths

    @torch.no_grad()
    def sample(
        self,
        context_codes: torch.Tensor,
        *,
        fixed_lengths: torch.Tensor | None = None,
        seed_steps: torch.Tensor | None = None,
        seed_lengths: torch.Tensor | None = None,
        column_order: Sequence[int] | None = None,
        temperature: float = 1.0,
        top_p: float = 1.0,
        fixed_probs: Mapping[int, Mapping[int, float]] | None = None,
        generator: torch.Generator | None = None,
        batch_size: int = 8192,
        tilt: FairnessTilt | None = None,
        calibrated: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw one sequence per context row.

        Parameters
        ----------
        context_codes : torch.Tensor
            ``(n, n_context_sub_columns)`` context codes (``(n, 0)`` for a key-only context).
        fixed_lengths : torch.Tensor or None
            ``(n,)`` lengths to use instead of drawing them (may exceed ``max_len``).
        seed_steps, seed_lengths : torch.Tensor or None
            A prefix to keep verbatim and continue: ``seed_lengths[i]`` steps of subject ``i``, stored back to
            back in ``seed_steps`` (``(sum(seed_lengths), n_sub_columns)``). Drawn lengths are at least the
            seed lengths (shorter lengths get probability 0).
        column_order : sequence of int or None
            The within-step column order (default the training order).
        temperature, top_p : float
            As in :meth:`FlatARGN.sample`; they apply to the length draw as well.
        fixed_probs : mapping or None
            Per step sub-column, ``{code: probability}`` forced at every step.
        generator : torch.Generator or None
            The source of randomness.
        batch_size : int, default=8192
            Subjects generated together (all their steps are unrolled in one loop over time).
        tilt : FairnessTilt or None
            The fairness tilt of a target step sub-column, applied at every step with the bias of that step
            position; its sensitive sub-columns are context sub-columns or step sub-columns drawn before the
            target. A calibrating tilt fits the biases of each step while the batch unrolls (so calibrate with
            one batch).
        calibrated : bool, default=True
            Add the step model's marginal calibration offsets (``step_model.sampling_offsets``, see
            :mod:`._calibration`) to the step heads' logits; ``False`` draws from the network alone.

        Returns
        -------
        lengths : torch.Tensor
            ``(n,)`` int64 sequence lengths.
        steps : torch.Tensor
            ``(sum(lengths), n_sub_columns)`` int64 step codes, subject by subject.

        Raises
        ------
        ValueError
            For invalid arguments.
        """
        fixed_lengths, seed_steps, seed_lengths = self._check_sample_arguments(
            context_codes, fixed_lengths, seed_steps, seed_lengths, temperature, top_p, batch_size
        )
        step_model = self.step_model
        order = step_model.check_order(step_model.training_order if column_order is None else column_order)
        if tilt is not None:
            step_model.check_tilt_order(tilt, order)
        device = self.length_bias.device
        generator = generator_on(generator, device)
        probs = {
            s: f.to(device) for s, f in prepare_fixed_probs(fixed_probs, self.spec.step.cardinalities).items()
        }
        n = len(context_codes)
        was_training = self.training
        self.eval()
        try:
            draw = _DrawSettings(step_model.generation_layout(order), temperature, top_p, probs, generator,
                                 bool(calibrated), self._progress_tables() if calibrated else {},
                                 self._pair_tables() if calibrated else {})
            seed_offsets = None
            if seed_lengths is not None:
                seed_lengths, seed_steps = seed_lengths.to(device), seed_steps.to(device).long()
                seed_offsets = torch.cat([seed_lengths.new_zeros(1), seed_lengths.cumsum(0)])
            # Slices, not index tensors: the inputs may live on another device than the model.
            batches = [slice(start, min(n, start + batch_size)) for start in range(0, n, batch_size)]
            contexts, lengths, keys = [], [], []
            for rows in batches:
                if tilt is not None:
                    keys.append(tilt.groups.context_keys(context_codes[rows], rows.stop - rows.start, device))
                context = self.context_vector(context_codes[rows].to(device))
                if fixed_lengths is not None:
                    lengths.append(fixed_lengths[rows].to(device))
                else:
                    seed = None if seed_lengths is None else seed_lengths[rows]
                    lengths.append(self._sample_lengths(context, seed, temperature, top_p, generator))
                contexts.append(context)
            lengths = torch.cat(lengths) if lengths else torch.zeros(0, dtype=torch.long, device=device)
            offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
            steps = torch.empty(
                int(offsets[-1]), self.spec.step.n_sub_columns, dtype=torch.long, device=device
            )
            for i, (rows, context) in enumerate(zip(batches, contexts, strict=True)):
                seed = None
                if seed_lengths is not None:
                    seed = (seed_steps, seed_offsets[rows], seed_lengths[rows])
                bound = None if tilt is None else tilt.bind(keys[i])
                # inference mode spares every op of the step loop its autograd bookkeeping (10-15 % of the
                # loop on one thread); `steps` was made outside it, so the caller gets a normal tensor
                with torch.inference_mode(tilt is None):
                    self._sample_steps(steps, offsets[rows], lengths[rows], context, seed, draw, bound)
        finally:
            self.train(was_training)
        return lengths, steps

    def _sample_lengths(
        self,
        context: torch.Tensor,
        seed_lengths: torch.Tensor | None,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        logits = self.length_logits(context)
        if seed_lengths is not None:
            too_short = torch.arange(logits.shape[1], device=logits.device) < seed_lengths[:, None]
            logits = logits.masked_fill(too_short, -math.inf)
        return sample_categorical(logits, temperature=temperature, top_p=top_p, generator=generator,
                                  sort_rows=True)

    def _sample_steps(
        self,
        out: torch.Tensor,
        offsets: torch.Tensor,
        lengths: torch.Tensor,
        context: torch.Tensor,
        seed: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None,
        draw: _DrawSettings,
        tilt: BoundTilt | None = None,
    ) -> None:
        """Unroll the steps of one batch of subjects into ``out`` at their ``offsets``."""
        if len(lengths) == 0 or int(lengths.max()) == 0:
            return
        # Longest first: the subjects still active at step t are then always a prefix of the batch.
        by_length = torch.argsort(lengths, descending=True, stable=True)
        lengths, offsets, context = lengths[by_length], offsets[by_length], context[by_length]
        if tilt is not None:
            tilt = tilt.rows(by_length)
        n_active = torch.searchsorted(
            lengths.flip(0), torch.arange(int(lengths[0]), device=lengths.device), right=True
        )
        n_active = (len(lengths) - n_active).tolist()
        if seed is not None:
            seed_steps, seed_offsets, seed_lengths = seed
            seed_offsets, seed_lengths = seed_offsets[by_length], seed_lengths[by_length]
        embedder = self.step_model.embedder
        layers, width = self.spec.history_layers, self.spec.history_dim
        state = (
            context.new_zeros(layers, len(lengths), width),
            context.new_zeros(layers, len(lengths), width),
        )
        inputs = context.new_zeros(len(lengths), 1, sum(self.spec.step.embedding_dims))
        codes = None
        for t, k in enumerate(n_active):
            state = (state[0][:, :k].contiguous(), state[1][:, :k].contiguous())
            history, state = self.history(inputs[:k], state)
            done = torch.full((1,), t, device=lengths.device)
            condition = self._condition(context[:k], history[:, 0], inputs[:k, 0], done, lengths[:k] - t)
            # No earlier step at t = 0, hence no copy path.
            row_offsets = draw.row_offsets(t, lengths[:k])
            guide = (_Guide(row_offsets=row_offsets) if codes is None
                     else _Guide(codes[:k], self._copy_gain(condition), row_offsets))
            step_tilt = None if tilt is None else tilt.at(t, k)
            if seed is None:
                codes = self._draw_step(condition, guide, draw, step_tilt)
            else:
                prefix = (seed_steps, seed_offsets[:k], seed_lengths[:k])
                codes = self._seeded_step(t, *prefix, condition, guide, draw, step_tilt)
            out[offsets[:k] + t] = codes
            inputs = embedder(codes).unsqueeze(1)

    def _draw_step(
        self, condition: torch.Tensor, guide: _Guide, draw: _DrawSettings, tilt: BoundTilt | None = None
    ) -> torch.Tensor:
        return self.step_model.sample_batch(
            draw.layout,
            None,
            {},
            draw.temperature,
            draw.top_p,
            draw.probs,
            draw.generator,
            condition=condition,
            tilt=tilt,
            calibrated=draw.calibrated,
            pair_offsets=draw.pair_tables,
            sort_rows=True,  # the rows are different subjects: stratify among those with similar distributions
            **guide.as_kwargs(),
        )

    def _seeded_step(
        self,
        t: int,
        seed_steps: torch.Tensor,
        seed_offsets: torch.Tensor,
        seed_lengths: torch.Tensor,
        condition: torch.Tensor,
        guide: _Guide,
        draw: _DrawSettings,
        tilt: BoundTilt | None = None,
    ) -> torch.Tensor:
        # Seeded rows take their codes verbatim; only the others go through the heads.
        seeded = seed_lengths > t
        codes = (
            seed_steps[(seed_offsets + t).clamp(max=max(0, len(seed_steps) - 1))] if len(seed_steps) else None
        )
        free = (~seeded).nonzero().squeeze(1)
        if len(free) == len(seeded):
            return self._draw_step(condition, guide, draw, tilt)
        if len(free):
            # The copy path (and the fairness tilt) follow the rows that are drawn.
            drawn = self._draw_step(condition[free], guide.rows(free), draw, None if tilt is None else tilt.rows(free))
            codes = codes.index_copy(0, free, drawn)
        return codes
