"""The facts and event-column domains of a per-person DP release, each person contributing at most one row to
every measurement.

The neighbouring datasets differ by one whole person: their root row and every row hanging from it. The root
table has one row per person, so its facts are measured as a single table's (`privacy.facts`). A child table
has any number of rows per person; there each person votes with ONE of their rows, chosen at random
independently of the data (`one_row_per_person`), so a child column's kind, dtype, nullability, categories and
bounds are measured once, for every position of the person table at the same time, with sensitivity one per
person, however many rows the person has. A person's other rows still reach the model, through DP-SGD over
person rows (`models.argn.private`), never through these measurements.

The measured facts and domains are then declared to the model (post-processing of DP outputs): it pays nothing
more for them, and every position of a child column gets the same kind, dtype and domain.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tabsynth.privacy.accounting import zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.facts import FACTS_SHARE, dp_schema
from tabsynth.privacy.preprocess import domain_mechanisms, fit_encoding
from tabsynth.table.codecs import OTHER, CategoryCodec
from tabsynth.table.schema import Column, Facts, Schema

DOMAINS_SHARE = 0.1  # of the ρ that (ε, δ/2) buys, spent on the domains of the child tables' columns
THRESHOLD_DELTA_SHARE = 0.2  # of δ, when some child column's category list is measured
SECONDS = "s"  # domains code dates as seconds since 1970 (`privacy.preprocess`)


def one_row_per_person(rows: pd.DataFrame, person_key: str, rng: np.random.Generator) -> pd.DataFrame:
    """Each person's one row, drawn uniformly from their rows (a person with none has none): adding or removing a
    person changes this frame by at most one row."""
    shuffled = rows.iloc[rng.permutation(len(rows))]
    return shuffled.drop_duplicates(person_key).sort_index()


def pay_for_person_facts(frames: Mapping[str, pd.DataFrame], declared: Mapping[str, Schema | None],
                         budget: Budget) -> tuple[dict[str, Schema], Budget, dict]:
    """Each frame's DP schema (`frames`: the root table and each child's one row per person), FACTS_SHARE of the
    ρ of (ε, δ/2) split equally between them; the budget with the charges in its prior, and the record."""
    rho = FACTS_SHARE * zcdp_rho(budget.epsilon, budget.delta / 2) / len(frames)
    schemas, charges, provenance = {}, [], {}
    for name, frame in frames.items():
        schemas[name], spent, provenance[name] = dp_schema(frame, declared.get(name), rho=rho, noise=budget.noise)
        charges += [dataclasses.replace(c, record=c.record | {"table": name}) for c in spent]
    record = {"unit": "person", "rho": sum(c.rho for c in charges), "share": FACTS_SHARE if charges else 0.0,
              "measured_columns": [f"{c.record['table']}.{c.record['what'][1]}" for c in charges],
              "sigma": charges[0].record["sigma"] if charges else None, "columns": provenance,
              "how": "the person table's rows as they are (one per person); a child table's columns on one row "
                     "per person, drawn at random: sensitivity one per person, measured once for every position",
              "row_count": "never stated: the model releases a noisy person count, and the synthetic persons "
                           "number that"}
    return schemas, dataclasses.replace(budget, prior=budget.prior + tuple(charges)), record


def pay_for_event_domains(frames: Mapping[str, pd.DataFrame], columns: Mapping[str, list[Column]],
                          budget: Budget) -> tuple[dict[str, list[Column]], Budget, dict]:
    """The columns of each child table (`frames`: one row per person) with their domains declared: the steward's,
    else measured with DP (`fit_encoding`: thresholded category counts, DP bounds), DOMAINS_SHARE of the ρ of
    (ε, δ/2) split equally between the mechanisms. Categories too rare to be released are left out (a value
    outside them is read as missing)."""
    uses = {name: sum(domain_mechanisms(c) for c in cols) for name, cols in columns.items()}
    lists = {name: sum(1 for c in cols if c.kind == "categorical" and domain_mechanisms(c))
             for name, cols in columns.items()}
    if not sum(uses.values()):
        return dict(columns), budget, {}
    rho = DOMAINS_SHARE * zcdp_rho(budget.epsilon, budget.delta / 2) / sum(uses.values())
    delta = THRESHOLD_DELTA_SHARE * budget.delta / max(sum(lists.values()), 1)
    out, charges, released = {}, [], {}
    for name, cols in columns.items():
        out[name] = cols
        if not uses[name]:
            continue
        measured = {c.name for c in cols if domain_mechanisms(c)}
        prepared = fit_encoding(frames[name], cols, rho=rho * uses[name], delta=delta * lists[name],
                                noise=budget.noise, binning="uniform", bins=2)
        out[name] = [dataclasses.replace(c, declared=_declared(c, codec))
                     for c, codec in zip(cols, prepared.encoding.codecs, strict=True)]
        charges += [dataclasses.replace(c, record=c.record | {"table": name}) for c in prepared.charges]
        released |= {f"{name}.{c.name}": _shown(c.declared) for c in out[name] if c.name in measured}
    record = {"unit": "person", "rho": sum(c.rho for c in charges), "delta": sum(c.delta for c in charges),
              "share": DOMAINS_SHARE, "released": released,
              "how": "one row per person, drawn at random; measured once and declared for every position"}
    return out, dataclasses.replace(budget, prior=budget.prior + tuple(charges)), record


def _declared(column: Column, codec) -> Facts:
    if isinstance(codec, CategoryCodec):
        return dataclasses.replace(column.declared, categories=tuple(v for v in codec.values if v != OTHER))
    low, high = float(codec.edges[0]), float(codec.edges[-1])
    if column.kind == "datetime":
        return dataclasses.replace(column.declared, min=pd.Timestamp(low, unit=SECONDS).isoformat(),
                                   max=pd.Timestamp(high, unit=SECONDS).isoformat())
    whole = column.decimals == 0
    return dataclasses.replace(column.declared, min=int(low) if whole else low, max=int(high) if whole else high)


def _shown(facts: Facts) -> dict:
    """A released domain for the manifest (DP outputs: public)."""
    if facts.categories is not None:
        return {"categories": [str(v) for v in facts.categories]}
    return {"min": facts.min, "max": facts.max}
