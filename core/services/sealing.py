"""Channel secrets at rest: every secret field of a channel's config (a Slack webhook URL, a
Jira token, an SMTP password, a webhook's signing secret and headers) is stored sealed, so a
copied database file alone does not give them away. In memory, and to the providers, they
are open; to faces they are masked (``IntegrationService.masked``).

A sealed value is ``xuptime-sealed:v1:`` + a Fernet token (AES-128-CBC with HMAC-SHA256, from
``cryptography``). The keys come from ``XUPTIME_SECRET_KEY`` (comma-separated Fernet keys,
the first one seals, every one opens) or else from ``secret.key`` in the data dir (0600,
made at first start). Rotation: start with ``XUPTIME_SECRET_KEY=new,old`` (or put the new key
first in ``secret.key``); at start every secret is sealed again with the first key, after
which the old one can go. Values stored before sealing existed are sealed at the next start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["KEY_FILE", "PREFIX", "SealError", "Sealer"]

PREFIX = "xuptime-sealed:v1:"
KEY_FILE = "secret.key"
ENV = "XUPTIME_SECRET_KEY"


class SealError(RuntimeError):
    """A sealed value none of the keys opens (a wrong or lost key)."""


class Sealer:
    """Seals and opens secret values with the first of its keys (opening with any)."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def for_data_dir(cls, data_dir: Path, env: Mapping[str, str] = os.environ) -> Sealer:
        """The keys of ``XUPTIME_SECRET_KEY``, or of the data dir's key file (made, 0600, when
        neither exists yet)."""
        given = env.get(ENV, "").strip()
        if given:
            return cls([k.strip().encode() for k in given.split(",") if k.strip()])
        path = data_dir / KEY_FILE
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key() + b"\n")
        return cls([line.strip() for line in path.read_bytes().splitlines() if line.strip()])

    def seal(self, value: str) -> str:
        return PREFIX + self._primary.encrypt(value.encode()).decode()

    def open(self, value: str) -> str:
        """The plain value (a value stored before sealing existed is returned as it is)."""
        if not value.startswith(PREFIX):
            return value
        try:
            return self._all.decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SealError("a channel secret cannot be opened with the configured keys "
                            f"({ENV} or {KEY_FILE})") from None

    def is_current(self, value: str) -> bool:
        """Sealed with the first key (nothing to redo at start)."""
        if not value.startswith(PREFIX):
            return False
        try:
            self._primary.decrypt(value[len(PREFIX):].encode())
        except InvalidToken:
            return False
        return True

    # a channel's config: only its secret fields; a secret field that is an object (a
    # webhook's headers) has each of its values sealed
    def seal_config(self, config: Mapping[str, Any], secret_fields: frozenset[str]) -> dict[str, Any]:
        return {k: (self._each(v, self.seal) if k in secret_fields else v) for k, v in config.items()}

    def open_config(self, config: Mapping[str, Any], secret_fields: frozenset[str]) -> dict[str, Any]:
        return {k: (self._each(v, self.open) if k in secret_fields else v) for k, v in config.items()}

    def config_is_current(self, config: Mapping[str, Any], secret_fields: frozenset[str]) -> bool:
        values = []
        for key in secret_fields & config.keys():
            value = config[key]
            values += list(value.values()) if isinstance(value, dict) else [value]
        return all(self.is_current(v) for v in values if isinstance(v, str) and v)

    @staticmethod
    def _each(value: Any, fn: Any) -> Any:
        if isinstance(value, str):
            return fn(value) if value else value
        if isinstance(value, dict):
            return {k: (fn(v) if isinstance(v, str) and v else v) for k, v in value.items()}
        return value
