"""Small real datasets shipped with synthgen, for examples, demos and quick experiments.

Like scikit-learn's toy datasets, they are samples stored inside the package, so nothing is downloaded.

- :func:`load_census`: 10,000 rows of the UCI Adult census data (1994; Dua & Graff, UCI Machine Learning
  Repository, https://archive.ics.uci.edu/dataset/2/adult), 15 columns, NULLs in three columns.
- :func:`load_flights`: a two-table sample of nycflights13 (Wickham, R package ``nycflights13``, CC0):
  400 planes (context, primary key ``tailnum``) and their 35,560 flights of 2013 (target, one sequence per
  plane, ordered by ``time_hour``).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

__all__ = ["load_census", "load_flights"]


def _read(name: str) -> pd.DataFrame:
    with resources.files(__name__).joinpath("data", f"{name}.parquet").open("rb") as fh:
        return pd.read_parquet(fh)


def load_census() -> pd.DataFrame:
    """10,000 rows of the UCI Adult census table.

    Returns
    -------
    DataFrame
        Columns ``age``, ``workclass``, ``fnlwgt``, ``education``, ``education_num``, ``marital_status``,
        ``occupation``, ``relationship``, ``race``, ``sex``, ``capital_gain``, ``capital_loss``,
        ``hours_per_week``, ``native_country``, ``income``.

    Examples
    --------
    >>> from synthgen.datasets import load_census
    >>> load_census().shape
    (10000, 15)
    """
    return _read("census")


def load_flights() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A two-table sample of nycflights13: planes (context) and their flights (target).

    Returns
    -------
    planes : DataFrame
        400 planes, primary key ``tailnum``.
    flights : DataFrame
        Their 35,560 flights, context key ``tailnum``, in ``time_hour`` order per plane.

    Examples
    --------
    >>> from synthgen.datasets import load_flights
    >>> planes, flights = load_flights()
    >>> flights["tailnum"].isin(planes["tailnum"]).all()
    np.True_
    """
    return _read("planes"), _read("flights")
