"""Secrets typed where the user did not expect them are never echoed; config messages name what to fix."""

from __future__ import annotations

import logging

import pytest
import structlog

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.config import load_config
from hedgebot.engine.daemon import Daemon
from hedgebot.redact import looks_like_credential
from tests.helpers import paper_settings_dict, write_toml
from tests.ops.support import Receiver, eventually

TOKEN = "Zk9fQw3rT7yLmN2pX8vB4cD6"  # a bearer token typed into a misspelled field
URL_PASSWORD = "Sup3rS3cretPassw0rd"


@pytest.mark.parametrize(
    ("section", "field", "value", "secret"),
    [
        ("http", "bearer", TOKEN, TOKEN),  # a typo for `token`
        ("http", "tokn", {"value": TOKEN}, TOKEN),
        ("daemon", "comment", f"key {TOKEN}", TOKEN),  # an unknown field whose value looks like a token
        ("account", "api_base_url", f"http://user:{URL_PASSWORD}@127.0.0.1:9", URL_PASSWORD),
        ("account", "api_base_url", f"http://user:{URL_PASSWORD}@127.0.0.1:9/fapi", URL_PASSWORD),  # fails the pattern too
    ],
)
def test_a_secret_in_a_misspelled_or_invalid_field_is_never_echoed_by_check(tmp_path, capsys, section, field, value, secret) -> None:
    data = paper_settings_dict(tmp_path)
    target = data["accounts"][0] if section == "account" else data.setdefault(section, {})
    target[field] = value
    config = write_toml(tmp_path / "hedgebot.toml", data)
    assert main(["check", "--config", str(config)]) == 2
    said = capsys.readouterr()
    assert field in said.err, said.err
    assert secret not in said.err + said.out, said.err


def test_credentials_in_the_api_base_url_are_refused_naming_the_field(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["api_base_url"] = f"http://user:{URL_PASSWORD}@127.0.0.1:9"
    config = write_toml(tmp_path / "hedgebot.toml", data)
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].api_base_url: api_base_url must not carry a user name or password" in err


def test_an_ordinary_bad_value_is_still_shown(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    data["daemon"] = {"log_levl": "debug"}
    config = write_toml(tmp_path / "hedgebot.toml", data)
    assert main(["check", "--config", str(config)]) == 2
    assert "daemon.log_levl: unknown field (value: 'debug')" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "credential"),
    [
        (TOKEN, True),
        ("4e94365f984d3f059a84ac3f071ad33e", True),
        ("http://user:pass@host", True),
        ("https://api.telegram.org/bot123456:ABCdefGHIjklMNOpqrSTUvwx_yz012345/sendMessage", True),
        ("BTC/USDT:USDT", False),
        ("/var/lib/hedgebot/journal.sqlite", False),
        ("2026-11-01T00:00:00Z", False),
        ("HEDGEBOT_ACCOUNTS__0__HEDGES__10", False),
        ("50000.12345678", False),
    ],
)
def test_credential_looking_values_are_told_from_ordinary_ones(text, credential) -> None:
    assert looks_like_credential(text) is credential


async def test_a_secret_in_a_misspelled_field_stays_out_of_the_log_journal_and_webhook_after_a_reload(tmp_path, capsys) -> None:
    receiver = Receiver()
    url = await receiver.start()
    data = paper_settings_dict(tmp_path)
    data["alerts"] = {"senders": [{"kind": "webhook", "name": "hook", "url": {"value": f"{url}/hook"}, "min_severity": "info"}]}
    path = write_toml(tmp_path / "hedgebot.toml", data)
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.PrintLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    clock = SimClock()
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    try:
        await clock.advance(3)
        data["http"] = {"bearer": TOKEN}
        data["accounts"][0]["api_base_url"] = f"http://user:{URL_PASSWORD}@127.0.0.1:9"
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert result.error is not None and "http.bearer" in result.error and "api_base_url" in result.error
        await eventually(lambda: any(b.get("kind") == "config_reload_rejected" for b in receiver.received))
        journaled = [str(e.detail) for e in daemon.journal.events(kind="config_reload_rejected")]
        assert journaled
        for haystack in (result.error, *journaled, str(receiver.received), capsys.readouterr().out):
            assert TOKEN not in haystack and URL_PASSWORD not in haystack
    finally:
        await daemon.stop()
        await receiver.close()
        structlog.reset_defaults()


def test_a_plain_string_secret_says_it_must_be_a_reference(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(mode="live", credentials={"api_key": "plain-text-key", "secret": {"env": "X"}})
    config = write_toml(tmp_path / "hedgebot.toml", data)
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert 'accounts[0].credentials.api_key: api_key must be a reference: { env = "VAR" } or { file = "PATH" }' in err
    assert "plain-text-key" not in err


def test_an_environment_variable_typo_names_the_variable(tmp_path, capsys, monkeypatch) -> None:
    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))
    monkeypatch.setenv("HEDGEBOT_DAEMON__FOO", "1")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "daemon.foo: unknown field" in err and "HEDGEBOT_DAEMON__FOO" in err, err


def test_a_bad_value_from_the_environment_names_the_variable(tmp_path, capsys, monkeypatch) -> None:
    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))
    monkeypatch.setenv("HEDGEBOT_ACCOUNTS__0__HEDGES__0__RATIO", "1.5")
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "accounts[0].hedges[0].ratio" in err and "HEDGEBOT_ACCOUNTS__0__HEDGES__0__RATIO" in err, err
