"""A self-contained HTML report of an :class:`EvaluationResult`, with plots embedded as base64 PNG."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from synthgen.evaluation._fairness import MIN_GROUP_SIZE
from synthgen.evaluation._result import FIGURES, EvaluationResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_COLORS = {"original": "#4c72b0", "synthetic": "#dd8452", "holdout": "#8c8c8c"}
_DCR_SERIES = {
    "synthetic_training": ("synthetic → training", "#dd8452"),
    "synthetic_holdout": ("synthetic → holdout", "#55a868"),
    "holdout_training": ("holdout → training (reference)", "#8c8c8c"),
}
_DESCRIPTIONS = {
    "overall": "mean of the accuracy parts",
    "univariate": "1 − TVD of single-column distributions, mean over columns",
    "bivariate": "1 − TVD of column-pair distributions, mean over pairs",
    "trivariate": "1 − TVD of column-triple distributions, mean over (sampled) triples",
    "coherence": "1 − TVD of (step t, step t+1) distributions, mean over columns",
    "sequence_length": "1 − TVD of the sequence-length distribution",
    "discriminator_auc": "AUC of a classifier telling original from synthetic records; 0.5 is ideal",
    "dcr_share": "synthetic records closer to training than to holdout; 50% is ideal",
    "exact_match_share": "synthetic records identical to a training record",
    "exact_match_share_holdout": "synthetic records identical to a holdout record",
    "dcr_training": "mean distance to the closest training record",
    "dcr_holdout": "mean distance to the closest holdout record",
    "nndr_training": "10th smallest nearest / second-nearest distance ratio to training records",
    "nndr_holdout": "10th smallest nearest / second-nearest distance ratio to holdout records",
    "statistical_parity_difference": "largest gap between groups in the share of a target class; 0 is parity",
    "disparate_impact": "smallest ratio between groups of the share of a target class; 1 is parity",
}
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: flex; flex-wrap: wrap; gap: 0.5em; }
.grid img { width: 380px; }
.note { color: #666; font-size: 0.9em; }
"""


def _import_figure() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            "EvaluationResult.to_html draws its plots with matplotlib, which is not installed. "
            "Install it with: pip install synthgen[report]"
        ) from error
    return Figure


