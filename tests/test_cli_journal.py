"""`hedgebot journal check|recover|backup` on a real file, damaged or not."""

from __future__ import annotations

import sqlite3

from hedgebot.cli import main
from hedgebot.engine.daemon import AccountLock
from tests.helpers import paper_settings_dict, write_toml
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
