"""One error hierarchy. Messages are written for a data steward, one line each."""


def first_line(exc: BaseException, secret: str | None = None) -> str:
    """The first non-empty line of an error's message (its type's name if it has none), `secret` (a password
    a driver may quote) replaced by ***."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.replace(secret, "***") if secret else line


class TabsynthError(Exception):
    """Base of every error tabsynth raises on purpose; the CLI prints its lines and exits 2."""

    exit_code = 2

    def __init__(self, *problems: str):
        self.problems = tuple(problems) or ("unknown error",)
        super().__init__("\n".join(self.problems))


class InputError(TabsynthError):
    """The input table cannot be read or is unusable (missing file, empty table, bad encoding)."""


class SchemaError(TabsynthError):
    """A schema file is invalid or does not match the table."""


class PolicyError(TabsynthError):
    """A release policy is missing or invalid."""


class ModelError(TabsynthError):
    """Unknown model, bad model parameters, or a model folder that cannot be trusted."""


class BudgetExceededError(TabsynthError):
    """A privacy-budget debit would overspend the ledger."""


class ReleaseBlocked(TabsynthError):
    """The release gate refused: every failed rule is one problem line."""

    exit_code = 3

    def __init__(self, *problems: str, report_path=None):
        super().__init__(*problems)
        self.report_path = report_path
