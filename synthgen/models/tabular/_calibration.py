"""Marginal calibration of a :class:`FlatARGN`'s generation, and of a :class:`SequentialARGN`'s step heads:
per-code logit offsets fitted by pilot generations.

An autoregressive model draws every sub-column from its conditional given the codes drawn before it; small
errors of the early conditionals shift the inputs of the later heads, so the *generated* marginal of a column
drifts from the training marginal along the chain (on adult: the share of a spike value, such as 95 % zeros of
``capital_loss`` or 47 % of 40 hours a week, off by 0.5-1 point). The calibration corrects this after training,
as iterative proportional fitting of the marginals:

1. generate ``n_rows`` pilot rows in the default generation order with the current offsets;
2. per sub-column and code, add ``log(target share / generated share)`` to the code's offset;
3. repeat ``rounds`` times (each round also corrects what the previous one moved downstream).

The offsets are added to the logits of every drawn sub-column (:meth:`FlatARGN.sample`, ``calibrated=True``), so
they tilt each conditional by a constant per code: the dependence between columns stays the network's.

The targets are the model's ``marginal_counts``: the histograms of the training codes (after value protection),
or under differential privacy the *noisy* histograms released by the private output prior
(:mod:`synthgen.privacy._dp_prior`), never the exact counts: the calibration is then post-processing of an
already released output and costs no epsilon. Noisy targets are shrunk towards the generated counts: a difference
``d`` between the noisy and the generated count of a code counts with the weight ``max(0, 1 - (2σ / d)²)``
against the noise's standard deviation ``σ`` (positive-part James-Stein shrinkage at twice the noise), so a code
is corrected only where the release differs from the model by clearly more than its noise (the dominant values),
and small bins are not pulled onto their noise.

A sequential model (:func:`fit_sequential_offsets`) is calibrated the same way on its step model: the pilot draws
whole sequences for a seeded sample of the training contexts (lengths from the length head, untouched), the
targets are the training steps' histograms over all events, and the offsets are added to the step heads' logits at
every step. Its pilots are noisier and its chain converges more slowly than a flat model's (the steps of one
subject are correlated, so a pilot of 100,000 events holds only about a thousand independent subjects; offsets of
one step feed the next through the history and the copy path, and redundant sub-columns such as ``month`` and
``time_hour``'s month share the correction), so its schedule differs (:data:`SEQUENTIAL_SCHEDULE`):

- every round draws a fresh sample of the training contexts, without replacement, so the rounds' context noise is
  independent and averages out instead of being frozen into the offsets;
- six rounds instead of three; the first three with half the pilot (they only remove the bulk of the bias, and the
  full rounds after them correct their noise);
- the last two rounds take a half and a third of their correction (stochastic approximation): once the bias is
  gone, the offsets become the mean of three full-size rounds' estimates, whose noise is a third of one round's
  (in variance). On planes/flights the residual share errors of the clock hours and ``month`` were still falling
  after three rounds and then fluctuated at the level of one pilot's noise.

A column that trends along the sequences (a month along a year of flights) is calibrated per stage of the
sequence: one offset per code fits its marginal but not *when* each value appears, and a briefly trained network
blurs a progression (months advance too slowly late in the sequence, so the marginal is met with too many mid-year
months and too few Decembers). :func:`trending_sub_columns` picks the step sub-columns whose training shares per
bucket of the share of the sequence done (``SequentialARGN.progress_counts``) differ from their overall shares
beyond sampling noise; their offsets are fitted bucket by bucket (``progress_offsets``), from the same pilots, and
the stationary sub-columns keep one offset per code (per-bucket offsets would only fit more pilot noise there).

A clock time's hour and minute (:mod:`._value_pairs`) are calibrated jointly: one offset per code fits the minute's
share over all hours, not how the minutes fall within each hour, and the value's distribution (its KS distance)
reads the joint. The minute is fitted by one offset per code (its marginal, as every sub-column) *and* by an offset
per hour code (``pair_offsets``, an ``(hours, minutes)`` table): each round, the table's row of hour ``h`` takes
the log-ratio of the training's share of each minute within ``h`` to the pilot's, measured after the marginal
correction, so the table holds only what the marginal offsets cannot fit. A row's pilot holds a few hundred to a
few thousand steps, so a cell's difference is shrunk towards zero against its own sampling noise (positive-part
James-Stein at ``_PAIR_NOISE_MARGIN`` standard deviations of a Poisson count: thin hours and minutes where the
network already agrees are left alone instead of being pulled onto pilot noise). On the planes/flights networks of
issue 15's seventh round this removes the within-hour error of the clock times (the whole KS of ``dep_time`` at
05:49, a third of ``sched_arr_time``'s), see ``docs/benchmarks.md``.

Sequential models trained under differential privacy are not calibrated: their step heads start from
no released counts (the steps of one subject have no bounded sensitivity), so there is no noisy target to use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import attrs
import torch

from ._network import FlatARGN
from ._sequential import SequentialARGN
from ._value_pairs import ValuePairs

__all__ = ["CALIBRATION_ROUNDS", "SEQUENTIAL_SCHEDULE", "TRENDING_DISTANCE", "calibration_rows",
           "calibration_subjects", "fit_marginal_offsets", "fit_sequential_offsets", "trending_sub_columns"]

_log = logging.getLogger(__name__)

CALIBRATION_ROUNDS = 3
# Pilot rows per round: four times the training rows, within these bounds (the share of a code is then known to
# about 0.15 points at the upper bound; a round of 100,000 adult rows takes 1-3 s on one CPU thread).
_MIN_ROWS, _MAX_ROWS = 5_000, 100_000
# Pseudo-count of both histograms, so codes that one side never shows get a finite (and capped) step.
_PSEUDO_COUNT = 0.5
_MAX_STEP = 2.0  # nats per round
_MAX_OFFSET = 4.0
_NOISE_MARGIN = 2.0  # noisy targets count only where they differ from the model by more than this many sigmas
# A joint table's cell is corrected only by the part of its difference beyond this many standard deviations of its
# pilot count (Poisson; the steps of one subject are correlated, so the real noise is larger, see the module notes).
_PAIR_NOISE_MARGIN = 2.0
# Whether the sequential calibration fits clock times' minutes per hour (`pair_offsets`); `False` gives the calibration
# before issue 15's seventh round (kept for benchmarks/ablate_clock_calibration.py).
JOINT_CALIBRATION = True
# Sequential rounds: (share of the pilot subjects, share of the correction taken) per round; see the module notes.
SEQUENTIAL_SCHEDULE: tuple[tuple[float, float], ...] = (
    (0.5, 1.0), (0.5, 1.0), (0.5, 1.0), (1.0, 1.0), (1.0, 1 / 2), (1.0, 1 / 3))


# A step sub-column is calibrated per bucket of progress when its training shares within the buckets differ from
# its overall shares by at least this total-variation distance on average (a month or a date along a year: about
# 0.8; a clock hour or a delay: about 0.01-0.03); below it a column is fitted by one offset per code, as the
# extra offsets would only fit pilot noise.
TRENDING_DISTANCE = 0.1


@attrs.define
class _PairCalibration:
    """The value parts of a sequential model calibrated given the part before them: targets and offsets."""

    pairs: ValuePairs
    children: frozenset[int]  # the child sub-columns whose tables are fitted (the others' stay zero)
    targets: torch.Tensor  # (n_cells,) float64 training counts of the (parent, child) code pairs
    offsets: torch.Tensor  # the model's pair_offsets buffer, overwritten


@attrs.define
class _ProgressCalibration:
    """The sub-columns of a sequential model calibrated per progress bucket: their targets and offsets."""

    subs: frozenset[int]
    targets: torch.Tensor  # (buckets, n_codes) float64 training counts
    offsets: torch.Tensor  # the model's progress_offsets buffer, overwritten


def trending_sub_columns(progress_counts: torch.Tensor, cardinalities: Sequence[int],
                         threshold: float = TRENDING_DISTANCE) -> list[int]:
    """The sub-columns whose distribution changes along the sequences.

    Parameters
    ----------
    progress_counts : torch.Tensor
        ``(buckets, n_codes)`` code counts per bucket of the share of the sequence done, the sub-columns'
        codes back to back (:meth:`SequentialARGN.progress_code_counts` of the training steps).
    cardinalities : sequence of int
        The sub-columns' cardinalities.
    threshold : float, default=TRENDING_DISTANCE
        The least mean total-variation distance between a bucket's shares and the overall shares, beyond the
        distance that sampling noise alone gives a bucket of its size.

    Returns
    -------
    list of int
        The trending sub-columns, in order.

    Examples
    --------
    >>> counts = torch.tensor([[9.0, 1.0, 5.0, 5.0], [1.0, 9.0, 5.0, 5.0]])
    >>> trending_sub_columns(counts, [2, 2])
    [0]
    """
    trending, start = [], 0
    for sub, k in enumerate(cardinalities):
        counts = progress_counts[:, start : start + k].double()
        start += k
        per_bucket = counts.sum(1)
        total = float(per_bucket.sum())
        if total <= 0.0 or k < 2:
            continue
        overall = counts.sum(0) / total
        shares = counts / per_bucket.clamp(min=1.0)[:, None]
        distance = 0.5 * (shares - overall).abs().sum(1)
        # the distance that sampling alone gives a bucket of n steps without any trend (the mean absolute
        # deviation of a binomial share, sqrt(2 p (1 - p) / (pi n)) per code), so small tables are not
        # "trending" by their noise
        noise = 0.5 * (2.0 * overall * (1.0 - overall) / math.pi).sqrt().sum() / per_bucket.clamp(min=1.0).sqrt()
        if float(((distance - noise) * per_bucket).sum()) / total >= threshold:
            trending.append(sub)
    return trending


def calibration_rows(n_training_rows: int) -> int:
    """Pilot rows per calibration round for a table of ``n_training_rows`` rows."""
    return int(min(_MAX_ROWS, max(_MIN_ROWS, 4 * n_training_rows)))


def calibration_subjects(n_subjects: int, n_steps: int) -> int:
    """Pilot subjects per calibration round of a sequential model trained on ``n_subjects`` subjects with
    ``n_steps`` steps in all: enough subjects of the mean length for :func:`calibration_rows` of ``n_steps``
    steps (the same bounds, counted in steps)."""
    if n_subjects <= 0:
        return 0
    mean_length = max(1.0, n_steps / n_subjects)
    return max(1, int(round(calibration_rows(n_steps) / mean_length)))


def _shrunk(target: torch.Tensor, expected: torch.Tensor, noise_std: float) -> torch.Tensor:
    """Noisy target counts pulled towards ``expected``, fully where they differ from it by less than
    ``_NOISE_MARGIN`` standard deviations of the noise."""
    if noise_std <= 0.0:
        return target
    diff = target - expected
    scale = (_NOISE_MARGIN * noise_std) ** 2
    weight = (1.0 - scale / diff.square().clamp(min=1e-12)).clamp(min=0.0)
    return expected + weight * diff


@torch.no_grad()
def fit_marginal_offsets(
    model: FlatARGN,
    *,
    order: Sequence[int],
    suppressed: Mapping[int, Sequence[int]] | None = None,
    n_rows: int,
    rounds: int = CALIBRATION_ROUNDS,
    generator: torch.Generator | None = None,
    batch_size: int = 4096,
) -> float:
    """Fit ``model.sampling_offsets`` so that generated sub-column marginals match ``model.marginal_counts``.

    Parameters
    ----------
    model : FlatARGN
        A trained model without context; its ``sampling_offsets`` are overwritten (zero when it has no targets).
    order : sequence of int
        The column order generation uses by default.
    suppressed : mapping of int to sequence of int, optional
        Per sub-column, codes that default generation never draws (e.g. protected rare codes): they are left
        out of both histograms, whose other codes are compared as shares of what remains.
    n_rows : int
        Pilot rows per round (see :func:`calibration_rows`).
    rounds : int, default=3
        Pilot generations; each adds its correction to the offsets.
    generator : torch.Generator or None
        The source of the pilot draws (seeded: the offsets are deterministic).
    batch_size : int, default=4096
        Rows per forward pass of the pilot generations.

    Returns
    -------
    float
        The largest absolute difference between a generated and a target share (over all codes) in the last
        pilot generation, before its correction; ``nan`` when nothing was fitted.
    """
    if model.spec.context or model.spec.condition_dim:
        raise ValueError("Marginal calibration needs a flat model without context or condition vectors.")

    def pilot(fixed_probs):
        codes = model.sample(n_rows, column_order=order, fixed_probs=fixed_probs, generator=generator,
                             batch_size=batch_size, calibrated=True)
        return model.code_counts(codes)

    return _fit_offsets(model, pilot, suppressed, [1.0] * (rounds if n_rows >= 1 else 0), f"{n_rows} rows")


@torch.no_grad()
def fit_sequential_offsets(
    model: SequentialARGN,
    context_codes: torch.Tensor,
    *,
    n_subjects: int | None = None,
    order: Sequence[int] | None = None,
    suppressed: Mapping[int, Sequence[int]] | None = None,
    schedule: Sequence[tuple[float, float]] = SEQUENTIAL_SCHEDULE,
    uncalibrated: Sequence[int] = (),
    generator: torch.Generator | None = None,
    batch_size: int = 8192,
) -> float:
    """Fit ``model.step_model.sampling_offsets`` so that the sub-column marginals over all generated steps match
    ``model.step_model.marginal_counts`` (the training steps' histograms).

    Each pilot generation draws one sequence per pilot subject: a fresh sample, without replacement, of the rows
    of ``context_codes`` (the training contexts) per round, or all of them; lengths are drawn by the length head,
    which the offsets do not touch. A model without targets (trained under differential privacy: its step heads
    never saw exact counts) keeps zero offsets.

    Parameters
    ----------
    model : SequentialARGN
        A trained sequential model; its step model's ``sampling_offsets`` are overwritten.
    context_codes : torch.Tensor
        ``(n_contexts, n_context_sub_columns)`` context codes to draw the pilot subjects from.
    n_subjects : int or None
        Pilot subjects of a full round (see :func:`calibration_subjects`); default (or more than there are
        contexts) every row of ``context_codes``.
    order : sequence of int or None
        The within-step column order generation uses by default (default the training order).
    suppressed : mapping of int to sequence of int, optional
        As in :func:`fit_marginal_offsets`.
    schedule : sequence of (float, float), default=SEQUENTIAL_SCHEDULE
        Per round, the share of ``n_subjects`` its pilot draws and the share of its correction that is added to
        the offsets (1 for a full iterative-proportional-fitting step; 1/2, 1/3 … average the last rounds).
    uncalibrated : sequence of int, default=()
        Sub-columns whose offsets stay zero and whose histograms are not compared: columns whose emitted value
        is not the model's draw (a derived column set from an earlier determinant after decoding).
    generator : torch.Generator or None
        The source of the pilot draws (seeded: the offsets are deterministic).
    batch_size : int, default=8192
        Subjects generated together.

    Returns
    -------
    float
        As :func:`fit_marginal_offsets`.
    """
    step = model.step_model
    n_contexts = len(context_codes)
    full = n_contexts if n_subjects is None else min(int(n_subjects), n_contexts)
    sizes = iter([max(1, round(share * full)) for share, _ in schedule])
    skipped = {int(sub) for sub in uncalibrated}
    trending = [sub for sub in trending_sub_columns(model.progress_counts, step.spec.cardinalities)
                if sub not in skipped]
    progress = None
    if trending:
        progress = _ProgressCalibration(frozenset(trending), model.progress_counts.double(), model.progress_offsets)
    else:
        model.progress_offsets.zero_()
    model.pair_offsets.zero_()
    pairs = None
    if JOINT_CALIBRATION and bool(model.pair_counts.any()):
        # a trending child keeps its offsets by progress; a derived column's parts are not the model's draw
        children = frozenset(child for parent, child in model.value_pairs.pairs
                             if child not in skipped and parent not in skipped and child not in trending)
        if children:
            pairs = _PairCalibration(model.value_pairs, children, model.pair_counts.double(), model.pair_offsets)

    def pilot(fixed_probs):
        size = next(sizes)
        picked = context_codes if size >= n_contexts else context_codes[
            torch.randperm(n_contexts, generator=generator, device=generator.device if generator else None)[:size]
            .to(context_codes.device)]
        lengths, steps = model.sample(picked, column_order=order, fixed_probs=fixed_probs, generator=generator,
                                      batch_size=batch_size, calibrated=True)
        return (step.code_counts(steps),
                None if progress is None else model.progress_code_counts(steps, lengths),
                None if pairs is None else pairs.pairs.counts(steps))

    return _fit_offsets(step, pilot, suppressed, [weight for _, weight in schedule] if full else [],
                        f"up to {full} of {n_contexts} subjects", uncalibrated, progress, pairs)


def _fit_offsets(model: FlatARGN, pilot, suppressed, weights: Sequence[float], size: str,
                 uncalibrated: Sequence[int] = (), progress: _ProgressCalibration | None = None,
                 pairs: _PairCalibration | None = None) -> float:
    """The calibration loop of both entries: one round per entry of ``weights`` (the share of its correction
    added to the offsets); ``pilot(fixed_probs)`` generates with the current offsets and returns the generated
    codes' :meth:`FlatARGN.code_counts`, or a tuple of them, their counts per progress bucket (with
    ``progress``) and their value pairs' counts (with ``pairs``); the sub-columns in ``uncalibrated`` keep zero
    offsets, those of ``progress`` are fitted per bucket instead, the children of ``pairs`` also per code of
    their parent."""
    rounds = len(weights)
    model.sampling_offsets.zero_()
    if progress is not None:
        progress.offsets.zero_()
    target = model.marginal_counts.double()
    if rounds < 1 or not bool((target > 0).any()):
        return math.nan
    cards = model.spec.cardinalities
    starts = model.embedder.offsets.tolist()
    noise_std = float(model.marginal_noise_std)
    allowed = torch.ones(len(target), dtype=torch.bool, device=target.device)
    fixed_probs: dict[int, dict[int, float]] = {}
    for sub, codes in (suppressed or {}).items():
        codes = [int(c) for c in codes]
        if codes:
            allowed[[starts[sub] + c for c in codes]] = False
            fixed_probs[int(sub)] = dict.fromkeys(codes, 0.0)
    offsets = torch.zeros(len(target), dtype=torch.float64, device=target.device)
    by_progress = None if progress is None else torch.zeros_like(progress.targets)
    if pairs is not None:
        pairs.offsets.zero_()
        by_pair = torch.zeros_like(pairs.targets)
        pair_targets, pair_offsets = pairs.pairs.tables(pairs.targets), pairs.pairs.tables(by_pair)
    worst = math.nan
    skipped = {int(sub) for sub in uncalibrated}
    for weight in weights:
        generated = pilot(fixed_probs or None)
        generated_by_progress = generated_pairs = None
        if isinstance(generated, tuple):
            generated, generated_by_progress, generated_pairs = generated
        if progress is not None:
            generated_by_progress = generated_by_progress.double().to(target.device)
        if pairs is not None:
            generated_pairs = pairs.pairs.tables(generated_pairs.double().to(target.device))
        generated = generated.double().to(target.device)
        worst = 0.0
        for sub, k in enumerate(cards):
            if sub in skipped:
                continue
            part = slice(starts[sub], starts[sub] + k)
            keep = allowed[part]
            if progress is not None and sub in progress.subs:
                for bucket in range(len(by_progress)):
                    fitted = _correction(progress.targets[bucket, part], generated_by_progress[bucket, part],
                                         keep, 0.0)
                    if fitted is not None:
                        step, error = fitted
                        worst = max(worst, error)
                        by_progress[bucket, part] += torch.zeros(k, dtype=torch.float64,
                                                                 device=target.device).masked_scatter(keep, step * weight)
                continue
            fitted = _correction(target[part], generated[part], keep, noise_std)
            if fitted is not None:
                step, error = fitted
                worst = max(worst, error)
                step = torch.zeros_like(offsets[part]).masked_scatter(keep, step)
                offsets[part] += step * weight
                if pairs is not None and sub in pairs.children:
                    _, generated_table = generated_pairs[sub]
                    correction = _pair_correction(pair_targets[sub][1], generated_table, step, keep)
                    pair_offsets[sub][1].add_(correction * weight)
        offsets.clamp_(-_MAX_OFFSET, _MAX_OFFSET)
        model.sampling_offsets.copy_(offsets.to(model.sampling_offsets))
        if progress is not None:
            by_progress.clamp_(-_MAX_OFFSET, _MAX_OFFSET)
            progress.offsets.copy_(by_progress.to(progress.offsets))
        if pairs is not None:
            by_pair.clamp_(-_MAX_OFFSET, _MAX_OFFSET)
            pairs.offsets.copy_(by_pair.to(pairs.offsets))
    _log.info("marginal calibration: %d rounds of %s, largest share error of the last round %.4f",
              rounds, size, worst)
    return worst


def _correction(want: torch.Tensor, got: torch.Tensor, keep: torch.Tensor,
                noise_std: float) -> tuple[torch.Tensor, float] | None:
    """One sub-column's iterative-proportional-fitting step on its allowed codes ``keep``: the log-ratio of
    the target to the generated shares (capped), and the largest share difference; ``None`` when either
    histogram is empty or fewer than two codes are compared."""
    k = len(want)
    want, got = want[keep], got[keep]
    total_want, total_got = float(want.sum()), float(got.sum())
    if total_want <= 0.0 or total_got <= 0.0 or len(want) < 2:
        return None
    want = _shrunk(want, got * (total_want / total_got), noise_std)
    want_share = (want.clamp(min=0.0) + _PSEUDO_COUNT) / (float(want.clamp(min=0.0).sum()) + k * _PSEUDO_COUNT)
    got_share = (got + _PSEUDO_COUNT) / (total_got + k * _PSEUDO_COUNT)
    error = float((want_share - got_share).abs().max())
    return (want_share / got_share).log().clamp(-_MAX_STEP, _MAX_STEP), error


def _pair_correction(want: torch.Tensor, got: torch.Tensor, marginal_step: torch.Tensor,
                     keep: torch.Tensor) -> torch.Tensor:
    """One value part's correction given its parent: per parent code (row), the log-ratio of the target's to
    the pilot's share of each code within the row, the pilot's row taken after this round's marginal correction
    ``marginal_step`` (so the table corrects only what the marginal offsets leave), and each cell's difference
    shrunk against its pilot count's Poisson noise; zero in rows either side never shows and on codes outside
    ``keep``. ``want`` and ``got`` are ``(parent cardinality, cardinality)`` counts."""
    got = got * marginal_step.exp()  # what each row would hold after the marginal correction
    row_got, row_want = got.sum(1, keepdim=True), want.sum(1, keepdim=True)
    scaled = want / row_want.clamp(min=1e-12) * row_got  # the target's row, in pilot counts
    diff = scaled - got
    weight = (1.0 - _PAIR_NOISE_MARGIN**2 * got.clamp(min=1.0) / diff.square().clamp(min=1e-12)).clamp(min=0.0)
    shrunk = (got + weight * diff).clamp(min=0.0)
    k = int(keep.sum())
    want_share = (shrunk + _PSEUDO_COUNT) / (shrunk.sum(1, keepdim=True) + k * _PSEUDO_COUNT)
    got_share = (got + _PSEUDO_COUNT) / (row_got + k * _PSEUDO_COUNT)
    step = (want_share / got_share).log().clamp(-_MAX_STEP, _MAX_STEP)
    live = (row_got > 0) & (row_want > 0)
    return torch.where(live & keep[None, :], step, torch.zeros_like(step))
