"""Test-wide settings."""

from __future__ import annotations

import os

# Daemons started by tests (also as subprocesses, which inherit this) serve their
# operations endpoint on a free port, never on the default 9310, which a running
# `make paper` or another test run on the same machine may hold.
os.environ["HEDGEBOT_HTTP__PORT"] = "0"

# Property tests draw the same examples on every run and every machine: a red CI run is a defect
# found, never a draw of the dice. (A random search finds new cases; run with
# `--hypothesis-profile explore` to look for them by hand.)
from hypothesis import settings  # noqa: E402

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

# Account locks are machine-wide; a run of the tests keeps its own, apart from any
# daemon or other test run on this machine (subprocesses inherit it too).
import tempfile  # noqa: E402

os.environ["HEDGEBOT_LOCK_DIR"] = tempfile.mkdtemp(prefix="hedgebot-test-locks-")


# ---- a real PostgreSQL server for the journal's tests (started once, on first use) ----
import itertools  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.postgres_server import PostgresServer, start_server  # noqa: E402

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start one throw-away PostgreSQL server for the session; skip only where no binaries exist."""
    try:
        server = start_server()
    except LookupError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """Return the URL of a fresh, empty database on the session's server."""
    import psycopg

    name = f"t{next(_databases)}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_server.url(name)
