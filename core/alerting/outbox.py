"""Delivery of the outbox: at least once, retried with backoff, rate-limited per channel.

The outbox table is written in the same transaction as the transitions that cause it
(``DuckDBStore.apply_transitions``), so an acknowledged transition always has its messages.
This dispatcher, in the main process, polls due rows (and is woken after each transition
batch), queues them per channel, and sends them:

- per channel, at most ``provider.parallel`` sends at a time and at least
  ``provider.min_interval`` seconds apart; a provider's ``Retry-After`` (or Discord's
  ``retry_after``) pauses the whole channel until then;
- a failed attempt is retried when the provider said (``Retry-After``), else after
  ``base * 2**(attempt-1)`` seconds (capped, ±20% jitter); after ``max_attempts``, or an answer that will not
  change (a 4xx other than 408/429), the row is ``failed`` with the provider's last answer;
- outcomes are written back in batches; a row stays claimed in memory until its outcome is
  committed, so it is never sent twice by one process. A crash between a send and its record
  resends it after restart: receivers that can deduplicate get the same delivery id (the
  webhook's ``X-Xuptime-Delivery``).

Memory is bounded: at most ``max_claimed`` rows are claimed at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from core.alerting import event_context, message_text, provider_of, target_hosts, typed_config
from core.alerting.base import PublicResolver, SendContext, SendResult, scrub
from core.alerting.templates import TemplateError, off_loop
from core.models import Integration, is_private_address, is_private_host

__all__ = ["Dispatcher"]

log = logging.getLogger("xuptime.alerts")


@dataclasses.dataclass
class _Channel:
    queue: collections.deque[tuple] = dataclasses.field(default_factory=collections.deque)
    not_before: float = 0.0  # monotonic
    workers: int = 0


class Dispatcher:
    """The outbox's one sender in a process (see the module docstring): claims due rows,
    sends them per channel within the provider's limits, and records every attempt. A row
    is claimed by at most one send at a time and never sent again once recorded as sent."""

    def __init__(self, *, fetch_due: Callable[[dt.datetime, int], Awaitable[list[tuple]]],
                 record: Callable[[list[dict[str, Any]]], Awaitable[None]],
                 integration: Callable[[int], Integration | None], base_url: str = "",
                 max_attempts: int = 10, backoff_base: float = 2.0, backoff_cap: float = 1800.0,
                 poll_s: float = 1.0, max_claimed: int = 5000, deny_private: bool = False) -> None:
        #: Refuse to send to names that resolve to private, loopback or link-local addresses.
        self.deny_private = deny_private
        self._fetch_due = fetch_due
        self._record = record
        self._integration = integration
        self.base_url = base_url
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.poll_s = poll_s
        self.max_claimed = max_claimed
        self._claimed: set[int] = set()
        self._channels: dict[int, _Channel] = {}
        self._outcomes: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        # Reading due rows and recording outcomes never overlap: a row is unclaimed only once
        # its outcome is committed, and every read starts after that.
        self._exclusive = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False

    # lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        resolver = PublicResolver() if self.deny_private else None
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, limit_per_host=20,
                                                                             resolver=resolver))
        self._loop_tasks = [asyncio.create_task(self._poll_loop()), asyncio.create_task(self._flush_loop())]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop sending; outcomes already known are written, unsent rows stay pending. Bounded:
        a send that ignores its cancellation is left behind after ``timeout``."""
        self._stopping = True
        tasks = [*self._loop_tasks, *self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=timeout)
            for task in stuck:
                log.warning("a notification task did not stop in %.0f s: %r", timeout, task.get_coro())
        try:
            await asyncio.wait_for(self._flush(), timeout)
        except TimeoutError:
            log.warning("could not record the last delivery outcomes; those messages will be sent again")
        if self._session is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._session.close(), timeout)

    def wake(self) -> None:
        """New rows may be due (called after each transition batch)."""
        self._wake.set()

    # sending -------------------------------------------------------------------------------
    async def send_now(self, integration: Integration, event: dict[str, Any]) -> SendResult:
        """Send one message at once, outside the outbox (``/integrations/{id}/test``)."""
        assert self._session is not None
        return await self._attempt(integration, event, f"test-{time.time_ns()}")

    async def _attempt(self, integration: Integration, event: dict[str, Any], delivery_id: str) -> SendResult:
        assert self._session is not None
        provider = provider_of(integration)
        try:
            refused = await self._private_target(integration) if self.deny_private else None
            if refused is not None:
                return SendResult(False, None, refused, retry=False)
            try:
                text = await off_loop(message_text, integration, event)
            except TemplateError:  # over budget: the provider's own template, which is trusted
                text = message_text(msgspec.structs.replace(integration, template=None), event)
            ctx = SendContext(config=typed_config(integration), text=text, event=event,
                              delivery_id=delivery_id, session=self._session)
            result = await provider.send(ctx)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            result = SendResult(False, None, f"{type(exc).__name__}: {exc}", retry=True)
        except Exception as exc:  # a provider bug must not stop the dispatcher
            log.exception("channel %d (%s): send failed", integration.id, integration.type)
            result = SendResult(False, None, f"internal error: {type(exc).__name__}", retry=True)
        response = scrub(result.response, integration.config, provider.secret_fields)
        return dataclasses.replace(result, response=response)

    @staticmethod
    async def _private_target(integration: Integration) -> str | None:
        """Why this channel's target is refused on a server that denies private targets: a
        host that is, or resolves to, a private, loopback or link-local address. (The HTTP
        providers' resolver refuses such names too; this covers the providers that connect on
        their own, SMTP and Apprise, and channels saved before the server denied them.)"""
        loop = asyncio.get_running_loop()
        for _, host in target_hosts(integration):
            if is_private_host(host):
                return f"{host} is a private address; this server denies private targets"
            try:
                infos = await loop.getaddrinfo(host.strip("[]"), None, type=socket.SOCK_STREAM)
            except OSError:
                continue  # (the provider reports a name that does not resolve in its own words)
            for *_, address in infos:
                if is_private_address(address[0]):
                    return f"{host} resolves to a private address ({address[0]}); this server denies private targets"
        return None

    async def _poll_loop(self) -> None:
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that arrives as
        # the wait ends, and this loop is woken often; the flag makes stopping certain anyway.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            room = self.max_claimed - len(self._claimed)
            if room <= 0:
                continue
            async with self._exclusive:  # a read from before an outcome's commit must not re-claim its row
                try:
                    rows = await self._fetch_due(_utcnow(), room + len(self._claimed))
                except Exception:
                    log.exception("cannot read the outbox; retrying")
                    continue
                for row in rows:
                    if row[0] in self._claimed or len(self._claimed) >= self.max_claimed:
                        continue
                    self._claimed.add(row[0])
                    channel = self._channels.setdefault(row[1], _Channel())
                    channel.queue.append(row)
                    self._spawn_workers(row[1], channel)

    def _spawn_workers(self, integration_id: int, channel: _Channel) -> None:
        integration = self._integration(integration_id)
        parallel = getattr(provider_of(integration), "parallel", 1) if integration else 1
        while channel.workers < min(parallel, len(channel.queue)):
            channel.workers += 1
            task = asyncio.create_task(self._channel_worker(integration_id, channel))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _channel_worker(self, integration_id: int, channel: _Channel) -> None:
        try:
            while channel.queue and not self._stopping:
                wait = channel.not_before - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                row = channel.queue.popleft()
                integration = self._integration(integration_id)
                if integration is None:
                    self._outcome(row, SendResult(False, None, "channel deleted", retry=False))
                    continue
                interval = getattr(provider_of(integration), "min_interval", 0.0)
                channel.not_before = max(channel.not_before, time.monotonic() + interval)
                result = await self._attempt(integration, self._context(integration, row), str(row[0]))
                if result.retry_after:
                    channel.not_before = max(channel.not_before, time.monotonic() + result.retry_after)
                self._outcome(row, result)
        finally:
            channel.workers -= 1

    def _context(self, integration: Integration, row: tuple) -> dict[str, Any]:
        snapshot = json.loads(row[5]) if isinstance(row[5], str) else dict(row[5])
        if row[4] != "up" and snapshot.get("started"):  # down so far
            started = dt.datetime.fromisoformat(snapshot["started"].replace("Z", "+00:00"))
            snapshot["duration_seconds"] = max(0.0, (dt.datetime.now(dt.UTC) - started).total_seconds())
        private = bool(getattr(typed_config(integration), "private", False))
        return event_context(snapshot, row[4], private=private, base_url=self.base_url)

    def _outcome(self, row: tuple, result: SendResult) -> None:
        attempt = int(row[6]) + 1
        now = _utcnow()
        if result.ok:
            state, next_at = "sent", now
        elif not result.retry or attempt >= self.max_attempts:
            state, next_at = "failed", now
            log.warning("message %d failed after %d attempt(s): %s %s", row[0], attempt, result.status,
                        result.response[:120])
        else:
            log.warning("message %d attempt %d failed: %s %s; retrying", row[0], attempt, result.status,
                        result.response[:120])
            if result.retry_after is not None:  # the provider said when: then, not sooner, not much later
                delay = result.retry_after + random.uniform(0.0, 0.25)
            else:
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
            state, next_at = "pending", now + dt.timedelta(seconds=delay)
        self._outcomes.append({"id": row[0], "attempt": attempt, "at": now, "ok": result.ok, "status": result.status,
                               "response": result.response, "state": state, "next_at": next_at})

    async def _flush_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.1)
            await self._flush()

    async def _flush(self) -> None:
        if not self._outcomes:
            return
        async with self._exclusive:
            batch, self._outcomes = self._outcomes, []
            try:
                await self._record(batch)
            except Exception:  # keep the rows claimed (not resent) and try recording again
                log.exception("cannot record %d delivery outcome(s); retrying", len(batch))
                self._outcomes[:0] = batch
                return
            for outcome in batch:
                self._claimed.discard(outcome["id"])
        if any(o["state"] == "pending" for o in batch):
            self._wake.set()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
