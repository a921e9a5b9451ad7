"""The persistent privacy-budget ledger: each DP fit debits its (ε, δ) here before it reads a row.

Composition across releases is basic: the ε and δ debited against one source add up. A debit is one
transaction that serializes on the source, sums what it has spent, and either refuses or commits the new
entry, so concurrent fits cannot overspend a cap, and a fit killed later never loses its debit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count
from numbers import Real
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from tabsynth.errors import BudgetExceededError, InputError

BUSY_TIMEOUT_S = 30.0
RETRIES = 8
RELATIVE_TOLERANCE = 1e-9
MAX_SOURCE_LENGTH = 512
_CONFLICT_STATES = {"40001", "40P01"}  # SQLSTATE: serialization failure, deadlock detected
_T = TypeVar("_T")

_metadata = sa.MetaData()
_spends = sa.Table(
    "tabsynth_privacy_ledger",
    _metadata,
    sa.Column("entry", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(MAX_SOURCE_LENGTH), nullable=False, index=True),
    sa.Column("epsilon", sa.Double, nullable=False),
    sa.Column("delta", sa.Double, nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("name", sa.String(MAX_SOURCE_LENGTH), nullable=True),  # what a person calls the source (file, table)
)


def _home_ledger_file() -> Path:
    return Path(os.environ.get("TABSYNTH_HOME") or "~/.tabsynth").expanduser() / "ledger.db"


DEFAULT_URL = f"sqlite:///{_home_ledger_file()}"
"""The SQLite ledger under `$TABSYNTH_HOME` as the environment stood at import; `default_url()` reads it afresh."""


def default_url() -> str:
    """`$TABSYNTH_LEDGER` if set, else the SQLite file `$TABSYNTH_HOME/ledger.db` (folder created if missing)."""
    if override := os.environ.get("TABSYNTH_LEDGER"):
        return override
    path = _home_ledger_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Spend:
    """One committed debit."""

    entry: int
    source: str
    epsilon: float
    delta: float
    model: str
    note: str
    created: str
    name: str | None = None


class Ledger:
    """Append-only record of the privacy budget spent on each source table, kept in a SQL database."""

    def __init__(self, url: str | None = None):
        self._url = _parse_url(url or default_url())
        try:
            self._engine = _engine(self._url)
        except (SQLAlchemyError, ImportError) as error:
            raise self._unusable(error) from error
        self._transaction("tables", _create_or_migrate)

    @property
    def url(self) -> str:
        """The database URL, password masked."""
        return self._url.render_as_string(hide_password=True)

    def debit(
        self, source: str, epsilon: float, delta: float, *,
        cap_epsilon: float, cap_delta: float, model: str, note: str = "", name: str | None = None,
        aliases: tuple[str, ...] = (),
    ) -> Spend:
        """Record a spend of (ε, δ) on `source`, or raise `BudgetExceededError` if it would pass either cap.
        `name` is how a person knows the source (a file or table name); what was debited under `aliases` (the
        same source's identity in an older ledger) counts against the caps too."""
        _check_debit(source, epsilon, delta, cap_epsilon, cap_delta)
        asked, caps = (float(epsilon), float(delta)), (float(cap_epsilon), float(cap_delta))

        def charge(connection: Connection) -> Spend:
            spent = _spent(connection, source, *aliases)
            if _over_cap(spent, asked, caps):
                raise BudgetExceededError(_refusal(source, spent, asked, caps, name))
            return _insert(connection, source, asked, model, note, name)

        return self._transaction(f"source:{source}", charge)

    def spent(self, source: str, *aliases: str) -> tuple[float, float]:
        """Total (ε, δ) debited against `source` (and its `aliases`); (0.0, 0.0) if it has none."""
        return self._transaction(None, lambda connection: _spent(connection, source, *aliases))

    def history(self, source: str | None = None) -> list[Spend]:
        """Every debit, oldest first; only those of `source` if given."""
        query = sa.select(_spends).order_by(_spends.c.entry)
        if source is not None:
            query = query.where(_spends.c.source == source)
        return self._transaction(None, lambda connection: [Spend(**row._mapping) for row in connection.execute(query)])

    def totals(self) -> list[dict]:
        """One dict per source, by identity: source, names (every name it was debited under), releases, epsilon,
        delta, last (when it was last debited)."""
        query = (
            sa.select(
                _spends.c.source,
                sa.func.count().label("releases"),
                sa.func.sum(_spends.c.epsilon).label("epsilon"),
                sa.func.sum(_spends.c.delta).label("delta"),
                sa.func.max(_spends.c.created).label("last"),
            )
            .group_by(_spends.c.source)
            .order_by(_spends.c.source)
        )
        named = sa.select(_spends.c.source, _spends.c.name).where(_spends.c.name.is_not(None)).distinct()

        def read(connection: Connection) -> list[dict]:
            names: dict[str, list[str]] = {}
            for source, name in connection.execute(named):
                names.setdefault(source, []).append(name)
            return [dict(row._mapping) | {"names": sorted(names.get(row.source, []))}
                    for row in connection.execute(query)]

        return self._transaction(None, read)

    def _transaction(self, lock: str | None, work: Callable[[Connection], _T]) -> _T:
        """Run `work` in one transaction holding `lock`; rerun it, a bounded number of times, after a conflict."""
        for attempt in count(1):
            try:
                with self._engine.begin() as connection:
                    if lock is not None and connection.dialect.name == "postgresql":
                        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(lock)})
                    return work(connection)
            except DBAPIError as error:
                if attempt == RETRIES or not _is_conflict(error):
                    raise self._unusable(error) from error
                time.sleep(0.01 * 2**attempt)
            except SQLAlchemyError as error:
                raise self._unusable(error) from error

    def _unusable(self, error: Exception) -> InputError:
        reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or ["unknown error"])[0]
        if self._url.password:
            reason = reason.replace(str(self._url.password), "***")
        return InputError(f"the privacy ledger at {self.url} cannot be used: {reason}")


