"""Privacy metrics from nearest-neighbour distances and exact copies.

Nearest neighbours are found blockwise: one float32 matrix product scores a block of query rows against all
reference rows (``|r|^2 - 2 q.r``, which orders neighbours like the squared distance; the matrices carry an
extra column so that the product yields it directly), the two best candidates per row are kept, and their
distances are recomputed exactly in float64. A block holds at most ``2**22`` scores (16 MiB), so
50,000 x 50,000 rows never need more memory than that.
"""

from __future__ import annotations

import numpy as np

from synthgen.evaluation._encode import DistanceEncoder, unit_hashes
from synthgen.evaluation._prepare import PreparedFrame

_BLOCK_SCORES = 2**22
# Exact recomputation leaves rounding of ~1e-15; closer distances than this count as a tie.
_TIE_TOLERANCE = 1e-9
# The NNDR figure is the 10th smallest ratio, as in mostlyai-qa.
_NNDR_RANK = 10
_NNDR_EPSILON = 1e-8
# Disjoint training samples, each the holdout sample's size, that the DCR share is averaged over.
MAX_TRAINING_SAMPLES = 5


def nearest_two(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of each query row to its nearest and second-nearest reference row.

    Parameters
    ----------
    query, reference : numpy.ndarray
        float32 matrices with the same number of columns.

    Returns
    -------
    nearest, second : numpy.ndarray
        float64 distances; ``second`` is infinite when the reference has a single row.
    """
    n_reference = len(reference)
    scaled_query = np.hstack([-2.0 * query, np.ones((len(query), 1), dtype=np.float32)])
    reference_with_norm = np.hstack([reference, np.einsum("ij,ij->i", reference, reference)[:, None]])
    step = max(1, _BLOCK_SCORES // n_reference)
    nearest = np.empty(len(query))
    second = np.full(len(query), np.inf)
    for start in range(0, len(query), step):
        block = query[start : start + step]
        scores = scaled_query[start : start + step] @ reference_with_norm.T
        rows = np.arange(len(block))
        first_index = scores.argmin(axis=1)
        first_sq = _squared_distances(block, reference[first_index])
        if n_reference == 1:
            nearest[start : start + step] = np.sqrt(first_sq)
            continue
        scores[rows, first_index] = np.inf
        second_sq = _squared_distances(block, reference[scores.argmin(axis=1)])
        nearest[start : start + step] = np.sqrt(np.minimum(first_sq, second_sq))
        second[start : start + step] = np.sqrt(np.maximum(first_sq, second_sq))
    return nearest, second


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    difference = a.astype(np.float64) - b.astype(np.float64)
    return np.einsum("ij,ij->i", difference, difference)


def dcr_share(to_training: np.ndarray, to_holdout: np.ndarray) -> float:
    """Share of rows closer to a training row than to a holdout row; a tie counts half."""
    tie = np.abs(to_training - to_holdout) <= _TIE_TOLERANCE
    closer = (to_training < to_holdout) & ~tie
    return float(closer.mean() + 0.5 * tie.mean())


def nndr(nearest: np.ndarray, second: np.ndarray) -> float:
    """The 10th smallest nearest-neighbour distance ratio (the smallest if there are fewer rows)."""
    ratios = (nearest + _NNDR_EPSILON) / (second + _NNDR_EPSILON)
    k = min(_NNDR_RANK, len(ratios)) - 1
    return float(np.partition(ratios, k)[k])


def privacy_metrics(
    encoder: DistanceEncoder,
    *,
    synthetic: PreparedFrame,
    training: PreparedFrame,
    holdout: PreparedFrame | None,
    max_rows: int,
    rng: np.random.RandomState,
) -> tuple[dict[str, float | None], dict[str, float | None], dict[str, np.ndarray]]:
    """DCR, DCR share, exact copies and NNDR of the synthetic units (rows or sequences).

    Exact copies are counted on all units. For the distance figures, up to ``max_rows`` synthetic units are
    compared with a holdout sample and with disjoint training samples of the holdout sample's size: the DCR
    share is 50 % for privacy-safe data only when training and holdout offer the same number of candidates.
    Every training sample gives one DCR share and one mean DCR; their averages are reported, which lowers
    the sampling noise when the training data is larger than the holdout (at most
    :data:`MAX_TRAINING_SAMPLES` samples holding at most ``max_rows`` units in all).

    Returns
    -------
    figures : dict
        ``dcr_training``, ``dcr_holdout``, ``dcr_share``, ``exact_match_share``,
        ``exact_match_share_holdout``, ``nndr_training``, ``nndr_holdout``.
    reference : dict
        The same figures for the holdout units measured against the training units:
        ``dcr_training``, ``exact_match_share``, ``nndr_training``.
    distances : dict of str to numpy.ndarray
        DCRs for the report (against the first training sample): ``synthetic_training``,
        ``synthetic_holdout``, ``holdout_training``.
    """
    synthetic_hashes = unit_hashes(synthetic)
    training_hashes = unit_hashes(training)
    figures: dict[str, float | None] = {
        "exact_match_share": float(np.isin(synthetic_hashes, training_hashes).mean()),
        "exact_match_share_holdout": None,
        "dcr_share": None,
        "dcr_holdout": None,
        "nndr_holdout": None,
    }
    reference: dict[str, float | None] = {}
    encoded = {"synthetic": encoder.encode_units(synthetic), "training": encoder.encode_units(training)}
    if holdout is not None:
        encoded["holdout"] = encoder.encode_units(holdout)
    n_candidates = min(max_rows, *(len(matrix) for name, matrix in encoded.items() if name != "synthetic"))
    n_samples = 1
    if holdout is not None:
        n_samples = max(1, min(MAX_TRAINING_SAMPLES, len(encoded["training"]) // n_candidates,
                               max_rows // n_candidates))
    training_positions = rng.permutation(len(encoded["training"]))
    units = _drop_unused_dimensions(
        {
            "synthetic": _sample_units(encoded["synthetic"], max_rows, rng),
            **({"holdout": _sample_units(encoded["holdout"], n_candidates, rng)} if holdout is not None else {}),
            **{
                f"training_{k}": encoded["training"][
                    np.sort(training_positions[k * n_candidates : (k + 1) * n_candidates])
                ]
                for k in range(n_samples)
            },
        }
    )
    synthetic_units = units["synthetic"]
    to_training = [nearest_two(synthetic_units, units[f"training_{k}"]) for k in range(n_samples)]
    figures["dcr_training"] = float(np.mean([nearest.mean() for nearest, _ in to_training]))
    figures["nndr_training"] = nndr(*to_training[0])
    distances = {"synthetic_training": to_training[0][0]}
    if holdout is not None:
        holdout_hashes = unit_hashes(holdout)
        figures["exact_match_share_holdout"] = float(np.isin(synthetic_hashes, holdout_hashes).mean())
        reference["exact_match_share"] = float(np.isin(holdout_hashes, training_hashes).mean())
        holdout_units = units["holdout"]
        to_holdout, second_holdout = nearest_two(synthetic_units, holdout_units)
        figures["dcr_holdout"] = float(to_holdout.mean())
        figures["nndr_holdout"] = nndr(to_holdout, second_holdout)
        figures["dcr_share"] = float(np.mean([dcr_share(nearest, to_holdout) for nearest, _ in to_training]))
        holdout_to_training, holdout_second = nearest_two(holdout_units, units["training_0"])
        reference["dcr_training"] = float(holdout_to_training.mean())
        reference["nndr_training"] = nndr(holdout_to_training, holdout_second)
        distances["synthetic_holdout"] = to_holdout
        distances["holdout_training"] = holdout_to_training
    return figures, reference, distances


def _drop_unused_dimensions(units: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Remove dimensions that are 0 in every matrix (unused NULL flags and buckets): they add no distance."""
    used = np.logical_or.reduce([np.any(matrix != 0, axis=0) for matrix in units.values()])
    return {name: np.ascontiguousarray(matrix[:, used]) for name, matrix in units.items()}


def _sample_units(units: np.ndarray, n: int, rng: np.random.RandomState) -> np.ndarray:
    if len(units) <= n:
        return units
    return units[np.sort(rng.choice(len(units), size=n, replace=False))]
