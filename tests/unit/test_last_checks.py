"""The main process's latest-check table, updated per batch."""

from __future__ import annotations

import numpy as np

from core.services.context import LastChecks


def batch(ids: list[int], ts: list[int], latency: list[int]) -> dict[str, np.ndarray]:
    return {"monitor_id": np.array(ids, dtype=np.int64), "ts_us": np.array(ts, dtype=np.int64),
            "latency_us": np.array(latency, dtype=np.int64)}


def test_the_latest_check_of_each_monitor_wins() -> None:
    last = LastChecks()
    last.load({3: (100, 7)})
    assert last.get(3) == (100, 7) and last.get(4) is None and last.get(10**9) is None
    last.note(batch([4, 3, 4, 5000], [200, 210, 220, 230], [1, 2, 3, 4]))  # 4 twice: the later one
    assert (last.get(3), last.get(4), last.get(5000)) == ((210, 2), (220, 3), (230, 4))
    last.note(batch([], [], []))
    assert last.get_many([3, 4, 7, 10**9, 5000]) == [(210, 2), (220, 3), None, None, (230, 4)]
    assert last.get_many([]) == []
    last.pop(4)
    assert last.get(4) is None and last.get(3) == (210, 2)
