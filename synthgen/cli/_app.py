"""The ``synthgen`` command: ``fit``, ``sample``, the five engine stages, ``evaluate`` and ``info``.

Nothing heavy is imported here: torch, pandas and the estimators are imported inside the commands, so
``synthgen --help`` answers at once.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from .._version import __version__
from ._errors import Group, verbose_option
from ._files import (
    STDIO,
    OutputFile,
    TableFile,
    load_model,
    print_json,
    read_config,
    read_table,
    save_model,
    status,
    write_table,
)
from ._params import merge, options

# names only: what each option allows, its default and its flag come from synthgen._options
_FIT_FLAGS = ["model", "language_model", "max_training_time", "max_epochs", "batch_size", "gradient_accumulation_steps",
              "enable_flexible_generation", "max_sequence_window", "value_protection", "tgt_primary_key",
              "tgt_context_key", "ctx_primary_key", "model_state_strategy", "n_partitions", "device",
              "n_threads", "n_processes", "workspace_dir", "random_state", "target"]
_FIT_CONFIG = ["tgt_encoding_types", "ctx_encoding_types", "differential_privacy", "verbose"]
_SAMPLE_FLAGS = ["n_samples", "batch_size", "sampling_temperature", "sampling_top_p", "device",
                 "rare_category_replacement_method", "marginal_calibration", "derived_columns", "random_state"]
_SAMPLE_CONFIG = ["rebalancing", "imputation", "fairness"]
_STAGES = {
    "split": (["tgt_primary_key", "ctx_primary_key", "tgt_context_key", "model_type", "n_partitions",
               "trn_val_split", "random_state"], ["tgt_encoding_types", "ctx_encoding_types"]),
    "analyze": (["value_protection", "random_state"], ["differential_privacy"]),
    "encode": (["random_state"], []),
    "train": (["model", "max_training_time", "max_epochs", "batch_size", "gradient_accumulation_steps",
               "enable_flexible_generation", "max_sequence_window", "model_state_strategy", "device",
               "n_threads", "n_processes", "random_state"], ["differential_privacy"]),
    "generate": (["sample_size", "batch_size", "sampling_temperature", "sampling_top_p", "device", "n_threads",
                  "rare_category_replacement_method", "marginal_calibration", "derived_columns", "random_state"],
                 ["rebalancing", "imputation", "fairness"]),
}
_EVALUATE_CONFIG = ["context_key", "privacy", "discriminator", "max_rows", "max_distance_rows",
                    "max_discriminator_rows", "max_trivariates", "fairness", "random_state"]


def _config_option(function: Callable) -> Callable:
    return click.option("--config", type=click.Path(exists=True, dir_okay=False),
                        help="JSON, TOML or YAML file of options (names as in the library); "
                             "the command line overrides it.")(function)


def _json_option(function: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print a machine-readable summary (JSON) on stdout.")(function)


def _quiet_option(function: Callable) -> Callable:
    return click.option("-q", "--quiet", is_flag=True,
                        help="No progress bars (by default they show on a terminal, on stderr).")(function)


def _config(path: str | None) -> dict:
    return read_config(path) if path is not None else {}


@click.group("synthgen", cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="synthgen")
def app() -> None:
    """Privacy-safe synthetic data: fit a synthesizer on a table, sample from it, evaluate the result.

    Tables are parquet or CSV files (the format follows the extension; '-' is stdin or stdout, as CSV).
    Exit codes: 0 success, 1 an error in the data or options, 2 a usage error.
    """


# -- estimator ---------------------------------------------------------------------------------------

@app.command()
@click.argument("data", type=TableFile())
@click.option("-o", "--out", required=True, type=OutputFile(),
              help="Where to save the fitted model (joblib).")
@click.option("--context", type=TableFile(), help="Context table of two-table data (parquet or CSV).")
@options(_FIT_FLAGS, estimator=True)
@_config_option
@_json_option
@_quiet_option
@verbose_option
def fit(data: str, out: str, context: str | None, config: str | None, as_json: bool, quiet: bool,
        **given) -> None:
    """Fit a TabularSynthesizer on DATA and save it to --out.

    Options are the estimator's parameters; tgt_encoding_types, ctx_encoding_types and
    differential_privacy come from --config.
    """
    params = merge(_config(config), given, _FIT_FLAGS + _FIT_CONFIG, "fit")
    if quiet:
        params["verbose"] = 0
    from synthgen import TabularSynthesizer

    frame = read_table(data)
    synth = TabularSynthesizer(**params).fit(frame, context=None if context is None else read_table(context))
    save_model(synth, out)
    summary = {"model": out, "rows": len(frame), "columns": list(synth.feature_names_in_),
               "epochs": len(synth.history_)}
    if as_json:
        print_json(summary)
    else:
        epochs = len(synth.history_)
        status(f"Fitted on {len(frame):,} rows of {synth.n_features_in_} columns ({epochs} epoch"
               f"{'' if epochs == 1 else 's'}); saved to {out}")


@app.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", type=TableFile(output=True), default=STDIO, show_default=True,
              help="Where to write the rows: .parquet, .csv, or - for CSV on stdout.")
@click.option("--seed-data", type=TableFile(), help="Fixed values of some columns, one row per generated row.")
@click.option("--context", type=TableFile(), help="Context rows to generate for (two-table models).")
@options(_SAMPLE_FLAGS, estimator=True)
@_config_option
@_json_option
@verbose_option
def sample(model: str, out: str, seed_data: str | None, context: str | None, config: str | None,
           as_json: bool, **given) -> None:
    """Sample synthetic rows from a MODEL saved by 'synthgen fit'.

    rebalancing, imputation and fairness come from --config. The model file is a pickle, which runs code
    when loaded: load only files you made or trust.
    """
    if as_json and out == STDIO:
        raise click.UsageError("--json prints on stdout; write the rows to a file with --out")
    params = merge(_config(config), given, _SAMPLE_FLAGS + _SAMPLE_CONFIG, "sample")
    synth = load_model(model)
    frame = synth.sample(seed_data=None if seed_data is None else read_table(seed_data),
                         context=None if context is None else read_table(context), **params)
    write_table(frame, out)
    if as_json:
        print_json({"out": out, "rows": len(frame), "columns": list(frame.columns)})
    elif out != STDIO:
        status(f"Wrote {len(frame):,} rows to {out}")


# -- engine stages -----------------------------------------------------------------------------------

def _workspace_option(function: Callable) -> Callable:
    return click.option("-w", "--workspace", required=True, type=click.Path(file_okay=False),
                        help="The workspace folder the stages share.")(function)


def _run_stage(name: str, workspace: str, config: str | None, quiet: bool, given: dict, **data) -> dict:
    flags, config_only = _STAGES[name]
    params = merge(_config(config), given, flags + config_only, name)
    import synthgen

    quiet_flag = {"verbose": 0} if quiet else {}  # else the library's default: bars where a person watches
    getattr(synthgen, name)(workspace_dir=workspace, **quiet_flag, **data, **params)
    return {"stage": name, "workspace": workspace}


def _report_stage(summary: dict, as_json: bool) -> None:
    if as_json:
        print_json(summary)
    else:
        status(f"{summary['stage']}: done in {summary['workspace']}")


def _stage_command(name: str, help_text: str) -> Callable:
    def decorate(function: Callable) -> Callable:
        for decorator in (verbose_option, _quiet_option, _json_option, _config_option,
                          options(_STAGES[name][0]), _workspace_option):
            function = decorator(function)
        return app.command(name, help=help_text)(function)

    return decorate


@_stage_command("split", "Split DATA (and its --context) into training and validation data in the workspace.")
@click.argument("data", type=TableFile())
@click.option("--context", type=TableFile(), help="Context table of two-table data.")
def split_command(data: str, context: str | None, workspace: str, config: str | None, as_json: bool,
                  quiet: bool, **given) -> None:
    ctx_data = None if context is None else read_table(context)
    _report_stage(_run_stage("split", workspace, config, quiet, given, tgt_data=read_table(data),
                             ctx_data=ctx_data), as_json)


@_stage_command("analyze", "Compute the (protected) statistics of the split data.")
def analyze_command(workspace: str, config: str | None, as_json: bool, quiet: bool, **given) -> None:
    _report_stage(_run_stage("analyze", workspace, config, quiet, given), as_json)


@_stage_command("encode", "Encode the split data with the statistics.")
def encode_command(workspace: str, config: str | None, as_json: bool, quiet: bool, **given) -> None:
    _report_stage(_run_stage("encode", workspace, config, quiet, given), as_json)


@_stage_command("train", "Train the model on the encoded data (differential_privacy comes from --config).")
def train_command(workspace: str, config: str | None, as_json: bool, quiet: bool, **given) -> None:
    summary = _run_stage("train", workspace, config, quiet, given)
    from synthgen import Workspace

    summary["epochs"] = len(Workspace(workspace).read_progress())
    _report_stage(summary, as_json)


@_stage_command("generate", "Generate synthetic data with the trained model into the workspace "
                            "(rebalancing, imputation and fairness come from --config).")
@click.option("--seed-data", type=TableFile(), help="Fixed values of some columns, one row per generated row.")
@click.option("--context", type=TableFile(), help="Context rows to generate for (two-table models).")
@click.option("-o", "--out", type=TableFile(output=True),
              help="Also write the generated rows here: .parquet, .csv, or - for CSV on stdout.")
def generate_command(seed_data: str | None, context: str | None, out: str | None, workspace: str,
                     config: str | None, as_json: bool, quiet: bool, **given) -> None:
    if as_json and out == STDIO:
        raise click.UsageError("--json prints on stdout; write the rows to a file with --out")
    summary = _run_stage("generate", workspace, config, quiet, given,
                         seed_data=None if seed_data is None else read_table(seed_data),
                         ctx_data=None if context is None else read_table(context))
    from synthgen import read_synthetic_data

    frame = read_synthetic_data(workspace)
    summary["rows"] = len(frame)
    if out is not None:
        write_table(frame, out)
        summary["out"] = out
    if out != STDIO:
        _report_stage(summary, as_json)


# -- evaluation and inspection -----------------------------------------------------------------------

@app.command()
@click.argument("original", type=TableFile())
@click.argument("synthetic", type=TableFile())
@click.option("--holdout", type=TableFile(), help="Real data the model did not see: the reference figures.")
@click.option("--report", type=OutputFile(), help="Write the HTML report here (needs matplotlib).")
@click.option("--context-key", help="Column grouping the rows into sequences (two-table target data).")
@click.option("--privacy/--no-privacy", default=None, help="Distance-based privacy figures.  [default: privacy]")
@click.option("--discriminator/--no-discriminator", default=None,
              help="The discriminator AUC.  [default: discriminator]")
@click.option("--random-state", type=int, help="Seed of the samples the figures use.  [default: 0]")
@_config_option
@_json_option
@verbose_option
def evaluate(original: str, synthetic: str, holdout: str | None, report: str | None, config: str | None,
             as_json: bool, **given) -> None:
    """Compare SYNTHETIC with ORIGINAL (the training data): fidelity and privacy figures.

    --config may also set max_rows, max_distance_rows, max_discriminator_rows, max_trivariates and fairness.
    """
    params = merge(_config(config), given, _EVALUATE_CONFIG, "evaluate")
    import synthgen

    result = synthgen.evaluate(read_table(original), read_table(synthetic),
                               None if holdout is None else read_table(holdout), **params)
    if report is not None:
        result.to_html(report)
    if as_json:
        print_json({**result.to_dict(), **({"report": report} if report is not None else {})})
    else:
        click.echo(repr(result))
        if report is not None:
            status(f"Report written to {report}")


@app.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@_json_option
@verbose_option
def info(model: str, as_json: bool) -> None:
    """What a MODEL saved by 'synthgen fit' is: columns, encodings, model size, training, privacy.

    The model file is a pickle, which runs code when loaded: load only files you made or trust.
    """
    from ._info import describe, format_description

    description = describe(load_model(model), model)
    if as_json:
        print_json(description)
    else:
        click.echo(format_description(description))


def main() -> None:
    """The console script ``synthgen``."""
    app.main(prog_name="synthgen")
