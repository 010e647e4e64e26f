"""The data stages of the engine: split → analyze → encode, as functions and as sklearn transformers."""

from .analyze import analyze
from .encode import encode
from .generate import generate, read_synthetic_data
from .inference import impute, log_likelihood, predict, predict_proba
from .split import split
from .train import train
from .transformers import Analyzer, Encoder, Splitter

__all__ = [
    "split", "analyze", "encode", "train", "generate", "read_synthetic_data", "predict_proba", "predict",
    "log_likelihood", "impute", "Splitter", "Analyzer", "Encoder",
]
