"""Machine-learning utility and subgroup bias of a synthetic table, and the full utility report.

Utility is "train on synthetic, test on real" (TSTR): a gradient-boosted model fit on the synthetic rows
is scored on the real holdout, beside the same model fit on the real training rows (TRTR), the baseline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from tabsynth.errors import InputError
from tabsynth.metrics.catalogue import SCORES
from tabsynth.metrics.fidelity import (
    CATEGORY_KINDS,
    NUMERIC_KINDS,
    column_distances,
    correlation_difference,
    coverage,
    finite_or_none,
    wasserstein_distances,
)
from tabsynth.metrics.result import MetricResult
from tabsynth.table.distances import bin_codes, numeric_values, tvd
from tabsynth.table.schema import Column, Schema

MAX_NATIVE_CATEGORIES = 255  # HistGradientBoosting's limit; columns with more categories are fed as codes
# Gradient boosting's OpenMP threads spin while waiting: on shared cores two threads ran 20x slower than one.
MODEL_THREADS = 1
MIN_SUBGROUP_ROWS = 30
MISSING_GROUP = "(missing)"
METRIC_NAMES = {"binary": "roc_auc", "multiclass": "macro_ovr_roc_auc", "regression": "r2"}
# Score metrics are named by what they measure, so a policy rule can only compare like with like:
# tstr_auc, trtr_auc, augmented_auc for a binary or categorical target; tstr_r2, ... for a numerical one.
SCORE_SUFFIX = {"binary": "auc", "multiclass": "auc", "regression": "r2"}


@dataclass(frozen=True)
class Task:
    """What the target asks of a model, learnt from the real training rows."""

    kind: Literal["binary", "multiclass", "regression"]
    classes: tuple = ()  # the real training classes; a class's label is its position here
    positive: Any = None  # binary: the minority class of the real training rows

    @property
    def metric(self) -> str:
        return METRIC_NAMES[self.kind]

    def score_name(self, score: str) -> str:
        return f"{score}_{SCORE_SUFFIX[self.kind]}"


def ml_utility(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str,
               *, random_state: int = 0) -> list[MetricResult]:
    """TSTR, TRTR, their ratio, the real-plus-synthetic (augmented) score and its gain over TRTR, on the real holdout.

    Scores are ROC AUC of the minority class (binary: `*_auc`), macro one-vs-rest ROC AUC (multiclass:
    `*_auc`) or R² (numerical target: `*_r2`). A training set lacking a real class, or with a constant
    target, scores NaN; so does tstr_ratio when the baseline is not positive.
    """
    task = _task(_target_column(schema, target), train[target])
    features = [c for c in schema.modelled() if c.name != target]
    (x_train, x_holdout, x_synthetic), native = _feature_matrices(features, [train, holdout, synthetic])
    y_train, y_holdout, y_synthetic = (_labels(task, frame[target]) for frame in (train, holdout, synthetic))
    fit_sets = {
        "tstr": (x_synthetic, y_synthetic),
        "trtr": (x_train, y_train),
        "augmented": (np.vstack([x_train, x_synthetic]), np.concatenate([y_train, y_synthetic])),
    }
    test = _rows_with_target(x_holdout, y_holdout)
    scores = {name: _fit_and_score(task, _rows_with_target(*rows), test, native, random_state)
              for name, rows in fit_sets.items()}
    trained = f"{task.metric} on the real holdout of a model trained on"
    tstr, trtr, augmented = (task.score_name(score) for score in SCORES)
    details = _utility_details(task, target, {"train": y_train, "holdout": y_holdout, "synthetic": y_synthetic})
    results = [
        (tstr, scores["tstr"], f"{trained} synthetic rows"),
        (trtr, scores["trtr"], f"{trained} real training rows (the baseline)"),
        ("tstr_ratio", scores["tstr"] / scores["trtr"] if scores["trtr"] > 0 else np.nan,
         f"{tstr} / {trtr}: the share of the real rows' utility that the synthetic rows keep"),
        (augmented, scores["augmented"], f"{trained} real training plus synthetic rows"),
        ("augmentation_gain", scores["augmented"] - scores["trtr"],
         f"{augmented} - {trtr}: what adding the synthetic rows to the real ones gains (negative: they hurt)"),
    ]
    return [MetricResult(name, float(value), "max", text, details=details) for name, value, text in results]


def minority_class_tvd(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str) -> list[MetricResult]:
    """Mean one-way TVD of the other modelled columns between the real and the synthetic rows of the real
    minority class: do the rare class's rows (frauds, say) look like the real ones, not just their count?"""
    column = _target_column(schema, target)
    if column.kind == "numerical":
        return []
    positive = minority_class(real[target])
    parts = [frame[frame[target] == positive] for frame in (real, synthetic)]
    description = (f"mean total variation distance of the other columns between real and synthetic rows of "
                   f"the real minority class {target} = {positive}")
    details = {"target": target, "minority_class": str(positive), "real_rows": len(parts[0]),
               "synthetic_rows": len(parts[1])}
    others = [c for c in schema.modelled() if c.name != target]
    if not len(parts[0]) or not len(parts[1]) or not others:
        reason = "no synthetic row of the minority class" if len(parts[0]) else "no real row of the minority class"
        return [MetricResult("minority_class_tvd", float("nan"), "min", description,
                             details={**details, "reason": reason if others else "no other modelled column"})]
    per_column = {c.name: tvd(*bin_codes(c, parts[0][c.name], parts[1][c.name])) for c in others}
    return [MetricResult("minority_class_tvd", float(np.mean(list(per_column.values()))), "min", description,
                         details={**details, "per_column": per_column})]


