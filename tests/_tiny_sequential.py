"""The tiny sequential model of the calibration tests (``test_progress_calibration``, ``test_joint_calibration``):
one binary context column, sequences of up to 6 steps, output biases started from the training steps."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from synthgen.models.tabular import ColumnSpec, SequentialARGN

FLAG = [ColumnSpec("flag", ("cat",), (2,))]


def tiny_sequential_model(step_columns: Sequence[ColumnSpec], steps: torch.Tensor,
                          lengths: torch.Tensor) -> SequentialARGN:
    """A small, untrained model over ``step_columns`` (seeded, in eval mode) whose heads start at the marginals of
    ``steps`` (sequences of ``lengths``), and whose calibration targets are counted from them."""
    model = SequentialARGN.from_preset(step_columns, context=FLAG, max_len=6, median_len=5, size="small",
                                       generator=torch.Generator().manual_seed(0)).eval()
    model.init_output_bias(steps, lengths)
    return model
