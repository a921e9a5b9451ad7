"""`dp-ctgan`: a CTGAN-style GAN whose discriminator is trained by DP-SGD (opacus), so the generator is DP.

The fit spends its budget in three mechanisms, the noise of all three drawn from `budget.noise`:
1. column domains (`privacy.preprocess`: DP category lists, bounds and bins where the user declared none), zCDP;
2. one noisy histogram of each encoded column (`measure_counts`), zCDP; post-processed into the frequencies of
   the conditional vector and the noisy row count `rows_`;
3. DP-SGD on the discriminator: per-row clipping and Gaussian noise (opacus's ghost-clipping module, optimizer
   and loss), rows drawn by Poisson sampling (from the budget's RandomSource) at rate batch_size / rows_.
The generator sees real rows only through the discriminator's noisy gradients, so it is post-processing.

Accounting: ρ-zCDP is (α, ρα)-RDP at every order α, so the RDP curve of 1–2 and opacus's RDP curve of 3 add up
and the sum is converted to (ε, δ) once (Balle et al. 2020, Theorem 21); the δ of category thresholding is added.
Since T steps of DP-SGD cost T times one step in RDP, the number of steps where that ε would first pass the
budget is known before training, and training stops there even if the epoch cap is not reached.

Not `PrivacyEngine.make_private`: it sets the sampling rate and the divisor of the averaged gradient from the
true number of rows (`len(dataset)`), which the weights would then reveal; the same opacus parts are wired
here with the noisy count instead.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import torch

from tabsynth.errors import ModelError
from tabsynth.models.dp_gan_networks import (
    ConditionSampler,
    DpSgdSeeds,
    GanSettings,
    GanTrainer,
    Generator,
    OneHotLayout,
)
from tabsynth.privacy.accounting import gaussian_sigma, zcdp_rho
from tabsynth.privacy.budget import Budget
from tabsynth.privacy.dpsgd import DpSgdPlan, composed_epsilon, plan_dpsgd, poisson_batch
from tabsynth.privacy.mechanisms import RandomSource, measure_counts
from tabsynth.privacy.preprocess import (
    BINNINGS,
    Charge,
    OneWay,
    Preprocessed,
    category_warnings,
    domain_mechanisms,
    fit_encoding,
)
from tabsynth.table.codecs import Encoding
from tabsynth.table.schema import Column, Schema

ACCOUNTING = ("RDP: the zCDP mechanisms (domains, column histograms) count ρ·α at order α, DP-SGD its "
              "opacus RDP curve; the sum is converted to (ε, δ) by Balle et al. 2020; category thresholding adds its δ")
# Rényi orders: opacus's range, coarser below 10 (orders near 1 are slow and matter only for a large ε), wider above.
THRESHOLD_DELTA_SHARE = 0.5  # of δ, when some category list is measured; the rest is the RDP conversion's
DOMAIN_SHARE = 0.5  # of the preprocessing ρ, when some domain is not declared; the rest buys the histograms
SAFETY = 1.0 - 1e-9  # plan a hair under the budget so rounding never reports more than was granted
SAMPLE_CHUNK = 50_000
MIN_HISTOGRAM_SIGMA = 1.0


class DPCTGAN:
    """CTGAN-style synthesizer with a DP-SGD discriminator.

    `epochs` caps training (an epoch is 1 / sample rate steps); `batch_size` is the expected number of real rows
    per step under Poisson sampling; `noise_multiplier` None takes the smallest that pays for the epoch cap.
    `threads` defaults to 1: on shared cores, more torch threads ran many times slower.
    """

    name = "dp-ctgan"
    differentially_private = True

    def __init__(self, *, epochs: int = 20, batch_size: int = 500, lr: float = 2e-4,
                 embedding_dim: int = 128, generator_dim: Sequence[int] = (256, 256),
                 discriminator_dim: Sequence[int] = (256, 256), noise_multiplier: float | None = None,
                 max_grad_norm: float = 1.0, preprocess_share: float = 0.1, bins: int = 16,
                 binning: str = "quantile", device: str = "auto", threads: int | None = 1, verbose: bool = False):
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.embedding_dim, self.generator_dim, self.discriminator_dim = embedding_dim, generator_dim, discriminator_dim
        self.noise_multiplier, self.max_grad_norm = noise_multiplier, max_grad_norm
        self.preprocess_share, self.bins, self.binning = preprocess_share, bins, binning
        self.device, self.threads, self.verbose = device, threads, verbose

    def get_params(self) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "embedding_dim": self.embedding_dim, "generator_dim": list(self.generator_dim),
                "discriminator_dim": list(self.discriminator_dim), "noise_multiplier": self.noise_multiplier,
                "max_grad_norm": self.max_grad_norm, "preprocess_share": self.preprocess_share, "bins": self.bins,
                "binning": self.binning, "device": self.device, "threads": self.threads, "verbose": self.verbose}

    def fit(self, table: pd.DataFrame, schema: Schema, *, budget: Budget | None = None, rng=None) -> DPCTGAN:
        """Fit within `budget`; `rng` seeds what is not DP noise (initial weights, latent noise, conditions)."""
        if not isinstance(budget, Budget):
            raise ModelError("model 'dp-ctgan' is differentially private: give it a privacy budget (epsilon, delta)")
        columns = schema.modelled()
        self._check_params(columns)
        threshold_delta, conversion_delta, preprocess_rho = _split_budget(budget, columns, self.preprocess_share)
        domain_rho = DOMAIN_SHARE * preprocess_rho if any(domain_mechanisms(c) for c in columns) else 0.0
        # One marginal per column; below a noise of one count a larger budget buys nothing, and spends less.
        sigma = max(gaussian_sigma((preprocess_rho - domain_rho) / len(columns)), MIN_HISTOGRAM_SIGMA)
        prepared = fit_encoding(table, columns, rho=domain_rho, delta=threshold_delta, noise=budget.noise,
                                histogram_sigma=sigma, bins=self.bins, binning=self.binning)
        self.encoding_ = prepared.encoding
        codes = self.encoding_.encode(table)
        marginals, charges = one_way_marginals(prepared, codes, sigma, budget.noise)
        charges = list(budget.prior) + prepared.charges + charges
        self.frequencies_ = [_shares(m.noisy) for m in marginals]
        self.rows_ = noisy_rows(marginals)
        spent_rho = sum(c.rho for c in charges)
        sample_rate = min(1.0, self.batch_size / self.rows_)
        plan = plan_dpsgd(budget.epsilon, conversion_delta, spent_rho, sample_rate,
                          self.epochs * max(1, round(1 / sample_rate)), self.noise_multiplier)
        if plan.steps == 0:
            raise ModelError(f"model 'dp-ctgan': the budget cannot pay for one DP-SGD step at noise_multiplier "
                             f"{plan.noise_multiplier:g}; raise epsilon or the noise multiplier")
        with torch_threads(self.threads):
            history = self._train(self._layout().one_hot(codes), plan, np.random.default_rng(rng), budget)
        sgd = {"what": ["discriminator", "DP-SGD"], "mechanism": "opacus DP-SGD, Poisson sampling",
               "noise_multiplier": plan.noise_multiplier, "sample_rate": sample_rate, "steps": plan.steps,
               "planned_steps": plan.planned, "max_grad_norm": self.max_grad_norm, "delta": conversion_delta,
               "dpsgd_epsilon": composed_epsilon(0.0, history, conversion_delta)}
        self.privacy_ = {"epsilon": composed_epsilon(spent_rho, history, conversion_delta),
                         "delta": conversion_delta + sum(c.delta for c in charges), "rho": spent_rho,
                         "accounting": ACCOUNTING,
                         "measurements": [c.record for c in charges] + [sgd], "noise": budget.noise.describe(),
                         "warnings": prepared.warnings + category_warnings(
                             columns, self.encoding_.codecs, [m.noisy for m in marginals])}
        return self

    def sample(self, n: int | None = None, *, conditions=None, rng=None) -> pd.DataFrame:
        """`n` rows (default: the noisy row count `rows_`); `rng` drives this post-processing only."""
        if conditions:
            raise ModelError("model 'dp-ctgan' does not take conditions; use tabsynth.sample.conditional")
        n = self.rows_ if n is None else n
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
            raise ModelError(f"model 'dp-ctgan': the number of rows must be a non-negative integer, got {n!r}")
        rng = np.random.default_rng(rng)
        device = self._device()
        generator = torch.Generator(device).manual_seed(int(rng.integers(2**63)))
        layout, network = self._layout(), self.generator_.to(device).eval()
        conditions_sampler = ConditionSampler(layout, tuple(self.frequencies_))
        codes = [np.zeros((0, len(layout.sizes)), dtype=np.int64)]
        with torch_threads(self.threads), torch.no_grad():
            for start in range(0, int(n), SAMPLE_CHUNK):
                count = min(SAMPLE_CHUNK, int(n) - start)
                noise = torch.randn(count, self.embedding_dim, generator=generator, device=device)
                logits = network(noise, conditions_sampler.sample(count, generator)[0])
                codes.append(layout.hard_sample(logits, generator))
        return self.encoding_.decode(np.concatenate(codes), rng)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        codecs, arrays = self.encoding_.state()
        arrays.update({f"frequency_{i}": shares for i, shares in enumerate(self.frequencies_)})
        arrays.update({f"generator.{key}": value.detach().cpu().numpy()
                       for key, value in self.generator_.state_dict().items()})
        return {"encoding": codecs, "rows": self.rows_, "privacy": self.privacy_}, arrays

    def set_state(self, schema: Schema, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.encoding_ = Encoding.from_state(state["encoding"], arrays)
        self.frequencies_ = [arrays[f"frequency_{i}"] for i in range(len(self.encoding_.codecs))]
        settings = self._settings()
        self.generator_ = Generator(settings.noise_dim, settings.generator_dim, self._layout())
        weights = {key.removeprefix("generator."): torch.from_numpy(np.array(value))
                   for key, value in arrays.items() if key.startswith("generator.")}
        self.generator_.load_state_dict(weights)
        self.rows_ = int(state["rows"])
        self.privacy_ = state["privacy"]

    def _train(self, rows: torch.Tensor, plan: DpSgdPlan, rng: np.random.Generator,
               budget: Budget) -> list[tuple[float, float, int]]:
        """Train for `plan.steps` steps on Poisson samples of `rows`; returns the accountant's history."""
        device = self._device()
        seeds = DpSgdSeeds(init=int(rng.integers(2**63)), training=int(rng.integers(2**63)))
        conditions = ConditionSampler(self._layout(), tuple(self.frequencies_))
        trainer = GanTrainer(self._settings(), conditions, plan.sample_rate, plan.noise_multiplier, seeds,
                             budget.noise, device)
        rows, steps_per_epoch = rows.to(device), max(1, round(1 / plan.sample_rate))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)  # opacus hooks, harmless
            for step in range(1, plan.steps + 1):
                indices = poisson_batch(budget.noise, len(rows), plan.sample_rate)
                trainer.step(rows[torch.as_tensor(indices, dtype=torch.long, device=device)])
                if self.verbose and (step % steps_per_epoch == 0 or step == plan.steps):  # never a loss: not noised
                    print(f"dp-ctgan: step {step}/{plan.steps}", file=sys.stderr)
        self.generator_ = trainer.generator.cpu().eval()
        return list(trainer.accountant.history)

    def _settings(self) -> GanSettings:
        return GanSettings(self.embedding_dim, tuple(self.generator_dim), tuple(self.discriminator_dim),
                           self.batch_size, self.lr, self.max_grad_norm)

    def _layout(self) -> OneHotLayout:
        return OneHotLayout(tuple(self.encoding_.sizes))

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _check_params(self, columns: list[Column]) -> None:
        problems = [] if columns else ["the table has no modelled columns"]
        for name, minimum in (("epochs", 1), ("batch_size", 1), ("embedding_dim", 1), ("bins", 2)):
            if not _is_int(getattr(self, name), minimum):
                problems.append(f"{name} must be an integer >= {minimum}, got {getattr(self, name)!r}")
        for name in ("generator_dim", "discriminator_dim"):
            sizes = getattr(self, name)
            if not (isinstance(sizes, (list, tuple)) and all(_is_int(size, 1) for size in sizes)):
                problems.append(f"{name} must be a list of positive integers, got {getattr(self, name)!r}")
        for name in ("lr", "max_grad_norm") + (("noise_multiplier",) if self.noise_multiplier is not None else ()):
            if not _is_positive(getattr(self, name)):
                problems.append(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not (_is_positive(self.preprocess_share) and self.preprocess_share < 1):
            problems.append(f"preprocess_share must be between 0 and 1, got {self.preprocess_share!r}")
        if self.binning not in BINNINGS:
            problems.append(f"binning must be one of {', '.join(BINNINGS)}, got {self.binning!r}")
        if self.threads is not None and not _is_int(self.threads, 1):
            problems.append(f"threads must be None or an integer >= 1, got {self.threads!r}")
        try:
            self._device()
        except RuntimeError:
            problems.append(f"device must be 'auto', 'cpu' or a torch device such as 'cuda:0', got {self.device!r}")
        if problems:
            raise ModelError(*[f"model 'dp-ctgan': {p}" for p in problems])


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run torch on `threads` CPU threads, then restore the previous setting (None: leave it)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def one_way_marginals(prepared: Preprocessed, codes: np.ndarray, sigma: float,
                      noise: RandomSource) -> tuple[list[OneWay], list[Charge]]:
    """Every column's noisy counts over its codes: from preprocessing where it measured them, else measured here."""
    marginals, charges = [], []
    for i, (name, size) in enumerate(zip(prepared.encoding.names, prepared.encoding.sizes, strict=True)):
        if name in prepared.one_way:
            marginals.append(prepared.one_way[name])
            continue
        measurement = measure_counts(np.bincount(codes[:, i], minlength=size), sigma, ("marginal", name), noise)
        marginals.append(OneWay(name, measurement.noisy, sigma))
        charges.append(Charge(measurement.record() | {"mechanism": "discrete Gaussian"}, measurement.rho))
    return marginals, charges


def noisy_rows(marginals: list[OneWay]) -> int:
    """The row count from the marginals' totals, each weighted by the inverse of its noise variance."""
    weights = np.array([1.0 / (m.sigma**2 * m.noisy.size) for m in marginals])
    totals = np.array([m.noisy.sum() for m in marginals], dtype=float)
    return max(1, round(float(weights @ totals / weights.sum())))


def _shares(noisy: np.ndarray) -> np.ndarray:
    clipped = np.clip(noisy, 0, None).astype(float)
    return clipped / clipped.sum() if clipped.sum() > 0 else np.full(len(clipped), 1.0 / len(clipped))


def _split_budget(budget: Budget, columns: list[Column], share: float) -> tuple[float, float, float]:
    """(δ for category thresholding, δ of the RDP conversion, ρ for the zCDP mechanisms)."""
    thresholds = any(c.kind == "categorical" and domain_mechanisms(c) for c in columns)
    threshold_delta = THRESHOLD_DELTA_SHARE * budget.delta if thresholds else 0.0
    conversion_delta = budget.delta - threshold_delta
    return threshold_delta, conversion_delta, SAFETY * share * zcdp_rho(budget.epsilon, conversion_delta)


def _is_int(value, minimum: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


def _is_positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < math.inf
