"""Files owned by the service user, used by someone else: one message naming the file, exit 2, never a traceback.

The layout is the one the deploy guide creates (a config directory of mode 0750,
a state directory of mode 0700, secrets of mode 0600), owned here by the user
running the tests and used by an unprivileged one: `nobody` when the tests run
as root (root ignores permission bits), else the same user after `chmod`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hedgebot.clock import SimClock
from hedgebot.store.journal import Journal
from tests.helpers import clean_env, paper_settings_dict, write_toml

REPO = Path(__file__).resolve().parents[1]
HINT = "permission denied (run as the service user, for example sudo -u hedgebot)"
CANDLES = "date,open,high,low,close,volume\n" + "".join(
    f"2024-01-01T{h:02d}:00:00Z,50000,50100,49900,50000,1\n" for h in range(24)
)


def _other_user() -> list[str]:
    """Return the command prefix that runs a program as a user without the service user's rights."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot run a command as another user")
    return [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def place() -> Iterator[Path]:
    """Return a directory every user may enter (pytest's own tmp_path is private to its owner)."""
    root = Path(tempfile.mkdtemp(prefix="hedgebot-perm-", dir="/tmp"))
    root.chmod(0o755)
    probe = subprocess.run([*_other_user(), sys.executable, "-c", "import hedgebot"], cwd=root, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    if probe.returncode != 0:
        shutil.rmtree(root)
        pytest.skip(f"the other user cannot run this checkout's Python: {probe.stderr.decode()[-300:]}")
    try:
        yield root
    finally:
        shutil.rmtree(root)


def hedgebot(place: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `hedgebot ARGS` as the other user."""
    env = clean_env(keep_lock_dir=False)  # the other user cannot write this run's own (0700) lock directory
    env.update(PYTHONPATH=str(REPO), HEDGEBOT_HTTP__PORT="0")
    return subprocess.run(
        [*_other_user(), sys.executable, "-m", "hedgebot.commands.main", *args], cwd=place, env=env,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


def deployed(place: Path, *, state_mode: int = 0o700, file_mode: int = 0o600, config_dir_mode: int = 0o755) -> Path:
    """Lay out what the deploy guide creates, with a journal and status file the daemon wrote; return the config."""
    state = place / "var" / "lib" / "hedgebot"
    state.mkdir(parents=True)
    data = paper_settings_dict(place)
    data["daemon"]["state_dir"] = str(state)
    data["journal"]["path"] = str(state / "journal.sqlite")
    etc = place / "etc" / "hedgebot"
    etc.mkdir(parents=True)
    config = write_toml(etc / "hedgebot.toml", data)
    config.chmod(0o644)
    Journal(state / "journal.sqlite", SimClock()).close()
    (state / "status.json").write_text('{"hedges": []}')
    (place / "prices.csv").write_text(CANDLES)
    (place / "prices.csv").chmod(0o644)
    (place / "out").mkdir()
    (place / "out").chmod(0o777)
    for path in state.iterdir():
        path.chmod(file_mode)
    state.chmod(state_mode)
    etc.chmod(config_dir_mode)
    return config


def assert_denied(done: subprocess.CompletedProcess[str], path: Path) -> None:
    said = done.stdout + done.stderr
    assert "Traceback" not in said, said
    assert done.returncode == 2, said
    assert f"hedgebot: cannot read {path}: {HINT}" in done.stderr or f"cannot write in {path}: {HINT}" in done.stderr, said


COMMANDS = {
    "check": [],
    "run": [],
    "status": [],
    "history": ["--hedge", "btc-core"],
    "report": [],
    "unwind": ["--hedge", "btc-core", "--plan"],
    "backtest": ["--hedge", "btc-core", "--prices", "prices.csv", "--no-chart", "--out", "out/backtest"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_config_in_the_service_users_directory_is_named_with_the_way_in(place, command) -> None:
    config = deployed(place, config_dir_mode=0o750)
    done = hedgebot(place, command, "--config", str(config), *COMMANDS[command])
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 2, said
    assert f"hedgebot: cannot read {config}: {HINT}" in done.stderr or f"hedgebot: cannot read {config.parent}: {HINT}" in done.stderr, said


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "run", "status", "history", "report", "unwind"])
def test_a_state_directory_of_the_service_user_is_named_with_the_way_in(place, command) -> None:
    config = deployed(place)
    done = hedgebot(place, command, "--config", str(config), *COMMANDS[command])
    assert_denied(done, place / "var" / "lib" / "hedgebot")


@pytest.mark.slow
@pytest.mark.parametrize(("command", "name"), [("status", "status.json"), ("history", "journal.sqlite"), ("report", "journal.sqlite")])
def test_a_status_file_or_journal_of_the_service_user_is_named_with_the_way_in(place, command, name) -> None:
    config = deployed(place, state_mode=0o755)
    done = hedgebot(place, command, "--config", str(config), *COMMANDS[command])
    assert_denied(done, place / "var" / "lib" / "hedgebot" / name)


@pytest.mark.slow
def test_a_backtest_of_unreadable_prices_or_into_an_unwritable_directory_is_named(place) -> None:
    config = deployed(place, state_mode=0o755, file_mode=0o644)
    (place / "prices.csv").chmod(0o600)
    done = hedgebot(place, "backtest", "--config", str(config), *COMMANDS["backtest"])
    assert_denied(done, Path("prices.csv"))  # named as the user gave it
    (place / "prices.csv").chmod(0o644)
    locked = place / "locked"
    locked.mkdir(mode=0o755)
    locked.chmod(0o555)
    done = hedgebot(place, "backtest", "--config", str(config), *COMMANDS["backtest"][:-1], str(locked / "out"))
    assert_denied(done, locked / "out")


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "run"])
def test_an_unreadable_secret_file_is_named_with_the_way_in(place, command) -> None:
    secret = place / "binance_secret"
    secret.write_text("planted-secret-value")
    secret.chmod(0o600)
    data = paper_settings_dict(place)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"file": str(secret)}, "secret": {"file": str(secret)}})
    data["daemon"]["state_dir"] = str(place / "state")
    data["journal"]["path"] = str(place / "state" / "journal.sqlite")
    (place / "state").mkdir(mode=0o777)
    (place / "state").chmod(0o777)
    config = write_toml(place / "live.toml", data)
    config.chmod(0o644)
    done = hedgebot(place, command, "--config", str(config), *(["--live"] if command == "run" else []))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 2, said
    assert f"accounts[0].credentials.api_key: secret file: cannot read {secret}: {HINT}" in done.stderr, said
    assert "planted-secret-value" not in said


@pytest.mark.slow
def test_check_names_an_alert_senders_secret_file_it_may_not_read(place) -> None:
    token = place / "telegram_token"
    token.write_text("123456:planted-telegram-token-abcdefghij")
    token.chmod(0o600)
    data = paper_settings_dict(place)
    data["daemon"]["state_dir"] = str(place / "state")
    data["journal"]["path"] = str(place / "state" / "journal.sqlite")
    (place / "state").mkdir()
    (place / "state").chmod(0o777)
    data["alerts"] = {"senders": [{"kind": "telegram", "name": "phone", "bot_token": {"file": str(token)}, "chat_id": "42"}]}
    config = write_toml(place / "alerts.toml", data)
    config.chmod(0o644)
    done = hedgebot(place, "check", "--config", str(config))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 2, said
    assert f"alert sender phone: alerts.senders[0].bot_token: secret file: cannot read {token}: {HINT}" in done.stderr, said
    assert "planted-telegram-token" not in said
