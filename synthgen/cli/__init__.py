"""The ``synthgen`` command line (``synthgen --help``; see ``docs/cli.md``).

Importing it does not import torch or pandas; the commands import them when they run.
"""

from ._app import app, main

__all__ = ["app", "main"]
