"""`hedgebot backtest`: inputs in three layouts, bad rows named by file and line, the report's files."""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hedgebot.commands.main import main
from hedgebot.exchange.feeds import read_candles
from tests.helpers import paper_settings_dict, write_toml

SUMMARY_FIELDS = [
    "bars", "start", "end", "liquidations", "orders", "fees_quote", "funding_quote", "topups", "margin_added_quote",
    "max_abs_drift_ratio", "time_outside_band_ratio", "min_liquidation_distance", "min_runway", "hedged_value_start",
    "hedged_value_end", "unhedged_value_end", "hedge_value_volatility", "unhedged_value_volatility",
]
START = 1_609_459_200  # 2021-01-01 00:00 UTC


def _path(n: int, step: int, seed: int = 5, gap_at: int | None = None) -> list[tuple[int, float, float, float, float]]:
    rng = random.Random(seed)
    price = 30000.0
    rows = []
    t = START
    for i in range(n):
        if gap_at is not None and i == gap_at:
            t += 6 * 3600
        close = price * math.exp(rng.gauss(0, 0.01))
        rows.append((t, price, max(price, close) * 1.002, min(price, close) * 0.998, close))
        price = close
        t += step
    return rows


def _freqtrade(path: Path, rows) -> Path:
    with path.open("w") as f:
        f.write("date,open,high,low,close,volume\n")
        for t, o, h, low, c in rows:
            f.write(f"{datetime.fromtimestamp(t, UTC):%Y-%m-%dT%H:%M:%SZ},{o:.2f},{h:.2f},{low:.2f},{c:.2f},1.0\n")
    return path


def _config(tmp_path: Path) -> Path:
    data = paper_settings_dict(tmp_path, tick_seconds=60)
    data["accounts"][0]["paper"]["spot"] = {"BTC": "2", "USDT": "200000"}
    return write_toml(tmp_path / "hedgebot.toml", data)


def _run(tmp_path: Path, prices: Path, *extra: str) -> int:
    return main(["backtest", "--config", str(_config(tmp_path)), "--hedge", "btc-core", "--prices", str(prices),
                 "--out", str(tmp_path / "out"), *extra])


def test_a_backtest_writes_the_summary_equity_trades_and_chart(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(400, 3600))
    funding = tmp_path / "funding.csv"
    funding.write_text("calc_time,funding_interval_hours,last_funding_rate\n" + "".join(
        f"{(START + 8 * 3600 * i) * 1000 + 3},8,0.0001\n" for i in range(60)))
    assert _run(tmp_path, prices, "--funding", str(funding)) == 0
    out = tmp_path / "out"
    summary = json.loads((out / "summary.json").read_text())
    assert all(name in summary for name in SUMMARY_FIELDS), [n for n in SUMMARY_FIELDS if n not in summary]
    assert summary["bars"] == 400 and summary["liquidations"] == 0 and summary["start"] == "2021-01-01T00:00:00Z"
    assert summary["funding_quote"] > 0  # the short was paid at every settlement
    # The hedge did its job: the hedged account moved far less than the coins alone.
    assert summary["hedge_value_volatility"] < summary["unhedged_value_volatility"] / 5
    equity = list(csv.DictReader((out / "equity.csv").open()))
    assert len(equity) == 400 and float(equity[-1]["hedged_value"]) == pytest.approx(summary["hedged_value_end"], rel=1e-6)
    trades = list(csv.DictReader((out / "trades.csv").open()))
    kinds = {row["kind"] for row in trades}
    assert {"order", "funding"} <= kinds
    funded = sum(float(r["quote_amount"]) for r in trades if r["kind"] == "funding")
    assert funded == pytest.approx(summary["funding_quote"], rel=1e-9)
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cryptodatadownload_newest_first_under_a_banner_reads_as_the_same_candles(tmp_path) -> None:
    rows = _path(50, 86400)
    plain = _freqtrade(tmp_path / "plain.csv", rows)
    cdd = tmp_path / "cdd.csv"
    with cdd.open("w") as f:
        f.write("https://www.CryptoDataDownload.com\n")
        f.write("unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount\n")
        for t, o, h, low, c in reversed(rows):
            f.write(f"{t * 1000},{datetime.fromtimestamp(t, UTC):%Y-%m-%d %H:%M:%S},BTCUSDT,{o:.2f},{h:.2f},{low:.2f},{c:.2f},1,1,1\n")
    assert read_candles(cdd) == read_candles(plain)


