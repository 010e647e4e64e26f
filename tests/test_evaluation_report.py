"""Tests of the HTML report written by EvaluationResult.to_html."""

from __future__ import annotations

import base64
import re
import sys

import numpy as np
import pandas as pd
import pytest

from synthgen.evaluation import evaluate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def flat_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "y": x + rng.normal(size=n),
            "c": np.where(x > 0, "pos", "neg"),
            "n<&>": rng.integers(0, 5, n),
        }
    )


def embedded_images(page: str) -> list[bytes]:
    return [
        base64.b64decode(data) for data in re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    ]


@pytest.fixture(scope="module")
def flat_result():
    return evaluate(flat_frame(400, 0), flat_frame(400, 1), flat_frame(200, 2), random_state=0)


def test_flat_report_is_one_self_contained_page(flat_result, tmp_path):
    path = flat_result.to_html(tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    images = embedded_images(page)
    # one distribution per column, the bivariate heat map and the DCR histogram
    assert len(images) == 4 + 1 + 1
    assert all(image.startswith(PNG_SIGNATURE) for image in images)
    assert not re.search(r"(src|href)=['\"]?(http|file|/)", page)
    for figure in (
        "overall",
        "univariate",
        "bivariate",
        "discriminator_auc",
        "dcr_share",
        "exact_match_share",
    ):
        assert f"<td>{figure}</td>" in page
    assert flat_result.format_figure("overall", flat_result.overall) in page
    assert "n&lt;&amp;&gt;" in page and "n<&>" not in page  # column names are escaped


def test_sequence_report_adds_length_histogram_and_coherence(tmp_path):
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 12, 50)
    frame = pd.DataFrame({"key": np.repeat(np.arange(50), lengths), "v": rng.normal(size=lengths.sum())})
    result = evaluate(frame, frame, context_key="key", random_state=0)
    page = result.to_html(tmp_path / "sequences.html").read_text(encoding="utf-8")
    images = embedded_images(page)
    # one distribution, the length histogram and the DCR histogram; a single column has no pairs
    assert len(images) == 3
    assert "<h3>Coherence per column</h3>" in page
    assert "<td>sequence_length</td>" in page


def test_report_without_privacy_figures_skips_the_dcr_plot(tmp_path):
    result = evaluate(flat_frame(100, 4), flat_frame(100, 5), privacy=False, discriminator=False)
    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Distance to closest record" not in page
    assert len(embedded_images(page)) == 4 + 1


