"""The synthesizer contract, the model registry (kept in `registry`, light to import), and the safe model-folder
format.

A model folder holds `model.json` (format version, model name, parameters, schema, JSON state and the
SHA-256 of every array file) and `arrays.npz` (plain numeric arrays). Loading never unpickles:
arrays are read with `allow_pickle=False`, any file that starts like a pickle is refused, and a
hash mismatch or an unknown format version stops the load.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tabsynth._version import __version__
from tabsynth.errors import ModelError
from tabsynth.io.atomic import atomic_write_bytes, atomic_write_text
from tabsynth.models.registry import REGISTRY, create_model, model_class  # noqa: F401  (the registry, re-exported)
from tabsynth.table.schema import Schema

FORMAT = "tabsynth-model"
FORMAT_VERSION = 1
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
PICKLE_MAGIC = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@runtime_checkable
class Synthesizer(Protocol):
    name: str

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget=None, rng=None) -> Synthesizer: ...

    def sample(self, n: int | None = None, *, conditions=None, rng=None) -> pd.DataFrame: ...

    def get_params(self) -> dict[str, Any]: ...

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]: ...

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None: ...



def save_model(model: Synthesizer, schema: Schema, folder: str | Path) -> None:
    """Write a model folder; the caller publishes it atomically (see io.atomic.staged_directory)."""
    folder = Path(folder)
    state, arrays = model.get_state()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    atomic_write_bytes(folder / ARRAYS_FILE, payload)
    document = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tabsynth_version": __version__,
        "model": model.name, "params": model.get_params(), "schema": _saved_schema(model, schema), "state": state,
        "arrays": {ARRAYS_FILE: hashlib.sha256(payload).hexdigest()},
    }
    atomic_write_text(folder / MODEL_FILE, json.dumps(document, indent=1, allow_nan=False))


def is_private(model_or_class) -> bool:
    """True for differentially private models: they may only see public facts and must pay for the rest."""
    return bool(getattr(model_or_class, "differentially_private", False))


def _saved_schema(model: Synthesizer, schema: Schema) -> dict:
    """A DP model's folder must not carry facts read from the private table (min, max, category lists)."""
    return schema.public() if is_private(model) else schema.to_dict()


def load_model(folder: str | Path) -> tuple[Synthesizer, Schema]:
    folder = Path(folder)
    _refuse_pickles(folder)
    document = _read_document(folder)
    schema = Schema.from_dict(document["schema"])
    model = create_model(document["model"], **document["params"])
    arrays = _read_arrays(folder, document["arrays"])
    try:
        model.set_state(schema, document["state"], arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder}: model state is incomplete or corrupt ({exc})") from None
    return model, schema


def _refuse_pickles(folder: Path) -> None:
    if not (folder / MODEL_FILE).is_file():
        raise ModelError(f"{folder} is not a tabsynth model folder (no {MODEL_FILE})")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                head = handle.read(2)
            if head in PICKLE_MAGIC or path.suffix in (".pkl", ".pickle", ".pt", ".joblib"):
                raise ModelError(f"{path.name}: refusing a pickle file in a model folder (it could run code)")


def _read_document(folder: Path) -> dict:
    try:
        document = json.loads((folder / MODEL_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{folder / MODEL_FILE}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelError(f"{folder / MODEL_FILE}: not a tabsynth model file")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{folder / MODEL_FILE}: unknown format version {document.get('format_version')!r} "
                         f"(this tabsynth reads version {FORMAT_VERSION})")
    missing = [k for k in ("model", "params", "schema", "state", "arrays") if k not in document]
    if missing:
        raise ModelError(f"{folder / MODEL_FILE}: missing {', '.join(missing)}")
    return document


def _read_arrays(folder: Path, hashes: dict) -> dict[str, np.ndarray]:
    if set(hashes) != {ARRAYS_FILE}:
        raise ModelError(f"{folder}: model file names unexpected array files {sorted(hashes)}")
    payload = (folder / ARRAYS_FILE).read_bytes()
    if hashlib.sha256(payload).hexdigest() != hashes[ARRAYS_FILE]:
        raise ModelError(f"{folder / ARRAYS_FILE}: hash does not match model.json (file changed or corrupt)")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except ValueError as exc:
        raise ModelError(f"{folder / ARRAYS_FILE}: refused ({exc})") from None
