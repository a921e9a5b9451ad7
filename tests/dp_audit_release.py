"""The end-to-end DP audits' set-up, shared by tests/test_dp_e2e_audit.py and benchmarks/dp_audit_e2e.py.

A small public-layout table D (age, sex, stage), canaries that make D' = D + one distinctive row, the attacker
events of each canary, schema files a steward could write without the data, `release_runner` (one call = one
`tabsynth.run.release.release` into a temporary folder, read back as the attacker reads it), and the mutants the
audits must catch: noise removed, a fact read unpaid (a schema file inferred from each private table), and a
seeded noise stream. A mutant is a code change applied for the duration of a `with` block.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.errors import TabsynthError
from tabsynth.io.files import read_table
from tabsynth.privacy import audit_e2e as audit
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release
from tabsynth.table.infer import infer_schema
from tabsynth.table.schema import Facts

EPSILON, DELTA = 1.0, 1e-9  # the defaults of `tabsynth release`
# tiny networks and one epoch: the audits count events, they do not need good models
FAST_PARAMS = {
    "dp-marginal": {"iterations": 20, "final_iterations": 100},
    "dp-ctgan": {"epochs": 1, "batch_size": 50, "embedding_dim": 4, "generator_dim": [8], "discriminator_dim": [8]},
    "dp-argn": {"epochs": 1, "batch_size": 50, "embedding": 2, "hidden": 8, "threads": 1},
}
PUBLIC_FACTS = {"age": Facts(min=0, max=120), "sex": Facts(categories=("F", "M")),
                "stage": Facts(categories=("I", "II", "III", "IV"))}  # nobody in D is at stage IV
SEED = 7
# a small holdout, so that under a seeded split the canary is almost surely a training row
HOLDOUT_SHARE = 0.05


def base_table(rows: int = 80, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(20, 80, rows), "sex": rng.choice(["F", "M"], rows),
                         "stage": rng.choice(["I", "II", "III"], rows, p=[0.5, 0.3, 0.2])})


@dataclass(frozen=True)
class Variant:
    """One distinctive row, the column it tests (left out of the schema file, so the release measures its
    facts), and the events an attacker checks, declared before any run."""

    name: str
    column: str | None  # None: every column is declared
    canary: dict
    events: dict[str, audit.Event]

    def tables(self, rows: int = 80) -> tuple[pd.DataFrame, pd.DataFrame]:
        without = base_table(rows)
        return without, pd.concat([without, pd.DataFrame([self.canary])], ignore_index=True)


def _events(column: str, **extra: audit.Event) -> dict[str, audit.Event]:
    return {"refused": audit.refused, f"{column} float": audit.float_column(column), **extra}


VARIANTS = {
    "nan": Variant("nan", "age", {"age": np.nan, "sex": "F", "stage": "I"},
                   _events("age", **{"age missing": audit.has_missing("age")})),
    "fraction": Variant("fraction", "age", {"age": 40.5, "sex": "F", "stage": "I"},
                        _events("age", **{"age non-integer": audit.non_integer("age")})),
    "new category": Variant("new category", "stage", {"age": 40, "sex": "F", "stage": "Zzyzx"},
                            {"refused": audit.refused, "Zzyzx appears": audit.category_appears("stage", "Zzyzx")}),
    "extreme": Variant("extreme", "age", {"age": 10**6, "sex": "F", "stage": "I"},
                       {"refused": audit.refused, "age above 100,000": audit.beyond("age", 1e5)}),
    "declared rare": Variant("declared rare", None, {"age": 40, "sex": "F", "stage": "IV"},
                             {"refused": audit.refused, "IV appears": audit.category_appears("stage", "IV")}),
}


def public_schema(folder: Path, undeclared: str | None) -> Path:
    """What a steward writes without looking at the private rows: the layout of a public example table, with
    public domains declared, and the column under test left out (its facts are then the release's to measure)."""
    schema = infer_schema(base_table(200, seed=99))
    for name, facts in PUBLIC_FACTS.items():
        schema = schema.replace(name, declared=facts)
    if undeclared is not None:
        schema = type(schema)(tuple(c for c in schema.columns if c.name != undeclared), schema.version)
    path = folder / f"public-{undeclared or 'all'}.yaml"
    schema.save(path)
    return path


def inferred_schema(folder: Path) -> Callable[[pd.DataFrame], Path]:
    """Mutant (b), a fact read unpaid: the steward saves `infer_schema` of each private table and passes it as
    the schema file, so the facts the release treats as declared were read from the rows."""
    def schema_for(table: pd.DataFrame) -> Path:
        path = Path(tempfile.mkdtemp(dir=folder)) / "inferred.yaml"
        infer_schema(table).save(path)
        return path
    return schema_for


def release_runner(folder: Path, model: str, *, schema: Path | Callable[[pd.DataFrame], Path] | None = None,
                   seed: int | None = None, epsilon: float = EPSILON, policy: str | None = None) -> audit.Release:
    """`release(table) -> Outcome`: one `tabsynth release` of `table` as CSV, as an attacker sees it: the
    one-line refusal (a blocked release included), or the published data file (Parquet, dtypes kept) and
    manifest.json. `policy` defaults to one whose only rule is the ε spent, with a small holdout."""
    if policy is None:
        policy = str(folder / "dp-only.yaml")
        Path(policy).write_text(f"name: dp-only\nholdout_share: {HOLDOUT_SHARE}\n"
                                f"rules:\n  - {{metric: dp_epsilon, op: '<=', threshold: {epsilon}}}\n")

    def run(table: pd.DataFrame) -> audit.Outcome:
        work = Path(tempfile.mkdtemp(dir=folder))  # its name is also the ledger source: runs share no budget cap
        try:
            data = work / "table.csv"
            table.to_csv(data, index=False)
            options = ReleaseOptions(
                data=data, out=work / "out", model=model, epsilon=epsilon, delta=DELTA, seed=seed, policy=policy,
                model_params=FAST_PARAMS[model], source_id=work.name, ledger=f"sqlite:///{folder / 'ledger.db'}",
                schema=schema(table) if callable(schema) else schema)
            try:
                release(options)
            except TabsynthError as error:
                return audit.Outcome(error=str(error).splitlines()[0] if str(error) else type(error).__name__)
            manifest = json.loads((work / "out" / "manifest.json").read_text())
            return audit.Outcome(data=read_table(work / "out" / "synthetic.parquet"), manifest=manifest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return run


# ---- mutants --------------------------------------------------------------------------------------------

NOISY_MODULES = ("tabsynth.privacy.mechanisms", "tabsynth.privacy.preprocess", "tabsynth.privacy.bounds",
                 "tabsynth.privacy.facts", "tabsynth.privacy.dpsgd", "tabsynth.models.aim",
                 "tabsynth.models.dp_marginal", "tabsynth.models.dp_ctgan", "tabsynth.models.dp_gan_networks",
                 "tabsynth.models.argn.private", "tabsynth.models.argn.training")


def _no_gaussian(sigma, size, source):
    return np.zeros(tuple(np.atleast_1d(size)), dtype=np.int64)


def _no_gumbel(scores, epsilon, sensitivity, source):
    return int(np.argmax(np.asarray(scores, dtype=np.float64)))


def _no_dpsgd_noise(source, std, like):
    import torch

    return torch.zeros_like(like)


@contextlib.contextmanager
def noise_removed() -> Iterator[None]:
    """Mutant (a): every DP noise draw is zero (discrete Gaussian counts, the exponential mechanism's Gumbel
    noise, DP-SGD's Gaussian), wherever a module holds the function."""
    for name in NOISY_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    mechanisms, dpsgd = sys.modules["tabsynth.privacy.mechanisms"], sys.modules["tabsynth.privacy.dpsgd"]
    originals = (mechanisms.discrete_gaussian, mechanisms.exponential_mechanism, dpsgd.gaussian_noise)
    _swap(dict(zip(originals, (_no_gaussian, _no_gumbel, _no_dpsgd_noise), strict=True)))
    try:
        yield
    finally:  # also mends modules first imported inside the block, which bound the broken functions
        _swap({broken: original for original, broken in
               zip(originals, (_no_gaussian, _no_gumbel, _no_dpsgd_noise), strict=True)})


def _swap(replacements: dict) -> None:
    """In every loaded tabsynth module, each attribute that is a key of `replacements` becomes its value."""
    by_id = {id(old): new for old, new in replacements.items()}
    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("tabsynth."):
            for attribute, value in list(vars(module).items()):
                if id(value) in by_id:
                    setattr(module, attribute, by_id[id(value)])


@contextlib.contextmanager
def seeded_noise(seed: int = 1234) -> Iterator[None]:
    """Mutant (c): `RandomSource.system()` hands out a stream seeded with a fixed number (a guessable seed)."""
    original = RandomSource.__dict__["system"]
    RandomSource.system = classmethod(lambda cls: cls.seeded(seed))
    try:
        yield
    finally:
        RandomSource.system = original


def reference_events(run: audit.Release, table: pd.DataFrame) -> dict[str, audit.Event]:
    """The attacker's tests when the non-private seed is known (the manifest states it) and the noise is
    guessable or absent: the output, or its row count, equals that of one earlier release of D (not counted)."""
    reference = run(table)
    return {"same rows as reference": audit.same_output_as(reference),
            "same row count as reference": audit.same_row_count_as(reference)}
