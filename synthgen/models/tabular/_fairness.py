"""Statistical parity by a minimum-KL tilt of the target's sampling distribution (pure tensors).

Fair generation asks that a categorical target ``T`` be independent of a group ``G`` formed by some
categorical sensitive columns: ``P(T | G = g) = q`` for every group. The sensitive columns are drawn before
the target, so each row ``i`` reaches the target with a sampling distribution ``w_i`` (after temperature,
nucleus and fixed probabilities) and a known group ``g_i``. Among all changes of the ``w_i`` that reach
parity, the one closest in KL divergence (the I-projection) multiplies them by a per-group factor:

``r_i ∝ w_i · exp(b_{g_i})`` with ``mean_{i ∈ g}(r_i) = q`` for every group ``g``,

and ``q = mean_i(w_i)``, the target's marginal. Each row keeps its dependence on everything drawn before
the target (within a group, the odds between rows are unchanged), and any columns drawn after the target
follow the tilted target as the model says they should (generation draws the target last, so that nothing
else changes).

The biases are found by the fixed point ``b_g ← b_g + log q − log mean_g(r)`` (iterative proportional
fitting: rows sum to one, group means to ``q``), vectorised over groups, so the cost grows with the groups
that occur, not with the product of the sensitive columns' cardinalities. A group with fewer than
``min_group_rows`` rows, and a group that did not occur at all, share a *pooled* bias fitted on all small
groups together (zero when there are none). Applying the biases is one gather.

Where the ``w_i`` come from (see :class:`FairnessTilt`): a flat model whose target is drawn last can draw
all other columns of a batch first and fit the biases on the batch's own rows (parity then holds given the
other columns as drawn, with no calibration noise); otherwise a calibration batch drawn like the rows to
generate gives them. Sequential models draw a target per step: the biases are fitted per step position while
the batch unrolls (the tilt of step ``t`` changes the history of step ``t + 1``); a calibration batch's
biases serve the steps of smaller batches (the last calibrated step's beyond the calibrated length).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import torch

from ._sampling import inverse_cdf_draw

__all__ = ["FairnessTilt", "GroupIndex", "TiltTable", "fit_tilt", "parity_gap"]

MIN_GROUP_ROWS = 20
"""Groups with fewer calibration rows share the pooled bias."""
MIN_STEP_ROWS = 200
"""Calibrating a sequential model: a step with fewer rows keeps the previous step's biases."""
MAX_BIAS = 30.0
"""Biases are clipped to ±MAX_BIAS nats: a group whose rows rule a class out cannot reach parity."""
_MAX_KEY = 2**62


