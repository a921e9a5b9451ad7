"""Sampling tokens column by column, vectorised over a batch of rows, within per-column token limits."""

from __future__ import annotations

import numpy as np
import torch

from tabsynth.models.argn.network import ARGNetwork

SAMPLE_BATCH = 8192
CALIBRATION_ROWS, CALIBRATION_ROUNDS = 20_000, 4


@torch.no_grad()
def generate(network: ARGNetwork, rows: int, order: list[int], slices: list[slice], allowed: list[np.ndarray],
             generator: torch.Generator, device: torch.device, given: np.ndarray | None = None) -> np.ndarray:
    """(rows × tokens) int64, columns generated in `order`; column c holds tokens `slices[c]`, and may only take
    the token tuples flagged in `allowed[c]`. `given` (rows × network.given), for a network that takes context,
    holds each row's leading tokens."""
    network.eval()
    masks = {c: torch.as_tensor(allowed[c].reshape(allowed[c].shape[0], -1), device=device) for c in order}
    columns = [(slices[c], masks[c]) for c in order]
    if given is None:
        given = np.zeros((rows, network.given), dtype=np.int64)
    batches = [_generate_batch(network, given[start:start + size], columns, generator, device)
               for start, size in _batch_starts(rows)]
    return np.concatenate(batches) if batches else np.zeros((0, len(network.sizes)), dtype=np.int64)


def _generate_batch(network: ARGNetwork, given: np.ndarray, columns: list[tuple[slice, torch.Tensor]],
                    generator: torch.Generator, device: torch.device) -> np.ndarray:
    rows = len(given)
    tokens = torch.zeros(rows, len(network.sizes), dtype=torch.long, device=device)
    tokens[:, :network.given] = torch.as_tensor(given, device=device)
    known = [s < network.given for s in range(len(network.sizes))]
    for part, mask in columns:
        for target in range(part.start, part.stop):
            # the first token of a column sees which tuples stay reachable; the second, its row of the mask
            allowed = mask.any(dim=1).expand(rows, -1) if target == part.start else mask[tokens[:, part.start]]
            logits = network.predict(target, tokens, known).masked_fill(~allowed, -torch.inf)
            tokens[:, target] = torch.multinomial(torch.softmax(logits, dim=1), 1, generator=generator)[:, 0]
            known[target] = True
    return tokens.cpu().numpy()


def _batch_starts(rows: int) -> list[tuple[int, int]]:
    return [(start, min(SAMPLE_BATCH, rows - start)) for start in range(0, rows, SAMPLE_BATCH)]


@torch.no_grad()
def calibrate_to_marginals(network: ARGNetwork, marginals: list[np.ndarray], allowed: list[np.ndarray],
                           generator: torch.Generator, device: torch.device, *, rows: int = CALIBRATION_ROWS,
                           rounds: int = CALIBRATION_ROUNDS) -> None:
    """Shift each output bias so that rows sampled in the fixed order have the given one-way marginals (noisy
    counts, one token per column): DP-SGD's noise leaves the sampled frequencies off by several points.
    Reads only the network and the noisy counts, so it is post-processing of DP outputs."""
    targets = [np.clip(counts, 0, None) / max(np.clip(counts, 0, None).sum(), 1) for counts in marginals]
    slices = [slice(c, c + 1) for c in range(len(marginals))]
    for _ in range(rounds):
        codes = generate(network, rows, list(range(len(marginals))), slices, allowed, generator, device)
        for c, target in enumerate(targets):
            seen = np.bincount(codes[:, c], minlength=len(target)) / rows
            shift = np.log(target + 1.0 / rows) - np.log(seen + 1.0 / rows)
            bias = network.heads[c][-1].bias
            bias += torch.as_tensor(shift, dtype=bias.dtype, device=bias.device)
