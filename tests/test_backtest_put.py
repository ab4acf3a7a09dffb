"""A backtest of a put hedge: through a 30 % crash the puts hold the floor, less premiums and fees; through a rally
the coins keep their upside, less the premiums. Candle files are generated here, deterministic."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.commands.main import main
from tests.helpers import SYMBOL, paper_settings_dict, write_toml

D = Decimal
START = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
HOUR = 3600


def _path(days_flat: int, days_move: int, days_after: int, start: float, end: float) -> list[float]:
    """Hourly closes: flat with a small deterministic wiggle, a steady move to `end`, then flat again."""
    prices = []
    for hour in range((days_flat + days_move + days_after) * 24):
        wiggle = 1 + 0.004 * math.sin(hour * 1.7) + 0.003 * math.sin(hour * 0.37)
        if hour < days_flat * 24:
            level = start
        elif hour < (days_flat + days_move) * 24:
            level = start * (end / start) ** ((hour - days_flat * 24) / (days_move * 24))
        else:
            level = end
        prices.append(level * wiggle)
    return prices


def _candles(path: Path, closes: list[float]) -> Path:
    rows = ["date,open,high,low,close,volume"]
    previous = closes[0]
    for i, close in enumerate(closes):
        at = datetime.fromtimestamp(START + i * HOUR, UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(f"{at},{previous:.2f},{max(previous, close):.2f},{min(previous, close):.2f},{close:.2f},1")
        previous = close
    path.write_text("\n".join(rows) + "\n")
    return path


def _config(tmp_path: Path) -> Path:
    data = paper_settings_dict(tmp_path)
    hedge: dict[str, Any] = {
        "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "10000", "max_premium_per_month": "20000",
    }
    data["accounts"][0]["hedges"] = [hedge]
    data["accounts"][0]["paper"]["spot"] = {"BTC": "2", "USDT": "10000"}
    data["accounts"][0]["paper"]["futures"] = {}
    return write_toml(tmp_path / "hedgebot.toml", data)


def _backtest(tmp_path: Path, closes: list[float]) -> dict[str, Any]:
    prices = _candles(tmp_path / "prices.csv", closes)
    out = tmp_path / "out"
    code = main(["backtest", "--config", str(_config(tmp_path)), "--hedge", "btc-put", "--prices", str(prices),
                 "--out", str(out), "--no-chart"])
    assert code == 0
    return json.loads((out / "summary.json").read_text())


def test_a_30_percent_crash_with_puts_at_floor_085_ends_at_or_above_the_floor_less_premiums_and_fees(tmp_path) -> None:
    summary = _backtest(tmp_path, _path(10, 5, 5, 50000.0, 35000.0))
    hedged, unhedged = D(summary["hedged_value"]), D(summary["unhedged_value"])
    premium, fees = D(summary["premium_paid"]), D(summary["option_fees"])
    floor = D("0.85") * D(summary["price_first"]) * 2 + 10000
    assert premium > 0 and fees > 0 and D(summary["puts_held"]) == 2
    assert hedged >= floor - premium - fees, summary
    assert unhedged < floor - premium - fees  # the crash went through the floor: without the puts the value fell below
    assert hedged > unhedged + D(2) * (D("42500") - D("35000")) * D("0.8")


def test_a_rally_keeps_the_upside_less_the_premiums(tmp_path) -> None:
    summary = _backtest(tmp_path, _path(10, 5, 5, 50000.0, 65000.0))
    hedged, unhedged = D(summary["hedged_value"]), D(summary["unhedged_value"])
    premium, fees = D(summary["premium_paid"]), D(summary["option_fees"])
    assert hedged >= unhedged - premium - fees
    assert hedged > D(summary["start_value"]) + D(2) * (D(65000) - D(50000)) * D("0.9") - premium - fees
    assert "a model" in summary["volatility_model"]


def test_a_put_backtest_refuses_options_it_does_not_support_yet_and_runs_nothing(tmp_path, capsys) -> None:
    prices = _candles(tmp_path / "prices.csv", _path(2, 1, 1, 50000.0, 45000.0))
    out = tmp_path / "out"
    code = main(["backtest", "--config", str(_config(tmp_path)), "--hedge", "btc-put", "--prices", str(prices),
                 "--out", str(out), "--no-chart", "--compare", "interval:60m"])
    assert code == 2 and "--compare: not supported for a put hedge" in capsys.readouterr().err
    assert not (out / "summary.json").exists()


def test_a_put_backtest_writes_its_trades_and_equity_files_as_other_backtests_do(tmp_path) -> None:
    import csv

    summary = _backtest(tmp_path, _path(10, 5, 5, 50000.0, 35000.0))
    out = tmp_path / "out"
    with (out / "equity.csv").open() as handle:
        equity = list(csv.DictReader(handle))
    with (out / "trades.csv").open() as handle:
        trades = list(csv.DictReader(handle))
    assert len(equity) == summary["candles"] and equity[0]["time"].endswith("Z")
    assert D(equity[-1]["hedged_value"]) == D(summary["hedged_value"]) and D(equity[-1]["unhedged_value"]) == D(summary["unhedged_value"])
    assert D(equity[-1]["premium_paid"]) == D(summary["premium_paid"]) + D(summary["option_fees"])
    assert list(trades[0]) == ["time", "kind", "symbol_or_asset", "side", "amount", "price", "fee", "quote_amount", "detail"]
    orders = [t for t in trades if t["kind"] == "option_order"]
    assert len(orders) == summary["orders"] and orders[0]["side"] == "buy" and orders[0]["symbol_or_asset"].startswith("BTC-")
    bought = sum(D(t["amount"]) * D(t["price"]) for t in orders if t["side"] == "buy")
    assert abs(bought - D(summary["premium_paid"])) < D("0.01")
