"""The reference-engine cache of the side-by-side benchmarks (benchmarks/_common.run_engine_cached)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _common import run_engine_cached  # noqa: E402

# Writes a counter into its output file, so a cache hit is told apart from a new run.
SCRIPT = """
import json, sys
from pathlib import Path
args = json.loads(sys.argv[1])
counter = Path(args["counter"])
runs = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(runs))
Path(args["out"]).write_text(f"sample of run {runs}")
print(json.dumps({"runs": runs}))
"""


def _run(tmp_path: Path, key: dict, script: str = SCRIPT) -> tuple[dict, str]:
    args = {"counter": str(tmp_path / "counter"), "out": str(tmp_path / "out.txt")}
    figures = run_engine_cached(sys.executable, script, args, 1, str(tmp_path / "cache"), key, ["out"])
    return figures, (tmp_path / "out.txt").read_text()


def test_a_cached_run_is_reused_with_its_output_file(tmp_path):
    assert _run(tmp_path, {"data": "a"}) == ({"runs": 1}, "sample of run 1")
    (tmp_path / "out.txt").unlink()
    assert _run(tmp_path, {"data": "a"}) == ({"runs": 1}, "sample of run 1")
    assert (tmp_path / "counter").read_text() == "1"


@pytest.mark.parametrize("change", ["key", "script"])
def test_other_settings_or_another_script_run_again_and_replace_the_cache(tmp_path, change):
    _run(tmp_path, {"data": "a"})
    key, script = ({"data": "b"}, SCRIPT) if change == "key" else ({"data": "a"}, SCRIPT + "\n# changed\n")
    assert _run(tmp_path, key, script) == ({"runs": 2}, "sample of run 2")
    assert _run(tmp_path, key, script) == ({"runs": 2}, "sample of run 2")


def test_without_a_cache_folder_the_engine_always_runs(tmp_path):
    args = {"counter": str(tmp_path / "counter"), "out": str(tmp_path / "out.txt")}
    for expected in (1, 2):
        assert run_engine_cached(sys.executable, SCRIPT, args, 1, None, {}, ["out"]) == {"runs": expected}
