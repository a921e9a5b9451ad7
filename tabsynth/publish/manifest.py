"""The manifest: what an auditor needs to replay and judge a release, as JSON; for a DP release, also the
internal-only assessment file (`internal/assessment.json`) that holds every figure read from the private rows."""

from __future__ import annotations

import getpass
import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from tabsynth._version import __version__
from tabsynth.io.atomic import atomic_write_text
from tabsynth.models.base import is_private

INTERNAL_DIR = "internal"  # a DP release's internal-only files: never shared, never exported
ASSESSMENT = f"{INTERNAL_DIR}/assessment.json"
SHAREABLE_INPUT = ("path", "url", "table", "query", "format", "columns", "engine")  # no hash, no row count
SHAREABLE_SPLIT = ("holdout_share", "method")  # no sizes of the parts
INTERNAL_POINTER = ("checks that read the private rows (copies, distances, attacks, fidelity, utility), the input's "
                    "hash and the row counts are in this file, for internal review only; `tabsynth export` never "
                    "copies it, and it did not decide the release")
INTERNAL_NOTE = ("INTERNAL REVIEW ONLY. Every figure here was computed from the private table and is not covered by "
                 "the differential-privacy guarantee: do not share this file. The release decision did not read it "
                 "and it cannot change what is released; the policy's rules on these checks are an assessment.")
VERSIONED_PACKAGES = ("numpy", "pandas", "scipy", "pyarrow", "scikit-learn", "torch", "opacus", "copulas", "ctgan",
                      "great_expectations", "faker")


def build(*, options, schema, policy, model, verdict, metrics, input_info, split_info, timings, sampling,
          ledger=None) -> tuple[dict, dict | None]:
    """The manifest, and for a DP release the internal-only assessment. A DP release's manifest holds only DP or
    public figures; what was read from the private rows (the input's hash, row counts, timings, the checks that
    read private rows and their rules' outcomes) goes to the assessment, which no shareable file quotes."""
    private = is_private(model)
    manifest = {
        "tabsynth_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "released_by": releaser(),
        "released": verdict.passed,
        "input": _only(input_info, SHAREABLE_INPUT) if private else input_info,
        "split": _only(split_info, SHAREABLE_SPLIT) if private else split_info,
        "model": {"name": model.name, "params": model.get_params(), "differentially_private": private,
                  **(getattr(options, "model_choice", None) or {}),  # chosen_by (auto or user) and why
                  **({} if private else {"fit_seconds": round(timings["fit_seconds"], 3)})},
        "privacy": privacy_record(model, shareable_ledger(ledger, options) if private else ledger),
        "sampling": sampling if private else {**sampling, "seconds": round(timings["sample_seconds"], 3)},
        "seed": seed_record(options.seed, private),
        "policy": {"name": policy.name, "description": policy.description.strip(),
                   "review_required": policy.review.required, "rules": [r.model_dump() for r in policy.rules]},
        "gate": verdict.to_dict(),
        "metrics": [m.to_dict() for m in metrics if not (private and m.reads_private_rows)],
        "warnings": [],
        "schema": schema.public(),
        "versions": versions(),
    }
    if not private:
        manifest["checks_reading_private_rows"] = sorted(m.name for m in metrics if m.reads_private_rows)
        return manifest, None
    manifest["internal_assessment"] = {"path": ASSESSMENT, "note": INTERNAL_POINTER}
    internal = {"status": "INTERNAL REVIEW ONLY", "note": INTERNAL_NOTE, "input": input_info, "split": split_info,
                "timings": {name: round(seconds, 3) for name, seconds in timings.items()},
                "ledger_source": (ledger or {}).get("source"), "gate": verdict.assessment_dict(),
                "metrics": [m.to_dict() for m in metrics if m.reads_private_rows]}
    return manifest, internal


def _only(record: dict, keys: tuple[str, ...]) -> dict:
    return {key: value for key, value in record.items() if key in keys}


def shareable_ledger(ledger: dict | None, options) -> dict | None:
    """The ledger record without the source's name when that name is the input's content digest: a hash of the
    private table would let anyone confirm a guessed table. A --source-id or a database table's place stays."""
    if ledger is None or options.source_id or getattr(options, "table", None):
        return ledger
    return {**ledger, "source": None, "source_note": "named by the input's content digest, which a DP release's "
            f"shareable files withhold; it is in {ASSESSMENT} (use --source-id to name the source)"}


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


def write_assessment(folder: Path, internal: dict, manifest_sha256: str) -> None:
    """The internal assessment, bound to its manifest by the manifest's hash (`tabsynth verify` checks it). The
    manifest does not hash this file: a hash of private figures would confirm a guessed table."""
    (folder / INTERNAL_DIR).mkdir(exist_ok=True)
    write(folder / ASSESSMENT, {"manifest_sha256": manifest_sha256, **internal})


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")
