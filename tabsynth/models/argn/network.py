"""The autoregressive network: each token predicted from the tokens generated before it.

The first token of every column has an embedding table with one extra row meaning "not generated yet". To
predict token `s`, these embeddings are concatenated, those not yet generated replaced by that extra row, and
fed to the token's own small MLP. A column's second token (a position within a numeric bin) is detail, not
context: it is predicted but never an input, so a near-unique number cannot serve to memorise rows. Which
tokens come first is given per row by a visibility mask, so one network serves the fixed column order and the
orders that put conditioned columns first. A network may also take `given` leading tokens per row (context such
as a parent row or the previous event of a sequence): always visible, never predicted, so they have no head.
Only `nn.Embedding` and `nn.Linear` hold parameters, so opacus computes per-sample gradients natively.
"""

from __future__ import annotations

import torch
from torch import nn


def embedding_width(size: int, limit: int) -> int:
    """fast.ai's rule of thumb for categorical embeddings, capped at `limit`."""
    return max(2, min(limit, round(1.6 * size**0.56)))


class ARGNetwork(nn.Module):
    def __init__(self, sizes: list[int], owners: list[int], *, embedding: int, hidden: int, layers: int,
                 given: int = 0):
        super().__init__()
        self.sizes = list(sizes)
        self.given = given  # leading tokens given per row: inputs only, no head
        self.inputs = [i for i, owner in enumerate(owners) if i == 0 or owners[i - 1] != owner]
        widths = [embedding_width(self.sizes[i] + 1, embedding) for i in self.inputs]
        self.embeddings = nn.ModuleList(nn.Embedding(self.sizes[i] + 1, width)
                                        for i, width in zip(self.inputs, widths, strict=True))
        self.heads = nn.ModuleList(_mlp(sum(widths), hidden, layers, size) for size in self.sizes[given:])

    def forward(self, tokens: torch.Tensor, visible: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every predicted token (all but the given ones); `visible[b, s, i]` says whether token i is
        known when predicting token s."""
        parts = []
        for i, embed in zip(self.inputs, self.embeddings, strict=True):
            # one lookup per row for the value and one for "not generated yet", then chosen per target
            both = embed(torch.stack([tokens[:, i], torch.full_like(tokens[:, i], self.sizes[i])], dim=1))
            parts.append(torch.where(visible[..., i, None], both[:, :1], both[:, 1:]))
        context = torch.cat(parts, dim=-1)
        return [head(inputs) for head, inputs in zip(self.heads, context.unbind(1)[self.given:], strict=True)]

    def predict(self, target: int, tokens: torch.Tensor, known: list[bool]) -> torch.Tensor:
        """Logits of token `target` for every row, the tokens flagged in `known` being generated already."""
        context = torch.cat([embed(tokens[:, i] if known[i] else torch.full_like(tokens[:, i], self.sizes[i]))
                             for i, embed in zip(self.inputs, self.embeddings, strict=True)], dim=-1)
        return self.heads[target - self.given](context)


def _mlp(width: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    blocks, last = [], width
    for _ in range(layers):
        blocks += [nn.Linear(last, hidden), nn.ReLU()]
        last = hidden
    return nn.Sequential(*blocks, nn.Linear(last, outputs))


def token_loss(logits: list[torch.Tensor], tokens: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Sum over the predicted tokens (the last `len(logits)`) of the cross-entropy, averaged (or summed) over rows."""
    first = tokens.shape[1] - len(logits)
    return sum(nn.functional.cross_entropy(out, tokens[:, first + s], reduction=reduction)
               for s, out in enumerate(logits))


def training_visibility(owners: list[int], rows: int, flexible: float, generator: torch.Generator,
                        device: torch.device, given: int = 0) -> torch.Tensor:
    """(rows × tokens × tokens) visibility for a batch: the fixed column order, except that a share `flexible`
    of rows first moves a random subset of columns, in random order, to the front (as conditioning does). The
    first `given` columns (context given per row) always come first."""
    columns = max(owners) + 1
    keys = torch.arange(columns, device=device, dtype=torch.float32).expand(rows, columns)
    if flexible > 0:
        moved_share = torch.rand(rows, 1, generator=generator, device=device)
        moved = torch.rand(rows, columns, generator=generator, device=device) < moved_share
        moved &= torch.rand(rows, 1, generator=generator, device=device) < flexible
        keys = torch.where(moved, torch.rand(rows, columns, generator=generator, device=device) - 1.0, keys)
    if given:
        keys = torch.cat([torch.full_like(keys[:, :given], -2.0), keys[:, given:]], dim=1)
    owner = torch.tensor(owners, device=device)
    column_rank = keys.argsort(dim=1).argsort(dim=1)[:, owner].float()
    sub_rank = (torch.arange(len(owners), device=device) - _first_token(owners, device)).float()
    rank = column_rank * len(owners) + sub_rank
    return rank[:, None, :] < rank[:, :, None]


def _first_token(owners: list[int], device: torch.device) -> torch.Tensor:
    firsts = {}
    for i, owner in enumerate(owners):
        firsts.setdefault(owner, i)
    return torch.tensor([firsts[owner] for owner in owners], device=device)
