"""`check` verifies everything `run` will need, and `run` refuses bad input the same way: exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import paper_settings_dict, write_toml

REPO = Path(__file__).resolve().parents[1]
GOOD_CANDLES = "date,open,high,low,close,volume\n2021-01-01T00:00:00Z,29000,29400,28800,29300,10\n"


def _hedgebot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hedgebot.commands.main", *args], cwd=REPO, capture_output=True, text=True, timeout=60,
    )


def _both(config: Path, *run_flags: str) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Return what `check` and `run` said about the config."""
    checked = _hedgebot("check", "--config", str(config))
    ran = _hedgebot("run", "--config", str(config), *run_flags)
    for done in (checked, ran):
        assert "Traceback" not in done.stderr + done.stdout, done.stderr[-2000:]
        assert done.returncode == 2, (done.returncode, done.stdout[-500:], done.stderr[-500:])
    return checked, ran


def _replay_config(tmp_path: Path, candles: str | None, funding: str | None = None) -> Path:
    data = paper_settings_dict(tmp_path)
    market = data["accounts"][0]["paper"]["markets"][0]
    path = tmp_path / "candles.csv"
    if candles is not None:
        path.write_text(candles)
    market["feed"] = {"kind": "replay", "path": str(path)}
    if funding is not None:
        (tmp_path / "funding.csv").write_text(funding)
        market["funding"] = {"file": str(tmp_path / "funding.csv")}
    return write_toml(tmp_path / "c.toml", data)


@pytest.mark.parametrize(
    ("candles", "funding", "field", "says"),
    [
        (None, None, "accounts[0].paper.markets[0].feed.path", "does not exist"),
        ("", None, "accounts[0].paper.markets[0].feed.path", "no candles"),
        ("date,open,high,low,close,volume\n", None, "accounts[0].paper.markets[0].feed.path", "no candles"),
        (GOOD_CANDLES + "2021-01-01T01:00:00Z,29300,oops,29100,29200,5\n", None, "candles.csv:3", "not a number"),
        (GOOD_CANDLES, "calc_time,funding_interval_hours,last_funding_rate\n1609459200000,8,zero\n", "funding.csv:2", "bad funding row"),
    ],
    ids=["missing", "empty", "header-only", "corrupt-row", "corrupt-funding"],
)
def test_check_and_run_reject_a_missing_empty_or_corrupt_replay_file_naming_the_path_and_line(tmp_path, candles, funding, field, says) -> None:
    config = _replay_config(tmp_path, candles, funding)
    checked, ran = _both(config)
    for done in (checked, ran):
        assert field in done.stderr and says in done.stderr, done.stderr
    assert not (tmp_path / "state").exists()


