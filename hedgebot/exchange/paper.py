"""The simulated venue: wallets, hedge-mode legs, market orders, margin, funding, liquidation.

It behaves as Binance USDⓈ-M does where that matters to a hedge:
- separate spot and futures wallets, moved between by transfers;
- hedge mode with an independent LONG and SHORT leg per contract, or one-way
  mode, where an order naming a position side is refused; the mode cannot
  change while any position is open;
- isolated margin posted at open (notional / leverage) or cross margin backed
  by the whole futures wallet;
- market orders filled at the mark price with slippage and a taker fee;
- liquidation judged on the mark price, including each candle's adverse
  extreme before anyone can react; an isolated leg loses its margin;
- funding at each settlement, paid or received by each leg independently
  (isolated legs settle into their own margin, as Binance does);
- for a market that lists quarterlies, the current-quarter and next-quarter
  delivery contracts (`BTC/USDT:USDT-260327`), priced from the perpetual's
  mark with a basis that decays to zero at delivery (a model: see
  domain.basis), without funding, refusing every order in the pre-delivery
  window, and settling a leg still held at delivery at the delivery price.

With a state path it writes itself to disk after every change, so like a real
exchange it outlives the daemon that trades on it: one appended line per change
(hedgebot.exchange.paper_store), written off the event loop on the real clock,
and an order, transfer or setting is answered only once its line is on disk.
A daemon's paper account keeps a bounded history of orders, movements and events (`HISTORY_KEPT`); a
backtest's venue keeps all of them, since its figures are read from them at the end.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from hedgebot.clock import Clock, RealClock
from hedgebot.domain.basis import annual_basis_from_funding, modelled_future_price
from hedgebot.domain.delivery import delivery_symbol, is_quarterly_expiry, parse_delivery_symbol, quarterly_expiries
from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import (
    BOOKED_STEP,
    ZERO,
    Bracket,
    Leg,
    MarginMode,
    Market,
    OrderSide,
    PositionMode,
    PositionSide,
    Wallet,
    floor_to_step,
)
from hedgebot.domain.roll import Contract
from hedgebot.exchange.candles import CandleBook
from hedgebot.exchange.funding import ConstantFunding, FundingSource, NoFunding
from hedgebot.exchange.paper_store import PaperStore, read_account
from hedgebot.exchange.port import (
    AccountFacts,
    BadData,
    Candle,
    DuplicateClientId,
    FundingPayment,
    FundingQuote,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    InsufficientFunds,
    InvalidOrder,
    Legs,
    ModeError,
    OrderHistory,
    OrderRequest,
    OrderResult,
    OrderStatus,
    PriceQuote,
    VenueUnavailable,
)
from hedgebot.exchange.withdrawals import PaperNetwork, Withdrawal, WithdrawalRequest

_ONE_WAY = "both"
# Orders, movements and events a paper account keeps in memory and in its file (each order about 1 KB in memory).
# The keeper looks an order up within minutes of sending it, and a paper lookup is exact at once (settle_seconds 0);
# a daemon of 50 accounts of 20 hedges that kept 2,000 each grew by 2 MB an hour towards a 100 MB plateau.
HISTORY_KEPT = 200
_CROSS_MARGIN_OF_CHECK = Decimal("0.98")
_SIDES = ((PositionSide.LONG, PositionSide.LONG.value), (PositionSide.SHORT, PositionSide.SHORT.value))

# Binance lists the current-quarter and the next-quarter contract of a market.
LISTED_QUARTERLIES = 2
# Binance's docs name a PRE_DELIVERING status but not when it begins; the settlement price is averaged over the
# last hour before delivery (30 minutes since November 2024). The harsh reading: no order of any kind in that hour.
PRE_DELIVERY_SECONDS = 3600.0
# How far back the funding file is read to derive a quarterly's basis when none is configured.
BASIS_LOOKBACK_SECONDS = 30 * 86_400.0

# The ccxt exchange ids whose rules the paper venue models: Binance USDⓈ-M.
PAPER_EXCHANGES = frozenset({"binanceusdm", "binance", "binancecoinm"})  # USDⓈ-M, and COIN-M's coin-margined contracts


@dataclass
class PaperMarket:
    """A contract the paper venue lists, with its account settings."""

    market: Market
    funding: FundingSource = field(default_factory=lambda: ConstantFunding(Decimal("0.0001")))
    leverage: int = 20
    margin_mode: MarginMode = MarginMode.CROSS
    # The venue also lists this market's quarterly delivery contracts.
    quarterlies: bool = False
    # Their annual basis over spot (0.05: 5 % a year); None: derived from the market's recent funding.
    quarterly_basis: Decimal | None = None


@dataclass
class _LegState:
    size: Decimal = ZERO  # signed only for the one-way leg
    entry: Decimal = ZERO
    margin: Decimal = ZERO


@dataclass(frozen=True)
class VenueEvent:
    """Something the venue did on its own: funding, liquidation."""

    kind: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    at: float
    detail: str = ""
    margin_lost: Decimal = ZERO
    rate: Decimal | None = None


@dataclass(frozen=True)
class FillModel:
    """How much of a market order fills: all of it, or (seeded) sometimes part."""

    partial_probability: float = 0.0
    seed: int = 0

    def make_rng(self) -> random.Random:
        """Return the generator that decides partial fills."""
        return random.Random(self.seed)


def _d(value: object) -> Decimal:
    return Decimal(str(value))


class PaperVenue:
    """A whole simulated exchange account behind the `ExchangePort` protocol."""

    name = "paper"

    def __init__(
        self,
        clock: Clock,
        markets: Iterable[PaperMarket],
        spot: dict[str, Decimal] | None = None,
        futures: dict[str, Decimal] | None = None,
        *,
        spot_fee: Decimal = Decimal("0.001"),
        slippage: Decimal = Decimal("0.0002"),
        position_mode: PositionMode = PositionMode.HEDGE,
        state_path: Path | None = None,
        fill_model: FillModel | None = None,
        history_kept: int | None = None,
    ) -> None:
        self.clock = clock
        # None keeps every order, movement and event (a backtest reads them all at its end); a daemon's account
        # keeps HISTORY_KEPT of each, so that months of running do not grow it.
        self.history_kept = history_kept
        self.markets: dict[str, PaperMarket] = {m.market.symbol: m for m in markets}
        self.spot: dict[str, Decimal] = dict(spot or {})
        self.cash: dict[str, Decimal] = dict(futures or {})
        # The starting balances this account was created with (kept across restores, to notice a changed config).
        self.created_with: dict[str, dict[str, str]] | None = {
            "spot": {k: str(v) for k, v in self.spot.items()}, "futures": {k: str(v) for k, v in self.cash.items()},
        }
        self.script_positions: dict[str, int] = {}  # scripted deposits: how far each script's cycle has gone
        self.restored_from: Path | None = None
        self.spot_fee = spot_fee
        self.slippage = slippage
        self.position_mode = position_mode
        self.state_path = state_path
        self.fill_model = fill_model or FillModel()
        self._rng = self.fill_model.make_rng()
        self.legs: dict[tuple[str, str], _LegState] = {}
        self.marks: dict[str, tuple[Decimal, float]] = {}
        self.candle_book = CandleBook()  # the prices seen, served as candles (fetch_ohlcv)
        # Withdrawals (a holdings account the buffer refills from): none unless the account joins a paper network.
        self.network: PaperNetwork | None = None
        self.withdraw_whitelist: frozenset[str] = frozenset()
        self.withdrawal_seconds = 1800.0
        self.withdrawals: list[Withdrawal] = []
        self.deposit_address: str | None = None
        self.funding_checked: dict[str, float] = {}
        self.options: Any = None  # a put hedge's options book (hedgebot.exchange.paper_options.attach_options)
        self.orders: dict[str, OrderResult] = {}
        self.settle_seconds = 0.0  # the paper book answers lookups exactly and at once: absence is known at once
        self.movements: list[FundsMovement] = []
        self._movement_seq = 0
        self.events: list[VenueEvent] = []
        # What the next log line carries beside the balances: orders and movements made since the last line.
        self._unsaved_orders: dict[str, OrderResult] = {}
        self._unsaved_movements: list[FundsMovement] = []
        self._store: PaperStore | None = None
        self._last_write: Future[None] | None = None
        # On the real clock the file is written on a worker thread; in simulated time inline, so a replay stays
        # deterministic (the loop cannot tell a thread's write from nothing to do, and would move time on).
        self._write_inline = not isinstance(clock, RealClock)
        self._listeners: list[Callable[[VenueEvent | None], None]] = []
        self._order_seq = 0
        self.changes = 0  # counts every change of balances, legs or settings (not of prices)
        # Per-candle checks must cost almost nothing: liquidation prices are
        # cached against the leg they were computed for, and funding is only
        # looked up once its next settlement time is reached.
        self._liquidation_cache: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal, Decimal | None]] = {}
        self._funding_due: dict[str, float | None] = {}
        self._delivered: set[str] = set()  # delivery contracts whose legs were settled at delivery
        self._basis_cache: dict[tuple[str, int], Decimal] = {}
        self._quarterly_books: dict[str, list[str]] = {}  # each perpetual's quarterlies opened so far

    # ---- observation hooks ------------------------------------------------

    def subscribe(self, listener: Callable[[VenueEvent | None], None]) -> None:
        """Call `listener` after every change (with the event, or None for a plain change)."""
        self._listeners.append(listener)

    def _changed(self, event: VenueEvent | None = None) -> None:
        self.changes += 1
        if event is not None:
            self.events.append(event)
            if self.history_kept is not None and len(self.events) > 2 * self.history_kept:
                del self.events[: -self.history_kept]
        self.save()
        for listener in self._listeners:
            listener(event)

    # ---- market data ------------------------------------------------------

    def _paper_market(self, symbol: str) -> PaperMarket:
        pm = self.markets.get(symbol) or self._delivery_market(symbol)
        if pm is None:
            raise InvalidOrder(f"paper venue lists no contract {symbol!r}")
        return pm

    # ---- quarterlies ----------------------------------------------------------

    def _delivery_market(self, symbol: str) -> PaperMarket | None:
        """Open the book of a quarterly contract named by its delivery symbol, or None when the venue lists no such one."""
        parsed = parse_delivery_symbol(symbol)
        if parsed is None:
            return None
        perp_symbol, expiry = parsed
        perp = self.markets.get(perp_symbol)
        if perp is None or not perp.quarterlies or not is_quarterly_expiry(expiry):
            return None
        pm = PaperMarket(replace(perp.market, symbol=symbol, expiry=expiry), NoFunding(), perp.leverage, perp.margin_mode)
        self.markets[symbol] = pm
        self._quarterly_books.setdefault(perp_symbol, []).append(symbol)
        quote = self.marks.get(perp_symbol)
        if quote is not None and symbol not in self.marks:
            self.marks[symbol] = (self._quarterly_price(pm, quote[0], quote[1]), quote[1])
        return pm

    def _annual_basis(self, perp: PaperMarket, at: float) -> Decimal:
        """Return the quarterlies' annual basis: configured, or what the last 30 days of funding amount to per year."""
        if perp.quarterly_basis is not None:
            return perp.quarterly_basis
        key = (perp.market.symbol, int(at // 86_400))
        cached = self._basis_cache.get(key)
        if cached is None:
            rates = [rate for _, rate in perp.funding.settlements(at - BASIS_LOOKBACK_SECONDS, at)]
            hours = Decimal(BASIS_LOOKBACK_SECONDS / 3600) / len(rates) if rates else Decimal(8)
            cached = annual_basis_from_funding(rates, hours)
            self._basis_cache = {k: v for k, v in self._basis_cache.items() if k[0] != key[0]}
            self._basis_cache[key] = cached
        return cached

    def _quarterly_price(self, pm: PaperMarket, spot: Decimal, at: float) -> Decimal:
        """Return a quarterly's modelled price from the perpetual's (spot's) price, on its price step."""
        assert pm.market.expiry is not None
        perp = self.markets[pm.market.symbol.rpartition("-")[0]]
        price = modelled_future_price(spot, at, pm.market.expiry, self._annual_basis(perp, at))
        step = pm.market.price_step
        return (price / step).to_integral_value() * step if step > 0 else price

    def annual_basis_of(self, symbol: str) -> Decimal | None:
        """Return the annual basis the paper venue prices a market's quarterlies with now (None: it lists none)."""
        pm = self.markets.get(symbol)
        if pm is None or not pm.quarterlies:
            return None
        return self._annual_basis(pm, self.clock.now())

    def _follow_quarterlies(
        self, perp_symbol: str, at: float, close: Decimal, open_: Decimal | None, high: Decimal | None, low: Decimal | None,
    ) -> None:
        """Move each listed quarterly's mark with the perpetual's; liquidate or deliver its legs as the move requires."""
        for symbol in self._quarterly_books.get(perp_symbol, ()):
            if symbol in self._delivered:
                continue
            pm = self.markets[symbol]
            assert pm.market.expiry is not None
            if at >= pm.market.expiry:
                # The candle that crosses delivery opens at (or just before) it: its open is the delivery price.
                self._deliver(symbol, open_ if open_ is not None else close, pm.market.expiry)
                continue
            held = self._any_position(symbol)
            if held:
                for extreme in (high, low):
                    if extreme is not None:
                        self._liquidate_if_due(symbol, self._quarterly_price(pm, extreme, at), at)
            self.marks[symbol] = (self._quarterly_price(pm, close, at), at)
            if held:
                self._liquidate_if_due(symbol, self.marks[symbol][0], at)

    def _deliver_if_due(self, symbol: str) -> None:
        """Settle a quarterly past its delivery time whose delivery no price update has made yet."""
        pm = self.markets.get(symbol)
        if pm is None or pm.market.expiry is None or symbol in self._delivered or self.clock.now() < pm.market.expiry:
            return
        quote = self.marks.get(pm.market.symbol.rpartition("-")[0])
        if quote is not None:
            self._deliver(symbol, quote[0], pm.market.expiry)

    def _deliver(self, symbol: str, price: Decimal, at: float) -> None:
        """Settle every leg of a quarterly at the delivery price: its PnL lands in the wallet, less the taker fee."""
        pm = self.markets[symbol]
        rule = rule_for(pm.market)
        self._delivered.add(symbol)
        self.marks[symbol] = (price, at)
        for side_name in (PositionSide.LONG.value, PositionSide.SHORT.value, _ONE_WAY):
            state = self.legs.get((symbol, side_name))
            if state is None or state.size == 0:
                continue
            size = abs(state.size)
            sign = (1 if state.size > 0 else -1) if side_name == _ONE_WAY else (1 if side_name == PositionSide.LONG.value else -1)
            # Binance charges the taker fee on every position settled at delivery.
            fee = (rule.notional(size, price) * pm.market.taker_fee).quantize(BOOKED_STEP, ROUND_CEILING)
            self._shrink(state, pm, price, size, fee, pnl_sign=sign, direction=sign if side_name == _ONE_WAY else 1)
            self._changed(VenueEvent("delivery", symbol, side_name, size, price, at, f"settled at delivery, fee {fee}"))
        self.save()

    async def fetch_delivery_contracts(self, symbol: str) -> list[Contract]:
        """Return the current-quarter and next-quarter contracts of a market named without expiry."""
        pm = self._paper_market(symbol)
        if not pm.quarterlies:
            return []
        now = self.clock.now()
        contracts = []
        for expiry in quarterly_expiries(now, LISTED_QUARTERLIES):
            contract_symbol = delivery_symbol(symbol, expiry)
            self._paper_market(contract_symbol)
            contracts.append(Contract(contract_symbol, expiry, tradable=now < expiry - PRE_DELIVERY_SECONDS))
        return contracts

    def _mark(self, symbol: str) -> Decimal:
        quote = self.marks.get(symbol)
        if quote is None:
            raise VenueUnavailable(f"no price for {symbol} yet")
        return quote[0]

    def update_price(
        self,
        symbol: str,
        at: float,
        close: Decimal,
        *,
        open_: Decimal | None = None,
        high: Decimal | None = None,
        low: Decimal | None = None,
    ) -> None:
        """Move the mark price; settle funding and liquidations the move causes.

        For a candle, funding settled inside it uses the open, and both
        extremes are tested for liquidation before the close becomes the mark.
        """
        for value in (close, open_, high, low):
            if value is not None and (not value.is_finite() or value <= 0):
                raise BadData(f"absurd price {value} for {symbol}")
        pm = self._paper_market(symbol)
        previous = self.marks.get(symbol)
        self._settle_funding(symbol, at, open_ if open_ is not None else (previous[0] if previous else close))
        for extreme in (high, low):
            if extreme is not None:
                self._liquidate_if_due(symbol, extreme, at)
        self.marks[symbol] = (close, at)
        self.candle_book.record(symbol, at, close, high, low, open_)
        # An isolated leg that survived both extremes survives any price between them.
        between = high is not None and low is not None and low <= close <= high
        liquidated = False if between and pm.margin_mode is MarginMode.ISOLATED else self._liquidate_if_due(symbol, close, at)
        if pm.quarterlies:
            self._follow_quarterlies(symbol, at, close, open_, high, low)
        if not liquidated:
            for listener in self._listeners:
                listener(None)

    def safe_price_range(self, symbol: str) -> tuple[Decimal | None, Decimal | None] | None:
        """Return (low, high): no leg is liquidated at a price strictly between them as balances stand (None: no bound).

        None when the venue cannot say (a cross wallet holding both legs): every price must be checked.
        """
        pm = self.markets[symbol]
        if any(self._any_position(q) for q in self._quarterly_books.get(symbol, ()) if q not in self._delivered):
            return None  # a quarterly's legs are priced off this market with a basis: every price is checked
        brackets = pm.market.brackets
        low: Decimal | None = None
        high: Decimal | None = None
        if pm.margin_mode is MarginMode.ISOLATED:
            for side, side_name, state, lp in self._isolated_liquidations(symbol, brackets):
                if side is PositionSide.SHORT:
                    high = lp
                else:
                    low = lp
            return low, high
        legs = self._legs_of(symbol)
        if legs.long.is_open:
            return None
        if not legs.short.is_open:
            return None, None
        lp = rule_for(pm.market).liquidation_price_of(self.cash.get(pm.market.margin_asset, ZERO), [legs.short], brackets)
        return (None, lp) if lp is not None else None

    def funding_due(self, symbol: str) -> float:
        """Return the time from which a price update settles funding again (inf: never; -inf: at the next one)."""
        if symbol not in self.funding_checked:
            return -math.inf
        due = self._funding_due.get(symbol, self.funding_checked[symbol])
        return math.inf if due is None else due

    # ---- funding ------------------------------------------------------------

    def _settle_funding(self, symbol: str, at: float, mark: Decimal) -> None:
        last = self.funding_checked.get(symbol)
        self.funding_checked[symbol] = at
        if last is None or at <= last:
            return
        due = self._funding_due.get(symbol, last)
        if due is None or at < due:
            return
        pm = self.markets[symbol]
        next_settlement = getattr(pm.funding, "next_settlement", None)
        self._funding_due[symbol] = next_settlement(at) if next_settlement is not None else at
        for when, rate in pm.funding.settlements(last, at):
            for side in (PositionSide.LONG, PositionSide.SHORT):
                leg = self.legs.get((symbol, side.value))
                if leg is None or leg.size <= 0:
                    continue
                # Positive rate: longs pay shorts.
                # Booked to 8 decimals like an exchange's income record, rounded against the account.
                notional = rule_for(pm.market).notional(leg.size, mark)  # in the margin asset: coins for an inverse contract
                payment = (notional * rate * (1 if side is PositionSide.SHORT else -1)).quantize(BOOKED_STEP, ROUND_FLOOR)
                if pm.margin_mode is MarginMode.ISOLATED:
                    leg.margin += payment
                else:
                    self._add_cash(pm.market.margin_asset, payment)
                self._changed(VenueEvent("funding", symbol, side.value, payment, mark, when, f"rate {rate}", rate=rate))

    # ---- liquidation --------------------------------------------------------

    def _liquidate_if_due(self, symbol: str, price: Decimal, at: float) -> bool:
        pm = self.markets[symbol]
        brackets = pm.market.brackets
        if pm.margin_mode is MarginMode.ISOLATED:
            hit = False
            for side, side_name, state, lp in self._isolated_liquidations(symbol, brackets):
                if (price >= lp) if side is PositionSide.SHORT else (price <= lp):
                    lost = state.margin
                    self.legs[(symbol, side_name)] = _LegState()
                    self._changed(
                        VenueEvent(
                            "liquidation", symbol, side_name, state.size, lp, at, f"isolated margin {lost} lost",
                            margin_lost=lost,
                        )
                    )
                    hit = True
            return hit
        quote = pm.market.margin_asset
        rule = rule_for(pm.market)
        if self._cross_short_far_from_liquidation(symbol, quote, price, brackets):
            return False
        legs = self._legs_of(symbol)
        open_legs = [leg for leg in (legs.long, legs.short) if leg.is_open]
        if not open_legs:
            return False
        equity = self.cash.get(quote, ZERO) + sum((rule.pnl(leg, price) for leg in open_legs), ZERO)
        maintenance = sum((rule.maintenance(leg.size, price, brackets) for leg in open_legs), ZERO)
        if equity > maintenance:
            return False
        lp = rule.liquidation_price_of(self.cash.get(quote, ZERO), open_legs, brackets) or price
        before = self.cash.get(quote, ZERO)
        self.cash[quote] = max(ZERO, equity - maintenance)
        lost = before - self.cash[quote]
        for index, leg in enumerate(open_legs):
            self.legs[(symbol, leg.side.value)] = _LegState()
            # The wallet's loss is reported once, on the first leg closed.
            self._changed(
                VenueEvent(
                    "liquidation", symbol, leg.side.value, leg.size, lp, at, "cross wallet paid",
                    margin_lost=lost if index == 0 else ZERO,
                )
            )
        return True

    def _isolated_liquidations(
        self, symbol: str, brackets: Sequence[Bracket],
    ) -> list[tuple[PositionSide, str, _LegState, Decimal]]:
        """Return each open isolated leg of `symbol` that a price can liquidate, with its liquidation price."""
        out = []
        for side, side_name in _SIDES:
            state = self.legs.get((symbol, side_name))
            if state is None or state.size <= 0:
                continue
            lp = self._isolated_liquidation_price(symbol, side, side_name, state, brackets)
            if lp is not None:
                out.append((side, side_name, state, lp))
        return out

    def _isolated_liquidation_price(
        self, symbol: str, side: PositionSide, side_name: str, state: _LegState, brackets: Sequence[Bracket]
    ) -> Decimal | None:
        key = (symbol, side_name)
        cached = self._liquidation_cache.get(key)
        if cached is not None and cached[0] == state.size and cached[1] == state.entry and cached[2] == state.margin:
            return cached[3]
        rule = rule_for(self.markets[symbol].market)
        lp = rule.liquidation_price_of(state.margin, [Leg(side, state.size, state.entry, state.margin)], brackets)
        self._liquidation_cache[key] = (state.size, state.entry, state.margin, lp)
        return lp

    def _cross_short_far_from_liquidation(self, symbol: str, quote: str, price: Decimal, brackets: Sequence[Bracket]) -> bool:
        """Return True when only a short is open and `price` sits well below its cross liquidation price."""
        long = self.legs.get((symbol, _SIDES[0][1]))
        short = self.legs.get((symbol, _SIDES[1][1]))
        if (long is not None and long.size > 0) or short is None or short.size <= 0:
            return False
        cash = self.cash.get(quote, ZERO)
        key = (symbol, "cross")
        cached = self._liquidation_cache.get(key)
        if cached is None or cached[0] != short.size or cached[1] != short.entry or cached[2] != cash:
            leg = Leg(PositionSide.SHORT, short.size, short.entry, short.margin)
            cached = (short.size, short.entry, cash, rule_for(self.markets[symbol].market).liquidation_price_of(cash, [leg], brackets))
            self._liquidation_cache[key] = cached
        lp = cached[3]
        # Brackets make the boundary piecewise: the exact test runs within 2 % of it.
        return lp is not None and price < lp * _CROSS_MARGIN_OF_CHECK

    # ---- reads --------------------------------------------------------------

    async def load_market(self, symbol: str) -> Market:
        """Return the contract's trading rules."""
        return self._paper_market(symbol).market

    async def fetch_spot_balances(self) -> dict[str, Decimal]:
        """Return the spot wallet (withdrawals from other paper accounts credited once their time has come)."""
        if self.network is not None:
            self.network.deliver(self.clock.now())
        return {asset: amount for asset, amount in self.spot.items()}

    # ---- withdrawals to another paper account (the buffer's refill) ---------------

    def open_withdrawals(self, network: PaperNetwork, *, whitelist: Iterable[str], seconds: float,
                         deposit_address: str | None) -> None:
        """Join the paper network: receive at `deposit_address`, send only to `whitelist`, each arriving after `seconds`."""
        self.network = network
        self.withdraw_whitelist = frozenset(whitelist)
        self.withdrawal_seconds = seconds
        self.deposit_address = deposit_address
        if deposit_address is not None:
            network.register(deposit_address, lambda asset, amount: self.deposit(Wallet.SPOT, asset, amount))

    withdrawals_supported = True  # to the paper accounts of the same daemon (see open_withdrawals)

    async def withdrawal_whitelisted(self, asset: str, address: str, network: str | None) -> bool:
        """Tell whether the account's whitelist holds `address`."""
        return address in self.withdraw_whitelist

    async def withdraw(self, request: WithdrawalRequest) -> Withdrawal:
        """Send spot coins to another paper account's address; they arrive after `withdrawal_seconds`."""
        if self.network is None or request.address not in self.withdraw_whitelist:
            raise InvalidOrder(f"address {request.address} is not on this account's withdrawal whitelist")
        if any(w.client_id == request.client_id for w in self.withdrawals):
            raise DuplicateClientId(f"withdrawOrderId {request.client_id} was used before")
        held = self.spot.get(request.asset, ZERO)
        if request.amount <= 0 or held < request.amount:
            raise InsufficientFunds(f"spot {request.asset} {held} < withdrawal of {request.amount}")
        self.spot[request.asset] = held - request.amount
        now = self.clock.now()
        sent = Withdrawal(f"paper-withdrawal-{len(self.withdrawals) + 1}", request.client_id, request.asset,
                          request.amount, request.address, "processing", now)
        self.withdrawals.append(sent)

        def arrived() -> None:
            index = self.withdrawals.index(sent)
            self.withdrawals[index] = replace(sent, status="completed")

        self.network.send(request.address, request.asset, request.amount, now + self.withdrawal_seconds, arrived)
        self._changed()
        await self.durable()
        return sent

    async def free_spot_balance(self, asset: str) -> Decimal:
        """Return the spot wallet's balance of `asset` (a paper spot wallet holds nothing in orders)."""
        return self.spot.get(asset, ZERO)

    async def fetch_deposit_address(self, asset: str, network: str | None) -> str | None:
        """Return this account's deposit address (None: it has none)."""
        return self.deposit_address

    async def find_withdrawal(self, client_id: str, since: float) -> Withdrawal | None:
        """Find a withdrawal by its client id (its status as the network has it now)."""
        if self.network is not None:
            self.network.deliver(self.clock.now())
        return next((w for w in self.withdrawals if w.client_id == client_id and w.timestamp >= since), None)

    def _cross_requirements(self, quote: str) -> tuple[Decimal, Decimal]:
        """Return unrealized PnL and initial margin of all cross legs settled in `quote`."""
        pnl = ZERO
        initial = ZERO
        for symbol, pm in self.markets.items():
            if pm.margin_mode is not MarginMode.CROSS or pm.market.margin_asset != quote or symbol not in self.marks:
                continue
            mark = self.marks[symbol][0]
            rule = rule_for(pm.market)
            legs = self._legs_of(symbol)
            for leg in (legs.long, legs.short):
                if leg.is_open:
                    pnl += rule.pnl(leg, mark)
                    initial += rule.notional(leg.size, mark) / pm.leverage
        return pnl, initial

    def _free(self, quote: str) -> Decimal:
        pnl, initial = self._cross_requirements(quote)
        return max(ZERO, self.cash.get(quote, ZERO) + min(pnl, ZERO) - initial)

    async def fetch_futures_balance(self, asset: str) -> FuturesBalance:
        """Return cash plus isolated margin, and the free part of it."""
        posted = sum(
            (state.margin for (symbol, _), state in self.legs.items() if self.markets[symbol].market.margin_asset == asset),
            ZERO,
        )
        cash = self.cash.get(asset, ZERO)
        return FuturesBalance(wallet=cash + posted, free=self._free(asset), cross_wallet=cash)

    def _legs_of(self, symbol: str) -> Legs:
        def leg(side: PositionSide) -> Leg:
            state = self.legs.get((symbol, side.value))
            if state is None:
                return Leg(side)
            return Leg(side, state.size, state.entry, state.margin)

        if self.position_mode is PositionMode.ONE_WAY:
            net = self.legs.get((symbol, _ONE_WAY), _LegState())
            long = Leg(PositionSide.LONG, net.size, net.entry, net.margin) if net.size > 0 else Leg(PositionSide.LONG)
            short = Leg(PositionSide.SHORT, -net.size, net.entry, net.margin) if net.size < 0 else Leg(PositionSide.SHORT)
            return Legs(long, short)
        return Legs(leg(PositionSide.LONG), leg(PositionSide.SHORT))

    async def fetch_legs(self, symbol: str) -> Legs:
        """Return both legs of the contract (none on a quarterly once delivered)."""
        self._paper_market(symbol)
        self._deliver_if_due(symbol)
        return self._legs_of(symbol)

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        """Return the last mark price and when it was set."""
        self._paper_market(symbol)
        self._mark(symbol)
        price, at = self.marks[symbol]
        return PriceQuote(price, at)

    async def fetch_ohlcv(self, symbol: str, timeframe: str, since: float, limit: int) -> list[Candle]:
        """Return the closed candles of the prices this venue has seen (none from before it started; see candles.py)."""
        self._paper_market(symbol)
        return self.candle_book.candles(symbol, timeframe, since, limit, self.clock.now())

    async def fetch_order(self, symbol: str, client_id: str) -> OrderResult | None:
        """Look an order up by client id."""
        return self.orders.get(client_id)

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> OrderHistory:
        """Return every order on `symbol` created inside [since, until], a reused id's earlier orders included."""
        return OrderHistory(
            tuple(o for o in self.orders.values() if o.symbol == symbol and since <= o.timestamp <= until), complete=True
        )

    async def find_funds_movement(self, query: FundsQuery) -> FundsMovement | None:
        """Search the margin and transfer history as Binance's history endpoints would: by asset, amount and time."""
        return next((m for m in self.movements if query.matches(m)), None)

    async def fetch_funding_rate(self, symbol: str) -> FundingQuote:
        """Return the rate of the next settlement the funding source knows (zero when it knows none yet)."""
        pm = self._paper_market(symbol)
        now = self.clock.now()
        upcoming = pm.funding.settlements(now, now + 24 * 3600)
        if not upcoming:
            return FundingQuote(Decimal(0), None, now)
        when, rate = upcoming[0]
        return FundingQuote(rate, when, now)

    async def fetch_funding_rates(self, symbol: str, since: float) -> list[tuple[float, Decimal]]:
        """Return the rates the market's funding source settled since `since` (up to now)."""
        return self._paper_market(symbol).funding.settlements(since, self.clock.now())

    async def fetch_funding_history(self, symbol: str, since: float) -> list[FundingPayment]:
        """Return the funding the account's legs paid or received since `since`."""
        quote = self._paper_market(symbol).market.margin_asset
        return [
            FundingPayment(symbol, quote, e.amount, e.at)
            for e in self.events
            if e.kind == "funding" and e.symbol == symbol and e.at >= since
        ]

    async def fetch_account_facts(self) -> AccountFacts:
        """Return a paper account's facts: no key, so nothing to refuse."""
        return AccountFacts()

    def warm_in(self) -> float:
        """Return 0: a paper venue paces nothing."""
        return 0.0

    async def close(self) -> None:
        """Write the whole account to its file, history included, and wait until it is on disk (no network session to close)."""
        store = self._store_of_path()
        if store is None:
            return
        self._last_write = store.close(self._whole_record(), inline=self._write_inline)
        self._unsaved_orders, self._unsaved_movements = {}, []
        await self.durable()

    # ---- account settings ---------------------------------------------------

    def _any_position(self, symbol: str | None = None) -> bool:
        return any(
            state.size != 0 for (sym, _), state in self.legs.items() if symbol is None or sym == symbol
        )

    async def fetch_position_mode(self) -> PositionMode:
        """Return hedge or one-way."""
        return self.position_mode

    async def set_position_mode(self, mode: PositionMode) -> None:
        """Change the position mode, refused while any position is open."""
        if mode is self.position_mode:
            return
        if self._any_position():
            raise ModeError(
                f"cannot switch position mode to {mode.value}: positions are open "
                "(close them or switch by hand on the exchange)"
            )
        self.position_mode = mode
        self._changed()
        await self.durable()

    async def fetch_margin_mode(self, symbol: str) -> MarginMode:
        """Return the contract's margin mode."""
        return self._paper_market(symbol).margin_mode

    async def set_margin_mode(self, symbol: str, mode: MarginMode) -> None:
        """Change the margin mode, refused while the contract has a position."""
        pm = self._paper_market(symbol)
        if mode is pm.margin_mode:
            return
        if self._any_position(symbol):
            raise ModeError(f"cannot switch {symbol} to {mode.value} margin while it has a position")
        pm.margin_mode = mode
        self._changed()
        await self.durable()

    async def fetch_leverage(self, symbol: str) -> int:
        """Return the contract's leverage."""
        return self._paper_market(symbol).leverage

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Change the contract's leverage (applies to margin posted from now on)."""
        if not 1 <= leverage <= 125:
            raise ModeError(f"leverage {leverage} outside 1..125")
        self._paper_market(symbol).leverage = leverage
        self._changed()
        await self.durable()

    # ---- orders -------------------------------------------------------------

    async def place_order(self, request: OrderRequest) -> OrderResult:
        """Fill a market order now, or refuse it as the exchange would."""
        if request.client_id in self.orders:
            # As on Binance, a client id is unique among open orders only, and a market order is never left open:
            # the id is accepted again and executes again. The earlier order stays on record under a suffix.
            earlier = sum(1 for cid in self.orders if cid.startswith(f"{request.client_id}#"))
            self.orders[f"{request.client_id}#{earlier + 1}"] = self.orders[request.client_id]
            self._unsaved_orders[f"{request.client_id}#{earlier + 1}"] = self.orders[request.client_id]
        if request.amount <= 0 or not request.amount.is_finite():
            raise InvalidOrder(f"order amount must be positive, got {request.amount}")
        if ":" in request.symbol:
            result = self._fill_perp(request)
        else:
            result = self._fill_spot(request)
        self.orders.pop(request.client_id, None)  # the newest last: the oldest leave first
        self.orders[request.client_id] = result
        self._unsaved_orders[request.client_id] = result
        self._bound_orders()
        self._changed()
        await self.durable()  # as an exchange's answer: acknowledged only once it would survive a crash
        return result

    def _fill_fraction(self) -> Decimal:
        if self.fill_model.partial_probability and self._rng.random() < self.fill_model.partial_probability:
            return Decimal(self._rng.randint(20, 80)) / 100
        return Decimal(1)

    def _new_order_id(self) -> str:
        self._order_seq += 1
        return f"paper-{self._order_seq}"

    def _fill_perp(self, request: OrderRequest) -> OrderResult:
        pm = self._paper_market(request.symbol)
        market = pm.market
        if market.expiry is not None and self.clock.now() >= market.expiry - PRE_DELIVERY_SECONDS:
            state = "delivered" if self.clock.now() >= market.expiry else "PRE_DELIVERING"
            raise InvalidOrder(f"{request.symbol} is {state}: the exchange takes no order on it")
        mark = self._mark(request.symbol)
        if request.amount != floor_to_step(request.amount, market.amount_step):
            raise InvalidOrder(f"amount {request.amount} is not a multiple of the step {market.amount_step}")
        if request.amount < market.min_amount:
            raise InvalidOrder(f"amount {request.amount} below the minimum {market.min_amount}")
        if self.position_mode is PositionMode.ONE_WAY:
            if request.position_side is not None:
                raise InvalidOrder(
                    f"order names position side {request.position_side.value.upper()} but the account is in "
                    "one-way mode; switch the account to hedge mode"
                )
            return self._fill_one_way(request, pm, mark)
        if request.position_side is None:
            raise InvalidOrder("the account is in hedge mode: an order must name its position side")
        if request.reduce_only:
            raise InvalidOrder(
                "-1106 Parameter 'reduceOnly' sent when not required: in hedge mode a position is closed "
                "by its side (BUY on SHORT, SELL on LONG), without reduceOnly"
            )
        side = request.position_side
        opening = (request.side is OrderSide.SELL) == (side is PositionSide.SHORT)
        state = self.legs.setdefault((request.symbol, side.value), _LegState())
        if not opening and request.amount > state.size:
            raise InvalidOrder(
                f"closing {request.amount} exceeds the {side.value} position of {state.size}; nothing was done"
            )
        rule = rule_for(market)
        if opening and not market.inverse and request.amount * mark < market.min_notional:
            raise InvalidOrder(f"notional {request.amount * mark} below the minimum {market.min_notional}")
        filled = floor_to_step(request.amount * self._fill_fraction(), market.amount_step)
        if filled < market.min_amount:
            filled = request.amount
        price = mark * (1 + self.slippage) if request.side is OrderSide.BUY else mark * (1 - self.slippage)
        # Commission on the notional, in the margin asset, booked to 8 decimals.
        fee = (rule.notional(filled, price) * market.taker_fee).quantize(BOOKED_STEP, ROUND_CEILING)
        if opening:
            self._grow(state, pm, price, filled, fee, direction=1)
        else:
            self._shrink(state, pm, price, filled, fee, pnl_sign=1 if side is PositionSide.LONG else -1, direction=1)
        status = OrderStatus.FILLED if filled == request.amount else OrderStatus.PARTIAL
        return OrderResult(
            request.client_id, self._new_order_id(), request.symbol, request.side, side,
            request.amount, filled, price, fee, status, self.clock.now(),
        )

    def _grow(self, state: _LegState, pm: PaperMarket, price: Decimal, amount: Decimal, fee: Decimal, direction: int) -> None:
        """Add to a position, posting initial margin; `direction` is how the size is stored (+1, or -1 for a one-way short)."""
        quote = pm.market.margin_asset
        cost = rule_for(pm.market).notional(amount, price) / pm.leverage
        free = self._free(quote)
        if free < cost + fee:
            raise InsufficientFunds(f"margin {cost + fee:.8f} {quote} needed, {free:.8f} free in the futures wallet")
        size = abs(state.size)
        if pm.market.inverse:
            # An inverse leg's entry is the harmonic mean: face value over the coins it was bought for.
            state.entry = (size + amount) / ((size / state.entry if size else ZERO) + amount / price)
        else:
            state.entry = (state.entry * size + price * amount) / (size + amount)
        state.size += direction * amount
        if pm.margin_mode is MarginMode.ISOLATED:
            state.margin += cost
            self._add_cash(quote, -cost)
        self._add_cash(quote, -fee)

    def _shrink(
        self, state: _LegState, pm: PaperMarket, price: Decimal, amount: Decimal, fee: Decimal, pnl_sign: int, direction: int
    ) -> None:
        """Reduce a position, realizing its PnL and releasing its share of isolated margin."""
        size = abs(state.size)
        side = PositionSide.LONG if pnl_sign > 0 else PositionSide.SHORT
        pnl = rule_for(pm.market).pnl(Leg(side, amount, state.entry), price)
        released = state.margin * amount / size if pm.margin_mode is MarginMode.ISOLATED else ZERO
        state.margin -= released
        state.size -= direction * amount
        if state.size == 0:
            state.entry = ZERO
            released += state.margin
            state.margin = ZERO
        self._add_cash(pm.market.margin_asset, released + pnl - fee)

    def _fill_one_way(self, request: OrderRequest, pm: PaperMarket, mark: Decimal) -> OrderResult:
        market = pm.market
        state = self.legs.setdefault((request.symbol, _ONE_WAY), _LegState())
        buying = request.side is OrderSide.BUY
        price = mark * (1 + self.slippage) if buying else mark * (1 - self.slippage)
        fee = (rule_for(market).notional(request.amount, price) * market.taker_fee).quantize(BOOKED_STEP, ROUND_CEILING)
        if state.size == 0 or (state.size > 0) == buying:
            self._grow(state, pm, price, request.amount, fee, direction=1 if buying else -1)
        else:
            if request.amount > abs(state.size):
                raise InvalidOrder("paper one-way mode does not flip a position in one order")
            sign = 1 if state.size > 0 else -1
            self._shrink(state, pm, price, request.amount, fee, pnl_sign=sign, direction=sign)
        return OrderResult(
            request.client_id, self._new_order_id(), request.symbol, request.side, None,
            request.amount, request.amount, price, fee, OrderStatus.FILLED, self.clock.now(),
        )

    def _fill_spot(self, request: OrderRequest) -> OrderResult:
        base, _, quote = request.symbol.partition("/")
        perp = next((pm for pm in self.markets.values() if pm.market.base == base and pm.market.quote == quote), None)
        if perp is None:
            raise InvalidOrder(f"paper venue has no spot market {request.symbol!r}")
        mark = self._mark(perp.market.symbol)
        if request.position_side is not None:
            raise InvalidOrder("spot orders take no position side")
        if request.side is OrderSide.SELL:
            price = mark * (1 - self.slippage)
            if self.spot.get(base, ZERO) < request.amount:
                raise InsufficientFunds(f"spot {base} {self.spot.get(base, ZERO)} < {request.amount}")
            proceeds = request.amount * price
            fee = proceeds * self.spot_fee
            self.spot[base] = self.spot.get(base, ZERO) - request.amount
            self.spot[quote] = self.spot.get(quote, ZERO) + proceeds - fee
        else:
            price = mark * (1 + self.slippage)
            cost = request.amount * price
            fee = cost * self.spot_fee
            if self.spot.get(quote, ZERO) < cost + fee:
                raise InsufficientFunds(f"spot {quote} {self.spot.get(quote, ZERO)} < {cost + fee}")
            self.spot[quote] = self.spot.get(quote, ZERO) - cost - fee
            self.spot[base] = self.spot.get(base, ZERO) + request.amount
        return OrderResult(
            request.client_id, self._new_order_id(), request.symbol, request.side, None,
            request.amount, request.amount, price, fee, OrderStatus.FILLED, self.clock.now(),
        )

    # ---- funds ----------------------------------------------------------------

    def _add_cash(self, asset: str, amount: Decimal) -> None:
        self.cash[asset] = self.cash.get(asset, ZERO) + amount

    def _bound_orders(self) -> None:
        while self.history_kept is not None and len(self.orders) > self.history_kept:
            del self.orders[next(iter(self.orders))]

    def _record_movement(self, kind: str, asset: str, amount: Decimal) -> FundsMovement:
        self._movement_seq += 1
        movement = FundsMovement(f"paper-{kind}-{self._movement_seq}", kind, asset, amount, self.clock.now())
        self.movements.append(movement)
        self._unsaved_movements.append(movement)
        if self.history_kept is not None and len(self.movements) > 2 * self.history_kept:
            del self.movements[: -self.history_kept]
        self._changed()
        return movement

    async def adjust_margin(self, symbol: str, side: PositionSide, amount: Decimal) -> FundsMovement:
        """Add or remove isolated margin on a leg (like Binance, with no client id)."""
        pm = self._paper_market(symbol)
        if pm.margin_mode is not MarginMode.ISOLATED:
            raise ModeError(f"{symbol} is in cross margin: margin cannot be added to one leg")
        state = self.legs.get((symbol, side.value))
        if state is None or state.size <= 0:
            raise InvalidOrder(f"no {side.value} position on {symbol} to add margin to")
        quote = pm.market.margin_asset
        if amount > 0 and self._free(quote) < amount:
            raise InsufficientFunds(f"{amount} {quote} needed, {self._free(quote)} free in the futures wallet")
        if amount < 0:
            # Binance lets isolated margin go down to the position's initial margin at the mark, not below.
            mark = self._mark(symbol)
            leg = Leg(side, state.size, state.entry, state.margin)
            rule = rule_for(pm.market)
            initial = rule.notional(leg.size, mark) / pm.leverage
            removable = leg.margin + min(rule.pnl(leg, mark), ZERO) - initial
            if -amount > removable:
                raise InsufficientFunds(
                    f"removing {-amount} {quote} would take the leg below its initial margin {initial:.2f} "
                    f"(at most {max(removable, ZERO):.2f} can be removed)"
                )
        state.margin += amount
        self._add_cash(quote, -amount)
        movement = self._record_movement("margin", quote, amount)
        await self.durable()
        return movement

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, destination: Wallet) -> FundsMovement:
        """Move an asset between the spot and futures wallets (like Binance, with no client id)."""
        if amount <= 0 or source is destination:
            raise InvalidOrder(f"bad transfer of {amount} {asset} from {source} to {destination}")
        if source is Wallet.SPOT:
            if self.spot.get(asset, ZERO) < amount:
                raise InsufficientFunds(f"spot {asset} {self.spot.get(asset, ZERO)} < {amount}")
            self.spot[asset] = self.spot.get(asset, ZERO) - amount
            self._add_cash(asset, amount)
        else:
            if self._free(asset) < amount:
                raise InsufficientFunds(f"futures {asset} free {self._free(asset)} < {amount}")
            self._add_cash(asset, -amount)
            self.spot[asset] = self.spot.get(asset, ZERO) + amount
        movement = self._record_movement("transfer", asset, amount)
        await self.durable()
        return movement

    def deposit(self, wallet: Wallet, asset: str, amount: Decimal) -> Decimal:
        """Credit (or, negative, debit) a wallet from outside; return what moved."""
        book = self.spot if wallet is Wallet.SPOT else self.cash
        held = book.get(asset, ZERO)
        moved = max(amount, -held)
        book[asset] = held + moved
        self._changed()
        return moved

    # ---- persistence ------------------------------------------------------------

    def to_dict(self) -> dict:
        """Return the venue's whole state as JSON-ready data."""
        return {
            **self._balances_dict(),
            "orders": {cid: _order_to_dict(o) for cid, o in self.orders.items()},
            "movements": [_movement_to_row(m) for m in self.movements],
        }

    def _whole_record(self) -> dict:
        """Return the account for its file: the state, and every order and movement kept."""
        return {
            "state": self._balances_dict(),
            "orders": {cid: _order_to_dict(o) for cid, o in self.orders.items()},
            "movements": [_movement_to_row(m) for m in self.movements],
        }

    def _change_record(self) -> dict:
        """Return one change for the log: the state, and only the orders and movements new since the record before."""
        return {
            "state": self._balances_dict(),
            "orders": {cid: _order_to_dict(o) for cid, o in self._unsaved_orders.items()},
            "movements": [_movement_to_row(m) for m in self._unsaved_movements],
        }

    def _balances_dict(self) -> dict:
        """Return everything but the order and movement history, JSON-ready and shared with nothing the venue mutates."""
        return {
            "position_mode": self.position_mode.value,
            "spot": {k: str(v) for k, v in self.spot.items()},
            "cash": {k: str(v) for k, v in self.cash.items()},
            "markets": {
                s: {"leverage": pm.leverage, "margin_mode": pm.margin_mode.value} for s, pm in self.markets.items()
            },
            "legs": {f"{s}|{side}": [str(st.size), str(st.entry), str(st.margin)] for (s, side), st in self.legs.items()},
            "marks": {s: [str(p), t] for s, (p, t) in self.marks.items()},
            "funding_checked": dict(self.funding_checked),
            "order_seq": self._order_seq,
            "movement_seq": self._movement_seq,
            "created_with": self.created_with,
            "script_positions": dict(self.script_positions),
            "delivered": sorted(self._delivered),
        }

    def restore(self, data: dict) -> None:
        """Load state written by `to_dict`."""
        self.position_mode = PositionMode(data["position_mode"])
        self.spot = {k: _d(v) for k, v in data["spot"].items()}
        self.cash = {k: _d(v) for k, v in data["cash"].items()}
        for symbol in [*data.get("markets", {}), *data.get("marks", {})]:
            if symbol not in self.markets:
                self._delivery_market(symbol)  # a quarterly traded before the restart
        self._delivered = set(data.get("delivered", []))
        for symbol, settings in data.get("markets", {}).items():
            if symbol in self.markets:
                self.markets[symbol].leverage = int(settings["leverage"])
                self.markets[symbol].margin_mode = MarginMode(settings["margin_mode"])
        self.legs = {}
        for key, (size, entry, margin) in data["legs"].items():
            symbol, _, side = key.rpartition("|")
            self.legs[(symbol, side)] = _LegState(_d(size), _d(entry), _d(margin))
        self.marks = {s: (_d(p), float(t)) for s, (p, t) in data["marks"].items()}
        self.funding_checked = {s: float(t) for s, t in data.get("funding_checked", {}).items()}
        self._funding_due.clear()
        self.orders = {cid: _order_from_dict(o) for cid, o in data["orders"].items()}
        rows = data.get("movements", [])
        if isinstance(rows, dict):  # written before movements lost their client ids
            rows = [[vid, *row] for vid, row in rows.items()]
        self.movements = [FundsMovement(vid, kind, asset, _d(amount), float(ts)) for vid, kind, asset, amount, ts in rows]
        self._order_seq = int(data.get("order_seq", len(self.orders)))
        self._movement_seq = int(data.get("movement_seq", len(self.movements)))
        self._bound_orders()
        if self.history_kept is not None:
            del self.movements[: -self.history_kept]
        self.created_with = data.get("created_with")  # None: saved before hedgebot recorded it
        self.script_positions = {k: int(v) for k, v in data.get("script_positions", {}).items()}

    def _store_of_path(self) -> PaperStore | None:
        if self.state_path is None:
            return None
        if self._store is None or self._store.state_path != self.state_path:
            self._store = PaperStore.of(self.state_path)
        return self._store

    def save(self) -> None:
        """Queue the changes since the last save for the state file (off the event loop on the real clock).

        One record carries the balances, legs and settings and only the orders and movements new since the record
        before (hedgebot.exchange.paper_store). `durable` waits until it is on disk.
        """
        store = self._store_of_path()
        if store is None:
            return
        self._last_write = store.save(self._whole_record, self._change_record, inline=self._write_inline)
        self._unsaved_orders = {}
        self._unsaved_movements = []

    async def durable(self) -> None:
        """Wait, off the event loop, until every change saved so far is on disk (raise if its write failed)."""
        write = self._last_write
        if write is None:
            return
        if not write.done():
            await asyncio.wrap_future(write)
        write.result()

    def load(self) -> bool:
        """Restore from the state path (its file and the history logged beside it); return whether it did."""
        store = self._store_of_path()
        if store is None or self.state_path is None:
            return False
        store.flush()  # another venue of this process may still be writing it
        found = read_account(self.state_path)
        if found is None:
            store.resume(0)  # a deleted account starts afresh: a log left beside it is rewritten at the first change
            return False
        data, seq = found
        self.restore(data)
        store.resume(seq)
        self.restored_from = self.state_path
        return True


def _movement_to_row(m: FundsMovement) -> list:
    return [m.venue_id, m.kind, m.asset, str(m.amount), m.timestamp]


def _order_to_dict(order: OrderResult) -> dict:
    return {
        "client_id": order.client_id,
        "order_id": order.order_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "position_side": order.position_side.value if order.position_side else None,
        "amount": str(order.amount),
        "filled": str(order.filled),
        "price": str(order.average_price),
        "fee": str(order.fee),
        "status": order.status.value,
        "timestamp": order.timestamp,
    }


def _order_from_dict(data: dict) -> OrderResult:
    return OrderResult(
        data["client_id"],
        data["order_id"],
        data["symbol"],
        OrderSide(data["side"]),
        PositionSide(data["position_side"]) if data["position_side"] else None,
        _d(data["amount"]),
        _d(data["filled"]),
        _d(data["price"]),
        _d(data["fee"]),
        OrderStatus(data["status"]),
        float(data["timestamp"]),
    )
