"""Versioned schema migrations for the DuckDB store.

``MIGRATIONS[i]`` moves the schema from version ``i`` to ``i + 1``; each runs in one
transaction together with the ``schema_version`` bump, so a crash leaves either version.
Append new migrations; never edit a released one.

``checks`` is append-only and huge: no index, no key (DuckDB's min/max zone maps do the
work once closed windows are rewritten sorted by ``(monitor_id, ts)``). Timestamps are UTC.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [
        "CREATE SEQUENCE accounts_id_seq START 1",
        """CREATE TABLE accounts (
            id BIGINT PRIMARY KEY DEFAULT nextval('accounts_id_seq'),
            name VARCHAR NOT NULL UNIQUE,
            monthly_request_limit BIGINT NOT NULL DEFAULT 100000,
            created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'))""",
        "INSERT INTO accounts (name) VALUES ('default')",
        "CREATE SEQUENCE users_id_seq START 1",
        """CREATE TABLE users (
            id BIGINT PRIMARY KEY DEFAULT nextval('users_id_seq'),
            account_id BIGINT NOT NULL,
            email VARCHAR NOT NULL UNIQUE,
            password_hash VARCHAR NOT NULL,
            role VARCHAR NOT NULL DEFAULT 'admin')""",
        "CREATE SEQUENCE api_keys_id_seq START 1",
        """CREATE TABLE api_keys (
            id BIGINT PRIMARY KEY DEFAULT nextval('api_keys_id_seq'),
            account_id BIGINT NOT NULL,
            name VARCHAR NOT NULL,
            prefix VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL UNIQUE,
            created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
            last_used_at TIMESTAMP,
            revoked_at TIMESTAMP)""",
        "CREATE SEQUENCE monitors_id_seq START 1",
        """CREATE TABLE monitors (
            id BIGINT PRIMARY KEY DEFAULT nextval('monitors_id_seq'),
            account_id BIGINT NOT NULL,
            name VARCHAR NOT NULL,
            type VARCHAR NOT NULL,
            spec JSON NOT NULL,
            interval_s INTEGER NOT NULL,
            timeout_s DOUBLE,
            retries INTEGER NOT NULL DEFAULT 0,
            recovery_threshold INTEGER NOT NULL DEFAULT 1,
            paused BOOLEAN NOT NULL DEFAULT false,
            status VARCHAR NOT NULL DEFAULT 'pending',
            status_since TIMESTAMP,
            tags VARCHAR[] NOT NULL DEFAULT [],
            created_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),
            updated_at TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'))""",
        """CREATE TABLE checks (
            monitor_id BIGINT NOT NULL,
            ts TIMESTAMP NOT NULL,
            ok BOOLEAN NOT NULL,
            latency_us BIGINT NOT NULL,
            status_code SMALLINT,
            error_code UTINYINT NOT NULL,
            error VARCHAR,
            dns_us BIGINT,
            connect_us BIGINT,
            tls_us BIGINT,
            ttfb_us BIGINT,
            region VARCHAR)""",
        "CREATE SEQUENCE incidents_id_seq START 1",
        """CREATE TABLE incidents (
            id BIGINT PRIMARY KEY DEFAULT nextval('incidents_id_seq'),
            account_id BIGINT NOT NULL,
            monitor_id BIGINT NOT NULL,
            started_at TIMESTAMP NOT NULL,
            resolved_at TIMESTAMP,
            cause VARCHAR)""",
    ],
]

MIGRATIONS.append([
    # Monthly API usage per account (UTC calendar month 'YYYY-MM'); written behind by the
    # server from its exact in-memory counters.
    """CREATE TABLE api_usage (
        account_id BIGINT NOT NULL,
        month VARCHAR NOT NULL,
        requests BIGINT NOT NULL,
        PRIMARY KEY (account_id, month))""",
])

MIGRATIONS.append([
    # Hourly rollups of checks (see core/storage/rollups.py), written by the server's rollup job
    # for closed hours only; ``rollup_state.upto`` is the exclusive end of what is rolled up.
    """CREATE TABLE checks_hourly (
        monitor_id BIGINT NOT NULL,
        hour TIMESTAMP NOT NULL,
        checks INTEGER NOT NULL,
        up INTEGER NOT NULL,
        latency_sum BIGINT NOT NULL,
        latency_min BIGINT NOT NULL,
        latency_max BIGINT NOT NULL,
        p50 DOUBLE NOT NULL,
        p95 DOUBLE NOT NULL,
        p99 DOUBLE NOT NULL,
        hist_idx USMALLINT[] NOT NULL,
        hist_cnt UINTEGER[] NOT NULL)""",
    "CREATE TABLE rollup_state (name VARCHAR PRIMARY KEY, upto TIMESTAMP NOT NULL)",
])

