"""`hedgebot backtest` of a cheapest hedge: summary.json and the printed summary say which contract was chosen,
when, and what it was compared with."""

from __future__ import annotations

import json
from pathlib import Path

from hedgebot.commands.main import main
from tests.helpers import paper_settings_dict, write_toml
from tests.test_backtest_command import _freqtrade, _path


def test_a_cheapest_backtest_reports_its_instrument_and_each_choice(tmp_path: Path, capsys) -> None:
    data = paper_settings_dict(tmp_path, instrument="cheapest", tick_seconds=60, max_order="0.5")
    data["accounts"][0]["paper"]["spot"] = {"BTC": "2", "USDT": "200000"}
    market = data["accounts"][0]["paper"]["markets"][0]
    # Funding of 0.01 % per 8 h (10.95 % a year) against a 20 % basis: the quarterly, at opening and at March's window.
    market.update(quarterlies=True, quarterly_basis="0.20", funding={"rate": "0.0001", "interval_hours": 8})
    config = write_toml(tmp_path / "hedgebot.toml", data)
    prices = _freqtrade(tmp_path / "btc.csv", _path(24 * 100, 3600))  # 2021-01-01 to 2021-04-11: March's delivery
    code = main(["backtest", "--config", str(config), "--hedge", "btc-core", "--prices", str(prices),
                 "--out", str(tmp_path / "out"), "--no-chart"])
    out = capsys.readouterr().out
    assert code == 0, out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["instrument"] == "cheapest"
    choices = summary["instrument_choices"]
    assert [(c["when"], c["contract"]) for c in choices] == [
        ("opening", "BTC/USDT:USDT-210326"), ("roll window", "BTC/USDT:USDT-210625"),
    ], choices
    assert set(choices[0]["carries"]) == {"BTC/USDT:USDT", "BTC/USDT:USDT-210326"}
    assert summary["rolls"] == 1
    assert "opening: BTC/USDT:USDT-210326 (BTC/USDT:USDT 10.95%" in out, out
