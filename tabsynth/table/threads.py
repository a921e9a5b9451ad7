"""Independent pieces of a vectorised computation (row chunks, columns) run on a few threads: numpy's sorts,
takes, ufuncs and random fills release the GIL, so the pieces overlap on a multi-core machine. Each piece
brings its own random generator, so the result is the same whatever the number of threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

MAX_THREADS = 4  # more rarely pays: the pieces also share memory bandwidth
THREADS_VARIABLE = "TABSYNTH_THREADS"  # a cap for shared machines (1: no extra threads)

Item, Result = TypeVar("Item"), TypeVar("Result")


def thread_count() -> int:
    """Threads to use: the CPUs this process may run on, at most MAX_THREADS or $TABSYNTH_THREADS."""
    cap = int(os.environ.get(THREADS_VARIABLE) or MAX_THREADS)
    return max(1, min(cap, len(os.sched_getaffinity(0))))


def map_in_threads(function: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """[function(item) for item in items], in order; on several threads where there are several items."""
    items = list(items)
    workers = min(thread_count(), len(items))
    if workers <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tabsynth-sample") as pool:
        return list(pool.map(function, items))
