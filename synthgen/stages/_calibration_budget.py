"""The marginal calibration's share of ``train``'s time budget (``max_training_time``), and its pilot size.

The calibration (see :mod:`synthgen.models.tabular._calibration`) runs after the network has trained: pilot
generations of the trained model, whose cost does not depend on the weights but on the model's size, the pilot
and the machine. On flights it draws about 450,000 pilot events and takes 45-85 s, against a budget of 150 s in
the benchmark; counted outside the budget, a user who asked for 2.5 minutes got back after almost four. So
``train`` plans it in two steps:

1. **Before training** (:func:`plan_calibration` with the whole budget) a short timed probe of the untrained
   network (:func:`measure_generation_cost`: small timed generations, a second or two) gives the cost of a
   forward step and of a row in it, and with the pilot's sizes and the training sequences' lengths the cost of
   the full calibration. That cost, up to :data:`CALIBRATION_SHARE` of the budget, is reserved: the network
   trains on the rest.
2. **After training** (:func:`plan_calibration` with what is left of the budget) the probe is repeated (the load
   of the machine may have changed) and the pilot is shrunk to what fits, down to :data:`MIN_PILOT_SHARE` of the
   full pilot: fewer pilot subjects would fit their own noise rather than the model's bias, so a run over budget
   keeps that floor and says so, rather than skipping the calibration.

What the calibration computes (rounds, their shares, the offsets' maths) is unchanged; only the number of pilot
subjects (rows of a flat model) per round can shrink. A budget the calibration fits into (the default 4 hours
for anything but huge data) leaves training and calibration exactly as without the plan: the probe draws from
its own generator and leaves the network untouched.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence

import attrs
import numpy as np
import torch

from ..models.tabular import FlatARGN, SequentialARGN
from ..models.tabular._calibration import (
    CALIBRATION_ROUNDS,
    SEQUENTIAL_SCHEDULE,
    calibration_rows,
    calibration_subjects,
)

__all__ = ["CALIBRATION_SHARE", "MIN_PILOT_SHARE", "CalibrationCosting", "CalibrationPlan", "GenerationCost",
           "clock", "measure_generation_cost", "plan_calibration", "training_budget"]

_log = logging.getLogger(__name__)

# The most of max_training_time reserved for the calibration before training; a dearer calibration shrinks its
# pilot instead of taking more from the network's training.
CALIBRATION_SHARE = 1 / 3
# A shrunk pilot keeps at least this share of the full one's subjects (rows): a sequential pilot's cost is about
# half per-step overhead (one loop over the longest sequence per round, whatever the pilot's size), so a smaller
# pilot would save little time and cost the offsets much of their precision.
MIN_PILOT_SHARE = 0.5
# Subjects (rows) per forward pass of the pilot generations (the calibration's defaults).
_SEQUENTIAL_BATCH, _FLAT_BATCH = 8192, 4096
# The probe: generations of SMALL and LARGE subjects (rows) for _PROBE_STEPS steps (sequential models), each
# _PROBE_REPEATS times, alternating; the medians count (a loaded machine makes single timings noisy).
_PROBE_SMALL, _PROBE_LARGE, _PROBE_STEPS, _PROBE_REPEATS = 16, 512, 12, 3

clock: Callable[[], float] = time.perf_counter  # seconds; replaced by tests


@attrs.frozen
class GenerationCost:
    """Seconds of generation: per forward step of a batch (every head once) and per row in such a step."""

    per_step: float
    per_row: float

    def seconds(self, steps: float, rows: float) -> float:
        """The seconds of ``steps`` forward steps that draw ``rows`` rows in all."""
        return steps * self.per_step + rows * self.per_row


def measure_generation_cost(network: FlatARGN | SequentialARGN,
                            context_codes: torch.Tensor | None = None) -> GenerationCost:
    """Time two small generations of ``network`` (a warm-up first) and fit the cost of a step and of a row.

    The draws come from a generator of their own and the network is left as it was (``sample`` restores the
    training mode), so training after the probe is the same as without it.
    """
    generator = torch.Generator(device="cpu").manual_seed(0)

    def timed(n: int) -> float:
        start = clock()
        if isinstance(network, SequentialARGN):
            contexts = context_codes[torch.arange(n) % len(context_codes)]
            network.sample(contexts, fixed_lengths=torch.full((n,), _PROBE_STEPS), generator=generator)
        else:
            network.sample(n, generator=generator)
        return clock() - start

    steps = _PROBE_STEPS if isinstance(network, SequentialARGN) else 1
    timed(_PROBE_SMALL)  # warm-up: first-call allocations
    pairs = [(timed(_PROBE_SMALL), timed(_PROBE_LARGE)) for _ in range(_PROBE_REPEATS)]
    small, large = (float(np.median(times)) for times in zip(*pairs, strict=True))
    per_row = max(0.0, (large - small) / (steps * (_PROBE_LARGE - _PROBE_SMALL)))
    per_step = max(0.0, small / steps - per_row * _PROBE_SMALL)
    return GenerationCost(per_step, per_row)


@attrs.frozen
class CalibrationPlan:
    """The pilot size of a calibration and its estimated cost.

    Attributes
    ----------
    full_size : int
        Pilot subjects (rows of a flat model) of a full round without a time limit.
    size : int
        The pilot size chosen: ``full_size`` unless the time left is too short.
    estimated_s : float
        The estimated seconds of the calibration at ``size``.
    available_s : float
        The seconds the plan had (``inf``: unlimited).
    """

    full_size: int
    size: int
    estimated_s: float
    available_s: float

    @property
    def shrunk(self) -> bool:
        """Whether the pilot is smaller than the full one."""
        return self.size < self.full_size

    @property
    def over_budget(self) -> bool:
        """Whether even the smallest pilot allowed is estimated to take longer than the time left."""
        return self.estimated_s > self.available_s

    def record(self, seconds: float | None = None, reserved_s: float | None = None) -> dict:
        """The plan for the model's training record (``model-configs.json``), with the measured seconds."""
        out = {"pilot_size": self.size, "full_pilot_size": self.full_size, "shrunk": self.shrunk,
               "estimated_s": round(self.estimated_s, 2),
               "available_s": None if math.isinf(self.available_s) else round(self.available_s, 2)}
        if reserved_s is not None:
            out["reserved_s"] = round(reserved_s, 2)
        if seconds is not None:
            out["seconds"] = round(seconds, 2)
        return out


