"""The package's top level: public names imported on first use, so that importing synthgen stays light."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import synthgen


def test_import_does_not_import_torch():
    code = "import sys, synthgen; synthgen.__version__; assert 'torch' not in sys.modules"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    assert subprocess.run([sys.executable, "-c", code], cwd=root, env=env).returncode == 0


@pytest.mark.parametrize("name", synthgen.__all__)
def test_every_public_name_resolves(name):
    assert getattr(synthgen, name) is not None
    assert name in dir(synthgen)


def test_from_import_and_unknown_names():
    from synthgen import TabularSynthesizer
    from synthgen.estimators import TabularSynthesizer as Same

    assert TabularSynthesizer is Same
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        synthgen.nope  # noqa: B018
