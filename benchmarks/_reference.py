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
