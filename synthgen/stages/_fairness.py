"""Fair generation: the checks of a ``FairnessConfig`` against a model and the calibration pass.

The tilt itself (per-group biases on the target's sampling distribution) lives in the model layer,
:mod:`synthgen.models.tabular._fairness`. Here the configuration is resolved to sub-columns, the column order
moves the target to the end (so the sensitive columns come before it, and every other column is drawn exactly
as without fairness: only the target changes), and one calibration batch, drawn like the rows to generate
(same seeds, context rows, temperature, nucleus and fixed probabilities), fits the biases.
"""

from __future__ import annotations

import logging
from typing import Any

import attrs
import numpy as np
import torch

from .._user_warnings import warn
from ..domain import FairnessConfig, ModelEncodingType
from ..models.tabular._bundle import column_specs
from ..models.tabular._fairness import FairnessTilt, GroupIndex

__all__ = ["CALIBRATION_ROWS", "CALIBRATION_SUBJECTS", "FairnessPlan", "plan_fairness"]

_log = logging.getLogger(__name__)

CALIBRATION_ROWS = (5_000, 20_000)
"""A flat batch of at least the lower bound of rows fits its biases on its own rows (when the target is drawn
last); smaller batches share the biases of one calibration batch of as many rows as are generated, within
these bounds (its noise then stays below the sampling noise of the generated rows)."""
CALIBRATION_SUBJECTS = 2_000
"""A sequential batch of at least this many subjects fits its biases while it unrolls; smaller batches share
those of one calibration batch of this many subjects."""
_PARITY_WARNING = 1e-3

_CATEGORICAL = ModelEncodingType.TABULAR_CATEGORICAL.value


def _sub_names(columns: dict[str, dict[str, Any]]) -> dict[str, int]:
    names = [s for spec in column_specs(columns) for s in spec.sub_columns]
    return {name: i for i, name in enumerate(names)}


def _cat_sub(stats: dict[str, Any]) -> str:
    return f"{stats['argn_processor']}:{stats['argn_column']}__cat"


def _check_categorical(column: str, stats: dict[str, Any], role: str) -> None:
    if stats["encoding_type"] != _CATEGORICAL:
        raise ValueError(
            f"fairness {role} {column!r} must be a categorical column (TABULAR_CATEGORICAL); it is "
            f"{stats['encoding_type']}. Train with tgt_encoding_types={{{column!r}: 'TABULAR_CATEGORICAL'}} "
            "(or ctx_encoding_types for a context column) to use it for fairness."
        )


@attrs.frozen
class FairnessPlan:
    """A validated ``FairnessConfig`` resolved to the model's sub-columns.

    Attributes
    ----------
    config : FairnessConfig
    target_sub : int
        The target's sub-column among the generated table's sub-columns.
    groups : GroupIndex
        The sensitive sub-columns (of the context and of the generated table).
    table_sensitive : tuple of str
        The sensitive columns of the generated table.
    """

    config: FairnessConfig
    target_sub: int
    groups: GroupIndex
    table_sensitive: tuple[str, ...]

    @property
    def target(self) -> str:
        return self.config.target_column

    def order(self, columns: list[str]) -> list[str]:
        """The column order ``columns`` with the target moved to the end.

        The sensitive columns then come before the target, and all other columns are drawn as without
        fairness (an any-order model is not exactly consistent across orders, so moving more would change
        more than the target).
        """
        return [c for c in columns if c != self.target] + [self.target]

    def tilt(self, mode: str = "calibrate", *, stop_after_target: bool = False) -> FairnessTilt:
        """A fresh tilt in ``mode`` ("calibrate" or "defer")."""
        return FairnessTilt(self.target_sub, self.groups, mode=mode, stop_after_target=stop_after_target)


def plan_fairness(
    fairness: FairnessConfig | dict | None,
    columns: dict[str, dict[str, Any]],
    ctx_columns: dict[str, dict[str, Any]] | None,
    *,
    seeded: list[str],
) -> FairnessPlan | None:
    """Validate ``fairness`` against the model's columns; None without fairness.

    Raises
    ------
    ValueError
        For an unknown column, a target that is a context or seeded column, or a column that is not
        categorical.
    """
    config = FairnessConfig.coerce(fairness, name="fairness")
    if config is None:
        return None
    ctx_columns = ctx_columns or {}
    target = config.target_column
    if target not in columns:
        if target in ctx_columns:
            raise ValueError(
                f"fairness target_column {target!r} is a column of the context table; the target must be a "
                f"column of the generated table: one of {list(columns)}."
            )
        raise ValueError(
            f"fairness target_column {target!r} is not a column of the model; known columns are {list(columns)}."
        )
    _check_categorical(target, columns[target], "target_column")
    if target in seeded:
        raise ValueError(
            f"fairness target_column {target!r} is given in seed_data; a seeded target is kept as given and "
            "cannot be made independent of the sensitive columns. Leave it out of seed_data."
        )
    unknown = [c for c in config.sensitive_columns if c not in columns and c not in ctx_columns]
    if unknown:
        known = list(columns) + [c for c in ctx_columns if c not in columns]
        raise ValueError(
            f"fairness sensitive_columns names columns the model does not know: {unknown}; known columns are "
            f"{known}."
        )
    sub_index, ctx_sub_index = _sub_names(columns), _sub_names(ctx_columns)
    context_subs, context_cards, subs, cards, table_sensitive = [], [], [], [], []
    for column in config.sensitive_columns:
        in_table = column in columns
        stats = columns[column] if in_table else ctx_columns[column]
        _check_categorical(column, stats, "sensitive column")
        card = int(stats["cardinalities"]["cat"])
        if in_table:
            subs.append(sub_index[_cat_sub(stats)])
            cards.append(card)
            table_sensitive.append(column)
        else:
            context_subs.append(ctx_sub_index[_cat_sub(stats)])
            context_cards.append(card)
    groups = GroupIndex(context_subs, context_cards, subs, cards)
    return FairnessPlan(config, sub_index[_cat_sub(columns[target])], groups, tuple(table_sensitive))