def test_binance_klines_of_one_minute_are_detected_and_replayed(tmp_path, capsys) -> None:
    path = tmp_path / "klines.csv"
    with path.open("w") as f:  # Binance public-data klines come without a header
        for t, o, h, low, c in _path(300, 60):
            f.write(f"{t * 1000},{o:.2f},{h:.2f},{low:.2f},{c:.2f},1,{t * 1000 + 59999},1,1,1,1,0\n")
    assert _run(tmp_path, path, "--no-chart") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["interval_seconds"] == 60 and summary["bars"] == 300


def test_a_gap_in_the_candles_is_reported_and_the_replay_completes(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(200, 3600, gap_at=100))
    assert _run(tmp_path, prices, "--no-chart") == 0
    assert "1 gaps in the candles, the longest 7.0 h" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["gaps"] == 1


def test_a_bad_price_row_exits_2_naming_the_file_and_line(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(20, 3600))
    lines = prices.read_text().splitlines()
    lines[7] = lines[7].replace(lines[7].split(",")[4], "abc", 1)
    prices.write_text("\n".join(lines) + "\n")
    assert _run(tmp_path, prices) == 2
    err = capsys.readouterr().err
    assert f"{prices}:8" in err and "'abc' is not a number" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_bad_spot_change_row_exits_2_naming_the_file_and_line(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(20, 3600))
    changes = tmp_path / "changes.csv"
    changes.write_text("time,asset,amount\n2021-01-01T05:00:00Z,BTC,0.5\n2021-01-01T06:00:00Z,BTC,lots\n")
    assert _run(tmp_path, prices, "--spot-changes", str(changes)) == 2
    assert f"{changes}:3: amount 'lots' is not a number" in capsys.readouterr().err


def test_funding_that_does_not_cover_the_candles_is_warned_about(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(100, 3600))
    funding = tmp_path / "funding.csv"
    funding.write_text(f"calc_time,funding_interval_hours,last_funding_rate\n{START * 1000},8,0.0001\n")
    assert _run(tmp_path, prices, "--funding", str(funding), "--no-chart") == 0
    assert "no funding is paid where it has no rows" in capsys.readouterr().err


def test_compare_runs_the_fixed_interval_policy_and_prints_one_table(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(24 * 20, 3600))
    changes = tmp_path / "changes.csv"
    changes.write_text("time,asset,amount\n" + "".join(
        f"{datetime.fromtimestamp(START + 3600 * (5 + 7 * i) + 1800, UTC):%Y-%m-%dT%H:%M:%SZ},BTC,{'0.01' if i % 2 else '0.02'}\n"
        for i in range(60)))
    assert _run(tmp_path, prices, "--spot-changes", str(changes), "--compare", "interval:4h", "--no-chart") == 0
    out = capsys.readouterr().out
    assert "band (as configured)" in out and "interval:240m" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    fixed = summary["comparison"]["interval:240m"]
    # Small inflows stay inside the 2 % band until they add up; the fixed schedule trades every one of them.
    assert summary["orders"] < fixed["orders"]
    trades = list(csv.DictReader((tmp_path / "out" / "trades.csv").open()))
    assert sum(1 for t in trades if t["kind"] == "spot_change") == 60


def _candles(n: int, step: int):
    from decimal import Decimal

    from hedgebot.exchange.feeds import Candle

    return [Candle(float(t), Decimal(f"{o:.2f}"), Decimal(f"{max(o, c, h):.2f}"), Decimal(f"{min(o, c, low):.2f}"), Decimal(f"{c:.2f}"))
            for t, o, h, low, c in _path(n, step)]


def test_hedges_side_by_side_end_as_each_would_alone_and_replays_repeat_exactly() -> None:
    from decimal import Decimal

    from hedgebot.backtest import run_backtest, run_side_by_side
    from hedgebot.clock import run_simulated
    from hedgebot.exchange.funding import ConstantFunding
    from tests.helpers import btc_market, hedge_config

    candles = _candles(600, 60)
    market, funding = btc_market(), ConstantFunding(Decimal("0.0001"))
    spot, futures = {"BTC": Decimal("3"), "USDT": Decimal("100000")}, {"USDT": Decimal("50000")}
    configs = [hedge_config(name=f"h{i}", band=Decimal(band), tick_seconds=600) for i, band in enumerate(("0.01", "0.05"))]
    together = run_simulated(run_side_by_side(candles, market, funding, [(c, dict(spot), dict(futures)) for c in configs]))
    for config, joint in zip(configs, together, strict=True):
        alone = run_simulated(run_backtest(candles, market, funding, config, dict(spot), dict(futures), record_equity=False))
        again = run_simulated(run_backtest(candles, market, funding, config, dict(spot), dict(futures), record_equity=False))
        assert alone.metrics == again.metrics and [t.time for t in alone.trades] == [t.time for t in again.trades]
        assert joint.metrics == alone.metrics


