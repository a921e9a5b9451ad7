"""Commands after a release: verify, approve, export; and the privacy ledger."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from tabsynth.cli.app import cli, out_console
from tabsynth.cli.options import PATH, ledger_option


@cli.command()
@click.argument("folder", type=PATH)
def verify(folder: Path) -> None:
    """Re-check every file of a release folder against the SHA-256 recorded in its manifest."""
    from tabsynth.publish.review import valid_approvals
    from tabsynth.publish.review import verify as verify_folder

    manifest = verify_folder(folder)
    for name, info in manifest["outputs"].items():
        out_console.print(f"ok  {name}  sha256 {info['sha256'][:16]}…")
    signed = ", ".join(a["reviewer"] for a in valid_approvals(folder)) or "none"
    out_console.print(f"{folder}: every file matches its manifest; sign-offs: {signed}")


@cli.command()
@click.argument("folder", type=PATH)
@click.option("--reviewer", required=True, help="Name of the person signing off.")
@click.option("--note", default="", help="What was reviewed, conditions of use, ticket number…")
def approve(folder: Path, reviewer: str, note: str) -> None:
    """Record a reviewer's sign-off of a release: who, when, and the manifest's SHA-256."""
    from tabsynth.publish.review import approve as approve_folder

    approval = approve_folder(folder, reviewer, note)
    out_console.print(f"{folder}: approved by {approval['reviewer']} at {approval['approved_at']} "
                      f"(manifest sha256 {approval['manifest_sha256'][:16]}…)")


@cli.command()
@click.argument("folder", type=PATH)
@click.argument("dest", type=PATH)
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
def export(folder: Path, dest: Path, overwrite: bool) -> None:
    """Copy a release's synthetic data file to DEST, after verifying it.

    DEST is a folder (created if missing; the file keeps its name, e.g. DEST/synthetic.parquet) or, when it
    ends in .parquet or .csv, the file to write (with the release's own suffix: the bytes are copied as they are).
    A public DATA_CARD.md is written beside it: model, privacy guarantee, policy and verdict, columns, and DP
    warnings; no figure of the private table.

    Refused when the release's policy requires a sign-off (`tabsynth approve`) that is missing, or
    when any file no longer matches the manifest.
    """
    from tabsynth.publish.data_card import data_card_path
    from tabsynth.publish.review import export as export_folder

    target = export_folder(folder, dest, overwrite=overwrite)
    out_console.print(f"exported {target} and its public data card {data_card_path(target)}")


@cli.command()
@ledger_option
@click.option("--source", help="Show every debit of one source instead of the totals.")
def ledger(ledger: str | None, source: str | None) -> None:
    """Show the privacy budget spent per source table (or every debit of one source). A file is known by a digest
    of its rows (the same for CSV and Parquet copies); NAME lists the file or table names it was charged under."""
    from tabsynth.privacy.ledger import Ledger

    book = Ledger(ledger)
    if source:
        table = Table(title=f"debits of {source} in {book.url}", title_justify="left")
        for heading in ("entry", "when", "name", "model", "epsilon", "delta", "note"):
            table.add_column(heading)
        for spend in book.history(source):
            table.add_row(str(spend.entry), spend.created, spend.name or "", spend.model, f"{spend.epsilon:.4g}",
                          f"{spend.delta:.3g}", spend.note)
    else:
        table = Table(title=f"privacy budget spent per source in {book.url}", title_justify="left")
        for heading in ("name", "source", "releases", "epsilon", "delta", "last"):
            table.add_column(heading, overflow="fold")
        for row in book.totals():
            table.add_row(", ".join(row["names"]) or "-", row["source"], str(row["releases"]), f"{row['epsilon']:.4g}",
                          f"{row['delta']:.3g}", str(row["last"]))
    out_console.print(table)
