from collections.abc import Sequence

import numpy as np

def raw_items(ts: np.ndarray, ok: np.ndarray, latency: np.ndarray, status: np.ndarray, errors: Sequence[str | None],
              dns: np.ndarray, connect: np.ndarray, tls: np.ndarray, ttfb: np.ndarray) -> bytes: ...
def rolled_items(checks: np.ndarray, up: np.ndarray, latency_sum: np.ndarray, latency_min: np.ndarray,
                 latency_max: np.ndarray, q: np.ndarray, row: int, first_hour: int, last_hour: int,
                 ends: np.ndarray, starts: np.ndarray) -> tuple[bytes, int, int]: ...
def raw_hour_items(ts: np.ndarray, ok: np.ndarray, latency: np.ndarray, ends: np.ndarray,
                   starts: np.ndarray) -> tuple[bytes, int, int]: ...