def _utility_details(task: Task, target: str, labels: dict[str, np.ndarray]) -> dict:
    details = {"task": task.kind, "metric": task.metric, "target": target,
               "rows": {name: int(np.isfinite(y).sum()) for name, y in labels.items()}}
    if task.kind == "binary":
        details["positive_class"] = str(task.positive)
    return details


def minority_class(values: pd.Series) -> Any:
    """The rarest present value; None when every value is missing."""
    counts = values.value_counts()
    return counts.idxmin() if len(counts) else None


def _task(column: Column, values: pd.Series) -> Task:
    if column.kind == "numerical":
        return Task("regression")
    classes = tuple(values.value_counts().index)
    if len(classes) > 2:
        return Task("multiclass", classes)
    return Task("binary", classes, positive=minority_class(values))


def _labels(task: Task, values: pd.Series) -> np.ndarray:
    """Floats for regression, class positions for classification; NaN where missing or not a real class."""
    if task.kind == "regression":
        return numeric_values(values)
    return _codes(pd.Index(task.classes), values)


def _feature_matrices(columns: list[Column], frames: list[pd.DataFrame]) -> tuple[list[np.ndarray], np.ndarray]:
    """One float matrix per frame, and a mask of the columns passed as native categorical features.

    Numbers and dates are values; categories are codes learnt on the union of every frame's categories.
    """
    categories = {c.name: pd.Index(pd.unique(pd.concat([frame[c.name] for frame in frames]).dropna()))
                  for c in columns if c.kind in CATEGORY_KINDS}
    native = np.array([0 < len(categories.get(c.name, ())) <= MAX_NATIVE_CATEGORIES for c in columns], dtype=bool)
    return [_feature_matrix(frame, columns, categories) for frame in frames], native


def _feature_matrix(frame: pd.DataFrame, columns: list[Column], categories: dict[str, pd.Index]) -> np.ndarray:
    encoded = [_codes(categories[c.name], frame[c.name]) if c.name in categories else numeric_values(frame[c.name])
               for c in columns]
    matrix = np.column_stack(encoded) if encoded else np.empty((len(frame), 0))
    matrix[np.isinf(matrix)] = np.nan  # the models accept missing values, not infinite ones
    return matrix


