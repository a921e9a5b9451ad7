"""`kill -9` at any moment leaves the release folder absent or complete; a DP debit survives the kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tabsynth.privacy.ledger import Ledger
from tabsynth.publish.review import verify

pytestmark = pytest.mark.slow  # kills real release processes at several moments

TABSYNTH = Path(sys.executable).with_name("tabsynth")


def _start(args: list, env_ledger: str) -> subprocess.Popen:
    env = {**os.environ, "TABSYNTH_LEDGER": env_ledger}
    return subprocess.Popen([str(TABSYNTH), *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env, start_new_session=True)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # it had already finished
        pass
    process.wait()


@pytest.mark.parametrize("after", [0.5, 2.0, 3.0, 4.0, 5.0, 7.0])
def test_killed_release_is_absent_or_complete(tmp_path, people, ledger_url, after):
    out = tmp_path / "rel"
    process = _start(["release", people, "--out", out, "--seed", "3"], ledger_url)
    time.sleep(after)
    finished = process.poll() is not None
    _kill(process)
    if out.exists():
        verify(out)  # complete: every file present and matching the manifest
    else:
        assert not finished or process.returncode != 0
    debris = [p.name for p in tmp_path.iterdir() if p.name.startswith(".rel.")]
    # the next run to the same folder removes staging folders of dead processes before it starts
    code = subprocess.run([str(TABSYNTH), "release", people, "--out", out, "--overwrite"], capture_output=True,
                          env={**os.environ, "TABSYNTH_LEDGER": ledger_url}).returncode
    assert code == 0 and (out / "manifest.json").is_file()
    assert all(not (tmp_path / name).exists() for name in debris if name.endswith(".staging"))


def test_killed_dp_fit_still_counts(tmp_path, people, ledger_url):
    process = _start(["release", people, "--out", tmp_path / "rel", "--model", "dp-marginal", "--epsilon", "1",
                      "--source-id", "patients"], ledger_url)
    deadline = time.monotonic() + 60
    while Ledger(ledger_url).spent("patients") == (0.0, 0.0) and time.monotonic() < deadline:
        time.sleep(0.05)
    _kill(process)
    assert Ledger(ledger_url).spent("patients")[0] == pytest.approx(1.0)
    assert not (tmp_path / "rel").exists()
