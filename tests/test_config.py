"""Bad config exits 2 naming the field and value; good config loads, with env overrides."""

from __future__ import annotations

import copy

import pytest

from hedgebot.commands.main import main
from hedgebot.config import ConfigError, load_config
from tests.helpers import paper_settings_dict, write_toml


def broken(tmp_path, mutate) -> str:
    data = paper_settings_dict(tmp_path)
    mutate(data)
    return str(write_toml(tmp_path / "broken.toml", data))


HEDGE = lambda d: d["accounts"][0]["hedges"][0]  # noqa: E731


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (lambda d: HEDGE(d).update(ratio="-1"), "accounts[0].hedges[0].ratio", "-1"),
        (lambda d: HEDGE(d).update(colour="blue"), "accounts[0].hedges[0].colour", "blue"),
        (lambda d: HEDGE(d).update(band="1.5"), "accounts[0].hedges[0].band", "1.5"),
        (lambda d: HEDGE(d).pop("symbol"), "accounts[0].hedges[0].symbol", "Field required"),
        (lambda d: HEDGE(d).update(symbol="BTCUSDT"), "accounts[0].hedges[0].symbol", "BTCUSDT"),
        (lambda d: HEDGE(d).update(leverage=0), "accounts[0].hedges[0].leverage", "0"),
        (lambda d: d["accounts"][0]["paper"]["spot"].update(BTC="-2"), "accounts[0].paper.spot", "-2"),
        (lambda d: HEDGE(d).update(margin_guard={"trigger": "0.4", "target": "0.3"}), "margin_guard", "target 0.3"),
    ],
)
def test_a_broken_config_exits_2_naming_the_field_and_value(tmp_path, capsys, mutate, field, value) -> None:
    path = broken(tmp_path, mutate)
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert field in err and value in err, err


@pytest.mark.parametrize(
    ("mutate", "field", "value"),
    [
        (lambda d: d["accounts"][0]["paper"]["spot"].update(BTC="1e28"), "accounts[0].paper.spot", "1E+28"),
        (lambda d: HEDGE(d).update(side="long", amount="1e28"), "accounts[0].hedges[0].amount", "1e28"),
        (lambda d: HEDGE(d).update(exposure={"offset": "1e30"}), "accounts[0].hedges[0].exposure.offset", "1e30"),
    ],
)
def test_an_absurd_amount_is_refused_naming_it_instead_of_ending_check_in_a_traceback(tmp_path, capsys, mutate, field, value) -> None:
    path = broken(tmp_path, mutate)
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert field in err and value in err, err


def test_a_broken_config_starts_nothing(tmp_path, capsys) -> None:
    path = broken(tmp_path, lambda d: HEDGE(d).update(ratio="2"))
    assert main(["run", "--config", path]) == 2
    assert "ratio" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_a_missing_or_malformed_file_is_reported(tmp_path, capsys) -> None:
    assert main(["check", "--config", str(tmp_path / "nope.toml")]) == 2
    (tmp_path / "bad.toml").write_text("accounts = [\n")
    assert main(["check", "--config", str(tmp_path / "bad.toml")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_the_shipped_configs_are_valid(capsys) -> None:
    assert main(["check", "--config", "config/paper.toml"]) == 0
    assert main(["check", "--config", "config/example.toml"]) == 0


def test_environment_variables_override_the_file(tmp_path, monkeypatch) -> None:
    path = write_toml(tmp_path / "c.toml", paper_settings_dict(tmp_path))
    monkeypatch.setenv("HEDGEBOT_JOURNAL__PATH", str(tmp_path / "elsewhere.sqlite"))
    monkeypatch.setenv("HEDGEBOT_DAEMON__LOG_LEVEL", "debug")
    settings = load_config(path)
    assert str(settings.journal.path).endswith("elsewhere.sqlite") and settings.daemon.log_level == "debug"
    assert settings.accounts[0].hedges[0].name == "btc-core"


def test_plaintext_secrets_are_refused_unless_asked_for(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"value": "k"}, "secret": {"env": "S"}})
    with pytest.raises(ConfigError, match="plain text"):
        load_config(write_toml(tmp_path / "c.toml", data))
    allowed = copy.deepcopy(data)
    allowed["accounts"][0]["credentials"]["allow_plaintext_secrets"] = True
    assert load_config(write_toml(tmp_path / "d.toml", allowed)).accounts[0].credentials.api_key.resolve("api_key") == "k"


