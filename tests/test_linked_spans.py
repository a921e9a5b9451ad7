"""Long sequences in a fixed window (a plane's flights over one year): the rows generated one gap at a time must
not drift past the time real sequences cover."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tabsynth.models.linked import LinkedSynthesizer
from tabsynth.models.linked.layout import OrderGaps, span_name
from tabsynth.table.dataset import ForeignKey, Relations, TableSpec
from tabsynth.table.infer import infer_schema
from tabsynth.table.schema import Column

TINY = {"epochs": 8, "hidden": 32, "embedding": 8, "batch_size": 64, "threads": 1, "device": "cpu"}
YEAR_START, YEAR_END = pd.Timestamp("2013-01-01"), pd.Timestamp("2013-12-31 23:00")
RELATIONS = Relations({
    "planes": TableSpec("planes", primary_key="tailnum"),
    "flights": TableSpec("flights", primary_key="flight_id", order_by="time_hour",
                         foreign_keys=(ForeignKey("tailnum", "planes", "tailnum"),))})


def planes_and_flights(planes: int = 60, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Each plane flies 20-80 times from early January to December 2013, after heavy-tailed gaps (hours to
    months) that share out the time it is in service."""
    rng = np.random.default_rng(seed)
    fleet = pd.DataFrame({"tailnum": [f"N{i:03d}" for i in range(planes)],
                          "seats": rng.choice([55, 95, 149, 178, 330], planes)})
    rows = []
    for tail in fleet["tailnum"]:
        shares = rng.lognormal(0, 1.2, rng.integers(20, 81))
        hours = np.floor(np.cumsum(shares) / shares.sum() * rng.uniform(300, 360) * 24)
        times = YEAR_START + pd.to_timedelta(hours + rng.integers(0, 120), unit="h")
        rows += [(tail, t, rng.choice(["EWR", "JFK", "LGA"])) for t in times]
    flights = pd.DataFrame(rows, columns=["tailnum", "time_hour", "origin"])
    flights.insert(0, "flight_id", np.arange(len(flights)))
    return {"planes": fleet, "flights": flights}


def test_each_sequences_gaps_are_spread_over_its_span():
    order = OrderGaps(Column("t", "numerical", "float64", decimals=0), 1.0)
    positions = np.array([0, 1, 2, 0, 1, 2, 0, 0, 1])
    gaps = np.array([0, 1, 3, 0, 0, 0, 0, 0, 5.0])
    spans = np.array([8, 8, 8, 6, 6, 6, 0, np.nan, np.nan])
    spread = order.spread(gaps, positions, spans)
    np.testing.assert_allclose(spread, [0, 2, 6, 0, 3, 3, 0, 0, 5])  # scaled; even steps; as drawn, no span


def test_long_sequences_keep_to_the_time_real_ones_cover():
    frames = planes_and_flights()
    schemas = {name: infer_schema(frame) for name, frame in frames.items()}
    schemas["flights"] = schemas["flights"].replace("tailnum", kind="id")
    model = LinkedSynthesizer("argn", **TINY).fit(frames, RELATIONS, schemas, rng=0)
    assert span_name("flights") in model.root_schema_.names
    flights = model.sample(rng=1)["flights"]
    inside = (flights["time_hour"] <= YEAR_END).mean()
    assert inside > 0.97  # measured 0.987-0.995 over three seeds; gaps drawn one by one: 0.88-0.91
