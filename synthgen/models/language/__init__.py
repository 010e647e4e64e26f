"""The language models: a from-scratch LSTM or a local Hugging Face causal LM with LoRA, over typed records.

- :mod:`._tokenizer`: byte-level BPE trained on the data (or bytes only, under DP), with record tokens.
- :mod:`._records`: how a row (context prompt, then typed target fields) is laid out as tokens.
- :mod:`._lstm`, :mod:`._hf`: the two model kinds, both with ``forward`` for training and a stateful
  ``step(tokens, state, mask)`` for decoding (LSTM hidden state; transformer KV cache).
- :mod:`._constraints`, :mod:`._decode`: one batched sampling loop with token masks that guarantee valid
  numbers, datetimes and text, and exact sampling over category sets.
- :mod:`._train`: training with the loss on target tokens only, on the shared tabular schedule.

Pure torch and ``tokenizers``: the models take token lists and field specs, not files or DataFrames.
"""

from ._constraints import is_valid
from ._decode import category_log_probs, sample_from_logits, sample_records
from ._hf import LORA_DEFAULTS, HFLanguageModel, HFState, load_causal_lm
from ._lstm import LSTMConfig, LSTMLanguageModel
from ._records import EncodedRecords, FieldSpec, encode_prompts, encode_records, format_value, parse_value
from ._tokenizer import SPECIAL_TOKENS, LanguageTokenizer, train_tokenizer
from ._train import language_learn_rate, make_batch, record_nll, train_language_model

__all__ = [
    "LORA_DEFAULTS",
    "SPECIAL_TOKENS",
    "EncodedRecords",
    "FieldSpec",
    "HFLanguageModel",
    "HFState",
    "LSTMConfig",
    "LSTMLanguageModel",
    "LanguageTokenizer",
    "category_log_probs",
    "encode_prompts",
    "encode_records",
    "format_value",
    "is_valid",
    "language_learn_rate",
    "load_causal_lm",
    "make_batch",
    "parse_value",
    "record_nll",
    "sample_from_logits",
    "sample_records",
    "train_language_model",
    "train_tokenizer",
]
