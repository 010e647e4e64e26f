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
