"""Deciding what a DP fit may spend, and debiting the ledger for it before a single row is read."""

from __future__ import annotations

from dataclasses import dataclass

from tabsynth.errors import InputError, PolicyError
from tabsynth.io.files import file_sha256
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.ledger import Ledger
from tabsynth.privacy.mechanisms import RandomSource
from tabsynth.release.policy import Policy

DEFAULT_EPSILON = 1.0
DEFAULT_DELTA = 1e-9


@dataclass(frozen=True)
class Request:
    """The (ε, δ) one fit asks for, checked against the policy's per-release limits."""

    epsilon: float
    delta: float


def plan(private: bool, policy: Policy, epsilon: float | None, delta: float | None, model: str) -> Request | None:
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


def source_identity(source, given: str | None) -> str:
    """The name the ledger charges: the user's --source-id; else, for a database table, where it lives (the URL
    without driver or password, and schema.table), so the table stays one source as its rows change; else the
    file's (or Parquet folder's) content hash, so a copy is the same source. A --query needs --source-id."""
    return source_identity_and_digest(source, given)[0]


def source_identity_and_digest(source, given: str | None) -> tuple[str, str | None]:
    """source_identity, and the file's SHA-256 when that names the source (else None), so the manifest can
    record the hash without reading the file again."""
    from tabsynth.io.sql import SqlSource

    if given:
        return given, None
    if isinstance(source, SqlSource):
        return source.ledger_identity(), None
    digest = file_sha256(source)
    return f"sha256:{digest}", digest


def charge(request: Request, *, source: str, policy: Policy, model: str, ledger_url: str | None,
           note: str = "") -> tuple[Budget, dict]:
    """Debit the ledger (committed before the fit starts, so a killed fit still counts) and hand out the budget.
    Its noise always comes from the OS CSPRNG: a user's --seed fixes only the split and the sampling."""
    ledger = Ledger(ledger_url)
    entry = ledger.debit(source, request.epsilon, request.delta, cap_epsilon=policy.privacy.source_epsilon_cap,
                         cap_delta=policy.privacy.source_delta_cap, model=model, note=note)
    spent_epsilon, spent_delta = ledger.spent(source)
    record = {"ledger": ledger.url, "source": source, "entry": entry.entry,
              "source_spent": {"epsilon": spent_epsilon, "delta": spent_delta},
              "source_cap": {"epsilon": policy.privacy.source_epsilon_cap, "delta": policy.privacy.source_delta_cap}}
    return Budget(request.epsilon, request.delta, RandomSource.system()), record
