"""Compiled hot loops of xuptime, each with a pure-Python twin of the same API.

``TimingWheel`` and ``ResultBuffer`` are the compiled classes when the extensions are built,
otherwise (or with ``XUPTIME_PURE=1`` in the environment) the twins. ``COMPILED`` says which.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from ext.columns import COLUMNS, DTYPES, NOT_MEASURED

__all__ = ["COLUMNS", "COMPILED", "DTYPES", "NOT_MEASURED", "HttpEngine", "ResultBuffer", "TimingWheel"]

#: The compiled HTTP check engine (``ext._fasthttp``), or None when not built or pure. It has
#: no twin: the general checkers in ``core.checkers.http`` are its reference.
HttpEngine: Any = None

COMPILED: bool
if os.environ.get("XUPTIME_PURE") == "1":
    from ext.pybuffer import ResultBuffer
    from ext.pywheel import TimingWheel

    COMPILED = False
else:
    try:
        from ext._buffer import ResultBuffer  # type: ignore[no-redef]
        from ext._wheel import TimingWheel  # type: ignore[no-redef]

        COMPILED = True
    except ImportError:  # not built: the twins are correct, only slower
        from ext.pybuffer import ResultBuffer
        from ext.pywheel import TimingWheel

        COMPILED = False
    if COMPILED:
        # (an older build without it: every check takes the general path)
        with contextlib.suppress(ImportError):
            from ext._fasthttp import HttpEngine
