"""The number of threads of numpy's OpenBLAS, set for a block of code (no dependency: ctypes on the library numpy
wheels bundle; where it is not found, e.g. another BLAS, the block runs unchanged).

Why: on the shared 2-core machine, ``numpy.linalg.eigh`` of the 384 x 384 scatter matrix took 2.7 s of CPU (and
of wall) with OpenBLAS's two threads and 0.07 s with one; the 8,326 x 8,326 product of the clustering 1.4 s of
CPU with two threads against 0.9 s with one, at load 3.5 (the microbenchmarks at the end of
bench/results/analysis-speed2-100k.log). Threads that wait for each other on oversubscribed cores cost far more
than the second core gives.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np


@cache
def _openblas() -> tuple[Callable[[int], None], Callable[[], int]] | None:
    """(set, get) of the thread count of the OpenBLAS numpy wheels bundle in ``numpy.libs``, or None."""
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(folder, "*openblas*.so*"))):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", "_64_", ""):
            setter = getattr(library, f"scipy_openblas_set_num_threads{suffix}", None)
            getter = getattr(library, f"scipy_openblas_get_num_threads{suffix}", None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                return setter, getter
    return None


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` OpenBLAS threads (restored after it)."""
    found = _openblas()
    if found is None:
        yield
        return
    setter, getter = found
    before = getter()
    setter(max(1, count))
    try:
        yield
    finally:
        setter(before)


def blas_thread_count() -> int:
    """The current OpenBLAS thread count (0 where numpy's OpenBLAS is not found)."""
    found = _openblas()
    return found[1]() if found is not None else 0
