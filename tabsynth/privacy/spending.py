"""Deciding what a DP fit may spend, and debiting the ledger for it before a single row is read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from tabsynth.errors import InputError, PolicyError
from tabsynth.io.digest import table_digest
from tabsynth.io.files import file_sha256
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.ledger import Ledger
from tabsynth.privacy.mechanisms import RandomSource

DEFAULT_EPSILON = 1.0
DEFAULT_DELTA = 1e-9


class PrivacyLimits(Protocol):
    """The privacy part of a release policy that spending reads (`tabsynth.publish.policy.Privacy` is one)."""

    @property
    def require_dp(self) -> bool: ...

    @property
    def max_epsilon(self) -> float | None: ...

    @property
    def max_delta(self) -> float | None: ...

    @property
    def source_epsilon_cap(self) -> float: ...

    @property
    def source_delta_cap(self) -> float: ...


class PrivacyPolicy(Protocol):
    """What spending reads of a release policy (`tabsynth.publish.policy.Policy` is one): its name, for the
    errors, and its privacy limits. A protocol, so that privacy/ does not import release/."""

    @property
    def name(self) -> str: ...

    @property
    def privacy(self) -> PrivacyLimits: ...


@dataclass(frozen=True)
class Request:
    """The (ε, δ) one fit asks for, checked against the policy's per-release limits."""

    epsilon: float
    delta: float


def plan(private: bool, policy: PrivacyPolicy, epsilon: float | None, delta: float | None,
         model: str) -> Request | None:
    """None for a non-DP model; otherwise the request, or one clear error before any work."""
    if not private:
        if policy.privacy.require_dp:
            raise PolicyError(f"policy {policy.name!r} requires a differentially private model; {model!r} is not "
                              "(choose --model dp-marginal)")
        if epsilon is not None or delta is not None:
            raise InputError(f"model {model!r} is not differentially private; --epsilon/--delta apply to DP models")
        return None
    limits = policy.privacy
    request = Request(epsilon=epsilon if epsilon is not None else (limits.max_epsilon or DEFAULT_EPSILON),
                      delta=delta if delta is not None else min(DEFAULT_DELTA, limits.max_delta or 1.0))
    if limits.max_epsilon is not None and request.epsilon > limits.max_epsilon:
        raise PolicyError(f"policy {policy.name!r} allows at most epsilon {limits.max_epsilon:g} per release; "
                          f"asked for {request.epsilon:g}")
    if limits.max_delta is not None and request.delta > limits.max_delta:
        raise PolicyError(f"policy {policy.name!r} allows at most delta {limits.max_delta:g} per release; "
                          f"asked for {request.delta:g}")
    Budget(request.epsilon, request.delta, RandomSource.system())  # validates the numbers, spends nothing
    return request


@dataclass(frozen=True)
class Source:
    """What the ledger charges: an identity, the name a person knows the source by, and the identities an older
    tabsynth gave the same source (their debits count against the caps too)."""

    identity: str
    name: str | None = None
    aliases: tuple[str, ...] = ()
    declared: bool = True  # False: the identity is a digest of the rows, kept in the ledger and out of the manifest


def declared_identity(source, given: str | None, policy: PrivacyPolicy) -> str | None:
    """The identity known before any row is read: the user's --source-id; else, for a database table, where it
    lives (the URL without driver or password, and schema.table), so the table stays one source as its rows change.
    None for a file: its identity is a digest of its parsed rows (`ledger_source`), taken once they are read.
    A --query needs --source-id, and so does a file under a policy that requires DP: a file that gains rows every
    day would otherwise get a fresh budget every day."""
    from tabsynth.io.sql import SqlSource

    if given:
        return given
    if isinstance(source, SqlSource):
        return source.ledger_identity()
    if policy.privacy.require_dp:
        raise PolicyError(f"policy {policy.name!r} needs --source-id naming this table in the privacy ledger (a file "
                          "is otherwise known by its rows, and each day's version of a growing table would get a "
                          "fresh budget)")
    return None


def ledger_source(source, declared: str | None, rows: pd.DataFrame, file_digest: str | None = None) -> Source:
    """The declared identity, or the digest of the parsed rows: the same for CSV, CRLF CSV or Parquet copies (the
    file's SHA-256, `file_digest` if the caller has it, is the alias an older tabsynth charged)."""
    from tabsynth.io.sql import source_name

    if declared:
        return Source(declared, source_name(source))
    aliases = (f"sha256:{file_digest or file_sha256(source)}",) if isinstance(source, Path) else ()
    return Source(f"rows-sha256:{table_digest(rows)}", source_name(source), aliases, declared=False)


def charge(request: Request, *, source: Source | str, policy: PrivacyPolicy, model: str, ledger_url: str | None,
           note: str = "") -> tuple[Budget, dict]:
    """Debit the ledger (committed before the fit starts, so a killed fit still counts) and hand out the budget.
    Its noise always comes from the OS CSPRNG: a user's --seed fixes only the split and the sampling."""
    source = Source(source) if isinstance(source, str) else source
    ledger = Ledger(ledger_url)
    entry = ledger.debit(source.identity, request.epsilon, request.delta, name=source.name, aliases=source.aliases,
                         cap_epsilon=policy.privacy.source_epsilon_cap, cap_delta=policy.privacy.source_delta_cap,
                         model=model, note=note)
    spent_epsilon, spent_delta = ledger.spent(source.identity, *source.aliases)
    shown = source.identity if source.declared else f"{source.name} (known in the ledger by a digest of its rows)"
    record = {"ledger": ledger.url, "source": shown, "entry": entry.entry,
              "source_spent": {"epsilon": spent_epsilon, "delta": spent_delta},
              "source_cap": {"epsilon": policy.privacy.source_epsilon_cap, "delta": policy.privacy.source_delta_cap}}
    return Budget(request.epsilon, request.delta, RandomSource.system()), record
