"""Every public name has a numpydoc docstring with an example, and the examples run and print what they show.

Public names: ``synthgen.__all__`` and the ``__all__`` of ``synthgen.datasets`` and ``synthgen.evaluation``
(the names the API reference documents). A class's example may live in the class docstring or in one of its
public methods. Examples write workspaces such as ``"ws"`` into the working directory, so each runs in an empty
temporary folder.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path

import pytest

import synthgen
import synthgen.datasets
import synthgen.evaluation

PUBLIC = {
    **{name: getattr(synthgen, name) for name in synthgen.__all__ if name != "__version__"},
    **{f"datasets.{name}": getattr(synthgen.datasets, name) for name in synthgen.datasets.__all__},
    **{f"evaluation.{name}": getattr(synthgen.evaluation, name) for name in synthgen.evaluation.__all__},
}
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def _own_docstrings(obj) -> list[tuple[str, str]]:
    """(name, docstring) of ``obj`` and, for a class, of its public methods and properties defined in synthgen."""
    found = [(getattr(obj, "__qualname__", repr(obj)), inspect.getdoc(obj) or "")]
    if inspect.isclass(obj):
        for name, member in vars(obj).items():
            if name.startswith("_"):
                continue
            target = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            if callable(target) and getattr(target, "__module__", "").startswith("synthgen"):
                found.append((f"{obj.__qualname__}.{name}", inspect.getdoc(target) or ""))
    return found


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_name_has_an_example(name):
    docstrings = _own_docstrings(PUBLIC[name])
    assert docstrings[0][1].strip(), f"{name} has no docstring"
    assert any("Examples\n--------" in doc for _, doc in docstrings), f"{name} has no Examples section"


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for qualname, doc in _own_docstrings(PUBLIC[name]):
        if ">>>" in doc:
            runner.run(doctest.DocTestParser().get_doctest(doc, {}, qualname, None, 0))
    summary = runner.summarize(verbose=False)
    assert summary.failed == 0, f"{summary.failed} example(s) of {name} failed (see the output above)"


DOCUMENTED_MODULES = ["synthgen", "synthgen.datasets", "synthgen.evaluation", "synthgen.models.tabular",
                      "synthgen.models.language", "synthgen.column_encodings"]


@pytest.mark.parametrize("module", DOCUMENTED_MODULES)
def test_api_reference_lists_every_public_name(module):
    """docs/api.md names every entry of the module's ``__all__`` (an autosummary line or a constant)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    listed = re.compile(rf"^   (?P<name>\w+)$|`{re.escape(module)}\.(?P<constant>\w+)`", re.MULTILINE)
    names = {m["name"] or m["constant"] for m in listed.finditer(text)}
    missing = [name for name in importlib.import_module(module).__all__ if name not in names | {"__version__"}]
    assert not missing, f"docs/api.md does not document {module}.{missing}"
