"""The PostgreSQL journal, on a real server: the SQLite journal's guarantees, leases and fencing."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql

from hedgebot.clock import SimClock
from hedgebot.store.journal import IntentStatus, JournalUnavailable, NewEvent
from hedgebot.store.lease import Lease, LeaseChange, LeaseTiming
from hedgebot.store.pg_journal import LeaseLost, PgJournal, intents_query
from hedgebot.store import pg_migrations


def journal(url: str) -> PgJournal:
    return PgJournal(url, SimClock(), where="test")


def expire(url: str, account: str) -> None:
    """Move the database's view of the lease past its expiry (as time passing would)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE leases SET expires_at = clock_timestamp() - interval '1 second' WHERE account = %s", (account,))


def test_migrations_are_applied_at_start_and_once(pg_url: str) -> None:
    first, second = journal(pg_url), journal(pg_url)
    with psycopg.connect(pg_url) as conn:
        assert pg_migrations.applied_version(conn) == pg_migrations.LATEST
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(pg_migrations.MIGRATIONS)
    assert first.epoch == second.epoch  # one journal, one client-id prefix
    first.close(), second.close()


def test_a_lease_is_taken_with_epoch_one_then_renewed_under_the_same_epoch(pg_url: str) -> None:
    j = journal(pg_url)
    lease = Lease(j, "main", "daemon-a", LeaseTiming(30, 5))
    assert lease.refresh() is LeaseChange.TAKEN and lease.epoch == 1
    assert lease.refresh() is LeaseChange.RENEWED and lease.epoch == 1
    row = j.lease("main")
    assert row is not None and row.holder == "daemon-a" and row.epoch == 1 and 25 < row.expires_in <= 30
    j.close()


def test_a_standby_waits_while_the_lease_is_current_then_takes_it_over_with_a_higher_epoch(pg_url: str) -> None:
    j = journal(pg_url)
    leader = Lease(j, "main", "daemon-a", LeaseTiming(30, 5))
    standby = Lease(j, "main", "daemon-b", LeaseTiming(30, 5))
    leader.refresh()
    assert standby.refresh() is LeaseChange.WAITING and standby.epoch is None
    expire(pg_url, "main")
    assert standby.refresh() is LeaseChange.TAKEN and standby.epoch == 2
    assert leader.refresh() is LeaseChange.LOST and leader.epoch is None and not leader.may_send()
    j.close()


def test_an_intent_under_a_stale_epoch_is_refused_in_the_transaction_and_nothing_is_written(pg_url: str) -> None:
    old, new = journal(pg_url), journal(pg_url)  # two daemons, one journal
    leader = Lease(old, "main", "daemon-a", LeaseTiming(30, 5))
    leader.refresh()
    old.begin("main", "btc", "order", {"side": "sell"})
    expire(pg_url, "main")
    Lease(new, "main", "daemon-b", LeaseTiming(30, 5)).refresh()
    with pytest.raises(LeaseLost, match="epoch 1 is not current \\(epoch 2 held by daemon-b\\)"):
        old.begin("main", "btc", "order", {"side": "sell"})  # the old leader still believes it holds epoch 1
    assert len(new.intents("main")) == 1
    intent = new.begin("main", "btc", "order", {"side": "sell"})
    assert intent.seq == 2 and [i.client_id for i in new.intents("main")][-1] == intent.client_id
    old.close(), new.close()


def test_an_intent_under_an_expired_lease_nobody_took_is_refused(pg_url: str) -> None:
    j = journal(pg_url)
    Lease(j, "main", "daemon-a", LeaseTiming(30, 5)).refresh()
    expire(pg_url, "main")
    with pytest.raises(LeaseLost, match="not current"):
        j.begin("main", "btc", "order", {})
    assert j.intents() == []
    j.close()


def test_an_intent_without_a_lease_is_refused(pg_url: str) -> None:
    j = journal(pg_url)
    with pytest.raises(LeaseLost, match="holds no lease on account 'main'"):
        j.begin("main", "btc", "order", {})
    j.close()


def test_client_ids_carry_the_lease_epoch(pg_url: str) -> None:
    j = journal(pg_url)
    lease = Lease(j, "main", "daemon-a", LeaseTiming(30, 5))
    lease.refresh()
    first = j.begin("main", "btc", "order", {})
    expire(pg_url, "main")
    lease.refresh()  # its own expired lease, taken again: a new epoch
    second = j.begin("main", "btc", "order", {})
    assert lease.epoch == 2
    assert first.client_id.startswith(f"hb{j.epoch}0001") and second.client_id.startswith(f"hb{j.epoch}0002")
    assert len(second.client_id) <= 32 and second.client_id.isalnum()
    j.close()


def test_a_leader_that_has_not_renewed_within_the_lease_less_its_margin_stops_sending(pg_url: str) -> None:
    now = [100.0]
    j = journal(pg_url)
    lease = Lease(j, "main", "daemon-a", LeaseTiming(15, 3), monotonic=lambda: now[0])
    lease.refresh()
    now[0] += 11.9
    assert lease.may_send() and lease.remaining() == pytest.approx(0.1)
    now[0] += 0.1  # frozen past lease - margin: no renewal came
    assert not lease.may_send() and lease.remaining() == 0
    assert lease.refresh() is LeaseChange.RENEWED and lease.may_send()
    j.close()


