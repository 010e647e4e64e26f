"""Where synthetic data loses accuracy against the holdout: the columns and column groups that cost most."""

from __future__ import annotations

import numbers

import pandas as pd

from synthgen.evaluation._result import EvaluationResult

_PARTS = ("univariate", "bivariate", "trivariate", "coherence")
_BY = ("group", "column")


def _part_tables(result: EvaluationResult) -> dict[str, pd.DataFrame]:
    return {
        "univariate": result.univariates,
        "bivariate": result.bivariates,
        "trivariate": result.trivariates,
        "coherence": result.coherences,
    }


def diagnose(result: EvaluationResult, *, by: str = "group", top: int | None = 10) -> pd.DataFrame:
    """Rank the columns or column groups by how much of the gap to the holdout ceiling they cause.

    The overall accuracy is the mean of its parts, each the mean over its column groups, so a group's share
    of the gap is ``(reference - accuracy) / groups in its part / parts``: the ``loss`` column, in accuracy
    points of ``overall`` (the losses of all groups add up to ``reference overall - overall`` when no part
    is missing; the sequence-length part is not a column group and is left out).

    Parameters
    ----------
    result : EvaluationResult
        The figures of :func:`synthgen.evaluate` called with a holdout.
    by : {"group", "column"}, default="group"
        ``"group"``: one row per column (univariate, coherence), pair or triple. ``"column"``: one row per
        column, each group's loss split evenly among its columns.
    top : int or None, default=10
        Rows returned at most, largest loss first; None for all.

    Returns
    -------
    pandas.DataFrame
        ``by="group"``: columns ``part``, ``columns`` (tuple), ``accuracy``, ``reference``, ``gap``
        (reference - accuracy) and ``loss``. ``by="column"``: columns ``column``, ``loss`` and the loss per
        part (``univariate``, ``bivariate``, ...).

    Raises
    ------
    ValueError
        If ``result`` was computed without a holdout, or ``by`` / ``top`` is invalid.

    Examples
    --------
    >>> from synthgen.evaluation import diagnose
    >>> diagnose(evaluate(train, synthetic, holdout), by="column", top=3)  # doctest: +SKIP
    """
    if by not in _BY:
        raise ValueError(f"The 'by' parameter of diagnose must be one of {list(_BY)}. Got {by!r} instead.")
    if top is not None and (not isinstance(top, numbers.Integral) or isinstance(top, bool) or top < 1):
        raise ValueError(f"The 'top' parameter of diagnose must be an int in the range [1, inf) or None. "
                         f"Got {top!r} instead.")
    tables = {part: table for part, table in _part_tables(result).items() if len(table)}
    if any("reference" not in table for table in tables.values()) or result.reference is None:
        raise ValueError("diagnose needs an evaluation with a holdout: call evaluate(original, synthetic, holdout).")
    n_parts = len(tables) + (result.sequence_length is not None)
    rows = []
    for part, table in tables.items():
        names = [c for c in table.columns if c == "column" or c.startswith("column_")]
        gap = table["reference"] - table["accuracy"]
        rows.append(pd.DataFrame({
            "part": part,
            "columns": list(table[names].itertuples(index=False, name=None)),
            "accuracy": table["accuracy"].to_numpy(),
            "reference": table["reference"].to_numpy(),
            "gap": gap.to_numpy(),
            "loss": (gap / len(table) / n_parts).to_numpy(),
        }))
    groups = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["part", "columns", "accuracy", "reference", "gap", "loss"])
    if by == "group":
        ranked = groups.sort_values("loss", ascending=False, kind="stable").reset_index(drop=True)
    else:
        shares = groups.assign(n=groups["columns"].map(len)).explode("columns")
        shares["loss"] = shares["loss"] / shares["n"]
        ranked = shares.pivot_table(index="columns", columns="part", values="loss", aggfunc="sum", fill_value=0.0)
        ranked = ranked.reindex(columns=[p for p in _PARTS if p in ranked.columns])
        ranked.insert(0, "loss", ranked.sum(axis=1))
        ranked = ranked.sort_values("loss", ascending=False, kind="stable").rename_axis(None, axis=1)
        ranked = ranked.reset_index(names="column")
    return ranked if top is None else ranked.head(top)
