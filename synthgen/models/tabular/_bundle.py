"""Everything generation needs, in memory: statistics, model architecture and weights.

A fitted synthesizer keeps a :class:`ModelBundle`, so it samples without its workspace (and on a machine
without the GPU it was trained on). The stages build it from what the workspace holds (see
``synthgen.stages._generate.load_bundle``); this module knows nothing about files.
"""

from __future__ import annotations

import io
from typing import Any

import attrs
import torch

from ._network import FlatARGN
from ._sequential import SequentialARGN
from ._spec import ColumnSpec

__all__ = ["ModelBundle", "column_specs", "strip_wrapper_prefixes"]

_WRAPPER_PREFIXES = ("_module.", "_orig_mod.")


def column_specs(columns: dict[str, dict[str, Any]]) -> list[ColumnSpec]:
    """Model column specs from published column statistics, sub-columns named as in the encoded data."""
    specs = []
    for name, stats in columns.items():
        prefix = f"{stats['argn_processor']}:{stats['argn_column']}__"
        subs = list(stats["cardinalities"])
        specs.append(ColumnSpec(name, [prefix + s for s in subs], [stats["cardinalities"][s] for s in subs]))
    return specs


def strip_wrapper_prefixes(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights without the prefixes that opacus and ``torch.compile`` wrappers add to parameter names."""
    cleaned = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            key = key.replace(prefix, "")
        cleaned[key] = value
    return cleaned


def weights_to_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in strip_wrapper_prefixes(state_dict).items()}, buffer)
    return buffer.getvalue()


def weights_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


@attrs.frozen(eq=False)
class ModelBundle:
    """Statistics, model configuration and CPU weights of a trained tabular model."""

    stats: dict[str, Any]
    ctx_stats: dict[str, Any] | None
    model_config: dict[str, Any]
    weights: bytes

    @property
    def is_sequential(self) -> bool:
        return self.model_config.get("model_kind") == "sequential"

    def build_model(self, device: torch.device) -> FlatARGN | SequentialARGN:
        """The network with its trained weights, in eval mode."""
        model_class = SequentialARGN if self.is_sequential else FlatARGN
        model = model_class.from_config(self.model_config["model"])
        model.load_state_dict(weights_from_bytes(self.weights))
        return model.to(device).eval()
