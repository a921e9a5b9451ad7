"""What tabsynth's `ctgan` and `tvae` share: seeding, threads, device, early stopping, sampling, save/load.

Each model (`tabsynth.models.sdv.ctgan`) defines its networks, its epoch and its generation step.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tabsynth.errors import ModelError
from tabsynth.models.memory import idle_cores
from tabsynth.models.sdv.transformer import TableEncoder, fit_encoder
from tabsynth.table.distances import mean_tvd
from tabsynth.table.schema import Schema

CHECK_ROWS = 5_000  # rows compared after each epoch when `patience` is set
SAMPLE_BATCH = 10_000


class NetworkSynthesizer:
    """What CTGAN and TVAE share: seeding, threads, device, early stopping, sampling, save/load."""

    name: str
    supports_conditions = False
    network_: torch.nn.Module
    _INTS: tuple[str, ...] = ("epochs", "batch_size", "embedding_dim", "continuous_bins")
    _RATES: tuple[str, ...]
    _LAYERS: tuple[str, ...]

    def get_params(self) -> dict:
        names = inspect.signature(type(self).__init__).parameters
        return {name: getattr(self, name) for name in names if name != "self"}

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget=None, rng=None) -> NetworkSynthesizer:
        if budget is not None:
            raise ModelError(f"model {self.name!r} is not differentially private; choose a DP model to spend a budget")
        self._check_params()
        if not schema.modelled() or table.empty:
            raise ModelError(f"model {self.name!r}: the table has no rows or no column to model")
        rng = np.random.default_rng(rng)
        self.encoder_, matrix = fit_encoder(table, schema, self.continuous_bins, rng)
        reference = table.iloc[np.sort(rng.permutation(len(table))[:CHECK_ROWS])]
        check_seed = int(rng.integers(2**63))
        self._fit_extras(matrix)
        with self._torch_session(rng):
            self.network_ = self._build_network().to(self._device())
            run_epoch = self._epoch_runner(matrix, rng)
            self._train(run_epoch, lambda: self._check_score(reference, schema, check_seed))
        return self

    def sample(self, n: int | None = None, *, conditions=None, rng=None) -> pd.DataFrame:
        if conditions and not self.supports_conditions:
            raise ModelError(f"model {self.name!r} does not take conditions; use tabsynth.sample.conditional")
        if n is None or not isinstance(n, int | np.integer) or n < 0:
            raise ModelError(f"model {self.name!r}: give the number of rows to sample")
        rng = np.random.default_rng(rng)
        with self._torch_session(rng):
            return self.encoder_.decode(self._generate_in_batches(int(n), rng, conditions))

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        encoder_state, encoder_arrays = self.encoder_.state()
        arrays = {f"encoder.{key}": value for key, value in encoder_arrays.items()}
        arrays |= {f"network.{key}": value.detach().cpu().numpy() for key, value in self.network_.state_dict().items()}
        arrays |= {f"extra.{key}": value for key, value in self._extra_arrays().items()}
        return {"encoder": encoder_state, "history": self.history_, "best_epoch": self.best_epoch_}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        def part(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        self.encoder_ = TableEncoder.from_state(state["encoder"], part("encoder."))
        self.history_, self.best_epoch_ = state["history"], state["best_epoch"]
        self._set_extra_arrays(part("extra."))
        self.network_ = self._build_network()
        weights = {key: torch.from_numpy(np.array(value)) for key, value in part("network.").items()}
        try:
            self.network_.load_state_dict(weights, strict=True)
        except RuntimeError:
            raise ValueError("the saved network weights do not fit the saved layer sizes") from None
        self.network_.to(self._device())

    # -- training ---------------------------------------------------------------------------------

    def _train(self, run_epoch: Callable[[], dict], check: Callable[[], float]) -> None:
        """Run epochs; with `patience`, keep the weights of the best-scoring epoch and stop when it is old."""
        self.history_, self.best_epoch_ = [], None
        best_score, best_weights, stale = np.inf, None, 0
        with _progress(self.verbose, self.epochs, self.name) as report:
            for epoch in range(self.epochs):
                numbers = run_epoch()
                score = numbers["score"] = check() if self.patience else None
                self.history_.append({"epoch": epoch} | {key: _json_number(v) for key, v in numbers.items()})
                report(self.history_[-1])
                if score is not None and score < best_score:
                    best_weights = copy.deepcopy(self.network_.state_dict())
                    best_score, self.best_epoch_, stale = score, epoch, 0
                elif self.patience and (stale := stale + 1) >= self.patience:
                    break
        if best_weights is not None:
            self.network_.load_state_dict(best_weights)

    def _check_score(self, reference: pd.DataFrame, schema: Schema, seed: int) -> float:
        """Mean 1-way plus 2-way TVD of a sample to the table; the same seed each epoch, so only the model varies."""
        synthetic = self.sample(len(reference), rng=seed)
        return mean_tvd(reference, synthetic, schema.modelled())

    def _generate_in_batches(self, n: int, rng: np.random.Generator, conditions=None) -> np.ndarray:
        was_training = self.network_.training
        self.network_.eval()
        try:
            with torch.no_grad():
                parts = [self._generate(min(SAMPLE_BATCH, n - done), rng, conditions)
                         for done in range(0, n, SAMPLE_BATCH)]
        finally:
            self.network_.train(was_training)
        return np.concatenate(parts) if parts else np.zeros((0, self.encoder_.width), np.float32)

    # -- parameters, device, random state -----------------------------------------------------------

    def _check_params(self) -> None:
        optional = [n for n in ("patience", "threads") if getattr(self, n) is not None]
        problems = [f"{n} must be a positive integer" for n in [*self._INTS, *optional]
                    if not _is_count(getattr(self, n))]
        problems += [f"{n} must be a positive number" for n in self._RATES
                     if isinstance(getattr(self, n), bool) or not isinstance(getattr(self, n), int | float)
                     or not getattr(self, n) > 0]
        problems += [f"{n} must be a list of positive integers" for n in self._LAYERS
                     if not isinstance(getattr(self, n), list | tuple) or not all(map(_is_count, getattr(self, n)))]
        if self.device != "auto" and not str(self.device).startswith(("cpu", "cuda")):
            problems.append(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if problems:
            raise ModelError(*(f"model {self.name!r}: {problem}" for problem in problems))

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _rng_devices(self) -> list[int]:
        device = self._device()
        return [device.index or 0] if device.type == "cuda" else []

    @contextmanager
    def _torch_session(self, rng: np.random.Generator) -> Iterator[None]:
        """Seed torch from `rng` and set its thread count; restore both afterwards."""
        threads, devices, seed = torch.get_num_threads(), self._rng_devices(), int(rng.integers(2**63))
        with torch.random.fork_rng(devices=devices):
            torch.default_generator.manual_seed(seed)  # not torch.manual_seed: it seeds every GPU, unrestored
            for index in devices:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            torch.set_num_threads(self.threads or idle_cores())
            try:
                yield
            finally:
                torch.set_num_threads(threads)

    # -- what each model defines -----------------------------------------------------------------------

    def _fit_extras(self, matrix: np.ndarray) -> None:
        """Fitted attributes other than the network, learnt from the encoded table."""

    def _build_network(self) -> torch.nn.Module:
        raise NotImplementedError

    def _epoch_runner(self, matrix: np.ndarray, rng: np.random.Generator) -> Callable[[], dict]:
        raise NotImplementedError

    def _generate(self, n: int, rng: np.random.Generator, conditions) -> np.ndarray:
        raise NotImplementedError

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _set_extra_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pass


@contextmanager
def _progress(enabled: bool, epochs: int, title: str) -> Iterator[Callable[[dict], None]]:
    """A rich progress bar showing the latest losses and score, or nothing."""
    if not enabled:
        yield lambda record: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[status]}"))
    with Progress(*columns) as bar:
        task = bar.add_task(f"fitting {title}", total=epochs, status="")
        yield lambda record: bar.update(task, advance=1, status=_status(record))


def _status(record: dict) -> str:
    return "  ".join(f"{key} {value:.4g}" for key, value in record.items() if key != "epoch" and value is not None)


def _json_number(value: float | None) -> float | None:
    """NaN and infinities become None, which JSON can hold."""
    return float(value) if value is not None and np.isfinite(value) else None


def _is_count(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0
