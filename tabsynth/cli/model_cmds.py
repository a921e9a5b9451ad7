"""Commands on model folders: fit, sample, models."""

from __future__ import annotations

import click

from tabsynth.cli.app import cli, out_console, progress_bar
from tabsynth.cli.options import (
    DATA_HELP,
    PATH,
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
@click.option("--out", type=PATH, required=True, help="Model folder to create (model.json + arrays, no pickle).")
@click.option("--model", default="copula", show_default=True, help="Synthesizer name (see `tabsynth models`).")
@model_params_option
@click.option("--schema", "schema_path", type=PATH, help="Edited schema.yaml to use.")
@click.option("--seed", type=int, help="Make a non-DP fit reproducible. DP noise always comes from the operating "
              "system's CSPRNG, never from the seed (it fixes only what is not DP noise, such as initial weights).")
@epsilon_option
@delta_option
@click.option("--policy", default="default", show_default=True, help="Policy whose privacy caps apply.")
@source_id_option
@ledger_option
@click.option("--overwrite", is_flag=True, help="Replace an earlier model folder.")
@click.option("--target", help="Label column a DP model favours (dp-marginal weights its marginals, dp-argn "
              "predicts it last) [default: the policy's].")
def fit(data, table, query, out, model, params, schema_path, seed, epsilon, delta, policy, source_id, ledger,
        overwrite, target) -> None:
    """Fit a model on every row of DATA and save it to a model folder for `tabsynth sample`.

    The folder holds the schema, the parameters and the fitted state as JSON and numpy arrays; it loads
    without running code. A non-DP model folder carries information about the real rows: keep it as
    private as the data. Nothing here is gated; use `tabsynth release` to publish.
    """
    from tabsynth.run.fit import fit_folder
    from tabsynth.run.options import FitOptions

    options = FitOptions(data=data, out=out, model=model, schema=schema_path, seed=seed, epsilon=epsilon,
                         delta=delta, policy=policy, source_id=source_id, ledger=ledger, overwrite=overwrite,
                         model_params=parse_params(params), table=table, query=query, target=target)
    with progress_bar() as progress:
        summary = fit_folder(options, progress)
    spent = summary["privacy"]
    if spent:
        out_console.print(f"privacy: epsilon {spent['epsilon']:.4g}, delta {spent['delta']:.3g} spent")
    out_console.print(f"model {model!r} saved to {out}/")


@cli.command()
@click.argument("model_dir", type=PATH)
@click.option("--out", type=PATH, required=True, help="Output file: .parquet or .csv.")
@click.option("--rows", type=int, help="Rows to sample [default for DP models: their noisy row count].")
@click.option("--where", help="Only rows meeting a condition, e.g. \"age >= 65 and sex == 'Female'\" "
              "or \"diagnosis in ['E10', 'E11']\".")
@click.option("--rebalance", help="Give one category a share of the rows, e.g. is_fraud=0.3 or income='>50K'=0.5.")
@click.option("--seed", type=int, help="Make the sample reproducible.")
@click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
def sample(model_dir, out, rows, where, rebalance, seed, overwrite) -> None:
    """Sample rows from a model folder saved by `tabsynth fit`.

    Not gated: the model saw every row of its data, so no holdout is left to check the rows against. OUT gets a
    note beside it, OUT.UNGATED.txt, saying so; check the rows with `tabsynth validate` before sharing them.
    """
    from tabsynth.run.options import SampleOptions
    from tabsynth.run.sample import sample_file, ungated_note

    options = SampleOptions(model_dir=model_dir, out=out, rows=rows, where=where, rebalance=rebalance, seed=seed,
                            overwrite=overwrite)
    with progress_bar("sampling") as progress:
        written = sample_file(options, progress)
    out_console.print(f"wrote {written:,} rows to {out}")
    out_console.print(f"not gated: no policy checked these rows (see {ungated_note(out).name}); "
                      "run `tabsynth validate` against unseen rows before sharing them")


@cli.command()
def models() -> None:
    """List the synthesizers that --model accepts (DP: differentially private, spends a privacy budget)."""
    from tabsynth.models.registry import REGISTRY  # the names only: no model module is imported

    out_console.print(f"{'model':12s} DP  what it is", markup=False)
    for name in sorted(REGISTRY):
        entry = REGISTRY[name]
        out_console.print(f"{name:12s} {'DP' if entry.private else '  '}  {entry.description}", markup=False)