MIGRATIONS.append([
    # Notification channels, the outbox (one row per transition x channel, written in the
    # transaction that records the transition) and its delivery log (one row per attempt).
    "CREATE SEQUENCE integrations_id_seq START 1",
    """CREATE TABLE integrations (
        id BIGINT PRIMARY KEY DEFAULT nextval('integrations_id_seq'),
        account_id BIGINT NOT NULL,
        name VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        config JSON NOT NULL,
        template VARCHAR,
        is_default BOOLEAN NOT NULL DEFAULT false,
        reminder_interval_s INTEGER,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL)""",
    # No DEFAULT here: DuckDB 1.5.5 cannot replay an ADD COLUMN with a default from the WAL
    # after a crash ("GetDefaultDatabase with no default database set"); NULL reads as [].
    "ALTER TABLE monitors ADD COLUMN integrations BIGINT[]",
    "CREATE SEQUENCE outbox_id_seq START 1",
    """CREATE TABLE outbox (
        id BIGINT PRIMARY KEY DEFAULT nextval('outbox_id_seq'),
        account_id BIGINT NOT NULL,
        integration_id BIGINT NOT NULL,
        monitor_id BIGINT NOT NULL,
        incident_id BIGINT,
        event VARCHAR NOT NULL,
        context JSON NOT NULL,
        dedupe_key VARCHAR NOT NULL UNIQUE,
        status VARCHAR NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TIMESTAMP NOT NULL,
        created_at TIMESTAMP NOT NULL,
        delivered_at TIMESTAMP,
        last_status INTEGER,
        last_response VARCHAR)""",
    """CREATE TABLE deliveries (
        outbox_id BIGINT NOT NULL,
        attempt INTEGER NOT NULL,
        attempted_at TIMESTAMP NOT NULL,
        ok BOOLEAN NOT NULL,
        status INTEGER,
        response VARCHAR)""",
])


# Dashboard users and their sessions (the session's id is kept only as its SHA-256, like API
# keys: a copy of the file signs nobody in).
MIGRATIONS.append([
    "ALTER TABLE users ADD COLUMN created_at TIMESTAMP",
    """CREATE TABLE sessions (
        sha256 VARCHAR PRIMARY KEY,
        user_id BIGINT NOT NULL,
        csrf VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        expires_at TIMESTAMP NOT NULL)""",
])

# Public status pages and the incidents people post on them (with their updates).
MIGRATIONS.append([
    "CREATE SEQUENCE status_pages_id_seq START 1",
    """CREATE TABLE status_pages (
        id BIGINT PRIMARY KEY DEFAULT nextval('status_pages_id_seq'),
        account_id BIGINT NOT NULL,
        slug VARCHAR NOT NULL UNIQUE,
        title VARCHAR NOT NULL,
        description VARCHAR,
        sections JSON NOT NULL,
        public BOOLEAN NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL)""",
    "CREATE SEQUENCE page_incidents_id_seq START 1",
    """CREATE TABLE page_incidents (
        id BIGINT PRIMARY KEY DEFAULT nextval('page_incidents_id_seq'),
        page_id BIGINT NOT NULL,
        title VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL,
        resolved_at TIMESTAMP)""",
    "CREATE SEQUENCE page_incident_updates_id_seq START 1",
    """CREATE TABLE page_incident_updates (
        id BIGINT PRIMARY KEY DEFAULT nextval('page_incident_updates_id_seq'),
        incident_id BIGINT NOT NULL,
        status VARCHAR NOT NULL,
        message VARCHAR NOT NULL,
        created_at TIMESTAMP NOT NULL)""",
])

