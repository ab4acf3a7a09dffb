"""Misuses of the command line: each ends with a clear message and an exit code, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _hedgebot(*args: str, cwd: Path = REPO, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hedgebot.commands.main", *args], cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs)


def test_version_prints_the_installed_version() -> None:
    done = _hedgebot("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hedgebot {version('hedgebot')}"


def _no_traceback(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr[-2000:]


def test_history_piped_into_head_ends_quietly_without_broken_pipe(tmp_path) -> None:
    from hedgebot.clock import SimClock
    from hedgebot.store.journal import Journal
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "c.toml", paper_settings_dict(tmp_path))
    Journal(tmp_path / "state" / "journal.sqlite", SimClock()).close()  # the schema
    with sqlite3.connect(tmp_path / "state" / "journal.sqlite") as db:  # far more than a pipe holds, in one commit
        db.executemany(
            "INSERT INTO events (at, account, hedge, kind, severity, detail) VALUES (?, 'paper', 'btc-core', 'order_filled', 'info', ?)",
            [(1_600_000_000.0 + n, json.dumps({"n": n, "pad": "x" * 60})) for n in range(4000)],
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedgebot.commands.main", "history", "--config", str(config), "--hedge", "btc-core"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does once it has its line
    stderr = proc.stderr.read()
    code = proc.wait(timeout=60)
    assert "order_filled" in first
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr, stderr
    assert code == 0


def test_a_config_that_is_not_utf8_is_reported_not_raised(tmp_path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("# caf\xe9\n[daemon]\nstate_dir = 'var'\n".encode("latin-1"))
    done = _hedgebot("check", "--config", str(path))
    _no_traceback(done)
    assert done.returncode == 2 and "UTF-8" in done.stderr and str(path) in done.stderr


def test_history_refuses_a_negative_limit(tmp_path) -> None:
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "c.toml", paper_settings_dict(tmp_path))
    for bad in ("-1", "0", "many"):
        done = _hedgebot("history", "--config", str(config), "--hedge", "btc-core", "--limit", bad)
        _no_traceback(done)
        assert done.returncode == 2 and "--limit" in done.stderr, (bad, done.stderr)


def test_history_keeps_hedges_of_the_same_name_in_different_accounts_apart(tmp_path, capsys) -> None:
    import copy

    from hedgebot.commands.main import main
    from hedgebot.clock import SimClock
    from hedgebot.store.journal import Journal
    from tests.helpers import paper_settings_dict, write_toml

    data = paper_settings_dict(tmp_path)
    second = copy.deepcopy(data["accounts"][0])
    second["name"] = "other"
    data["accounts"].append(second)
    config = str(write_toml(tmp_path / "c.toml", data))
    journal = Journal(tmp_path / "state" / "journal.sqlite", SimClock())
    journal.record_event("paper", "btc-core", "order_filled", "info", {"mine": "paper"})
    journal.record_event("other", "btc-core", "order_filled", "info", {"mine": "other"})
    journal.close()
    assert main(["history", "--config", config, "--hedge", "btc-core"]) == 2
    assert "--account" in capsys.readouterr().err
    assert main(["history", "--config", config, "--hedge", "btc-core", "--account", "other", "--json"]) == 0

    shown = json.loads(capsys.readouterr().out)
    assert [e["mine"] for e in shown] == ["other"] and shown[0]["at"].endswith("Z")
    assert main(["history", "--config", config, "--hedge", "btc-core", "--account", "nope"]) == 2


def test_a_corrupt_status_file_or_journal_is_reported_without_a_traceback(tmp_path) -> None:
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "c.toml", paper_settings_dict(tmp_path))
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "status.json").write_text("{half a file")
    (tmp_path / "state" / "journal.sqlite").write_text("not a database")
    for args, names in ((("status",), "status.json"), (("history", "--hedge", "btc-core"), "journal")):
        done = _hedgebot(*args, "--config", str(config))
        _no_traceback(done)
        assert done.returncode == 2 and names in done.stderr, done.stderr


def test_control_commands_refuse_a_negative_or_non_numeric_wait_naming_the_argument(tmp_path) -> None:
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "c.toml", paper_settings_dict(tmp_path))
    for bad in ("-5", "nan", "inf", "soon"):
        done = _hedgebot("reduce", "--config", str(config), "--hedge", "btc-core", "--wait", bad)
        _no_traceback(done)
        assert done.returncode == 2 and "--wait" in done.stderr, (bad, done.returncode, done.stderr)


def test_check_says_a_config_path_that_is_a_directory_is_a_directory(tmp_path) -> None:
    done = _hedgebot("check", "--config", str(tmp_path))
    _no_traceback(done)
    assert done.returncode == 2 and f"config file {tmp_path} is a directory" in done.stderr, done.stderr


def test_check_prints_paths_normalised_without_dot_dot(tmp_path) -> None:
    from tests.helpers import paper_settings_dict, write_toml

    data = paper_settings_dict(tmp_path)
    data["daemon"]["state_dir"] = "../var/paper"
    data["journal"]["path"] = "../var/j.sqlite"
    (tmp_path / "config").mkdir()
    done = _hedgebot("check", "--config", str(write_toml(tmp_path / "config" / "c.toml", data)))
    assert done.returncode == 0, done.stderr
    assert f"state dir: {tmp_path / 'var' / 'paper'}\n" in done.stdout
    assert f"journal: {tmp_path / 'var' / 'j.sqlite'}\n" in done.stdout