def _int_tuple(values: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


@attrs.frozen
class GroupIndex:
    """How a row's group key is computed from the codes of the sensitive sub-columns (mixed radix).

    Parameters
    ----------
    context_subs, context_cards : tuple of int
        Sensitive sub-columns of the context (their indices among the context codes) and their cardinalities.
    subs, cards : tuple of int
        Sensitive sub-columns of the generated table (drawn before the target) and their cardinalities.

    Raises
    ------
    ValueError
        Without any sensitive sub-column, or when the combinations do not fit a 62-bit key.
    """

    context_subs: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)
    context_cards: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)
    subs: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)
    cards: tuple[int, ...] = attrs.field(default=(), converter=_int_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.context_subs and not self.subs:
            raise ValueError("A GroupIndex needs at least one sensitive sub-column.")
        if len(self.context_subs) != len(self.context_cards) or len(self.subs) != len(self.cards):
            raise ValueError("Every sensitive sub-column needs its cardinality.")
        if math.prod(self.context_cards) * math.prod(self.cards) >= _MAX_KEY:
            raise ValueError("The sensitive columns have too many combinations of categories to index.")

    def context_keys(self, context_codes: torch.Tensor | None, n: int, device: torch.device) -> torch.Tensor:
        """``(n,)`` partial keys from the context codes (zeros without sensitive context columns)."""
        keys = torch.zeros(n, dtype=torch.long, device=device)
        for sub, card in zip(self.context_subs, self.context_cards, strict=True):
            keys = keys * card + context_codes[:, sub].to(device).long()
        return keys

    def keys(self, partial: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Full keys from partial (context) keys and the ``(n_sub_columns, n)`` codes drawn so far."""
        keys = partial
        for sub, card in zip(self.subs, self.cards, strict=True):
            keys = keys * card + codes[sub].long()
        return keys


@attrs.frozen(eq=False)
class TiltTable:
    """Per-group biases on the target's log-probabilities.

    Attributes
    ----------
    keys : torch.Tensor
        ``(G,)`` sorted int64 keys of the groups with their own bias.
    bias : torch.Tensor
        ``(G + 1, K)`` biases; the last row is the pooled bias of small and unseen groups.
    residual : float
        The largest ``|mean_g(r) - q|`` left on the calibration rows (own-bias groups and the pool).
    """

    keys: torch.Tensor
    bias: torch.Tensor
    residual: float = 0.0

    def rows(self, keys: torch.Tensor) -> torch.Tensor:
        """The bias row of each key (the pooled row for keys without their own)."""
        pooled = len(self.keys)
        if pooled == 0:
            return torch.full_like(keys, pooled)
        position = torch.searchsorted(self.keys, keys).clamp_(max=pooled - 1)
        return torch.where(self.keys[position] == keys, position, torch.full_like(position, pooled))

    def to(self, device: torch.device) -> TiltTable:
        """The same table on ``device``."""
        return TiltTable(self.keys.to(device), self.bias.to(device), self.residual)


def _normalised(weights: torch.Tensor) -> torch.Tensor:
    return weights / weights.sum(dim=1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)


def fit_tilt(
    probs: torch.Tensor,
    keys: torch.Tensor,
    *,
    min_group_rows: int = MIN_GROUP_ROWS,
    max_iter: int = 200,
    tol: float = 1e-6,
) -> TiltTable:
    """Fit the per-group biases that give every group the overall mean of ``probs``.

    Parameters
    ----------
    probs : torch.Tensor
        ``(n, K)`` sampling distributions of the target, one row per calibration row (rows sum to 1).
    keys : torch.Tensor
        ``(n,)`` int64 group keys.
    min_group_rows : int, default=20
        Groups with fewer rows share one pooled bias.
    max_iter : int, default=200
        Fixed-point iterations at most (about 20 usually suffice).
    tol : float, default=1e-6
        Stop once every group mean is within ``tol`` of the target marginal.

    Returns
    -------
    TiltTable
    """
    device, n_classes = probs.device, probs.shape[1]
    if len(probs) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return TiltTable(empty, torch.zeros(1, n_classes, device=device))
    probs = _normalised(probs.double())
    target = probs.mean(0)
    reachable = target > 0
    unique, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
    own = counts >= min_group_rows
    rank = torch.cumsum(own.long(), 0) - 1
    n_own = int(own.sum())
    # Fitting group of every row: its own group, or the pool (index n_own).
    fit_group = torch.where(own[inverse], rank[inverse], torch.full_like(inverse, n_own))
    sizes = torch.bincount(fit_group, minlength=n_own + 1).to(probs.dtype)
    occupied = sizes > 0
    update = reachable & occupied[:, None]
    # Multiplicative form of b ← b + log q − log mean_g(r): factors exp(b), no logarithms in the loop.
    factors = torch.ones(n_own + 1, n_classes, dtype=probs.dtype, device=device)
    low, high = math.exp(-MAX_BIAS), math.exp(MAX_BIAS)
    residual = math.inf
    for _ in range(max_iter):
        tilted = _normalised(probs * factors[fit_group])
        means = torch.zeros_like(factors).index_add_(0, fit_group, tilted) / sizes.clamp_min(1)[:, None]
        gap = (means - target).abs()[occupied][:, reachable]
        residual = float(gap.max()) if gap.numel() else 0.0
        if residual < tol:
            break
        ratio = torch.where(update, target / means.clamp_min(1e-300), torch.ones_like(means))
        factors = (factors * ratio).clamp_(low, high)
    bias = factors.log()
    # Only differences within a row matter: centre each group's biases for readability.
    bias = bias - bias.mean(dim=1, keepdim=True)
    bias = torch.where(reachable, bias, torch.full_like(bias, -math.inf))
    return TiltTable(unique[own], bias.float(), residual)


def parity_gap(probs: torch.Tensor, keys: torch.Tensor, min_group_rows: int = MIN_GROUP_ROWS) -> float:
    """The statistical parity difference of expected class shares among groups of ``min_group_rows`` rows."""
    unique, inverse, counts = torch.unique(keys, return_inverse=True, return_counts=True)
    means = torch.zeros(len(unique), probs.shape[1], dtype=probs.dtype, device=probs.device)
    means = means.index_add_(0, inverse, probs) / counts[:, None].to(probs.dtype)
    means = means[counts >= min_group_rows]
    if len(means) < 2:
        return 0.0
    return float((means.max(0).values - means.min(0).values).max())


class FairnessTilt:
    """The fairness tilt of one target sub-column, in one of three modes.

    - ``"calibrate"`` fits the biases on the rows of each call (per step position), applies them and records
      them; :meth:`fitted` then returns a tilt that applies the recorded biases. Sequential models calibrate
      while they unroll, since the tilt of step ``t`` changes the history of step ``t + 1``.
    - ``"apply"`` applies given biases (each step's own, the last one beyond them).
    - ``"defer"`` (flat models whose target is drawn last) records the target's sampling distributions of all
      rows of a :meth:`FlatARGN.sample` call; :meth:`draw` then fits the biases on exactly these rows and draws
      the targets. Parity is then exact given the other columns as drawn, with no calibration noise.

    Parameters
    ----------
    target_sub : int
        The target sub-column (a categorical column has one).
    groups : GroupIndex
        How the group of a row is found.
    tables : sequence of TiltTable, optional
        The biases per step position, for ``"apply"``.
    mode : {"calibrate", "apply", "defer"}, optional
        Default ``"apply"`` with ``tables``, else ``"calibrate"``.
    stop_after_target : bool, default=False
        Calibration of a flat model needs the columns up to the target only, so drawing can stop there.
    min_group_rows : int, default=20
        Groups with fewer rows share the pooled bias.
    """

    def __init__(
        self,
        target_sub: int,
        groups: GroupIndex,
        tables: Sequence[TiltTable] | None = None,
        *,
        mode: str | None = None,
        stop_after_target: bool = False,
        min_group_rows: int = MIN_GROUP_ROWS,
    ) -> None:
        mode = mode or ("calibrate" if tables is None else "apply")
        if mode not in ("calibrate", "apply", "defer") or (mode == "apply") != (tables is not None):
            raise ValueError(f"mode must be 'calibrate', 'defer' or (with tables) 'apply'; got {mode!r}.")
        self.target_sub = int(target_sub)
        self.groups = groups
        self.mode = mode
        self.tables: list[TiltTable] = [] if tables is None else list(tables)
        self.stop_after_target = stop_after_target
        self.min_group_rows = min_group_rows
        self.unfair_gap = 0.0  # the largest parity gap of the untilted distributions seen while fitting
        self._recorded: list[tuple[torch.Tensor, torch.Tensor]] = []

    @property
    def calibrating(self) -> bool:
        return self.mode == "calibrate"

    def fitted(self) -> FairnessTilt:
        """A tilt that applies the biases recorded so far (each step's own, or the previous step's)."""
        return FairnessTilt(self.target_sub, self.groups, self.tables or [_empty_table()])

    @property
    def residual(self) -> float:
        """The largest distance from parity left on the fitted rows, over the fitted steps."""
        return max((table.residual for table in self.tables), default=0.0)

    def bind(self, partial_keys: torch.Tensor, step: int = 0) -> BoundTilt:
        """The tilt of one batch of rows (their partial keys from the context) at one step position."""
        return BoundTilt(self, partial_keys, step)

    def _fit(self, probs: torch.Tensor, keys: torch.Tensor) -> TiltTable:
        self.unfair_gap = max(self.unfair_gap, parity_gap(probs, keys, self.min_group_rows))
        return fit_tilt(probs, keys, min_group_rows=self.min_group_rows)

    def reweight(self, weights: torch.Tensor, keys: torch.Tensor, step: int) -> torch.Tensor:
        """Tilt ``(n, K)`` unnormalised sampling weights of rows with group ``keys`` at step ``step``."""
        if self.mode == "defer":
            self._recorded.append((_normalised(weights.float()), keys))
            return weights  # drawn again by :meth:`draw`
        if self.mode == "calibrate":
            while len(self.tables) < step:  # steps without drawn rows repeat the previous bias
                self.tables.append(self.tables[-1] if self.tables else _empty_table(weights.device))
            if len(keys) >= MIN_STEP_ROWS or not self.tables:
                table = self._fit(_normalised(weights.double()), keys)
                if len(self.tables) == step:
                    self.tables.append(table)
                else:
                    self.tables[step] = table
            else:  # too few rows (the longest sequences, a small last batch): keep the biases fitted before
                table = self.tables[min(step, len(self.tables) - 1)]
                if len(self.tables) == step:
                    self.tables.append(table)
        else:
            table = self.tables[min(step, len(self.tables) - 1)]
        return _tilt(weights, table.to(weights.device), keys)

    def draw(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """``"defer"``: fit the biases on the recorded rows and draw their targets (in recording order)."""
        if self.mode != "defer":
            raise ValueError(f"draw() needs a tilt in mode 'defer'; this one is in mode {self.mode!r}.")
        probs = torch.cat([p for p, _ in self._recorded])
        keys = torch.cat([k for _, k in self._recorded])
        self._recorded = []
        table = self._fit(probs.double(), keys)
        self.tables.append(table)
        # drawn as every other code is (stratified over the rows), so the parity the biases fit is not blurred more
        return inverse_cdf_draw(_tilt(probs, table.to(probs.device), keys), generator)


def _tilt(weights: torch.Tensor, table: TiltTable, keys: torch.Tensor) -> torch.Tensor:
    bias = table.bias[table.rows(keys)]
    bias = bias - bias.amax(dim=1, keepdim=True)
    return weights * bias.exp().to(weights.dtype)


def _empty_table(device: torch.device | str = "cpu") -> TiltTable:
    return TiltTable(torch.zeros(0, dtype=torch.long, device=device), torch.zeros(1, 1, device=device))


@attrs.frozen(eq=False)
class BoundTilt:
    """A :class:`FairnessTilt` applied to one batch: called by the network when it draws the target."""

    tilt: FairnessTilt
    partial_keys: torch.Tensor
    step: int = 0

    @property
    def sub(self) -> int:
        """The target sub-column."""
        return self.tilt.target_sub

    @property
    def stops(self) -> bool:
        """Whether drawing may stop after the target (calibration of a flat model)."""
        return self.tilt.mode == "calibrate" and self.tilt.stop_after_target

    def rows(self, index: torch.Tensor) -> BoundTilt:
        """The tilt of the rows ``index`` only."""
        return BoundTilt(self.tilt, self.partial_keys[index], self.step)

    def at(self, step: int, k: int) -> BoundTilt:
        """The tilt of the first ``k`` rows at step position ``step``."""
        return BoundTilt(self.tilt, self.partial_keys[:k], step)

    def __call__(self, weights: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Tilt the target's sampling weights given the ``(n_sub_columns, n)`` codes drawn so far."""
        return self.tilt.reweight(weights, self.tilt.groups.keys(self.partial_keys, codes), self.step)