def test_check_and_run_reject_a_credential_env_variable_or_file_that_does_not_exist(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(
        mode="live",
        credentials={"api_key": {"env": "HB_TEST_SURELY_UNSET"}, "secret": {"file": str(tmp_path / "no-such-secret")}},
    )
    checked, ran = _both(write_toml(tmp_path / "c.toml", data), "--live")
    for done in (checked, ran):
        assert "accounts[0].credentials.api_key: environment variable HB_TEST_SURELY_UNSET is not set" in done.stderr, done.stderr
        assert "accounts[0].credentials.secret" in done.stderr and "no-such-secret" in done.stderr


def test_check_and_run_reject_an_unknown_ccxt_exchange_id(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["exchange"] = "binanse"
    checked, ran = _both(write_toml(tmp_path / "c.toml", data))
    for done in (checked, ran):
        assert "accounts[0].exchange: unknown ccxt exchange id 'binanse'" in done.stderr, done.stderr


def test_check_and_run_reject_a_paper_account_on_an_exchange_the_paper_venue_does_not_model(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["exchange"] = "kraken"
    checked, ran = _both(write_toml(tmp_path / "c.toml", data))
    for done in (checked, ran):
        assert "accounts[0].exchange: the paper venue models" in done.stderr and "kraken" in done.stderr, done.stderr


def test_check_prints_the_resolved_journal_path_state_dir_and_each_hedges_exposure_and_guard(tmp_path) -> None:
    data = paper_settings_dict(tmp_path, exposure={"offset": "0.5"}, margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    data["daemon"]["state_dir"] = "st"
    data["journal"]["path"] = "st/j.sqlite"
    done = _hedgebot("check", "--config", str(write_toml(tmp_path / "c.toml", data)))
    assert done.returncode == 0, done.stderr
    assert f"journal: {tmp_path / 'st' / 'j.sqlite'}" in done.stdout
    assert f"state dir: {tmp_path / 'st'}" in done.stdout
    assert "exposure: spot BTC + 0.5 BTC held elsewhere" in done.stdout
    assert "margin guard: top up below 0.20 to 0.35 from futures_wallet, sell_spot" in done.stdout
    assert "config OK" in done.stdout


@pytest.mark.parametrize(
    ("content", "says"),
    [(b"x\xff\xfe\n", "is not UTF-8 text"), (b"", "is empty"), (b"  \n", "is empty")],
    ids=["non-utf8", "empty", "blank"],
)
def test_check_and_run_reject_a_secret_file_that_is_not_utf8_or_empty_naming_the_field_not_the_value(tmp_path, content, says) -> None:
    (tmp_path / "secret.bin").write_bytes(content)
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(
        mode="live",
        credentials={"api_key": {"value": "k"}, "secret": {"file": str(tmp_path / "secret.bin")}, "allow_plaintext_secrets": True},
    )
    checked, ran = _both(write_toml(tmp_path / "c.toml", data), "--live")
    for done in (checked, ran):
        assert f"accounts[0].credentials.secret: secret file {tmp_path / 'secret.bin'} {says}" in done.stderr, done.stderr
        assert "\\xff" not in done.stderr and "xfe" not in done.stderr


def test_check_and_run_reject_a_secret_file_that_is_a_directory(tmp_path) -> None:
    (tmp_path / "secretdir").mkdir()
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(
        mode="live",
        credentials={"api_key": {"value": "k"}, "secret": {"file": str(tmp_path / "secretdir")}, "allow_plaintext_secrets": True},
    )
    checked, ran = _both(write_toml(tmp_path / "c.toml", data), "--live")
    for done in (checked, ran):
        assert "accounts[0].credentials.secret: cannot read secret file" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("field", "place"),
    [("daemon.state_dir", "state_dir"), ("journal.path", "journal")],
)
def test_check_and_run_reject_a_state_dir_or_journal_directory_that_cannot_be_created_naming_the_field(tmp_path, field, place) -> None:
    data = paper_settings_dict(tmp_path)
    if place == "state_dir":
        data["daemon"]["state_dir"] = "/proc/nowrite"
    else:
        data["journal"]["path"] = "/proc/x/j.sqlite"
    checked, ran = _both(write_toml(tmp_path / "c.toml", data))
    for done in (checked, ran):
        assert f"{field}: cannot create" in done.stderr, done.stderr
        assert "config OK" not in done.stdout


def test_check_leaves_no_state_dir_behind_when_it_probes_that_it_can_be_created(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["daemon"]["state_dir"] = "deep/er/state"
    done = _hedgebot("check", "--config", str(write_toml(tmp_path / "c.toml", data)))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "deep").exists()


def test_check_and_run_name_a_replay_file_that_is_not_utf8_by_file_and_line(tmp_path) -> None:
    config = _replay_config(tmp_path, None)
    (tmp_path / "candles.csv").write_bytes(GOOD_CANDLES.encode() + b"2021-01-01T01:00:00Z,29300,\xff,29100,29200,5\n")
    checked, ran = _both(config)
    for done in (checked, ran):
        assert f"{tmp_path / 'candles.csv'}:3: not UTF-8 text (byte 0xff)" in done.stderr, done.stderr
        assert "codec" not in done.stderr


def test_check_names_an_alert_sender_whose_secret_cannot_be_read(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["alerts"] = {"senders": [
        {"kind": "webhook", "name": "ops-hook", "url": {"env": "HB_NO_SUCH_WEBHOOK_VARIABLE"}},
        {"kind": "webhook", "name": "fine-hook", "url": {"value": "http://127.0.0.1:9/fine"}},
    ]}
    data["accounts"][0]["alerts"] = [{"kind": "telegram", "name": "phone", "bot_token": {"file": str(tmp_path / "no-token")}, "chat_id": "42"}]
    checked = _hedgebot("check", "--config", str(write_toml(tmp_path / "c.toml", data)))
    assert "Traceback" not in checked.stderr and checked.returncode == 2, checked.stderr
    assert "alert sender ops-hook: alerts.senders[0].url: environment variable HB_NO_SUCH_WEBHOOK_VARIABLE is not set" in checked.stderr
    assert "alert sender phone: accounts[paper].alerts[0].bot_token: cannot read secret file" in checked.stderr
    assert "fine-hook" not in checked.stderr and "config OK" not in checked.stdout
