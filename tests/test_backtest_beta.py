"""`hedgebot backtest` of a beta hedge: one price file per asset, and summary.json reports the beta, the correlation,
the out-of-sample variance reduction and the one-for-one dollar hedge's over the same data (synthetic files: no
ETH history ships with the project)."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

from hedgebot.commands.main import main
from tests.helpers import paper_settings_dict, write_toml

START = 1_609_459_200  # 2021-01-01 00:00 UTC


def _pair(tmp_path: Path, n: int, beta: float, seed: int = 3, noise: float = 0.006, btc_wick: tuple[int, float] | None = None) -> tuple[Path, Path]:
    """Write hourly BTC and ETH candles whose returns hold `beta` (ETH on BTC), as freqtrade CSV.

    `btc_wick` (candle, factor): that BTC candle's high is its close times the factor, its close unchanged.
    """
    rng = random.Random(seed)
    btc, eth = 30_000.0, 700.0
    rows_btc, rows_eth = [], []
    for k in range(n):
        t = START + k * 3600
        move = rng.gauss(0, 0.01)
        new_btc = btc * math.exp(move)
        new_eth = eth * math.exp(beta * move + rng.gauss(0, noise))
        rows_btc.append((t, btc, new_btc))
        rows_eth.append((t, eth, new_eth))
        btc, eth = new_btc, new_eth
    paths = []
    for name, rows in (("btc", rows_btc), ("eth", rows_eth)):
        path = tmp_path / f"{name}.csv"
        with path.open("w") as f:
            f.write("date,open,high,low,close,volume\n")
            for k, (t, o, c) in enumerate(rows):
                high = max(o, c) * (btc_wick[1] if name == "btc" and btc_wick is not None and btc_wick[0] == k else 1.0)
                f.write(f"{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ},{o:.4f},{high:.4f},{min(o, c):.4f},{c:.4f},1.0\n")
        paths.append(path)
    return paths[0], paths[1]


def _config(tmp_path: Path, **hedge: object) -> Path:
    fields = {"name": "eth-by-btc", "asset": "ETH", "ratio": "beta", "beta_half_life": 72, "beta_min_observations": 48, **hedge}
    data = paper_settings_dict(tmp_path, tick_seconds=60, **fields)
    data["accounts"][0]["paper"]["spot"] = {"ETH": "100", "USDT": "10000"}
    data["accounts"][0]["paper"]["markets"].append(
        {"symbol": "ETH/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "700", "step_seconds": 1, "volatility": 0.5, "seed": 4}}
    )
    return write_toml(tmp_path / "hedgebot.toml", data)


def _backtest(tmp_path: Path, *prices: str, more: tuple[str, ...] = ()) -> int:
    args = ["backtest", "--config", str(_config(tmp_path)), "--hedge", "eth-by-btc", "--out", str(tmp_path / "out"), *more]
    for given in prices:
        args += ["--prices", given]
    return main(args)


def test_eth_hedged_by_btc_reports_its_beta_and_out_of_sample_variance_reduction_beside_the_dollar_hedges(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    btc, eth = _pair(tmp_path, 2_000, beta=0.7)
    assert _backtest(tmp_path, f"ETH={eth}", f"BTC={btc}") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    for field in ("beta", "correlation", "hedge_effectiveness", "dollar_hedge_effectiveness"):
        assert summary[field] is not None, field
    assert abs(float(summary["beta"]) - 0.7) <= 0.05
    assert float(summary["correlation"]) > 0.6
    # The most a hedge can remove here is R² = 0.576 (beta 0.7, 1 % moves, 0.6 % noise); one for one removes less.
    assert float(summary["hedge_effectiveness"]) > 0.5
    assert float(summary["hedge_effectiveness"]) >= float(summary["dollar_hedge_effectiveness"]) + 0.05
    assert summary["periods"] == 2_000 and summary["holding"] == "ETH" and summary["instrument"] == "BTC/USDT:USDT"
    keeper = summary["keeper"]  # the real keeper on a paper venue, one tick an hour
    assert keeper["orders"] > 0 and keeper["liquidations"] == 0 and float(keeper["final_short"]) > 0
    assert float(keeper["hedged_value_volatility"]) < 0.8 * float(keeper["unhedged_value_volatility"])
    assert "hedge_effectiveness" in capsys.readouterr().out


def test_a_beta_hedge_with_one_price_file_is_told_to_give_one_per_asset(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    btc, _ = _pair(tmp_path, 100, beta=0.7)
    assert _backtest(tmp_path, str(btc)) == 2
    assert "give one price file per asset, --prices ETH=FILE --prices BTC=FILE" in capsys.readouterr().err


def test_price_files_that_miss_an_asset_name_another_or_mix_the_forms_are_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    btc, eth = _pair(tmp_path, 100, beta=0.7)
    assert _backtest(tmp_path, f"BTC={btc}") == 2
    assert "--prices: no file for ETH" in capsys.readouterr().err
    assert _backtest(tmp_path, f"ETH={eth}", f"BTC={btc}", f"SOL={btc}") == 2
    assert "hedge 'eth-by-btc' neither holds nor trades SOL" in capsys.readouterr().err
    assert _backtest(tmp_path, f"ETH={eth}", str(btc)) == 2
    assert "give one FILE, or one ASSET=FILE per asset" in capsys.readouterr().err
    assert _backtest(tmp_path, f"ETH={eth}", f"eth={btc}") == 2
    assert "ETH given more than once" in capsys.readouterr().err


def test_a_single_price_file_still_replays_a_fixed_ratio_hedge_and_so_does_its_asset_named_form(tmp_path: Path) -> None:
    btc, _ = _pair(tmp_path, 300, beta=0.7)
    data = paper_settings_dict(tmp_path, tick_seconds=60)
    data["accounts"][0]["paper"]["spot"] = {"BTC": "2", "USDT": "200000"}
    config = write_toml(tmp_path / "plain.toml", data)
    for n, given in enumerate((str(btc), f"BTC={btc}")):
        out = tmp_path / f"out{n}"
        assert main(["backtest", "--config", str(config), "--hedge", "btc-core", "--prices", given, "--out", str(out), "--no-chart"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["bars"] == 300 and "beta" not in summary


def test_a_beta_hedges_backtest_runs_the_engine_of_every_hedge_and_writes_its_equity_trades_and_alerts(tmp_path: Path) -> None:
    btc, eth = _pair(tmp_path, 400, beta=0.7)
    assert _backtest(tmp_path, f"ETH={eth}", f"BTC={btc}", more=("--no-chart",)) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    # Every figure of any hedge's backtest, beside the beta's.
    for field in ("bars", "hedged_value_start", "hedged_value_end", "unhedged_value_end", "hedge_value_volatility",
                  "min_liquidation_distance", "time_outside_band_ratio", "keeper_wakes", "fees_quote", "funding_quote",
                  "beta", "correlation", "hedge_effectiveness", "dollar_hedge_effectiveness"):
        assert summary.get(field) is not None, field
    assert summary["bars"] == 400
    # The account's value counts the 100 ETH at ETH's price, not at BTC's or as dollars: 100 x 700 + 10,000 + 100,000.
    assert float(summary["hedged_value_start"]) == 180_000.0
    equity = (out / "equity.csv").read_text().splitlines()
    assert len(equity) == 401
    trades = (out / "trades.csv").read_text()
    assert "BTC/USDT:USDT,sell short" in trades and "ETH/USDT:USDT" not in trades  # the holding's market is only priced
    assert (out / "alerts.csv").exists()


def test_a_wick_inside_a_candle_liquidates_a_beta_hedges_short_in_its_backtest_though_no_close_comes_near(tmp_path: Path) -> None:
    btc, eth = _pair(tmp_path, 400, beta=0.7, btc_wick=(300, 2.0))  # BTC trades at twice its close for a moment
    assert _backtest(tmp_path, f"ETH={eth}", f"BTC={btc}", more=("--no-chart",)) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["liquidations"] >= 1 and summary["keeper"]["liquidations"] >= 1
    assert "liquidation" in (tmp_path / "out" / "trades.csv").read_text()
    assert summary["critical_alerts"] >= 1  # the same critical `liquidated` alert as the daemon raises


def test_a_beta_hedges_backtest_compares_with_a_fixed_interval_and_takes_changes_of_the_holding(tmp_path: Path) -> None:
    btc, eth = _pair(tmp_path, 300, beta=0.7)
    changes = tmp_path / "changes.csv"
    changes.write_text("time,asset,amount\n2021-01-08T00:00:00Z,ETH,50\n")
    more = ("--no-chart", "--compare", "interval:4h", "--spot-changes", str(changes))
    assert _backtest(tmp_path, f"ETH={eth}", f"BTC={btc}", more=more) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["comparison"]["interval:240m"]["orders"] > 0  # the same engine, trading every 4 h instead
    trades = (tmp_path / "out" / "trades.csv").read_text()
    assert "spot_change,ETH,in,50" in trades
    # 150 ETH are hedged after the change: the short grows by about half (beta x 50 ETH's worth in BTC).
    short = float(summary["keeper"]["final_short"])
    assert short > 0
    rows = [line.split(",") for line in (tmp_path / "out" / "equity.csv").read_text().splitlines()[1:]]
    header = (tmp_path / "out" / "equity.csv").read_text().splitlines()[0].split(",")
    exposure = header.index("exposure")
    before = float(rows[160][exposure])  # 2021-01-07 16:00: before the change
    after = float(rows[200][exposure])
    assert after > before * 1.3


def test_each_combination_of_a_sweep_of_a_beta_hedge_gives_what_its_own_backtest_gives(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    btc, eth = _pair(tmp_path, 300, beta=0.7)
    prices = ["--prices", f"ETH={eth}", "--prices", f"BTC={btc}"]
    sweep = ["backtest", "--config", str(_config(tmp_path)), "--hedge", "eth-by-btc", "--no-chart", *prices,
             "--sweep", "band=0.02,0.1", "--workers", "1", "--out", str(tmp_path / "sweep")]
    assert main(sweep) == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["rows"]
    assert [r["band"] for r in rows] == ["0.02", "0.1"]
    alone = ["backtest", "--config", str(_config(tmp_path, band="0.1")), "--hedge", "eth-by-btc", "--no-chart", *prices,
             "--out", str(tmp_path / "alone")]
    assert main(alone) == 0
    summary = json.loads((tmp_path / "alone" / "summary.json").read_text())
    for figure in ("orders", "fees_quote", "hedge_value_volatility", "min_liquidation_distance", "liquidations"):
        assert rows[1][figure] == summary[figure], figure
    assert rows[0]["orders"] > rows[1]["orders"]  # a narrower band trades more


def test_a_basket_of_eth_and_sol_hedged_by_btc_is_backtested_with_each_holdings_prices(tmp_path: Path) -> None:
    btc, eth = _pair(tmp_path, 300, beta=0.7)
    (tmp_path / "sol").mkdir()
    _, sol = _pair(tmp_path / "sol", 300, beta=1.2)  # the same seed: the same BTC moves, SOL at 1.2 times them
    data = paper_settings_dict(tmp_path, tick_seconds=60, name="eth-by-btc", asset="ETH", ratio="beta", beta_half_life=72,
                               beta_min_observations=48, basket=[{"asset": "SOL"}])
    data["accounts"][0]["paper"]["spot"] = {"ETH": "100", "SOL": "1000", "USDT": "10000"}
    data["accounts"][0]["paper"]["futures"] = {"USDT": "1000000"}  # margin for a 3x short of the whole basket's worth
    for symbol, price in (("ETH/USDT:USDT", "700"), ("SOL/USDT:USDT", "700")):
        data["accounts"][0]["paper"]["markets"].append(
            {"symbol": symbol, "feed": {"kind": "synthetic", "start_price": price, "step_seconds": 1, "volatility": 0.5, "seed": 4}}
        )
    data["accounts"][0]["paper"]["markets"][-1] |= {  # SOL has no built-in rules: only priced, yet a market needs them
        "amount_step": "0.01", "min_amount": "0.01", "min_notional": "5", "price_step": "0.01", "taker_fee": "0.0005",
        "brackets": [{"notional_floor": "0", "notional_cap": "1000000", "maint_margin_rate": "0.01", "maint_amount": "0"}],
    }
    config = write_toml(tmp_path / "basket.toml", data)
    args = ["backtest", "--config", str(config), "--hedge", "eth-by-btc", "--no-chart", "--prices", f"ETH={eth}",
            "--prices", f"BTC={btc}", "--out", str(tmp_path / "out")]
    assert main([*args[:-2], "--out", str(tmp_path / "refused")]) == 2  # SOL's prices are needed too
    assert main([*args, "--prices", f"SOL={sol}"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # 100 ETH and 1000 SOL, each at 700, and 1,010,000 of stablecoin: the account is valued at each holding's price.
    assert float(summary["hedged_value_start"]) == 1_780_000.0
    assert [b["holding"] for b in summary["basket"]] == ["SOL"] and abs(float(summary["basket"][0]["beta"]) - 1.2) < 0.1
    # The short is the sum of each holding's beta x its worth in BTC: about (0.7 x 100 + 1.2 x 1000) x 700 / BTC.
    eth_close, sol_close, btc_close = (float(p.read_text().splitlines()[-1].split(",")[4]) for p in (eth, sol, btc))
    expected = (0.7 * 100 * eth_close + 1.2 * 1000 * sol_close) / btc_close
    assert abs(float(summary["keeper"]["final_short"]) - expected) <= 0.12 * expected
    assert float(summary["hedge_value_volatility"]) < 0.75 * float(summary["unhedged_value_volatility"])  # 48 h unhedged warm-up
