"""Every Python code block of README.md and docs/*.md runs as written.

The ```python blocks of one Markdown file run in order in one fresh namespace, in a subprocess with an empty
temporary folder as its working directory (blocks may write workspaces and model files), so a block may use
the names that earlier blocks of the same file defined, and nothing else. Tracebacks point at the Markdown
file and line.

Which blocks run:

- a fence labelled ``python`` (or ``py``, ``python3``) runs;
- a fence with any other label (``text``, ``bash``) or none is not Python and never runs: use these for shell
  lines, output, messages and layouts;
- a ``python`` block directly preceded by the comment ``<!-- skip: reason -->`` is shown highlighted but not run
  (e.g. it needs a GPU or a file the reader supplies); the reason is required.

The examples themselves are cheap (bundled data samples, ``max_epochs`` budgets, each stating its time), but
together they train some twenty small models: about four minutes on a busy 2-core machine, twice the two
minutes the test suite can spare them. So running them is marked ``docs_blocks`` and left out of the default
run (``addopts`` in pyproject.toml); CI runs them beside the docs build, and so does anyone who edits a page:

    python -m pytest -q -m docs_blocks tests/test_docs_code_blocks.py

The parsing tests below run by default. Each page gets ``TIMEOUT_S``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_LABELS = {"python", "py", "python3"}
SKIP = re.compile(r"<!--\s*skip:\s*(\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)$")
TIMEOUT_S = 300

# Runs the blocks of one page: torch on one thread (as in conftest.py), each block compiled under the page's
# name and padded with newlines so that tracebacks give the Markdown line numbers.
RUNNER = """
import json, sys
import torch
torch.set_num_threads(1)
import matplotlib
matplotlib.use("Agg")
path, blocks = json.loads(sys.stdin.read())
namespace = {"__name__": "__main__"}
for line, code in blocks:
    exec(compile("\\n" * (line - 1) + code, path, "exec"), namespace)
"""


def code_blocks(path: Path) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """The Python blocks of a Markdown page, as (first code line, code): those to run and those skipped.

    Raises ``ValueError`` for a fence that is never closed and for a skip marker before a non-Python block.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    run, skipped = [], []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        label = opening["info"].strip().split(" ")[0].strip("{}").lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), None)
        if end is None:
            raise ValueError(f"{path.name}:{i + 1}: the code fence opened here is never closed")
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = SKIP.search(before)
        if marker and label not in PYTHON_LABELS:
            raise ValueError(f"{path.name}:{i + 1}: a skip marker before a '{label}' block (only Python runs)")
        if label in PYTHON_LABELS:
            code = "\n".join(line[indent:] for line in lines[i + 1:end])
            (skipped if marker else run).append((i + 2, code))
        i = end + 1
    return run, skipped


def test_code_blocks_are_found_and_skips_need_a_reason(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("text\n\n```python\na = 1\n```\n\n```text\nnot python\n```\n\n<!-- skip: needs a GPU -->\n"
                    "```python\nimport cupy\n```\n\n<!-- skip -->\n```python\nb = 2\n```\n")
    run, skipped = code_blocks(page)
    assert run == [(4, "a = 1"), (18, "b = 2")]       # a marker without a reason does not skip
    assert skipped == [(13, "import cupy")]
    page.write_text("```python\nopen\n")
    with pytest.raises(ValueError, match="never closed"):
        code_blocks(page)


PAGES_WITH_CODE = [page for page in PAGES if code_blocks(page)[0]]


def test_readme_and_user_guide_have_code():
    assert ROOT / "README.md" in PAGES_WITH_CODE
    assert ROOT / "docs" / "getting_started.md" in PAGES_WITH_CODE


@pytest.mark.docs_blocks
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=[p.relative_to(ROOT).as_posix() for p in PAGES_WITH_CODE])
def test_code_blocks_run(page, tmp_path):
    blocks, _ = code_blocks(page)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER], input=json.dumps([str(page), blocks]), cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, f"a code block of {page.name} failed:\n{result.stderr[-4000:]}"
