"""Local random generators derived from a user's ``random_state`` (never the global ones)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["as_generator", "derive_seed", "torch_generator"]


def as_generator(random_state) -> np.random.Generator:
    """A numpy ``Generator`` from ``None`` (fresh entropy), an int, a ``RandomState`` or a ``Generator``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool) and random_state >= 0:
        return np.random.default_rng(int(random_state))
    state = check_random_state(random_state)
    return np.random.default_rng(state.randint(0, 2**31 - 1))


def derive_seed(rng: np.random.Generator) -> int:
    """A child seed drawn from ``rng`` (for torch generators and sub-stages)."""
    return int(rng.integers(0, 2**62))


def torch_generator(rng: np.random.Generator, device="cpu"):
    """A ``torch.Generator`` on ``device`` seeded from ``rng``."""
    import torch  # the data stages do not need torch; keep it out of their import

    generator = torch.Generator(device=device)
    generator.manual_seed(derive_seed(rng))
    return generator
