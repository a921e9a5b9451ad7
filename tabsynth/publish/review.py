"""After the gate: verify a release folder's hashes, record a reviewer's sign-off, export the data file."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from tabsynth._version import __version__
from tabsynth.errors import InputError, TabsynthError
from tabsynth.io.atomic import atomic_file, atomic_write_text
from tabsynth.io.files import FORMATS, file_sha256
from tabsynth.publish.data_card import data_card, data_card_path
from tabsynth.publish.folder import MANIFEST
from tabsynth.publish.manifest import ASSESSMENT, INTERNAL_DIR
from tabsynth.publish.manifest import releaser as releaser_of_this_process

APPROVALS = "approvals.json"


class VerificationError(TabsynthError):
    """A release folder's files do not match its manifest, or it lacks a required sign-off."""


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} is not a tabsynth release folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("outputs"), dict):
        raise VerificationError(f"{path}: not a release manifest (no outputs listed)")
    return manifest


def verify(folder: Path) -> dict:
    """Every output the manifest lists exists with its recorded SHA-256, and nothing else was added; a DP
    release's internal assessment belongs to this manifest and its internal files are intact."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = _changed(folder, manifest["outputs"], "the manifest")
    known = set(manifest["outputs"]) | {MANIFEST, APPROVALS}
    if isinstance(manifest.get("internal_assessment"), dict):
        known.add(INTERNAL_DIR)
        problems += _internal_problems(folder)
    problems += [f"{p.name}: not part of the release (not in the manifest)"
                 for p in sorted(folder.iterdir()) if p.name not in known]
    if problems:
        raise VerificationError(*problems)
    return manifest


def _changed(folder: Path, listed: dict, where: str) -> list[str]:
    problems = []
    for name, info in listed.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: listed in {where} but missing")
        elif not isinstance(info, dict) or file_sha256(path) != info.get("sha256"):
            problems.append(f"{name}: contents changed since release (SHA-256 differs from {where})")
    return problems


def _internal_problems(folder: Path) -> list[str]:
    """The assessment names its manifest's SHA-256 (the manifest cannot hash it: its figures are private) and
    hashes the other internal files."""
    path = folder / ASSESSMENT
    if not path.is_file():
        return [f"{ASSESSMENT}: named by the manifest but missing"]
    try:
        assessment = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return [f"{ASSESSMENT}: not valid JSON"]
    if not isinstance(assessment, dict) or assessment.get("manifest_sha256") != file_sha256(folder / MANIFEST):
        return [f"{ASSESSMENT}: made for another manifest (its manifest SHA-256 differs)"]
    files = assessment.get("files") if isinstance(assessment.get("files"), dict) else {}
    known = {ASSESSMENT, *files}
    extra = [p.relative_to(folder).as_posix() for p in sorted((folder / INTERNAL_DIR).rglob("*")) if p.is_file()]
    return _changed(folder, files, ASSESSMENT) + [f"{name}: not part of the release (not in {ASSESSMENT})"
                                                   for name in extra if name not in known]


def approve(folder: Path, reviewer: str, note: str = "") -> dict:
    """Append a sign-off bound to the manifest's hash: editing the manifest later voids it."""
    folder = Path(folder)
    manifest = verify(folder)
    if not reviewer.strip():
        raise InputError("--reviewer must name the person signing off")
    releaser = manifest.get("released_by")
    if releaser and reviewer.strip().casefold() == str(releaser).casefold():
        raise InputError(f"{reviewer.strip()!r} made this release (manifest released_by); "
                         "a different person must review it")
    approval = {"reviewer": reviewer.strip(), "note": note, "os_user": releaser_of_this_process(),
                "approved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "manifest_sha256": file_sha256(folder / MANIFEST), "tabsynth_version": __version__}
    atomic_write_text(folder / APPROVALS, json.dumps(approvals(folder) + [approval], indent=2) + "\n")
    return approval


def approvals(folder: Path) -> list[dict]:
    path = Path(folder) / APPROVALS
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise VerificationError(f"{path}: not valid JSON; the sign-offs cannot be trusted") from None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def valid_approvals(folder: Path) -> list[dict]:
    current = file_sha256(Path(folder) / MANIFEST)
    return [a for a in approvals(folder) if a.get("manifest_sha256") == current]


def export(folder: Path, dest: Path, *, overwrite: bool = False) -> Path:
    """Copy the synthetic data file out, after verifying it and, where the policy asks, its sign-off, with the
    public DATA_CARD.md beside it (`data_card`)."""
    folder = Path(folder)
    manifest = verify(folder)
    if manifest.get("policy", {}).get("review_required") and not valid_approvals(folder):
        raise VerificationError(f"policy {manifest['policy'].get('name')!r} requires a reviewer's sign-off before "
                                f"export; run `tabsynth approve {folder} --reviewer NAME`")
    data = [name for name in manifest["outputs"] if name.startswith("synthetic.")]
    if len(data) != 1:
        raise VerificationError(f"{folder}: expected one synthetic data file in the manifest, found {len(data)}")
    target = export_target(Path(dest), data[0])
    card = data_card_path(target)
    for path in (target, card):
        if path.exists() and not overwrite:
            raise InputError(f"{path} already exists (use --overwrite)")
    card_text = data_card(manifest, data[0], valid_approvals(folder))
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as partial:
        shutil.copyfile(folder / data[0], partial)
        if file_sha256(partial) != manifest["outputs"][data[0]]["sha256"]:
            raise VerificationError(f"{data[0]} changed while it was copied; nothing was exported")
    atomic_write_text(card, card_text)
    return target


def export_target(dest: Path, data_name: str) -> Path:
    """DEST is a file when it ends in a data suffix (`shared/rows.parquet`), else a folder (`shared/`, made if
    missing) that receives the data file under its own name. The bytes are copied as they are, so a file target
    must keep the data file's suffix."""
    suffix = Path(data_name).suffix
    if dest.suffix.lower().lstrip(".") not in FORMATS or dest.is_dir():
        if dest.exists() and not dest.is_dir():
            raise InputError(f"{dest} is a file, not a folder; give a folder or a path ending in {suffix}")
        return dest / data_name
    if dest.suffix.lower() != suffix:
        raise InputError(f"{dest}: the release holds {data_name}, copied as it is; name the target *{suffix} "
                         "or give a folder")
    return dest
