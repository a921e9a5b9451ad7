"""`check_synthesizer`: the model contract as one check every registered model must pass.

After scikit-learn's `check_estimator`: a new model is done when this passes for it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from tabsynth.models.base import create_model, is_private, load_model, save_model
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.schema import Schema

# A spend equal to the budget may come back from the accounting a few ulps above it; more is an overspend.
SPEND_ROUNDING = 1e-9


def contract_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small mixed table with every modelled kind, missing values and a dependence between columns."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    return pd.DataFrame({
        "age": age,
        "income": np.where(rng.random(n) < 0.1, np.nan, np.round(age * 900 + rng.normal(0, 5000, n), 2)),
        "grade": rng.choice(["A", "B", "C", None], n, p=[0.5, 0.3, 0.15, 0.05]),
        "smoker": rng.random(n) < 0.3,
        "visits": rng.poisson(2, n),
        "admitted": pd.Timestamp("2020-01-01", tz="Europe/Paris") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
    })


def fraud_table(n: int = 10_000, seed: int = 0, fraud_share: float = 0.03) -> pd.DataFrame:
    """Card payments with a rare 0/1 label whose rows differ: frauds are larger, at night and mostly online."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < fraud_share
    channels = np.array(["online", "atm", "shop"])
    return pd.DataFrame({
        "amount": np.where(fraud, rng.lognormal(np.log(430), 0.6, n), rng.lognormal(np.log(45), 1.0, n)).round(2),
        "hour": np.where(fraud, rng.integers(0, 6, n), rng.integers(0, 24, n)),
        "channel": np.where(fraud, rng.choice(channels, n, p=[0.7, 0.2, 0.1]),
                            rng.choice(channels, n, p=[0.2, 0.1, 0.7])),
        "age": rng.integers(18, 90, n),
        "is_fraud": fraud.astype(int),
    })


def edge_tables(seed: int = 0) -> dict[str, pd.DataFrame]:
    """Small tables that break careless models, each named by its trap."""
    rows = 80
    base = contract_table(rows, seed)[["age", "grade", "smoker"]]
    return {
        "all-missing column": base.assign(note=pd.Series([None] * rows, dtype=object)),
        "constant column": base.assign(version=3),
        "one category": base.assign(ward="icu"),
        "12 rows": contract_table(12, seed),
    }


def check_synthesizer(name: str, params: dict | None = None, table: pd.DataFrame | None = None) -> None:
    """Raise AssertionError naming the broken promise (and the table it broke on), or return None.

    The model is checked on `table` (default: `contract_table()`) and then once on each of `edge_tables()`:
    fit returns self and sets fitted attributes ending in '_', samples follow the schema, a fixed seed repeats
    its rows, the model survives save/load without pickles, and a DP model records a spend within the budget
    it was handed. On the first table a model that is not DP is also fitted twice under one seed and must
    sample the same rows (a DP model's noise comes from the OS, never from a seed)."""
    tables = {"contract table": contract_table() if table is None else table, **edge_tables()}
    for i, (what, raw) in enumerate(tables.items()):
        try:
            _check_on(name, params or {}, raw, refit=i == 0)
        except AssertionError as broken:
            raise AssertionError(f"{name} on the {what}: {broken}") from None


def _check_on(name: str, params: dict, raw: pd.DataFrame, refit: bool) -> None:
    schema = infer_schema(raw)
    data = conform(raw, schema)
    model = create_model(name, **params)
    dp = is_private(model)
    budget = Budget(1.0, 1e-6, RandomSource.seeded(1)) if dp else None
    assert model.fit(data, schema, budget=budget, rng=1) is model, "fit must return self"
    assert [k for k in vars(model) if k.endswith("_")], "fitted attributes must end in '_'"
    if dp:
        check_spend(model, budget)
    sample = model.sample(200, rng=2)
    check_sample(sample, data, schema, 200, dp=dp)
    assert model.sample(200, rng=2).equals(sample), "the same seed must give the same rows"
    assert not model.sample(200, rng=3).equals(sample), "different seeds must give different rows"
    assert len(model.sample(0, rng=2)) == 0, "sampling zero rows must give an empty table"
    if refit and not dp:
        again = create_model(name, **params).fit(data, schema, rng=1)
        assert again.sample(200, rng=2).equals(sample), "fitting again under the same seed must give the same model"
    with tempfile.TemporaryDirectory() as folder:
        save_model(model, schema, folder)
        assert not list(Path(folder).glob("*.pkl")), "model folders hold no pickles"
        loaded, loaded_schema = load_model(folder)
    saved_schema = Schema.from_dict(schema.public()) if dp else schema  # DP folders hold no observed facts
    assert loaded_schema == saved_schema, "the schema must survive save/load"
    assert loaded.sample(200, rng=2).equals(sample), "a loaded model must sample the same rows"
    if dp:
        assert _spend(loaded) == _spend(model), "the recorded spend must survive save/load"


