"""Memory preflight: estimate what fitting will need from the schema, and refuse before running out.

An estimate errs high on purpose; a model may give its own with `memory_estimate(schema, rows)`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from tabsynth.errors import InputError
from tabsynth.models.base import is_private
from tabsynth.table.schema import Column, Schema

LIMIT_VARIABLE = "TABSYNTH_MEMORY_LIMIT"  # bytes; for shared machines and for tests
HEADROOM = 0.8  # refuse above this share of the memory available
NUMERIC_WIDTH = 12  # encoded width of a number: value plus its modes/bins in the wider models
BYTES_PER_CELL = 8
COPIES = 6  # the table as read, conformed, split, encoded, and working copies while fitting


def encoded_width(column: Column, private: bool) -> int:
    """Width after encoding; a DP model's estimate uses declared facts only (the refusal is an output too)."""
    if column.kind in ("numerical", "datetime"):
        return NUMERIC_WIDTH
    categories = column.declared.categories if private else column.bounds().categories
    return (len(categories) if categories else 2) + 1


def estimate_bytes(model, schema: Schema, rows: int) -> int:
    own = getattr(model, "memory_estimate", None)
    if callable(own):
        return int(own(schema, rows))
    width = sum(encoded_width(c, is_private(model)) for c in schema.modelled())
    return rows * (width + len(schema.columns)) * BYTES_PER_CELL * COPIES


def available_bytes() -> int | None:
    """The user's limit if set, else what the operating system (and a container's cgroup) still allows."""
    if os.environ.get(LIMIT_VARIABLE):
        return int(float(os.environ[LIMIT_VARIABLE]))
    found = [value for value in (_meminfo_available(), _cgroup_room()) if value is not None]
    return min(found) if found else None


def check_memory(model, schema: Schema, rows: int, model_name: str) -> None:
    need, have = estimate_bytes(model, schema, rows), available_bytes()
    if have is not None and need > HEADROOM * have:
        shape = "this table" if is_private(model) else f"{rows:,} rows"  # a DP run never states the row count
        raise InputError(f"fitting {model_name!r} on {shape} × {len(schema.modelled())} modelled columns "
                         f"needs about {_gb(need)} of memory; {_gb(have)} is available. Use fewer rows or columns, "
                         "a lighter model, or a machine with more memory")


def _gb(size: int) -> str:
    return f"{size / 2**30:.1f} GB"


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_room() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def idle_cores() -> int:
    """Cores not busy with other work (at least 1): on a shared machine, extra threads only spin and wait
    (two torch threads made a CTGAN fit 40 times slower than one on a loaded 2-core machine)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(cores, math.floor(cores - load) + 1))
