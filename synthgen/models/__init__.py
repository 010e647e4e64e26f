"""Generative models over integer-encoded data (see :mod:`synthgen.models.tabular`)."""
