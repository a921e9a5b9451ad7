"""Screenshots of three real release reports in headless Chromium: a passed, a blocked and a DP release.

Each is a real `release` of 4,000 rows of UCI Adult (tests/data/adult.csv.gz) with two added PII columns and
a key: copula under the default policy (passed), copula under a policy it cannot meet (blocked), and
dp-marginal at ε = 1 (its shareable report.html). Writes benchmarks/results/report_{passed,blocked,dp}.png and
report_screenshots.md; tests/test_report.py checks the images. Takes about a minute.

    .venv/bin/python benchmarks/report_screenshots.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from tabsynth.errors import ReleaseBlocked
from tabsynth.run.options import ReleaseOptions
from tabsynth.run.release import release

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT / "tests" / "data" / "adult.csv.gz"
RESULTS = ROOT / "benchmarks" / "results"
ROWS = 4000
WINDOW = (1200, 2600)  # the top of each report: verdict, gate, failures, warnings, privacy, first plots
BLOCKING_POLICY = """name: demanding
description: A policy no copula of this table meets, to show a blocked report.
rules:
  - {metric: exact_copy_excess, op: "<=", threshold: 0.005, why: no more copies than chance}
  - {metric: mean_pair_tvd, op: "<=", threshold: 0.02, why: pairs of columns must keep their joint distribution}
  - {metric: tstr_auc, op: ">=", threshold: 0.9, why: a model trained on synthetic rows must predict income well}
  - {metric: pii_leak, op: "<=", threshold: 0, why: no real PII value in the synthetic file}
"""


def chromium() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if found is None:
        sys.exit("headless Chromium is needed (apt-get install chromium)")
    return found


def browser_flags(profile: Path) -> list[str]:
    return [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
            "--hide-scrollbars", "--force-device-scale-factor=1", "--disable-background-networking",
            "--disable-component-update", f"--user-data-dir={profile}"]


def screenshot(page: Path, png: Path, profile: Path, window: tuple[int, int] = WINDOW) -> None:
    subprocess.run([*browser_flags(profile), f"--window-size={window[0]},{window[1]}", f"--screenshot={png}",
                    page.as_uri()], check=True, capture_output=True, timeout=120)


def table(folder: Path) -> Path:
    """Adult's first ROWS rows with a name, an e-mail and a person key, so the reports show PII handling."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(5)
    frame = pd.read_csv(ADULT, na_values=["?"], nrows=ROWS)
    frame.insert(0, "person_id", [f"A{100000 + i}" for i in range(ROWS)])
    frame.insert(1, "name", [fake.name() for _ in range(ROWS)])
    frame.insert(2, "email", [fake.email() for _ in range(ROWS)])
    path = folder / "adult_people.csv"
    frame.to_csv(path, index=False)
    return path


def reports(folder: Path) -> dict[str, Path]:
    data, common = table(folder), dict(model="copula", target="income", seed=1)
    passed = release(ReleaseOptions(data=data, out=folder / "passed", **common)).out / "report.html"
    policy = folder / "demanding.yaml"
    policy.write_text(BLOCKING_POLICY)
    try:
        release(ReleaseOptions(data=data, out=folder / "blocked", policy=str(policy), **common))
        raise SystemExit("the demanding policy passed; make it stricter")
    except ReleaseBlocked as blocked:
        blocked_page = Path(blocked.report_path)
    dp = release(ReleaseOptions(data=data, out=folder / "dp", model="dp-marginal", epsilon=1.0, delta=1e-6,
                                source_id="adult-4000", ledger=f"sqlite:///{folder / 'ledger.db'}",
                                target="income", seed=1)).out / "report.html"
    return {"passed": passed, "blocked": blocked_page, "dp": dp}


def main() -> None:
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        lines = []
        for name, page in reports(folder).items():
            png = RESULTS / f"report_{name}.png"
            screenshot(page, png, folder / "profile")
            lines.append(f"- `{png.name}`: {page.relative_to(folder)} ({png.stat().st_size // 1024} KB)")
    (RESULTS / "report_screenshots.md").write_text(
        "# Release reports in headless Chromium\n\n"
        f"Made by `benchmarks/report_screenshots.py`: real releases of the first {ROWS:,} rows of UCI Adult with a "
        "fake name, e-mail and key column added, each report's top "
        f"{WINDOW[0]}x{WINDOW[1]} pixels. Passed: copula, default policy. Blocked: copula, a policy it cannot "
        "meet (pairs TVD <= 0.02, TSTR AUC >= 0.9). DP: dp-marginal at ε = 1, δ = 1e-6, its shareable report.\n\n"
        + "\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
