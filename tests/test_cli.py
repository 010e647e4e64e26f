"""The command line, through click's test runner and as a real subprocess (tiny data, one epoch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from synthgen.cli import app

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's synthgen, wherever a subprocess runs
COMMANDS = ["fit", "sample", "split", "analyze", "encode", "train", "generate", "evaluate", "info"]
TINY = ["--max-epochs", "1", "--model", "small", "--random-state", "0"]


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def files(tmp_path_factory, adult_full) -> dict[str, Path]:
    """A 150-row table as parquet and CSV, and a model fitted on it by ``synthgen fit``."""
    folder = tmp_path_factory.mktemp("cli")
    frame = adult_full[["age", "sex", "education", "income"]].head(150)
    frame.to_parquet(folder / "data.parquet")
    frame.to_csv(folder / "data.csv", index=False)
    result = invoke("fit", folder / "data.parquet", "-o", folder / "model.joblib", *TINY, "-q", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["columns"] == ["age", "sex", "education", "income"]
    return {"folder": folder, "parquet": folder / "data.parquet", "csv": folder / "data.csv",
            "model": folder / "model.joblib"}


def test_help_imports_neither_torch_nor_pandas():
    code = ("import sys, time; t = time.perf_counter(); from click.testing import CliRunner; "
            "from synthgen.cli import app; r = CliRunner().invoke(app, ['--help']); "
            "assert r.exit_code == 0 and 'fit' in r.output, r.output; "
            "heavy = [m for m in ('torch', 'pandas', 'numpy', 'sklearn') if m in sys.modules]; "
            "assert not heavy, heavy; print(time.perf_counter() - t)")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr
    print(f"--help: {float(done.stdout):.2f} s in-process, {time.perf_counter() - started:.2f} s with start-up")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert f"synthgen {command}" in result.output


def test_options_come_from_the_options_layer():
    help_text = invoke("fit", "--help").output
    assert "--max-epochs FLOAT" in help_text and "[default: 100.0]" in help_text
    assert "--value-protection / --no-value-protection" in help_text
    assert "{'RESET', 'REUSE', 'RESUME'}" in " ".join(help_text.split())


def test_fit_json_and_info(files):
    result = invoke("info", files["model"], "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert [c["name"] for c in info["columns"]] == ["age", "sex", "education", "income"]
    assert info["model"]["id"] == "MOSTLY_AI/Small" and info["model"]["parameters"] > 0
    assert info["training"]["epochs"] == 1 and info["privacy"]["value_protection"] is True
    text = invoke("info", files["model"]).stdout
    assert "TABULAR_CATEGORICAL" in text and "parameters" in text


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_sample_writes_the_format_of_the_extension(files, suffix):
    out = files["folder"] / f"synthetic{suffix}"
    result = invoke("sample", files["model"], "-n", 12, "-o", out, "--random-state", 1)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert frame.shape == (12, 4)


def test_sample_to_stdout_with_seed_data(files):
    seeds = files["folder"] / "seeds.csv"
    pd.DataFrame({"sex": ["Female"] * 4}).to_csv(seeds, index=False)
    result = invoke("sample", files["model"], "--seed-data", seeds, "-o", "-", "--random-state", 1)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert frame.shape == (4, 4) and (frame["sex"] == "Female").all()


def test_fit_reads_csv_from_stdin(files, tmp_path):
    result = invoke("fit", "-", "-o", tmp_path / "m.joblib", *TINY, "-q", input=files["csv"].read_text())
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.joblib").exists()


def _write_config(path: Path, options: dict) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps(options))
    elif path.suffix == ".toml":
        path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items()))
    else:
        path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in options.items()))


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml"])
def test_config_file(files, tmp_path, suffix):
    if suffix == ".yaml":
        pytest.importorskip("yaml")
    config = tmp_path / f"options{suffix}"
    _write_config(config, {"n_samples": 3, "sampling_temperature": 0.5, "random_state": 2})
    out = tmp_path / "s.csv"
    assert invoke("sample", files["model"], "--config", config, "-o", out).exit_code == 0
    assert len(pd.read_csv(out)) == 3
    assert invoke("sample", files["model"], "--config", config, "-n", 5, "-o", out).exit_code == 0
    assert len(pd.read_csv(out)) == 5  # the command line overrides the file


def test_yaml_config_without_pyyaml(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "yaml", None)
    config = tmp_path / "options.yaml"
    config.write_text("n_samples: 3\n")
    result = invoke("sample", files["model"], "--config", config)
    assert result.exit_code == 1
    assert "reading YAML needs PyYAML" in result.stderr


def test_stages_over_a_workspace(files, tmp_path):
    ws = tmp_path / "ws"
    steps = [["split", files["csv"], "--random-state", 0], ["analyze"], ["encode"],
             ["train", "--max-epochs", 1, "--model", "small"], ["generate", "-n", 9, "-o", tmp_path / "g.parquet"]]
    for step in steps:
        result = invoke(*step, "-w", ws, "--json", "-q")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["stage"] == step[0]
    assert json.loads(result.stdout)["rows"] == 9
    assert pd.read_parquet(tmp_path / "g.parquet").shape == (9, 4)


def test_evaluate_json_and_report(files, tmp_path):
    pytest.importorskip("matplotlib")
    synthetic = tmp_path / "syn.parquet"
    assert invoke("sample", files["model"], "-o", synthetic, "--random-state", 0).exit_code == 0
    report = tmp_path / "report.html"
    result = invoke("evaluate", files["parquet"], synthetic, "--report", report, "--json", "--no-discriminator")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert 0 <= figures["overall"] <= 1 and figures["report"] == str(report)
    assert report.read_text().lstrip().lower().startswith("<!doctype html")


@pytest.mark.parametrize(("args", "code", "message"), [
    (["fit", "missing.parquet", "-o", "m.joblib"], 2, "file 'missing.parquet' does not exist"),
    (["fit", "data.xlsx", "-o", "m.joblib"], 2, "is neither parquet nor CSV"),
    (["fit", "{parquet}", "-o", "m.joblib", "--bogus"], 2, "No such option '--bogus'"),
    (["fit", "{parquet}", "-o", "m.joblib", "--max-epochs", "many"], 2, "'many' is not a valid float"),
    (["fit", "{parquet}"], 2, "Missing option '-o' / '--out'"),
    (["fit", "{parquet}", "-o", "no/such/folder/m.joblib"], 2, "its folder does not exist"),
    (["fit", "{parquet}", "-o", "m.joblib", "--max-epochs", "-1"], 1,
     "The 'max_epochs' parameter of TabularSynthesizer must be a float in the range (0, inf). Got -1.0 instead."),
    (["fit", "{parquet}", "-o", "m.joblib", "--tgt-primary-key", "nope"], 1, "nope"),
    (["fit", "{broken}", "-o", "m.joblib"], 1, "Parquet magic bytes not found"),
    (["sample", "{model}", "--sampling-top-p", "3"], 1,
     "The 'sampling_top_p' parameter of TabularSynthesizer.sample must be a float in the range (0, 1]."),
    (["sample", "{model}", "--json"], 2, "--json prints on stdout"),
    (["sample", "{broken}"], 1, "is not a model saved by 'synthgen fit'"),
    (["sample", "{model}", "--config", "{bad_config}"], 1, "options that 'sample' does not take: bogus"),
    (["info", "{parquet}"], 1, "is not a model saved by 'synthgen fit'"),
    (["encode", "-w", "empty-ws"], 1, "run analyze() first"),
    (["evaluate", "{parquet}"], 2, "Missing argument 'SYNTHETIC'"),
    (["nonsense"], 2, "No such command 'nonsense'"),
])
def test_errors_are_one_line_with_exit_code(files, tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.parquet").write_text("not a table")
    (tmp_path / "bad.json").write_text('{"bogus": 1}')
    names = {"parquet": files["parquet"], "model": files["model"], "broken": tmp_path / "broken.parquet",
             "bad_config": tmp_path / "bad.json"}
    result = invoke(*[a.format(**names) for a in args])
    assert result.exit_code == code, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_verbose_shows_the_traceback(files):
    result = invoke("sample", files["model"], "--sampling-top-p", "3", "--verbose")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "InvalidParameterError" in result.stderr


def test_console_script_is_declared():
    with open(ROOT / "pyproject.toml", "rb") as file:
        scripts = tomllib.load(file)["project"]["scripts"]
    module, _, name = scripts["synthgen"].partition(":")
    assert module == "synthgen.cli" and callable(getattr(__import__(module, fromlist=[name]), name))


def test_round_trip_from_the_shell(files, tmp_path):
    """Every command once as a real process: fit → sample → evaluate → info, then the five stages."""
    cli = f"{sys.executable} -m synthgen"
    script = f"""
