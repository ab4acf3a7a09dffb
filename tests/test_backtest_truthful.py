"""A backtest's outputs never mislead: alerts.csv, liquidations as alerts, paused hedges, input ranges, the headline, the chart."""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from pathlib import Path

from hedgebot.backtest import run_backtest
from hedgebot.commands.main import main
from hedgebot.clock import run_simulated
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import ConstantFunding
from tests.helpers import btc_market, hedge_config, paper_settings_dict, write_toml
from tests.test_backtest_command import START, _freqtrade, _path

D = Decimal


def _rally(hours: int = 120, step: float = 1.02) -> list[tuple[int, float, float, float, float]]:
    rows, price, t = [], 30000.0, START
    for _ in range(hours):  # a steady rally: with no guard the short is liquidated on the way up
        close = price * step
        rows.append((t, price, close * 1.001, price * 0.999, close))
        price, t = close, t + 3600
    return rows


def _backtest(tmp_path: Path, prices: Path, *extra: str, spot: dict | None = None, futures: dict | None = None,
              **hedge: object) -> int:
    data = paper_settings_dict(tmp_path, tick_seconds=60, **hedge)
    data["accounts"][0]["paper"]["spot"] = spot or {"BTC": "2", "USDT": "200000"}
    if futures is not None:
        data["accounts"][0]["paper"]["futures"] = futures
    config = write_toml(tmp_path / "hedgebot.toml", data)
    return main(["backtest", "--config", str(config), "--hedge", "btc-core", "--prices", str(prices),
                 "--out", str(tmp_path / "out"), *extra])


def test_a_liquidation_raises_the_critical_liquidated_alert_and_alerts_csv_says_when_each_alert_came(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _rally())
    assert _backtest(tmp_path, prices, "--no-chart", margin_guard={"enabled": False}) == 0
    out = tmp_path / "out"
    alerts = list(csv.DictReader((out / "alerts.csv").open()))
    trades = list(csv.DictReader((out / "trades.csv").open()))
    liquidations = [t for t in trades if t["kind"] == "liquidation"]
    assert liquidations
    liquidated = [a for a in alerts if a["code"] == "liquidated"]
    assert liquidated and all(a["severity"] == "critical" for a in liquidated)
    assert liquidated[0]["raised_at"] == liquidations[0]["time"]
    # How long was I warned before the liquidation? The distance warning came earlier and is in the same file.
    low = [a for a in alerts if a["code"] == "liquidation_distance_low"]
    assert low and low[0]["raised_at"] < liquidated[0]["raised_at"]
    assert set(alerts[0]) == {"code", "severity", "raised_at", "resolved_at", "lasted_seconds", "message", "resolved_message"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["critical_alerts"] >= len(liquidated)


def test_a_paused_hedge_has_no_drift_no_band_left_and_no_time_outside_the_band() -> None:
    candles = [Candle(float(t), D(f"{o:.2f}"), D(f"{max(o, c, h):.2f}"), D(f"{min(o, c, lo):.2f}"), D(f"{c:.2f}"))
               for t, o, h, lo, c in _path(200, 3600)]
    hedge = hedge_config(state="halted", tick_seconds=600)
    result = run_simulated(run_backtest(candles, btc_market(), ConstantFunding(D("0.0001")), hedge,
                                        {"BTC": D("2")}, {"USDT": D("100000")}))
    assert result.final_short == 0
    assert result.metrics["time_outside_band_ratio"] == 0
    assert result.metrics["max_abs_drift_ratio"] == 0
    assert set(result.equity["drift_ratio"]) == {0.0}
    assert "band_left" not in result.events
    assert result.critical_alerts == 0


def test_a_hedge_that_never_reaches_its_target_says_so_at_the_top_of_the_summary(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(100, 3600))
    # 2 BTC at 30,000 hedged at 3x needs 20,000 of margin; the account has 3,000 and no stablecoin in spot.
    assert _backtest(tmp_path, prices, "--no-chart", spot={"BTC": "2"}, futures={"USDT": "3000"}) == 0
    out = capsys.readouterr().out
    first = out.lstrip().splitlines()[0]
    assert first.startswith("WARNING: the hedge NEVER reached its target"), out
    assert "under-hedged for the whole run (4.2 days, 100.00% of the time)" in first
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert next(iter(summary)) == "warning"
    assert summary["target_reached"] is False and summary["time_under_hedged_ratio"] == 1.0


def test_a_hedge_that_reaches_its_target_has_no_warning(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(100, 3600))
    assert _backtest(tmp_path, prices, "--no-chart") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "warning" not in summary and summary["target_reached"] is True
    assert "WARNING" not in capsys.readouterr().out


def test_from_after_to_says_so(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(100, 3600))
    assert _backtest(tmp_path, prices, "--from", "2021-01-03", "--to", "2021-01-02") == 2
    err = capsys.readouterr().err
    assert "--from 2021-01-03T00:00:00Z is after --to 2021-01-02T00:00:00Z" in err, err


def test_a_range_outside_the_price_file_names_the_files_coverage(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(100, 3600))
    assert _backtest(tmp_path, prices, "--from", "2022-01-01", "--to", "2022-02-01") == 2
    err = capsys.readouterr().err
    assert "the file covers 2021-01-01T00:00:00Z to 2021-01-05T03:00:00Z" in err, err


def test_a_funding_file_with_a_hole_inside_the_candles_is_warned_about(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(24 * 10, 3600))
    funding = tmp_path / "funding.csv"
    hours = [8 * i for i in range(31) if not 9 <= i <= 14]  # no rows from day 3 to day 5
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n" + "".join(
        f"{(START + 3600 * h) * 1000 + 3},8,0.0001\n" for h in hours))
    assert _backtest(tmp_path, prices, "--funding", str(funding), "--no-chart") == 0
    err = capsys.readouterr().err
    assert "has 1 hole inside the candles' range, the longest 2021-01-03T16:00:00Z to 2021-01-06T00:00:00Z (56.0 h)" in err, err


