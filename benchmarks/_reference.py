"""Run the reference engine (mostlyai-engine) in its own virtual environment, beside synthgen.

The environment lives in ``benchmarks/.venv-reference`` (git-ignored) and is created on first use:
``torch==2.13.0`` first (the CPU wheel), then ``mostlyai-engine``; torchvision / torchaudio, which it pulls
in but never uses, are removed because PyPI's builds of them break ``import transformers`` beside a CPU torch.
mostlyai-engine is never a dependency of synthgen.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

VENV = Path(__file__).resolve().parent / ".venv-reference"
PYTHON = VENV / "bin" / "python"


# What every engine's benchmark script starts with: the figures are printed as one JSON line last, the arguments
# come as JSON in argv[1], the torch thread count is set before the engine is imported (its import may start
# thread pools), and the training rows are read from a parquet file.
ENGINE_SCRIPT_PROLOGUE = """
import json, sys, time, resource, warnings
from pathlib import Path
import pandas as pd, torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
trn = pd.read_parquet(args["trn"])
"""


def engine_script(body: str) -> str:
    """An engine's benchmark script (for ``_common.run_engine``): ``body`` after :data:`ENGINE_SCRIPT_PROLOGUE`.

    ``body`` may use ``args`` (the JSON arguments; ``threads`` and ``trn`` are required), ``trn`` (the training
    rows) and the modules ``json``, ``sys``, ``time``, ``resource``, ``warnings``, ``Path``, ``pd`` and ``torch``,
    and prints one JSON line of figures last.
    """
    return ENGINE_SCRIPT_PROLOGUE + body


def ensure_reference_env() -> Path:
    """The reference environment's python, installing it on first use (a few minutes)."""
    if PYTHON.exists() and subprocess.run([str(PYTHON), "-c", "import mostlyai.engine"],
                                          capture_output=True).returncode == 0:
        return PYTHON
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["torch==2.13.0"], check=True)
    subprocess.run(pip + ["mostlyai-engine"], check=True)
    subprocess.run([str(PYTHON), "-m", "pip", "uninstall", "--quiet", "-y", "torchvision", "torchaudio"],
                   check=False)
    return PYTHON


def run_reference(script: str, args: dict) -> dict:
    """Run ``script`` (Python source) in the reference environment; it prints one JSON line last."""
    python = ensure_reference_env()
    result = subprocess.run([str(python), "-c", script, json.dumps(args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"the reference engine failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
