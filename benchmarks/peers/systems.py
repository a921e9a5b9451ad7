"""Every system in the table, its environment, its parameters in full mode and in quick mode.

Full mode uses each system's defaults (the epochs its authors chose). Quick mode cuts epochs (and, for
DataSynthesizer, the degree and the training rows) so that the whole table takes under 15 minutes on a shared
2-core machine, and leaves out the slowest peers (quick=None), each row saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRAIN_ROWS = "train_rows"  # a quick-mode setting: fit on a random subsample of this many training rows


@dataclass(frozen=True)
class System:
    """One row of the table: which adapter in which environment, with which parameters and ε."""

    label: str
    env: str
    adapter: str
    params: dict = field(default_factory=dict)
    quick: dict | None = field(default_factory=dict)  # parameters overridden in quick mode; None: left out
    epsilon: float | None = None
    epochs_key: str | None = None  # the parameter that a smoke test's --epochs overrides
    left_out_because: str = "slow; run the full mode"  # shown in the row when quick mode leaves it out

    def settings(self, quick: bool, epochs: int | None = None) -> dict:
        params = self.params | (self.quick or {}) if quick else dict(self.params)
        if epochs is not None and self.epochs_key:
            params[self.epochs_key] = epochs
        return params


def _tabsynth(model: str, quick: dict | None = None, epsilon: float | None = None, epochs: bool = True) -> System:
    label = f"tabsynth {model}" + ("" if epsilon is None else f" ε={epsilon:g}")
    return System(label, "tabsynth", "tabsynth", {"model": model}, quick or {}, epsilon,
                  "epochs" if epochs else None)


def _smartnoise(name: str, synthesizer: str, epsilon: float, quick: dict | None, left_out_because: str = "",
                **params) -> System:
    return System(f"SmartNoise {name} ε={epsilon:g}", "smartnoise", "smartnoise",
                  {"synthesizer": synthesizer, **params}, quick, epsilon, "epochs" if "epochs" in params else None,
                  left_out_because)


MOSTLY_QUICK = {"max_epochs": 3, "max_training_time": 3}  # minutes
MBI = {"mbi_sampling": "sample"}  # i.i.d. draws: mbi 1.1.0's default "round" breaks correlations (adapters.py)
AIM_SLOW = "about 16 min per fit on Adult here; run the full mode"
SYSTEMS: tuple[System, ...] = (
    _tabsynth("copula", epochs=False),
    _tabsynth("ctgan", {"epochs": 3}),
    _tabsynth("tvae", {"epochs": 10}),
    _tabsynth("argn", {"epochs": 5}),
    _tabsynth("dp-marginal", epsilon=1.0, epochs=False),
    _tabsynth("dp-marginal", epsilon=3.0, epochs=False),
    _tabsynth("dp-ctgan", {"epochs": 2}, epsilon=3.0),
    _tabsynth("dp-argn", {"epochs": 3}, epsilon=3.0),
    System("SDV GaussianCopula", "sdv", "sdv", {"synthesizer": "GaussianCopulaSynthesizer"}),
    System("SDV CTGAN", "sdv", "sdv", {"synthesizer": "CTGANSynthesizer", "epochs": 300}, {"epochs": 3},
           epochs_key="epochs"),
    System("SDV TVAE", "sdv", "sdv", {"synthesizer": "TVAESynthesizer", "epochs": 300}, {"epochs": 10},
           epochs_key="epochs"),
    _smartnoise("MST", "mst", 1.0, {}, **MBI),
    _smartnoise("MST", "mst", 3.0, {}, **MBI),
    _smartnoise("AIM", "aim", 1.0, None, left_out_because=AIM_SLOW, **MBI),
    _smartnoise("AIM", "aim", 3.0, None, left_out_because=AIM_SLOW, **MBI),
    _smartnoise("DP-CTGAN", "dpctgan", 3.0, {"epochs": 1}, epochs=300, verbose=False),
    # Greedy PrivBayes of degree 2 took 3.5 minutes on 2,000 rows of Adult here; degree 1 on 5,000 rows, 20 s.
    System("DataSynthesizer PrivBayes ε=1", "datasynthesizer", "datasynthesizer", {"k": 2},
           {"k": 1, TRAIN_ROWS: 5_000}, 1.0),
    System("DataSynthesizer PrivBayes ε=3", "datasynthesizer", "datasynthesizer", {"k": 2},
           {"k": 1, TRAIN_ROWS: 5_000}, 3.0),
    System("MOSTLY AI TabularARGN", "mostlyai", "mostlyai", {}, MOSTLY_QUICK, epochs_key="max_epochs"),
    System("MOSTLY AI TabularARGN DP ε=3", "mostlyai", "mostlyai", {}, MOSTLY_QUICK, 3.0, "max_epochs"),
)


def selected(quick: bool, only: str | None = None) -> list[System]:
    """The systems of this mode (quick leaves some out), optionally those whose label contains `only`."""
    chosen = [s for s in SYSTEMS if not (quick and s.quick is None)]
    if only:
        chosen = [s for s in chosen if only.lower() in s.label.lower()]
    return chosen


def left_out_in_quick() -> list[str]:
    return [s.label for s in SYSTEMS if s.quick is None]
