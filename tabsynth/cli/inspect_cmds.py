"""`inspect`: the schema of one table, or the keys of linked tables (a dataset), printed and saved as YAML."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from tabsynth.cli.app import cli, out_console
from tabsynth.cli.options import DATA_HELP, DATASET_HELP, dataset_options, source_options


@cli.command(epilog=f"{DATA_HELP} {DATASET_HELP}")
@click.argument("data", nargs=-1, required=True)
@source_options
@click.option("--out", "out", type=click.Path(path_type=Path), default=Path("schema.yaml"), show_default=True,
              help="Where to write the inferred schema of one table (YAML).")
@click.option("--schema", "schema_path", type=click.Path(path_type=Path),
              help="An edited schema to start from: its decisions override inference.")
@dataset_options
@click.option("--overwrite", is_flag=True, help="Replace the output file(s) if they exist.")
def inspect(data: tuple[str, ...], table, query, out: Path, schema_path: Path | None, dataset_out: Path | None,
            split_by: str | None, db_schema: str | None, overwrite: bool) -> None:
    """Infer DATA's schema (types, keys, PII, missing values), print it, and save it as YAML.

    \b
    For linked tables (a dataset: a person table and the tables hanging from it), print each table's rows,
    primary key, foreign keys (with the share of values found in the parent), order column and why, and the
    person table, and write them as a dataset YAML to confirm or edit:
      tabsynth inspect patients.csv visits.csv      # keys guessed from the rows
      tabsynth inspect data/                        # every table file in a folder
      tabsynth inspect dataset.yaml                 # a declared dataset, its rows checked against its keys
      tabsynth inspect sqlite:///clinic.db          # the keys the database declares
      tabsynth inspect cgd.csv --split-by id        # one table with several rows per id: split it
    """
    from tabsynth.io.sql import is_url
    from tabsynth.run.inspect_dataset import is_dataset

    if (table or query) and len(data) > 1:
        raise click.UsageError("--table and --query read one table from one database URL; DATA names several")
    if db_schema and not (len(data) == 1 and is_url(data[0]) and not (table or query)):
        raise click.UsageError("--db-schema names the tables of a database URL given without --table or --query")
    if is_dataset(data, table, query):
        if split_by:
            raise click.UsageError("--split-by splits one table: give one file, or a database URL with --table")
        _inspect_dataset(data, db_schema, dataset_out, overwrite)
    elif split_by:
        _split(data[0], table, query, split_by, dataset_out or Path("dataset.yaml"), overwrite)
    else:
        _inspect_table(data[0], table, query, out, schema_path, overwrite)


def _inspect_table(data: str, table, query, out: Path, schema_path: Path | None, overwrite: bool) -> None:
    from tabsynth.errors import InputError
    from tabsynth.io import sql
    from tabsynth.run.inspect_dataset import person_key_hint
    from tabsynth.table.infer import infer_schema
    from tabsynth.table.schema import Schema

    source = sql.open_source(data, table, query)
    frame = sql.read_source(source)
    schema = infer_schema(frame, user=Schema.load(schema_path) if schema_path else None)
    if out.exists() and not overwrite and out != schema_path:  # the input's own problems are reported first
        raise InputError(f"{out} already exists (use --overwrite, or --out for another file)")
    title = f"{sql.source_name(source)}: {len(frame):,} rows, {frame.shape[1]} columns"
    out_console.print(schema_table(schema, title=title))
    schema.save(out)
    flagged = [c.name for c in schema.columns if c.kind in ("pii", "id")]
    out_console.print(f"PII and identifier columns: {', '.join(flagged) if flagged else 'none found'}")
    hint = person_key_hint(frame)
    if hint:
        out_console.print(hint, markup=False)
    out_console.print(f"schema written to {out}; edit it and pass it back with --schema")


def _inspect_dataset(data: tuple[str, ...], db_schema, dataset_out: Path | None, overwrite: bool) -> None:
    from tabsynth.run.inspect_dataset import check_dataset_out, inspect_dataset, save_dataset

    view = inspect_dataset(data, db_schema)
    target = dataset_out or (None if view.declared_in else Path("dataset.yaml"))
    if target is not None:
        check_dataset_out(target, view, overwrite)
    print_dataset(view)
    if target is None:
        out_console.print("keys checked against the rows; nothing written (--dataset-out PATH writes a copy)")
        return
    save_dataset(view, target)
    out_console.print(f"dataset written to {target}; confirm or edit it", markup=False)


def _split(data: str, table, query, key: str, dataset_out: Path, overwrite: bool) -> None:
    from tabsynth.io import sql
    from tabsynth.run.inspect_dataset import split_table, write_split

    source = sql.open_source(data, table, query)
    view = split_table(source, sql.read_source(source), key)
    written = write_split(view, source, dataset_out, overwrite)
    print_dataset(view)
    out_console.print(f"wrote {', '.join(map(str, written))}", markup=False)


def print_dataset(view) -> None:
    """One row per table, parents first, then why each key and order column was chosen, then the warnings."""
    relations, links = view.relations, {(link.child, link.key.column): link for link in view.links}
    table = Table(title=f"dataset: keys {view.origin}", title_justify="left")
    for heading in ("table", "rows", "primary key", "foreign keys (values found in the parent)", "order by"):
        table.add_column(heading, overflow="fold")
    for name in relations.parents_first():
        spec = relations.tables[name]
        keys = "; ".join(f"{fk} ({links[name, fk.column].share:.1%})" for fk in spec.foreign_keys) or "—"
        table.add_row(name, f"{len(view.frames[name]):,}", spec.primary_key or "—", keys, spec.order_by or "—")
    out_console.print(table)
    root = relations.root()
    out_console.print(f"person table: {root} (the privacy unit is one {root} row and every row hanging from it)",
                      markup=False)
    for name in relations.parents_first():
        spec = relations.tables[name]
        out_console.print(f"{name}: primary key {spec.primary_key or 'none'}: {view.key_reasons[name]}", markup=False)
        if name in view.order_reasons:
            out_console.print(f"{name}: order by {spec.order_by or 'none'}: {view.order_reasons[name]}", markup=False)
    for link in view.links:
        out_console.print(f"link {link.describe()}", markup=False)
    for warning in view.warnings:
        out_console.print(f"warning: {warning}", markup=False)


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


