"""A trained LANGUAGE model in memory (:class:`LanguageBundle`) and its files under ``ModelStore/model-data``.

Files: ``model-configs.json`` (model id and kind, LSTM size, text lengths), ``tokenizer.json``,
``model-weights.pt`` (the LSTM's weights, or the trainable LoRA and record-token weights of a Hugging Face
model, written at every checkpoint) and, for a Hugging Face model, ``adapter/`` (the same LoRA adapter as peft
saves it, for use outside synthgen, written when training ends). The bundle holds the tokenizer and the
weights as CPU bytes, so a fitted ``LanguageSynthesizer`` samples without its workspace and without the GPU it
trained on. A Hugging Face model's base weights are not copied: sampling reads them again from the model's
folder and merges the adapter into them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch
from torch import nn

from .._options import LANGUAGE_MODEL_DEFAULT
from .._workspace import Workspace, WorkspaceError
from ..models.tabular._bundle import weights_from_bytes

__all__ = ["LanguageBundle", "LSTM_KIND", "HF_KIND", "model_kind", "VocabularySlice", "install_language_model"]

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

    @classmethod
    def from_workspace(cls, ws: Workspace) -> LanguageBundle:
        """The trained model of ``ws``; WorkspaceError when training never saved one."""
        ws.require("analyze")
        config, weights = ws.read_model_config(), ws.read_model_weights()
        if not ws.tokenizer_path.exists():
            raise WorkspaceError(f"The workspace {str(ws.root)!r} holds no language model tokenizer; run train() "
                                 "first.")
        return cls(stats=ws.read_stats("tgt"), ctx_stats=ws.read_stats("ctx") if ws.has_context() else None,
                   model_config=config, tokenizer=ws.tokenizer_path.read_bytes(), weights=weights)

    def build_tokenizer(self):
        from ..models.language import LanguageTokenizer

        return LanguageTokenizer.from_bytes(self.tokenizer)

    def build_model(self, device: torch.device, vocab_size: int) -> nn.Module:
        """The trained model on ``device`` in eval mode (untrained when training had no data)."""
        from ..models.language import HFLanguageModel, LSTMConfig, LSTMLanguageModel
        from ..models.language._tokenizer import is_gguf

        if self.model_config["model_kind"] == LSTM_KIND:
            model = LSTMLanguageModel(LSTMConfig(**self.model_config["lstm"]))
            if self.weights is not None:
                model.load_state_dict(weights_from_bytes(self.weights))
        else:
            base = Path(self.model_config["model_id"])
            if not (base.is_file() if is_gguf(base) else (base / "config.json").is_file()):
                raise FileNotFoundError(
                    f"This model is a LoRA adapter of the Hugging Face model in {str(base)!r}, which is not there "
                    "any more; sampling needs that folder (the adapter holds the fine-tuned weights only).")
            with torch.random.fork_rng(devices=[]):  # the adapter's initial weights are replaced right away
                model = HFLanguageModel.from_pretrained(base, vocab_size=vocab_size,
                                                        new_token_ids=self.model_config["new_token_ids"] or None)
            if self.weights is not None:
                model.load_state_dict(weights_from_bytes(self.weights), strict=False)
            model = HFLanguageModel(model.model.merge_and_unload())
        model = model.to(device).eval()
        return VocabularySlice(model, vocab_size) if model.vocab_size > vocab_size else model


def install_language_model(ws: Workspace, bundle: LanguageBundle, training_state: dict[str, Any] | None) -> None:
    """Store the model of ``bundle`` (and its ``RESUME`` state) in ``ws``, so that ``train`` continues it."""
    from ..models.tabular import resume_on_new_data

    ws.model_data.mkdir(parents=True, exist_ok=True)
    ws.tokenizer_path.write_bytes(bundle.tokenizer)
    ws.write_model_weights(bundle.weights)
    ws.write_model_config(bundle.model_config)
    if training_state is not None:
        ws.write_training_state(resume_on_new_data(training_state))
