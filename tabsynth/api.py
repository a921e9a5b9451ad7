"""The Python API: DataFrames in and out, through the same plan as the command line.

    import tabsynth
    schema = tabsynth.inspect(df)                              # kinds, PII, keys: check before fitting
    result = tabsynth.release(df, out="rel", policy="default")  # fit, sample, validate, gate, publish
    result.synthetic.head(); result.report                     # the report shows inline in Jupyter

`release` runs the gate, debits the privacy ledger for DP models, fakes PII and regenerates keys exactly as
`tabsynth release` does; a blocked release raises `ReleaseBlocked` and writes nothing. `Synthesizer` fits and
samples in memory without a gate (as `tabsynth fit` / `tabsynth sample`); check what it makes with `validate`
against rows it never saw before sharing it.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.errors import InputError
from tabsynth.publish import review
from tabsynth.run import fit as run_fit
from tabsynth.run import sample as run_sample
from tabsynth.run.linked_release import release_dataset
from tabsynth.run.options import AUTO, DatasetOptions, FitOptions, Progress, ReleaseOptions, ValidateOptions, Verdict
from tabsynth.run.plan import inspect_source
from tabsynth.run.release import release as run_release
from tabsynth.run.validate import validate_tables
from tabsynth.table.dataset import Relations, read_relations, relations_from_dict
from tabsynth.table.schema import Schema

__all__ = ["Release", "Report", "Synthesizer", "Verdict", "inspect", "release", "validate"]

Data = pd.DataFrame | str | Path  # a DataFrame, a CSV/Parquet path, or a database URL (with table= or query=)


def inspect(data: Data, *, schema: str | Path | Schema | None = None, table: str | None = None,
            query: str | None = None) -> Schema:
    """The schema tabsynth infers for `data` (kinds, dtypes, PII by name and value, keys, datetime formats),
    over a `schema` you declared. Edit it, `.save("schema.yaml")`, and pass the file to `release`."""
    return inspect_source(data, _schema(schema), table, query)


class Synthesizer:
    """A model fitted in memory: `Synthesizer("argn", epochs=50).fit(df).sample(1000)`.

    `model` is a name from `tabsynth models` (or "auto": the policy and the table decide); keyword parameters
    go to the model. `fit` treats PII, keys and (for a DP model) the ledger and the schema facts as `release`
    does; nothing here is gated."""

    def __init__(self, model: str = AUTO, **params) -> None:
        self.model = model
        self.params = params

    def fit(self, data: Data, *, schema: str | Path | None = None, epsilon: float | None = None,
            delta: float | None = None, policy: str = "default", seed: int | None = None,
            source_id: str | None = None, ledger: str | None = None, table: str | None = None,
            query: str | None = None, target: str | None = None,
            progress: bool | Progress = True) -> Synthesizer:
        """Fit on every row of `data`. A DP model (or `epsilon`) debits the privacy ledger first (`ledger`: a
        database URL, default $TABSYNTH_LEDGER or ~/.tabsynth/ledger.db). `target` (default: the policy's) names
        a label column a DP model favours, as in `release`. `progress`: a bar in a terminal or Jupyter, False for
        none, or a callback (what, share done)."""
        if self.params and self.model == AUTO:
            raise InputError("model parameters need a model name: Synthesizer('argn', epochs=50)")
        options = FitOptions(data=data, out=None, model=self.model, schema=_path(schema), seed=seed,
                             epsilon=epsilon, delta=delta, policy=policy, source_id=source_id, ledger=ledger,
                             model_params=dict(self.params), table=table, query=query, target=target)
        with _progress(progress) as say:
            self._set(run_fit.fit_model(options, say))
        return self

    def sample(self, n: int | None = None, *, where: str | None = None, rebalance: str | None = None,
               seed: int | None = None) -> pd.DataFrame:
        """`n` synthetic rows (a DP model's default: its noisy row count). `where`: a condition every row meets,
        e.g. "age >= 65 and sex == 'F'"; `rebalance`: "COLUMN=VALUE=SHARE", e.g. "default=Yes=0.3"."""
        fitted = self._fitted()
        if n is None and not fitted.private:
            raise InputError("give n, the number of rows to sample")
        return run_sample.draw(fitted.model, fitted.schema, fitted.default_rows(n), np.random.default_rng(seed),
                               where=where, rebalance=rebalance, avoid=fitted.real_pii)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """A model folder (JSON + arrays, no pickle), written atomically; `tabsynth sample` reads it too."""
        run_fit.save_folder(self._fitted(), Path(path), overwrite)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Synthesizer:
        """A model folder saved by `save` or `tabsynth fit`."""
        fitted = run_fit.load_folder(Path(path))
        synthesizer = cls(fitted.model.name)
        synthesizer._set(fitted)
        return synthesizer

    def _set(self, fitted: run_fit.Fitted) -> None:
        """Fitted attributes end in `_`; the real PII values its fakes avoid stay in memory, never saved."""
        self._state = fitted
        self.model_, self.schema_, self.fit_record_ = fitted.model, fitted.schema, fitted.record
        self.privacy_ = fitted.record.get("privacy") if fitted.private else None

    def _fitted(self) -> run_fit.Fitted:
        if not hasattr(self, "_state"):
            raise InputError("fit the synthesizer first (or Synthesizer.load a saved one)")
        return self._state

    def __repr__(self) -> str:
        state = "fitted" if hasattr(self, "_state") else "not fitted"
        return f"Synthesizer({self.model!r}{''.join(f', {k}={v!r}' for k, v in self.params.items())}) [{state}]"


@dataclass
class Report:
    """A release's report.html; shows inline in Jupyter."""

    path: Path

    def _repr_html_(self) -> str:
        document = html.escape(self.path.read_text(encoding="utf-8"), quote=True)
        return f'<iframe srcdoc="{document}" style="width:100%;height:640px;border:1px solid #ccc"></iframe>'


@dataclass
class Release:
    """A published release: its folder, the gate's verdict, the manifest, and the synthetic rows."""

    out: Path
    verdict: Verdict
    manifest: dict
    synthetic: pd.DataFrame | None = field(repr=False)
    tables: dict[str, pd.DataFrame] | None = field(default=None, repr=False)  # linked tables, by name

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def metrics(self) -> dict[str, float]:
        """Every metric the gate saw, by name (a DP release's manifest keeps only DP or public ones)."""
        return {m["name"]: m["value"] for m in self.manifest.get("metrics", [])}

    @property
    def report(self) -> Report:
        return Report(self.out / "report.html")

    @property
    def files(self) -> list[Path]:
        return sorted(p for p in self.out.rglob("*") if p.is_file())

    def verify(self) -> dict:
        """Every file against the manifest's SHA-256 (as `tabsynth verify`); raises on any change."""
        return review.verify(self.out)

    def approve(self, reviewer: str, note: str = "") -> dict:
        """A reviewer's sign-off bound to the manifest's hash (as `tabsynth approve`); the releaser may not."""
        return review.approve(self.out, reviewer, note)

    def export(self, dest: str | Path, *, overwrite: bool = False) -> Path:
        """Copy the synthetic file out with its public DATA_CARD.md (as `tabsynth export`), refused without a
        sign-off the policy requires."""
        return review.export(self.out, Path(dest), overwrite=overwrite)

    @classmethod
    def open(cls, folder: str | Path) -> Release:
        """A release folder made earlier, verified, for a reviewer (its synthetic rows are not read)."""
        manifest = review.verify(Path(folder))
        return cls(Path(folder), Verdict.from_dict(manifest["gate"]), manifest, None)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(r.metric)} {html.escape(r.op)} {r.threshold:g}</td>"
                       f"<td>{r.value:.4g}</td><td>{'PASS' if r.passed else 'FAIL'}</td></tr>"
                       for r in self.verdict.rules)
        return (f"<p>released to <code>{html.escape(str(self.out))}</code> under policy "
                f"{html.escape(self.manifest['policy']['name'])}</p><table><tr><th>rule</th><th>value</th>"
                f"<th>result</th></tr>{rows}</table>")