def _parse_url(url: str) -> URL:
    try:
        return sa.make_url(url)
    except SQLAlchemyError:
        raise InputError("the privacy ledger URL is not a SQLAlchemy URL (dialect://user@host/database)") from None


def _engine(url: URL) -> Engine:
    """SQLite locks the whole file at BEGIN; PostgreSQL takes a per-source advisory lock; others run SERIALIZABLE."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        return sa.create_engine(_installed_postgresql_driver(url), poolclass=NullPool)
    return sa.create_engine(url, poolclass=NullPool, isolation_level="SERIALIZABLE")


def _sqlite_engine(url: URL) -> Engine:
    if url.database in (None, "", ":memory:"):
        raise InputError("the privacy ledger must persist: give a SQLite file, not an in-memory database")
    engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": BUSY_TIMEOUT_S})
    sa.event.listen(engine, "connect", _disable_implicit_begin)
    sa.event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def _disable_implicit_begin(dbapi_connection, _record) -> None:
    # pysqlite would otherwise open its own deferred transaction, which takes the write lock too late.
    dbapi_connection.isolation_level = None


def _installed_postgresql_driver(url: URL) -> URL:
    """A bare `postgresql://` means psycopg 3 to SQLAlchemy 2.1; use psycopg2 where only it is installed."""
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        return url.set(drivername="postgresql+psycopg2")
    return url


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"tabsynth-ledger").digest()
    return int.from_bytes(digest, "big", signed=True)


def _is_conflict(error: DBAPIError) -> bool:
    """A serialization failure or deadlock: the transaction can simply run again."""
    state = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
    message = str(error.orig).lower()
    return state in _CONFLICT_STATES or "deadlock" in message or "serializ" in message


def _is_amount(value, upper: float = math.inf) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= upper


def _check_debit(source, epsilon, delta, cap_epsilon, cap_delta) -> None:
    problems = []
    if not isinstance(source, str) or not source.strip():
        problems.append(f"a ledger debit needs a non-empty source name, got {source!r}")
    elif len(source) > MAX_SOURCE_LENGTH:
        problems.append(f"the ledger source name is longer than {MAX_SOURCE_LENGTH} characters")
    for name, value, upper in [
        ("epsilon", epsilon, math.inf), ("delta", delta, 1.0),
        ("cap_epsilon", cap_epsilon, math.inf), ("cap_delta", cap_delta, 1.0),
    ]:
        if not _is_amount(value, upper):
            problems.append(f"{name} must be a finite number between 0 and {upper:g}, got {value!r}")
    if problems:
        raise InputError(*problems)


def _create_or_migrate(connection: Connection) -> None:
    """Create the table, or add the `name` column to a ledger written before names were recorded."""
    _metadata.create_all(connection)
    if "name" not in {column["name"] for column in sa.inspect(connection).get_columns(_spends.name)}:
        connection.execute(sa.text(f"ALTER TABLE {_spends.name} ADD COLUMN name VARCHAR({MAX_SOURCE_LENGTH})"))


def _spent(connection: Connection, *sources: str) -> tuple[float, float]:
    totals = [sa.func.coalesce(sa.func.sum(column), 0.0) for column in (_spends.c.epsilon, _spends.c.delta)]
    epsilon, delta = connection.execute(sa.select(*totals).where(_spends.c.source.in_(sources))).one()
    return float(epsilon), float(delta)


def _over_cap(spent: tuple[float, float], asked: tuple[float, float], caps: tuple[float, float]) -> bool:
    return any(used + more > cap * (1 + RELATIVE_TOLERANCE) for used, more, cap in zip(spent, asked, caps, strict=True))


def _refusal(source: str, spent: tuple[float, float], asked: tuple[float, float], caps: tuple[float, float],
             name: str | None = None) -> str:
    def pair(values: tuple[float, float]) -> str:
        return f"ε={values[0]:.6g}, δ={values[1]:.6g}"

    named = f" ({name})" if name and name != source else ""
    return f"privacy budget of {source!r}{named} exceeded: spent {pair(spent)}; asked {pair(asked)}; cap {pair(caps)}"


def _insert(connection: Connection, source: str, asked: tuple[float, float], model: str, note: str,
            name: str | None) -> Spend:
    values = {
        "source": source, "epsilon": asked[0], "delta": asked[1], "model": model, "note": note, "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    entry = connection.execute(sa.insert(_spends).values(**values)).inserted_primary_key[0]
    return Spend(entry=entry, **values)