def check_spend(model, budget: Budget) -> None:
    """A DP model records what it spent in `privacy_` ('epsilon', 'delta'), never more than its budget."""
    epsilon, delta = _spend(model)
    assert epsilon <= budget.epsilon * (1 + SPEND_ROUNDING), f"spent epsilon {epsilon:g} > budget {budget.epsilon:g}"
    assert delta <= budget.delta * (1 + SPEND_ROUNDING), f"spent delta {delta:g} > budget {budget.delta:g}"


def _spend(model) -> tuple[float, float]:
    spent = getattr(model, "privacy_", None)
    assert isinstance(spent, dict) and {"epsilon", "delta"} <= spent.keys(), \
        "a DP model must record its spend in privacy_['epsilon'] and privacy_['delta']"
    return float(spent["epsilon"]), float(spent["delta"])


def check_sample(sample: pd.DataFrame, data: pd.DataFrame, schema: Schema, n: int, dp: bool = False) -> None:
    """With `dp`, values are checked against declared facts only (a DP model may go beyond the private
    min/max) and missing values may appear in any column."""
    modelled = schema.modelled()
    assert list(sample.columns) == [c.name for c in modelled], "sample has exactly the modelled columns, in order"
    assert len(sample) == n, f"asked for {n} rows, got {len(sample)}"
    for column in modelled:
        real, synth = data[column.name], sample[column.name]
        assert str(synth.dtype) == str(real.dtype), f"{column.name}: dtype {synth.dtype} != {real.dtype}"
        bounds = column.declared if dp else column.bounds()
        if bounds.categories is not None:
            outside = set(synth.dropna()) - set(bounds.categories)
            assert not outside, f"{column.name}: values outside the categories: {sorted(map(str, outside))[:5]}"
        elif column.kind == "numerical" and synth.notna().any():
            low = -np.inf if bounds.min is None else bounds.min
            high = np.inf if bounds.max is None else bounds.max
            assert synth.min() >= low and synth.max() <= high, f"{column.name}: outside bounds"
        if column.missing == 0 and not dp:
            assert synth.notna().all(), f"{column.name}: missing values where the real column has none"


def patients_and_visits(n: int = 150, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Linked tables with structure: older patients visit more often; visits ordered by date, 40 days apart on
    average."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 90, n)
    patients = pd.DataFrame({"patient_id": np.arange(1000, 1000 + n), "age": age,
                             "sex": rng.choice(["F", "M"], n), "smoker": rng.choice(["yes", "no"], n, p=[0.3, 0.7]),
                             "weight": rng.normal(75, 12, n).round(1)})
    counts = 1 + rng.poisson((age - 15) / 20)
    owner = np.repeat(patients["patient_id"].to_numpy(), counts)
    gaps = rng.exponential(40, len(owner)).round()
    start = pd.Timestamp("2020-01-01")
    days = pd.Series(gaps).groupby(owner).cumsum().to_numpy()
    visits = pd.DataFrame({"visit_id": np.arange(len(owner)) + 50_000, "patient_id": owner,
                           "visit_date": start + pd.to_timedelta(days, unit="D"),
                           "ward": rng.choice(["cardio", "ortho", "general"], len(owner)),
                           "cost": rng.gamma(2.0, 300.0, len(owner)).round(2)})
    return {"patients": patients, "visits": visits}
