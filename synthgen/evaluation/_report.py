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
from synthgen.evaluation._text import TEXT_FIGURES, text_figure_kind

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

# One figure inch is 96 CSS pixels, so a font of 9 pt in a picture is as large as 9 pt text on the page.
_DPI = 96
_MAX_WIDTH_IN = 11.5  # the report's column is 1,168 px wide
_SMALL, _MEDIUM, _LARGE = 8.0, 9.0, 10.0  # tick labels; axis labels, legends and subtitles; titles

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
img { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.3em 0.8em; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.grid { display: flex; flex-wrap: wrap; gap: 0.5em; }
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
    ]
    if result.distributions:
        sections += [
            "<h2>Univariate distributions</h2>",
            f"<p class='note'>Share of each bucket (buckets fitted on the original data): {_legend(result)}.</p>",
            _univariate_plots(result, figure_class),
            _table(result.univariates),
        ]
    if len(result.univariates) > 1:
        heat_map = _image(_bivariate_heatmap(result, figure_class), "heat map of the bivariate accuracy per column pair")
        sections += ["<h2>Bivariate accuracy</h2>", heat_map]
        worst = result.bivariates.sort_values("accuracy").head(10)
        sections += ["<p class='note'>The 10 least accurate column pairs.</p>", _table(worst)]
    if result.text is not None:
        sections += _text_section(result, figure_class)
    if result.sequence_lengths is not None:
        lengths = _image(_length_histogram(result, figure_class), "histograms of the sequence lengths")
        sections += ["<h2>Sequences</h2>", lengths]
        sections += ["<h3>Coherence per column</h3>", _table(result.coherences)]
    if result.distances:
        note = (
            "Each curve is the share of its records per bin (the heights of a curve sum to 100 %), so frames of "
            "different sizes compare. Synthetic records should lie as far from the training records as from the "
            "holdout records; the reference shows how far fresh real records lie from the training records."
        )
        dcr = _image(_dcr_histogram(result, figure_class), "histograms of the distances to the closest record")
        sections += ["<h2>Distance to closest record</h2>", f"<p class='note'>{note}</p>", dcr]
    if result.fairness is not None:
        sections += _fairness_section(result, figure_class)
    if result.privacy_report is not None:
        sections += _privacy_ledger_section(result.privacy_report)
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Synthetic data evaluation</title><style>{_STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path


def _privacy_ledger_section(ledger: pd.DataFrame) -> list[str]:
    """The differential-privacy ledger: its totals (basic composition) and every mechanism."""
    epsilon, delta = float(ledger["epsilon"].sum()), float(ledger["delta"].sum())
    note = (f"Every mechanism that touched the private data, with what it spent. The release is "
            f"({epsilon:.4g}, {delta:.3g})-differentially private: the sums of the lines (basic composition).")
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if value is None or value != value else str(value))}</td>"
                         for value in (row.stage, row.column, row.mechanism))
        + f"<td class='num'>{row.epsilon:.4g}</td><td class='num'>{row.delta:.3g}</td></tr>"
        for row in ledger.itertuples(index=False))
    table = ("<table><tr><th>stage</th><th>column</th><th>mechanism</th><th>epsilon</th><th>delta</th></tr>"
             + rows + f"<tr><th colspan='3'>total</th><th class='num'>{epsilon:.4g}</th>"
             f"<th class='num'>{delta:.3g}</th></tr></table>")
    return ["<h2>Differential privacy</h2>", f"<p class='note'>{html.escape(note)}</p>", _scroll(table)]


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
    return _scroll(
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
    return _scroll(f"<table><tr>{header}</tr>{''.join(body)}</table>")


def _scroll(table: str) -> str:
    """A table in a box that scrolls sideways on a narrow screen instead of widening the page."""
    return f"<div class='scroll'>{table}</div>"


def _image(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    # Every figure is drawn with constrained layout, which fits its labels into the figure's fixed size
    # (bbox_inches="tight" would draw every figure twice and give the grid's pictures uneven sizes).
    figure.savefig(buffer, format="png", dpi=_DPI)
    width, height = np.round(figure.get_size_inches() * _DPI).astype(int)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return (
        f"<img alt='{html.escape(alt, quote=True)}' width='{width}' height='{height}' "
        f"src='data:image/png;base64,{encoded}'>"
    )


def _percent_axis(axis: Axis) -> None:
    """Label ``axis`` (shares) in percent with the decimals each tick needs: 0%, 2.5%, 5%."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda share, _: f"{share * 100:.4g}%"))


def _univariate_plots(result: EvaluationResult, figure_class: type[Figure]) -> str:
    accuracies = dict(zip(result.univariates["column"], result.univariates["accuracy"], strict=True))
    images = []
    for column, shares in result.distributions.items():
        # three pictures side by side in the report's 1,168 px wide column
        figure = figure_class(figsize=(3.85, 3.0), layout="constrained")
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
            positions,
            [_shorten(label) for label in shares.index],
            rotation=45,
            ha="right",
            rotation_mode="anchor",
            fontsize=_SMALL,
        )
        axes.set_title(f"{_shorten(str(column), 36)}: accuracy {accuracies[column]:.1%}", fontsize=_MEDIUM)
        axes.tick_params(axis="y", labelsize=_SMALL)
        _percent_axis(axes.yaxis)
        images.append(_image(figure, f"bucket shares of {column}"))
    return f"<div class='grid'>{''.join(images)}</div>"


def _bivariate_heatmap(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    from matplotlib.colors import Normalize

    columns = list(result.univariates["column"])
    matrix = pd.DataFrame(np.nan, index=columns, columns=columns)
    for row in result.bivariates.itertuples(index=False):
        matrix.loc[row.column_1, row.column_2] = row.accuracy
        matrix.loc[row.column_2, row.column_1] = row.accuracy
    values = matrix.to_numpy()
    n = len(columns)
    labels = [_shorten(str(c), 24) for c in columns]
    # The matrix gets about 0.42 inch a column, at most 8.5 inches, so the figure fits the report's column;
    # labels shrink below 8 pt only where rows would otherwise overlap (more than about 50 columns).
    side = float(np.clip(0.42 * n, 3.0, 8.5))
    cell_pt = side * 72 / n
    tick_size = float(np.clip(0.7 * cell_pt, 5.0, _MEDIUM))
    label_in = max(map(len, labels)) * tick_size * 0.55 / 72
    figure = figure_class(
        figsize=(min(_MAX_WIDTH_IN, side + label_in + 1.4), side + 0.72 * label_in + 0.6), layout="constrained"
    )
    axes = figure.add_subplot()
    norm = Normalize(vmin=max(0.0, float(np.nanmin(values)) - 0.02), vmax=1.0)
    image = axes.imshow(values, cmap="RdYlGn", norm=norm)
    axes.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=tick_size)
    axes.set_yticks(range(n), labels, fontsize=tick_size)
    value_size = min(_MEDIUM, cell_pt / 3.6)
    if value_size >= _SMALL:
        for (i, j), value in np.ndenumerate(values):
            if not np.isnan(value):
                red, green, blue, _ = image.cmap(norm(value))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                axes.text(
                    j, i, f"{value:.0%}", ha="center", va="center", fontsize=value_size,
                    color="white" if dark else "black",
                )
    colour_bar = figure.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
    _percent_axis(colour_bar.ax.yaxis)
    colour_bar.set_label("bivariate accuracy", fontsize=_MEDIUM)
    colour_bar.ax.tick_params(labelsize=_SMALL)
    axes.set_title("Accuracy of each column pair's joint distribution", fontsize=_LARGE)
    return figure


def _length_histogram(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    lengths = result.sequence_lengths
    edges = np.histogram_bin_edges(lengths["original"], bins=min(50, int(lengths["original"].max())))
    figure, axes = _histogram_figure(figure_class)
    for name, values in lengths.items():
        axes.stairs(_shares(values, edges), edges, linewidth=1.8, label=f"{name} ({len(values):,})", color=_COLORS[name])
    axes.set_xlabel("sequence length", fontsize=_MEDIUM)
    axes.set_ylabel("share of sequences per bin", fontsize=_MEDIUM)
    _percent_axis(axes.yaxis)
    _legend_below(figure, len(lengths))
    axes.set_title(
        f"Sequence lengths: accuracy {result.format_figure('sequence_length', result.sequence_length)}",
        fontsize=_LARGE,
    )
    return figure


def _dcr_shares(result: EvaluationResult) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bin edges and, per series of ``result.distances``, the share of its distances in each bin.

    Shares, not counts: the holdout is often much smaller than the synthetic data, and only shares put its
    reference curve on the same scale. Distances above the 99th percentile of all series count in the last bin.
    """
    upper = max(float(np.quantile(values, 0.99)) for values in result.distances.values())
    edges = np.linspace(0.0, max(upper, 1e-6), 51)
    return edges, {key: _shares(np.minimum(values, edges[-1]), edges) for key, values in result.distances.items()}


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.histogram(values, bins=edges)[0]
    return counts / max(len(values), 1)


def _dcr_histogram(result: EvaluationResult, figure_class: type[Figure]) -> Figure:
    edges, shares = _dcr_shares(result)
    figure, axes = _histogram_figure(figure_class)
    for key, heights in shares.items():
        label, color = _DCR_SERIES[key]
        axes.stairs(heights, edges, linewidth=1.8, label=f"{label} ({len(result.distances[key]):,})", color=color)
    axes.set_xlabel("distance to closest record (the last bin holds all above the 99th percentile)", fontsize=_MEDIUM)
    axes.set_ylabel("share of records per bin", fontsize=_MEDIUM)
    _percent_axis(axes.yaxis)
    _legend_below(figure, len(shares))
    share = result.format_figure("dcr_share", result.dcr_share)
    axes.set_title(
        f"DCR share {share}, exact copies {result.format_figure('exact_match_share', result.exact_match_share)}",
        fontsize=_LARGE,
    )
    return figure


def _histogram_figure(figure_class: type[Figure]) -> tuple[Figure, Axes]:
    # 768 px: wide enough for a one-row legend of three series with their sizes
    figure = figure_class(figsize=(8.0, 3.8), layout="constrained")
    axes = figure.add_subplot()
    axes.tick_params(labelsize=_SMALL)
    return figure, axes


def _legend_below(figure: Figure, n_entries: int) -> None:
    """One row of legend entries under the plot, where it hides no data."""
    figure.legend(loc="outside lower center", ncols=n_entries, frameon=False, fontsize=_MEDIUM)


def _text_section(result: EvaluationResult, figure_class: type[Figure]) -> list[str]:
    note = (
        "Free-text columns, evaluated without any language model: lengths, word and word-pair frequencies, a "
        "TF-IDF discriminator, how well a classifier trained on the original predicts a context column from the "
        "text, and copies of training text. The reference is the holdout's figure: the ceiling for accuracies and "
        "context AUCs, the yardstick for copies (see docs/evaluation.md)."
    )
    sections = ["<h2>Text</h2>", f"<p class='note'>{html.escape(note)}</p>"]
    for column, figures in result.text.groupby("column", sort=False):
        rows = "".join(
            f"<tr><td>{html.escape(row.figure)}</td>"
            f"<td class='num'>{result.format_figure(row.figure, row.synthetic)}</td>"
            f"<td class='num'>{result.format_figure(row.figure, row.reference)}</td>"
            f"<td>{html.escape(TEXT_FIGURES[text_figure_kind(row.figure)][0])}</td></tr>"
            for row in figures.itertuples(index=False)
        )
        table = _scroll(
            "<table><tr><th>figure</th><th>synthetic</th><th>reference (holdout)</th><th>meaning</th></tr>"
            f"{rows}</table>"
        )
        histogram = _image(_text_length_histogram(result, column, figure_class), f"length histograms of {column}")
        sections += [f"<h3>{html.escape(str(column))}</h3>", table, histogram]
    return sections


def _text_length_histogram(result: EvaluationResult, column: str, figure_class: type[Figure]) -> Figure:
    lengths = result.text_lengths[column]
    figures = result.text_figures(column)["synthetic"]
    figure = figure_class(figsize=(_MAX_WIDTH_IN * 0.8, 3.6), layout="constrained")
    for position, (unit, figure_name) in enumerate(
        [("characters", "char_length_accuracy"), ("words", "word_count_accuracy")], start=1
    ):
        axes = figure.add_subplot(1, 2, position)
        axes.tick_params(labelsize=_SMALL)
        original = lengths["original"][unit].to_numpy()
        top = max(int(original.max()), 1) if len(original) else 1
        # whole-number bins of equal width (lengths are integers), about 40 of them
        width = -(-top // 40)
        edges = np.arange(0, top + 2 * width, width, dtype=np.float64)
        for name, frame in lengths.items():
            values = np.minimum(frame[unit].to_numpy(), edges[-1])
            axes.stairs(_shares(values, edges), edges, linewidth=1.6, color=_COLORS[name],
                        label=f"{name} ({len(values):,})" if position == 1 else None)
        axes.set_xlabel(f"length in {unit} (longer ones in the last bin)", fontsize=_MEDIUM)
        axes.set_ylabel("share of texts per bin", fontsize=_MEDIUM)
        _percent_axis(axes.yaxis)
        axes.set_title(
            f"{_shorten(str(column), 24)}, {unit}: accuracy {result.format_figure(figure_name, figures[figure_name])}",
            fontsize=_LARGE,
        )
    _legend_below(figure, len(lengths))
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
    table = _scroll(
        "<table><tr><th>frame</th><th>statistical parity difference</th><th>disparate impact</th></tr>"
        f"{rows}</table>"
    )
    bars = _image(_parity_bars(result, figure_class), f"share of a class of {target} per group")
    return ["<h2>Fairness</h2>", f"<p class='note'>{note}</p>", table, bars]


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
    figure = figure_class(figsize=(7.5, 4.2), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(len(groups))
    width = 0.8 / len(frames)
    for i, frame in enumerate(frames):
        values = shares.loc[frame, shown].reindex(groups).fillna(0.0)
        axes.bar(positions + (i - (len(frames) - 1) / 2) * width, values, width, label=frame, color=_COLORS[frame])
    labels = [_shorten(" / ".join(g) if isinstance(g, tuple) else str(g), 28) for g in groups]
    axes.set_xticks(positions, labels, rotation=45, ha="right", rotation_mode="anchor", fontsize=_SMALL)
    axes.tick_params(axis="y", labelsize=_SMALL)
    _percent_axis(axes.yaxis)
    target = result.fairness_columns["target_column"]
    axes.set_ylabel(f"share of {_shorten(str(shown), 20)}", fontsize=_MEDIUM)
    _legend_below(figure, len(frames))
    axes.set_title(
        f"{_shorten(str(target), 30)} = {_shorten(str(shown), 20)} per group "
        f"(groups of {MIN_GROUP_SIZE}+ original rows)",
        fontsize=_LARGE,
    )
    return figure


def _shorten(text: str, limit: int = 18) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
