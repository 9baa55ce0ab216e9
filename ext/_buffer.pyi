from typing import Any

class ResultBuffer:
    dropped: int
    def __init__(self, capacity: int = 8192) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def full(self) -> bool: ...
    def __len__(self) -> int: ...
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
    ) -> bool: ...
    def flush(self) -> dict[str, Any] | None: ...
