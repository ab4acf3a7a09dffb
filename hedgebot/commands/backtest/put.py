"""Replay candles through a put leg: the same PutLeg and paper venue as paper mode, on simulated time.

Historical option prices do not ship with the project, so the paper options
book prices every put by Black-Scholes on a MODEL volatility: the candles'
trailing realised volatility (the last `volatility_window_days`) times
`premium_factor` (implied volatility usually sits above realised). Until a day
of candles has passed there is no volatility, so no quote, and the leg waits.

Each candle moves simulated time to its close, sets the price (the book settles
puts that expired), and the leg ticks once. At the end, held puts are valued at
the book's bid (what selling them would fetch), never at the mid. This module may NOT read
the inputs (hedgebot.commands.backtest.replay reads them) nor touch the short's replay.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.backtest import detect_interval
from hedgebot.clock import SimClock, run_simulated
from hedgebot.commands.args import iso
from hedgebot.commands.backtest.replay import ReplayInputs
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import ZERO, Market
from hedgebot.domain.put_plan import YEAR_SECONDS
from hedgebot.engine.put_leg import BUY, PutLeg
from hedgebot.exchange.feeds import Candle
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.paper_options import PutSeries, attach_options
from hedgebot.ops.events import EventLog
from hedgebot.store.journal import IntentStatus, Journal
from hedgebot.replay_clock import ReplayClock, apply_candle

MIN_RETURNS = 24  # fewer returns than this give no volatility: the leg waits


class TrailingVolatility:
    """The annualised realised volatility of the last `window` log returns, kept in running sums."""

    def __init__(self, window: int, interval_seconds: float) -> None:
        self.window = max(window, MIN_RETURNS)
        self.scale = YEAR_SECONDS / interval_seconds
        self.returns: deque[float] = deque()
        self.total = self.squares = 0.0
        self.last: float | None = None

    def add(self, close: float) -> None:
        """Take the next close."""
        if self.last is not None and self.last > 0 and close > 0:
            r = math.log(close / self.last)
            self.returns.append(r)
            self.total += r
            self.squares += r * r
            if len(self.returns) > self.window:
                old = self.returns.popleft()
                self.total -= old
                self.squares -= old * old
        self.last = close

    def value(self) -> float:
        """Return the volatility now, or 0 before MIN_RETURNS returns."""
        n = len(self.returns)
        if n < MIN_RETURNS:
            return 0.0
        variance = max((self.squares - self.total * self.total / n) / (n - 1), 0.0)
        return math.sqrt(variance * self.scale)


@dataclass(frozen=True)
class PutBacktestResult:
    """What a put leg's replay cost and paid, and the account's value with and without it."""

    candles: int
    first_price: Decimal
    last_price: Decimal
    coins: Decimal  # the coins held (unchanged by the leg)
    start_value: Decimal  # coins at the first open plus the quote
    premium_paid: Decimal  # premiums of every purchase, fees apart
    option_fees: Decimal
    put_payoff: Decimal  # received from sales and from settlement at expiry
    puts_held: Decimal
    puts_bid_value: Decimal  # the puts still held, at the book's bid
    hedged_value: Decimal  # coins at the last close + quote + puts at the bid
    unhedged_value: Decimal  # coins at the last close + the starting quote
    floor_value: Decimal  # floor x first price x coins protected + the starting quote
    orders: int
    waiting_alerts: int
    premium_factor: Decimal
    # equity.csv: (time, price, hedged value, unhedged value, coins, puts held, puts at the bid, premium paid to date)
    equity: tuple[tuple[float, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal], ...] = ()
    # trades.csv: (time, kind, series, side, amount, price, fee, quote amount, detail)
    trades: tuple[tuple[float, str, str, str, Decimal, Decimal, Decimal, Decimal, str], ...] = ()

    def summary(self) -> dict[str, Any]:
        """Return summary.json's fields."""
        return {
            "instrument": "put", "candles": self.candles, "price_first": str(self.first_price),
            "price_last": str(self.last_price), "start_value": f"{self.start_value:.2f}",
            "premium_paid": f"{self.premium_paid:.2f}", "option_fees": f"{self.option_fees:.2f}",
            "put_payoff": f"{self.put_payoff:.2f}", "puts_held": str(self.puts_held),
            "puts_bid_value": f"{self.puts_bid_value:.2f}", "hedged_value": f"{self.hedged_value:.2f}",
            "unhedged_value": f"{self.unhedged_value:.2f}", "floor_value": f"{self.floor_value:.2f}",
            "orders": self.orders, "waiting_alerts": self.waiting_alerts,
            "volatility_model": f"trailing realised volatility x {self.premium_factor} (a model, not market prices)",
        }


