"""The linked model's folder: `linked.json` (relations, schemas, caps, key spaces, each sequence model's JSON
state and the SHA-256 of the arrays), `arrays.npz` (every sequence model's arrays) and `root/`, the root
table's model folder (`models.base`). Loading never unpickles: pickle-like files are refused, arrays are read
with `allow_pickle=False`, and a hash mismatch or an unknown format stops the load."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from tabsynth._version import __version__
from tabsynth.errors import ModelError
from tabsynth.io.atomic import atomic_write_bytes, atomic_write_text
from tabsynth.models.base import PICKLE_MAGIC, load_model, save_model
from tabsynth.models.linked.keys import KeySpace
from tabsynth.models.linked.layout import OrderGaps
from tabsynth.table.dataset import Relations, relations_from_dict
from tabsynth.table.schema import Schema

FORMAT, FORMAT_VERSION = "tabsynth-linked-model", 1
LINKED_FILE, ARRAYS_FILE, ROOT_FOLDER = "linked.json", "arrays.npz", "root"


def save_linked(model, folder) -> None:
    """Write the folder; the caller publishes it atomically (see io.atomic.staged_directory)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model.root_, model.root_schema_, folder / ROOT_FOLDER)
    sequences, arrays = {}, {}
    for i, (name, sequence) in enumerate(model.sequences_.items()):
        state, sequence_arrays = sequence.get_state()
        sequences[name] = {"state": state, "prefix": f"s{i}_"}
        arrays |= {f"s{i}_{key}": value for key, value in sequence_arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(folder / ARRAYS_FILE, buffer.getvalue())
    document = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tabsynth_version": __version__,
        "model": model.model, "params": model.params, "relations": _relations_dict(model.relations_),
        "schemas": {name: schema.to_dict() for name, schema in model.schemas_.items()},
        "persons": model.persons_, "caps": model.caps_, "starts": model.starts_,
        "orders": {name: {"column": Schema((order.column,)).to_dict(), "unit": order.unit}
                   for name, order in model.orders_.items()},
        "keys": {name: {c: space.state() for c, space in spaces.items()} for name, spaces in model.keys_.items()},
        "sequences": sequences, "arrays": {ARRAYS_FILE: hashlib.sha256(buffer.getvalue()).hexdigest()},
    }
    atomic_write_text(folder / LINKED_FILE, json.dumps(document, indent=1, allow_nan=False))


def read_linked(folder, cls):
    from tabsynth.models.linked.sequence import SequenceModel

    folder = Path(folder)
    document = _read_document(folder)
    arrays = _read_arrays(folder, document["arrays"])
    model = cls(document["model"], **document["params"])
    model.relations_ = relations_from_dict({"tables": document["relations"]}, where=str(folder / LINKED_FILE))
    model.schemas_ = {name: Schema.from_dict(data) for name, data in document["schemas"].items()}
    model.persons_, model.caps_, model.starts_ = document["persons"], document["caps"], document["starts"]
    model.orders_ = {name: OrderGaps(Schema.from_dict(o["column"]).columns[0], o["unit"])
                     for name, o in document["orders"].items()}
    model.keys_ = {name: {c: KeySpace(**space) for c, space in spaces.items()}
                   for name, spaces in document["keys"].items()}
    model.root_, model.root_schema_ = load_model(folder / ROOT_FOLDER)
    model.sequences_ = {
        name: SequenceModel.from_state(entry["state"], {k.removeprefix(entry["prefix"]): v for k, v in arrays.items()
                                                        if k.startswith(entry["prefix"])})
        for name, entry in document["sequences"].items()}
    return model


def _relations_dict(relations: Relations) -> dict:
    return {name: {"primary_key": t.primary_key, "order_by": t.order_by,
                   "foreign_keys": [{"column": fk.column, "references": f"{fk.parent}.{fk.parent_column}"}
                                    for fk in t.foreign_keys]}
            for name, t in relations.tables.items()}


def _read_document(folder: Path) -> dict:
    if not (folder / LINKED_FILE).is_file():
        raise ModelError(f"{folder} is not a linked model folder (no {LINKED_FILE})")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                head = handle.read(2)
            if head in PICKLE_MAGIC or path.suffix in (".pkl", ".pickle", ".pt", ".joblib"):
                raise ModelError(f"{path.name}: refusing a pickle file in a model folder (it could run code)")
    try:
        document = json.loads((folder / LINKED_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{folder / LINKED_FILE}: not valid JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ModelError(f"{folder / LINKED_FILE}: not a tabsynth linked model file")
    if document.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{folder / LINKED_FILE}: unknown format version {document.get('format_version')!r}")
    return document


def _read_arrays(folder: Path, hashes: dict) -> dict[str, np.ndarray]:
    payload = (folder / ARRAYS_FILE).read_bytes()
    if hashlib.sha256(payload).hexdigest() != hashes.get(ARRAYS_FILE):
        raise ModelError(f"{folder / ARRAYS_FILE}: hash does not match {LINKED_FILE} (file changed or corrupt)")
    with np.load(io.BytesIO(payload), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
