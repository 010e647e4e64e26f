"""Progress reporting: the engine's ``update_progress`` callback and tqdm bars, behind one object."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from .domain import ProgressCallback

__all__ = ["ProgressReporter"]


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
        verbose: bool | int = False,
    ):
        self.total = total
        self.completed = 0
        self._callback = callback
        # disable=None keeps TQDM_DISABLE working when the user asked for bars
        self._bar = tqdm(total=total, desc=description, disable=None if verbose else True, leave=False)
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
