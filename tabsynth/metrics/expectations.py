"""Checking constraint rules for the report: the user's constraints with Great Expectations, the rest with pandas.

The rules nobody wrote (the schema's facts and the date orders learnt from the real rows: dtypes, bounds,
categories, non-null, unique keys) are checked with pandas, with the meaning GX gives them (`Rule.check`,
tested against GX rule by rule): GX takes seconds to start and ~15 ms per expectation, pandas about 1 ms for
the lot of a table like Adult. The user's constraints go to GX, at most `MAX_GX_RULES` of them (a wide
constraints file would take minutes); pandas checks any past that. Both give an `Outcome`, summarised the same
way. GX is imported on first use (slow), so a release without constraints never starts it.
"""

from __future__ import annotations

import datetime
import functools
import logging
import re
import warnings
from typing import Any

import pandas as pd

from tabsynth.metrics.result import MetricResult
from tabsynth.rules.constraints import Constraint, compile_rules
from tabsynth.rules.outcome import EXAMPLES, Outcome
from tabsynth.rules.rule import Rule
from tabsynth.table.schema import Schema

MAX_GX_RULES = 300
CHECKED_WITH_PANDAS_BECAUSE = ("GX takes seconds to start and ~15 ms per expectation: it checks the user's "
                               f"constraints, at most {MAX_GX_RULES} of them; pandas checks the schema's facts, the "
                               "learnt date orders and any constraints past that, with the same meaning")


def violations(frame: pd.DataFrame, user: list[Rule], table: list[Rule]) -> MetricResult:
    """The rules the synthetic table (with a RangeIndex) fails, the user's first; the details summarise every
    rule. `user`: the rules of the user's constraints (GX); `table`: the schema's and the learnt ones (pandas)."""
    expectations = _summaries(frame, user, table)
    checked_by = [summary["checked_by"] for summary in expectations]
    checked_with = {"great_expectations": checked_by.count("great_expectations"), "pandas": checked_by.count("pandas"),
                    "why": CHECKED_WITH_PANDAS_BECAUSE}
    return MetricResult("constraint_violations", float(sum(not e["passed"] for e in expectations)), "min",
                        "number of failed expectations (schema facts and user constraints): user constraints "
                        f"checked with GX (pandas past the first {MAX_GX_RULES}), schema facts with pandas",
                        details={"expectations": expectations, "checked_with": checked_with})


def _summaries(frame: pd.DataFrame, user: list[Rule], table: list[Rule]) -> list[dict]:
    """A summary per rule, in order: the first MAX_GX_RULES user rules checked by GX, every other by pandas."""
    by_gx, by_pandas = user[:MAX_GX_RULES], user[MAX_GX_RULES:] + table
    summaries = [_summary(rule, outcome, frame, "great_expectations")
                 for rule, outcome in zip(by_gx, gx_outcomes(frame, by_gx), strict=True)]
    return summaries + [_summary(rule, pandas_outcome(frame, rule), frame, "pandas") for rule in by_pandas]


def pandas_outcome(frame: pd.DataFrame, rule: Rule) -> Outcome:
    """`Rule.check`; as with GX, a rule on a column the table lacks fails with an error."""
    absent = [name for name in rule.columns if name not in frame.columns]
    if absent:
        return Outcome(False, error=f"the column {absent[0]!r} does not exist in the table")
    return rule.check(frame)


def build_suite(schema: Schema, constraints: list[Constraint], real: pd.DataFrame | None = None):
    """The GX ExpectationSuite of every rule; checks and combinations validate helper columns (see `gx_outcomes`)."""
    _context()
    return _suite(compile_rules(schema, constraints, real))


def gx_outcomes(frame: pd.DataFrame, rules: list[Rule]) -> list[Outcome]:
    """GX's outcome of each rule; the values of checks and combinations, computed by tabsynth, are
    added to the batch as helper columns. `frame` has a RangeIndex."""
    if not rules:
        return []
    present = set(frame.columns)
    helpers = {rule.column: rule.helper(frame) for rule in rules if set(rule.columns) <= present}
    read = {rule.column for rule in rules}  # GX is slower on a wide frame: give it the columns its rules read
    batch_frame = frame[[name for name in frame.columns if name in read]].assign(
        **{name: values for name, values in helpers.items() if values is not None})
    context = _context()
    suite = _suite(rules)
    asset = context.data_sources.add_pandas("synthetic").add_dataframe_asset("table")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": batch_frame})
    result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLES})
    by_rule = {r.expectation_config.meta["rule"]: r for r in result.results}
    return [_outcome(by_rule[index]) for index in range(len(rules))]


@functools.cache
def _gx():
    """Import GX once, on first use (slow), with its logging and import-time warnings quieted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("great_expectations")]:
        logging.getLogger(name).setLevel(logging.ERROR)  # some set INFO on import
    return great_expectations


def _context():
    """A fresh in-memory GX context: offline, no docs site, no progress bars."""
    gx = _gx()
    from great_expectations.data_context.types.base import DataContextConfig as Config
    from great_expectations.data_context.types.base import InMemoryStoreBackendDefaults, ProgressBarsConfig

    config = Config(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                    progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
                    analytics_enabled=False)
    return gx.get_context(mode="ephemeral", project_config=config)


def _suite(rules: list[Rule]):
    """One expectation per rule, given to the constructor: `add_expectation` compares each new
    expectation with all earlier ones (quadratic). Needs an active context."""
    gx = _gx()
    expectations = [getattr(gx.expectations, rule.gx_class)(column=rule.column, **rule.gx_arguments(),
                                                            meta={"rule": index, "label": rule.label()})
                    for index, rule in enumerate(rules)]
    return gx.ExpectationSuite(name="tabsynth-constraints", expectations=expectations)


def _outcome(result) -> Outcome:
    info = result.result or {}
    count = info.get("unexpected_count")
    return Outcome(bool(result.success), None if count is None else int(count),
                   tuple(int(i) for i in info.get("partial_unexpected_index_list") or ()),
                   info.get("observed_value"), _error(result.exception_info))


def _error(info: dict | None) -> str | None:
    """GX's first error message; its exception info is flat, or keyed by the metric that failed."""
    reports = [info] if info and "raised_exception" in info else list((info or {}).values())
    messages = [r.get("exception_message") for r in reports if isinstance(r, dict) and r.get("raised_exception")]
    return str(messages[0]).splitlines()[0][:200] if messages else None


def _summary(rule: Rule, outcome: Outcome, frame: pd.DataFrame, checked_by: str) -> dict:
    summary = {"rule": rule.label(), "expectation": _snake_case(rule.gx_class), "checked_by": checked_by,
               "passed": outcome.passed}
    if outcome.error:
        summary["error"] = outcome.error
    if outcome.unexpected_count is not None:
        summary["unexpected_count"] = outcome.unexpected_count
    if outcome.observed is not None:
        summary["observed"] = outcome.observed
    if not outcome.passed and outcome.unexpected_rows:
        summary["unexpected_examples"] = _examples(rule, frame, outcome.unexpected_rows)
    return summary


def _examples(rule: Rule, frame: pd.DataFrame, rows: tuple[int, ...]) -> list:
    """Synthetic values at `rows`: the value itself for a rule on one column, else the columns the rule reads."""
    picked = frame.iloc[list(rows)]
    if rule.columns == (rule.column,):
        return [_json_value(value) for value in picked[rule.column]]
    return [{name: _json_value(value) for name, value in row.items()}
            for _, row in picked[list(rule.columns)].iterrows()]


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _json_value(value: Any):
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if isinstance(value, (pd.Timestamp, datetime.date)):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value
