"""A local Hugging Face causal LM with a LoRA adapter, behind the same ``step`` API as the LSTM.

Nothing is downloaded: the model is read from a folder (``save_pretrained`` layout). LoRA follows the
reference engine (``r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"``, which peft
resolves to every linear layer except the output head). Decoding carries the transformer's KV cache between
calls, with an attention mask over the whole cache: padding fed inside a batch stays in the cache but is
masked out of every later attention, and position ids count real tokens only, so a padded row computes
exactly what it would alone.
"""

from __future__ import annotations

import copy
import inspect
import logging
from pathlib import Path

import attrs
import torch
from torch import nn

from ._tokenizer import is_gguf

__all__ = ["LORA_DEFAULTS", "HFLanguageModel", "HFState", "load_causal_lm"]

_logger = logging.getLogger(__name__)

LORA_DEFAULTS = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all-linear"}


@attrs.define
class HFState:
    """Decoding state of a transformer: its KV cache, the mask over the cache, each row's next position."""

    cache: object
    attention_mask: torch.Tensor
    next_position: torch.Tensor


def load_causal_lm(path: str | Path, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """Load a causal LM from the local folder ``path``, or a local ``.gguf`` file (never from the hub).

    A GGUF file needs the ``gguf`` package; transformers dequantizes its weights to ``dtype``.

    Raises
    ------
    FileNotFoundError
        When ``path`` is neither a folder with a ``config.json`` nor a ``.gguf`` file.
    ValueError
        When it holds no loadable causal LM (the original error is chained).
    """
    from transformers import AutoModelForCausalLM

    folder = Path(path)
    gguf = is_gguf(folder)
    if gguf and not folder.is_file():
        raise FileNotFoundError(f"The language model file {str(path)!r} does not exist.")
    if not gguf and not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"The language model path {str(path)!r} is not a folder with a config.json "
            "(a Hugging Face model saved with save_pretrained) nor a .gguf file."
        )
    import transformers

    # transformers renamed `torch_dtype` to `dtype` in 4.56; 5.x loads in the checkpoint's dtype by default,
    # so it is always passed (CPU training wants float32).
    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    dtype_arg = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    where = {"pretrained_model_name_or_path": folder.parent, "gguf_file": folder.name} if gguf else {
        "pretrained_model_name_or_path": folder}
    try:
        return AutoModelForCausalLM.from_pretrained(**where, local_files_only=True, **{dtype_arg: dtype})
    except (OSError, ValueError, KeyError, ImportError) as err:
        raise ValueError(f"{str(path)!r} holds no loadable causal language model: {err}") from err


def _grow_vocabulary(model: nn.Module, vocab_size: int | None) -> list[int]:
    """Resize the embeddings to ``vocab_size``; return the new token ids.

    The new rows are set to the mean of the old ones: deterministic (transformers' default resizing draws
    from torch's global generator) and a neutral start for tokens the adapter then learns.
    """
    old = model.get_input_embeddings().weight.shape[0]
    if vocab_size is None or vocab_size <= old:
        return []
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    with torch.no_grad():
        for layer in {
            id(m): m for m in (model.get_input_embeddings(), model.get_output_embeddings())
        }.values():
            layer.weight[old:] = layer.weight[:old].mean(0)
            if getattr(layer, "bias", None) is not None:
                layer.bias[old:] = layer.bias[:old].mean()
    return list(range(old, vocab_size))


def _token_modules(model: nn.Module, ids: list[int]) -> dict[str, list[int]]:
    """peft's ``trainable_token_indices``: the new rows of the input embeddings and of an untied output layer."""
    names = {id(m): name.rsplit(".", 1)[-1] for name, m in model.named_modules()}
    modules = {names[id(model.get_input_embeddings())]: ids}
    output = model.get_output_embeddings()
    if output.weight is not model.get_input_embeddings().weight:
        modules[names[id(output)]] = ids
    return modules