def release(data: Data | Mapping[str, pd.DataFrame], out: str | Path, *, model: str = AUTO, policy: str = "default",
            epsilon: float | None = None, delta: float | None = None, rows: int | None = None,
            seed: int | None = None, schema: str | Path | None = None, constraints: str | Path | None = None,
            target: str | None = None, sensitive: tuple[str, ...] = (), fmt: str = "parquet",
            overwrite: bool = False, source_id: str | None = None, ledger: str | None = None,
            engine: str = "memory", params: dict | None = None, table: str | None = None,
            query: str | None = None, progress: bool | Progress = True, out_table: str | None = None,
            out_url: str | None = None, replace_table: bool = False,
            relations: Relations | dict | str | Path | None = None) -> Release:
    """Fit, sample, validate and, if the policy's gate passes, publish `out` (synthetic data, report.html,
    manifest.json) atomically. Raises `ReleaseBlocked` (nothing written but OUT.blocked.html) when it does not.
    The options are those of `tabsynth release --help`; `progress`: a bar in a terminal or Jupyter, False for
    none, or a callback (what, share done). `out_table`, `out_url`, `replace_table`: also write the rows to a
    database, as --out-table, --out-url and --replace do.

    Linked tables: `data` is `{"patients": df1, "visits": df2}` and `relations` their keys, as a dataset YAML's
    path or its content (`{"tables": {"visits": {"primary_key": "visit_id", "order_by": "date", "foreign_keys":
    [{"column": "patient_id", "references": "patients.id"}]}, ...}}`); `rows` then counts persons. The result's
    `tables` holds the synthetic tables. With `epsilon` (or `model="dp-argn"`, or a policy requiring DP) the release
    is differentially private per person (README, "Linked tables")."""
    if isinstance(data, Mapping) or relations is not None:
        return _release_dataset(data, relations, DatasetOptions(
            relations=None, out=Path(out), model=model, rows=rows, seed=seed, policy=policy, fmt=fmt,
            overwrite=overwrite, model_params=dict(params or {}), epsilon=epsilon, delta=delta, target=target,
            out_table=out_table, out_url=out_url, replace=replace_table, source_id=source_id, ledger=ledger),
            progress)
    options = ReleaseOptions(
        data=data, out=Path(out), model=model, rows=rows, schema=_path(schema), seed=seed, policy=policy, fmt=fmt,
        overwrite=overwrite, model_params=dict(params or {}), epsilon=epsilon, delta=delta, target=target,
        sensitive=tuple(sensitive), constraints=_path(constraints), source_id=source_id, ledger=ledger,
        table=table, query=query, engine=engine, out_table=out_table, out_url=out_url, replace=replace_table)
    with _progress(progress) as say:
        result = run_release(options, say)
    return Release(result.out, result.verdict, result.manifest, result.synthetic)


