"""A trained LANGUAGE model in memory (:class:`LanguageBundle`) and its files under ``ModelStore/model-data``.

Files: ``model-configs.json`` (model id and kind, LSTM size, text lengths), ``tokenizer.json``,
``model-weights.pt`` (the LSTM's weights, or the trainable LoRA and record-token weights of a Hugging Face
model) and, for a Hugging Face model, ``adapter/`` (the LoRA adapter as peft saves it). The bundle holds the
tokenizer and the weights (or the adapter's files) as CPU bytes, so a fitted ``LanguageSynthesizer`` samples
without its workspace and without the GPU it trained on. A Hugging Face model's base weights are not copied:
sampling reads them again from the model's folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from .._options import LANGUAGE_MODEL_DEFAULT
from .._workspace import Workspace, WorkspaceError
from ..models.tabular._bundle import MODEL_CONFIG_FILE, MODEL_WEIGHTS_FILE, weights_from_bytes

__all__ = ["LanguageBundle", "TOKENIZER_FILE", "ADAPTER_DIR", "LSTM_KIND", "HF_KIND", "model_kind",
           "VocabularySlice"]

TOKENIZER_FILE = "tokenizer.json"
ADAPTER_DIR = "adapter"
LSTM_KIND, HF_KIND = "lstm", "hf"


def model_kind(model: str | None) -> str:
    """``"lstm"`` for the from-scratch model (the default), ``"hf"`` for a local Hugging Face model folder."""
    if model is None or str(model).strip().lower() == LANGUAGE_MODEL_DEFAULT.lower():
        return LSTM_KIND
    return HF_KIND


class VocabularySlice(nn.Module):
    """A model whose output layer is larger than its tokenizer (padded embeddings), cut to the tokenizer."""

    def __init__(self, model: nn.Module, vocab_size: int):
        super().__init__()
        self.model, self.vocab_size = model, vocab_size

    def step(self, tokens, state, mask=None):
        logits, state = self.model.step(tokens, state, mask)
        return logits[..., : self.vocab_size], state

    def repeat_state(self, state, n):
        return self.model.repeat_state(state, n)


@attrs.frozen(eq=False)
class LanguageBundle:
    """Statistics, model configuration, tokenizer and weights of a trained LANGUAGE model."""

    stats: dict[str, Any]
    ctx_stats: dict[str, Any] | None
    model_config: dict[str, Any]
    tokenizer: bytes
    weights: bytes | None
    adapter: dict[str, bytes] | None

    @classmethod
    def from_workspace(cls, ws: Workspace) -> LanguageBundle:
        ws.require("analyze")
        config_path = ws.model_data / MODEL_CONFIG_FILE
        if not config_path.exists() or not (ws.model_data / TOKENIZER_FILE).exists():
            raise WorkspaceError(f"The workspace {str(ws.root)!r} holds no trained model; run train() first.")
        weights_path = ws.model_data / MODEL_WEIGHTS_FILE
        adapter_dir = ws.model_data / ADAPTER_DIR
        adapter = ({p.name: p.read_bytes() for p in sorted(adapter_dir.iterdir()) if p.is_file()}
                   if adapter_dir.is_dir() else None)
        return cls(
            stats=ws.read_stats("tgt"),
            ctx_stats=ws.read_stats("ctx") if ws.has_context() else None,
            model_config=ws.read_json(config_path),
            tokenizer=(ws.model_data / TOKENIZER_FILE).read_bytes(),
            weights=weights_path.read_bytes() if weights_path.exists() else None,
            adapter=adapter,
        )

    def build_tokenizer(self):
        from ..models.language import LanguageTokenizer

        return LanguageTokenizer.from_bytes(self.tokenizer)

    def build_model(self, device: torch.device, vocab_size: int) -> nn.Module:
        """The trained model on ``device`` in eval mode (untrained when training had no data)."""
        from ..models.language import HFLanguageModel, LSTMConfig, LSTMLanguageModel

        if self.model_config["model_kind"] == LSTM_KIND:
            model = LSTMLanguageModel(LSTMConfig(**self.model_config["lstm"]))
            if self.weights is not None:
                model.load_state_dict(weights_from_bytes(self.weights))
        else:
            base = Path(self.model_config["model_id"])
            if not (base / "config.json").is_file():
                raise FileNotFoundError(
                    f"This model is a LoRA adapter of the Hugging Face model in {str(base)!r}, which is not there "
                    "any more; sampling needs that folder (the adapter holds the fine-tuned weights only).")
            if self.adapter is None:
                model = HFLanguageModel.from_pretrained(base, lora=False, vocab_size=vocab_size)
            else:
                with tempfile.TemporaryDirectory(prefix="synthgen-adapter-") as folder:
                    for name, data in self.adapter.items():
                        (Path(folder) / name).write_bytes(data)
                    model = HFLanguageModel.from_adapter(base, folder, vocab_size=vocab_size)
        model = model.to(device).eval()
        return VocabularySlice(model, vocab_size) if model.vocab_size > vocab_size else model
