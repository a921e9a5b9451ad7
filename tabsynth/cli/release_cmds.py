"""Commands that read a real table: release, validate, demo (inspect: inspect_cmds)."""

from __future__ import annotations

from pathlib import Path

import click

from tabsynth.cli.app import DEMO_TABLE, cli, out_console, print_gate, progress_bar
from tabsynth.cli.options import (
    DATA_HELP,
    PATH,
    check_options,
    delta_option,
    epsilon_option,
    ledger_option,
    model_params_option,
    parse_params,
    source_id_option,
    source_options,
)


@cli.command(epilog=DATA_HELP)
@click.argument("data")
@source_options
@click.option("--out", type=PATH, help="Release folder to create (manifest, report, synthetic file) "
              "[required, unless --out-table is given: then TABLE.release in the current folder].")
@click.option("--out-table", help="Also write the synthetic rows to this database table (SCHEMA.NAME; the schema "
              "is created if missing) with the source table's column types, in one transaction. For a dataset: a "
              "prefix for every table's name (synth_, or synth. for PostgreSQL's schema synth), written with --out-url "
              "with their primary and foreign keys, all in one transaction.")
@click.option("--out-url", help="Database for --out-table [default: the source database].")
@click.option("--replace", is_flag=True, help="Let --out-table replace an existing table (atomically).")
@click.option("--model", default="auto", show_default=True,
              help="Synthesizer name (see `tabsynth models`), or auto: dp-marginal when the policy or --epsilon asks "
                   "for differential privacy; else argn when the table fits its fit in about 5 minutes on a CPU, "
                   "copula past that. The manifest records the choice and why.")
@model_params_option
@epsilon_option
@delta_option
@click.option("--rows", type=int, help="Rows to synthesize [default: the training rows; a noisy count for DP models].")
@click.option("--seed", type=int, help="Make the run's non-private randomness reproducible (recorded in the manifest): "
              "the split, the sampling and a non-DP model's fit. DP noise always comes from the operating system's "
              "CSPRNG, never from the seed. Without --seed, all randomness comes from the operating system.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True,
              help="File format of the synthetic table.")
@source_id_option
@ledger_option
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier release folder (atomically); other folders are never replaced.")
@click.option("--engine", type=click.Choice(["memory", "duckdb"]), default="memory", show_default=True,
              help="duckdb: for tables larger than memory (dp-marginal only). DuckDB scans the table for the "
                   "model's counts, sampling streams to the file in chunks, and validation uses random samples.")
@check_options
def release(data: str, table, query, out: Path | None, out_table, out_url, replace, model: str, params, epsilon, delta,
            rows, seed, fmt, source_id, ledger, overwrite, engine, policy, target, sensitive, constraints,
            schema_path) -> None:
    """Fit a model on DATA, sample, validate, and write OUT if the policy's gate passes.

    OUT gets synthetic.parquet (or .csv), manifest.json and report.html, all at once or not at all.
    With --out-table the rows also go to a database table, committed only once OUT is in place.
    A blocked release (exit code 3) writes nothing to OUT or the database; its report goes to OUT.blocked.html.
    A DP model debits the privacy ledger for the source before it is fitted; the debit stands even if
    the release is later blocked.
    DATA may also be a dataset YAML of linked tables (`tables:` with path, primary_key, foreign_keys, order_by;
    `tabsynth inspect` writes one): OUT then gets a file per table, one manifest and one report, and the
    split, the checks and --rows count persons (a row of the table that references no other, and every row
    that hangs from it).
    """
    from tabsynth.run.options import ReleaseOptions

    if Path(data).suffix.lower() in (".yaml", ".yml"):
        unused = {"--table": table, "--query": query, "--constraints": constraints,
                  "--schema (declare each table's in the dataset YAML)": schema_path,
                  "--sensitive": sensitive, "--engine duckdb": engine != "memory"}
        _release_dataset(data, out, [flag for flag, value in unused.items() if value], model=model,
                         model_params=parse_params(params), rows=rows, seed=seed, policy=policy, fmt=fmt,
                         overwrite=overwrite, epsilon=epsilon, delta=delta, target=target, out_table=out_table,
                         out_url=out_url, replace=replace, source_id=source_id, ledger=ledger)
        return
    if out is None and not out_table:
        raise click.UsageError("Missing option '--out' (the release folder; optional only with --out-table)")
    _run_release(ReleaseOptions(
        data=data, out=out or Path(f"{out_table}.release"), model=model, model_params=parse_params(params),
        rows=rows, schema=schema_path, seed=seed,
        policy=policy, fmt=fmt, overwrite=overwrite, epsilon=epsilon, delta=delta, target=target,
        sensitive=tuple(sensitive), constraints=constraints, source_id=source_id, ledger=ledger, table=table,
        query=query, out_table=out_table, out_url=out_url, replace=replace, engine=engine))


