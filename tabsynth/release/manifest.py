"""The manifest: what an auditor needs to replay and judge a release, as JSON."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from tabsynth import __version__
from tabsynth.io.atomic import atomic_write_text

VERSIONED_PACKAGES = ("numpy", "pandas", "scipy", "pyarrow", "copulas", "faker")


def build(*, options, schema, policy, model, verdict, metrics, input_info, split_info, timings) -> dict:
    return {
        "tabsynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "released": verdict.passed,
        "input": input_info,
        "split": split_info,
        "model": {"name": model.name, "params": model.get_params(), "differentially_private": False,
                  "fit_seconds": round(timings["fit_seconds"], 3)},
        "sampling": {"rows": timings["rows"], "seconds": round(timings["sample_seconds"], 3)},
        "seed": seed_record(options.seed),
        "policy": {"name": policy.name, "description": policy.description.strip()},
        "gate": verdict.to_dict(),
        "metrics": [m.to_dict() for m in metrics],
        "schema": schema.public(),
        "versions": versions(),
    }


def seed_record(seed: int | None) -> dict:
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
