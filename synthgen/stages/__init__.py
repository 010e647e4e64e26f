"""The data stages of the engine: split → analyze → encode, as functions and as sklearn transformers."""

from ._analyze import analyze
from ._encode import encode
from ._generate import generate, read_synthetic_data
from ._inference import impute, log_likelihood, predict, predict_proba
from ._split import split
from ._train import train
from ._transformers import Analyzer, Encoder, Splitter

__all__ = [
    "split", "analyze", "encode", "train", "generate", "read_synthetic_data", "predict_proba", "predict",
    "log_likelihood", "impute", "Splitter", "Analyzer", "Encoder",
]
