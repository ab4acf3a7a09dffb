"""`hedgebot backtest --sweep`: every combination replayed like its own backtest, in parallel, checked first."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hedgebot.commands.main import main
from hedgebot.commands.backtest.sweep import Axis, grid
from tests.helpers import paper_settings_dict, write_toml

START = 1_609_459_200  # 2021-01-01 00:00 UTC


def _rally(path: Path, hours: int = 300) -> Path:
    """A steady rally of 0.2 % an hour with a dip every day: enough to drain a small margin wallet."""
    with path.open("w") as f:
        f.write("date,open,high,low,close,volume\n")
        price = 30000.0
        for i in range(hours):
            close = price * (1.002 if i % 24 else 0.99)
            stamp = datetime.fromtimestamp(START + 3600 * i, UTC)
            f.write(f"{stamp:%Y-%m-%dT%H:%M:%SZ},{price:.2f},{max(price, close) * 1.001:.2f},{min(price, close) * 0.999:.2f},{close:.2f},1\n")
            price = close
    return path


def _config(tmp_path: Path, **hedge: object) -> Path:
    data = paper_settings_dict(tmp_path, tick_seconds=60, **hedge)
    data["accounts"][0]["paper"]["spot"] = {"BTC": "2", "USDT": "0"}
    return write_toml(tmp_path / f"hedgebot-{len(hedge)}.toml", data)


def _backtest(tmp_path: Path, config: Path, prices: Path, *extra: str) -> int:
    return main(["backtest", "--config", str(config), "--hedge", "btc-core", "--prices", str(prices), "--no-chart", *extra])


def test_each_combination_of_a_sweep_gives_what_its_own_backtest_gives(tmp_path: Path, capsys) -> None:
    prices = _rally(tmp_path / "btc.csv")
    config = _config(tmp_path)
    code = _backtest(
        tmp_path, config, prices, "--sweep", "leverage=2,5", "--sweep", "futures=6000,100000", "--workers", "2",
        "--out", str(tmp_path / "sweep"),
    )
    assert code == 0, capsys.readouterr().err
    rows = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["rows"]
    assert [(r["leverage"], r["futures"]) for r in rows] == [("2", "6000"), ("2", "100000"), ("5", "6000"), ("5", "100000")]
    table = list(csv.DictReader((tmp_path / "sweep" / "sweep.csv").open()))
    assert len(table) == 4 and {"liquidations", "min_liquidation_distance", "min_runway", "hedge_value_volatility",
                                "fees_quote", "funding_quote", "coins_sold"} <= set(table[0])
    # The small wallet is the one the rally drains: the sweep tells the user which reserve holds.
    small, large = rows[2], rows[3]
    assert small["min_liquidation_distance"] < large["min_liquidation_distance"]

    # One combination replayed on its own, as a user would before sweeps existed, gives the same figures.
    alone = _config(tmp_path, leverage=5)
    assert _backtest(tmp_path, alone, prices, "--futures", "USDT=6000", "--out", str(tmp_path / "alone")) == 0
    summary = json.loads((tmp_path / "alone" / "summary.json").read_text())
    for figure in ("liquidations", "min_liquidation_distance", "min_runway", "hedge_value_volatility", "fees_quote",
                   "funding_quote", "orders", "critical_alerts"):
        assert small[figure] == summary[figure], figure


def test_a_sweep_writes_a_heat_map_of_the_chosen_figure(tmp_path: Path, capsys) -> None:
    prices = _rally(tmp_path / "btc.csv", hours=60)
    code = _backtest(
        tmp_path, _config(tmp_path), prices, "--sweep", "band=0.02,0.05", "--workers", "1", "--sweep-figure", "fees_quote",
        "--out", str(tmp_path / "sweep"),
    )
    assert code == 0
    _ = main  # the chart is drawn only without --no-chart: run once more with it
    code = main(["backtest", "--config", str(_config(tmp_path)), "--hedge", "btc-core", "--prices", str(prices),
                 "--sweep", "band=0.02,0.05", "--workers", "1", "--out", str(tmp_path / "chart")])
    assert code == 0
    assert (tmp_path / "chart" / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "band" in capsys.readouterr().out


def test_the_heat_map_shows_the_worst_value_over_keys_beyond_the_first_two() -> None:
    axes = [Axis("leverage", ("2", "5")), Axis("futures", ("1", "2")), Axis("band", ("0.02", "0.05"))]
    rows = [
        {"leverage": lev, "futures": fut, "band": band, "min_liquidation_distance": value}
        for (lev, fut, band), value in {
            ("2", "1", "0.02"): 0.3, ("2", "1", "0.05"): 0.1, ("2", "2", "0.02"): 0.4, ("2", "2", "0.05"): 0.5,
            ("5", "1", "0.02"): 0.2, ("5", "1", "0.05"): None, ("5", "2", "0.02"): 0.6, ("5", "2", "0.05"): 0.7,
        }.items()
    ]
    # A distance is worse when smaller: the cell keeps the smallest over the bands.
    assert grid(axes, rows, "min_liquidation_distance") == [[0.1, 0.4], [0.2, 0.6]]


@pytest.mark.parametrize(
    ("sweep", "named"),
    [
        ("leverage=2,abc", "leverage"),
        ("leverage=0", "leverage"),
        ("levrage=2,3", "'levrage'"),
        ("margin_guard.nothing=1", "margin_guard.nothing"),
        ("futures=-5", "futures=-5"),
        ("leverage", "KEY=V1,V2"),
        ("leverage=2,2", "given twice"),
    ],
)
def test_a_bad_sweep_value_is_refused_naming_it_before_anything_runs(tmp_path: Path, capsys, sweep: str, named: str) -> None:
    prices = _rally(tmp_path / "btc.csv", hours=30)
    out = tmp_path / "sweep"
    assert _backtest(tmp_path, _config(tmp_path), prices, "--sweep", "ratio=0.5,1", "--sweep", sweep, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not (out / "sweep.csv").exists()


def test_workers_without_a_sweep_is_refused(tmp_path: Path, capsys) -> None:
    prices = _rally(tmp_path / "btc.csv", hours=30)
    assert _backtest(tmp_path, _config(tmp_path), prices, "--workers", "4") == 2
    assert "--workers applies to a sweep" in capsys.readouterr().err


def test_a_sweep_runs_on_a_dask_cluster_with_the_same_rows(tmp_path: Path, capsys) -> None:
    distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed (pip install 'hedgebot[cluster]')")
    prices = _rally(tmp_path / "btc.csv", hours=80)
    config = _config(tmp_path)
    args = ["--sweep", "futures=6000,100000", "--sweep", "band=0.02,0.05"]
    assert _backtest(tmp_path, config, prices, *args, "--workers", "1", "--out", str(tmp_path / "here")) == 0
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address.removeprefix("tcp://")
        assert _backtest(tmp_path, config, prices, *args, "--executor", f"dask://{address}", "--out", str(tmp_path / "dask")) == 0
    here = json.loads((tmp_path / "here" / "sweep.json").read_text())
    there = json.loads((tmp_path / "dask" / "sweep.json").read_text())
    assert here == there and len(here["rows"]) == 4


def test_a_dask_scheduler_that_does_not_answer_is_a_clear_error(tmp_path: Path, capsys) -> None:
    pytest.importorskip("distributed", reason="the cluster extra is not installed (pip install 'hedgebot[cluster]')")
    prices = _rally(tmp_path / "btc.csv", hours=30)
    code = _backtest(tmp_path, _config(tmp_path), prices, "--sweep", "band=0.02,0.05", "--executor", "127.0.0.1:1")
    assert code == 2
    assert "dask://HOST:PORT" in capsys.readouterr().err
