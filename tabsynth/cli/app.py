"""The `tabsynth` command group, its consoles, and the one place errors become one-line messages."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tabsynth._version import __version__
from tabsynth.errors import TabsynthError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
DEMO_TABLE = Path(__file__).resolve().parent.parent / "data" / "pbc.csv"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tabsynth")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Synthesize sensitive tables: learn the schema, fit a model, check privacy and utility, release.

    \b
    Typical use:
      tabsynth inspect patients.csv            # review the inferred schema and PII, edit schema.yaml
      tabsynth release patients.csv --out rel  # fit, sample, validate, and release behind the gate
      tabsynth release patients.csv --out rel --model dp-marginal --epsilon 1 --policy strict-external-sharing
      tabsynth approve rel --reviewer "A. Jones" && tabsynth export rel shared/
      tabsynth demo                            # a release of a bundled public patient table
    """
    ctx.obj = {"debug": debug}


@contextmanager
def progress_bar(first: str = "starting"):
    """A progress callback (what, share done) drawn on stderr when it is a terminal, silent otherwise."""
    columns = (TextColumn("{task.description:<30}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(first, total=1.0)

        def update(what: str, done: float) -> None:
            bar.update(task, description=what, completed=done)

        yield update


def print_gate(verdict, policy_name: str) -> None:
    table = Table(title=f"gate: policy {policy_name!r}", title_justify="left")
    for heading in ("rule", "value", "result"):
        table.add_column(heading)
    for rule in verdict.rules:
        value = "—" if rule.value is None else f"{rule.value:.4g}"
        shown = f"{rule.metric} ran" if rule.op == "runs" else f"{rule.metric} {rule.op} {rule.threshold:g}"
        table.add_row(shown, value, "PASS" if rule.passed else "FAIL")
    out_console.print(table)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="tabsynth", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err_console.print("error: interrupted; nothing was released")
        sys.exit(130)
    except click.UsageError as exc:
        where = f"{exc.ctx.command_path} --help" if exc.ctx else "tabsynth --help"
        err_console.print(f"error: {exc.format_message()} (see `{where}`)", markup=False)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        err_console.print(f"error: {exc.format_message()}", markup=False)
        sys.exit(exc.exit_code)
    except TabsynthError as exc:
        if debug:
            raise
        for line in exc.problems:
            err_console.print(f"error: {line}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exception as exc:  # the last resort: one line, never a traceback without --debug
        if debug:
            raise
        err_console.print(f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for details)",
                          markup=False, soft_wrap=True)
        sys.exit(1)
