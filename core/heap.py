"""Giving freed heap memory back to the system.

glibc's ``malloc`` keeps memory freed inside its arenas for reuse: after a burst of short-lived
allocations (the start of the main process reads a million monitors through DuckDB's Arrow
export and sends them to the workers in frames) the process stays that much larger although
nothing holds it (74 MB at a million monitors). ``trim`` hands the free pages back
(``malloc_trim(0)``, every arena); on a libc without it, it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["trim"]

@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # (a libc without it: musl)
        return None


def trim() -> bool:
    """Return free heap pages to the system; False where the C library cannot."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
