"""`argn` and `dp-argn`: tabsynth's autoregressive tabular network, on torch alone.

Columns become tokens (`encoding`), one network predicts each token from those generated before it
(`network`), trained on the fixed column order and on orders that put a random subset of columns first, so
conditions on any columns are met by generating those columns first (`conditioning`, `generation`).
`dp-argn` trains the same network with DP-SGD, takes its column domains from `privacy.preprocess`, and shifts
its output biases to each column's noisy one-way marginal (post-processing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tabsynth.errors import InputError, ModelError
from tabsynth.models.argn.conditioning import column_limit, split_condition
from tabsynth.models.argn.encoding import TableTokens, fit_tokens
from tabsynth.models.argn.generation import calibrate_to_marginals, generate
from tabsynth.models.argn.network import ARGNetwork
from tabsynth.models.argn.private import plan_dpsgd, privacy_report, private_tokens, split_budget
from tabsynth.models.argn.training import (
    Settings,
    calibrate,
    resolve_device,
    torch_generator,
    torch_threads,
    train,
    train_private,
)
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.preprocess import BINNINGS
from tabsynth.rules.conditions import Condition
from tabsynth.table.schema import Schema

INTEGER_PARAMS = (("epochs", 1), ("batch_size", 1), ("embedding", 2), ("hidden", 1), ("layers", 0))
MAX_DRAWS_PER_ROW = 100  # conditions tying several columns together are met by bounded rejection


class _Autoregressive:
    """What `argn` and `dp-argn` share: sampling (with conditions) and the saved state."""

    name = ""
    supports_conditions = True
    rows_generated = 0  # rows the network has generated: conditions are met without rejection

    def sample(self, n: int | None = None, *, conditions: Condition | None = None, rng=None) -> pd.DataFrame:
        """`n` rows (default: `rows_`), each meeting `conditions` if given."""
        n = self.rows_ if n is None else n
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ModelError(f"model {self.name!r}: the number of rows must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(rng)
        per_column, rest = split_condition(conditions)
        names = self.tokens_.names
        limits = {names.index(name): column_limit(self.tokens_.columns[names.index(name)], part, rng)
                  for name, part in per_column.items()}
        with torch_threads(self.threads):
            if rest is None:
                return self._draw(int(n), limits, rng)
            return self._draw_where(int(n), limits, rest, rng)

    def _draw(self, n: int, limits: dict, rng: np.random.Generator) -> pd.DataFrame:
        """`n` rows, the columns with limits generated first and kept within them."""
        device = resolve_device(self.device)
        columns, slices = self.tokens_.columns, self.tokens_.slices()
        allowed = [limits[c].allowed if c in limits else column.valid for c, column in enumerate(columns)]
        order = sorted(limits) + [c for c in range(len(columns)) if c not in limits]
        self.network_.to(device)
        codes = generate(self.network_, n, order, slices, allowed, torch_generator(rng, device), device)
        self.rows_generated += n
        frame = self.tokens_.decode(codes, rng)
        for c, limit in limits.items():
            frame[columns[c].name] = limit.enforce(frame[columns[c].name], codes[:, slices[c]], rng)
        return frame

    def _draw_where(self, n: int, limits: dict, rest: Condition, rng: np.random.Generator) -> pd.DataFrame:
        """Bounded rejection for the part of a condition that ties several columns together."""
        kept, drawn, accepted = [], 0, 0
        while accepted < n:
            if drawn >= MAX_DRAWS_PER_ROW * max(n, 10):
                raise InputError(f"condition {rest.text!r} is too rare to meet: {accepted:,} of {drawn:,} sampled "
                                 "rows satisfied it")
            frame = self._draw(max(n - accepted, 100), limits, rng)
            kept.append(frame[rest.mask(frame)])
            drawn, accepted = drawn + len(frame), accepted + len(kept[-1])
        return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)

    def _new_network(self, rng: np.random.Generator | None = None) -> ARGNetwork:
        """A network of this model's shape; weights drawn from `rng` without touching torch's global RNG."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if rng is None else int(rng.integers(2**62)))
            return ARGNetwork(self.tokens_.sizes, self.tokens_.owners, embedding=self.embedding, hidden=self.hidden,
                              layers=self.layers)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        metas, arrays = self.tokens_.state()
        arrays.update({f"net_{key}": value.detach().cpu().numpy() for key, value in self.network_.state_dict().items()})
        history = {} if self.differentially_private else {"history": self.history_}  # a DP fit keeps no loss
        return {"tokens": metas, "rows": self.rows_, **history}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.tokens_ = TableTokens.from_state(state["tokens"], {k: v for k, v in arrays.items()
                                                                if not k.startswith("net_")})
        self.network_ = self._new_network()
        weights = {key.removeprefix("net_"): torch.from_numpy(value) for key, value in arrays.items()
                   if key.startswith("net_")}
        self.network_.load_state_dict(weights, strict=True)
        self.rows_ = int(state["rows"])
        if not self.differentially_private:
            self.history_ = state["history"]

    def check_params(self) -> None:
        """A bad parameter value is a ModelError now, before any row is read or any budget spent."""
        problems = self._param_problems()
        if problems:
            raise ModelError(*problems)

    def _problems(self, schema: Schema) -> list[str]:
        return self._param_problems() + ([f"model {self.name!r}: the table has no modelled columns"]
                                         if not schema.modelled() else [])

    def _checked(self, integers: tuple[tuple[str, int], ...], shares: tuple[str, ...]) -> list[str]:
        problems = [f"{name} must be an integer >= {low}, got {getattr(self, name)!r}"
                    for name, low in integers if not _is_int(getattr(self, name), low)]
        problems += [f"{name} must be a number between 0 and 1, got {getattr(self, name)!r}"
                     for name in shares if not _is_number(getattr(self, name), 0, 1)]
        if not _is_number(self.lr, 0, np.inf) or self.lr == 0:
            problems.append(f"lr must be a positive number, got {self.lr!r}")
        if self.threads is not None and not _is_int(self.threads, 1):
            problems.append(f"threads must be None or an integer >= 1, got {self.threads!r}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        return [f"model {self.name!r}: {p}" for p in problems]


class ARGN(_Autoregressive):
    name = "argn"
    differentially_private = False

    def __init__(self, *, epochs: int = 100, batch_size: int = 512, lr: float = 3e-3, embedding: int = 16,
                 hidden: int = 128, layers: int = 2, patience: int = 5, validation: float = 0.1,
                 flexible: float = 0.8, rare_threshold: int = 5, bins: int = 100, sub_bins: int = 50,
                 device: str = "auto", threads: int | None = None, verbose: bool = False):
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.embedding, self.hidden, self.layers = embedding, hidden, layers
        self.patience, self.validation, self.flexible = patience, validation, flexible
        self.rare_threshold, self.bins, self.sub_bins = rare_threshold, bins, sub_bins
        self.device, self.threads, self.verbose = device, threads, verbose

    def _param_problems(self) -> list[str]:
        return self._checked(INTEGER_PARAMS + (("patience", 0), ("rare_threshold", 1), ("bins", 2), ("sub_bins", 1)),
                             ("validation", "flexible"))

    def get_params(self) -> dict:
        names = ("epochs", "batch_size", "lr", "embedding", "hidden", "layers", "patience", "validation",
                 "flexible", "rare_threshold", "bins", "sub_bins", "device", "threads", "verbose")
        return {name: getattr(self, name) for name in names}

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget=None, rng=None, progress=None) -> ARGN:
        """Fit on every row of `table`; `progress(record)` is called after each epoch."""
        if budget is not None:
            raise ModelError(f"model {self.name!r} is not differentially private; choose 'dp-argn' to spend a budget")
        problems = self._problems(schema)
        if problems:
            raise ModelError(*problems)
        rng = np.random.default_rng(rng)
        self.tokens_ = fit_tokens(table, schema.modelled(), rare_threshold=self.rare_threshold, bins=self.bins,
                                  sub_bins=self.sub_bins)
        settings = Settings(self.epochs, self.batch_size, self.lr, self.flexible, self.patience, self.validation)
        device = resolve_device(self.device)
        with torch_threads(self.threads):
            network = self._new_network(rng).to(device)
            codes = self.tokens_.encode(table)
            self.history_ = train(network, codes, self.tokens_.owners, settings, rng, device, _reporter(self, progress))
            calibrate(network, codes, self.tokens_.owners, device)
        self.network_, self.rows_ = network.cpu(), len(table)
        return self


