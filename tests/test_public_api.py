"""Every public name of synthgen has a numpydoc docstring and type hints; modules follow one private convention."""

from __future__ import annotations

import inspect
import pkgutil
import sys

import pytest

import synthgen

PUBLIC = [(name, getattr(synthgen, name)) for name in synthgen.__all__ if not name.startswith("__")]


def _callables():
    for name, obj in PUBLIC:
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            if "__init__" in vars(obj) and obj.__init__ is not object.__init__:
                yield f"{name}.__init__", obj.__init__
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{name}.{attr}", member


def _parameters(func):
    return [p for p in inspect.signature(func).parameters.values()
            if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


@pytest.mark.parametrize(("name", "obj"), PUBLIC, ids=[name for name, _ in PUBLIC])
def test_public_names_have_docstrings(name, obj):
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        pytest.skip("not a class or function")
    assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize(("name", "func"), list(_callables()), ids=[name for name, _ in _callables()])
def test_public_callables_have_type_hints_and_a_parameters_section(name, func):
    parameters = _parameters(func)
    missing = [p.name for p in parameters if p.annotation is inspect.Parameter.empty]
    assert not missing, f"{name}: parameters without a type hint: {missing}"
    if not name.endswith(".__init__"):
        assert inspect.signature(func).return_annotation is not inspect.Signature.empty, f"{name}: no return hint"
        doc = inspect.getdoc(func) or ""
        assert doc, f"{name} has no docstring"
        if parameters:
            assert "Parameters\n----------" in doc, f"{name}: docstring has no numpydoc Parameters section"


def test_no_module_is_named_after_a_standard_library_module():
    stdlib = set(sys.stdlib_module_names)
    clashes = [info.name for info in pkgutil.walk_packages(synthgen.__path__, "synthgen.")
               if info.name.rsplit(".", 1)[-1] in stdlib]
    assert not clashes, clashes


def test_implementation_modules_are_private():
    # public names are re-exported by the packages; modules meant to be imported by users are listed here
    public_modules = {"synthgen.domain", "synthgen.demo", "synthgen.datasets", "synthgen.column_encodings",
                      "synthgen.estimators", "synthgen.evaluation", "synthgen.models", "synthgen.models.tabular",
                      "synthgen.models.language", "synthgen.privacy", "synthgen.stages", "synthgen.cli"}
    modules = [info.name for info in pkgutil.walk_packages(synthgen.__path__, "synthgen.")]
    public = [m for m in modules if not any(part.startswith("_") for part in m.split(".")[1:])]
    assert sorted(set(public) - public_modules) == []
