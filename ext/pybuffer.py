"""Pure-Python twin of ``ext._buffer.ResultBuffer`` (same API and output)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ext.columns import COLUMNS, DTYPES

__all__ = ["ResultBuffer"]


class ResultBuffer:
    """Fixed-capacity columnar buffer; see the compiled class for the contract."""

    def __init__(self, capacity: int = 8192) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._len = 0
        self.dropped = 0
        self._arrays = {name: np.empty(capacity, dtype=DTYPES[name]) for name in COLUMNS}
        self._error_rows: list[int] = []
        self._error_texts: list[str] = []

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def full(self) -> bool:
        return self._len >= self._capacity

    def __len__(self) -> int:
        return self._len

    def append(
        self,
        monitor_id: int,
        ts_us: int,
        ok: bool,
        latency_us: int,
        status_code: int = 0,
        error_code: int = 0,
        dns_us: int = -1,
        connect_us: int = -1,
        tls_us: int = -1,
        ttfb_us: int = -1,
        error: str | None = None,
    ) -> bool:
        i = self._len
        if i >= self._capacity:
            self.dropped += 1
            return False
        row = (monitor_id, ts_us, bool(ok), latency_us, status_code, error_code,
               dns_us, connect_us, tls_us, ttfb_us)
        for name, value in zip(COLUMNS, row, strict=False):
            self._arrays[name][i] = value
        if error is not None:
            self._error_rows.append(i)
            self._error_texts.append(error)
        self._len = i + 1
        return True

    def flush(self) -> dict[str, Any] | None:
        n = self._len
        if n == 0:
            return None
        out: dict[str, Any] = {name: self._arrays[name][:n].copy() for name in COLUMNS}
        out["error_rows"] = np.asarray(self._error_rows, dtype=np.int32)
        out["error_texts"] = self._error_texts
        self._error_rows = []
        self._error_texts = []
        self._len = 0
        return out
