"""DP-SGD's randomness comes from the budget's RandomSource (the OS CSPRNG), not from a torch generator."""

import numpy as np
import pytest
import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from scipy import stats

from tabsynth.privacy.dpsgd import gaussian_noise, poisson_batch, source_noise_optimizer
from tabsynth.privacy.mechanisms import RandomSource


def test_gaussian_noise_is_normal_with_the_asked_scale():
    noise = gaussian_noise(RandomSource.system(), 2.5, torch.zeros(200_000, dtype=torch.float64)).numpy()
    assert noise.std() == pytest.approx(2.5, rel=0.01)
    assert abs(noise.mean()) < 0.02
    assert stats.kstest(noise / 2.5, "norm").pvalue > 1e-4


def test_gaussian_noise_keeps_shape_dtype_and_is_zero_at_zero_scale():
    like = torch.ones(3, 4, dtype=torch.float32)
    noise = gaussian_noise(RandomSource.system(), 1.0, like)
    assert noise.shape == like.shape and noise.dtype == like.dtype
    assert torch.count_nonzero(gaussian_noise(RandomSource.system(), 0.0, like)) == 0


def test_seeded_sources_repeat_and_system_sources_do_not():
    like = torch.zeros(1000)
    seeded = [gaussian_noise(RandomSource.seeded(7), 1.0, like) for _ in range(2)]
    assert torch.equal(*seeded)
    assert not torch.equal(gaussian_noise(RandomSource.system(), 1.0, like),
                           gaussian_noise(RandomSource.system(), 1.0, like))


def test_poisson_batch_keeps_each_row_with_the_sample_rate():
    sizes = [len(poisson_batch(RandomSource.system(), 10_000, 0.05)) for _ in range(20)]
    assert 450 < np.mean(sizes) < 550
    assert len(set(sizes)) > 1


def _noisy_step(source: RandomSource, noise_multiplier: float) -> torch.Tensor:
    model = GradSampleModule(torch.nn.Linear(3, 1, bias=False), loss_reduction="sum")
    torch.nn.init.zeros_(model._module.weight)
    optimizer = source_noise_optimizer(DPOptimizer, source, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                                       noise_multiplier=noise_multiplier, max_grad_norm=1.0, expected_batch_size=None,
                                       loss_reduction="sum")
    inputs = torch.zeros(4, 3, requires_grad=True)  # the gradient is zero: the step is the noise alone
    model(inputs).sum().backward()
    optimizer.step()
    return -model._module.weight.detach().ravel().clone()


def test_the_optimizer_adds_the_sources_noise_at_multiplier_times_clip():
    steps = torch.stack([_noisy_step(RandomSource.system(), 4.0) for _ in range(300)]).numpy().ravel()
    assert steps.std() == pytest.approx(4.0, rel=0.1)
    assert torch.equal(_noisy_step(RandomSource.seeded(3), 4.0), _noisy_step(RandomSource.seeded(3), 4.0))
