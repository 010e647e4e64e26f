"""The differential-privacy budget of one release, resolved from a :class:`DifferentialPrivacyConfig`.

A release spends its budget on two stages, composed basically (epsilons add up, deltas add up):

- **statistics** (analyze): ``stats_epsilon`` is split over the released statistics; ``stats_delta`` pays for the
  mechanisms that are only (epsilon, delta)-DP (category sets discovered by a noisy threshold);
- **training** (DP-SGD): ``train_epsilon`` / ``train_delta`` are the target of the accountant.

With a total ``epsilon`` the statistics get ``stats_share * epsilon``, training the rest. With the engine API's
pair, the statistics get ``value_protection_epsilon`` (1.0 when not given) and training ``max_epsilon`` (``None``:
no limit, training reports what it spent). The total ``delta`` (``min(1e-5, n ** -1.2)`` when not given, so it
stays well below ``1 / n`` as the data grows) is split by the same ``stats_share``: the statistics' thresholds
get ``stats_share * delta``, training the rest, and the ledger's total delta is their sum.

The number of subjects ``n`` is treated as public (it sets delta and is released as the record count).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..domain import DifferentialPrivacyConfig

__all__ = ["DEFAULT_NOISE_MULTIPLIER", "DEFAULT_STATS_EPSILON", "DPBudget", "default_delta", "resolve_dp_budget"]

DEFAULT_NOISE_MULTIPLIER = 1.5
"""The noise multiplier of training without an epsilon limit (the engine's default)."""

DEFAULT_STATS_EPSILON = 1.0
"""The statistics' epsilon of the engine API's config when ``value_protection_epsilon`` is not given."""


@attrs.frozen(kw_only=True)
class DPBudget:
    """The resolved budget of one release.

    Attributes
    ----------
    stats_epsilon, stats_delta : float
        What analyze may spend on all released statistics together.
    train_epsilon : float or None
        Training's epsilon budget; ``None`` means no limit (train with ``noise_multiplier`` and report).
    train_delta : float
        The delta at which training's epsilon is accounted.
    noise_multiplier : float or None
        ``None``: calibrate the noise to ``train_epsilon``; a number: use it (and still stop at the budget).
    max_grad_norm : float
        Per-sample clipping norm.
    accountant : str
        ``"prv"``, ``"rdp"`` or ``"gdp"``.
    """

    stats_epsilon: float
    stats_delta: float
    train_epsilon: float | None
    train_delta: float
    noise_multiplier: float | None
    max_grad_norm: float
    accountant: str

    @property
    def total_delta(self) -> float:
        """The delta of the whole release (basic composition)."""
        return self.stats_delta + self.train_delta

    @property
    def total_epsilon(self) -> float | None:
        """The epsilon budget of the whole release; ``None`` when training has no limit."""
        return None if self.train_epsilon is None else self.stats_epsilon + self.train_epsilon


def default_delta(n_subjects: int) -> float:
    """``min(1e-5, n ** -1.2)``: a delta well below ``1 / n`` whatever the data size."""
    if n_subjects < 1:
        return 1e-5
    return min(1e-5, float(n_subjects) ** -1.2)


def resolve_dp_budget(config: DifferentialPrivacyConfig | dict[str, Any], n_subjects: int) -> DPBudget:
    """The budget of a release of ``n_subjects`` subjects under ``config``.

    Parameters
    ----------
    config : DifferentialPrivacyConfig or dict
        The user's configuration (a dict is coerced).
    n_subjects : int
        The number of subjects (rows of a flat table, context entities of a two-table model).

    Returns
    -------
    DPBudget
    """
    config = DifferentialPrivacyConfig.coerce(config, name="differential_privacy")
    delta = config.delta if config.delta is not None else default_delta(n_subjects)
    if config.epsilon is not None:
        stats_epsilon = config.stats_share * config.epsilon
        train_epsilon = config.epsilon - stats_epsilon
    else:
        stats_epsilon = (config.value_protection_epsilon if config.value_protection_epsilon is not None
                         else DEFAULT_STATS_EPSILON)
        train_epsilon = config.max_epsilon
    noise = config.noise_multiplier
    if noise is None and train_epsilon is None:
        noise = DEFAULT_NOISE_MULTIPLIER
    stats_delta = config.stats_share * delta
    return DPBudget(stats_epsilon=float(stats_epsilon), stats_delta=float(stats_delta),
                    train_epsilon=None if train_epsilon is None else float(train_epsilon),
                    train_delta=float(delta - stats_delta), noise_multiplier=noise,
                    max_grad_norm=float(config.max_grad_norm), accountant=config.accountant)
