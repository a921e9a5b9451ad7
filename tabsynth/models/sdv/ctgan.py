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
The table is encoded by `transformer.TableEncoder`; what both models share is in `network.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from ctgan.synthesizers.ctgan import Discriminator, Generator
from ctgan.synthesizers.tvae import Decoder, Encoder, _loss_function

from tabsynth.errors import ModelError
from tabsynth.models.sdv.network import NetworkSynthesizer
from tabsynth.models.sdv.transformer import (
    TANH,
    Conditions,
    RowsByCategory,
    SpanLayout,
    activate,
    condition_loss,
    softmax_spans,
)

BETAS, DECAY = (0.5, 0.9), 1e-6  # ctgan's Adam settings for both networks


class CTGAN(NetworkSynthesizer):
    """Conditional tabular GAN (Xu et al., 2019) with a WGAN-GP critic over groups of `pac` rows."""

    name = "ctgan"
    supports_conditions = True  # `column == value` for a discrete column, through the conditional vector
    _INTS = (*NetworkSynthesizer._INTS, "pac")
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
        layout = SpanLayout.of(spans, device)
        generator, conditions = self.network_, self.conditions_
        critic = Discriminator(matrix.shape[1] + conditions.dim, list(self.discriminator_dim), pac=self.pac).to(device)
        optimize_g = _adam(generator, self.generator_lr)
        optimize_d = _adam(critic, self.discriminator_lr)
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
            fake = torch.cat([activate(raw, layout), cond], 1).requires_grad_()
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
            raw, cond, picked, categories = fake_rows(batch)
            loss = -critic(torch.cat([activate(raw, layout), cond], 1)).mean()
            loss = loss + condition_loss(raw, layout, *(torch.from_numpy(a).to(device) for a in (picked, categories)))
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
        rows = activate(raw, SpanLayout.of(spans, device)).cpu().numpy()
        if pinned is not None:  # the generator follows its condition closely, not always
            start, span = softmax_spans(spans)[pinned[0]]
            rows[:, start:start + span.dim] = np.eye(span.dim, dtype=rows.dtype)[pinned[1]]
        return rows

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {"condition_counts": self.conditions_.counts}

    def _set_extra_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        widths = np.array([span.dim for _, span in softmax_spans(self.encoder_.spans)], dtype=int)
        self.conditions_ = Conditions(widths, arrays["condition_counts"])


class TVAE(NetworkSynthesizer):
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
        values = activate(raw, SpanLayout.of(self.encoder_.spans, raw.device))
        noisy = values + sigmas * torch.randn_like(values)  # TVAE's output noise, on continuous spans only
        continuous = torch.tensor([span.activation_fn == TANH for span in self.encoder_.spans
                                   for _ in range(span.dim)], device=values.device)
        return torch.where(continuous, noisy, values).cpu().numpy()


def _adam(network: torch.nn.Module, learning_rate: float) -> torch.optim.Adam:
    """ctgan's Adam; fused, i.e. one pass over all parameters per step (the per-tensor loop cost ~8 % of a step)."""
    return torch.optim.Adam(network.parameters(), learning_rate, betas=BETAS, weight_decay=DECAY, fused=True)


def _fixed_values(conditions) -> dict:
    """{column: value} pinned by a condition (a `tabsynth.rules.conditions.Condition`) or given as a dict."""
    if not conditions:
        return {}
    return dict(conditions) if isinstance(conditions, dict) else conditions.fixed_values()
