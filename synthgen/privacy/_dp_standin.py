"""TEMPORARY stand-in for dp-stats' _dp_budget / _ledger (deleted once that branch lands)."""
from __future__ import annotations

import json

import attrs


@attrs.frozen
class DPBudget:
    stats_epsilon: float
    stats_delta: float
    train_epsilon: float
    train_delta: float
    noise_multiplier: float | None
    max_grad_norm: float
    accountant: str


@attrs.frozen
class LedgerEntry:
    stage: str
    column: str | None
    mechanism: str
    epsilon: float
    delta: float


def resolve_dp_budget(config, n_subjects: int) -> DPBudget:
    eps = getattr(config, "epsilon", None) or getattr(config, "max_epsilon", None) or 10.0
    share = getattr(config, "stats_share", 0.1)
    delta = min(1e-5, max(n_subjects, 1) ** -1.2)
    return DPBudget(eps * share, delta / 2, eps * (1 - share), delta / 2, None, config.max_grad_norm,
                    getattr(config, "accountant", "prv"))


def write_privacy_ledger(ws, stage: str, entries) -> None:
    path = ws.model_store / "privacy-ledger.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[stage] = [attrs.asdict(e) for e in entries]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