def calibration_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Which of the ``n`` rows to generate the calibration batch copies (seeds, context): all when fewer."""
    if n <= size:
        return np.arange(n) if n == size else np.sort(rng.choice(n, size=size, replace=True))
    return np.sort(rng.choice(n, size=size, replace=False))


def check_parity(tilt: FairnessTilt, plan: FairnessPlan) -> None:
    """Log the parity gaps of the rows the biases were fitted on; warn when parity was out of reach."""
    _log.info("fairness: expected parity difference %.4f before the tilt, %.2g after", tilt.unfair_gap,
              tilt.residual)
    if tilt.residual > _PARITY_WARNING:
        warn(
            f"fairness: {plan.target!r} could not be made fully independent of {plan.config.sensitive_columns} "
            f"(a group's expected share of a class is {tilt.residual:.3g} from the overall share). Some group "
            "rules a class out under these sampling settings (a sampling_temperature near 0, a small "
            "sampling_top_p, or fixed probabilities).")


def calibrate_flat(
    model,
    plan: FairnessPlan,
    n: int,
    *,
    order: list[int],
    seed_codes: dict[int, np.ndarray],
    ctx_codes: np.ndarray | None,
    fixed_probs: dict | None,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
    rng: np.random.Generator,
    device: torch.device,
    calibrated: bool = True,
) -> FairnessTilt:
    """Fit the tilt of a flat model on a batch drawn like the ``n`` rows to generate (``calibrated``: with the
    model's marginal calibration, as the rows themselves)."""
    size = min(max(n, CALIBRATION_ROWS[0]), CALIBRATION_ROWS[1])
    exchangeable = not seed_codes and ctx_codes is None
    rows = np.arange(size) if exchangeable else calibration_rows(n, size, rng)
    fixed = {sub: torch.as_tensor(codes[rows].astype(np.int64), device=device) for sub, codes in seed_codes.items()}
    context = None if ctx_codes is None else torch.as_tensor(ctx_codes[rows].astype(np.int64), device=device)
    tilt = plan.tilt(stop_after_target=True)
    with torch.no_grad():
        model.sample(len(rows), context_codes=context, fixed_codes=fixed or None, column_order=order,
                     temperature=temperature, top_p=top_p, fixed_probs=fixed_probs or None, generator=generator,
                     batch_size=max(1, len(rows)), tilt=tilt, calibrated=calibrated)
    check_parity(tilt, plan)
    return tilt.fitted()


def calibrate_sequential(
    model,
    plan: FairnessPlan,
    ctx_codes: np.ndarray,
    *,
    order: list[int],
    seeds: tuple[np.ndarray, np.ndarray] | None,
    fixed_probs: dict | None,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
    rng: np.random.Generator,
    device: torch.device,
    calibrated: bool = True,
) -> FairnessTilt:
    """Fit the per-step tilt of a sequential model on whole sequences of a sample of the subjects.

    ``seeds`` is ``(seed_lengths, seed_matrix)``: the seeded steps of each subject, back to back.
    """
    subjects = calibration_rows(len(ctx_codes), CALIBRATION_SUBJECTS, rng)
    kwargs = {}
    if seeds is not None:
        seed_lengths, seed_matrix = seeds
        offsets = np.concatenate([[0], np.cumsum(seed_lengths)])
        lengths = seed_lengths[subjects]
        starts = np.repeat(offsets[subjects] - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        picked = starts + np.arange(int(lengths.sum()))
        kwargs = {"seed_steps": torch.as_tensor(seed_matrix[picked], device=device),
                  "seed_lengths": torch.as_tensor(lengths, device=device)}
    tilt = plan.tilt()
    context = torch.as_tensor(ctx_codes[subjects].astype(np.int64), device=device)
    with torch.no_grad():
        model.sample(context, column_order=order, temperature=temperature, top_p=top_p,
                     fixed_probs=fixed_probs or None, generator=generator, batch_size=max(1, len(subjects)),
                     tilt=tilt, calibrated=calibrated, **kwargs)
    check_parity(tilt, plan)
    return tilt.fitted()
