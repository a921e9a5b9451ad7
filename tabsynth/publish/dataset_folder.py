"""Publishing a release of linked tables: one folder with a file per table, one manifest, one report; all at
once or not at all. A blocked release writes only its report beside the folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import NoReturn

import jinja2
import pandas as pd

from tabsynth.io.atomic import atomic_write_text, staged_directory
from tabsynth.io.files import file_sha256, write_table
from tabsynth.io.sql_dataset_sink import TableLinks, dataset_transaction
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.findings import fmt, section
from tabsynth.publish.folder import INTERNAL_REPORT, MANIFEST, REPORT, blocked_report_path, raise_blocked
from tabsynth.publish.gate import Verdict
from tabsynth.publish.plots import column_plot
from tabsynth.publish.report import gate_view
from tabsynth.table.dataset import Relations
from tabsynth.table.schema import Schema

MAX_PLOTS_PER_TABLE = 12


def publish_dataset(options, manifest: dict, train: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame],
                    relations: Relations, schemas: dict[str, Schema], sink=None,
                    files: dict[str, pd.DataFrame] | None = None, internal: dict | None = None) -> Path:
    """The folder, a file per table (or the `files` given: a flat input's rows joined back); with a database
    sink, every table too, in one transaction that commits only once the folder is in place (a failed commit
    removes the folder again), as a single-table --out-table does. A DP release (`internal`: its assessment)
    shares a report of DP and public figures only; the full one goes to internal/ with the assessment."""
    files = files if files is not None else synthetic
    if sink is None:
        return _publish_folder(options, manifest, train, synthetic, relations, schemas, files, internal)
    tables = [TableLinks(name, synthetic[name], relations.tables[name].primary_key,
                         tuple((fk.column, fk.parent, fk.parent_column) for fk in relations.tables[name].foreign_keys),
                         schemas[name].datetime_formats()) for name in relations.parents_first()]
    published = None
    try:
        with dataset_transaction(sink, tables) as record:
            manifest["out_tables"] = record
            published = _publish_folder(options, manifest, train, synthetic, relations, schemas, files, internal)
    except BaseException:
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise
    return published


def _publish_folder(options, manifest: dict, train, synthetic, relations: Relations, schemas, files,
                    internal: dict | None = None) -> Path:
    formats = {k: v for schema in schemas.values() for k, v in schema.datetime_formats().items()}
    with staged_directory(Path(options.out), overwrite=options.overwrite) as staging:
        manifest["outputs"] = {}
        for name, rows in files.items():
            file = f"{name}.{options.fmt}"
            write_table(rows, staging / file, options.fmt, {c: f for c, f in formats.items() if c in rows})
            manifest["outputs"][file] = {"sha256": file_sha256(staging / file), "rows": len(rows)}
        write_dataset_report(staging / REPORT, manifest, train, synthetic, relations, schemas,
                             shareable=internal is not None)
        if internal is not None:
            (staging / manifest_lib.INTERNAL_DIR).mkdir()
            write_dataset_report(staging / INTERNAL_REPORT, manifest, train, synthetic, relations, schemas)
            internal = {**internal, "files": {INTERNAL_REPORT: {"sha256": file_sha256(staging / INTERNAL_REPORT)}}}
        manifest["outputs"][REPORT] = {"sha256": file_sha256(staging / REPORT)}
        manifest_lib.write(staging / MANIFEST, manifest)
        if internal is not None:
            manifest_lib.write_assessment(staging, internal, file_sha256(staging / MANIFEST))
    return Path(options.out)


def block_dataset(options, manifest: dict, train, synthetic, relations: Relations, schemas: dict[str, Schema],
                  verdict: Verdict) -> NoReturn:
    report_path = blocked_report_path(Path(options.out))
    write_dataset_report(report_path, manifest, train, synthetic, relations, schemas)
    raise_blocked(manifest["policy"]["name"], verdict, report_path)


def write_dataset_report(path: Path, manifest: dict, train, synthetic, relations: Relations,
                         schemas: dict[str, Schema], shareable: bool = False) -> None:
    atomic_write_text(Path(path), render_dataset_report(manifest, train, synthetic, relations, schemas, shareable))


def render_dataset_report(manifest: dict, train, synthetic, relations: Relations, schemas: dict[str, Schema],
                          shareable: bool = False) -> str:
    metrics = [m for m in manifest.get("metrics", []) if isinstance(m, dict)]
    model, split = section(manifest, "model"), section(manifest, "split")
    released = manifest.get("released")
    context = {
        "version": manifest.get("tabsynth_version"), "created": manifest.get("created"),
        "model": model.get("name"), "model_params": ", ".join(f"{k}={v}" for k, v in model.get("params", {}).items()),
        "person_table": relations.root(), "split": split.get("method"),
        "released": {True: "RELEASED", False: "BLOCKED"}.get(released, "NOT RECORDED"),
        "released_class": {True: "pass", False: "fail"}.get(released, "unknown"),
        "verdict": _verdict(manifest, relations, synthetic), "gate": gate_view(manifest),
        "linked": [_row(m) for m in metrics if "." not in m["name"] and m["name"] in _linked_names(manifest)],
        "tables": [_table_view(name, relations, train, synthetic, schemas, metrics, shareable)
                   for name in relations.names],
    }
    env = jinja2.Environment(loader=jinja2.PackageLoader("tabsynth", "publish/templates"), autoescape=True)
    return env.get_template("dataset_report.html").render(**context)


def _linked_names(manifest: dict) -> set[str]:
    return set(section(manifest, "dataset").get("linked_checks", []))


def _row(metric: dict) -> dict:
    return {"name": metric["name"], "value": fmt(metric.get("value")), "description": metric.get("description", "")}


def _table_view(name: str, relations: Relations, train, synthetic, schemas, metrics: list[dict],
                shareable: bool) -> dict:
    """A table's section; in a DP release's shareable report no figure or plot of the real rows."""
    spec, schema = relations.tables[name], schemas[name]
    plotted = [] if shareable else [c for c in schema.modelled()
                                    if c.name in train[name] and c.name in synthetic[name]]
    return {"name": name, "real_rows": "withheld (a DP release)" if shareable else f"{len(train[name]):,}",
            "synthetic_rows": f"{len(synthetic[name]):,}",
            "primary_key": spec.primary_key, "order_by": spec.order_by,
            "foreign_keys": ", ".join(str(fk) for fk in spec.foreign_keys),
            "metrics": [_row(m) for m in metrics if m["name"].endswith(f".{name}")],
            "plots": [column_plot(c, train[name][c.name], synthetic[name][c.name])
                      for c in plotted[:MAX_PLOTS_PER_TABLE]]}


def _verdict(manifest: dict, relations: Relations, synthetic) -> str:
    gate = section(manifest, "gate")
    rules = [r for r in gate.get("rules", []) if isinstance(r, dict)]
    failed = [r for r in rules if not r.get("passed")]
    persons = len(synthetic[relations.root()])
    what = (f"{persons:,} synthetic persons in {len(relations.names)} linked tables, made by "
            f"{section(manifest, 'model').get('name')}")
    if manifest.get("released"):
        return f"Released: {what}. All {len(rules)} rules of policy {section(manifest, 'policy').get('name')!r} held."
    names = ", ".join(str(r.get("metric")) for r in failed)
    return f"Blocked: {what}. {len(failed)} of {len(rules)} rules failed ({names}); nothing was released."