def test_secrets_resolve_from_env_and_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    data = paper_settings_dict(tmp_path)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"env": "HB_TEST_KEY"}, "secret": {"file": str(tmp_path / "secret")}})
    creds = load_config(write_toml(tmp_path / "c.toml", data)).accounts[0].credentials
    with pytest.raises(ConfigError, match="HB_TEST_KEY is not set"):
        creds.api_key.resolve("credentials.api_key")
    monkeypatch.setenv("HB_TEST_KEY", "abc")
    assert creds.api_key.resolve("credentials.api_key") == "abc" and creds.secret.resolve("credentials.secret") == "s3cret"


def test_check_refuses_a_max_order_below_the_paper_markets_minimum(tmp_path, capsys) -> None:
    path = broken(tmp_path, lambda d: HEDGE(d).update(min_order="0.0001", max_order="0.0005"))
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "hedges[0].max_order" in err and "0.0005" in err and "0.001" in err, err


def test_check_prints_the_runway_of_each_paper_hedge_from_its_starting_balances(tmp_path, capsys) -> None:
    path = str(write_toml(tmp_path / "ok.toml", paper_settings_dict(tmp_path)))
    assert main(["check", "--config", path]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.strip().startswith("runway:"))
    # 2 BTC hedged at 50,000, 3x isolated, 100,000 USDT futures and 10,000 USDT spot behind it.
    assert "above 50000" in line and "%" in line, line


def _two_hedges_on_btc(d: dict, second_ratio: str) -> None:
    d["accounts"][0]["paper"]["markets"].append(
        {"symbol": "BTC/USDC:USDC", "amount_step": "0.001", "min_amount": "0.001", "min_notional": "5",
         "feed": {"kind": "synthetic", "start_price": "50000", "step_seconds": 1, "seed": 4}}
    )
    d["accounts"][0]["hedges"].append({**HEDGE(d), "name": "btc-usdc", "symbol": "BTC/USDC:USDC", "ratio": second_ratio})


def test_check_refuses_two_hedges_that_count_the_same_coins_twice(tmp_path, capsys) -> None:
    path = broken(tmp_path, lambda d: _two_hedges_on_btc(d, "1"))
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert "BTC" in err and "btc-core" in err and "btc-usdc" in err and "2" in err, err


def test_two_hedges_may_split_one_holding_explicitly_by_their_ratios(tmp_path) -> None:
    data = paper_settings_dict(tmp_path, ratio="0.5")
    _two_hedges_on_btc(data, "0.5")
    settings = load_config(write_toml(tmp_path / "split.toml", data))
    assert [h.ratio for h in settings.accounts[0].hedges] == [0.5, 0.5]


