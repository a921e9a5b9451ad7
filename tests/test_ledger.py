import multiprocessing
import os
import subprocess
import sys
import uuid

import pytest
import sqlalchemy as sa

from tabsynth.errors import BudgetExceededError, InputError
from tabsynth.privacy.ledger import Ledger, Spend, default_url

POSTGRES_URL = os.environ.get("TABSYNTH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CAPS = {"cap_epsilon": 1.0, "cap_delta": 1e-5}
RACE_ROUNDS = 4


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def postgres_url():
    """The test database, with this run's rows removed afterwards; PostgreSQL is required when CI is set."""
    try:
        Ledger(POSTGRES_URL)
    except InputError as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required on CI: {error}")
        pytest.skip(f"PostgreSQL unreachable: {error}")
    prefix = f"test-{uuid.uuid4().hex}"
    yield POSTGRES_URL, prefix
    engine = sa.create_engine(sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg2"))
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM tabsynth_privacy_ledger WHERE source LIKE :p"), {"p": f"{prefix}%"})
    engine.dispose()


def test_debit_spent_history_totals(sqlite_url):
    ledger = Ledger(sqlite_url)
    first = ledger.debit("adult.csv", 0.25, 1e-6, **CAPS, model="dp_marginal", note="first fit")
    ledger.debit("adult.csv", 0.5, 2e-6, **CAPS, model="dp_ctgan")
    ledger.debit("bank.csv", 0.1, 0.0, **CAPS, model="dp_marginal")

    assert isinstance(first, Spend) and first.note == "first fit" and first.created.endswith("+00:00")
    assert ledger.spent("adult.csv") == pytest.approx((0.75, 3e-6))
    assert ledger.spent("never debited") == (0.0, 0.0)
    assert [spend.model for spend in ledger.history("adult.csv")] == ["dp_marginal", "dp_ctgan"]
    assert [spend.source for spend in ledger.history()] == ["adult.csv", "adult.csv", "bank.csv"]
    assert ledger.history()[0] == first
    adult, bank = ledger.totals()
    assert (adult["source"], adult["releases"], bank["source"], bank["releases"]) == ("adult.csv", 2, "bank.csv", 1)
    assert (adult["epsilon"], adult["delta"]) == pytest.approx((0.75, 3e-6))
    assert adult["last"] == ledger.history("adult.csv")[-1].created


@pytest.mark.parametrize(("epsilon", "delta"), [(0.6, 0.0), (0.1, 6e-6)], ids=["epsilon cap", "delta cap"])
def test_over_cap_refused_and_ledger_unchanged(sqlite_url, epsilon, delta):
    ledger = Ledger(sqlite_url)
    ledger.debit("adult.csv", 0.5, 5e-6, **CAPS, model="dp_marginal")
    before = ledger.history()

    with pytest.raises(BudgetExceededError) as refused:
        ledger.debit("adult.csv", epsilon, delta, **CAPS, model="dp_marginal")

    assert len(refused.value.problems) == 1
    assert "'adult.csv'" in str(refused.value) and "spent ε=0.5" in str(refused.value)
    assert ledger.history() == before
    assert ledger.debit("other.csv", epsilon, delta, **CAPS, model="dp_marginal").source == "other.csv"


def test_cap_reached_exactly_despite_float_rounding(sqlite_url):
    ledger = Ledger(sqlite_url)
    caps = {"cap_epsilon": 0.3, "cap_delta": 0.0}
    ledger.debit("adult.csv", 0.1, 0.0, **caps, model="dp_marginal")
    ledger.debit("adult.csv", 0.2, 0.0, **caps, model="dp_marginal")  # 0.1 + 0.2 > 0.3 in floating point

    assert ledger.spent("adult.csv")[0] > 0.3
    with pytest.raises(BudgetExceededError):
        ledger.debit("adult.csv", 1e-6, 0.0, **caps, model="dp_marginal")


@pytest.mark.parametrize(
    ("source", "epsilon", "delta", "caps"),
    [
        ("", 0.1, 0.0, CAPS),
        ("adult.csv", -0.1, 0.0, CAPS),
        ("adult.csv", float("nan"), 0.0, CAPS),
        ("adult.csv", 0.1, float("inf"), CAPS),
        ("adult.csv", 0.1, 1.5, CAPS),
        ("adult.csv", 0.1, 0.0, {"cap_epsilon": float("inf"), "cap_delta": 1e-5}),
    ],
)
def test_bad_arguments_are_input_errors(sqlite_url, source, epsilon, delta, caps):
    ledger = Ledger(sqlite_url)
    with pytest.raises(InputError):
        ledger.debit(source, epsilon, delta, **caps, model="dp_marginal")
    assert ledger.history() == []


@pytest.mark.parametrize("url", ["not a url", "nosuchdialect://host/db", "sqlite://", "sqlite:////no/such/folder/x.db"])
def test_unusable_url_is_one_input_error_line(url):
    with pytest.raises(InputError) as unusable:
        Ledger(url)
    assert len(unusable.value.problems) == 1 and "\n" not in str(unusable.value)


def test_default_ledger_persists_for_a_new_process(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.delenv("TABSYNTH_LEDGER", raising=False)
    monkeypatch.setenv("TABSYNTH_HOME", str(home))
    assert default_url() == f"sqlite:///{home / 'ledger.db'}" and home.is_dir()
    Ledger().debit("adult.csv", 0.3, 1e-6, **CAPS, model="dp_marginal")

    script = "from tabsynth.privacy.ledger import Ledger; print(*Ledger().spent('adult.csv'))"
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)

    assert child.stdout.split() == ["0.3", "1e-06"]
    monkeypatch.setenv("TABSYNTH_LEDGER", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert Ledger().spent("adult.csv") == (0.0, 0.0)


def _race(url: str, sources: list[str], start, outcomes) -> None:
    """Debit ε = 1 against a cap of 1.5 on each source, starting each round together with the other racer."""
    ledger = Ledger(url)
    for source in sources:
        start.wait()
        outcomes.put((source, _debit_outcome(ledger, source)))


def _debit_outcome(ledger: Ledger, source: str) -> str:
    try:
        ledger.debit(source, 1.0, 0.0, cap_epsilon=1.5, cap_delta=0.0, model="race")
        return "debited"
    except BudgetExceededError:
        return "refused"
    except InputError as error:
        return f"failed: {error}"


def _race_two_processes(url: str, prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    sources = [f"{prefix}-round-{round_}" for round_ in range(RACE_ROUNDS)]
    start, outcomes = context.Barrier(2, timeout=60), context.Queue()
    racers = [context.Process(target=_race, args=(url, sources, start, outcomes), daemon=True) for _ in range(2)]
    for racer in racers:
        racer.start()
    results = [outcomes.get(timeout=60) for _ in range(2 * RACE_ROUNDS)]
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0

    ledger = Ledger(url)
    for source in sources:
        assert sorted(outcome for name, outcome in results if name == source) == ["debited", "refused"]
        assert ledger.spent(source) == (1.0, 0.0)


def test_concurrent_debits_cannot_overspend_sqlite(sqlite_url):
    _race_two_processes(sqlite_url, "adult.csv")


@pytest.mark.slow
def test_concurrent_debits_cannot_overspend_postgresql(postgres_url):
    _race_two_processes(*postgres_url)


def test_postgresql_ledger_and_masked_password(postgres_url):
    url, prefix = postgres_url
    with_password = sa.make_url(url).set(password="hunter2").render_as_string(hide_password=False)
    ledger = Ledger(with_password)  # the test server trusts local users, so any password is accepted
    ledger.debit(f"{prefix}-adult", 0.4, 1e-6, **CAPS, model="dp_marginal")

    assert "hunter2" not in ledger.url and "***" in ledger.url
    assert Ledger(url).spent(f"{prefix}-adult") == pytest.approx((0.4, 1e-6))
    assert [row["releases"] for row in Ledger(url).totals() if row["source"] == f"{prefix}-adult"] == [1]
    with pytest.raises(BudgetExceededError):
        ledger.debit(f"{prefix}-adult", 0.7, 0.0, **CAPS, model="dp_marginal")


def test_unreachable_postgresql_hides_password():
    with pytest.raises(InputError) as unreachable:
        Ledger("postgresql://postgres:hunter2@127.0.0.1:1/test")
    assert "hunter2" not in str(unreachable.value) and "\n" not in str(unreachable.value)
