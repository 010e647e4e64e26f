"""Warnings attributed to the user's code: the first frame outside the synthgen package.

A fixed ``stacklevel`` counts frames from the warning site, so it points into synthgen whenever the site is
reached through more of synthgen's own frames (a stage called by an estimator, the workspace lock's wrapper, a
helper), and a user's ``warnings.filterwarnings(module=...)`` or the printed location then names synthgen.
Python 3.12's ``warnings.warn(skip_file_prefixes=...)`` skips frames by file name; synthgen supports 3.11, so the
stack is walked here instead, by module name (robust to relative or symlinked paths), on every version.
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn"]

_PACKAGE = __name__.partition(".")[0]


def _in_package(frame) -> bool:
    module = frame.f_globals.get("__name__", "")
    return module == _PACKAGE or module.startswith(_PACKAGE + ".")


def _counted(frame) -> bool:
    # warnings.warn does not count the import machinery's frames in a stacklevel above 1
    filename = frame.f_code.co_filename
    return not ("importlib" in filename and "_bootstrap" in filename)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """Issue ``message`` as a ``category`` warning located at the nearest caller outside synthgen.

    When every frame belongs to synthgen (a thread it started), the outermost one is used.
    """
    frame = sys._getframe(1)  # the warning site; stacklevel 2 names it
    stacklevel = 2
    while frame.f_back is not None and _in_package(frame):
        frame = frame.f_back
        stacklevel += _counted(frame)
    warnings.warn(message, category, stacklevel=stacklevel)
