"""Resolve the ``device`` parameter: CUDA when available, else CPU; unavailable requests fall back with a warning."""

from __future__ import annotations

import torch

from ._user_warnings import warn

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be None, 'cpu', 'cuda' or a torch.device; got {device!r} ({err}).") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        warn(f"device {device!r} is not available; using the CPU instead.", RuntimeWarning)
        return torch.device("cpu")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        warn(f"device {device!r} is not available; using the CPU instead.", RuntimeWarning)
        return torch.device("cpu")
    return resolved
