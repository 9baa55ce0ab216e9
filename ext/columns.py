"""Column layout shared by the compiled ``ResultBuffer``, its twin and the transport."""

from __future__ import annotations

import numpy as np

__all__ = ["COLUMNS", "DTYPES", "NOT_MEASURED"]

#: Column order of a flushed result batch (matches the ``checks`` table).
COLUMNS: tuple[str, ...] = (
    "monitor_id",
    "ts_us",
    "ok",
    "latency_us",
    "status_code",
    "error_code",
    "dns_us",
    "connect_us",
    "tls_us",
    "ttfb_us",
)

DTYPES: dict[str, np.dtype] = {
    "monitor_id": np.dtype(np.int64),
    "ts_us": np.dtype(np.int64),
    "ok": np.dtype(np.uint8),
    "latency_us": np.dtype(np.int64),
    "status_code": np.dtype(np.int16),
    "error_code": np.dtype(np.uint8),
    "dns_us": np.dtype(np.int64),
    "connect_us": np.dtype(np.int64),
    "tls_us": np.dtype(np.int64),
    "ttfb_us": np.dtype(np.int64),
}

#: Phase timing sentinel: the phase did not happen (stored as NULL).
NOT_MEASURED = -1
