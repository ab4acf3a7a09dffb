"""What a user sees of a hedge: liquidations, and `status --json` figures a person can read."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.config import load_config
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from tests.helpers import D, SYMBOL, paper_settings_dict, write_toml

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _config(tmp_path, futures: str = "40000", **hedge) -> str:
    data = paper_settings_dict(tmp_path, **hedge)
    paper = data["accounts"][0]["paper"]
    paper["spot"] = {"BTC": "2"}
    paper["futures"] = {"USDT": futures}
    paper["markets"][0]["feed"]["volatility"] = 0.0  # a flat price: only the test moves it
    return str(write_toml(tmp_path / "hedgebot.toml", data))


async def test_a_liquidation_shows_as_liquidated_with_time_price_and_margin_lost_until_the_hedge_is_whole(tmp_path, capsys) -> None:
    path = _config(tmp_path, margin_guard={"enabled": False})
    clock = SimClock()
    daemon = Daemon(load_config(Path(path)), clock)
    await daemon.start()
    try:
        await clock.advance(3)
        venue = daemon.accounts[0].venue
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
        mark = venue.marks[SYMBOL][0]
        venue.update_price(SYMBOL, clock.now(), mark, high=mark * 2)  # a wick through the liquidation price
        await clock.advance(3)
        daemon.write_status()
        hedge = json.loads((tmp_path / "state" / "status.json").read_text())["hedges"][0]
        assert hedge["state"] == "liquidated", hedge
        assert ISO_UTC.match(hedge["liquidated_at"]) and D(hedge["liquidated_price"]) > mark
        assert D(hedge["margin_lost"]) > D("30000")
        critical = [e for e in daemon.journal.events(kind="alert") if e.detail["code"] == "liquidated"]
        assert [e.severity for e in critical] == ["critical"]
        # The hedge stays `liquidated` while it is not whole, then clears once it is.
        await clock.advance(30)
        assert daemon.keepers[0].status.state == "liquidated"
        venue.deposit(Wallet.FUTURES, "USDT", D("100000"))
        daemon.keepers[0].notify_balance()
        await clock.advance(3)
        assert daemon.keepers[0].status.state == "hedged"
        assert "liquidated" in [e.detail["code"] for e in daemon.journal.events(kind="alert_resolved")]
    finally:
        await daemon.stop()
    capsys.readouterr()
    assert main(["history", "--config", path, "--hedge", "btc-core"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if " liquidation " in line)
    assert "critical" in line and "margin_lost=" in line and "price=" in line


async def test_status_json_shows_amounts_and_prices_at_market_precision_ratios_at_4_places_and_iso_times(tmp_path, capsys) -> None:
    path = _config(tmp_path, futures="100000")
    clock = SimClock()
    daemon = Daemon(load_config(Path(path)), clock)
    await daemon.start()
    try:
        await clock.advance(3)
    finally:
        await daemon.stop()
    capsys.readouterr()
    assert main(["status", "--config", path, "--json"]) == 0
    hedge = json.loads(capsys.readouterr().out)[0]
    for name in ("exposure", "short", "target", "drift"):  # BTC amounts: step 0.001
        assert re.fullmatch(r"-?\d+\.\d{3}", hedge[name]), (name, hedge[name])
    for name in ("mark", "liquidation_price"):  # BTCUSDT prices: tick 0.10
        assert re.fullmatch(r"\d+\.\d", hedge[name]), (name, hedge[name])
    for name in ("ratio", "target_ratio", "distance"):
        assert re.fullmatch(r"-?\d+\.\d{4}", hedge[name]), (name, hedge[name])
    assert ISO_UTC.match(hedge["updated_at"]), hedge["updated_at"]
