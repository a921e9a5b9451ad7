"""Full validation of an Adult release: every check the gate can run, timed per family.

Target (issue 21): at most 5 s for all checks (was under 30 s, issue 5) for 26,000 synthetic rows against 26,000
training and 6,500 holdout rows on a 2-core machine. The synthetic table comes from `copula` (fit time not
counted). Wall and CPU seconds are both recorded, with the load: the 2 cores are shared.
"""

from __future__ import annotations

import numpy as np
from _common import Timer, adult_split, peak_rss_mb, write_results

from tabsynth.metrics.checks import CheckOptions, run_checks
from tabsynth.metrics.constraints import check_constraints
from tabsynth.metrics.risk import privacy_risks
from tabsynth.metrics.utility import utility_metrics
from tabsynth.models.base import create_model

TARGET_SECONDS = 5


def main() -> None:
    train, holdout, schema = adult_split()
    synthetic = create_model("copula").fit(train, schema, rng=0).sample(26_000, rng=1)
    train = train.iloc[:26_000]
    families = {
        "privacy risk": lambda: privacy_risks(train, holdout, synthetic, schema, rng=np.random.default_rng(0)),
        "utility (income, bias by sex and race)": lambda: utility_metrics(
            train, holdout, synthetic, schema, target="income", sensitive=("sex", "race")),
        "constraints (Great Expectations)": lambda: check_constraints(synthetic, schema, [], real=train),
        "all, as the release runs them": lambda: run_checks(train, holdout, synthetic, schema, CheckOptions(
            target="income", sensitive=("sex", "race"))),
    }
    rows = []
    for name, run in families.items():
        with Timer() as timer:
            results = run()
        rows.append({"checks": name, "metrics": len(results), "seconds": timer.seconds,
                     "cpu seconds": timer.cpu_seconds})
        print(f"{name}: {len(results)} metrics in {timer.seconds:.1f} s (cpu {timer.cpu_seconds:.1f} s)")
    rows.append({"checks": "peak memory of the process (MB)", "metrics": None, "seconds": peak_rss_mb()})
    title = (f"Validation of a 26,000-row Adult release ({len(train):,} training, {len(holdout):,} holdout rows); "
             f"target <= {TARGET_SECONDS} s for all checks")
    print(write_results("validate_adult", rows, title, ("tabsynth", "scikit-learn", "great_expectations")))
    every = rows[-2]["seconds"]
    print(f"all checks {every:.1f} s (target <= {TARGET_SECONDS} s): {'met' if every <= TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
