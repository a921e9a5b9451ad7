"""`ctgan` and `tvae`: the networks of the `ctgan` package, trained and saved by tabsynth.

We reuse ctgan's Generator, Discriminator (with its gradient penalty), Encoder, Decoder and TVAE
loss. The loops around them are ours, so that they
- draw every random number from the caller's seed and leave torch's global state as it was;
- draw conditional vectors and matching rows with array operations (ctgan loops in Python);
- stop when a sample's fidelity (mean 1-way plus 2-way TVD to the table) stops improving, and
  keep the best weights;
- save weights as plain arrays that load without pickle.
When sampling, CTGAN's condition takes each category with its true frequency; the log frequency
ctgan also uses there is kept for training only, so rare categories are not over-generated. A
condition `column == value` on a discrete column goes into that vector (`supports_conditions`).
The table is encoded by `transformer.TableEncoder`.
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch
from ctgan.synthesizers.ctgan import Discriminator, Generator
from ctgan.synthesizers.tvae import Decoder, Encoder, _loss_function
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tabsynth.errors import ModelError
from tabsynth.models.sdv.transformer import (
    TANH,
    Conditions,
    RowsByCategory,
    TableEncoder,
    activate,
    condition_loss,
    fit_encoder,
    softmax_spans,
)
from tabsynth.schema import Schema

CHECK_ROWS = 5_000  # rows compared after each epoch when `patience` is set
SAMPLE_BATCH = 10_000
BETAS, DECAY = (0.5, 0.9), 1e-6  # ctgan's Adam settings for both networks


class _NetworkSynthesizer:
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

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget=None, rng=None) -> _NetworkSynthesizer:
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
            raise ModelError(f"model {self.name!r} does not take conditions; use tabsynth.sampling")
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
        from tabsynth.validate.fidelity import column_distances  # pulls in scipy.stats; loading a model need not

        synthetic = self.sample(len(reference), rng=seed)
        results = {m.name: m.value for m in column_distances(reference, synthetic, schema)}
        return results["mean_column_tvd"] + results["mean_pair_tvd"]

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
            torch.set_num_threads(self.threads or os.cpu_count() or 1)
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


class CTGAN(_NetworkSynthesizer):
    """Conditional tabular GAN (Xu et al., 2019) with a WGAN-GP critic over groups of `pac` rows."""

    name = "ctgan"
    supports_conditions = True  # `column == value` for a discrete column, through the conditional vector
    _INTS = (*_NetworkSynthesizer._INTS, "pac")
    _RATES = ("generator_lr", "discriminator_lr")
    _LAYERS = ("generator_dim", "discriminator_dim")

    def __init__(self, *, epochs: int = 300, batch_size: int = 500, generator_lr: float = 2e-4,
                 discriminator_lr: float = 2e-4, embedding_dim: int = 128, generator_dim=(256, 256),
                 discriminator_dim=(256, 256), pac: int = 10, continuous_bins: int = 1, patience: int | None = 30,
                 device: str = "auto", threads: int | None = None, verbose: bool = False):
        self.epochs = epochs
        self.batch_size = batch_size
        self.generator_lr = generator_lr
        self.discriminator_lr = discriminator_lr
        self.embedding_dim = embedding_dim
        self.generator_dim = generator_dim
        self.discriminator_dim = discriminator_dim
        self.pac = pac
        self.continuous_bins = continuous_bins
        self.patience = patience
        self.device = device
        self.threads = threads
        self.verbose = verbose

    def _check_params(self) -> None:
        super()._check_params()
        if self.batch_size % self.pac:
            raise ModelError(f"model 'ctgan': batch_size ({self.batch_size}) must be a multiple of pac ({self.pac})")

    def _fit_extras(self, matrix: np.ndarray) -> None:
        self.conditions_ = Conditions.of(matrix, self.encoder_.spans)

    def _build_network(self) -> torch.nn.Module:
        return Generator(self.embedding_dim + self.conditions_.dim, list(self.generator_dim), self.encoder_.width)

    def _epoch_runner(self, matrix: np.ndarray, rng: np.random.Generator) -> Callable[[], dict]:
        device, spans, batch = self._device(), self.encoder_.spans, self.batch_size
        generator, conditions = self.network_, self.conditions_
        critic = Discriminator(matrix.shape[1] + conditions.dim, list(self.discriminator_dim), pac=self.pac).to(device)
        optimize_g = torch.optim.Adam(generator.parameters(), self.generator_lr, betas=BETAS, weight_decay=DECAY)
        optimize_d = torch.optim.Adam(critic.parameters(), self.discriminator_lr, betas=BETAS, weight_decay=DECAY)
        data = torch.from_numpy(matrix).to(device)
        rows = RowsByCategory.of(matrix, spans)

        def fake_rows(n: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
            cond, picked, categories = conditions.draw(n, rng, log_frequency=True)
            cond = torch.from_numpy(cond).to(device)
            noise = torch.randn(n, self.embedding_dim, device=device)
            return generator(torch.cat([noise, cond], 1)), cond, picked, categories

        def critic_step() -> torch.Tensor:
            with torch.no_grad():
                raw, cond, picked, categories = fake_rows(batch)
            fake = torch.cat([activate(raw, spans), cond], 1).requires_grad_()
            shuffle = rng.permutation(batch)
            real = torch.cat([data[torch.from_numpy(rows.draw(picked[shuffle], categories[shuffle], rng))],
                              cond[torch.from_numpy(shuffle)]], 1)
            penalty = critic.calc_gradient_penalty(real, fake, device, self.pac)
            loss = critic(fake).mean() - critic(real).mean()
            optimize_d.zero_grad(set_to_none=False)
            (penalty + loss).backward()
            optimize_d.step()
            return loss.detach()

        def generator_step() -> torch.Tensor:
            raw, cond, picked, _ = fake_rows(batch)
            loss = -critic(torch.cat([activate(raw, spans), cond], 1)).mean()
            loss = loss + condition_loss(raw, cond, torch.from_numpy(picked).to(device), spans)
            optimize_g.zero_grad(set_to_none=False)
            loss.backward()
            optimize_g.step()
            return loss.detach()

        def run_epoch() -> dict:
            for _ in range(max(len(matrix) // batch, 1)):
                critic_loss, generator_loss = critic_step(), generator_step()
            return {"critic_loss": critic_loss.item(), "generator_loss": generator_loss.item()}

        return run_epoch

    def _generate(self, n: int, rng: np.random.Generator, conditions) -> np.ndarray:
        """Rows from the generator; a condition pinning a discrete column is met natively, the rest by the caller."""
        device, spans = self._device(), self.encoder_.spans
        pinned = self.encoder_.pinned_category(_fixed_values(conditions))
        if pinned is None:
            cond = self.conditions_.draw(n, rng, log_frequency=False)[0]
        else:
            cond = self.conditions_.pin(n, *pinned)
        noise = torch.randn(n, self.embedding_dim, device=device)
        raw = self.network_(torch.cat([noise, torch.from_numpy(cond).to(device)], 1))
        rows = activate(raw, spans).cpu().numpy()
        if pinned is not None:  # the generator follows its condition closely, not always
            start, span = softmax_spans(spans)[pinned[0]]
            rows[:, start:start + span.dim] = np.eye(span.dim, dtype=rows.dtype)[pinned[1]]
        return rows

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"condition_counts": self.conditions_.counts}

    def _set_extra_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        widths = np.array([span.dim for _, span in softmax_spans(self.encoder_.spans)], dtype=int)
        self.conditions_ = Conditions(widths, arrays["condition_counts"])


class TVAE(_NetworkSynthesizer):
    """Tabular variational autoencoder (Xu et al., 2019): sampling decodes standard normal noise."""

    name = "tvae"
    _RATES = ("learning_rate", "loss_factor")
    _LAYERS = ("compress_dims", "decompress_dims")

    def __init__(self, *, epochs: int = 300, batch_size: int = 500, learning_rate: float = 1e-3,
                 embedding_dim: int = 128, compress_dims=(128, 128), decompress_dims=(128, 128),
                 l2scale: float = 1e-5, loss_factor: float = 2.0, continuous_bins: int = 20, patience: int | None = 20,
                 device: str = "auto", threads: int | None = None, verbose: bool = False):
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.embedding_dim = embedding_dim
        self.compress_dims = compress_dims
        self.decompress_dims = decompress_dims
        self.l2scale = l2scale
        self.loss_factor = loss_factor
        self.continuous_bins = continuous_bins
        self.patience = patience
        self.device = device
        self.threads = threads
        self.verbose = verbose

    def _build_network(self) -> torch.nn.Module:
        return Decoder(self.embedding_dim, list(self.decompress_dims), self.encoder_.width)

    def _epoch_runner(self, matrix: np.ndarray, rng: np.random.Generator) -> Callable[[], dict]:
        device, decoder = self._device(), self.network_
        encoder = Encoder(matrix.shape[1], list(self.compress_dims), self.embedding_dim).to(device)
        parameters = list(encoder.parameters()) + list(decoder.parameters())
        optimize = torch.optim.Adam(parameters, lr=self.learning_rate, weight_decay=self.l2scale)
        data, output_info = torch.from_numpy(matrix).to(device), [[span] for span in self.encoder_.spans]

        def step(rows: np.ndarray) -> torch.Tensor:
            real = data[torch.from_numpy(rows)]
            mean, std, log_variance = encoder(real)
            reconstructed, sigmas = decoder(mean + std * torch.randn_like(std))
            loss = sum(_loss_function(reconstructed, real, sigmas, mean, log_variance, output_info, self.loss_factor))
            optimize.zero_grad()
            loss.backward()
            optimize.step()
            decoder.sigma.data.clamp_(0.01, 1.0)
            return loss.detach()

        def run_epoch() -> dict:
            order = rng.permutation(len(matrix))
            losses = [step(order[i:i + self.batch_size]) for i in range(0, len(matrix), self.batch_size)]
            return {"loss": torch.stack(losses).mean().item()}

        return run_epoch

    def _generate(self, n: int, rng: np.random.Generator, conditions=None) -> np.ndarray:
        """Decode noise; categories are drawn from the decoder's logits, not taken at their mode as in ctgan,
        so minority categories and missing shares keep their frequency while the decoder is unsure."""
        raw, sigmas = self.network_(torch.randn(n, self.embedding_dim, device=self._device()))
        values = activate(raw, self.encoder_.spans)
        noisy = values + sigmas * torch.randn_like(values)  # TVAE's output noise, on continuous spans only
        continuous = torch.tensor([span.activation_fn == TANH for span in self.encoder_.spans
                                   for _ in range(span.dim)], device=values.device)
        return torch.where(continuous, noisy, values).cpu().numpy()


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


def _fixed_values(conditions) -> dict:
    """{column: value} pinned by a condition (a `tabsynth.conditions.Condition`) or given as a dict."""
    if not conditions:
        return {}
    return dict(conditions) if isinstance(conditions, dict) else conditions.fixed_values()


def _json_number(value: float | None) -> float | None:
    """NaN and infinities become None, which JSON can hold."""
    return float(value) if value is not None and np.isfinite(value) else None


def _is_count(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0