class DPARGN(_Autoregressive):
    """`target` (a label column; a release passes its --target here) is generated last, from all the others."""

    name = "dp-argn"
    differentially_private = True

    def __init__(self, *, epochs: int = 10, batch_size: int = 1024, lr: float = 1e-2, embedding: int = 4,
                 hidden: int = 32, layers: int = 1, flexible: float = 0.5, max_grad_norm: float = 1.0,
                 preprocess_share: float = 0.5, bins: int = 16, binning: str = "quantile", device: str = "auto",
                 threads: int | None = None, verbose: bool = False, target: str | None = None):
        self.target = target
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.embedding, self.hidden, self.layers, self.flexible = embedding, hidden, layers, flexible
        self.max_grad_norm, self.preprocess_share = max_grad_norm, preprocess_share
        self.bins, self.binning = bins, binning
        self.device, self.threads, self.verbose = device, threads, verbose

    def get_params(self) -> dict:
        names = ("epochs", "batch_size", "lr", "embedding", "hidden", "layers", "flexible", "max_grad_norm",
                 "preprocess_share", "bins", "binning", "device", "threads", "verbose", "target")
        return {name: getattr(self, name) for name in names}

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget: Budget | None = None, rng=None,
            progress=None) -> DPARGN:
        """Fit within `budget`: all DP noise comes from `budget.noise`; `rng` only initialises the network and
        picks column orders (data-independent choices)."""
        if not isinstance(budget, Budget):
            raise ModelError(f"model {self.name!r} is differentially private: give it a privacy budget "
                             "(epsilon, delta)")
        self._check_private_params(schema)
        rng = np.random.default_rng(rng)
        self.names_ = [c.name for c in schema.modelled()]
        columns = sorted(schema.modelled(), key=lambda c: c.name == self.target)  # the target last, if any
        split = split_budget(budget, columns, self.preprocess_share)
        start = private_tokens(table, columns, split, budget.noise, bins=self.bins, binning=self.binning)
        self.tokens_, self.rows_ = start.tokens, start.rows
        dp = plan_dpsgd(split, self.rows_, self.batch_size, self.epochs, self.max_grad_norm)
        settings = Settings(self.epochs, self.batch_size, self.lr, self.flexible)
        device = resolve_device(self.device)
        with torch_threads(self.threads):
            network = self._new_network(rng).to(device)
            train_private(network, self.tokens_.encode(table), self.tokens_.owners, settings, dp, rng, budget.noise,
                          device, _reporter(self, progress))
            calibrate_to_marginals(network, start.marginals, [c.valid for c in self.tokens_.columns],
                                   torch_generator(rng, device), device)
        self.network_ = network.cpu()
        self.privacy_ = (privacy_report(split, list(budget.prior) + start.charges, dp, budget.noise)
                         | {"warnings": start.warnings})
        return self

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super().get_state()
        return state | {"privacy": self.privacy_}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super().set_state(schema, state, arrays)
        self.privacy_ = state["privacy"]
        self.names_ = [c.name for c in schema.modelled()]

    def _draw(self, n: int, limits: dict, rng: np.random.Generator) -> pd.DataFrame:
        return super()._draw(n, limits, rng)[self.names_]  # the table's column order, whatever the network's

    def _check_private_params(self, schema: Schema) -> None:
        problems = self._problems(schema)
        if self.target is not None and self.target not in [c.name for c in schema.modelled()]:
            problems.append(f"model {self.name!r}: target {self.target!r} is not a modelled column")
        if problems:
            raise ModelError(*problems)

    def _param_problems(self) -> list[str]:
        problems = self._checked(INTEGER_PARAMS + (("bins", 2),), ("flexible",))
        if not _is_number(self.preprocess_share, 0, 1) or self.preprocess_share in (0, 1):
            problems.append(f"model {self.name!r}: preprocess_share must be between 0 and 1 (exclusive), "
                            f"got {self.preprocess_share!r}")
        if not _is_number(self.max_grad_norm, 0, np.inf) or self.max_grad_norm == 0:
            problems.append(f"model {self.name!r}: max_grad_norm must be a positive number, got {self.max_grad_norm!r}")
        if self.binning not in BINNINGS:
            problems.append(f"model {self.name!r}: binning must be one of {', '.join(BINNINGS)}, got {self.binning!r}")
        return problems


def _reporter(model: ARGN, progress):
    """The caller's callback, plus a rich progress line when the model is verbose."""
    if not model.verbose:
        return progress

    def report(record: dict) -> None:
        from rich import print as rich_print

        line = f"[bold]{model.name}[/] epoch {record['epoch']}/{record['epochs']}"
        if "loss" in record:  # a DP fit reports no loss: it is a noise-free statistic of the real rows
            line += f": loss {record['loss']:.4f}" + (f", val {record['val_loss']:.4f}" if "val_loss" in record else "")
        rich_print(line)
        if progress:
            progress(record)

    return report


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def _is_number(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float, np.floating)) and not isinstance(value, bool) and low <= value <= high
