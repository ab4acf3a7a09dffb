"""Leaping over quiet candles changes nothing: the same orders, fills, figures and summary as candle by candle.

The candle-by-candle replay is the one hedgebot ran before the leap (`candle_by_candle=True`, internal).
A seeded minute walk (a slice of the year the bench replays, and a wild one with spot changes, top-ups
and a liquidation), hedges side by side, and the shipped hourly history (skipped, with the reason, when
../shared/data is absent) are each replayed both ways.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.backtest import BacktestResult, FixedInterval, SpotChange, TradeRow, _Lane, run_backtest, run_side_by_side
from hedgebot.clock import run_simulated
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.feeds import Candle, read_candles
from hedgebot.exchange.funding import ConstantFunding, FundingSource, ReplayFunding
from tests.helpers import D, hedge_config, shared_file

pytestmark = pytest.mark.slow

START = 1_609_459_200.0  # 2021-01-01 UTC
MARKET = default_market("BTC/USDT:USDT")


def minute_walk(n: int, seed: int, volatility: float = 0.8, start_price: float = 30000.0) -> list[Candle]:
    """Return `n` one-minute candles of a seeded random walk, prices to the cent."""
    rng = random.Random(seed)
    sigma = volatility / math.sqrt(365 * 24 * 60)
    price = start_price
    cent = Decimal("0.01")
    out: list[Candle] = []
    for i in range(n):
        close = price * math.exp(rng.gauss(0.0, sigma))
        wiggle = abs(rng.gauss(0.0, sigma / 2))
        o, c = Decimal(f"{price:.2f}"), Decimal(f"{close:.2f}")
        h = max(o, c, Decimal(f"{max(price, close) * (1 + wiggle):.2f}")).quantize(cent)
        low = min(o, c, Decimal(f"{min(price, close) * (1 - wiggle):.2f}")).quantize(cent)
        out.append(Candle(START + 60.0 * i, o, h, low, c))
        price = close
    return out


def _trades(rows: Sequence[TradeRow]) -> list[TradeRow]:
    # An order's client id carries the journal's random epoch: two runs never share it, whatever the replay.
    return [dataclasses.replace(r, detail="") if r.kind == "order" else r for r in rows]


def assert_same(old: BacktestResult, new: BacktestResult) -> None:
    """Assert two replays agree on every order, fill, payment, alert, figure and summary line."""
    assert new.summary() == old.summary()
    assert new.metrics == old.metrics
    assert _trades(new.trades) == _trades(old.trades)
    assert new.alert_rows == old.alert_rows
    assert new.events == old.events
    assert new.keeper_wakes == old.keeper_wakes
    assert {k: list(v) for k, v in new.equity.items()} == {k: list(v) for k, v in old.equity.items()}
    assert json.dumps(new.metrics, default=str) == json.dumps(old.metrics, default=str)


def both_ways(candles: Sequence[Candle], funding: FundingSource, hedge: Any, spot: dict[str, Decimal],
              futures: dict[str, Decimal], monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[BacktestResult, BacktestResult, int]:
    """Replay candle by candle, then leaping; return both results and how many quiet candles were leapt over."""
    old = run_simulated(run_backtest(candles, MARKET, funding, hedge, dict(spot), dict(futures), candle_by_candle=True, **kwargs))
    leapt = _count_leapt(monkeypatch)
    new = run_simulated(run_backtest(candles, MARKET, funding, hedge, dict(spot), dict(futures), **kwargs))
    return old, new, leapt[0]


def _count_leapt(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    leapt = [0]
    record_quiet = _Lane.record_quiet

    def counting(self: _Lane, prices: Any, start: int, stop: int) -> None:
        leapt[0] += stop - start
        record_quiet(self, prices, start, stop)

    monkeypatch.setattr(_Lane, "record_quiet", counting)
    return leapt


def bench_hedge(tick: float) -> Any:
    return hedge_config(name="btc", leverage=3, max_order=D(5), tick_seconds=tick, margin_guard={"enabled": True})


@pytest.mark.parametrize("tick", [10.0, 3600.0], ids=["tick_every_candle", "tick_hourly"])
def test_a_slice_of_the_benched_minute_year_gives_the_same_trades_and_summary_leaping_as_candle_by_candle(
    tick: float, monkeypatch: pytest.MonkeyPatch,
) -> None:
    candles = minute_walk(12_000, seed=11)
    old, new, leapt = both_ways(
        candles, ConstantFunding(D("0.0001")), bench_hedge(tick), {"BTC": D(10), "USDT": D(1_000_000)}, {"USDT": D(200_000)},
        monkeypatch, interval_seconds=60,
    )
    assert_same(old, new)
    assert old.orders > 0 and old.metrics["funding_quote"] != 0
    assert leapt > len(candles) * 0.9  # the quiet stretches were leapt over, not stepped through


def test_a_wild_minute_walk_with_spot_changes_top_ups_and_a_cross_liquidation_gives_the_same_trades_leaping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    candles = minute_walk(5_000, seed=5, volatility=4.0)
    changes = [
        SpotChange(START + 60 * 1500 + 7, "BTC", D("2")),
        SpotChange(START + 60 * 2500, "USDT", D("-500")),
        SpotChange(START + 60 * 3900 + 30, "BTC", D("-1.5")),
    ]
    guarded, leapt_guarded = None, 0
    for guard, futures, mode in (({"enabled": True}, "60000", "isolated"), ({"enabled": False}, "40000", "cross")):
        hedge = hedge_config(leverage=5, max_order=D(5), tick_seconds=10, margin_guard=guard, margin_mode=mode)
        old, new, leapt = both_ways(
            candles, ConstantFunding(D("0.0003")), hedge, {"BTC": D(10), "USDT": D(100_000)}, {"USDT": D(futures)},
            monkeypatch, interval_seconds=60, spot_changes=changes,
        )
        assert_same(old, new)
        assert any(r.kind == "spot_change" for r in old.trades)
        if guard["enabled"]:
            guarded, leapt_guarded = old, leapt
        else:
            assert old.liquidations > 0
    assert guarded is not None and guarded.topups > 0 and leapt_guarded > 0


@pytest.mark.parametrize("tick", [10.0, 3600.0], ids=["ticks_together", "ticks_apart"])
def test_hedges_side_by_side_give_the_same_results_leaping_as_candle_by_candle(tick: float, monkeypatch: pytest.MonkeyPatch) -> None:
    # With an hourly tick the keepers' timers drift apart (each re-arms when it is woken): leaps stop short of them.
    candles = minute_walk(5_000, seed=3, volatility=1.5)
    funding = ConstantFunding(D("0.0001"))
    hedges = [
        (hedge_config(name=f"h{i}", leverage=3, max_order=D(5), band=D(f"0.0{1 + i}"), tick_seconds=tick, margin_guard={"enabled": True}),
         {"BTC": D(10), "USDT": D(1_000_000)}, {"USDT": D(200_000)})
        for i in range(3)
    ]
    old = run_simulated(run_side_by_side(candles, MARKET, funding, hedges, interval_seconds=60, record_equity=True, candle_by_candle=True))
    leapt = _count_leapt(monkeypatch)
    new = run_simulated(run_side_by_side(candles, MARKET, funding, hedges, interval_seconds=60, record_equity=True))
    for a, b in zip(old, new, strict=True):
        assert_same(a, b)
    assert leapt[0] > 0


def _history() -> tuple[list[Candle], ReplayFunding]:
    candles = read_candles(shared_file("BTCUSDT-1h-spot-2020-2021.csv"))
    return candles, ReplayFunding.from_csv(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))


def test_the_shipped_hourly_history_gives_the_same_summary_as_before_to_the_cent(monkeypatch: pytest.MonkeyPatch) -> None:
    candles, funding = _history()
    hedge = hedge_config(leverage=3, margin_mode="isolated", max_order=D("5"), margin_guard={"enabled": True, "sources": ["futures_wallet", "sell_spot"]})
    old, new, leapt = both_ways(candles, funding, hedge, {"BTC": D("10"), "USDT": D("0")}, {"USDT": D("30000")}, monkeypatch)
    assert_same(old, new)
    assert leapt > 0
    # As the replay printed before the leap (hedgebot at e4d06a1, the same inputs).
    assert new.summary() == {
        "candles": "17513",
        "price": "7195.24 -> 46216.93 (peak 69000)",
        "liquidations": "0",
        "top-ups": "15 (spot sales: 14)",
        "margin added": "198292.48",
        "funding short leg": "+41937.72",
        "orders": "30",
        "critical alerts": "0",
        "final exposure / short": "1.659 / 1.659",
        "account value": "101952 -> 143534 (fees 278; vs start + funding - fees -0.08%)",
        "coins sold": "8.341 (spot stablecoin 0.00 -> 0.07)",
        "distance after a sale": "at most 35.37%",
        "runway at start": "6793469.35",
        "alert events": "trading_blocked raised: 11, trading_blocked repeated: 12",
    }


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "unguarded"])
def test_a_long_hedge_of_a_planned_purchase_gives_the_same_trades_leaping(guard: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # A long's liquidation and runway lie below the mark: the leap judges its lows, not its highs.
    candles = minute_walk(6_000, seed=9, volatility=2.0)
    hedge = hedge_config(side="long", amount="5", leverage=3, max_order=D(5), margin_guard={"enabled": guard})
    old, new, leapt = both_ways(candles, ConstantFunding(D("0.0001")), hedge, {"USDT": D(300_000)}, {"USDT": D(60_000)}, monkeypatch)
    assert_same(old, new)
    assert old.orders > 0 and leapt > 0


@pytest.mark.parametrize("hours", [1, 4])
def test_the_fixed_interval_comparison_gives_the_same_trades_leaping(hours: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--compare interval:60m`: a keeper that looks at nothing between its ticks, and trades back to the exact target at each.
    candles = minute_walk(8_000, seed=7, volatility=2.0)
    changes = [SpotChange(START + 60 * 900 * i + 13, "BTC", D("0.7") if i % 2 else D("-0.4")) for i in range(1, 9)]
    hedge = hedge_config(leverage=3, max_order=D(5), margin_guard={"enabled": True})
    old, new, leapt = both_ways(
        candles, ConstantFunding(D("0.0001")), hedge, {"BTC": D(10), "USDT": D(1_000_000)}, {"USDT": D(200_000)}, monkeypatch,
        fixed=FixedInterval(hours * 3600.0), spot_changes=changes,
    )
    assert_same(old, new)
    assert old.orders > 8 and leapt > len(candles) // 4


def test_the_safety_tick_costs_no_keeper_run_on_a_quiet_minute_year_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    # A 10 s tick is raised to one per candle, yet on quiet candles it runs nothing: the keeper runs where the wake rule
    # wakes it (funding on its leg, the price leaving its plan's range) and at its first ticks, and the results stay
    # the same as candle by candle, where it ran at every candle. A funding settlement is one run, not a quiet safety
    # tick at its instant and then the wake's.
    candles = minute_walk(12_000, seed=11)
    ran: list[float] = []
    tick = Keeper.tick

    async def counting(self: Keeper) -> Any:
        ran.append(self.clock.now())
        return await tick(self)

    old = run_simulated(run_backtest(
        candles, MARKET, ConstantFunding(D("0.0001")), bench_hedge(10.0), {"BTC": D(10), "USDT": D(1_000_000)},
        {"USDT": D(200_000)}, interval_seconds=60, candle_by_candle=True,
    ))
    monkeypatch.setattr(Keeper, "tick", counting)
    new = run_simulated(run_backtest(
        candles, MARKET, ConstantFunding(D("0.0001")), bench_hedge(10.0), {"BTC": D(10), "USDT": D(1_000_000)},
        {"USDT": D(200_000)}, interval_seconds=60,
    ))
    assert_same(old, new)
    fundings = sum(1 for r in new.trades if r.kind == "funding")
    assert fundings >= 20 and new.keeper_wakes >= fundings
    assert len(ran) <= new.keeper_wakes + 4  # one run per wake: none for the safety ticks between them