def test_the_chart_marks_liquidations_top_ups_and_spot_sales_shades_gaps_and_draws_the_compare_lane(tmp_path) -> None:
    from hedgebot.commands.backtest.chart import _thin, draw_chart, marks

    rows = _rally(hours=200, step=1.01)
    rows = rows[:80] + [(t + 6 * 3600, o, h, lo, c) for t, o, h, lo, c in rows[80:]]  # a 6 h hole in the data
    candles = [Candle(float(t), D(f"{o:.2f}"), D(f"{h:.2f}"), D(f"{lo:.2f}"), D(f"{c:.2f}")) for t, o, h, lo, c in rows]
    market, funding = btc_market(), ConstantFunding(D("0.0001"))
    selling = hedge_config(tick_seconds=3600, margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    result = run_simulated(run_backtest(candles, market, funding, selling, {"BTC": D("2")}, {"USDT": D("25000")}))
    unguarded = hedge_config(tick_seconds=3600, margin_guard={"enabled": False})
    liquidated = run_simulated(run_backtest(candles, market, funding, unguarded, {"BTC": D("2")}, {"USDT": D("25000")}))
    assert result.gaps and marks(result)["topup"] and marks(result)["spot sale"] and marks(liquidated)["liquidation"]

    fig = draw_chart(result, selling, "t", compare=("interval:4h", liquidated))
    price_axis = fig.axes[0]
    labels = price_axis.get_legend_handles_labels()[1]
    assert any(label.startswith("topup (") for label in labels) and any(label.startswith("spot sale (") for label in labels)
    assert any("interval:4h" in line.get_label() for ax in fig.axes for line in ax.get_lines())
    assert len(price_axis.patches) == len(result.gaps)  # each gap shaded
    fig = draw_chart(liquidated, unguarded, "t")
    assert any(label.startswith("liquidation (") for label in fig.axes[0].get_legend_handles_labels()[1])
    # No line is drawn across a gap: the series breaks there.
    _, ys = _thin(result.equity["time"], result.equity["price"], result.gaps)
    assert sum(1 for y in ys if math.isnan(y)) == len(result.gaps)


def test_every_figure_of_a_backtest_is_at_its_kinds_precision_with_no_exponent(tmp_path, capsys) -> None:
    import re

    prices = _freqtrade(tmp_path / "btc.csv", _path(24 * 10, 3600))
    funding = tmp_path / "funding.csv"
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n" + "".join(
        f"{(START + 8 * 3600 * i) * 1000 + 3},8,0.000123456\n" for i in range(31)))
    assert _backtest(tmp_path, prices, "--funding", str(funding), "--no-chart") == 0
    printed = capsys.readouterr().out
    out = tmp_path / "out"
    numbers = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
    places = lambda cell: len(cell.split(".")[1]) if "." in cell else 0  # noqa: E731
    trades = list(csv.DictReader((out / "trades.csv").open()))
    equity = list(csv.DictReader((out / "equity.csv").open()))
    for row in trades:
        for column in ("amount", "price", "fee", "quote_amount"):
            assert "e" not in row[column].lower(), row
        assert places(row["fee"]) == places(row["quote_amount"]) == 2, row  # money to the cent
        assert row["price"] == "" or places(row["price"]) <= 2, row  # BTCUSDT's price step
        if row["kind"] == "order":
            assert places(row["amount"]) == 3, row  # the amount step
    for row in equity:
        assert places(row["hedged_value"]) == 2 and places(row["drift_ratio"]) == 4 and places(row["exposure"]) == 3, row
    summary = json.loads((out / "summary.json").read_text())
    for key in ("fees_quote", "funding_quote", "hedged_value_end"):
        assert round(summary[key], 2) == summary[key], key
    for key in ("hedge_value_volatility", "time_outside_band_ratio", "min_liquidation_distance"):
        assert round(summary[key], 4) == summary[key], key
    # What trades.csv shows adds up to what the summary says.
    assert sum(Decimal(r["quote_amount"]) for r in trades if r["kind"] == "funding") == Decimal(str(summary["funding_quote"]))
    for token in numbers.findall(printed + (out / "summary.json").read_text()):
        assert "e" not in token.lower() and places(token) <= 4, token
