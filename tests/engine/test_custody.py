"""Coins held elsewhere, counted in a custody file: what the file may say, and what a stale or unreadable count may do.

A stale count may not grow the hedge (a critical alert says so) but never stops a reduction or a
margin top-up; a count never read holds the leg both ways.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hedgebot.engine.custody import CustodyFileError, read_custody_file
from tests.helpers import D, hedge_config, make_rig

NOW = 1_600_000_000.0


def write_count(path: Path, amount: str, at: float) -> Path:
    path.write_text(json.dumps({"at": at, "holdings": {"BTC": amount, "ETH": "30"}}))
    return path


def test_a_json_or_csv_count_gives_the_assets_amount_and_when_it_was_counted(tmp_path: Path) -> None:
    count = read_custody_file(write_count(tmp_path / "c.json", "12.5", NOW - 60), "BTC", NOW)
    assert (count.amount, count.at) == (D("12.5"), NOW - 60)
    csv_file = tmp_path / "c.csv"
    csv_file.write_text("asset,amount,at\nBTC,3,2020-09-13T12:00:00Z\nETH,9,2020-09-13T12:20:00Z\nBTC,4.25,2020-09-13T12:10:00Z\n")
    latest = read_custody_file(csv_file, "BTC", NOW)
    assert latest.amount == D("4.25") and latest.at == 1_599_999_000.0  # the latest row of the asset counts


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ('{"at": 1599999000, "holdings": {"BTC": "lots"}}', "holdings.BTC 'lots' is not a number"),
        ('{"at": 1599999000, "holdings": {"BTC": "-1"}}', "holdings.BTC '-1' is not an amount of coins"),
        ('{"holdings": {"BTC": "1"}}', "at is missing"),
        ('{"at": "yesterday", "holdings": {"BTC": "1"}}', "at 'yesterday' is not an ISO 8601 time"),
        ('{"at": 1700000000, "holdings": {"BTC": "1"}}', "ahead of this machine's clock"),
        ('{"at": 1599999000, "holdings": {"ETH": "1"}}', "holdings has no BTC (it lists ETH)"),
        ('{"at": 1599999000, "holdings": {"BTC": "1"}', "is not valid JSON"),
        ("asset,amount\nBTC,1\n", "the CSV header lacks at"),
        ("asset,amount,at\nETH,1,1599999000\n", "no row for BTC"),
    ],
)
def test_a_custody_file_that_is_not_a_count_is_refused_naming_the_field_and_value(tmp_path: Path, content: str, said: str) -> None:
    path = tmp_path / "custody"
    path.write_text(content)
    with pytest.raises(CustodyFileError) as caught:
        read_custody_file(path, "BTC", NOW)
    assert said in str(caught.value) and str(path) in str(caught.value)


def test_a_missing_custody_file_is_refused_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(CustodyFileError, match="custody file .*nothing-here.json"):
        read_custody_file(tmp_path / "nothing-here.json", "BTC", NOW)


def custody_hedge(path: Path, max_age: float = 3600.0):
    return hedge_config(exposure={"file": path, "file_max_age_seconds": max_age})


async def test_the_coins_a_fresh_custody_file_counts_are_hedged_beside_the_spot_coins(tmp_path: Path) -> None:
    path = write_count(tmp_path / "custody.json", "3", NOW - 60)
    rig = await make_rig(custody_hedge(path), spot={"BTC": "1"})
    await rig.keeper.tick()
    assert await rig.short() == D("4")
    status = rig.keeper.status.to_json()
    assert (status["exposure_spot"], status["exposure_elsewhere"]) == ("1.000", "3.000")
    orders = [i for i in rig.journal.intents() if i.kind == "order"]
    assert orders and orders[0].detail["exposure_elsewhere"] == "3"  # the count each action was sized on is journaled


async def test_a_stale_custody_count_holds_growth_with_a_critical_alert_but_a_margin_top_up_still_goes_out(tmp_path: Path) -> None:
    path = write_count(tmp_path / "custody.json", "3", NOW)
    rig = await make_rig(custody_hedge(path, max_age=3600), spot={"BTC": "1", "USDT": "600000"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    assert await rig.short() == D("4")
    write_count(path, "5", NOW - 3000)  # more coins, but counted over an hour before the keeper looks
    for price in ("60000", "66000", "70000"):  # a rally the margin guard must answer
        await rig.set_price(price, high=price, advance=1800)
        await rig.keeper.tick()
    assert await rig.short() == D("4"), "the hedge grew on a stale count"
    assert "exposure_stale" in rig.keeper.alerts.active and rig.keeper.alerts.active["exposure_stale"].severity.value == "critical"
    assert "custody.json is 2h20m old (limit 60m)" in rig.keeper.alerts.active["exposure_stale"].message
    assert "under_hedged" in rig.keeper.alerts.active  # never a silent under-hedge
    assert [i for i in rig.journal.intents() if i.kind == "margin" and i.status.value == "done"], "no top-up went out"
    write_count(path, "5", rig.clock.now())  # a fresh count: the hedge grows to it (its margin funded on the way)
    for _ in range(3):
        await rig.set_price("70000", advance=10)
        await rig.keeper.tick()
    assert await rig.short() == D("6") and "exposure_stale" not in rig.keeper.alerts.active


async def test_a_stale_custody_count_still_lets_the_short_be_reduced_when_spot_coins_leave(tmp_path: Path) -> None:
    path = write_count(tmp_path / "custody.json", "3", NOW)
    rig = await make_rig(custody_hedge(path, max_age=600), spot={"BTC": "2"})
    await rig.keeper.tick()
    assert await rig.short() == D("5")
    rig.venue.spot["BTC"] = D("1")  # a coin sold from the account while the custody count is old
    await rig.set_price("50000", advance=3600)
    await rig.keeper.tick()
    assert await rig.short() == D("4")


async def test_a_custody_file_never_read_holds_the_leg_both_ways_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "custody.json"
    path.write_text("not a count")
    rig = await make_rig(custody_hedge(path), spot={"BTC": "2"})
    await rig.keeper.tick()
    assert await rig.short() == D("0")
    alert = rig.keeper.alerts.active["exposure_unknown"]
    assert alert.severity.value == "critical" and "custody.json" in alert.message and "is not valid JSON" in alert.message
    assert rig.keeper.status.exposure is None and rig.keeper.status.target is None  # not known: never shown as over-hedged
    write_count(path, "1", rig.clock.now())
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert await rig.short() == D("3") and "exposure_unknown" not in rig.keeper.alerts.active


def test_check_says_what_the_custody_file_counts_or_why_it_cannot_be_read_without_failing(tmp_path: Path, capsys) -> None:
    import time

    from hedgebot.commands.main import main
    from tests.helpers import paper_settings_dict, write_toml

    path = write_count(tmp_path / "custody.json", "3", time.time() - 120)
    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path, exposure={"file": str(path)}))
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"exposure: spot BTC + 3 BTC in {path} (counted" in out and "2m ago)" in out
    path.write_text('{"at": 1, "holdings": {"ETH": "1"}}')
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "UNREADABLE (custody file" in out and "holdings has no BTC" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("content", "name", "amount", "at"),
    [
        ('{"at": 1599999000000, "holdings": {"BTC": "0.5"}}', "c.json", "0.5", 1_599_999_000.0),  # epoch milliseconds
        ("\ufeffasset,amount,at\nBTC,0.5,1599999000\nBTC,0.7,1599999000\nBTC,9,1599990000\n", "c.csv", "1.2", 1_599_999_000.0),
    ],
)
def test_milliseconds_a_spreadsheets_byte_order_mark_and_one_row_per_wallet_are_read_as_meant(
    tmp_path: Path, content: str, name: str, amount: str, at: float,
) -> None:
    path = tmp_path / name
    path.write_text(content)
    count = read_custody_file(path, "BTC", NOW)
    assert (count.amount, count.at) == (D(amount), at)  # the latest count's rows add up; older ones do not count


@pytest.mark.parametrize("content", ['{"at": 1e20, "holdings": {"BTC": "1"}}', "[1, 2]", ""])
def test_an_absurd_time_a_json_array_or_an_empty_file_is_refused_with_a_message_never_a_traceback(tmp_path: Path, content: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(CustodyFileError, match=str(path)):
        read_custody_file(path, "BTC", NOW)


async def test_a_custody_file_that_breaks_while_its_count_is_fresh_is_said_at_once_and_its_count_stands(tmp_path: Path) -> None:
    path = write_count(tmp_path / "custody.json", "3", NOW)
    rig = await make_rig(custody_hedge(path), spot={"BTC": "1"})
    await rig.keeper.tick()
    path.write_text("nonsense{")
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    alert = rig.keeper.alerts.active["exposure_read_failed"]
    assert alert.severity.value == "warning" and "is not valid JSON" in alert.message
    assert await rig.short() == D("4") and "exposure_stale" not in rig.keeper.alerts.active


async def test_a_holdings_source_that_hangs_does_not_hold_up_the_hedge(tmp_path: Path, monkeypatch) -> None:
    import asyncio

    from hedgebot.engine import keeper as keeper_module
    from hedgebot.engine.custody import CustodyCount

    class Hanging:
        name, max_age = "account slow", 300.0

        async def count(self, asset: str, now: float) -> CustodyCount:
            await asyncio.sleep(3600)  # a venue that never answers
            raise AssertionError("unreachable")

    monkeypatch.setattr(keeper_module, "HOLDINGS_READ_SECONDS", 0.05)
    rig = await make_rig(hedge_config(), spot={"BTC": "2"})
    rig.keeper.holdings.append(Hanging())  # type: ignore[arg-type]
    await rig.keeper.tick()
    assert "exposure_unknown" in rig.keeper.alerts.active and "did not answer" in rig.keeper.alerts.active["exposure_unknown"].message
