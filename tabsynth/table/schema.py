"""Column and Schema value types, YAML round trip, and applying a schema to a raw table.

Facts about a column come in two kinds, kept apart on purpose:
`observed` facts (min, max, categories) are read from the private table; `declared` facts are
public, written by the user. A DP model may only use declared facts or pay for its own.
Inference lives in `tabsynth.table.infer`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pydantic
import yaml

from tabsynth.errors import SchemaError
from tabsynth.io.atomic import atomic_write_text
from tabsynth.io.files import read_yaml

SCHEMA_VERSION = 1
WITHHELD = "withheld from public copies of the schema"
Kind = Literal["numerical", "categorical", "boolean", "datetime", "id", "pii"]
PiiHandling = Literal["fake", "drop"]
MODELLED_KINDS = ("numerical", "categorical", "boolean", "datetime")
# The dtype a column of each kind gets when its schema entry names none: one that holds missing values too.
DEFAULT_DTYPES = {"numerical": "float64", "categorical": "object", "boolean": "object",
                  "datetime": "datetime64[ns]", "id": "object", "pii": "object"}
SCHEMA_FILE_HEADER = """\
# tabsynth schema. Edit it, then pass it back with --schema; your entries override inference.
#   kind:      numerical | categorical | boolean | datetime | id (regenerated unique) | pii (never modelled)
#   handling:  for pii columns, fake (fake values of the same kind) or drop (left out of the release)
#   declared:  public facts you vouch for, e.g. {min: 0, max: 120} or {categories: [a, b, c]}
#   observed:  read from the private table; refreshed from the data on every run, shown for review
"""


@dataclass(frozen=True)
class Facts:
    """Bounds and category list of one column; datetimes are ISO strings."""

    min: float | int | str | None = None
    max: float | int | str | None = None
    categories: tuple[Any, ...] | None = None

    def is_empty(self) -> bool:
        return self.min is None and self.max is None and self.categories is None


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    dtype: str
    reason: str = "declared in schema file"
    missing: float | None = 0.0  # None: withheld (a public copy of the schema does not disclose it)
    discrete: bool = False
    decimals: int | None = None
    pii: str | None = None
    handling: PiiHandling = "fake"
    datetime_format: str | None = None
    nullable: bool | None = None  # None: whatever the dtype can hold (a DP schema decides it from noisy counts)
    observed: Facts = field(default_factory=Facts)
    declared: Facts = field(default_factory=Facts)

    @property
    def modelled(self) -> bool:
        return self.kind in MODELLED_KINDS

    def bounds(self) -> Facts:
        """Declared facts where given, observed otherwise (for non-DP models only)."""
        d, o = self.declared, self.observed
        return Facts(
            min=o.min if d.min is None else d.min,
            max=o.max if d.max is None else d.max,
            categories=o.categories if d.categories is None else d.categories,
        )


@dataclass(frozen=True)
class Schema:
    columns: tuple[Column, ...]
    version: int = SCHEMA_VERSION

    def __post_init__(self):
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SchemaError(f"duplicate column name(s) in schema: {', '.join(map(repr, dupes))}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __getitem__(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    def modelled(self) -> list[Column]:
        return [c for c in self.columns if c.modelled]

    def released(self) -> list[Column]:
        """Columns present in a synthetic table: everything except PII set to be dropped."""
        return [c for c in self.columns if not (c.kind == "pii" and c.handling == "drop")]

    def datetime_formats(self) -> dict[str, str]:
        """Column name -> its datetime_format, for the columns that have one."""
        return {c.name: c.datetime_format for c in self.columns if c.datetime_format}

    def replace(self, name: str, **changes) -> Schema:
        cols = tuple(dataclasses.replace(c, **changes) if c.name == name else c for c in self.columns)
        return Schema(cols, self.version)

    def public(self) -> dict:
        """The schema without statistics of the private table: no observed facts, missing shares or the
        inference reasons (they quote counts); safe for manifests and DP model folders."""
        data = self.to_dict()
        for col in data["columns"]:
            col.pop("observed", None)
            col.update(missing=None, reason=WITHHELD)
        return data

    def to_dict(self) -> dict:
        return {"version": self.version, "columns": [_column_to_dict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Any) -> Schema:
        try:
            return _SCHEMA_ADAPTER.validate_python(_with_default_dtypes(data))
        except pydantic.ValidationError as exc:
            raise SchemaError(*_validation_lines(exc, data)) from None

    def save(self, path: str | Path) -> None:
        text = SCHEMA_FILE_HEADER
        text += yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        atomic_write_text(Path(path), text)

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        return cls.from_dict(read_yaml(Path(path), "schema", SchemaError))

    def to_frame(self) -> pd.DataFrame:
        """One row per column, for review: name, kind, dtype, PII kind and handling, missing share (None where
        withheld), declared facts, and why inference decided so."""
        return pd.DataFrame([_column_row(c) for c in self.columns], columns=list(_ROW_FIELDS))

    def __str__(self) -> str:
        shown = _shown(self.to_frame())
        widths = {name: max(len(name), *map(len, shown[name])) for name in shown.columns}
        text = shown.to_string(index=False, justify="left",
                               formatters={name: f"{{:<{width}}}".format for name, width in widths.items()})
        return "\n".join(line.rstrip() for line in text.splitlines())

    def _repr_html_(self) -> str:
        """The table of `to_frame`, as Jupyter shows it."""
        return _shown(self.to_frame()).to_html(index=False)


for _cls in (Facts, Column, Schema):
    _cls.__pydantic_config__ = pydantic.ConfigDict(extra="forbid")
_SCHEMA_ADAPTER = pydantic.TypeAdapter(Schema)


def _with_default_dtypes(data: Any) -> Any:
    """A column written without `dtype` (say, after its kind was edited) gets its kind's usual dtype."""
    if not isinstance(data, dict) or not isinstance(data.get("columns"), list):
        return data
    columns = [{**c, "dtype": DEFAULT_DTYPES.get(c.get("kind"), "object")}
               if isinstance(c, dict) and c.get("dtype") is None else c for c in data["columns"]]
    return {**data, "columns": columns}