def test_in_a_flat_market_only_funding_settlements_and_the_tick_wake_the_keeper() -> None:
    from decimal import Decimal

    from hedgebot.backtest import run_backtest
    from hedgebot.clock import run_simulated
    from hedgebot.exchange.feeds import Candle
    from hedgebot.exchange.funding import ConstantFunding
    from tests.helpers import btc_market, hedge_config

    flat = [Candle(START + 60.0 * i, Decimal(30000), Decimal(30000), Decimal(30000), Decimal(30000)) for i in range(2 * 1440)]
    result = run_simulated(run_backtest(
        flat, btc_market(), ConstantFunding(Decimal("0.0001")), hedge_config(tick_seconds=3600),
        {"BTC": Decimal(1)}, {"USDT": Decimal(100000)}, record_equity=False,
    ))
    # Two days: six funding settlements (00:00, 08:00, 16:00) wake it; quiet minutes never do.
    assert result.keeper_wakes == 6
    assert sum(1 for t in result.trades if t.kind == "funding") == 6


@pytest.mark.parametrize("kind", ["file", "under-a-file", "proc"])
def test_an_out_directory_that_cannot_be_made_exits_2_naming_out_before_replaying(tmp_path, capsys, monkeypatch, kind) -> None:
    import hedgebot.commands.backtest.replay as backtest_report

    def no_replay(*args, **kwargs):
        raise AssertionError("the replay ran although --out cannot be written")

    monkeypatch.setattr(backtest_report, "run_backtest", no_replay)
    prices = _freqtrade(tmp_path / "btc.csv", _path(20, 3600))
    (tmp_path / "afile").write_text("x")
    out = {"file": tmp_path / "afile", "under-a-file": tmp_path / "afile" / "sub", "proc": Path("/proc/x/y")}[kind]
    code = main(["backtest", "--config", str(_config(tmp_path)), "--hedge", "btc-core", "--prices", str(prices),
                 "--out", str(out), "--no-chart"])
    err = capsys.readouterr().err
    assert code == 2 and f"--out: cannot create {out}" in err and "Traceback" not in err, err


def _bad_input(tmp_path: Path, capsys, prices: Path, *extra: str) -> str:
    assert _run(tmp_path, prices, "--no-chart", *extra) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not (tmp_path / "out" / "summary.json").exists()
    return err


def test_a_candle_file_given_as_funding_is_named_with_the_columns_a_funding_file_needs(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(20, 3600))
    err = _bad_input(tmp_path, capsys, prices, "--funding", str(prices))
    assert f"{prices}:1:" in err and "calc_time" in err and "last_funding_rate" in err, err
    assert "candle file" in err and "{" not in err, err


@pytest.mark.parametrize("rate", ["abc", "NaN", "Infinity"])
def test_a_funding_rate_that_is_not_a_number_is_named_by_file_line_and_value(tmp_path, capsys, rate) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(20, 3600))
    funding = tmp_path / "funding.csv"
    funding.write_text(f"calc_time,funding_interval_hours,last_funding_rate\n{START * 1000},8,0.0001\n{START * 1000 + 28800000},8,{rate}\n")
    err = _bad_input(tmp_path, capsys, prices, "--funding", str(funding))
    assert f"{funding}:3: bad funding row: last_funding_rate {rate!r} is not a number" in err, err
    assert "ConversionSyntax" not in err


def test_a_price_file_with_an_unknown_header_says_which_layouts_are_read(tmp_path, capsys) -> None:
    prices = tmp_path / "junk.csv"
    prices.write_text("a,b\n1,2\n3,4\n")
    err = _bad_input(tmp_path, capsys, prices)
    assert f"{prices}:1: unrecognised header 'a,b'" in err and "date,open,high,low,close" in err, err


@pytest.mark.parametrize("which", ["prices", "funding"])
def test_a_replay_file_that_is_not_utf8_is_named_by_file_and_line(tmp_path, capsys, which) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(20, 3600))
    funding = tmp_path / "funding.csv"
    funding.write_text(f"calc_time,funding_interval_hours,last_funding_rate\n{START * 1000},8,0.0001\n")
    bad = prices if which == "prices" else funding
    bad.write_bytes(bad.read_bytes() + b"2021-01-02T00:00:00Z,1,2,\xff\xfe,1,1\n")
    line = len(bad.read_bytes().splitlines())
    err = _bad_input(tmp_path, capsys, prices, "--funding", str(funding))
    assert f"{bad}:{line}: not UTF-8 text (byte 0xff)" in err, err


