"""Progress reporting: the engine's ``update_progress`` callback and tqdm bars, behind one object.

``verbose="auto"`` (the default of the estimator and the engine functions) shows bars where a person is
watching: when stderr is a terminal or the code runs in a notebook. ``TQDM_DISABLE`` hides them all.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

from tqdm.auto import tqdm

from .domain import ProgressCallback

__all__ = ["ProgressReporter", "TrainingProgress", "show_progress"]

def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and hasattr(shell, "kernel")  # a Jupyter kernel, not the terminal IPython


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def show_progress(verbose: bool | int | str) -> bool:
    """Whether ``verbose`` asks for progress bars: ``"auto"`` when stderr is a terminal or in a notebook."""
    if verbose == "auto":
        return _stderr_is_terminal() or _in_notebook()
    return bool(verbose)


def _bar(total: float | None, description: str, verbose: bool | int | str, **kwargs) -> tqdm:
    if not show_progress(verbose) or os.environ.get("TQDM_DISABLE"):  # as tqdm reads it (any value but "")
        kwargs["disable"] = True  # (an explicit `disable` overrides tqdm's own reading of TQDM_DISABLE)
    else:  # None: tqdm hides the bar on a non-terminal; a notebook's stderr is one, and its bar is wanted
        kwargs["disable"] = False if _in_notebook() else None
    return tqdm(total=total, desc=description, **kwargs)


class ProgressReporter:
    """Reports ``advance`` steps of ``total`` to a callback and/or a tqdm bar.

    ``update`` returns ``True`` when the callback asked to stop (``{"stopExecution": True}``).
    Use as a context manager so the bar closes on errors too.
    """

    def __init__(
        self,
        total: int,
        *,
        description: str,
        callback: ProgressCallback | None = None,
        verbose: bool | int | str = False,
        unit: str = "it",
    ):
        self.total = total
        self.completed = 0
        self._callback = callback
        self._bar = _bar(total, description, verbose, leave=False, unit=unit)
        if callback is not None:
            callback(total=total, completed=0)

    def update(self, advance: int = 1, message: dict[str, Any] | None = None) -> bool:
        self.completed += advance
        self._bar.update(advance)
        if self._callback is None:
            return False
        answer = self._callback(total=self.total, completed=self.completed, advance=advance, message=message)
        return bool(isinstance(answer, dict) and answer.get("stopExecution"))

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> ProgressReporter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TrainingProgress:
    """Training progress: the engine callback counts epochs; the bar counts the budget that binds first.

    The callback gets ``total = ceil(max_epochs)`` and one epoch of ``advance`` per finished epoch, as before.
    The bar's total is ``max_epochs`` epochs, or ``max_training_time_s`` seconds once the epochs so far show
    that the time budget runs out first; its postfix says the epoch, the last validation loss and the time
    left (the budget's, or the epochs' at the current rate, whichever is less).
    """

    def __init__(self, max_epochs: float, max_training_time_s: float, *, callback: ProgressCallback | None,
                 verbose: bool | int | str, description: str = "train"):
        self.max_epochs = max_epochs
        self.max_training_time_s = max_training_time_s
        self._epochs = ProgressReporter(int(math.ceil(max_epochs)), description=description, callback=callback)
        self._reported_epochs = 0
        self._val_loss = math.nan
        self.bar = _bar(round(max_epochs, 2), description, verbose, leave=True, unit="epoch",
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} "
                                   "[{elapsed}{postfix}]")

    def update(self, record: dict[str, Any]) -> bool:
        """Report ``record`` (a training history record); ``True`` when the callback asked to stop."""
        if not math.isnan(record["val_loss"]):
            self._val_loss = float(record["val_loss"])
        self.tick(float(record["epoch"]), float(record["total_time"]))
        advance = max(0, int(record["epoch"]) - self._reported_epochs)
        self._reported_epochs += advance
        return self._epochs.update(advance, message=record)

    def tick(self, epoch: float, elapsed: float) -> None:
        """Show ``epoch`` epochs done after ``elapsed`` seconds of training (the bar only)."""
        left = self.max_training_time_s - elapsed
        if epoch > 0 and elapsed > 0:
            left_by_epochs = (self.max_epochs - epoch) * elapsed / epoch
            if left_by_epochs > left:  # the time budget binds
                self.bar.unit, self.bar.total, self.bar.n = "s", round(self.max_training_time_s), round(elapsed)
            else:
                self.bar.unit, self.bar.total, self.bar.n = "epoch", round(self.max_epochs, 2), round(epoch, 2)
            left = min(left, left_by_epochs)
        postfix = {"epoch": f"{epoch:.2f}"}
        if not math.isnan(self._val_loss):  # none before the first validation
            postfix["val_loss"] = f"{self._val_loss:.4f}"
        if math.isfinite(left):
            postfix["left"] = tqdm.format_interval(max(0.0, left))
        self.bar.set_postfix(postfix, refresh=True)

    def close(self) -> None:
        self.bar.close()
        self._epochs.close()

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