def write_report(result: EvaluationResult, path: Path) -> Path:
    """Render ``result`` as one HTML page and write it to ``path``."""
    figure_class = _import_figure()
    sections = [
        f"<h1>Synthetic data evaluation</h1><p class='note'>{html.escape(_counts(result))}</p>",
        "<h2>Figures</h2>",
        _figures_table(result),
        "<h2>Univariate distributions</h2>",
        f"<p class='note'>Share of each bucket (buckets fitted on the original data): {_legend(result)}.</p>",
        _univariate_plots(result, figure_class),
        _table(result.univariates),
    ]
    if len(result.univariates) > 1:
        sections += ["<h2>Bivariate accuracy</h2>", _image(_bivariate_heatmap(result, figure_class))]
        worst = result.bivariates.sort_values("accuracy").head(10)
        sections += ["<p class='note'>The 10 least accurate column pairs.</p>", _table(worst)]
    if result.sequence_lengths is not None:
        sections += ["<h2>Sequences</h2>", _image(_length_histogram(result, figure_class))]
        sections += ["<h3>Coherence per column</h3>", _table(result.coherences)]
    if result.distances:
        sections += ["<h2>Distance to closest record</h2>", _image(_dcr_histogram(result, figure_class))]
    if result.fairness is not None:
        sections += _fairness_section(result, figure_class)
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>Synthetic data evaluation</title><style>{_STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _counts(result: EvaluationResult) -> str:
    unit = "rows" if result.context_key is None else f"sequences (context key {result.context_key!r})"
    counts = ", ".join(f"{name}: {count:,}" for name, count in result.n_records.items())
    return f"Compared {unit}: {counts}."


def _legend(result: EvaluationResult) -> str:
    names = next(iter(result.distributions.values())).columns
    return ", ".join(f"<span style='color:{_COLORS[name]}'>■</span> {name}" for name in names)


def _figures_table(result: EvaluationResult) -> str:
    reference = result.reference or {}
    rows = []
    for name in FIGURES:
        value, ref = getattr(result, name), reference.get(name)
        if value is None and ref is None:
            continue
        rows.append(
            f"<tr><td>{name}</td><td class='num'>{result.format_figure(name, value)}</td>"
            f"<td class='num'>{result.format_figure(name, ref)}</td><td>{html.escape(_DESCRIPTIONS[name])}</td></tr>"
        )
    return (
        "<table><tr><th>figure</th><th>synthetic</th><th>reference (holdout)</th><th>meaning</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _table(frame: pd.DataFrame) -> str:
    header = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append(f"<td class='num'>{value:.1%}</td>")
            else:
                cells.append(f"<td>{html.escape(str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{header}</tr>{''.join(body)}</table>"


def _image(figure: Figure) -> str:
    buffer = io.BytesIO()
    # A fixed layout: bbox_inches="tight" would draw every figure twice.
    figure.savefig(buffer, format="png", dpi=80)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='plot' src='data:image/png;base64,{encoded}'>"


def _univariate_plots(result: EvaluationResult, figure_class: type[Figure]) -> str:
    accuracies = dict(zip(result.univariates["column"], result.univariates["accuracy"], strict=True))
    images = []
    for column, shares in result.distributions.items():
        figure = figure_class(figsize=(4.8, 3.2))
        figure.subplots_adjust(left=0.12, right=0.98, top=0.9, bottom=0.32)
        axes = figure.add_subplot()
        positions = np.arange(len(shares))
        width = 0.8 / shares.shape[1]
        for i, name in enumerate(shares.columns):
            axes.bar(
                positions + (i - (shares.shape[1] - 1) / 2) * width,
                shares[name],
                width,
                label=name,
                color=_COLORS[name],
            )
        axes.set_xticks(
            positions, [_shorten(label) for label in shares.index], rotation=60, ha="right", fontsize=7
        )
        axes.set_title(f"{_shorten(str(column), 40)}: accuracy {accuracies[column]:.1%}", fontsize=9)
        axes.tick_params(axis="y", labelsize=7)
        images.append(_image(figure))
    return f"<div class='grid'>{''.join(images)}</div>"


def _bivariate_heatmap(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    columns = list(result.univariates["column"])
    matrix = pd.DataFrame(np.nan, index=columns, columns=columns)
    for row in result.bivariates.itertuples(index=False):
        matrix.loc[row.column_1, row.column_2] = row.accuracy
        matrix.loc[row.column_2, row.column_1] = row.accuracy
    size = min(14.0, 3.5 + 0.45 * len(columns))
    figure = figure_class(figsize=(size + 1.0, size))
    figure.subplots_adjust(left=0.18, right=0.97, top=0.94, bottom=0.16)
    axes = figure.add_subplot()
    image = axes.imshow(
        matrix.to_numpy(), cmap="RdYlGn", vmin=max(0.0, np.nanmin(matrix.to_numpy()) - 0.02), vmax=1.0
    )
    labels = [_shorten(str(c), 24) for c in columns]
    axes.set_xticks(range(len(columns)), labels, rotation=70, ha="right", fontsize=8)
    axes.set_yticks(range(len(columns)), labels, fontsize=8)
    if len(columns) <= 20:
        for (i, j), value in np.ndenumerate(matrix.to_numpy()):
            if not np.isnan(value):
                axes.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=6)
    figure.colorbar(image, ax=axes, fraction=0.04, label="bivariate accuracy")
    axes.set_title("Accuracy of each column pair's joint distribution", fontsize=10)
    return figure


def _length_histogram(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    lengths = result.sequence_lengths
    edges = np.histogram_bin_edges(lengths["original"], bins=min(50, int(lengths["original"].max())))
    figure = figure_class(figsize=(7.5, 3.5), layout="constrained")
    axes = figure.add_subplot()
    for name, values in lengths.items():
        axes.hist(
            values, bins=edges, density=True, histtype="step", linewidth=1.8, label=name, color=_COLORS[name]
        )
    axes.set_xlabel("sequence length")
    axes.set_ylabel("density")
    axes.set_title(
        f"Sequence lengths: accuracy {result.format_figure('sequence_length', result.sequence_length)}"
    )
    axes.legend()
    return figure


def _dcr_histogram(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    upper = max(float(np.quantile(values, 0.99)) for values in result.distances.values())
    edges = np.linspace(0.0, max(upper, 1e-6), 51)
    figure = figure_class(figsize=(7.5, 3.5), layout="constrained")
    axes = figure.add_subplot()
    for key, values in result.distances.items():
        label, color = _DCR_SERIES[key]
        axes.hist(
            np.minimum(values, edges[-1]),
            bins=edges,
            histtype="step",
            linewidth=1.8,
            label=label,
            color=color,
        )
    axes.set_xlabel("distance to closest record (values above the 99th percentile in the last bin)")
    axes.set_ylabel("records")
    share = result.format_figure("dcr_share", result.dcr_share)
    axes.set_title(
        f"DCR share {share}, exact copies {result.format_figure('exact_match_share', result.exact_match_share)}"
    )
    axes.legend()
    return figure


def _fairness_section(result: EvaluationResult, figure_class: type[Figure]) -> list[str]:
    target = result.fairness_columns["target_column"]
    sensitive = result.fairness_columns["sensitive_columns"]
    figures = result.fairness.reset_index()
    note = (
        f"Statistical parity of {html.escape(repr(target))} with respect to "
        f"{html.escape(', '.join(map(repr, sensitive)))}: every frame's parity difference (0 is parity) and "
        "disparate impact (1 is parity; below 0.8 fails the four-fifths rule), groups of 30 rows or more."
    )
    rows = "".join(
        f"<tr><td>{html.escape(row.frame)}</td><td class='num'>{row.statistical_parity_difference:.3f}</td>"
        f"<td class='num'>{row.disparate_impact:.3f}</td></tr>"
        for row in figures.itertuples(index=False)
    )
    table = (
        "<table><tr><th>frame</th><th>statistical parity difference</th><th>disparate impact</th></tr>"
        f"{rows}</table>"
    )
    return ["<h2>Fairness</h2>", f"<p class='note'>{note}</p>", table, _image(_parity_bars(result, figure_class))]


def _parity_bars(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    shares = result.fairness_shares
    classes = [c for c in shares.columns if c != "n"]
    # The class whose shares differ most between groups in the original (the minority class of a binary target).
    spread = shares.loc["original", classes]
    shown = max(classes, key=lambda c: (spread[c].max() - spread[c].min(), -spread[c].mean()))
    frames = list(dict.fromkeys(shares.index.get_level_values("frame")))
    # the groups the figures count: 30 rows or more in the original
    sizes = shares.loc["original", "n"]
    groups = list(sizes.index[sizes >= MIN_GROUP_SIZE]) or list(sizes.index)
    figure = figure_class(figsize=(7.5, 3.8), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(groups))
    width = 0.8 / len(frames)
    for i, frame in enumerate(frames):
        values = shares.loc[frame, shown].reindex(groups).fillna(0.0)
        axes.bar(positions + (i - (len(frames) - 1) / 2) * width, values, width, label=frame, color=_COLORS[frame])
    labels = [_shorten(" / ".join(g) if isinstance(g, tuple) else str(g), 28) for g in groups]
    axes.set_xticks(positions, labels, rotation=60, ha="right", fontsize=7)
    target = result.fairness_columns["target_column"]
    axes.set_ylabel(f"share of {_shorten(str(shown), 20)}")
    axes.set_title(f"{_shorten(str(target), 30)} = {_shorten(str(shown), 20)} per group "
                   f"(groups of {MIN_GROUP_SIZE}+ original rows)", fontsize=10)
    axes.legend()
    return figure


def _shorten(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
