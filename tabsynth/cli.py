"""`tabsynth` command line: inspect a table, release a synthetic copy, run the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tabsynth import __version__
from tabsynth.errors import TabsynthError

err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
DEMO_TABLE = Path(__file__).resolve().parent / "data" / "pbc.csv"


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
      tabsynth demo                            # the same on a bundled public patient table
    """
    ctx.obj = {"debug": debug}


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("schema.yaml"), show_default=True,
              help="Where to write the inferred schema (YAML).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path),
              help="An edited schema to start from: its decisions override inference.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
def inspect(data: Path, out: Path, schema_path: Path | None, overwrite: bool) -> None:
    """Infer DATA's schema (types, keys, PII, missing values), print it, and save it as YAML."""
    from tabsynth.errors import InputError
    from tabsynth.infer import infer_schema
    from tabsynth.io.files import read_table
    from tabsynth.schema import Schema

    if out.exists() and not overwrite and out != schema_path:
        raise InputError(f"{out} already exists (use --overwrite, or --out for another file)")
    frame = read_table(data)
    schema = infer_schema(frame, user=Schema.load(schema_path) if schema_path else None)
    out_console.print(schema_table(schema, title=f"{data.name}: {len(frame):,} rows, {frame.shape[1]} columns"))
    schema.save(out)
    flagged = [c.name for c in schema.columns if c.kind in ("pii", "id")]
    out_console.print(f"PII and identifier columns: {', '.join(flagged) if flagged else 'none found'}")
    out_console.print(f"schema written to {out}; edit it and pass it back with --schema")


def schema_table(schema, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("column", overflow="fold")
    for heading in ("kind", "dtype", "missing"):
        table.add_column(heading, no_wrap=True)
    table.add_column("facts", overflow="fold")
    table.add_column("why", overflow="fold", ratio=1)
    for col in schema.columns:
        kind = f"pii:{col.pii}" if col.kind == "pii" else col.kind
        table.add_row(col.name, kind, col.dtype, f"{col.missing:.1%}", _facts(col), col.reason)
    return table


def _facts(col) -> str:
    if col.kind == "pii":
        return "replaced by fakes" if col.handling == "fake" else "dropped"
    if col.kind == "id":
        return "regenerated unique"
    facts = col.observed
    if facts.categories is not None:
        shown = ", ".join(map(str, facts.categories[:4]))
        more = f" +{len(facts.categories) - 4}" if len(facts.categories) > 4 else ""
        return f"{len(facts.categories)} values: {shown}{more}"
    nature = ("discrete " if col.discrete else "continuous ") if col.kind == "numerical" else ""
    return f"{nature}{facts.min} … {facts.max}" if facts.min is not None else ""


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Release folder to create.")
@click.option("--model", default="copula", show_default=True, help="Synthesizer name (see `tabsynth models`).")
@click.option("--rows", type=int, help="Rows to synthesize [default: as many as the training split].")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path), help="Edited schema.yaml to use.")
@click.option("--seed", type=int, help="Make the run reproducible (recorded in the manifest). "
              "Without it, randomness comes from the operating system.")
@click.option("--policy", default="default", show_default=True, help="Policy name in policies/ or a YAML path.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True,
              help="File format of the synthetic table.")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier release folder (atomically); other folders are never replaced.")
def release(data: Path, out: Path, model: str, rows: int | None, schema_path: Path | None, seed: int | None,
            policy: str, fmt: str, overwrite: bool) -> None:
    """Fit a model on DATA (CSV or Parquet), sample, validate, and write OUT if the policy's gate passes.

    OUT gets synthetic.parquet (or .csv), manifest.json and report.html, all at once or not at all.
    A blocked release writes nothing to OUT; its report goes to OUT.blocked.html.
    """
    from tabsynth.pipeline import ReleaseOptions

    options = ReleaseOptions(data=data, out=out, model=model, rows=rows, schema=schema_path, seed=seed,
                             policy=policy, fmt=fmt, overwrite=overwrite)
    _run_release(options)


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("tabsynth-demo"), show_default=True,
              help="Release folder (replaced if it exists).")
@click.option("--seed", type=int, help="Make the run reproducible.")
def demo(out: Path, seed: int | None) -> None:
    """Release a synthetic copy of the bundled Mayo Clinic PBC patient table (418 patients)."""
    from tabsynth.pipeline import ReleaseOptions

    out_console.print(f"demo table: {DEMO_TABLE.name} (Mayo Clinic primary biliary cholangitis trial, "
                      "from R's survival package; see tabsynth/data/README.md)")
    _run_release(ReleaseOptions(data=DEMO_TABLE, out=out, seed=seed, overwrite=True))


@cli.command()
def models() -> None:
    """List the synthesizers that --model accepts."""
    from tabsynth.models.base import REGISTRY

    for name, target in sorted(REGISTRY.items()):
        out_console.print(f"{name:12s} {target}")


def _run_release(options) -> None:
    from tabsynth.pipeline import release

    columns = (TextColumn("{task.description:<28}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("starting", total=1.0)
        result = release(options, progress=lambda what, done: bar.update(task, description=what, completed=done))
    _print_gate(result)
    out_console.print(f"released {len(result.synthetic):,} synthetic rows to {result.out}/ "
                      f"(synthetic.{options.fmt}, manifest.json, report.html)")


def _print_gate(result) -> None:
    table = Table(title=f"gate: policy {result.manifest['policy']['name']!r}", title_justify="left")
    for heading in ("rule", "value", "result"):
        table.add_column(heading)
    for rule in result.verdict.rules:
        value = "—" if rule.value is None else f"{rule.value:.4g}"
        table.add_row(f"{rule.metric} {rule.op} {rule.threshold:g}", value, "PASS" if rule.passed else "FAIL")
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
