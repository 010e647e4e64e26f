"""The data stages of the engine: split → analyze → encode, as functions and as sklearn transformers."""

from .analyze import analyze
from .encode import encode
from .split import split
from .transformers import Analyzer, Encoder, Splitter

__all__ = ["split", "analyze", "encode", "Splitter", "Analyzer", "Encoder"]
