"""Channel secrets sealed at rest: round trips, wrong keys, rotation, and the sealing of
secrets stored before it existed, over a real DuckDB store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.services import Catalog, DormantEngine, StoreThreads
from core.services.integrations import IntegrationService
from core.services.sealing import KEY_FILE, PREFIX, Sealer, SealError
from core.storage.duckdb import DuckDBStore

CONFIG = {"url": "https://hooks.example.com/path-token-0001", "secret": "signing-secret-0001",
          "headers": {"Authorization": "Bearer header-token-0001"}}
SECRETS = ("path-token-0001", "signing-secret-0001", "header-token-0001")


def test_seal_open_rotate_and_refuse_a_wrong_key(tmp_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = Sealer([old]).seal("s3cret")
    assert sealed.startswith(PREFIX) and "s3cret" not in sealed
    assert Sealer([old]).open(sealed) == "s3cret" and Sealer([old]).open("plain") == "plain"
    rotated = Sealer([new, old])
    assert rotated.open(sealed) == "s3cret" and not rotated.is_current(sealed)
    assert rotated.is_current(rotated.seal("s3cret"))
    with pytest.raises(SealError):
        Sealer([new]).open(sealed)
    made = Sealer.for_data_dir(tmp_path, env={})
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert Sealer.for_data_dir(tmp_path, env={}).open(made.seal("x")) == "x"  # the same key next time
    assert Sealer.for_data_dir(tmp_path, env={"XUPTIME_SECRET_KEY": f"{new.decode()}, {old.decode()}"}
                               ).open(sealed) == "s3cret"


def test_secrets_are_stored_sealed_and_old_ones_sealed_at_load(tmp_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()

    async def main() -> None:
        store = DuckDBStore(tmp_path)
        threads = StoreThreads(1)
        try:
            def service(sealer: Sealer | None) -> IntegrationService:
                return IntegrationService(store, threads, DormantEngine([]), Catalog(), None, "", sealer)

            # stored before sealing existed: plain
            plain = await service(None).create(1, {"name": "hook", "type": "webhook", "config": CONFIG})
            assert store.list_integrations()[0].config == CONFIG
            # the next start seals it, and keeps it open in memory
            first = service(Sealer([old]))
            await first.load()
            assert first.catalog.integrations[plain.id].config == CONFIG
            stored = store.list_integrations()[0].config
            assert not any(s in repr(stored) for s in SECRETS)
            assert Sealer([old]).config_is_current(stored, frozenset({"url", "secret", "headers"}))
            # a change is stored sealed; a rotation seals everything again with the new key
            await first.update(1, plain.id, {"config": {"secret": "signing-secret-0002"}})
            assert "signing-secret-0002" not in repr(store.list_integrations()[0].config)
            rotated = service(Sealer([new, old]))
            await rotated.load()
            assert rotated.catalog.integrations[plain.id].config["secret"] == "signing-secret-0002"
            assert Sealer([new]).open_config(store.list_integrations()[0].config,
                                             frozenset({"url", "secret", "headers"}))["secret"] == "signing-secret-0002"
        finally:
            threads.shutdown()
            store.close()

    asyncio.run(main())


def test_a_lost_key_keeps_the_channel_but_not_its_secrets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server started with the wrong key still starts: the channel is there (sealed values
    stay sealed, and an error names it), the other channels work."""
    import logging

    key, other = Fernet.generate_key(), Fernet.generate_key()

    async def main() -> None:
        store = DuckDBStore(tmp_path)
        threads = StoreThreads(1)
        try:
            first = IntegrationService(store, threads, DormantEngine([]), Catalog(), None, "", Sealer([key]))
            created = await first.create(1, {"name": "hook", "type": "webhook", "config": CONFIG})
            wrong = IntegrationService(store, threads, DormantEngine([]), Catalog(), None, "", Sealer([other]))
            with caplog.at_level(logging.ERROR, logger="xuptime.services"):
                await wrong.load()
            kept = wrong.catalog.integrations[created.id]
            assert kept.name == "hook" and kept.config["secret"].startswith(PREFIX)  # not opened, not lost
            assert any(f"channel {created.id}" in r.getMessage() for r in caplog.records)
            assert store.list_integrations()[0].config == kept.config  # nothing rewritten
        finally:
            threads.shutdown()
            store.close()

    asyncio.run(main())