def test_a_liquidation_shows_in_the_summary_as_a_min_liquidation_distance_at_or_below_zero(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path, tick_seconds=60, margin_guard={"enabled": False})
    data["accounts"][0]["paper"]["spot"] = {"BTC": "2", "USDT": "200000"}
    config = write_toml(tmp_path / "hedgebot.toml", data)
    rows, price, t = [], 30000.0, START
    for _ in range(120):  # a steady rally with no guard: the short is liquidated on the way up
        close = price * 1.02
        rows.append((t, price, close * 1.001, price * 0.999, close))
        price, t = close, t + 3600
    prices = _freqtrade(tmp_path / "btc.csv", rows)
    assert main(["backtest", "--config", str(config), "--hedge", "btc-core", "--prices", str(prices),
                 "--out", str(tmp_path / "out"), "--no-chart"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert int(summary["liquidations"]) > 0
    assert float(summary["min_liquidation_distance"]) <= 0, summary


def _live_config(tmp_path: Path) -> Path:
    data = paper_settings_dict(tmp_path, tick_seconds=60)
    account = data["accounts"][0]
    del account["paper"]
    account.update(mode="live", credentials={"api_key": {"env": "HB_UNSET_KEY"}, "secret": {"env": "HB_UNSET_SECRET"}})
    return write_toml(tmp_path / "live.toml", data)


def test_a_live_accounts_config_replays_from_the_balances_given_on_the_command_line(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(200, 3600))
    args = ["backtest", "--config", str(_live_config(tmp_path)), "--hedge", "btc-core", "--prices", str(prices),
            "--out", str(tmp_path / "out"), "--no-chart"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is live" in err and "--spot" in err and "--futures" in err and "Traceback" not in err, err
    assert main([*args, "--spot", "BTC=2", "--spot", "USDT=20000", "--futures", "USDT=100000"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["bars"] == 200 and summary["liquidations"] == 0
    assert summary["hedge_value_volatility"] < summary["unhedged_value_volatility"] / 5  # 2 BTC hedged from the balances given


def test_balances_on_the_command_line_replace_a_paper_accounts_own(tmp_path, capsys) -> None:
    prices = _freqtrade(tmp_path / "btc.csv", _path(100, 3600))
    assert _run(tmp_path, prices, "--no-chart", "--spot", "BTC=0.5", "--futures", "USDT=50000") == 0
    trades = list(csv.DictReader((tmp_path / "out" / "trades.csv").open()))
    first = next(t for t in trades if t["kind"] == "order")
    assert float(first["amount"]) == pytest.approx(0.5)  # not the paper account's 2 BTC
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        _run(tmp_path, prices, "--no-chart", "--spot", "BTC=lots")
    assert exited.value.code == 2 and "use ASSET=AMOUNT" in capsys.readouterr().err


@pytest.mark.slow
def test_a_live_accounts_config_replays_from_the_balances_its_exchange_reports_and_changes_nothing_there(tmp_path) -> None:
    import subprocess
    import sys

    from tests.emulator_rig import PROCESS_KEY, PROCESS_SECRET, REPO, EmulatorProcess, live_config
    from tests.helpers import clean_env

    emulator = EmulatorProcess(tmp_path)  # spot BTC 1 and USDT 2,000; futures USDT 60,000
    emulator.start()
    try:
        before = emulator.control("state")
        prices = _freqtrade(tmp_path / "btc.csv", _path(200, 3600))
        env = {**clean_env(), "HB_BINANCE_KEY": PROCESS_KEY, "HB_BINANCE_SECRET": PROCESS_SECRET}
        done = subprocess.run(
            [sys.executable, "-m", "hedgebot.commands.main", "backtest", "--config", str(live_config(tmp_path, emulator.url)),
             "--hedge", "btc", "--prices", str(prices), "--out", str(tmp_path / "out"), "--no-chart"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
        said = done.stdout + done.stderr
        assert done.returncode == 0 and "Traceback" not in said, said
        assert "balances read from binanceusdm for account 'binance-main': spot BTC 1.0, USDT 2000.0; futures USDT 60000" in done.stdout, said
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary["bars"] == 200 and summary["target_reached"] is True, summary  # 1 BTC hedged from 60,000 of margin
        after = emulator.control("state")
        assert not after["orders"] and after["transfers"] == before["transfers"] and after["positions"] == before["positions"]
    finally:
        emulator.stop()


def test_the_printed_summary_names_the_topup_sources_in_words_not_as_a_python_dict(capsys) -> None:
    from hedgebot.commands.backtest.outputs import print_summary

    print_summary({"topups": 3, "topup_sources": {"transfers from spot stablecoin": 2, "coins sold": 1}})
    out = capsys.readouterr().out
    assert "topup_sources                transfers from spot stablecoin 2, coins sold 1" in out, out
    assert "{" not in out and "'" not in out, out
