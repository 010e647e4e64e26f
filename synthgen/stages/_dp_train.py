"""DP-SGD in the ``train`` stage: the budget, what may be continued, the accountant file and the ledger line.

The training mechanism itself is :mod:`synthgen.privacy._dp_sgd`; this module connects it to the workspace:

- the training share of the budget comes from :func:`resolve_dp_budget` for the number of private subjects;
- ``RESUME`` of a DP run and ``REUSE`` of a DP model continue the accountant's history
  (``dp-accountant.json``), so the epsilon reported covers every step the released weights have seen;
  ``REUSE``/``RESUME`` of a model trained *without* DP under DP is refused (its weights are not private);
- the ledger line of the training mechanism is written with, and before, every checkpoint of the weights, so
  the weights on disk never carry more steps than the ledger reports.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

from .._workspace import Workspace
from ..domain import DifferentialPrivacyConfig, ModelStateStrategy
from ..privacy._dp_budget import resolve_dp_budget
from ..privacy._dp_sgd import accountant_epsilon, mechanism_name, plan_private_sgd
from ..privacy._ledger import LedgerEntry

__all__ = ["PrivateTraining", "check_dp_continuation"]

_log = logging.getLogger(__name__)


def check_dp_continuation(ws: Workspace, strategy: ModelStateStrategy, private: bool) -> dict[str, Any] | None:
    """The accountant state a run continues from (None for a fresh start), after checking that it may.

    Raises
    ------
    ValueError
        For ``REUSE``/``RESUME`` of a model trained without differential privacy when ``private``, and for
        ``RESUME`` of a DP run without ``differential_privacy``.
    """
    if strategy == ModelStateStrategy.RESET or not ws.has_trained_model():
        return None
    saved = ws.read_dp_accountant()
    if private and saved is None:
        raise ValueError(
            f"model_state_strategy={strategy.value} with differential_privacy: the saved model was trained "
            "without differential privacy, so its weights already reveal the training data and no epsilon "
            "can be reported for a model fine-tuned from them. Use model_state_strategy='RESET'.")
    if not private and saved is not None and strategy == ModelStateStrategy.RESUME:
        raise ValueError(
            "model_state_strategy=RESUME: the run was trained with differential privacy; pass the same "
            "differential_privacy to continue it (or model_state_strategy='RESET').")
    if not private and saved is not None:
        # REUSE of a DP model without DP: the result is not private any more
        ws.dp_accountant_path.unlink()
        ws.write_privacy_ledger("train", [])
        return None
    return saved


class PrivateTraining:
    """The DP-SGD side of one ``train`` call.

    Parameters
    ----------
    ws : Workspace
    config : DifferentialPrivacyConfig
    n_subjects : int
        Private subjects trained on (rows of a flat table, entities of a two-table one, records of a LANGUAGE
        table): they set the sampling rate and, when ``delta`` is automatic, delta.
    max_epochs : float
        The epoch budget, for which the noise multiplier is calibrated when it is not given.
    continued : dict or None
        The accountant state of :func:`check_dp_continuation`.
    prior_share : float, default=0
        For a fresh flat model: start the output biases from noisy counts, a Gaussian mechanism that alone
        would cost this share of the training epsilon (composed with the steps, much less).
    """

    def __init__(self, ws: Workspace, config: DifferentialPrivacyConfig, *, n_subjects: int, max_epochs: float,
                 continued: dict[str, Any] | None, prior_share: float = 0.0) -> None:
        self.ws = ws
        self.budget = resolve_dp_budget(config, n_subjects)
        history, continue_with, prior = [], None, None
        if continued is not None:
            if continued["accountant"] != self.budget.accountant or continued["delta"] != self.budget.train_delta:
                raise ValueError(
                    "differential_privacy: the saved run was accounted with accountant "
                    f"{continued['accountant']!r} at delta={continued['delta']!r}; continuing it needs the same "
                    f"(got {self.budget.accountant!r} at delta={self.budget.train_delta!r}).")
            history = continued["history"]
            continue_with = (continued["noise_multiplier"], continued["sample_rate"])
            prior = continued.get("prior_noise_multiplier")
        # no training budget (the engine API's max_epsilon=None): train with the noise multiplier and report
        epsilon = math.inf if self.budget.train_epsilon is None else self.budget.train_epsilon
        self.make_private: Callable[..., Any] = functools.partial(
            plan_private_sgd, epsilon=epsilon, delta=self.budget.train_delta,
            max_grad_norm=self.budget.max_grad_norm, noise_multiplier=self.budget.noise_multiplier,
            accountant=self.budget.accountant, n_samples=n_subjects, max_epochs=max_epochs, history=history,
            continue_with=continue_with, prior_share=0.0 if continued is not None else prior_share,
            prior_noise_multiplier=prior)

    def ledger_entry(self, state: dict[str, Any]) -> LedgerEntry:
        """The training mechanism's ledger line for the accountant ``state`` (at the released weights)."""
        history = state["history"]
        epsilon = accountant_epsilon(history, state["delta"], state["accountant"])
        sigma, q = state["noise_multiplier"], state["sample_rate"]
        steps = sum(int(k) for s, rate, k in history if (s, rate) == (sigma, q))
        mechanism = mechanism_name(state["accountant"], sigma, state["max_grad_norm"], q, steps)
        prior = state.get("prior_noise_multiplier")
        if prior is not None:
            mechanism += f" after a Gaussian output prior (σ={prior:.4g})"
        return LedgerEntry(stage="train", column=None, mechanism=mechanism, epsilon=epsilon, delta=state["delta"])

    def record(self, state: dict[str, Any] | None) -> None:
        """Write the accountant and the ledger line of ``state`` (call before the weights it belongs to)."""
        if state is None:
            return
        self.ws.write_dp_accountant(state)
        entry = self.ledger_entry(state)
        self.ws.write_privacy_ledger("train", [entry])
        _log.info("DP-SGD: epsilon %.4g at delta %.3g after %s", entry.epsilon, entry.delta, entry.mechanism)

    def wrap_checkpoint(self, on_checkpoint: Callable[[dict], None]) -> Callable[[dict], None]:
        """``on_checkpoint`` that records the accountant and the ledger first."""

        def private_checkpoint(state: dict) -> None:
            self.record(state.get("privacy"))
            on_checkpoint(state)

        return private_checkpoint