# Maintenance windows: one-off (starts_at, ends_at) or recurring (a cron schedule in an IANA
# time zone, and a duration), over monitors named or tagged.
MIGRATIONS.append([
    "CREATE SEQUENCE maintenance_id_seq START 1",
    """CREATE TABLE maintenance (
        id BIGINT PRIMARY KEY DEFAULT nextval('maintenance_id_seq'),
        account_id BIGINT NOT NULL,
        name VARCHAR NOT NULL,
        monitors BIGINT[] NOT NULL,
        tags VARCHAR[] NOT NULL,
        starts_at TIMESTAMP,
        ends_at TIMESTAMP,
        schedule VARCHAR,
        duration_s INTEGER,
        timezone VARCHAR,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL)""",
    # Checks made while their monitor was in maintenance, per monitor and hour: what uptime
    # ratios and status-page days leave out (the checks themselves stay in ``checks``).
    """CREATE TABLE maintenance_checks (
        monitor_id BIGINT NOT NULL,
        hour TIMESTAMP NOT NULL,
        checks INTEGER NOT NULL,
        up INTEGER NOT NULL,
        PRIMARY KEY (monitor_id, hour))""",
])

MIGRATIONS.append([
    # One row per agent report, columnar like ``checks`` (no key: append-only, time-ordered
    # per monitor). Memory and disk figures in bytes, rates in bytes a second.
    """CREATE TABLE agent_reports (
        monitor_id BIGINT NOT NULL,
        ts TIMESTAMP NOT NULL,
        cpu_percent REAL NOT NULL,
        mem_used BIGINT NOT NULL,
        mem_total BIGINT NOT NULL,
        swap_used BIGINT,
        swap_total BIGINT,
        load1 REAL,
        load5 REAL,
        load15 REAL,
        rx_bps DOUBLE,
        tx_bps DOUBLE,
        processes INTEGER,
        uptime_s BIGINT,
        disks STRUCT(mount VARCHAR, used BIGINT, total BIGINT)[])""",
    # Each agent's newest report as sent (host name, OS, version...) and its time: what the
    # server needs at start (duplicates are reports not newer than ``last_ts``) without a scan.
    """CREATE TABLE agents (
        monitor_id BIGINT PRIMARY KEY,
        last_ts TIMESTAMP NOT NULL,
        report JSON NOT NULL)""",
])

MIGRATIONS.append([
    # Server-wide settings changed while running (``retention``: JSON of ``Retention``).
    "CREATE TABLE settings (name VARCHAR PRIMARY KEY, value JSON NOT NULL)",
    # Deleted monitors whose rows in the big tables (checks, rollups, agents' reports) are
    # still to go: the upkeep job deletes them on its own cursor, beside ingest, and then the
    # row here; written in the transaction that deletes the monitor, so none is forgotten.
    "CREATE TABLE purge (monitor_id BIGINT PRIMARY KEY, deleted_at TIMESTAMP NOT NULL)",
])

MIGRATIONS.append([
    # Daily rollups, merged from a closed day's rows of ``checks_hourly`` (the same columns by
    # day): what history past the hourly tier's retention is answered from.
    """CREATE TABLE checks_daily (
        monitor_id BIGINT NOT NULL,
        day TIMESTAMP NOT NULL,
        checks INTEGER NOT NULL,
        up INTEGER NOT NULL,
        latency_sum BIGINT NOT NULL,
        latency_min BIGINT NOT NULL,
        latency_max BIGINT NOT NULL,
        p50 DOUBLE NOT NULL,
        p95 DOUBLE NOT NULL,
        p99 DOUBLE NOT NULL,
        hist_idx USMALLINT[] NOT NULL,
        hist_cnt UINTEGER[] NOT NULL)""",
])

MIGRATIONS.append([
    # Each monitor as ``core.models.packed.pack`` wrote it (without its name), and a hash of
    # the columns it was made from with the packed layout (``MonitorStore.SOURCE_HASH``): the
    # server's start reads the bytes instead of decoding, checking and packing every monitor
    # again (20 s for a million), and makes them again for a row whose hash does not match
    # (written before, by hand, or under another layout).
    "ALTER TABLE monitors ADD COLUMN packed BLOB",
    "ALTER TABLE monitors ADD COLUMN packed_of UBIGINT",
])

MIGRATIONS.append([
    # What a key may do: 'full' (everything its account may), or 'read' (GET and HEAD only,
    # outside the monthly quota, within a per-minute budget of its own: for dashboards such
    # as Grafana's, which refresh on their own). NULL (keys made before) reads as 'full'.
    "ALTER TABLE api_keys ADD COLUMN scope VARCHAR DEFAULT 'full'",
])

LATEST = len(MIGRATIONS)
