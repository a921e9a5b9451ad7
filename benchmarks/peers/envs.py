"""The peers' own virtual environments under benchmarks/peers/.envs/ (the peers are not tabsynth dependencies).

Each environment is made with `python3.11 -m venv`, gets the CPU torch build first when the peer needs torch
(an unpinned torch would pull a multi-GB CUDA build), then the peer at a pinned version. A finished install
leaves a `ready` file holding its spec, so a second run reuses it; a failed one leaves its pip log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from jobs import WORKER

ENVS_DIR = Path(__file__).resolve().parent / ".envs"
BASE_PYTHON = "python3.11"
TORCH = "torch==2.13.0"
INSTALL_TIMEOUT_S = 1800


@dataclass(frozen=True)
class EnvSpec:
    """One peer environment: what to install, what to remove afterwards, which packages' versions to report."""

    name: str
    packages: tuple[str, ...]
    reported: tuple[str, ...]
    needs_torch: bool = True
    remove_after: tuple[str, ...] = ()

    def describe(self) -> str:
        return json.dumps({"packages": self.packages, "torch": self.needs_torch, "remove": self.remove_after})


@dataclass(frozen=True)
class EnvStatus:
    """An environment ready to run (python set) or not installable here (reason set)."""

    name: str
    python: str | None
    reason: str = ""


TABSYNTH_ENV = "tabsynth"
NOT_USED = "not used in this run"
PEER_ENVS = {spec.name: spec for spec in (
    EnvSpec("sdv", ("sdv==2.0.0", "pyarrow"), ("sdv", "ctgan", "copulas", "rdt", "torch")),
    # SmartNoise's DP-CTGAN imports `packaging` without declaring it.
    EnvSpec("smartnoise", ("smartnoise-synth==1.0.8", "packaging", "pyarrow"),
            ("smartnoise-synth", "mbi", "opacus", "torch")),
    EnvSpec("datasynthesizer", ("DataSynthesizer==0.1.13", "pyarrow"), ("DataSynthesizer",), needs_torch=False),
    # The PyPI torchvision build does not import beside the CPU torch, and the engine runs without it.
    EnvSpec("mostlyai", ("mostlyai-engine==2.7.3",), ("mostlyai-engine", "opacus", "torch"),
            remove_after=("torchvision",)),
)}


def ensure(name: str, log=print) -> EnvStatus:
    """The environment `name`, installed if missing; tabsynth's own is the one running this script."""
    if name == TABSYNTH_ENV:
        return EnvStatus(name, sys.executable)
    spec = PEER_ENVS[name]
    folder = ENVS_DIR / name
    python = folder / "bin" / "python"
    ready = folder / "ready"
    if ready.is_file() and ready.read_text() == spec.describe() and python.is_file():
        return EnvStatus(name, str(python))
    log(f"installing the {name} environment in {folder} (a few minutes)")
    reason = _install(spec, folder)
    if reason:
        return EnvStatus(name, None, reason)
    ready.write_text(spec.describe())
    return EnvStatus(name, str(python))


def _install(spec: EnvSpec, folder: Path) -> str:
    """Empty string on success, else one line saying why the install failed."""
    python = str(folder / "bin" / "python")
    steps = [[BASE_PYTHON, "-m", "venv", "--clear", str(folder)],
             [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"]]
    if spec.needs_torch:
        steps.append([python, "-m", "pip", "install", "--quiet", TORCH])
    steps.append([python, "-m", "pip", "install", "--quiet", *spec.packages])
    if spec.remove_after:
        steps.append([python, "-m", "pip", "uninstall", "--quiet", "-y", *spec.remove_after])
    folder.mkdir(parents=True, exist_ok=True)
    log_file = folder.with_suffix(".log")
    log_file.write_text("")
    for step in steps:
        reason = _run_step(step, log_file)
        if reason:
            return reason
    return ""


def _run_step(command: list[str], log_file: Path) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(command[-2:])}: {type(exc).__name__}: {exc}"
    with open(log_file, "a") as handle:
        handle.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode == 0:
        return ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")] or done.stderr.splitlines()
    return f"pip failed ({' '.join(command[3:])}): {errors[-1][:200] if errors else 'no message'}"


def versions(status: EnvStatus) -> dict[str, str]:
    """Installed versions of the packages reported for this environment (asked of its own python)."""
    packages = ("tabsynth", "torch", "opacus") if status.name == TABSYNTH_ENV else PEER_ENVS[status.name].reported
    if status.python is None:
        return {}
    done = subprocess.run([status.python, str(WORKER), "--versions", *packages], capture_output=True, text=True,
                          timeout=120)
    return json.loads(done.stdout) if done.returncode == 0 else {}


if __name__ == "__main__":
    for env_name in sys.argv[1:] or PEER_ENVS:
        print(ensure(env_name))