def test_a_released_lease_is_taken_by_the_standby_at_once(pg_url: str) -> None:
    j = journal(pg_url)
    leader = Lease(j, "main", "daemon-a", LeaseTiming(30, 5))
    leader.refresh()
    leader.release()
    standby = Lease(j, "main", "daemon-b", LeaseTiming(30, 5))
    assert standby.refresh() is LeaseChange.TAKEN and standby.epoch == 2
    j.close()


def test_outcomes_and_events_round_trip(pg_url: str) -> None:
    j = journal(pg_url)
    Lease(j, "main", "daemon-a", LeaseTiming(30, 5)).refresh()
    intent = j.begin("main", "btc", "order", {"amount": "0.1"})
    assert [i.client_id for i in j.open_intents("main", "btc")] == [intent.client_id]
    j.finish(intent.client_id, IntentStatus.DONE, {"filled": "0.1"})
    assert j.open_intents() == [] and j.intents()[0].outcome == {"filled": "0.1"}
    j.record_event("main", "btc", "lease_taken", "info", {"epoch": 1})
    assert [(e.kind, e.detail) for e in j.events(kind="lease_taken")] == [("lease_taken", {"epoch": 1})]
    j.close()


def test_a_wrong_password_is_named_in_one_line(pg_url: str) -> None:
    wrong = pg_url.replace("test-pass-1234", "not-the-password")
    with pytest.raises(JournalUnavailable) as caught:
        PgJournal(wrong, SimClock(), where="postgresql://hedgebot@127.0.0.1/t")
    message = str(caught.value)
    assert "wrong user or password" in message and "\n" not in message and "not-the-password" not in message


def test_a_wrong_address_or_database_is_named(pg_url: str, postgres_server) -> None:  # noqa: ANN001
    with pytest.raises(JournalUnavailable, match="the database does not exist"):
        PgJournal(postgres_server.url("nosuchdb"), SimClock(), where="x")
    closed = pg_url.replace(f":{postgres_server.port}/", ":1/")
    with pytest.raises(JournalUnavailable, match="nothing answers at that address"):
        PgJournal(closed, SimClock(), where="x")


def test_a_user_without_permission_is_named(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'r-pass'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    reader = pg_url.replace("hedgebot:test-pass-1234", "reader:r-pass")
    with pytest.raises(JournalUnavailable, match="the user lacks a permission"):
        PgJournal(reader, SimClock(), where="x")


def test_an_intent_the_new_leader_settled_stays_settled_whatever_a_stale_leader_writes_late(pg_url: str) -> None:
    old = PgJournal(pg_url, SimClock(), where="old leader")
    new = PgJournal(pg_url, SimClock(), where="new leader")
    try:
        assert old.take_lease("live", "leader-a", 600, None) == 1
        intent = old.begin("live", "btc", "order", {"symbol": "BTC/USDT", "side": "sell", "amount": "0.361"})
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("UPDATE leases SET expires_at = clock_timestamp() WHERE account = 'live'")
        assert new.take_lease("live", "leader-b", 600, None) == 2
        new.finish(intent.client_id, IntentStatus.DONE, {"filled": "0.361", "order_id": "9"})
        # The old leader wakes with the answer lost: it would journal "unknown" over the settled sale.
        old.finish(intent.client_id, IntentStatus.UNKNOWN, {"error": "timeout"},
                   [NewEvent("live", "btc", "action_outcome_unknown", "warning", {})])
        [after] = new.intents("live", "btc")
        assert after.status is IntentStatus.DONE and after.outcome == {"filled": "0.361", "order_id": "9"}
        assert new.events(kind="action_outcome_unknown") == []
    finally:
        old.close()
        new.close()


def test_the_unsettled_intents_a_keeper_asks_for_every_tick_are_found_by_their_index_not_by_reading_the_hedges_history(
    pg_url: str,
) -> None:
    """A keeper asks for its open intents several times a tick: reading its whole history would cost more every order."""
    j = journal(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO intents (account, hedge, seq, client_id, kind, detail, status, created_at, updated_at) "
            "SELECT 'main', 'btc', n, 'settled-' || n, 'order', '{}', 'filled', n, n FROM generate_series(1, 20000) AS n"
        )
        conn.execute(
            "INSERT INTO intents (account, hedge, seq, client_id, kind, detail, status, created_at, updated_at) "
            "VALUES ('main', 'btc', 20001, 'open-1', 'order', '{}', 'unknown', 1, 1)"
        )
        conn.execute("ANALYZE intents")
        # psycopg prepares a statement it runs often, and the server may then plan it once for any parameters.
        conn.execute("SET plan_cache_mode = force_generic_plan")
        query, params = intents_query("main", "btc", only_open=True)
        numbered = query
        for n in range(1, len(params) + 1):
            numbered = numbered.replace("%s", f"${n}", 1)
        conn.execute(f"PREPARE open_intents AS {numbered}")
        arguments = sql.SQL(", ").join(sql.Literal(p) for p in params)
        plan = json.dumps(conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE open_intents ({})").format(arguments)).fetchone()[0])
    assert '"Index Name": "intents_open"' in plan, plan
    assert [i.client_id for i in j.open_intents("main", "btc")] == ["open-1"]
    j.close()
