"""``train`` for LANGUAGE tables: tokenizer and model from the encoded record texts, saved in ``ModelStore``.

- ``"MOSTLY_AI/LSTMFromScratch-3m"`` (default): a byte-level BPE tokenizer (vocabulary 5,000, merges seen at
  least 20 times) trained on the training records' target texts, and the LSTM trained from scratch.
- A local Hugging Face causal LM (a folder with ``config.json`` and a byte-level ``tokenizer.json``, or a
  ``.gguf`` file): its tokenizer with the record tokens added, fine-tuned with LoRA; the adapter goes to
  ``model-data/adapter``.

Under differential privacy the LSTM's tokenizer learns nothing from the private text (the 256 bytes plus the
special tokens), the longest text in tokens comes from the (DP) statistics instead of the training texts, the
validation records train too, and the model trains with DP-SGD (:mod:`._dp_train`).

Above ``LANGUAGE_STREAMING_THRESHOLD_BYTES`` of encoded training records (not under DP) training streams the parts
(:mod:`._language_parts`): the tokenizer learns from a bounded seeded sample, each part is tokenized once into a
scratch folder and epochs and validation read one part at a time.

The loss covers the target's tokens only; the schedule, budgets, early stopping, ``model_state_strategy``
and progress are those of the tabular models.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._progress import TrainingProgress
from .._threads import resolve_n_threads, step_work, torch_threads
from .._workspace import Workspace
from ..domain import ModelStateStrategy
from ..models.tabular._bundle import weights_from_bytes
from ._dp_train import PrivateTraining, check_dp_continuation
from ._language import CTX_PREFIX, TGT_PREFIX, record_fields
from ._language_model import HF_KIND, LSTM_KIND, model_kind
from ._language_parts import TokenParts, longest_tokens, sample_texts, streams
from ._train import checkpoint_writer

__all__ = ["train_language"]

_log = logging.getLogger(__name__)

TOKENIZER_VOCAB_SIZE = 5000
TOKENIZER_MIN_FREQUENCY = 20


def _read_records(ws: Workspace, side: str) -> pd.DataFrame:
    parts = ws.partitions(ws.encoded_data, side)
    frames = [ws.read_parquet(p) for p in parts]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _texts(frame: pd.DataFrame, prefix: str, names) -> dict[str, list]:
    return {name: (frame[prefix + name].astype(object).where(frame[prefix + name].notna(), None).tolist()
                   if prefix + name in frame.columns else [None] * len(frame)) for name in names}


def _signature(stats: dict, model: str | None) -> dict[str, Any]:
    """What a saved model must share with this workspace to be reused or resumed."""
    return {"model_id": _model_id(model), "columns": {c: s["encoding_type"] for c, s in stats["columns"].items()}}


def _model_id(model: str | None) -> str:
    from .._options import LANGUAGE_MODEL_DEFAULT

    return LANGUAGE_MODEL_DEFAULT if model_kind(model) == LSTM_KIND else str(Path(model).resolve())


def _trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The entries of ``state`` that training changes (all of an LSTM; the adapter's of a LoRA model)."""
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    return {k: v for k, v in state.items() if k in trainable}


def _new_model(kind: str, model_id: str, tokenizer, seed: int):
    from ..models.language import HFLanguageModel, LSTMConfig, LSTMLanguageModel

    # weight initialisation draws from torch's global generator: fork it, seeded from random_state
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == LSTM_KIND:
            return LSTMLanguageModel(LSTMConfig(vocab_size=tokenizer.vocab_size))
        return HFLanguageModel.from_pretrained(model_id, vocab_size=tokenizer.vocab_size,
                                               new_token_ids=tokenizer.added_ids or None)


