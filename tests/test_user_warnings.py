"""synthgen._user_warnings: warnings are attributed to the user's call, not to the synthgen frames (stages, the
workspace lock) it ran through."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import synthgen as sg
from synthgen import TabularSynthesizer
from synthgen._user_warnings import warn

_NONE_PUBLISHED = r"Column 'code' of tgt_data: value protection publishes none of its 60 categories"


def _identifying_codes() -> pd.DataFrame:
    # every code is held by one subject: value protection publishes none of them, and analyze warns
    return pd.DataFrame({"code": [f"id-{i}" for i in range(60)], "x": np.arange(60) % 5})


def _own_warnings(record, pattern: str) -> list:
    return [w for w in record if re.search(pattern, str(w.message))]


def test_a_warning_of_analyze_names_the_callers_file_and_line(tmp_path):
    ws = sg.split(_identifying_codes(), workspace_dir=tmp_path / "ws", random_state=0)
    with pytest.warns(UserWarning, match=_NONE_PUBLISHED) as record:
        line = _line_below()
        sg.analyze(workspace_dir=ws, random_state=0)
    [warning] = _own_warnings(record, _NONE_PUBLISHED)
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_a_warning_of_fit_names_the_callers_file(tmp_path):
    synth = TabularSynthesizer(model="small", max_epochs=1, random_state=0)
    with pytest.warns(UserWarning, match=_NONE_PUBLISHED) as record:
        line = _line_below()
        synth.fit(_identifying_codes())
    [warning] = _own_warnings(record, _NONE_PUBLISHED)
    assert (warning.filename, warning.lineno) == (__file__, line)


def test_a_dp_warning_under_a_declared_maximum_names_the_callers_file(tmp_path):
    rng = np.random.default_rng(0)
    ctx = pd.DataFrame({"id": np.arange(200)})
    tgt = pd.DataFrame({"id": np.repeat(ctx["id"], rng.integers(2, 30, 200)).to_numpy()})
    tgt["item"] = rng.choice(["p", "q"], len(tgt)).astype(object)
    ws = sg.split(tgt, ctx_data=ctx, tgt_context_key="id", ctx_primary_key="id", workspace_dir=tmp_path / "ws",
                  random_state=0)
    pattern = "the sequence lengths get an epsilon of"
    with pytest.warns(UserWarning, match=pattern) as record:
        sg.analyze(workspace_dir=ws, random_state=0, differential_privacy={
            "epsilon": 1.0, "max_sequence_length": 40, "domains": {"item": ["p", "q"]}})
    assert {w.filename for w in _own_warnings(record, pattern)} == {__file__}


def test_warn_called_from_outside_the_package_names_its_caller():
    with pytest.warns(RuntimeWarning, match="^direct$") as record:
        line = _line_below()
        warn("direct", RuntimeWarning)
    assert (record[0].filename, record[0].lineno) == (__file__, line)


def _line_below() -> int:
    """The line number after the caller's line (the call under test)."""
    import inspect

    return inspect.currentframe().f_back.f_lineno + 1