def _codes(categories: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value among `categories`, as floats; NaN where missing or unknown."""
    codes = categories.get_indexer(values).astype(float)
    codes[codes < 0] = np.nan
    return codes


def _rows_with_target(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    known = np.isfinite(y)
    return x[known], y[known]


def _fit_and_score(task: Task, fit: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                   native: np.ndarray, random_state: int) -> float:
    # Imported here (only a target needs it; 0.3 s), and before the thread limit: a limit set before sklearn
    # loads its OpenMP runtime misses it, and two spinning threads on shared cores ran 5x slower than one.
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import r2_score, roc_auc_score

    (x_fit, y_fit), (x_test, y_test) = fit, test
    if not _can_train(task, y_fit) or len(np.unique(y_test)) < 2 or x_fit.shape[1] == 0:
        return np.nan
    estimator = HistGradientBoostingRegressor if task.kind == "regression" else HistGradientBoostingClassifier
    with threadpool_limits(MODEL_THREADS, user_api="openmp"):
        model = estimator(categorical_features=native, random_state=random_state).fit(x_fit, y_fit)
        if task.kind == "regression":
            return float(r2_score(y_test, model.predict(x_test)))
        probabilities = model.predict_proba(x_test)
    scored = [task.classes.index(task.positive)] if task.kind == "binary" else np.unique(y_test).astype(int)
    return float(np.mean([roc_auc_score(y_test == label, probabilities[:, label]) for label in scored]))


def _can_train(task: Task, y: np.ndarray) -> bool:
    """Regression needs a varying target; classification needs every real class, and at least two."""
    distinct = len(np.unique(y))
    return distinct >= 2 and (task.kind == "regression" or distinct == len(task.classes))


@dataclass(frozen=True)
class TargetEvent:
    """The positive-target event compared per subgroup: 1 where it holds, 0 where not, NaN where unknown."""

    name: str
    real: pd.Series
    synthetic: pd.Series


def bias(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, sensitive: Sequence[str],
         target: str | None) -> list[MetricResult]:
    """Per sensitive column, the largest gap in subgroup share and (with a target) in positive-target rate."""
    columns = [_sensitive_column(schema, name) for name in sensitive]
    event = _target_event(real, synthetic, schema, target) if target is not None else None
    gaps = {"share": [], "target": []}
    for column in columns:
        table = subgroup_table(real[column.name], synthetic[column.name], event)
        gaps["share"].append(_gap_result("share", column.name, table, "share of rows"))
        if event is not None:
            gaps["target"].append(_gap_result("target", column.name, table, f"rate of {event.name}"))
    results = []
    for kind, per_column in gaps.items():
        if per_column:
            results += [*per_column, _max_gap(kind, per_column)]
    return results


def _max_gap(kind: str, gaps: list[MetricResult]) -> MetricResult:
    worst = max(gaps, key=lambda result: np.nan_to_num(result.value, nan=np.inf))
    return MetricResult(f"max_subgroup_{kind}_gap", float(np.max([result.value for result in gaps])), "min",
                        f"largest subgroup_{kind}_gap over the sensitive columns", details={"worst": worst.name})


def subgroup_table(real_groups: pd.Series, synthetic_groups: pd.Series, event: TargetEvent | None = None
                   ) -> pd.DataFrame:
    """Share of each subgroup in both tables and, given a target event, the event's rate in each subgroup.

    A subgroup with fewer than MIN_SUBGROUP_ROWS real rows of known target has no real rate, and one
    absent from the synthetic table no synthetic rate: its share gap already shows it.
    """
    real_groups, synthetic_groups = _group_labels(real_groups), _group_labels(synthetic_groups)
    table = pd.DataFrame({"real_share": real_groups.value_counts(normalize=True),
                          "synthetic_share": synthetic_groups.value_counts(normalize=True)}).fillna(0.0)
    if event is not None:
        by_group = event.real.groupby(real_groups)
        table["real_rate"] = by_group.mean().where(by_group.count() >= MIN_SUBGROUP_ROWS)
        table["synthetic_rate"] = event.synthetic.groupby(synthetic_groups).mean()
    return table


def _group_labels(values: pd.Series) -> pd.Series:
    return values.map(str, na_action="ignore").where(values.notna(), MISSING_GROUP)


def _gap_result(kind: str, column: str, table: pd.DataFrame, what: str) -> MetricResult:
    real, synthetic = ("real_share", "synthetic_share") if kind == "share" else ("real_rate", "synthetic_rate")
    gap = (table[real] - table[synthetic]).abs().max() if len(table) else np.nan
    subgroups = [{"subgroup": label, **{name: finite_or_none(value) for name, value in row.items()}}
                 for label, row in table.iterrows()]
    details = {"subgroups": subgroups}
    if kind == "target":
        details["min_real_rows"] = MIN_SUBGROUP_ROWS
    return MetricResult(f"subgroup_{kind}_gap:{column}", float(gap), "min",
                        f"largest absolute difference in the {what} between real and synthetic subgroups "
                        f"of column {column!r}", details=details)


def _target_event(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, target: str) -> TargetEvent:
    """Target above the real median (numbers) or equal to the real minority class (categories)."""
    column = _target_column(schema, target)
    if column.kind == "numerical":
        median = float(np.nanmedian(numeric_values(real[target])))
        name, holds = f"{target} > {median:g} (the real median)", lambda v: numeric_values(v) > median
    else:
        positive = minority_class(real[target])
        name, holds = f"{target} = {positive} (the real minority class)", lambda v: (v == positive).to_numpy()
    real_flags, synthetic_flags = (pd.Series(np.where(frame[target].notna(), holds(frame[target]), np.nan),
                                             index=frame.index) for frame in (real, synthetic))
    return TargetEvent(name, real_flags, synthetic_flags)


def _target_column(schema: Schema, name: str) -> Column:
    column = _modelled_column(schema, name, "target")
    if column.kind == "datetime":
        raise InputError(f"target column {name!r} holds dates; choose a numerical, categorical or boolean column")
    return column


def _sensitive_column(schema: Schema, name: str) -> Column:
    column = _modelled_column(schema, name, "sensitive")
    if column.kind in NUMERIC_KINDS and not column.discrete:
        raise InputError(f"sensitive column {name!r} is continuous; give its subgroups as a categorical column "
                         "(for example age bands)")
    return column


def _modelled_column(schema: Schema, name: str, role: str) -> Column:
    modelled = schema.modelled()
    for column in modelled:
        if column.name == name:
            return column
    raise InputError(f"{role} column {name!r} is not a modelled column of the table "
                     f"(modelled: {', '.join(c.name for c in modelled)})")


def utility_metrics(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, *,
                    target: str | None = None, sensitive: Sequence[str] = (), random_state: int = 0
                    ) -> list[MetricResult]:
    """Every fidelity metric, then ML utility when a target is named and bias when sensitive columns are."""
    results = (column_distances(train, synthetic, schema) + wasserstein_distances(train, synthetic, schema)
               + correlation_difference(train, synthetic, schema, random_state=random_state)
               + coverage(train, synthetic, schema))
    if target is not None:
        results += ml_utility(train, holdout, synthetic, schema, target, random_state=random_state)
        results += minority_class_tvd(train, synthetic, schema, target)
    if sensitive:
        results += bias(train, synthetic, schema, sensitive, target)
    return results
