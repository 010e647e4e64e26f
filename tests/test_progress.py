"""Progress bars where a person is watching, and a training bar that follows the binding budget."""

import io
import math

import pytest

import synthgen as sg
from synthgen import TabularSynthesizer
from synthgen._progress import TrainingProgress, show_progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(epoch: float, seconds: float, val_loss: float = math.nan) -> dict:
    return {"epoch": epoch, "total_time": seconds, "val_loss": val_loss}


def test_auto_shows_bars_on_a_terminal_only(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not show_progress("auto")
    assert show_progress(True) and not show_progress(0)
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert show_progress("auto")


@pytest.mark.parametrize("verbose, env, shown", [
    ("auto", None, True), (False, None, False), (0, None, False), ("auto", "1", False)])
def test_training_bar_is_shown_per_settings(monkeypatch, verbose, env, shown):
    monkeypatch.setattr("sys.stderr", _Terminal())
    if env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", env)
    with TrainingProgress(10, 60.0, callback=None, verbose=verbose) as progress:
        assert bool(progress.bar.disable) is not shown


def test_training_bar_total_is_the_budget_that_binds_first(monkeypatch):
    monkeypatch.setattr("sys.stderr", _Terminal())
    # 100 epochs at 10 s each would take 1000 s: the 60 s time budget binds
    with TrainingProgress(100, 60.0, callback=None, verbose=True) as progress:
        progress.update(_record(1.0, 10.0, val_loss=2.5))
        assert (progress.bar.total, progress.bar.n, progress.bar.unit) == (60, 10, "s")
        assert progress.bar.postfix == "epoch=1.00, val_loss=2.5000, left=00:50"
    # 3 epochs at 10 s each fit in the hour: the epochs bind
    with TrainingProgress(3, 3600.0, callback=None, verbose=True) as progress:
        progress.tick(0.5, 5.0)
        assert (progress.bar.total, progress.bar.n, progress.bar.unit) == (3, 0.5, "epoch")
        assert progress.bar.postfix == "epoch=0.50, left=00:25"


def test_training_callback_still_counts_epochs():
    calls = []
    with TrainingProgress(2.5, 60.0, callback=lambda **kw: calls.append(kw), verbose=False) as progress:
        progress.update(_record(0.4, 1.0))
        progress.update(_record(1.0, 2.0, 3.0))
    assert calls[0] == {"total": 3, "completed": 0}
    assert [(c["completed"], c["advance"]) for c in calls[1:]] == [(0, 0), (1, 1)]


def test_fit_and_sample_show_every_stage_on_a_terminal(adult, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(adult.head(300)).sample(40)
    shown = terminal.getvalue()
    for stage in ("split", "analyze", "encode", "train", "generate"):
        assert f"{stage}:" in shown
    assert "/40 [" in shown and "val_loss=" in shown  # generate counts the 40 rows asked for


def test_fit_is_silent_when_nobody_watches(adult, capsys):
    TabularSynthesizer(model="small", max_epochs=1, random_state=0).fit(adult.head(300)).sample(40)
    assert capsys.readouterr().err == ""


def test_generate_reports_its_total(adult, workspace):
    sg.split(adult.head(300), workspace_dir=workspace, random_state=0)
    sg.analyze(workspace_dir=workspace, random_state=0)
    sg.encode(workspace_dir=workspace, random_state=0)
    sg.train(model="small", max_epochs=1, workspace_dir=workspace, random_state=0)
    calls = []
    sg.generate(batch_size=100, workspace_dir=workspace, random_state=0, update_progress=lambda **kw: calls.append(kw))
    assert calls[0] == {"total": 300, "completed": 0}
    assert [c["completed"] for c in calls[1:]] == [100, 200, 300]


@pytest.mark.parametrize("value", ["yes", -1, None])
def test_invalid_verbose(adult, value):
    message = (r"The 'verbose' parameter of TabularSynthesizer must be a bool, an int in the range \[0, inf\) or "
               rf"'auto'\. Got {value!r} instead\.")
    with pytest.raises(ValueError, match=message):
        TabularSynthesizer(verbose=value).fit(adult.head(50))