async def run_put_backtest(
    candles: Sequence[Candle], market: Market, hedge: HedgeConfig, spot: dict[str, Decimal], futures: dict[str, Decimal],
    *, premium_factor: Decimal = Decimal("1.2"), volatility_window_days: float = 30.0, spread: Decimal = Decimal("0.02"),
    interval_seconds: float | None = None,
) -> PutBacktestResult:
    """Run a put hedge over `candles` (oldest first) on a paper account and return what it cost and paid."""
    if not candles:
        raise ValueError("a backtest needs at least one candle")
    if not hedge.instrument.option or hedge.floor is None:
        raise ValueError(f'hedge {hedge.name!r} is not a put hedge (instrument = "{hedge.instrument.value}")')
    if premium_factor <= 0:
        raise ValueError(f"premium_factor must be positive, got {premium_factor}")
    interval = interval_seconds or detect_interval(candles)
    first = candles[0]
    clock = ReplayClock.on_loop(SimClock(start=first.time))  # replayed time, as every backtest keeps it
    venue = PaperVenue(clock, [PaperMarket(market, ConstantFunding(ZERO))], spot=spot, futures=futures)
    venue.update_price(market.symbol, first.time, first.open)
    trailing = TrailingVolatility(int(volatility_window_days * 86400 / interval), interval)
    trailing.add(float(first.open))
    factor = float(premium_factor)
    book = attach_options(venue, market.symbol, market.base, market.quote, lambda: trailing.value() * factor)
    book.spread = spread
    journal = Journal(":memory:", clock)
    events = EventLog(journal)
    leg = PutLeg("backtest", hedge, venue, book, clock, journal, events)
    await leg.prepare()
    coins = spot.get(market.base, ZERO)
    cash_start = sum((v for k, v in spot.items() if k != market.base), ZERO) + sum(futures.values(), ZERO)

    def cash_now() -> Decimal:
        return sum((v for k, v in venue.spot.items() if k != market.base), ZERO) + sum(venue.cash.values(), ZERO)

    def bid_value_at(close: Decimal) -> Decimal:
        value = ZERO
        for series, amount in book.held.items():
            quote = book.quote_of(series)
            value += (quote.bid if quote is not None else max(series.strike - close, ZERO)) * amount
        return value

    equity = []
    for candle in candles:
        await clock.loop.set(max(candle.time, clock.now()))  # every waiting task runs before the candle, due or not
        apply_candle(venue, market.symbol, candle, candle.time)
        trailing.add(float(candle.close))
        await leg.tick()
        paid = leg.status.premium_paid  # premiums and fees to date
        bids = bid_value_at(candle.close)
        equity.append((candle.time, candle.close, coins * candle.close + cash_now() + bids, coins * candle.close + cash_start,
                       coins, sum(book.held.values(), ZERO), bids, paid))
    book.settle_expired()
    cash_end = cash_now()
    bid_value = bid_value_at(candles[-1].close)
    premium = fees = proceeds = ZERO
    orders = 0
    trades = []
    for intent in journal.intents("backtest", hedge.name):
        if intent.status is not IntentStatus.DONE or not intent.outcome:
            continue
        orders += 1
        out = intent.outcome
        gross = Decimal(out["price"]) * Decimal(out["amount"])
        fees += Decimal(out["fee"])
        if intent.kind == BUY:
            premium += gross
        else:
            proceeds += gross
        series = PutSeries(Decimal(out["strike"]), float(out["expiry"]))
        trades.append((float(out["at"]), "option_order", f"{market.base}-{series.symbol}", out["side"], Decimal(out["amount"]),
                       Decimal(out["price"]), Decimal(out["fee"]), Decimal(out["cash"]), str(intent.detail.get("reason", ""))))
    for settled in book.settlements:
        trades.append((settled.at, "option_settlement", f"{market.base}-{settled.series.symbol}", "", settled.amount,
                       settled.price, ZERO, settled.payoff, "cash-settled at expiry at the underlying's price"))
    trades.sort(key=lambda row: row[0])
    payoff = proceeds + sum((s.payoff for s in book.settlements), ZERO)
    protected = coins * hedge.ratio
    return PutBacktestResult(
        candles=len(candles), first_price=first.open, last_price=candles[-1].close, coins=coins,
        start_value=coins * first.open + cash_start, premium_paid=premium, option_fees=fees, put_payoff=payoff,
        puts_held=sum(book.held.values(), ZERO), puts_bid_value=bid_value,
        hedged_value=coins * candles[-1].close + cash_end + bid_value,
        unhedged_value=coins * candles[-1].close + cash_start,
        floor_value=hedge.floor * first.open * protected + (coins - protected) * candles[-1].close + cash_start,
        orders=orders, waiting_alerts=len(journal.events("backtest", hedge.name, "put_leg_waiting")),
        premium_factor=premium_factor, equity=tuple(equity), trades=tuple(trades),
    )


def write_put_backtest(inputs: ReplayInputs, out: Path) -> int:
    """Replay a put hedge's inputs (read by hedgebot.commands.backtest.replay), write summary.json, print it; return 0."""
    result = run_simulated(run_put_backtest(
        inputs.candles, inputs.market, inputs.hedge, inputs.spot, inputs.futures, interval_seconds=inputs.interval,
    ))
    out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_put_equity(out / "equity.csv", result)
    write_put_trades(out / "trades.csv", result)
    for key, value in summary.items():
        print(f"{key:>18}: {value}")
    print(f"\nwrote {out}/summary.json, equity.csv, trades.csv")
    return 0


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def write_put_equity(path: Path, result: PutBacktestResult) -> None:
    """Write equity.csv: the account's value over time with the puts (at the bid) and without, and the puts held."""
    with path.open("w", newline="") as handle:
        handle.write("time,price,hedged_value,unhedged_value,exposure,puts_held,puts_bid_value,premium_paid\n")
        for at, price, hedged, unhedged, coins, puts, bids, paid in result.equity:
            handle.write(f"{iso(at)},{price},{_money(hedged)},{_money(unhedged)},{coins},{puts},{_money(bids)},{_money(paid)}\n")


def write_put_trades(path: Path, result: PutBacktestResult) -> None:
    """Write trades.csv in the other backtests' columns: every option order and every settlement at expiry."""
    import csv  # noqa: PLC0415

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "kind", "symbol_or_asset", "side", "amount", "price", "fee", "quote_amount", "detail"])
        for at, kind, symbol, side, amount, price, fee, cash, detail in result.trades:
            writer.writerow([iso(at), kind, symbol, side, amount, price, _money(fee), _money(cash), detail])
