"""Publishing a release folder all at once, or writing only the blocked report beside it."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import pandas as pd

from tabsynth.errors import ReleaseBlocked
from tabsynth.io.atomic import staged_directory
from tabsynth.io.files import file_sha256, write_table
from tabsynth.publish import manifest as manifest_lib
from tabsynth.publish.gate import Verdict
from tabsynth.publish.report import write_report
from tabsynth.table.schema import Schema

MANIFEST = "manifest.json"
REPORT = "report.html"
INTERNAL_REPORT = f"{manifest_lib.INTERNAL_DIR}/report.html"


def publish(options, manifest: dict, train: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
            internal: dict | None = None) -> Path:
    """Data, report and manifest (and a DP release's internal assessment) appear together (staged, then renamed
    into place) or not at all."""
    data_name = f"synthetic.{options.fmt}"
    formats = schema.datetime_formats()
    with staged_directory(Path(options.out), overwrite=options.overwrite) as staging:
        write_table(synthetic, staging / data_name, options.fmt, formats)
        finish_folder(staging, data_name, manifest, train, synthetic, schema, len(synthetic), internal)
    return Path(options.out)


def finish_folder(staging: Path, data_name: str, manifest: dict, train: pd.DataFrame, synthetic: pd.DataFrame,
                  schema: Schema, rows: int, internal: dict | None = None) -> None:
    """With the data file already in `staging`: record its hash, then write the report and the manifest. A DP
    release (`internal` given) also gets internal/: the assessment and a full report, for internal review only;
    the manifest names that folder but hashes none of it (the assessment is bound to the manifest instead)."""
    manifest["outputs"] = {data_name: {"sha256": file_sha256(staging / data_name), "rows": rows}}
    write_report(staging / REPORT, manifest, train, synthetic, schema)
    if internal is not None:
        (staging / manifest_lib.INTERNAL_DIR).mkdir()
        write_report(staging / INTERNAL_REPORT, manifest, train, synthetic, schema, internal=internal)
        internal = {**internal, "files": {INTERNAL_REPORT: {"sha256": file_sha256(staging / INTERNAL_REPORT)}}}
    manifest["outputs"][REPORT] = {"sha256": file_sha256(staging / REPORT)}
    manifest_lib.write(staging / MANIFEST, manifest)
    if internal is not None:
        manifest_lib.write_assessment(staging, internal, file_sha256(staging / MANIFEST))


def publish_with_table(options, manifest: dict, train: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
                       sink, source, internal: dict | None = None) -> Path:
    """The folder and the --out-table table together: the table is created and filled in one transaction, the
    folder is published inside it, and the transaction commits only after the folder is in place. A failed folder
    thus rolls the table back; if the commit itself fails (rare: the server went away), the new folder is removed
    again, so neither is left without the other. A blocked release never gets here and writes nothing to the
    database."""
    from tabsynth.io import sql_sink

    formats = schema.datetime_formats()
    table = sql_sink.output_table(sink, synthetic, formats, source)
    manifest["out_table"] = sql_sink.sink_record(sink, table, len(synthetic))
    published = None
    try:
        with sql_sink.table_transaction(sink, table, synthetic):
            published = publish(options, manifest, train, synthetic, schema, internal)
    except BaseException:
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise
    return published


def block(options, manifest: dict, train: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
          verdict: Verdict, internal: dict | None = None, hints: Sequence[str] = ()) -> NoReturn:
    """Nothing is released; the reviewer still gets the report explaining why, beside the output path (for a DP
    release, the internal view: it is never published)."""
    report_path = blocked_report_path(Path(options.out))
    write_report(report_path, manifest, train, synthetic, schema, internal=internal)
    raise_blocked(manifest["policy"]["name"], verdict, report_path, hints=hints)


def blocked_report_path(out: Path) -> Path:
    return out.with_name(out.name + ".blocked.html")


def raise_blocked(policy_name: str, verdict: Verdict, report_path: Path | None, what: str = "release",
                  hints: Sequence[str] = ()) -> NoReturn:
    """One line per failed rule, then what is likely to pass each family of them (`hints`, for a release)."""
    lines = [f"{what} blocked by policy {policy_name!r}: {o.line()}" for o in verdict.failures()]
    lines += [f"to try: {hint}" for hint in hints]
    where = f"; see the report at {report_path}" if report_path else ""
    raise ReleaseBlocked(*lines, f"nothing was released{where}", report_path=report_path)
