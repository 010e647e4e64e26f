"""The value object returned by :func:`synthgen.evaluate`."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from attrs import frozen

from synthgen.evaluation._text import TEXT_FIGURES, text_figure_kind

# Figure name -> (group, shown as a percentage). The order is the order of every view.
FIGURES: dict[str, tuple[str, bool]] = {
    "overall": ("accuracy", True),
    "univariate": ("accuracy", True),
    "bivariate": ("accuracy", True),
    "trivariate": ("accuracy", True),
    "coherence": ("accuracy", True),
    "sequence_length": ("accuracy", True),
    "discriminator_auc": ("similarity", False),
    "dcr_share": ("privacy", True),
    "exact_match_share": ("privacy", True),
    "exact_match_share_holdout": ("privacy", True),
    "dcr_training": ("privacy", False),
    "dcr_holdout": ("privacy", False),
    "nndr_training": ("privacy", False),
    "nndr_holdout": ("privacy", False),
    "statistical_parity_difference": ("fairness", False),
    "disparate_impact": ("fairness", False),
}


@frozen(eq=False, repr=False)
class EvaluationResult:
    """Fidelity and privacy figures of synthetic data, returned by :func:`synthgen.evaluate`.

    Accuracies are in [0, 1] (1 = the discretised distributions match exactly); None marks a figure that
    does not apply (coherence for flat tables, privacy figures when ``privacy=False``, ...).

    Attributes
    ----------
    overall : float or None
        Mean of the available accuracy parts below.
    univariate, bivariate, trivariate : float or None
        Mean accuracy over columns, column pairs and (sampled) column triples.
    coherence : float or None
        Mean accuracy of the (step t, step t + 1) distributions per column; sequences only.
    sequence_length : float or None
        Accuracy of the sequence-length distribution; sequences only.
    discriminator_auc : float or None
        Cross-validated AUC of a classifier telling original from synthetic records; 0.5 is ideal.
    dcr_share : float or None
        Share of synthetic records closer to a training record than to a holdout record (ties count half);
        50 % is ideal, much more means the generator memorised training records. Needs a holdout.
    exact_match_share : float or None
        Share of synthetic records identical to a training record.
    exact_match_share_holdout : float or None
        Share of synthetic records identical to a holdout record.
    dcr_training, dcr_holdout : float or None
        Mean distance of synthetic records to their closest training / holdout record.
    nndr_training, nndr_holdout : float or None
        10th smallest ratio of the distances to the nearest and the second-nearest training / holdout record.
    reference : dict of str to float or None, or None
        With a holdout: the same figures for the holdout compared with the original (accuracy parts,
        ``overall``, ``discriminator_auc``) and measured against the training data (``exact_match_share``,
        ``dcr_training``, ``nndr_training``). This is what fresh real data scores: the ceiling for accuracies
        and the yardstick for privacy figures.
    univariates : pandas.DataFrame
        Columns ``column``, ``kind``, ``accuracy`` and (with a holdout) ``reference``.
    bivariates : pandas.DataFrame
        Columns ``column_1``, ``column_2``, ``accuracy`` (, ``reference``).
    trivariates : pandas.DataFrame
        Columns ``column_1``, ``column_2``, ``column_3``, ``accuracy`` (, ``reference``).
    coherences : pandas.DataFrame
        Columns ``column``, ``accuracy`` (, ``reference``); empty for flat tables.
    distributions : dict of str to pandas.DataFrame
        Per column: the share of each bucket (index) in the ``original``, ``synthetic`` (and ``holdout``) data.
    sequence_lengths : dict of str to numpy.ndarray, or None
        The length of every compared sequence per frame; sequences only.
    distances : dict of str to numpy.ndarray
        Distances to the closest record: ``synthetic_training`` (and ``synthetic_holdout``,
        ``holdout_training``); empty when ``privacy=False``.
    n_records : dict of str to int
        Number of records compared per frame: rows for flat tables, sequences for sequences.
    context_key : str or None
        The column that groups rows into sequences.
    statistical_parity_difference, disparate_impact : float or None
        With ``fairness``: the largest gap (0 is parity) and the smallest ratio (1 is parity) between groups
        of the sensitive columns in the share of a target class (see docs/evaluation.md); the reference is
        the holdout's.
    fairness : pandas.DataFrame or None
        With ``fairness``: both figures for every frame (``original``, ``synthetic``, ``holdout``).
    fairness_shares : pandas.DataFrame or None
        With ``fairness``: per frame and group, the rows ``n`` and the share of every target class.
    fairness_columns : dict or None
        With ``fairness``: ``{"target_column": ..., "sensitive_columns": [...]}``.
    text : pandas.DataFrame or None
        With free-text columns: one row per text column and figure, columns ``column``, ``figure``,
        ``synthetic`` and ``reference`` (the holdout's figure; NaN without a holdout). The figures are
        ``char_length_accuracy``, ``word_count_accuracy``, ``word_accuracy``, ``bigram_accuracy``,
        ``discriminator_auc``, ``context_auc[<column>]`` per context column, ``exact_copy_share`` and
        ``ngram_copy_share`` (see docs/evaluation.md). ``to_frame()`` and ``to_dict()`` list them as
        ``<text column>/<figure>``; :meth:`text_figures` gives one column's figures.
    text_lengths : dict or None
        With free-text columns: per text column and frame, a DataFrame of the ``characters`` and ``words`` of
        every non-NULL text (the length histograms of the report).
    privacy_report : pandas.DataFrame or None
        The privacy ledger passed as ``privacy_report`` (a synthesizer's ``privacy_report_``), shown in the
        HTML report with its totals.

    Examples
    --------
    >>> from synthgen import TabularSynthesizer, evaluate
    >>> from synthgen.datasets import load_census
    >>> census = load_census().head(1000)
    >>> synthetic = TabularSynthesizer(max_epochs=1, random_state=0).fit(census).sample(1000)
    >>> result = evaluate(census, synthetic, privacy=False, random_state=0)
    >>> 0 <= result.overall <= 1
    True
    >>> result.to_frame().columns.tolist()
    ['group', 'synthetic', 'reference']
    """

    overall: float | None
    univariate: float | None
    bivariate: float | None
    trivariate: float | None
    coherence: float | None
    sequence_length: float | None
    discriminator_auc: float | None
    dcr_share: float | None
    exact_match_share: float | None
    exact_match_share_holdout: float | None
    dcr_training: float | None
    dcr_holdout: float | None
    nndr_training: float | None
    nndr_holdout: float | None
    reference: dict[str, float | None] | None
    univariates: pd.DataFrame
    bivariates: pd.DataFrame
    trivariates: pd.DataFrame
    coherences: pd.DataFrame
    distributions: dict[str, pd.DataFrame]
    sequence_lengths: dict[str, np.ndarray] | None
    distances: dict[str, np.ndarray]
    n_records: dict[str, int]
    context_key: str | None
    statistical_parity_difference: float | None = None
    disparate_impact: float | None = None
    fairness: pd.DataFrame | None = None
    fairness_shares: pd.DataFrame | None = None
    fairness_columns: dict | None = None
    text: pd.DataFrame | None = None
    text_lengths: dict[str, dict[str, pd.DataFrame]] | None = None
    privacy_report: pd.DataFrame | None = None

    def to_dict(self) -> dict[str, float | None]:
        """Return all figures as a flat dict; holdout references are keyed ``reference_<figure>``.

        Examples
        --------
        >>> result.to_dict()["overall"]  # doctest: +SKIP
        0.8731
        """
        figures: dict[str, float | None] = {name: getattr(self, name) for name in FIGURES}
        for name, value in (self.reference or {}).items():
            figures[f"reference_{name}"] = value
        for name, value, reference in self._text_rows():
            figures[name] = value
            figures[f"reference_{name}"] = reference
        return figures

    def to_frame(self) -> pd.DataFrame:
        """Return the figures as a DataFrame: one row per figure, columns ``group``, ``synthetic``, ``reference``.

        Text figures follow in group ``text``, named ``<text column>/<figure>`` (``text/word_accuracy``).
        """
        reference = self.reference or {}
        text_rows = self._text_rows()
        return pd.DataFrame(
            {
                "group": [group for group, _ in FIGURES.values()] + ["text"] * len(text_rows),
                "synthetic": [_float(getattr(self, name)) for name in FIGURES] + [_float(v) for _, v, _ in text_rows],
                "reference": [_float(reference.get(name)) for name in FIGURES] + [_float(r) for _, _, r in text_rows],
            },
            index=pd.Index(list(FIGURES) + [name for name, _, _ in text_rows], name="figure"),
        )

    def text_figures(self, column: str | None = None) -> pd.DataFrame:
        """Return the text figures of one text column, indexed by figure, columns ``synthetic``, ``reference``.

        Parameters
        ----------
        column : str, optional
            The text column; may be left out when there is exactly one.

        Returns
        -------
        pandas.DataFrame
            One row per figure (``word_accuracy``, ``discriminator_auc``, ...).

        Raises
        ------
        ValueError
            If the result has no text column of that name, or ``column`` is left out with several.

        Examples
        --------
        >>> result.text_figures("text").loc["word_accuracy", "synthetic"]  # doctest: +SKIP
        0.912
        """
        columns = [] if self.text is None else list(dict.fromkeys(self.text["column"]))
        if column is None and len(columns) == 1:
            column = columns[0]
        if column not in columns:
            raise ValueError(
                f"The 'column' parameter of text_figures must be one of the text columns {columns}. "
                f"Got {column!r} instead."
            )
        table = self.text[self.text["column"] == column]
        return table.set_index("figure")[["synthetic", "reference"]]

    def _text_rows(self) -> list[tuple[str, float | None, float | None]]:
        if self.text is None:
            return []
        return [
            (f"{row.column}/{row.figure}", row.synthetic, row.reference) for row in self.text.itertuples(index=False)
        ]

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write a self-contained HTML report with the figures and plots.

        Plots need matplotlib (``pip install synthgen[report]``).

        Parameters
        ----------
        path : str or path-like
            File to write; its folder must exist.

        Returns
        -------
        pathlib.Path
            The path written.
        """
        from synthgen.evaluation._report import write_report

        return write_report(self, Path(path))

    def format_figure(self, name: str, value: float | None) -> str:
        """Format one figure as the report and ``repr`` show it.

        Parameters
        ----------
        name : str
            The figure's name (an attribute such as ``"overall"`` or ``"dcr_training"``, or a text figure such
            as ``"word_accuracy"`` or ``"text/context_auc[source]"``); it decides the format.
        value : float or None
            The figure's value, of this result or of its ``reference``.

        Returns
        -------
        str
            A percentage with one decimal (``"87.3%"``) for shares and accuracies, three decimals (``"0.512"``)
            for the other figures, and ``"–"`` for None or NaN.

        Raises
        ------
        KeyError
            If ``name`` is not a figure (and ``value`` is a number).
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if name in FIGURES:
            percent = FIGURES[name][1]
        else:
            percent = TEXT_FIGURES[text_figure_kind(name.rsplit("/", 1)[-1])][1]
        return f"{value:.1%}" if percent else f"{value:.3f}"

    def __repr__(self) -> str:
        counts = ", ".join(f"{name}={count:,}" for name, count in self.n_records.items())
        unit = "rows" if self.context_key is None else f"sequences by {self.context_key!r}"
        reference = self.reference or {}
        lines = [f"EvaluationResult({unit}: {counts})", f"  {'figure':<30}{'synthetic':>10}{'reference':>11}"]
        for name in FIGURES:
            value = getattr(self, name)
            if value is None and reference.get(name) is None:
                continue
            lines.append(
                f"  {name:<30}{self.format_figure(name, value):>10}{self.format_figure(name, reference.get(name)):>11}"
            )
        for name, value, text_reference in self._text_rows():
            lines.append(
                f"  {name:<30}{self.format_figure(name, value):>10}{self.format_figure(name, text_reference):>11}"
            )
        return "\n".join(lines)


def _float(value: float | None) -> float:
    return np.nan if value is None else float(value)
