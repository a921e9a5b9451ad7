"""A database's own description of its tables: names, primary keys and foreign keys, read from the catalogue
(SQLAlchemy's inspector), as plain dicts. The rows are read elsewhere (`sql.read_source`), table by table."""

from __future__ import annotations

import sqlalchemy as sa

from tabsynth.errors import InputError
from tabsynth.io.sql import check_sqlite_file, connected, parse_url, public_url, qualified


def read_catalogue(url_text: str, schema: str | None = None) -> list[dict]:
    """Every table of `schema` (the database's default schema when None), each as
    `{"name", "schema", "primary_key": [columns], "foreign_keys": [{"columns", "parent", "parent_columns"}]}`."""
    url = parse_url(url_text)
    check_sqlite_file(url)
    with connected(url, "reading the catalogue of") as connection:
        inspector = sa.inspect(connection)
        schema = schema or inspector.default_schema_name
        if schema not in inspector.get_schema_names():
            raise InputError(f"schema {schema!r} not found in {public_url(url)}")
        names = sorted(inspector.get_table_names(schema=schema))
        tables = [_describe(inspector, name, schema) for name in names]
    if not tables:
        raise InputError(f"{public_url(url)} has no tables in schema {schema!r}")
    return tables


def _describe(inspector, name: str, schema: str) -> dict:
    primary = inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or []
    foreign = [{"columns": list(fk["constrained_columns"]), "parent": fk["referred_table"],
                "parent_schema": fk.get("referred_schema") or schema, "parent_columns": list(fk["referred_columns"])}
               for fk in inspector.get_foreign_keys(name, schema=schema)]
    return {"name": name, "schema": schema, "qualified": qualified(schema, name), "primary_key": list(primary),
            "foreign_keys": foreign}