def _max_length(sorted_lengths: np.ndarray, n: int) -> float:
    """About the longest of ``n`` lengths drawn from ``sorted_lengths``: its ``n / (n + 1)`` quantile."""
    index = min(len(sorted_lengths) - 1, int(math.ceil(len(sorted_lengths) * n / (n + 1))) - 1)
    return float(sorted_lengths[max(0, index)])


def sequential_cost(cost: GenerationCost, lengths: Sequence[int] | torch.Tensor, size: int,
                    schedule: Sequence[tuple[float, float]] = SEQUENTIAL_SCHEDULE) -> float:
    """Estimated seconds of a sequential calibration with ``size`` pilot subjects per full round.

    Each round's pilot draws ``share * size`` subjects; a batch of them unrolls as many steps as its longest
    sequence (lengths like the training subjects' ``lengths``), each step costing ``per_step`` plus ``per_row``
    per subject still active.
    """
    sorted_lengths = np.sort(np.asarray(lengths, dtype=np.float64))
    if len(sorted_lengths) == 0:
        return 0.0
    n_contexts, mean_length = len(sorted_lengths), float(sorted_lengths.mean())
    full = min(size, n_contexts)
    total = 0.0
    for share, _ in schedule:
        n = min(n_contexts, max(1, round(share * full)))
        batches = math.ceil(n / _SEQUENTIAL_BATCH)
        total += cost.seconds(batches * _max_length(sorted_lengths, min(n, _SEQUENTIAL_BATCH)), n * mean_length)
    return total


def flat_cost(cost: GenerationCost, n_rows: int, rounds: int = CALIBRATION_ROUNDS) -> float:
    """Estimated seconds of a flat calibration of ``rounds`` pilots of ``n_rows`` rows."""
    return rounds * cost.seconds(math.ceil(n_rows / _FLAT_BATCH), n_rows)


def plan_calibration(estimate: Callable[[int], float], full_size: int, available_s: float) -> CalibrationPlan:
    """The largest pilot size whose ``estimate(size)`` fits ``available_s`` seconds, between
    ``MIN_PILOT_SHARE * full_size`` and ``full_size``."""
    full_cost = estimate(full_size)
    if full_cost <= available_s or full_size <= 1:
        return CalibrationPlan(full_size, full_size, full_cost, available_s)
    low = max(1, int(math.ceil(MIN_PILOT_SHARE * full_size)))
    if estimate(low) > available_s:
        return CalibrationPlan(full_size, low, estimate(low), available_s)
    high = full_size  # estimate(low) fits, estimate(high) does not; the cost grows with the size
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if estimate(middle) <= available_s else (low, middle)
    return CalibrationPlan(full_size, low, estimate(low), available_s)


def training_budget(budget_s: float, elapsed_s: float, full_cost_s: float) -> tuple[float, float]:
    """``(training seconds, reserved seconds)``: what the network may train of ``budget_s``, ``elapsed_s``
    already spent, after reserving the calibration's ``full_cost_s``, of which at most
    :data:`CALIBRATION_SHARE` of the budget is reserved (training keeps at least a tenth of what is left)."""
    left = max(0.0, budget_s - elapsed_s)
    reserved = min(full_cost_s, CALIBRATION_SHARE * budget_s, 0.9 * left)
    return left - reserved, reserved


class CalibrationCosting:
    """The cost of calibrating ``network``: a sequential model on pilots drawn from ``sequences``' subjects, or a
    flat model on pilots of :func:`calibration_rows` of ``n_rows`` rows."""

    def __init__(self, network: FlatARGN | SequentialARGN, *, sequences=None, n_rows: int = 0) -> None:
        self.network = network
        if sequences is not None:
            self.lengths = sequences.lengths[: sequences.n_subjects]
            self.context = sequences.context[: sequences.n_subjects]
            # a pilot larger than the training subjects draws them all (see fit_sequential_offsets)
            self.full_size = min(calibration_subjects(sequences.n_subjects, len(sequences.steps)), sequences.n_subjects)
        else:
            self.lengths, self.context = None, None
            self.full_size = calibration_rows(n_rows)
        self.cost: GenerationCost | None = None

    def measure(self) -> GenerationCost:
        """Probe the generation's cost now (see :func:`measure_generation_cost`)."""
        self.cost = measure_generation_cost(self.network, self.context)
        return self.cost

    def estimate(self, size: int) -> float:
        """Estimated seconds of the calibration with ``size`` pilot subjects (rows) per full round."""
        cost = self.cost or self.measure()
        if self.lengths is not None:
            return sequential_cost(cost, self.lengths, size)
        return flat_cost(cost, size)

    def plan(self, available_s: float) -> CalibrationPlan:
        """:func:`plan_calibration` for ``available_s`` seconds."""
        return plan_calibration(self.estimate, self.full_size, available_s)
