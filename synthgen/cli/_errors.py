"""How the command line fails: one line on stderr; exit 1 for bad data or options, 2 for bad usage."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings

import click

TRACEBACK = "synthgen.traceback"
"""Key of ``ctx.meta`` set by ``--verbose``: print the traceback of an error."""

# errors whose message says it all: the library's (InvalidParameterError, NotFittedError, ...) and files'
_EXPECTED = (ValueError, TypeError, OSError)


class Failure(click.ClickException):
    """An error of the library or of a file, reported in one line with exit code 1."""

    exit_code = 1

    def __init__(self, error: Exception) -> None:
        message = " ".join(str(error).split()) or type(error).__name__
        own = type(error).__module__.startswith("synthgen.")  # e.g. WorkspaceError
        if isinstance(error, KeyError) or not (own or isinstance(error, _EXPECTED)):
            message = f"{type(error).__name__}: {message}"
        super().__init__(message)


class _EchoHandler(logging.Handler):
    """Log records on the current stderr (resolved at each record, as click's test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"{record.levelname.lower()}: {record.name}: {record.getMessage()}", err=True)


def verbose_option(function):
    """``--verbose``: tracebacks of errors and the library's log messages on stderr."""

    def enable(ctx: click.Context, param, value: bool) -> None:
        if value:
            ctx.meta[TRACEBACK] = True
            logger, handler = logging.getLogger("synthgen"), _EchoHandler()
            logger.addHandler(handler)
            previous = logger.level
            logger.setLevel(logging.INFO)
            ctx.call_on_close(lambda: (logger.removeHandler(handler), logger.setLevel(previous)))

    return click.option("--verbose", is_flag=True, expose_value=False, is_eager=True, callback=enable,
                        help="Show the traceback of an error and the library's log messages.")(function)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"Warning: {' '.join(str(message).split())}", err=True)


class Group(click.Group):
    """A click group whose errors are one line: ``Error: ...`` (exit 1) or ``Usage error: ...`` (exit 2)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # in the order of the workflow, not alphabetical

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise
        except Exception as error:
            if ctx.meta.get(TRACEBACK):
                traceback.print_exc(file=sys.stderr)
            raise Failure(error) from error

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                code = result if isinstance(result, int) else 0
            except click.UsageError as error:
                hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
                click.echo(f"Usage error: {error.format_message()}{hint}", err=True)
                code = error.exit_code
            except click.ClickException as error:
                click.echo(f"Error: {error.format_message()}", err=True)
                code = error.exit_code
            except click.Abort:
                click.echo("Aborted.", err=True)
                code = 1
            except BrokenPipeError:  # e.g. `synthgen sample m.joblib | head`: the reader left
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
                code = 1
        if standalone_mode:
            sys.exit(code)
        return code
