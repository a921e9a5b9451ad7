"""Training loops: plain (shuffled batches, early stopping on a validation split) and DP-SGD (opacus).

`progress`, when given, is called after every epoch with a dict: epoch, epochs, loss and, for the plain loop,
val_loss.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from tabsynth.models.argn.network import ARGNetwork, token_loss, training_visibility
from tabsynth.models.memory import idle_cores
from tabsynth.privacy.dpsgd import poisson_batch, source_noise_optimizer
from tabsynth.privacy.mechanisms import RandomSource

Progress = Callable[[dict], None]
EVAL_BATCH = 4096
CALIBRATION_ROUNDS = 3
PHYSICAL_BATCH = 256  # DP-SGD: rows whose per-row gradients are held in memory at once


@dataclass(frozen=True)
class Settings:
    epochs: int
    batch_size: int
    lr: float
    flexible: float  # share of rows trained with conditioned-first column orders
    patience: int = 0  # plain loop: epochs without a better validation loss before stopping
    validation: float = 0.0  # plain loop: share of rows held out for early stopping
    given: int = 0  # leading columns given per row (context), always visible and never predicted


@dataclass(frozen=True)
class DPSettings:
    """DP-SGD with Poisson sampling: each step keeps each row with probability `sample_rate`."""

    noise_multiplier: float
    sample_rate: float
    steps: int
    max_grad_norm: float


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Use `threads` (default: the idle cores) for torch inside the block, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads or idle_cores())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torch_generator(rng: np.random.Generator, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))


def train(network: ARGNetwork, codes: np.ndarray, owners: list[int], settings: Settings, rng: np.random.Generator,
          device: torch.device, progress: Progress | None = None) -> list[dict]:
    """Adam on shuffled batches, the learning rate halved after two epochs in a row that do not improve the validation
    loss; keeps the weights of the best epoch. Returns the loss history."""
    generator = torch_generator(rng, device)
    order = rng.permutation(len(codes))
    held = int(round(settings.validation * len(codes))) if len(codes) >= 20 else 0
    fit_rows = torch.as_tensor(codes[order[held:]], device=device)
    val_rows = torch.as_tensor(codes[order[:held]], device=device)
    optimizer = torch.optim.Adam(network.parameters(), lr=settings.lr)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=1, threshold=1e-4,
                                                          threshold_mode="abs")
    history, best, best_state, waited = [], np.inf, None, 0
    for epoch in range(settings.epochs):
        network.train()
        losses = [_step(network, optimizer, fit_rows[batch], owners, settings, generator)
                  for batch in torch.randperm(len(fit_rows), generator=generator, device=device)
                  .split(settings.batch_size)]
        record = {"epoch": epoch + 1, "epochs": settings.epochs, "loss": float(np.mean(losses))}
        record["val_loss"] = mean_loss(network, val_rows, owners, settings.given) if held else record["loss"]
        history.append(record)
        if progress:
            progress(record)
        schedule.step(record["val_loss"])
        if record["val_loss"] < best - 1e-4:
            best, best_state, waited = record["val_loss"], copy.deepcopy(network.state_dict()), 0
        else:
            waited += 1
            if settings.patience and waited >= settings.patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    return history


def _step(network: ARGNetwork, optimizer, rows: torch.Tensor, owners: list[int], settings: Settings,
          generator: torch.Generator) -> float:
    visible = training_visibility(owners, len(rows), settings.flexible, generator, rows.device, settings.given)
    loss = token_loss(network(rows, visible), rows)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


@torch.no_grad()
def calibrate(network: ARGNetwork, codes: np.ndarray, owners: list[int], device: torch.device,
              iterations: int = CALIBRATION_ROUNDS, given: int = 0) -> None:
    """Refit the output biases by maximum likelihood, all else frozen, in the fixed column order.

    At the optimum, each token's mean predicted distribution over the rows equals its frequency; the fixed-point
    step b += log(frequency) - log(mean prediction) gets there in a few rounds. Adam's last noisy steps leave
    the frequencies of a sampled table off by a few points; this removes that drift.
    """
    network.eval()
    rows = torch.as_tensor(codes, device=device)
    predicted = network.sizes[network.given:]
    for _ in range(iterations):
        sums = [torch.zeros(size, device=device) for size in predicted]
        for batch in rows.split(EVAL_BATCH):
            visible = training_visibility(owners, len(batch), 0.0, None, device, given)
            for total, logits in zip(sums, network(batch, visible), strict=True):
                total += torch.softmax(logits, dim=1).sum(dim=0)
        for s, (head, total) in enumerate(zip(network.heads, sums, strict=True)):
            seen = torch.bincount(rows[:, network.given + s], minlength=predicted[s]).float()
            head[-1].bias[seen > 0] += (seen.log() - total.log())[seen > 0]


@torch.no_grad()
def mean_loss(network: ARGNetwork, rows: torch.Tensor, owners: list[int], given: int = 0) -> float:
    """Per-row loss in the fixed column order (the order of unconditional sampling)."""
    network.eval()
    total = 0.0
    for batch in rows.split(EVAL_BATCH):
        visible = training_visibility(owners, len(batch), 0.0, None, rows.device, given)
        total += float(token_loss(network(batch, visible), batch)) * len(batch)
    return total / max(len(rows), 1)


def train_private(network: ARGNetwork, codes: np.ndarray, owners: list[int], settings: Settings, dp: DPSettings,
                  rng: np.random.Generator, noise: RandomSource, device: torch.device,
                  progress: Progress | None = None) -> None:
    """DP-SGD: Poisson-sampled batches and Gaussian noise (`privacy.dpsgd.gaussian_noise`) drawn from `noise`, the
    budget's RandomSource; per-row gradients clipped. `progress` hears epoch and step counts only: the loss on
    real batches is not noised, so it is neither kept nor reported.

    A batch is processed in chunks of at most `PHYSICAL_BATCH` rows to bound the memory of per-row gradients;
    clipped gradients add up over the chunks and the noise is added once per batch.
    """
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    model = GradSampleModule(network, loss_reduction="sum")
    adam = torch.optim.Adam(model.parameters(), lr=settings.lr)
    optimizer = source_noise_optimizer(DPOptimizer, noise, optimizer=adam, noise_multiplier=dp.noise_multiplier,
                                       max_grad_norm=dp.max_grad_norm, expected_batch_size=None, loss_reduction="sum")
    rows = torch.as_tensor(codes, device=device)
    orders = torch_generator(rng, device)
    steps_per_epoch = max(1, round(1 / dp.sample_rate))
    epochs = -(-dp.steps // steps_per_epoch)
    model.train()
    for step in range(dp.steps):
        batch = rows[torch.as_tensor(poisson_batch(noise, len(rows), dp.sample_rate), device=device)]
        _private_step(model, optimizer, batch, owners, settings.flexible, orders)
        if progress and ((step + 1) % steps_per_epoch == 0 or step + 1 == dp.steps):
            progress({"epoch": -(-(step + 1) // steps_per_epoch), "epochs": epochs, "steps": step + 1})
    model.cleanup()


def _private_step(model, optimizer, batch: torch.Tensor, owners: list[int], flexible: float,
                  orders: torch.Generator) -> None:
    """One noisy step over a Poisson batch (possibly empty)."""
    chunks = batch.split(PHYSICAL_BATCH) or (batch,)
    for last, chunk in enumerate(chunks, start=1 - len(chunks)):
        optimizer.signal_skip_step(do_skip=last < 0)  # clip and add up every chunk; step and add noise once
        visible = training_visibility(owners, len(chunk), flexible, orders, chunk.device)
        loss = token_loss(model(chunk, visible), chunk, reduction="sum")
        with warnings.catch_warnings():  # the inputs are token ids: no gradient flows into them, as intended
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
