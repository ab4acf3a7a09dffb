"""Config input: secrets never echoed, paths relative to the config file, env overrides of hedges."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hedgebot.commands.main import main
from hedgebot.config import ConfigError, load_config
from tests.helpers import paper_settings_dict, write_toml

REPO = Path(__file__).resolve().parents[1]
SECRET = "zq81SECRETxv07"


def _all_bytes_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.slow
def test_no_secret_value_appears_in_anything_a_run_printed_or_wrote(tmp_path, capsys, monkeypatch) -> None:
    # 1. Misplaced or refused secrets: the validation errors name the field, never the value.
    for credentials in (
        {"api_key": SECRET, "secret": {"env": "X"}},  # a bare string where a reference belongs
        {"api_key": {"value": SECRET}, "secret": {"env": "X"}},  # plain text without the opt-in
        {"api_key": {"value": SECRET, "env": "X"}, "secret": {"env": "X"}},  # two sources at once
        {"api_key": {"value": 12345}, "secret": {"env": "X"}, "allow_plaintext_secrets": True},
    ):
        data = paper_settings_dict(tmp_path)
        data["accounts"][0].update(mode="live", credentials=credentials)
        config = write_toml(tmp_path / "bad.toml", data)
        assert main(["check", "--config", str(config)]) == 2
        said = capsys.readouterr()
        assert "credentials" in said.err and "api_key" in said.err, said.err
        assert SECRET not in said.err + said.out and "12345" not in said.err, said.err
    # 2. A whole run with a secret written in the config and one in the environment.
    state = tmp_path / "state"
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["credentials"] = {
        "api_key": {"value": SECRET}, "secret": {"env": "HB_PLANTED_SECRET"}, "allow_plaintext_secrets": True,
    }
    config = write_toml(tmp_path / "run.toml", data)
    env = {**os.environ, "HB_PLANTED_SECRET": SECRET + "env", "HEDGEBOT_DAEMON__LOG_LEVEL": "debug", "HEDGEBOT_HTTP__PORT": "0"}
    checked = subprocess.run([sys.executable, "-m", "hedgebot.commands.main", "check", "--config", str(config)], cwd=REPO, env=env, capture_output=True, timeout=60)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (state / "status.json").exists():
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert b"hedge_opened" in out
    for name in ("status", "history"):
        extra = ["--hedge", "btc-core"] if name == "history" else []
        done = subprocess.run(
            [sys.executable, "-m", "hedgebot.commands.main", name, "--config", str(config), "--json", *extra],
            cwd=REPO, env=env, capture_output=True, timeout=60,
        )
        out += done.stdout + done.stderr
    written = _all_bytes_under(state)
    assert written and (state / "journal.sqlite").exists()
    for haystack in (checked.stdout, checked.stderr, out, err, written):
        assert SECRET.encode() not in haystack


def test_status_and_history_find_the_daemons_files_from_any_directory(tmp_path, monkeypatch, capsys) -> None:
    import asyncio

    from hedgebot.clock import SimClock
    from hedgebot.engine.daemon import Daemon

    home = tmp_path / "deploy"
    home.mkdir()
    data = paper_settings_dict(tmp_path)
    data["daemon"]["state_dir"] = "var"
    data["journal"]["path"] = "var/journal.sqlite"
    config = write_toml(home / "hedgebot.toml", data)
    monkeypatch.chdir(home)  # the daemon was started from the config's directory...

    async def run_briefly() -> None:
        clock = SimClock()
        daemon = Daemon(load_config(Path("hedgebot.toml")), clock)
        await daemon.start()
        await clock.advance(3)
        await daemon.stop()

    asyncio.run(run_briefly())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # ...and status is asked from anywhere else
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0, capsys.readouterr().err
    assert main(["history", "--config", str(config), "--hedge", "btc-core"]) == 0
    assert "hedge_opened" in capsys.readouterr().out
    assert not (elsewhere / "var").exists()


def test_relative_replay_funding_and_secret_paths_resolve_against_the_config_file(tmp_path, monkeypatch) -> None:
    data = paper_settings_dict(tmp_path)
    market = data["accounts"][0]["paper"]["markets"][0]
    market["feed"] = {"kind": "replay", "path": "data/candles.csv"}
    market["funding"] = {"file": "data/funding.csv"}
    data["accounts"][0]["credentials"] = {"api_key": {"file": "secrets/key"}, "secret": {"env": "X"}}
    (tmp_path / "conf").mkdir()
    config = write_toml(tmp_path / "conf" / "c.toml", data)
    monkeypatch.chdir(REPO)
    settings = load_config(config)
    base = tmp_path / "conf"
    market = settings.accounts[0].paper.markets[0]
    assert market.feed.path == base / "data" / "candles.csv"
    assert market.funding.file == base / "data" / "funding.csv"
    assert settings.accounts[0].credentials.api_key.file == base / "secrets" / "key"


def test_an_environment_variable_can_override_one_field_of_one_hedge(tmp_path, monkeypatch) -> None:
    data = paper_settings_dict(tmp_path)
    second = copy.deepcopy(data["accounts"][0]["hedges"][0])
    data["accounts"][0]["hedges"][0]["ratio"] = "1"
    config = write_toml(tmp_path / "c.toml", data)
    monkeypatch.setenv("HEDGEBOT_ACCOUNTS__0__HEDGES__0__RATIO", "0.5")
    settings = load_config(config)
    hedge = settings.accounts[0].hedges[0]
    assert str(hedge.ratio) == "0.5" and hedge.name == second["name"] and settings.accounts[0].paper is not None
    monkeypatch.setenv("HEDGEBOT_ACCOUNTS__0__HEDGES__3__RATIO", "0.5")
    with pytest.raises(ConfigError, match=r"HEDGEBOT_ACCOUNTS__0__HEDGES__3__RATIO: .*hedges\[3\]"):
        load_config(config)


def test_the_plaintext_secret_refusal_says_where_allow_plaintext_secrets_goes(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"value": "k"}, "secret": {"env": "S"}})
    with pytest.raises(ConfigError, match=r"allow_plaintext_secrets = true in \[accounts.credentials\]"):
        load_config(write_toml(tmp_path / "c.toml", data))
    readme = (REPO / "README.md").read_text()
    example = (REPO / "config" / "example.toml").read_text()
    assert "allow_plaintext_secrets = true" in readme and "[accounts.credentials]" in readme
    assert "# allow_plaintext_secrets = false" in example
