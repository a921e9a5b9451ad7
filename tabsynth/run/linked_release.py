"""`release` of linked tables: the checks that need no row, then the release without DP (`run.dataset`) or the
per-person DP release (`run.dataset_dp`), chosen by the options and the policy alone."""

from __future__ import annotations

from dataclasses import replace

from tabsynth.errors import InputError
from tabsynth.run.dataset import preflight, release_linked, wants_dp
from tabsynth.run.dataset_dp import release_dataset_dp
from tabsynth.run.options import DatasetOptions, Progress, ReleaseResult

NOT_DP_MODEL = "argn"  # what --model auto fits without DP (the DP one is run.dataset_dp.MODEL)


def release_dataset(options: DatasetOptions, progress: Progress | None = None) -> ReleaseResult:
    say = progress or (lambda *_: None)
    policy, sink = preflight(options)
    if wants_dp(options, policy):
        return release_dataset_dp(options, policy, sink, say)
    if options.source_id or options.ledger:
        raise InputError("--source-id and --ledger apply to a differentially private release (give --epsilon or "
                         "--model dp-argn)")
    if options.model == "auto":
        options = replace(options, model=NOT_DP_MODEL)
    return release_linked(options, policy, sink, say)