class HFLanguageModel(nn.Module):
    """A causal LM (optionally with a LoRA adapter) exposing ``forward``, ``step`` and ``repeat_state``.

    Parameters
    ----------
    model : torch.nn.Module
        A transformers causal LM, or a peft model around one.

    Attributes
    ----------
    vocab_size : int
        Size of the model's output layer.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        # transformers 5 renamed `past_key_values` to `cache`; accept either so that >=4.50 keeps working.
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"
        )

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        lora: bool = True,
        vocab_size: int | None = None,
        new_token_ids: list[int] | None = None,
        **lora_kwargs,
    ) -> HFLanguageModel:
        """Load ``path`` and, with ``lora``, wrap it in a fresh LoRA adapter.

        Parameters
        ----------
        path : str or Path
            A local model folder.
        lora : bool, default=True
        vocab_size : int, optional
            The size of the tokenizer the model will be used with, when it adds tokens to the model's own
            (the record tokens of :meth:`LanguageTokenizer.from_pretrained`). The embeddings grow to it and
            the new rows start at the mean of the old ones.
        new_token_ids : list of int, optional
            Tokens the model was never trained on, whose rows the adapter trains (in the input embeddings
            and, unless tied, the output layer): the model must learn to read and to emit ``<sep>``.
            Default: the rows added for ``vocab_size``. Pass :attr:`LanguageTokenizer.added_ids` when the
            model's embeddings already had room for the record tokens.
        **lora_kwargs
            Override the defaults ``r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear"``.
        """
        model = load_causal_lm(path)
        grown = _grow_vocabulary(model, vocab_size)
        new_ids = grown if new_token_ids is None else [int(i) for i in new_token_ids]
        if lora:
            from peft import LoraConfig, get_peft_model

            options = {**LORA_DEFAULTS, **lora_kwargs}
            if new_ids:
                options.setdefault("trainable_token_indices", _token_modules(model, new_ids))
            model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", bias="none", **options))
        return cls(model)

    @classmethod
    def from_adapter(
        cls, path: str | Path, adapter: str | Path, *, vocab_size: int | None = None, merge: bool = True
    ) -> HFLanguageModel:
        """Load the base model at ``path`` with the adapter saved in ``adapter``; merge it for generation.

        ``vocab_size`` must be the one given to :meth:`from_pretrained` when the adapter was trained.
        """
        from peft import PeftModel

        adapter = Path(adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise FileNotFoundError(f"No LoRA adapter (adapter_config.json) in {str(adapter)!r}.")
        model = load_causal_lm(path)
        _grow_vocabulary(model, vocab_size)
        model = PeftModel.from_pretrained(model, adapter)
        return cls(model.merge_and_unload() if merge else model)

    def save_adapter(self, folder: str | Path) -> Path:
        """Write the LoRA adapter (not the base weights) into ``folder``."""
        if not hasattr(self.model, "peft_config"):
            raise ValueError("This model has no LoRA adapter to save.")
        folder = Path(folder)
        # Grown embeddings are rebuilt deterministically at load (see _grow_vocabulary) and the trained rows
        # are in the adapter's trainable tokens: saving whole embedding layers would add the base model's
        # vocabulary matrices to every adapter.
        self.model.save_pretrained(folder, save_embedding_layers=False)
        return folder

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits ``(B, T, V)`` of right-padded ``tokens`` (training)."""
        return self.model(input_ids=tokens, attention_mask=attention_mask, use_cache=False).logits

    def step(
        self, tokens: torch.Tensor, state: HFState | None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, HFState]:
        """Feed ``tokens`` ``(B, T)`` after ``state``; return their logits ``(B, T, V)`` and the new state.

        ``mask`` ``(B, T)`` marks real tokens (False for padding, which the rest of the sequence will never
        attend to). The logits at padded positions are meaningless. The KV cache grows in place, so a state
        passed here must not be used again: branch it with :meth:`repeat_state` first.
        """
        from transformers import DynamicCache

        batch = tokens.shape[0]
        if mask is None:
            mask = torch.ones_like(tokens, dtype=torch.bool)
        if state is None:
            state = HFState(
                DynamicCache(),
                tokens.new_zeros(batch, 0),
                tokens.new_zeros(batch),
            )
        attention_mask = torch.cat([state.attention_mask, mask.long()], dim=1)
        counts = mask.long().cumsum(1)
        positions = state.next_position[:, None] + (counts - 1).clamp(min=0)
        out = self.model(
            input_ids=tokens,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            **{self._cache_arg: state.cache},
        )
        cache = out.get("cache", None) or out.get("past_key_values")
        return out.logits, HFState(cache, attention_mask, state.next_position + counts[:, -1])

    @staticmethod
    def repeat_state(state: HFState | None, n: int) -> HFState | None:
        """Each row's state ``n`` times in a row, as a copy (the original cache is left as it was)."""
        if state is None:
            return None
        # A shallow copy with copied layers: the layers' repeat rebinds their key/value tensors (no in-place
        # write), so the original cache is untouched without deep-copying tensors that may carry autograd.
        cache = copy.copy(state.cache)
        cache.layers = [copy.copy(layer) for layer in state.cache.layers]
        cache.batch_repeat_interleave(n)
        return HFState(
            cache,
            state.attention_mask.repeat_interleave(n, dim=0),
            state.next_position.repeat_interleave(n, dim=0),
        )