def _column_to_dict(col: Column) -> dict:
    out = {"name": col.name, "kind": col.kind, "dtype": col.dtype, "reason": col.reason, "missing": col.missing}
    if col.kind == "numerical":
        out.update(discrete=col.discrete, decimals=col.decimals)
    if col.kind == "pii":
        out.update(pii=col.pii, handling=col.handling)
    if col.datetime_format:
        out["datetime_format"] = col.datetime_format
    if col.nullable is not None:
        out["nullable"] = col.nullable
    for name in ("observed", "declared"):
        facts = getattr(col, name)
        if not facts.is_empty():
            out[name] = {k: _plain(v) for k, v in dataclasses.asdict(facts).items() if v is not None}
    return out


_ROW_FIELDS = ("name", "kind", "dtype", "pii", "handling", "missing", "declared", "reason")


def _column_row(col: Column) -> dict:
    return {"name": col.name, "kind": col.kind, "dtype": col.dtype, "pii": col.pii,
            "handling": col.handling if col.kind == "pii" else None, "missing": col.missing,
            "declared": _facts_text(col.declared), "reason": col.reason}


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells for display: blanks for nothing, missing shares as percentages."""
    missing = frame["missing"].map(lambda share: "withheld" if pd.isna(share) else f"{share:.1%}")
    return frame.astype(object).where(frame.notna(), "").astype(str).assign(missing=missing)


def _facts_text(facts: Facts) -> str | None:
    """`min 0, max 120` or `categories a, b, c`; None when nothing is declared."""
    parts = [f"{name} {_plain(getattr(facts, name))}" for name in ("min", "max") if getattr(facts, name) is not None]
    if facts.categories is not None:
        parts.append("categories " + ", ".join(str(_plain(v)) for v in facts.categories))
    return ", ".join(parts) or None


def _plain(value):
    """YAML-safe plain Python value (numpy scalars and tuples become int/float/list)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _validation_lines(exc: pydantic.ValidationError, data: Any) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = "schema"
        if len(loc) >= 2 and loc[0] == "columns" and isinstance(loc[1], int):
            try:
                where = f"column {data['columns'][loc[1]].get('name', loc[1])!r}"
            except (KeyError, IndexError, TypeError, AttributeError):
                where = f"column #{loc[1] + 1}"
            loc = loc[2:]
        field_name = ".".join(str(p) for p in loc if not str(p).startswith(("function", "union")))
        lines.append(f"{where}: {field_name + ': ' if field_name else ''}{err['msg']}")
    return lines


def check_matches(schema: Schema, frame: pd.DataFrame) -> None:
    """Every schema column must exist in the table, and the reverse."""
    missing = [n for n in schema.names if n not in frame.columns]
    extra = [str(n) for n in frame.columns if n not in schema.names]
    problems = [f"column {n!r} is in the schema but not in the table" for n in missing]
    problems += [f"column {n!r} is in the table but not in the schema" for n in extra]
    if problems:
        raise SchemaError(*problems)
