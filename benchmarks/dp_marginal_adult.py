"""`dp-marginal` on UCI Adult at ε = 1, δ = 1e-9, beside SmartNoise's published AIM and MST figures.

Same 80/20 split as the other benchmarks. Fidelity: mean one- and two-way total variation distance to the
training table (tabsynth.metrics.fidelity: numbers in 10 quantile bins of the real table, categories top-20).
Utility: train on synthetic, test on real: HistGradientBoostingClassifier fitted to the synthetic rows,
AUC for `income` on the real 20 % holdout. Peak memory is the process's maximum resident set so far.
The schema facts are measured with DP from the same budget, as a release without a schema file does;
DP noise comes from the OS (the seeds drive sampling only). The model samples its own noisy row count.
The income rows name `income` as the target, as `--target income` does in a release: the workload keeps every
pair and the 3-way marginals holding income, and AIM weights the marginals holding it `target_weight` times.
Run: `python benchmarks/dp_marginal_adult.py` (`--help`: fewer runs, other target weights, no result files).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import Timer, adult_split, markdown_table, peak_rss_mb, write_results
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from tabsynth.metrics.fidelity import column_distances
from tabsynth.models.dp_marginal import DPMarginal
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.facts import pay_for_facts
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.run.plan import conform_rows

EPSILON, DELTA = 1.0, 1e-9
TARGET, POSITIVE = "income", ">50K"
ALL_3WAY = "dp-marginal (workload: all 3-way)"
TARGET_WEIGHTS = (1.0, 2.0)  # 1: the workload unweighted; 2: tabsynth's default (models.aim.TARGET_WEIGHT)
# As quoted in the issue (SmartNoise synth benchmarks, UCI Adult, ε = 1).
PUBLISHED = [
    {"system": "SmartNoise AIM (published)", "fit s": 953.0, "peak MB": 5200.0, "mean 2-way TVD": 0.132,
     "AUC (TSTR)": 0.68},
    {"system": "SmartNoise MST (published)", "fit s": 66.0, "peak MB": 2500.0, "mean 2-way TVD": 0.156,
     "AUC (TSTR)": 0.74},
]
GOALS = {"mean 2-way TVD": 0.12, "AUC (TSTR)": 0.80, "fit s": 120.0, "peak MB": 2048.0}


def features(frame: pd.DataFrame, categories: dict[str, list]) -> tuple[pd.DataFrame, np.ndarray]:
    """Model inputs with the same category levels on both tables; the label as 0/1."""
    x = frame.drop(columns=TARGET).copy()
    for name, levels in categories.items():
        x[name] = pd.Categorical(x[name].astype(object).where(x[name].notna()), categories=levels)
    return x, (frame[TARGET] == POSITIVE).to_numpy(int)


def tstr_auc(synthetic: pd.DataFrame, holdout: pd.DataFrame) -> float:
    text = [c for c in holdout.columns if c != TARGET and holdout[c].dtype == object]
    categories = {c: sorted(set(holdout[c].dropna()) | set(synthetic[c].dropna())) for c in text}
    x_train, y_train = features(synthetic, categories)
    x_test, y_test = features(holdout, categories)
    classifier = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
    classifier.fit(x_train, y_train)
    return float(roc_auc_score(y_test, classifier.predict_proba(x_test)[:, 1]))


def run(name: str, params: dict, train, holdout, schema, seed: int) -> dict:
    """One fit as `tabsynth release` makes it without a schema file: the schema facts measured with DP first
    (`pay_for_facts`, from the same budget), DP noise from the OS; `seed` drives only the sampling."""
    model = DPMarginal(**params)
    with Timer() as fit:  # Adult has no dates: its training rows are the rows as read
        private, budget, _ = pay_for_facts(train, None, Budget(EPSILON, DELTA, RandomSource.system()))
        model.fit(conform_rows(train, private, True), private, budget=budget)
    synthetic = model.sample(rng=seed)
    distances = {m.name: m.value for m in column_distances(train, synthetic, schema)}
    return {"system": name, "seed": seed, "fit s": fit.seconds, "peak MB": peak_rss_mb(),
            "mean 1-way TVD": distances["mean_column_tvd"], "mean 2-way TVD": distances["mean_pair_tvd"],
            "AUC (TSTR)": tstr_auc(synthetic, holdout), "epsilon spent": model.privacy_["epsilon"],
            "rows (noisy)": model.rows_}


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["system"] for r in rows):
        runs = [r for r in rows if r["system"] == name]
        means = {k: float(np.mean([r[k] for r in runs])) for k in runs[0] if k not in ("system", "seed")}
        means["peak MB"] = max(r["peak MB"] for r in runs)
        means["slowest fit s"] = max(r["fit s"] for r in runs)
        means["worst 2-way TVD"] = max(r["mean 2-way TVD"] for r in runs)
        means["worst AUC"] = min(r["AUC (TSTR)"] for r in runs)
        out.append({"system": name, **means, "runs": len(runs)})
    return out


def configs(target_weights, all_3way: bool = True, degree: int = 3) -> dict[str, dict]:
    rows = {ALL_3WAY: {}} if all_3way else {}
    workload = "2-way + 3-way with income" if degree == 3 else f"degree {degree}, income"
    return rows | {f"dp-marginal (workload: {workload}, target weight {w:g})":
                   {"target": TARGET, "target_weight": w, "degree": degree} for w in target_weights}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="seeded runs per row (seeds 0, 1, ...) [3]")
    parser.add_argument("--target-weights", type=float, nargs="+", default=TARGET_WEIGHTS,
                        help="one income row per target_weight [1 2]")
    parser.add_argument("--degree", type=int, default=3, help="the income rows' workload degree [3]")
    parser.add_argument("--no-all-3way", action="store_true", help="skip the all-3-way row (the slowest)")
    parser.add_argument("--dry-run", action="store_true", help="print the table; write no result files")
    return parser.parse_args()


def main() -> None:
    args = arguments()
    train, holdout, schema = adult_split()
    chosen = configs(args.target_weights, not args.no_all_3way, args.degree)
    rows = [run(name, params, train, holdout, schema, seed)
            for name, params in chosen.items() for seed in range(args.runs)]
    summary = summarise(rows)
    table = summary + [dict.fromkeys(summary[0]) | row for row in PUBLISHED]
    title = (f"dp-marginal on UCI Adult, ε = {EPSILON:g}, δ = {DELTA:g} (80/20 split, mean of {args.runs} seeded "
             "runs; peak MB is the process maximum)")
    if args.dry_run:
        print(markdown_table(pd.DataFrame(table)))
    else:
        print(write_results("dp_marginal_adult", table, title, ("tabsynth", "numpy", "scikit-learn")))
    for row in summary:
        assert row["worst 2-way TVD"] <= GOALS["mean 2-way TVD"], f"{row['system']}: 2-way TVD above goal"
        assert row["worst AUC"] >= GOALS["AUC (TSTR)"], f"{row['system']}: AUC below goal"
        assert row["slowest fit s"] < GOALS["fit s"], f"{row['system']}: fit too slow"
        assert row["peak MB"] < GOALS["peak MB"], f"{row['system']}: too much memory"


if __name__ == "__main__":
    main()
