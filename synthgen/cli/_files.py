"""Files of the command line: tables (format from the extension, ``-`` for stdin / stdout), models, configs."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import click

TABLE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
CONFIG_FORMATS = (".json", ".toml", ".yaml", ".yml")
STDIO = "-"


def table_format(path: str) -> str | None:
    """``"parquet"`` or ``"csv"`` from the extension (``-``, stdin or stdout, is CSV); None when unknown."""
    return "csv" if path == STDIO else TABLE_FORMATS.get(Path(path).suffix.lower())


class TableFile(click.ParamType):
    """A parquet or CSV file (or ``-``): checked while the command line is parsed, so a wrong one exits 2."""

    name = "FILE"

    def __init__(self, *, output: bool = False, stdio: bool = True) -> None:
        self.output = output
        self.stdio = stdio

    def convert(self, value, param, ctx) -> str:
        value = os.fspath(value)
        if value == STDIO and not self.stdio:
            self.fail("'-' is not allowed here: give a file name", param, ctx)
        if table_format(value) is None:
            self.fail(f"{value!r} is neither parquet nor CSV: use a .parquet, .pq or .csv file"
                      + (" or - for " + ("stdout" if self.output else "stdin") if self.stdio else ""), param, ctx)
        check_file(value, output=self.output, fail=lambda message: self.fail(message, param, ctx))
        return value


def check_file(value: str, *, output: bool, fail) -> None:
    """An input must exist; an output must go into an existing folder (so no work is done in vain)."""
    if value == STDIO:
        return
    path = Path(value)
    if not output and not path.is_file():
        fail(f"file {value!r} does not exist")
    if output and (path.is_dir() or not path.absolute().parent.is_dir()):
        fail(f"cannot write {value!r}: " + ("it is a folder" if path.is_dir() else "its folder does not exist"))


class OutputFile(click.ParamType):
    """A file to write (a model, a report), in a folder that exists."""

    name = "FILE"

    def convert(self, value, param, ctx) -> str:
        value = os.fspath(value)
        check_file(value, output=True, fail=lambda message: self.fail(message, param, ctx))
        return value


def read_table(path: str):
    """The table in ``path`` as a DataFrame."""
    import pandas as pd

    if path == STDIO:
        return pd.read_csv(click.get_binary_stream("stdin"))
    return pd.read_parquet(path) if table_format(path) == "parquet" else pd.read_csv(path)


def _replace_atomically(path: str, write) -> None:
    """Write through ``write(temporary_path)`` and move the result to ``path``, so no half-written file remains."""
    target = Path(path)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_table(frame, path: str) -> None:
    """Write ``frame`` to ``path`` in the format of its extension (``-``: CSV on stdout)."""
    if path == STDIO:
        frame.to_csv(click.get_text_stream("stdout"), index=False)
    elif table_format(path) == "parquet":
        _replace_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        _replace_atomically(path, lambda tmp: frame.to_csv(tmp, index=False))


def save_model(model, path: str) -> None:
    import joblib

    _replace_atomically(path, lambda tmp: joblib.dump(model, tmp))


def load_model(path: str):
    """The fitted synthesizer pickled in ``path`` (a pickle runs code when loaded: trusted files only)."""
    import joblib

    from synthgen import TabularSynthesizer

    try:
        model = joblib.load(path)
    except Exception as err:  # a pickle that is not one, truncated or from an unknown class
        raise ValueError(f"{path!r} is not a model saved by 'synthgen fit' ({type(err).__name__}: {err})") from err
    if not isinstance(model, TabularSynthesizer):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a TabularSynthesizer")
    return model


def read_config(path: str) -> dict[str, Any]:
    """Options from a JSON, TOML or YAML file (YAML needs PyYAML): a mapping of option names to values."""
    suffix = Path(path).suffix.lower()
    if suffix not in CONFIG_FORMATS:
        raise ValueError(f"config file {path!r}: unknown format {suffix or '(no extension)'!r}; "
                         "use .json, .toml, .yaml or .yml")
    try:
        if suffix == ".json":
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
        elif suffix == ".toml":
            with open(path, "rb") as file:
                config = tomllib.load(file)
        else:
            try:
                import yaml
            except ImportError:
                raise ValueError(f"config file {path!r}: reading YAML needs PyYAML (pip install pyyaml); "
                                 "or use a JSON or TOML file") from None
            with open(path, encoding="utf-8") as file:
                config = yaml.safe_load(file)
    except (ValueError, OSError) as err:
        raise ValueError(f"config file {path!r}: {err}") from err
    except Exception as err:  # yaml.YAMLError
        raise ValueError(f"config file {path!r}: {' '.join(str(err).split())}") from err
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ValueError(f"config file {path!r} must hold a mapping of option names to values, "
                         f"not a {type(config).__name__}")
    return config


def _plain(value):
    """``value`` as JSON can hold it: NaN as null, numpy scalars as numbers, anything else as its str."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return None if value != value or value in (float("inf"), float("-inf")) else value
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    return str(value)


def print_json(summary: dict) -> None:
    click.echo(json.dumps(_plain(summary), indent=2, ensure_ascii=False))


def status(message: str) -> None:
    """A line for the user: stderr, so stdout stays for data and JSON."""
    click.echo(message, err=True)


__all__ = ["TableFile", "OutputFile", "check_file", "read_table", "write_table", "save_model", "load_model", "read_config", "print_json",
           "status", "STDIO", "table_format"]
