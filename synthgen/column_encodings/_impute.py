"""Fill the NULL positions of a batch with values drawn from its own non-null values.

Encodings that flag NULLs in a ``nan`` sub-column still need codes for the value sub-columns of NULL rows.
Drawing those from the observed values keeps them realistic: a constant filler would put a spurious spike
into the value sub-columns that the model then has to learn and that leaks into non-NULL samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["impute_from_observed"]


def impute_from_observed(
    values: np.ndarray, is_null: np.ndarray, rng: np.random.Generator, fallback: Any
) -> np.ndarray:
    """A copy of ``values`` whose NULL rows hold rows drawn uniformly from its non-NULL rows.

    Parameters
    ----------
    values : np.ndarray
        Values of any dtype; rows lie along the first axis (a 2-D array imputes whole rows).
    is_null : np.ndarray
        Boolean mask of the NULL rows, of length ``len(values)``.
    rng : np.random.Generator
        Source of the draws.
    fallback : scalar or array-like
        What NULL rows get when no row is non-NULL (broadcast onto a row).

    Returns
    -------
    np.ndarray
        The imputed copy; ``values`` itself is left unchanged.
    """
    imputed = values.copy()
    n_null = int(np.count_nonzero(is_null))
    if n_null == 0:
        return imputed
    donors = values[~is_null]
    if len(donors) == 0:
        imputed[is_null] = fallback
    else:
        imputed[is_null] = donors[rng.integers(0, len(donors), size=n_null)]
    return imputed
