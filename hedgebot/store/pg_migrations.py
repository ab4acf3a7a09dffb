"""The PostgreSQL journal's schema, as numbered migrations applied in order at start-up.

A migration is never edited once released: a change is a new number. Daemons
starting together take an advisory lock, so each migration runs once.
"""

from __future__ import annotations

from typing import Any

# Any constant of our own: it only has to differ from other applications' advisory locks.
MIGRATION_LOCK = 0x4842_4A52

MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE intents (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    seq INTEGER NOT NULL,
    client_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    lease_epoch BIGINT,
    origin TEXT UNIQUE,
    UNIQUE (account, hedge, seq)
);
CREATE INDEX intents_open ON intents (status) WHERE status IN ('pending', 'unknown');
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    detail TEXT NOT NULL,
    origin TEXT UNIQUE
);
CREATE INDEX events_by_hedge ON events (account, hedge, at);
CREATE TABLE leases (
    account TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL,
    renewed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"""),
    (2, """
CREATE TABLE requests (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    command TEXT NOT NULL,
    detail TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    taken_at DOUBLE PRECISION,
    taken_by TEXT,
    result TEXT
);
CREATE INDEX requests_pending ON requests (account, hedge) WHERE taken_at IS NULL;
CREATE TABLE trading_states (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE TABLE holds (
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    name TEXT NOT NULL,
    detail TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, hedge, name)
);
CREATE TABLE unwinds (
    id BIGSERIAL PRIMARY KEY,
    account TEXT NOT NULL,
    hedge TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
"""),
    # Control rows copied by `hedgebot journal migrate` say where they came from, so a second run replaces
    # its own earlier copy of a hedge's rows and never a row the PostgreSQL daemons wrote.
    (3, """
ALTER TABLE requests ADD COLUMN origin TEXT;
ALTER TABLE trading_states ADD COLUMN origin TEXT;
ALTER TABLE holds ADD COLUMN origin TEXT;
ALTER TABLE unwinds ADD COLUMN origin TEXT;
"""),
)

LATEST = MIGRATIONS[-1][0]


def applied_version(conn: Any) -> int:
    """Return the highest migration applied (0 on an empty database)."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").fetchone()
    if not _field(row, "present"):
        return 0
    return int(_field(conn.execute("SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations").fetchone(), "version"))


def _field(row: Any, name: str) -> Any:
    """Read a column from a tuple row or a dict row."""
    return row[name] if isinstance(row, dict) else row[0]


def migrate(conn: Any) -> list[int]:
    """Apply every migration not applied yet, each in its own transaction; return the numbers applied."""
    done: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        current = applied_version(conn)
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
            done.append(version)
    return done