def _release_dataset(data, relations, options: DatasetOptions, progress: bool | Progress) -> Release:
    if relations is None:
        raise InputError("linked tables need relations=: a dataset YAML's path, or its content as a dict")
    if isinstance(relations, str | Path):
        relations = read_relations(relations)
    elif not isinstance(relations, Relations):
        relations = relations_from_dict(relations, where="relations")
    frames = dict(data) if isinstance(data, Mapping) else None
    with _progress(progress) as say:
        result = release_dataset(replace(options, relations=relations, frames=frames), say)
    return Release(result.out, result.verdict, result.manifest, None, result.tables)


def validate(real: pd.DataFrame | str | Path, synthetic: pd.DataFrame | str | Path, *,
             holdout: pd.DataFrame | str | Path | None = None, policy: str = "default",
             schema: str | Path | None = None, target: str | None = None, sensitive: tuple[str, ...] = (),
             constraints: str | Path | None = None, report: str | Path | None = None) -> Verdict:
    """Judge a synthetic table made anywhere against the real one under a policy (privacy risk, utility, PII
    leaks, constraints). Returns the verdict, passed or not; `report`: also write an HTML report there. Give a
    `holdout` of real rows the generator never saw, or the privacy checks that need one cannot run."""
    options = ValidateOptions(real=real, synthetic=synthetic, policy=policy, holdout=holdout, schema=_path(schema),
                              target=target, sensitive=tuple(sensitive), constraints=_path(constraints),
                              report=_path(report))
    return validate_tables(options, raise_blocked=False)[0]


@contextmanager
def _progress(progress: bool | Progress) -> Iterator[Progress | None]:
    """The callback the workflow reports to: the caller's, none, or a bar drawn where someone can see it."""
    if callable(progress) or not progress:
        yield progress or None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    console = Console(stderr=True)
    with Bar(TextColumn("{task.description:<30}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
             TimeElapsedColumn(), console=console, transient=True,
             disable=not (console.is_terminal or (console.is_jupyter and _has_widgets()))) as bar:
        task = bar.add_task("starting", total=1.0)
        yield lambda what, done: bar.update(task, description=what, completed=done)


def _has_widgets() -> bool:
    """Rich draws in Jupyter through ipywidgets; without them it would warn at every update."""
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def _path(value) -> Path | None:
    return None if value is None else Path(value)


def _schema(value) -> Schema | None:
    if value is None or isinstance(value, Schema):
        return value
    return Schema.load(value)
