"""`hedgebot journal check|recover|backup` on a real file, damaged or not, and `journal check|migrate` and `hedgebot check` against a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.config import ConfigError, Settings, load_config
from hedgebot.engine.daemon import AccountLock, Daemon
from hedgebot.engine.keeper import StartupRefused
from hedgebot.store.journal import IntentStatus, Journal
from hedgebot.store.pg_migrations import LATEST
from tests.helpers import paper_settings_dict, write_toml
from tests.postgres_server import PASSWORD
from tests.store.test_integrity import filled_journal, overwrite_last_page


def _setup(tmp_path):
    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))
    journal = tmp_path / "state" / "journal.sqlite"
    filled_journal(journal).close()
    return config, journal


def test_journal_check_says_ok_for_an_intact_journal_and_names_the_damage_and_the_cure_otherwise(tmp_path, capsys) -> None:
    config, journal = _setup(tmp_path)
    assert main(["journal", "check", "--config", str(config)]) == 0
    assert "ok" in capsys.readouterr().out
    overwrite_last_page(journal)
    assert main(["journal", "check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert f"journal {journal}: DAMAGED" in out and f"hedgebot journal recover --config {config}" in out


def test_journal_recover_rebuilds_a_damaged_journal_that_then_passes_its_check(tmp_path, capsys) -> None:
    config, journal = _setup(tmp_path)
    overwrite_last_page(journal)
    assert main(["journal", "recover", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "intents: 40 row(s) copied" in out and ".damaged-" in out
    assert main(["journal", "check", "--config", str(config)]) == 0
    assert sqlite3.connect(journal).execute("SELECT COUNT(*) FROM intents").fetchone()[0] == 40


def test_journal_recover_is_refused_while_a_daemon_holds_the_account(tmp_path, capsys) -> None:
    config, journal = _setup(tmp_path)
    lock = AccountLock(tmp_path / "state", "paper")
    lock.acquire()
    try:
        assert main(["journal", "recover", "--config", str(config)]) == 2
    finally:
        lock.release()
    assert "stop it first" in capsys.readouterr().err
    assert not list(journal.parent.glob("*.damaged-*"))


def test_journal_backup_writes_a_copy_that_passes_its_check_and_refuses_the_journal_itself(tmp_path, capsys) -> None:
    config, journal = _setup(tmp_path)
    target = tmp_path / "copy.sqlite"
    assert main(["journal", "backup", str(target), "--config", str(config)]) == 0
    assert sqlite3.connect(target).execute("SELECT COUNT(*) FROM events").fetchone()[0] == 400
    assert main(["journal", "backup", str(journal), "--config", str(config)]) == 2
    assert main(["journal", "backup", str(tmp_path / "no" / "such" / "dir.sqlite"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "is the journal itself" in err and "does not exist" in err


def config_with_url(tmp_path: Path, url: str, password_env: str = "HB_PG_PASSWORD") -> Path:
    data = paper_settings_dict(tmp_path)
    data["journal"] = {"url": url.replace(f":{PASSWORD}@", "@"), "password": {"env": password_env}}
    return write_toml(tmp_path / "hedgebot.toml", data)


def test_journal_check_applies_the_migrations_and_says_ok(tmp_path: Path, pg_url: str, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("HB_PG_PASSWORD", PASSWORD)
    assert main(["journal", "check", "--config", str(config_with_url(tmp_path, pg_url))]) == 0
    assert f"schema version {LATEST} (current {LATEST}): OK" in capsys.readouterr().out


def test_journal_check_names_a_wrong_password_in_one_line_without_the_password(
    tmp_path: Path, pg_url: str, monkeypatch, capsys  # noqa: ANN001
) -> None:
    monkeypatch.setenv("HB_PG_PASSWORD", "guessed-wrong")
    assert main(["journal", "check", "--config", str(config_with_url(tmp_path, pg_url))]) == 2
    err = capsys.readouterr().err
    assert "wrong user or password" in err and err.count("\n") == 1 and "guessed-wrong" not in err


def test_hedgebot_check_names_a_journal_nobody_answers_at(tmp_path: Path, pg_url: str, postgres_server, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("HB_PG_PASSWORD", PASSWORD)
    config = config_with_url(tmp_path, pg_url.replace(f":{postgres_server.port}/", ":1/"))
    assert main(["check", "--config", str(config)]) == 2
    assert "nothing answers at that address" in capsys.readouterr().err


def test_a_password_written_in_the_journal_url_is_refused_naming_the_field(tmp_path: Path) -> None:
    data = paper_settings_dict(tmp_path)
    data["journal"] = {"url": "postgresql://hedgebot:hunter2@db/hedgebot"}
    with pytest.raises(ConfigError, match="journal.*password is written in the URL") as caught:
        load_config(write_toml(tmp_path / "c.toml", data))
    assert "hunter2" not in str(caught.value)


def test_migrate_copies_an_sqlite_journal_and_can_be_run_again(tmp_path: Path, pg_url: str, capsys) -> None:  # noqa: ANN001
    source = tmp_path / "journal.sqlite"
    old = Journal(source, SimClock())
    intent = old.begin("main", "btc", "order", {"amount": "0.1"})
    old.finish(intent.client_id, IntentStatus.DONE, {"filled": "0.1"})
    old.record_event("main", "btc", "order_filled", "info", {"amount": "0.1"})
    old.close()
    assert main(["journal", "migrate", "--from", str(source), "--to", pg_url]) == 0
    assert "copied 1 new intent(s) and 1 new event(s)" in capsys.readouterr().out
    assert main(["journal", "migrate", "--from", str(source), "--to", pg_url]) == 0
    assert "copied 0 new intent(s) and 0 new event(s)" in capsys.readouterr().out
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT client_id, status, outcome FROM intents").fetchall()
        events = conn.execute("SELECT kind FROM events").fetchall()
    assert rows == [(intent.client_id, "done", '{"filled": "0.1"}')] and events == [("order_filled",)]


def test_migrate_names_a_missing_source_file(tmp_path: Path, pg_url: str, capsys) -> None:  # noqa: ANN001
    assert main(["journal", "migrate", "--from", str(tmp_path / "nope.sqlite"), "--to", pg_url]) == 2
    assert "no such journal file" in capsys.readouterr().err


async def test_a_daemon_whose_postgresql_journal_does_not_answer_refuses_to_start_naming_it(tmp_path: Path) -> None:
    data = paper_settings_dict(tmp_path)
    data["journal"] = {"url": "postgresql://hedgebot@127.0.0.1:1/hedgebot"}
    with pytest.raises(StartupRefused, match=r"journal postgresql://hedgebot@127.0.0.1:1/hedgebot: nothing answers at that address"):
        await Daemon(Settings(**data), SimClock()).start()
    assert not list((tmp_path / "state").glob("paper-*.json"))  # no venue was built, nothing traded


async def test_standby_needs_a_shared_journal(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused, match=r"--standby needs a journal shared with the leader"):
        await Daemon(Settings(**paper_settings_dict(tmp_path)), SimClock(), standby=True).start()


@pytest.mark.parametrize("state", ["closed", "halted"])
async def test_a_hedge_closed_or_paused_on_sqlite_stays_so_after_the_move_to_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, state: str,
) -> None:
    from hedgebot.domain.trading import TradingState
    from hedgebot.store.control import Control
    from tests.engine.test_daemon_leases import exchange, shared_settings
    from tests.helpers import D, SYMBOL

    source = tmp_path / "journal.sqlite"
    old = Journal(source, SimClock())
    # Unwound (stays flat "across restarts, whatever the spot does") or paused by a person.
    Control(old).set_state("paper", "btc-core", TradingState(state), "by alice", "alice@host")
    old.close()
    assert main(["journal", "migrate", "--from", str(source), "--to", pg_url]) == 0

    clock = SimClock()
    venue = exchange(clock)  # 2 BTC held, no short: as the unwind left it
    daemon = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    await daemon.start()
    try:
        await clock.advance(10)
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("0"), f"the {state} hedge traded again after the move"
        assert daemon.keepers[0].trading_state.value == state
    finally:
        await daemon.stop()


def test_migrate_run_again_copies_the_newer_states_and_keeps_those_written_on_postgresql(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    from hedgebot.domain.trading import TradingState
    from hedgebot.store.control import Control
    from hedgebot.store.pg_control import PgControl
    from hedgebot.store.pg_journal import PgJournal

    source = tmp_path / "journal.sqlite"
    old = Journal(source, SimClock())
    control = Control(old)
    control.set_state("main", "btc", TradingState.HALTED, "paused", "alice")
    control.set_state("main", "eth", TradingState.HALTED, "paused", "alice")
    assert main(["journal", "migrate", "--from", str(source), "--to", pg_url]) == 0
    # More is written on SQLite (the old daemon still runs), and a PostgreSQL daemon resumes eth meanwhile.
    control.set_state("main", "btc", TradingState.CLOSED, "unwound", "alice")
    control.set_state("main", "eth", TradingState.CLOSED, "unwound", "alice")
    old.close()
    target = PgJournal(pg_url, SimClock(), where="test")
    PgControl(target).set_state("main", "eth", TradingState.ACTIVE, "resumed", "bob")
    capsys.readouterr()
    assert main(["journal", "migrate", "--from", str(source), "--to", pg_url]) == 0
    err = capsys.readouterr().err
    assert "main/eth" in err and "main/btc" not in err
    pg = PgControl(target)
    assert pg.state("main", "btc").state is TradingState.CLOSED  # the newer SQLite state, copied again
    assert pg.state("main", "eth").state is TradingState.ACTIVE  # written on PostgreSQL: kept
    target.close()
