"""``synthgen info``: what a fitted synthesizer is, from its fitted attributes."""

from __future__ import annotations

import io
from typing import Any


def _parameter_count(weights: bytes | None) -> int | None:
    if weights is None:
        return None
    import torch

    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    return int(sum(tensor.numel() for tensor in state.values()))


def _columns(stats: dict | None) -> list[dict[str, str]] | None:
    if stats is None:
        return None
    return [{"name": name, "encoding_type": column["encoding_type"]} for name, column in stats["columns"].items()]


def _training(history) -> dict[str, Any]:
    if history is None or len(history) == 0:
        return {"epochs": 0}
    last = history.iloc[-1]
    training = {"epochs": len(history), "steps": last.get("steps"), "seconds": last.get("total_time"),
                "final_training_loss": last.get("trn_loss"), "final_validation_loss": last.get("val_loss")}
    if "val_loss" in history:
        training["best_validation_loss"] = history["val_loss"].min()
    return training


def describe(synth, path: str) -> dict[str, Any]:
    """A summary of the fitted ``synth`` (loaded from ``path``) as plain data."""
    bundle = getattr(synth, "_bundle", None)
    config = bundle.model_config if bundle is not None else {}
    params = synth.get_params(deep=False)
    stats = synth.stats_
    privacy = {"value_protection": stats.get("value_protection", params.get("value_protection")),
               "differential_privacy": params.get("differential_privacy")}
    for ledger in ("epsilon_", "delta_"):  # the privacy ledger of a model trained with differential privacy
        if hasattr(synth, ledger):
            privacy[ledger.rstrip("_")] = getattr(synth, ledger)
    return {
        "file": path,
        "estimator": type(synth).__name__,
        "columns": _columns(stats),
        "context_columns": _columns(synth.ctx_stats_),
        "keys": {name: params.get(name) for name in ("tgt_primary_key", "tgt_context_key", "ctx_primary_key")},
        "target": params.get("target"),
        "model": {"id": config.get("model_id"), "kind": config.get("model_kind"),
                  "parameters": _parameter_count(bundle.weights if bundle is not None else None),
                  "weights_bytes": len(bundle.weights) if bundle is not None else None},
        "training": {"rows": stats.get("no_of_training_records"),
                     "validation_rows": stats.get("no_of_validation_records"),
                     **_training(getattr(synth, "history_", None))},
        "privacy": privacy,
        "parameters": params,
    }


def format_description(description: dict[str, Any]) -> str:
    """The summary as lines for a terminal."""
    model, training, privacy = description["model"], description["training"], description["privacy"]
    lines = [f"{description['estimator']} in {description['file']}",
             f"  model      {model['id']} ({model['kind']}), {model['parameters']:,} parameters, "
             f"{model['weights_bytes']:,} bytes of weights" if model["parameters"] is not None else
             f"  model      {model['id']}",
             f"  training   {training['rows']} rows, {training['validation_rows']} validation rows, "
             f"{training['epochs']} epoch{'' if training['epochs'] == 1 else 's'}"
             + (f", validation loss {training['final_validation_loss']:.4f}"
                if training.get("final_validation_loss") is not None else ""),
             "  privacy    " + ", ".join(f"{key}={value}" for key, value in privacy.items())]
    keys = {k: v for k, v in description["keys"].items() if v is not None}
    if keys:
        lines.append("  keys       " + ", ".join(f"{k}={v}" for k, v in keys.items()))
    for title, columns in (("columns", description["columns"]), ("context", description["context_columns"])):
        if columns:
            lines.append(f"  {title} ({len(columns)}):")
            width = max(len(c["name"]) for c in columns)
            lines += [f"    {c['name']:<{width}}  {c['encoding_type']}" for c in columns]
    return "\n".join(lines)
