"""The manifest: what an auditor needs to replay and judge a release, as JSON."""

from __future__ import annotations

import getpass
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from tabsynth import __version__
from tabsynth.io.atomic import atomic_write_text
from tabsynth.models.base import is_private

VERSIONED_PACKAGES = ("numpy", "pandas", "scipy", "pyarrow", "scikit-learn", "torch", "opacus", "copulas", "ctgan",
                      "great_expectations", "faker")


def build(*, options, schema, policy, model, verdict, metrics, input_info, split_info, timings, sampling,
          ledger=None) -> dict:
    return {
        "tabsynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "released_by": releaser(),
        "released": verdict.passed,
        "input": input_info,
        "split": split_info,
        "model": {"name": model.name, "params": model.get_params(), "differentially_private": is_private(model),
                  "fit_seconds": round(timings["fit_seconds"], 3)},
        "privacy": privacy_record(model, ledger),
        "sampling": {**sampling, "seconds": round(timings["sample_seconds"], 3)},
        "seed": seed_record(options.seed, is_private(model)),
        "policy": {"name": policy.name, "description": policy.description.strip(),
                   "review_required": policy.review.required, "rules": [r.model_dump() for r in policy.rules]},
        "gate": verdict.to_dict(),
        "metrics": [_without_row_counts(m.to_dict()) if is_private(model) else m.to_dict() for m in metrics],
        "checks_reading_private_rows": sorted(m.name for m in metrics if m.reads_private_rows),
        "schema": schema.public(),
        "versions": versions(),
    }


def releaser() -> str | None:
    """The operating-system user running the release: `approve` refuses them as their own reviewer."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the user database
        return None


def privacy_record(model, ledger: dict | None) -> dict:
    """ε/δ spent and how (every measurement's noise scale), or a plain statement that the model is not DP."""
    if not is_private(model):
        return {"differentially_private": False,
                "note": "the model is not differentially private; its protection is the gate's risk checks only"}
    return {"differentially_private": True, **getattr(model, "privacy_", {}), "ledger": ledger,
            "note": "the true row count of the private table is withheld; the synthetic row count is a noisy total"}


def _without_row_counts(metric: dict) -> dict:
    """A DP release withholds the private table's size: drop the row counts (train_rows, rows_compared, ...)
    that checks record in their details. Their figures still read private rows (`checks_reading_private_rows`):
    the manifest and report are for internal review, and `tabsynth export` copies only the data file."""
    def scrub(value):
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items() if "rows" not in key}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    return {**metric, "details": scrub(metric.get("details", {}))}


def seed_record(seed: int | None, private: bool = False) -> dict:
    if private:  # DP noise never comes from a seed: a stored or guessable one would remove it
        fixed = (f"the seed {seed} fixes only the split and the sampling of synthetic rows" if seed is not None
                 else "the split and the sampling drew from the operating system's entropy too")
        return {"value": seed, "reproducible": False,
                "note": f"DP noise came from the operating system's CSPRNG and cannot be replayed; {fixed}"}
    if seed is None:
        return {"value": None, "reproducible": False,
                "note": "randomness drawn from the operating system's entropy; this release cannot be replayed"}
    return {"value": seed, "reproducible": True,
            "note": "seed given by the user: the split, model and synthetic rows can be replayed exactly"}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "tabsynth": __version__}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def write(path: Path, manifest: dict) -> None:
    atomic_write_text(path, json.dumps(manifest, indent=2, default=_json_default, allow_nan=False) + "\n")


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")