def train_language(ws: Workspace, *, model: str | None, max_training_time: float, max_epochs: float,
                   batch_size: int | None, gradient_accumulation_steps: int | None,
                   strategy: ModelStateStrategy, device: torch.device, n_threads: int | None, update_progress,
                   upload_model_data_callback, generator: torch.Generator, verbose,
                   differential_privacy=None) -> Workspace:
    """Train the LANGUAGE model of the encoded workspace ``ws`` (options validated by ``train``)."""
    from ..models.language import LanguageTokenizer, encode_records, train_language_model, train_tokenizer
    from ..models.language._tokenizer import is_gguf

    stats = ws.read_stats("tgt")
    ctx_stats = ws.read_stats("ctx") if ws.has_context() else None
    ctx_names = list(ctx_stats["columns"]) if ctx_stats else []
    kind, model_id = model_kind(model), _model_id(model)
    if kind == HF_KIND and is_gguf(model_id):  # before the workspace is touched
        if not Path(model_id).is_file():
            raise FileNotFoundError(f"The language model file {model_id!r} does not exist.")
    elif kind == HF_KIND:
        missing = [f for f in ("config.json", "tokenizer.json") if not (Path(model_id) / f).is_file()]
        if missing:
            raise FileNotFoundError(f"The model folder {model_id!r} is no Hugging Face causal LM with a byte-level "
                                    f"tokenizer: it lacks {' and '.join(missing)}.")
    # above the threshold (and never under DP, where validation records train too) the parts are tokenized one
    # at a time and streamed (:mod:`._language_parts`); below it both sides are read whole, as before
    streamed = differential_privacy is None and streams(ws)
    if streamed:
        trn = val = None
    else:
        trn, val = _read_records(ws, "trn"), _read_records(ws, "val")
        if differential_privacy is not None:  # nothing is selected on private records: validation trains too
            trn, val = pd.concat([trn, val], ignore_index=True), val.iloc[:0]
    signature = _signature(stats, model)
    continuing = strategy != ModelStateStrategy.RESET and ws.has_trained_model() and ws.tokenizer_path.exists()
    if strategy != ModelStateStrategy.RESET and not continuing:
        _log.warning("no saved model to %s; training from scratch", strategy.value.lower())
    saved = ws.read_model_config() if continuing else None
    if continuing and saved.get("signature") != signature:
        raise ValueError(f"model_state_strategy={strategy.value}: the saved model was trained with another model or "
                         "on other columns than this workspace holds; use model_state_strategy='RESET'.")
    continued = check_dp_continuation(ws, strategy, differential_privacy is not None) if continuing else None
    if not continuing and ws.model_data.exists():
        ws.clear_from("train")

    if continuing:
        tokenizer = LanguageTokenizer.from_bytes(ws.tokenizer_path.read_bytes())
        tokenizer.added_ids = list(saved["new_token_ids"])
        max_tokens = saved["max_tokens"]
    else:
        tokenized = [name for name, s in stats["columns"].items()
                     if s["encoding_type"] in ("LANGUAGE_TEXT", "LANGUAGE_CATEGORICAL")]
        if kind == LSTM_KIND and differential_privacy is not None:
            tokenizer = train_tokenizer([], bytes_only=True)  # a fixed vocabulary: nothing learned from private text
        elif kind == LSTM_KIND:
            if streamed:  # a bounded, seeded sample of the texts
                texts = sample_texts(ws, [TGT_PREFIX + name for name in tokenized],
                                     np.random.default_rng(_seed_from(generator)))
            else:
                texts = [t for name in tokenized for t in _texts(trn, TGT_PREFIX, [name])[name] if t is not None]
            tokenizer = train_tokenizer(texts, vocab_size=TOKENIZER_VOCAB_SIZE,
                                        min_frequency=TOKENIZER_MIN_FREQUENCY)
            del texts
        else:
            tokenizer = LanguageTokenizer.from_pretrained(model_id)
        # the most tokens of a text field: its longest training text (already cut to the protected length)
        text_fields = [name for name, s in stats["columns"].items() if s["encoding_type"] == "LANGUAGE_TEXT"]
        if differential_privacy is not None:
            # from the statistics (DP under DP), not the texts: a UTF-8 character is at most 4 bytes, and a
            # token of a byte-level tokenizer covers at least one byte
            max_tokens = {name: max(1, 4 * int(stats["columns"][name]["nchar_max"])) for name in text_fields}
        elif streamed:
            max_tokens = longest_tokens(ws, {name: TGT_PREFIX + name for name in text_fields}, tokenizer)
        else:
            max_tokens = {}
            for name in text_fields:
                present = [t for t in _texts(trn, TGT_PREFIX, [name])[name] if t is not None]
                max_tokens[name] = max([1, *map(len, tokenizer.encode_batch(present))])
    fields = record_fields(stats["columns"], max_tokens)
    network = _new_model(kind, model_id, tokenizer, _seed_from(generator))
    resume_state = ws.read_training_state() if continuing and strategy == ModelStateStrategy.RESUME else None
    if continuing and resume_state is None:
        network.load_state_dict(weights_from_bytes(ws.read_model_weights()), strict=False)

    config = {"model_type": "LANGUAGE", "model_id": model_id, "model_kind": kind, "signature": signature,
              "max_tokens": max_tokens, "vocab_size": tokenizer.vocab_size, "new_token_ids": tokenizer.added_ids}
    if kind == LSTM_KIND:
        config["lstm"] = network.config.to_dict()

    def save_weights(state_dict: dict) -> None:
        # tokenizer and configuration go with the weights, so a run killed before its first checkpoint leaves no
        # model that generation could mistake for a trained one
        ws.write_model_weights(_trainable_state(network, state_dict))
        if not config_saved:
            tokenizer.save(ws.model_data)
            ws.write_model_config(config)
            config_saved.append(True)

    config_saved: list[bool] = []

    def records(frame: pd.DataFrame):
        return encode_records(fields, tokenizer, _texts(frame, TGT_PREFIX, [f.name for f in fields]),
                              _texts(frame, CTX_PREFIX, ctx_names) or None)

    def fit(trn_records, val_records, mean_length: float, *, n_trn: int):
        """The training result and the DP mechanism (or None), on records in memory or parts."""
        progress = TrainingProgress(max_epochs, max_training_time * 60.0, callback=update_progress, verbose=verbose)
        threads = resolve_n_threads(n_threads, device=device,
                                    work=step_work(network, int((batch_size or 32) * mean_length)))
        on_checkpoint = checkpoint_writer(ws, save_weights, upload_model_data_callback)
        private = None
        if differential_privacy is not None:
            private = PrivateTraining(ws, differential_privacy, n_subjects=n_trn, max_epochs=max_epochs,
                                      continued=continued)
            on_checkpoint = private.wrap_checkpoint(on_checkpoint)
        with progress, torch_threads(threads):
            return private, train_language_model(
                network, trn_records, val_records, pad_id=tokenizer.pad_id, max_epochs=max_epochs,
                max_training_time_s=max_training_time * 60.0, batch_size=batch_size,
                gradient_accumulation_steps=gradient_accumulation_steps, device=device, generator=generator,
                on_progress=progress.update, on_checkpoint=on_checkpoint, resume_state=resume_state,
                make_private=None if private is None else private.make_private)

    if streamed:
        with ws.scratch_dir("token-parts") as folder:
            trn_parts = TokenParts(ws, "trn", folder, records)
            val_parts = TokenParts(ws, "val", folder, records)
            _log.info("streaming the language records: %d training parts, %d tokens", len(trn_parts.sizes),
                      trn_parts.n_tokens)
            if sum(trn_parts.sizes) == 0:
                return _untrained(ws, kind, network, save_weights)
            private, result = fit(trn_parts, val_parts if sum(val_parts.sizes) else None,
                          trn_parts.n_tokens / sum(trn_parts.sizes), n_trn=sum(trn_parts.sizes))
    else:
        if len(trn) == 0:
            return _untrained(ws, kind, network, save_weights)
        trn_records, val_records = records(trn), (records(val) if len(val) else None)
        del trn, val
        private, result = fit(trn_records, val_records, len(trn_records.tokens) / len(trn_records),
                              n_trn=len(trn_records))
    # the best weights (the network holds them now), also when training stopped before the first validation;
    # under DP the last weights, after the ledger line of the steps they have seen
    if private is not None:
        private.record(result.state["privacy"])
    save_weights(result.best_state_dict)
    _save_adapter(ws, kind, network)
    _log.info("trained the language model %d epochs in %.1f s (%s)", len(result.history),
              result.history[-1]["total_time"] if result.history else 0.0, result.stop_reason)
    return ws


def _untrained(ws: Workspace, kind: str, network, save_weights) -> Workspace:
    _log.warning("no training rows: the model stays untrained")
    save_weights(network.state_dict())
    _save_adapter(ws, kind, network)
    return ws


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def _save_adapter(ws: Workspace, kind: str, network) -> None:
    """A Hugging Face model's LoRA adapter, as peft saves it, from the network holding the best weights."""
    if kind == HF_KIND:
        with ws.staged_dir(ws.adapter_dir) as folder:
            network.to("cpu").save_adapter(folder)