def test_a_free_space_stop_threshold_above_the_warning_is_refused_naming_both(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["journal"].update(free_space_warning_mb=100, free_space_stop_mb=200)
    with pytest.raises(ConfigError) as refused:
        load_config(write_toml(tmp_path / "bad.toml", data))
    assert "free_space_stop_mb (200)" in str(refused.value) and "free_space_warning_mb (100)" in str(refused.value)


def _coin_holder(d: dict, **guard: object) -> None:
    d["accounts"][0]["paper"]["spot"] = {"BTC": "10"}
    d["accounts"][0]["paper"]["futures"] = {"USDT": "50000"}
    d["accounts"][0]["paper"]["markets"][0]["feed"]["start_price"] = "29000"
    d["accounts"][0]["hedges"][0]["margin_guard"] = {"sources": ["futures_wallet", "sell_spot"], **guard}


def test_check_says_how_much_of_an_unfundable_target_can_be_opened_and_what_would_close_the_gap(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    _coin_holder(data)
    assert main(["check", "--config", str(write_toml(tmp_path / "c.toml", data))]) == 0
    out = capsys.readouterr().out
    assert "needs 96,811.67 USDT of margin and fees at 3x" in out and "the sources hold 50,000.00 USDT" in out, out
    gap = next(line for line in out.splitlines() if "UNDER-FUNDED" in line)
    assert "only 5.164 BTC of the 10.000 BTC target can be opened" in gap
    assert "deposit 46,811.67 USDT" in gap and "sell 1.211 BTC" in gap and "lower ratio to 0.5164" in gap, gap


def test_check_says_the_guard_funds_the_target_by_selling_when_told_to(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    _coin_holder(data, fund_target_by_selling=True)
    assert main(["check", "--config", str(write_toml(tmp_path / "c.toml", data))]) == 0
    out = capsys.readouterr().out
    assert "the guard funds it by selling 1.211 BTC (fund_target_by_selling); the rest, 8.789 BTC, is fully hedged" in out, out


def test_fund_target_by_selling_without_sell_spot_among_sources_is_refused_naming_the_field(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    _coin_holder(data, fund_target_by_selling=True)
    data["accounts"][0]["hedges"][0]["margin_guard"]["sources"] = ["futures_wallet"]
    assert main(["check", "--config", str(write_toml(tmp_path / "c.toml", data))]) == 2
    assert "margin_guard: fund_target_by_selling = true needs 'sell_spot' among sources" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("mutate", "said"),
    [
        (lambda d: HEDGE(d).update(schedule=[{"name": "fomc", "ratio": "1", "start": "2026-12-16T00:00:00", "end": "2026-12-17T00:00:00Z"}]),
         "has no time zone"),
        (lambda d: HEDGE(d).update(schedule=[{"name": "fomc", "ratio": "1", "start": "2026-12-17T00:00:00Z", "end": "2026-12-16T00:00:00Z"}]),
         "is not after start"),
        (lambda d: HEDGE(d).update(schedule=[{"name": "fomc", "ratio": "1.5", "start": "2026-12-16T00:00:00Z", "end": "2026-12-17T00:00:00Z"}]),
         "schedule[0].ratio"),
        (lambda d: HEDGE(d).update(schedule=[{"name": "fomc", "ratio": "1", "event": "FOMC", "before_hours": 24}]),
         "'FOMC', which no [calendar] event or calendar file holds"),
        (lambda d: HEDGE(d).update(until="next tuesday"), "'next tuesday' is neither an instant"),
        (lambda d: HEDGE(d).update(until="after:FOMC"), "until 'after:FOMC': no [calendar] event"),
        (lambda d: d.update(calendar={"file": "missing.ics"}), "missing.ics: cannot be read"),
        (lambda d: HEDGE(d).update(schedule=[{"name": "fomc", "ratio": "1", "event": "FOMC", "after_hours": 1e9}]),
         "schedule[0].after_hours"),
        (lambda d: HEDGE(d).update(schedule=[{"name": "fomc", "ratio": "1", "event": "FOMC", "before_hours": float("inf")}]),
         "schedule[0].before_hours"),
    ],
    ids=[
        "naive-time", "end-before-start", "ratio", "unknown-event", "until-text", "until-unknown-event", "missing-calendar",
        "hours-out-of-range", "hours-infinite",
    ],
)
def test_a_schedule_or_end_hedgebot_cannot_follow_is_refused_naming_what_is_wrong(tmp_path, capsys, mutate, said) -> None:
    path = broken(tmp_path, mutate)
    assert main(["check", "--config", path]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err


def test_check_lists_each_window_around_calendar_events_and_the_hedges_end(tmp_path, capsys) -> None:
    (tmp_path / "events.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:1@t\r\nDTSTAMP:20261201T000000Z\r\nSUMMARY:FOMC\r\nDTSTART:20261216T190000Z\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:2@t\r\nDTSTAMP:20261201T000000Z\r\nSUMMARY:FOMC\r\nDTSTART:20270127T190000Z\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )

    def schedule(d: dict) -> None:
        d["calendar"] = {"file": "events.ics", "events": [{"name": "halving", "at": "2028-04-15T00:00:00Z"}]}
        HEDGE(d).update(
            ratio="0.5", until="after:halving",
            schedule=[{"name": "fomc", "ratio": "1", "event": "FOMC", "before_hours": 24, "after_hours": 12}],
        )

    path = broken(tmp_path, schedule)
    assert main(["check", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "window fomc (FOMC): ratio 1 from 2026-12-15T19:00:00Z to 2026-12-17T07:00:00Z" in out
    assert "window fomc (FOMC): ratio 1 from 2027-01-26T19:00:00Z to 2027-01-28T07:00:00Z" in out
    assert "ends: unwound at 2028-04-15T00:00:00Z (until after:halving), its spot kept, then closed" in out


@pytest.mark.parametrize(("key", "value"), [("stream_reconcile_seconds", 0), ("stream_reconcile_seconds", "often"), ("weight_share", 1.5)])
def test_a_bad_reconciliation_interval_or_weight_share_is_refused_naming_the_key_and_value(tmp_path, key: str, value: object) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0][key] = value
    with pytest.raises(ConfigError) as refused:
        load_config(write_toml(tmp_path / "c.toml", data))
    message = str(refused.value)
    assert key in message and str(value) in message and "Traceback" not in message, message


def test_the_streamed_figures_are_reconciled_every_twenty_minutes_unless_configured(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    assert load_config(write_toml(tmp_path / "c.toml", data)).accounts[0].stream_reconcile_seconds == 1200
    data["accounts"][0]["stream_reconcile_seconds"] = 600
    assert load_config(write_toml(tmp_path / "d.toml", data)).accounts[0].stream_reconcile_seconds == 600