set -e
cd {tmp_path}
{cli} fit {files['csv']} -o model.joblib {' '.join(TINY)} -q
{cli} sample model.joblib -n 40 -o - --random-state 1 > synthetic.csv
{cli} evaluate {files['csv']} synthetic.csv --no-discriminator --json > figures.json
{cli} info model.joblib > info.txt
{cli} split {files['parquet']} -w ws -q
{cli} analyze -w ws -q
{cli} encode -w ws -q
{cli} train -w ws {' '.join(TINY)} -q
{cli} generate -w ws -n 5 -o generated.parquet -q
set +e
{cli} sample missing.joblib 2> missing.txt
echo $? > missing-code.txt
"""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(tmp_path / "synthetic.csv")) == 40
    assert 0 <= json.loads((tmp_path / "figures.json").read_text())["overall"] <= 1
    assert "MOSTLY_AI/Small" in (tmp_path / "info.txt").read_text()
    assert len(pd.read_parquet(tmp_path / "generated.parquet")) == 5
    assert (tmp_path / "missing-code.txt").read_text().strip() == "2"
    assert "Traceback" not in (tmp_path / "missing.txt").read_text()


def test_commands_take_every_parameter_of_the_library():
    """A parameter added to the estimator or a stage fails here until the command line takes it."""
    import inspect

    import synthgen
    from synthgen.cli import _app

    assert set(_app._FIT_FLAGS + _app._FIT_CONFIG) == set(synthgen.TabularSynthesizer().get_params())
    data = {"tgt_data", "ctx_data", "seed_data", "workspace_dir", "update_progress", "verbose",
            "upload_model_data_callback"}
    for stage, (flags, config_only) in _app._STAGES.items():
        parameters = set(inspect.signature(getattr(synthgen, stage)).parameters) - data
        assert set(flags + config_only) == parameters, stage
    sample = set(inspect.signature(synthgen.TabularSynthesizer.sample).parameters) - {"self", "seed_data", "context"}
    assert set(_app._SAMPLE_FLAGS + _app._SAMPLE_CONFIG) == sample - {"return_context"}  # one output file