def test_missing_matplotlib_gives_install_hint(flat_result, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=re.escape("pip install synthgen[report]")):
        flat_result.to_html(tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_fairness_report_shows_parity_per_frame(tmp_path):
    frames = [flat_frame(300, seed) for seed in (6, 7, 8)]
    for frame in frames:
        frame["g"] = np.where(np.arange(len(frame)) % 3 == 0, "a", "b")
    result = evaluate(*frames, privacy=False, discriminator=False,
                      fairness={"target_column": "c", "sensitive_columns": ["g"]})
    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Fairness</h2>" in page
    assert "<td>statistical_parity_difference</td>" in page and "<td>disparate_impact</td>" in page
    assert f"{result.fairness.loc['holdout', 'disparate_impact']:.3f}" in page
    # five distributions, the heat map and the parity bars
    assert len(embedded_images(page)) == 5 + 1 + 1


# --- legibility: what a browser shows at a laptop's width ---

MIN_FONT_PT = 8


def drawn_figures(result, tmp_path, monkeypatch) -> tuple[list, str]:
    """Write the report of ``result``; return every figure it embeds (laid out and drawn with Agg) and the page."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from synthgen.evaluation import _report

    figures = []
    embed = _report._image

    def collect(figure, *args, **kwargs):
        figures.append(figure)
        return embed(figure, *args, **kwargs)

    monkeypatch.setattr(_report, "_image", collect)
    page = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    for figure in figures:
        FigureCanvasAgg(figure).draw()
    return figures, page


def tick_labels(axis) -> list:
    """The tick labels ``axis`` draws: those of ticks inside its view limits."""
    low, high = sorted(axis.get_view_interval())
    margin = 1e-9 * max(1.0, abs(high - low))
    return [
        label
        for tick in axis.get_major_ticks()
        if low - margin <= tick.get_loc() <= high + margin
        for label in (tick.label1, tick.label2)
        if label.get_visible() and label.get_text().strip()
    ]


def visible_texts(figure) -> list:
    """Every text ``figure`` draws: titles, axis labels, legends, annotations and drawn tick labels."""
    from matplotlib.text import Text

    ticks = {
        id(label)
        for axes in figure.axes
        for axis in (axes.xaxis, axes.yaxis)
        for tick in axis.get_major_ticks() + axis.get_minor_ticks()
        for label in (tick.label1, tick.label2)
    }
    texts = [
        t for t in figure.findobj(Text)
        if id(t) not in ticks and t.get_visible() and t.get_text().strip() and t.get_figure() is figure
    ]
    return texts + [label for axes in figure.axes for axis in (axes.xaxis, axes.yaxis) for label in tick_labels(axis)]


@pytest.fixture(scope="module")
def fairness_result():
    frames = [flat_frame(n, seed) for n, seed in ((800, 9), (800, 10), (200, 11))]
    for frame in frames:
        frame["group with a long name"] = np.where(np.arange(len(frame)) % 3 == 0, "first group", "second group")
    return evaluate(*frames, random_state=0,
                    fairness={"target_column": "c", "sensitive_columns": ["group with a long name"]})


def test_every_text_of_every_figure_lies_inside_the_image(fairness_result, tmp_path, monkeypatch):
    # Cut-off labels (the heat map's colour-bar label, rotated tick labels) fall outside the figure's extent.
    figures, _ = drawn_figures(fairness_result, tmp_path, monkeypatch)
    assert len(figures) == 5 + 1 + 1 + 1  # distributions, heat map, DCR histogram, parity bars
    for figure in figures:
        renderer = figure.canvas.get_renderer()
        frame = figure.bbox
        for text in visible_texts(figure):
            box = text.get_window_extent(renderer)
            assert (
                box.x0 >= frame.x0 - 1 and box.y0 >= frame.y0 - 1
                and box.x1 <= frame.x1 + 1 and box.y1 <= frame.y1 + 1
            ), f"{text.get_text()!r} at {box.extents} outside the image {frame.extents}"


def test_heat_map_colour_bar_labels_lie_inside_the_image(flat_result, tmp_path, monkeypatch):
    figures, _ = drawn_figures(flat_result, tmp_path, monkeypatch)
    heat_map = next(f for f in figures if len(f.axes) == 2)  # the heat map and its colour bar
    colour_bar = heat_map.axes[1]
    renderer = heat_map.canvas.get_renderer()
    labels = [t for t in colour_bar.get_yticklabels() if t.get_text()] + [colour_bar.yaxis.label]
    assert colour_bar.yaxis.label.get_text() == "bivariate accuracy"
    for label in labels:
        box = label.get_window_extent(renderer)
        assert heat_map.bbox.x0 <= box.x0 and box.x1 <= heat_map.bbox.x1 + 1, label.get_text()
        assert heat_map.bbox.y0 <= box.y0 and box.y1 <= heat_map.bbox.y1 + 1, label.get_text()


def test_titles_labels_and_legends_do_not_overlap(fairness_result, tmp_path, monkeypatch):
    figures, _ = drawn_figures(fairness_result, tmp_path, monkeypatch)
    for figure in figures:
        renderer = figure.canvas.get_renderer()
        ticks = {id(label) for axes in figure.axes for axis in (axes.xaxis, axes.yaxis) for label in tick_labels(axis)}
        texts = [t for t in visible_texts(figure) if id(t) not in ticks]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
        for i, (text, box) in enumerate(boxes):
            for other_text, other in boxes[i + 1:]:
                overlap = box.intersection(box, other)
                assert overlap is None or overlap.width * overlap.height < 1, f"{text!r} overlaps {other_text!r}"


def test_no_text_is_smaller_than_8_points(fairness_result, tmp_path, monkeypatch):
    figures, _ = drawn_figures(fairness_result, tmp_path, monkeypatch)
    for figure in figures:
        for text in visible_texts(figure):
            assert text.get_fontsize() >= MIN_FONT_PT, f"{text.get_text()!r} at {text.get_fontsize()} pt"


def test_tick_labels_do_not_overlap(fairness_result, tmp_path, monkeypatch):
    figures, _ = drawn_figures(fairness_result, tmp_path, monkeypatch)
    for figure in figures:
        renderer = figure.canvas.get_renderer()
        for axes in figure.axes:
            for axis in (axes.xaxis, axes.yaxis):
                labels = tick_labels(axis)
                for first, second in zip(labels, labels[1:], strict=False):
                    angle = np.deg2rad(first.get_rotation() % 180)
                    if angle == 0:
                        box, other = first.get_window_extent(renderer), second.get_window_extent(renderer)
                        assert box.x1 <= other.x0 or other.x1 <= box.x0 or box.y1 <= other.y0 or other.y1 <= box.y0
                    else:
                        # rotated labels are parallel strips one line high: their anchors, a tick apart, must
                        # be at least a line height apart across the strips
                        (x1, y1), (x2, y2) = (
                            label.get_transform().transform(label.get_position()) for label in (first, second)
                        )
                        apart = abs(x2 - x1) * np.sin(angle) + abs(y2 - y1) * abs(np.cos(angle))
                        line = first.get_fontsize() * figure.dpi / 72
                        assert apart >= line, f"overlapping tick labels in {axes.get_title()!r}"


def test_dcr_histograms_show_shares_so_frames_of_different_sizes_compare(tmp_path, monkeypatch):
    # 1,200 synthetic rows against a holdout of 150: raw counts would put the holdout curve 8 times lower.
    result = evaluate(flat_frame(600, 12), flat_frame(1200, 13), flat_frame(150, 14), discriminator=False,
                      random_state=0)
    assert len(result.distances["synthetic_training"]) == 8 * len(result.distances["holdout_training"])
    figures, _ = drawn_figures(result, tmp_path, monkeypatch)
    dcr = figures[-1]
    from matplotlib.patches import StepPatch

    series = [p for p in dcr.axes[0].patches if isinstance(p, StepPatch)]
    assert sorted(p.get_label().rsplit(" (", 1)[0] for p in series) == sorted(
        ["synthetic → training", "synthetic → holdout", "holdout → training (reference)"]
    )
    for patch in series:
        heights, edges = patch.get_data()[:2]
        assert heights.sum() == pytest.approx(1.0)  # every frame's shares of records per bin
        assert len(edges) == len(heights) + 1


def test_dcr_shares_count_every_distance_once(flat_result):
    from synthgen.evaluation._report import _dcr_shares

    edges, shares = _dcr_shares(flat_result)
    assert set(shares) == set(flat_result.distances)
    for key, values in flat_result.distances.items():
        assert shares[key].sum() == pytest.approx(1.0)  # values past the 99th percentile sit in the last bin
        counts = np.histogram(np.minimum(values, edges[-1]), bins=edges)[0]
        np.testing.assert_allclose(shares[key], counts / len(values))


def test_sequence_length_histogram_shows_shares(tmp_path, monkeypatch):
    rng = np.random.default_rng(15)
    lengths = rng.integers(1, 12, 60)
    frame = pd.DataFrame({"key": np.repeat(np.arange(60), lengths), "v": rng.normal(size=lengths.sum())})
    short = frame[frame["key"] < 20]
    result = evaluate(frame, short, frame, context_key="key", privacy=False, discriminator=False)
    figures, _ = drawn_figures(result, tmp_path, monkeypatch)
    from matplotlib.patches import StepPatch

    series = [p for p in figures[-1].axes[0].patches if isinstance(p, StepPatch)]
    assert len(series) == 3
    for patch in series:
        assert patch.get_data()[0].sum() == pytest.approx(1.0)


def test_images_and_tables_fit_the_page_width(flat_result, tmp_path):
    page = flat_result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1)
    rule = re.search(r"(^|\n|\})\s*img\s*\{([^}]*)\}", style)
    assert rule is not None and re.search(r"max-width:\s*100%", rule.group(2))
    assert re.search(r"height:\s*auto", rule.group(2))  # scaled images keep their aspect ratio
    assert "<meta name='viewport'" in page
    # every table sits in a box that scrolls sideways instead of widening the page
    assert page.count("<table") == page.count("<div class='scroll'><table")
    # images carry their size, so the page does not jump while it loads, and say what they show
    for tag in re.findall(r"<img [^>]*>", page):
        assert re.search(r"width='\d+'", tag) and re.search(r"height='\d+'", tag)
        assert "alt='plot'" not in tag
