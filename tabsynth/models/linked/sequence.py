"""The rows of a child table as sequences: each row generated given its parent, its place and the row before.

One `argn` network whose given (context) columns are the parent row's attributes, the row's position in its
sequence, the sequence's length and the previous row's columns (lag 1; at position 0 the "not generated yet"
embedding), and whose generated columns are the row's own. Generation goes position by position, each step one
batched pass over every parent whose sequence is still running.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tabsynth.models.argn.encoding import TableTokens, fit_tokens
from tabsynth.models.argn.generation import generate
from tabsynth.models.argn.network import ARGNetwork
from tabsynth.models.argn.training import Settings, calibrate, resolve_device, torch_generator, torch_threads, train
from tabsynth.table.schema import Column

STEP_COLUMNS = (Column("__position", "numerical", "int64", decimals=0),
                Column("__length", "numerical", "int64", decimals=0))
DEFAULTS = {"epochs": 100, "batch_size": 512, "lr": 3e-3, "embedding": 16, "hidden": 128, "layers": 2,
            "patience": 5, "validation": 0.1, "rare_threshold": 5, "bins": 100, "sub_bins": 50, "device": "auto",
            "threads": None}


class SequenceModel:
    """`params`: any of DEFAULTS (argn's training and tokenizing parameters)."""

    def __init__(self, **params):
        self.params = DEFAULTS | {k: v for k, v in params.items() if k in DEFAULTS}

    def fit(self, parents: pd.DataFrame, parent_columns: list[Column], events: pd.DataFrame,
            event_columns: list[Column], parent_rows: np.ndarray, positions: np.ndarray,
            rng: np.random.Generator, progress=None) -> SequenceModel:
        p = self.params
        self.parent_tokens_ = fit_tokens(parents, parent_columns, rare_threshold=p["rare_threshold"], bins=p["bins"],
                                         sub_bins=1)
        steps = _step_frame(positions, np.bincount(parent_rows, minlength=len(parents))[parent_rows])
        self.step_tokens_ = fit_tokens(steps, list(STEP_COLUMNS), rare_threshold=p["rare_threshold"],
                                       bins=p["bins"], sub_bins=1)
        self.event_tokens_ = fit_tokens(events, event_columns, rare_threshold=p["rare_threshold"], bins=p["bins"],
                                        sub_bins=p["sub_bins"])
        event_codes = self.event_tokens_.encode(events)
        codes = np.concatenate([self.parent_tokens_.encode(parents)[parent_rows], self.step_tokens_.encode(steps),
                                _previous(event_codes, positions, self._unknown()), event_codes], axis=1)
        settings = Settings(p["epochs"], p["batch_size"], p["lr"], 0.0, p["patience"], p["validation"],
                            given=self._given_columns())
        device = resolve_device(p["device"])
        with torch_threads(p["threads"]):
            network = self._new_network(rng).to(device)
            self.history_ = train(network, codes, self._layout().owners, settings, rng, device, progress)
            calibrate(network, codes, self._layout().owners, device, given=self._given_columns())
        self.network_ = network.cpu()
        return self

    def generate(self, parents: pd.DataFrame, lengths: np.ndarray, rng: np.random.Generator
                 ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The rows of every parent (`lengths[i]` for parent i), sorted by parent and position; with each row's
        parent row and position."""
        device = resolve_device(self.params["device"])
        generator = torch_generator(rng, device)
        parent_codes = self.parent_tokens_.encode(parents)
        last = np.tile(self._unknown(), (len(parents), 1))
        found = []
        with torch_threads(self.params["threads"]):
            self.network_.to(device)
            for position in range(int(lengths.max(initial=0))):
                active = np.flatnonzero(lengths > position)
                steps = self.step_tokens_.encode(_step_frame(np.full(len(active), position), lengths[active]))
                given = np.concatenate([parent_codes[active], steps, last[active]], axis=1)
                last[active] = self._generate_step(given, generator, device)
                found.append((active, np.full(len(active), position), last[active]))
        return self._assemble(found, rng)

    def _generate_step(self, given: np.ndarray, generator: torch.Generator, device: torch.device) -> np.ndarray:
        layout = self._layout()
        events = list(range(self._given_columns(), len(layout.columns)))
        allowed = [column.valid for column in layout.columns]
        codes = generate(self.network_, len(given), events, layout.slices(), allowed, generator, device, given)
        return codes[:, given.shape[1]:]

    def _assemble(self, found: list, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        if not found:
            return self.event_tokens_.decode(np.zeros((0, len(self._unknown())), np.int64), rng), \
                np.zeros(0, np.int64), np.zeros(0, np.int64)
        parent_rows, positions, codes = (np.concatenate(part) for part in zip(*found, strict=True))
        order = np.lexsort((positions, parent_rows))
        return self.event_tokens_.decode(codes[order], rng), parent_rows[order], positions[order]

    def _layout(self) -> TableTokens:
        """Given columns (parent, step, previous row), then the row's own."""
        return TableTokens(self.parent_tokens_.columns + self.step_tokens_.columns + self.event_tokens_.columns
                           + self.event_tokens_.columns)

    def _given_columns(self) -> int:
        return len(self.parent_tokens_.columns) + len(self.step_tokens_.columns) + len(self.event_tokens_.columns)

    def _given_tokens(self) -> int:
        return len(self._layout().sizes) - len(self.event_tokens_.sizes)

    def _unknown(self) -> np.ndarray:
        """The previous row's tokens at position 0: each token's "not generated yet" index."""
        return np.array(self.event_tokens_.sizes, dtype=np.int64)

    def _new_network(self, rng: np.random.Generator | None = None) -> ARGNetwork:
        layout, p = self._layout(), self.params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if rng is None else int(rng.integers(2**62)))
            return ARGNetwork(layout.sizes, layout.owners, embedding=p["embedding"], hidden=p["hidden"],
                              layers=p["layers"], given=self._given_tokens())

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = {"params": self.params, "history": self.history_}, {}
        for part in ("parent", "step", "event"):
            metas, part_arrays = getattr(self, f"{part}_tokens_").state()
            state[part] = metas
            arrays |= {f"{part}_{key}": value for key, value in part_arrays.items()}
        arrays |= {f"net_{key}": value.detach().cpu().numpy() for key, value in self.network_.state_dict().items()}
        return state, arrays

    @classmethod
    def from_state(cls, state: dict, arrays: dict[str, np.ndarray]) -> SequenceModel:
        model = cls(**state["params"])
        for part in ("parent", "step", "event"):
            part_arrays = {k.removeprefix(f"{part}_"): v for k, v in arrays.items() if k.startswith(f"{part}_")}
            setattr(model, f"{part}_tokens_", TableTokens.from_state(state[part], part_arrays))
        model.network_ = model._new_network()
        weights = {k.removeprefix("net_"): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net_")}
        model.network_.load_state_dict(weights, strict=True)
        model.history_ = state["history"]
        return model


def _step_frame(positions: np.ndarray, lengths: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"__position": positions.astype(np.int64), "__length": lengths.astype(np.int64)})


def _previous(codes: np.ndarray, positions: np.ndarray, unknown: np.ndarray) -> np.ndarray:
    """Each row's previous row's tokens (rows sorted by parent and position); `unknown` at position 0."""
    previous = np.roll(codes, 1, axis=0)
    previous[positions == 0] = unknown
    return previous
