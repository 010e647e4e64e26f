"""The privacy ledger: every mechanism that touched the private data, with the epsilon and delta it spent.

Each stage that runs under differential privacy writes its lines to the workspace
(:meth:`synthgen.Workspace.write_privacy_ledger`); a fitted synthesizer exposes them as ``privacy_report_`` and
their totals as ``epsilon_`` / ``delta_``. Totals use basic composition (sums), which holds for any
mechanisms, adaptively chosen or not; it is an upper bound, never an under-report.
Value protection (rare-category and extreme-value hiding) is not differential privacy and is never a line here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs
import pandas as pd

__all__ = ["LEDGER_COLUMNS", "LedgerEntry", "ledger_frame", "ledger_totals"]

LEDGER_COLUMNS = ("stage", "column", "mechanism", "epsilon", "delta")


def _non_negative(instance, attribute, value):
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 and not math.isnan(value)):
        raise ValueError(f"ledger {attribute.name} must be a non-negative number; got {value!r} instead.")


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One mechanism applied to the private data.

    Attributes
    ----------
    stage : str
        The stage that ran it (``"analyze"``, ``"train"``).
    column : str or None
        The column it released, ``None`` for table-wide mechanisms (sequence lengths, DP-SGD).
    mechanism : str
        What it was, e.g. ``"laplace threshold (categories)"``, ``"exponential quantiles"``, ``"dp-sgd (prv)"``.
    epsilon, delta : float
        What it spent.
    """

    stage: str
    column: str | None
    mechanism: str
    epsilon: float = attrs.field(converter=float, validator=_non_negative)
    delta: float = attrs.field(converter=float, validator=_non_negative)

    def to_dict(self) -> dict[str, Any]:
        """The entry as a JSON-serializable dict."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        """The entry of :meth:`to_dict`."""
        return cls(**{name: data[name] for name in LEDGER_COLUMNS})


def ledger_frame(entries: Iterable[LedgerEntry]) -> pd.DataFrame:
    """The entries as a DataFrame with columns ``stage, column, mechanism, epsilon, delta`` (one row each)."""
    rows = [entry.to_dict() for entry in entries]
    frame = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    return frame.astype({"stage": object, "column": object, "mechanism": object,
                         "epsilon": "float64", "delta": "float64"})


def ledger_totals(entries: Iterable[LedgerEntry]) -> tuple[float, float]:
    """``(epsilon, delta)`` of all entries together under basic composition: the sums."""
    entries = list(entries)
    return float(math.fsum(e.epsilon for e in entries)), float(math.fsum(e.delta for e in entries))