def _release_dataset(data: str, out: Path | None, unused: list[str], **options) -> None:
    from tabsynth.errors import InputError
    from tabsynth.run.linked_release import release_dataset
    from tabsynth.run.options import DatasetOptions
    from tabsynth.table.dataset import read_relations

    if unused:
        raise InputError(f"{', '.join(unused)}: not available for a dataset of linked tables")
    if out is None:
        raise click.UsageError("Missing option '--out' (the release folder)")
    with progress_bar() as progress:
        result = release_dataset(DatasetOptions(relations=read_relations(data), out=out, **options),
                                 progress=progress)
    print_gate(result.verdict, result.manifest["policy"]["name"])
    files = ", ".join(f"{name} ({record['rows']:,} rows)" for name, record in result.manifest["outputs"].items()
                      if "rows" in record)
    out_console.print(f"released {result.manifest['sampling']['persons']:,} synthetic persons to {result.out}/: "
                      f"{files}, manifest.json, report.html")
    written = result.manifest.get("out_tables")
    if written:
        out_console.print(f"and to tables {', '.join(written['tables'].values())} in {written['url']}")


@cli.command()
@click.argument("real", type=PATH)
@click.argument("synthetic", type=PATH)
@click.option("--holdout", type=PATH, help="Real rows the generator never saw: needed for the membership, "
              "distance and inference checks (without it they cannot run, and rules on them fail).")
@click.option("--report", type=PATH, help="Write the HTML report here.")
@check_options
def validate(real: Path, synthetic: Path, holdout, report, policy, target, sensitive, constraints,
             schema_path) -> None:
    """Gate SYNTHETIC, a table made elsewhere, against REAL (its training rows) under a policy.

    Exit code 0 when every rule passes, 3 when any fails (each failure is named). Writes no data.
    """
    from tabsynth.run.options import ValidateOptions
    from tabsynth.run.validate import validate_tables

    options = ValidateOptions(real=real, synthetic=synthetic, policy=policy, holdout=holdout, schema=schema_path,
                              target=target, sensitive=tuple(sensitive), constraints=constraints, report=report)
    verdict, manifest = validate_tables(options)
    print_gate(verdict, manifest["policy"]["name"])
    out_console.print(f"{synthetic} passes policy {manifest['policy']['name']!r}")


@cli.command()
@click.option("--out", type=PATH, default=Path("tabsynth-demo"), show_default=True,
              help="Release folder (replaced if it exists).")
@click.option("--seed", type=int, help="Make the run reproducible.")
def demo(out: Path, seed: int | None) -> None:
    """Release a synthetic copy of the bundled Mayo Clinic PBC patient table (418 patients)."""
    from tabsynth.run.options import ReleaseOptions

    out_console.print(f"demo table: {DEMO_TABLE.name} (Mayo Clinic primary biliary cholangitis trial, "
                      "from R's survival package; see tabsynth/data/README.md)")
    _run_release(ReleaseOptions(data=DEMO_TABLE, out=out, seed=seed, overwrite=True))


def _run_release(options) -> None:
    from tabsynth.run.release import release as run_release

    with progress_bar() as progress:
        result = run_release(options, progress=progress)
    print_gate(result.verdict, result.manifest["policy"]["name"])
    model = result.manifest["model"]
    if model.get("chosen_by") == "auto":
        out_console.print(f"model: {model['name']}, chosen by --model auto: {model['why']}")
    privacy = result.manifest.get("privacy", {})
    if privacy.get("differentially_private"):
        out_console.print(f"privacy: epsilon {privacy['epsilon']:.4g}, delta {privacy['delta']:.3g} spent; "
                          f"ledger source {privacy['ledger']['source'] or 'named by the input file digest'}")
    if result.verdict.private:
        failing = sum(not o.passed for o in result.verdict.assessment)
        out_console.print(f"gate: decided on DP or public inputs only; the {len(result.verdict.assessment)} "
                          f"outcomes on private rows ({failing} failing) are an internal assessment, not part of the "
                          f"decision: {result.out}/internal/report.html (never share it)")
    for warning in result.manifest.get("warnings", []):
        out_console.print(f"warning: {warning}")
    by_person = result.manifest.get("dataset", {}).get("released_as_one_table")
    if by_person:
        dcr = next((m["value"] for m in result.manifest["metrics"] if m["name"] == "person_dcr_share"), None)
        shown = "not computed" if dcr is None else f"{dcr:.3f} (0.5 is chance, 1.0 copies of training persons)"
        out_console.print(f"by person: {by_person['note']}; person-level DCR share {shown}")
    rows = result.manifest["outputs"][f"synthetic.{options.fmt}"]["rows"]
    out_console.print(f"released {rows:,} synthetic rows to {result.out}/ "
                      f"(synthetic.{options.fmt}, manifest.json, report.html)")
    table = result.manifest.get("out_table")
    if table:
        out_console.print(f"and to table {table['table']} in {table['url']}")
