"""The put leg: long puts kept on `ratio` of the coins held, struck near `floor` × the price, rolled before expiry.

The daemon builds one for a hedge whose instrument holds options
(`InstrumentKind.option`) in place of the futures Keeper. Each tick it:

1. settles puts whose expiry has passed (the book pays their intrinsic value);
2. buys a new series when none is held, when the held one is within
   `roll_before` of its expiry, or (opt-in) when price / strike exceeds
   `roll_up_when`: the first listed expiry at least `expiry_days` away, the
   strike nearest `floor` × price;
3. only once the new series is held, sells every other series (a roll buys
   first, then sells: a crash between the two leaves more protection, never none);
4. re-sizes the held series when it differs from the target by more than the band.

Every order is a limit order at the quoted ask (buy) or bid (sell), and only
when that quote is within `MAX_OVER_MARK` of the mark (`engine.put_quote`): a chain without a
sensible quote makes the leg wait and alert, it never pays any price. A
purchase is cut to what `max_premium_per_order` and what is left of
`max_premium_per_month` (the last 30 days) allow, fees included.

Every order is an intent in the journal, begun before it is sent under its
client id and finished with its outcome. After a crash, open intents are
looked up by client id before anything else, so a purchase that reached the
book is never made again.

This module owns the leg's decisions and its journaled orders; the options book's protocols are
`engine.put_book`, the quote check `engine.put_quote`, and the status record `engine.put_status`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.config import HedgeConfig
from hedgebot.domain.model import Market, Severity, floor_to_step
from hedgebot.engine.put_book import OptionsBook, PaperBook, PriceAndCoins, options_book_of
from hedgebot.engine.put_quote import quote_problem
from hedgebot.engine.put_status import PutLegStatus
from hedgebot.exchange.paper_options import OptionQuoteBook, PutSeries
from hedgebot.exchange.port import ExchangeError, PermanentError
from hedgebot.ops.events import EventLog
from hedgebot.store.journal import IntentStatus, JournalStore, NewEvent

ZERO = Decimal(0)
MONTH_SECONDS = 30 * 86400
# Fees are charged on top of the premium; a purchase is sized as if they took this share of it (Deribit's cap: 12.5 %).
FEE_ALLOWANCE = Decimal("0.125")
BUY, SELL = "put_buy", "put_sell"


class PutLeg:
    """Keep a hedge's long puts (see the module's docstring)."""

    def __init__(
        self, account: str, hedge: HedgeConfig, venue: PriceAndCoins, book: OptionsBook, clock: Any,
        journal: JournalStore, events: EventLog,
    ) -> None:
        assert hedge.floor is not None and hedge.expiry_days is not None
        self.account, self.hedge, self.venue, self.book = account, hedge, venue, book
        # A live book speaks the asynchronous protocol itself; the paper book is wrapped.
        self._book: OptionsBook = book if hasattr(book, "refresh") else PaperBook(book)  # type: ignore[assignment]
        self.clock, self.journal, self.events = clock, journal, events
        self.wake = asyncio.Event()
        self.lookup_failed = False
        self.refill = None  # a put has no margin to refill
        self.disk: Any = None
        self._stopped = False
        self.market: Market | None = None
        # What the operations surface reads of a futures keeper: a put leg observes no futures leg.
        self.last_snapshot = None
        self.last_venue_error_at: float | None = None
        self.exchange_errors: Counter[str] = Counter()
        self._last_price_at: float | None = None
        self._waiting: str | None = None
        self._target = ZERO
        self.status = self._status(ZERO, None, ticked=False)

    # ---- the daemon's side --------------------------------------------------------

    async def prepare(self) -> None:
        """Load the market the puts are struck on; a bought put needs no position mode, margin mode or leverage.

        The book is told what the journal says is held: a put the exchange settled while the daemon was stopped is then
        seen gone at expiry, and reported settled at the exchange's price.
        """
        self.market = await self.venue.load_market(self.hedge.symbol)
        self._book.expect(self._journal_held())

    def _journal_held(self) -> dict[PutSeries, Decimal]:
        """Return the puts the journal's fills and settlements leave held, by series."""
        held: dict[PutSeries, Decimal] = {}
        for intent in self.journal.intents(self.account, self.hedge.name):
            out = intent.outcome or {}
            if intent.status is not IntentStatus.DONE or "amount" not in out:
                continue
            series = PutSeries(Decimal(out["strike"]), float(out["expiry"]))
            held[series] = held.get(series, ZERO) + (Decimal(out["amount"]) if intent.kind == BUY else -Decimal(out["amount"]))
        for event in self.journal.events(self.account, self.hedge.name, "put_settled"):
            series = PutSeries(Decimal(event.detail["strike"]), float(event.detail["expiry"]))
            held[series] = held.get(series, ZERO) - Decimal(event.detail["amount"])
        return {s: a for s, a in held.items() if a > 0}

    def reconfigure(self, hedge: HedgeConfig, calendar: Any = None) -> None:
        """Take a reloaded hedge config from the next tick (a put leg has no schedule windows)."""
        self.hedge = hedge
        self.wake.set()

    def not_ready_reason(self, now: float) -> str:
        """Return why the leg is not ready (no tick yet, a stale price, a wait), or "" when it is."""
        if self._last_price_at is None:
            return "no observation yet"
        age = now - self._last_price_at
        if age > self.hedge.staleness_seconds + self.hedge.tick_seconds:
            return f"price last read {age:.0f}s ago"
        return ""

    def notify_price(self, price: Decimal) -> None:
        """Wake on a new price: the roll-up rule and the strike depend on it."""
        self.wake.set()

    def notify_balance(self) -> None:
        """Wake when the account changed: the coins held set the target."""
        self.wake.set()

    def stop(self) -> None:
        """End the loop after the current tick."""
        self._stopped = True
        self.wake.set()

    async def run(self) -> None:
        """Tick every `tick_seconds`, or at once when woken, until stopped."""
        while not self._stopped:
            self.wake.clear()
            try:
                await self.tick()
            except ExchangeError as exc:
                self.exchange_errors[type(exc).__name__] += 1
                self.last_venue_error_at = self.clock.now()
                self._alert("put_leg_failed", Severity.WARNING, error=str(exc))
            if self._stopped:
                break
            await self.clock.wait_for(self.wake, self.hedge.tick_seconds)
        # The puts stay held, but nothing keeps them now: status must not say "active" after a stop.
        self.status = replace(self.status, state="stopped", updated_at=self.clock.now())

    async def settle_open_intents(self) -> bool:
        """Look up every open order intent of this hedge by its client id, before anything else; True when none is left.

        A lookup that finds the order settles it (done, or absent when nothing executed). A miss proves nothing
        until the book's settle delay has passed since the order was sent (lookups lag); after it, the book's own
        proof (a live book reads the order history) settles it absent. `lookup_failed` says the venue could not
        be asked.
        """
        self.lookup_failed = False
        left = 0
        for intent in self.journal.open_intents(self.account, self.hedge.name):
            series = PutSeries(Decimal(intent.detail["strike"]), float(intent.detail["expiry"]))
            settled = self.clock.now() - intent.created_at >= self._book.settle_seconds
            try:
                looked = await self._book.lookup(intent.client_id, series, intent.created_at, settled)
            except ExchangeError as exc:
                self.lookup_failed = True
                self._alert("put_lookup_failed", Severity.WARNING, client_id=intent.client_id, error=str(exc))
                left += 1
                continue
            if looked.fill is not None:
                self._finish(intent.client_id, intent.kind, IntentStatus.DONE, looked.fill.to_json(), recovered=True)
            elif looked.known:
                self.journal.finish(intent.client_id, IntentStatus.ABSENT, {"error": "not executed: found by client id without a fill, or in no record"})
            else:
                left += 1
        return left == 0

    # ---- the tick -----------------------------------------------------------------

    async def tick(self) -> None:
        """Settle, roll, re-size: one pass of the rules in the module's docstring."""
        await self._book.refresh()
        if self.journal.open_intents(self.account, self.hedge.name):
            if not await self.settle_open_intents():
                # An order of unknown outcome is looked up before any other goes out: none is sent while one is open.
                self._last_price_at = self.clock.now()
                self._wait("an order of unknown outcome is being looked up by its client id")
                self.status = self._status(Decimal((await self.venue.fetch_mark_price(self.hedge.symbol)).price), self._current())
                return
            await self._book.refresh()  # what the settled orders changed
        for settled in await self._book.settle_expired():
            self.events.emit(
                self.account, self.hedge.name, "put_settled", Severity.INFO, strike=str(settled.series.strike),
                expiry=settled.series.expiry, amount=str(settled.amount), price=str(settled.price), payoff=str(settled.payoff),
            )
        price = Decimal((await self.venue.fetch_mark_price(self.hedge.symbol)).price)
        self._last_price_at = self.clock.now()
        target = await self._target_amount()
        self._target = target
        self._waiting = None
        current = self._current()
        if target > 0 and self._needs_new(current, price):
            series = self._choose(price)
            if series is not None and series != current:
                await self._buy(series, target)
                if self._book.held.get(series, ZERO) > 0:
                    current = series
        # The old series go only as far as the new one covers the target: a roll cut short by the premium caps
        # keeps the rest of the old protection until the new one is complete (or the old one expires).
        excess = sum(self._book.held.values(), ZERO) - max(target, self._book.held.get(current, ZERO) if current else ZERO)
        for series, amount in sorted(self._book.held.items(), key=lambda item: (item[0].expiry, item[0].strike)):
            if series != current and excess > 0:
                part = min(amount, floor_to_step(excess, self._book.amount_step))
                await self._sell(series, part, "roll")
                excess -= part
        if current is not None and current in self._book.held:
            held = self._book.held[current]
            if target == 0:
                await self._sell(current, held, "no exposure")
            elif abs(held - target) > self.hedge.band * target:
                if held < target:
                    await self._buy(current, target - held)
                else:
                    await self._sell(current, floor_to_step(held - target, self._book.amount_step), "resize")
        self.status = self._status(price, self._current())

    async def _target_amount(self) -> Decimal:
        coins = ZERO
        if self.hedge.exposure.spot:
            coins = (await self.venue.fetch_spot_balances()).get(self.hedge.asset, ZERO)
        coins = max(coins - self.hedge.exposure.offset, ZERO)
        return floor_to_step(coins * self.hedge.ratio, self._book.amount_step)

    def _current(self) -> PutSeries | None:
        """Return the series the leg keeps: the latest expiry held, the highest strike among those."""
        held = [s for s, a in self._book.held.items() if a > 0]
        return max(held, key=lambda s: (s.expiry, s.strike)) if held else None

    def _needs_new(self, current: PutSeries | None, price: Decimal) -> bool:
        if current is None:
            return True
        if current.expiry - self.clock.now() <= self.hedge.put_roll_before:
            return True
        return self.hedge.roll_up_when is not None and price / current.strike > self.hedge.roll_up_when

    async def first_purchase(self) -> tuple[PutSeries | None, Decimal, OptionQuoteBook | None]:
        """Return what the leg would buy now, with nothing held: the series, the amount and its quote (for `check`)."""
        await self._book.refresh()
        price = Decimal((await self.venue.fetch_mark_price(self.hedge.symbol)).price)
        series = self._choose(price)
        return series, await self._target_amount(), self._book.quote_of(series) if series is not None else None

    def _choose(self, price: Decimal) -> PutSeries | None:
        """Return the first listed expiry at least expiry_days (and more than roll_before) away, strike nearest the floor."""
        assert self.hedge.floor is not None and self.hedge.expiry_days is not None
        now = self.clock.now()
        listed = self._book.listed()
        horizon = now + max(self.hedge.expiry_days * 86400, self.hedge.put_roll_before + 1)
        expiries = sorted({s.expiry for s in listed})
        covering = [e for e in expiries if e >= horizon]
        if not covering:
            later = [e for e in expiries if e - now > self.hedge.put_roll_before]
            if not later:
                self._wait("no listed expiry lies beyond roll_before")
                return None
            covering = [later[-1]]
        target = self.hedge.floor * price
        strikes = [s for s in listed if s.expiry == covering[0]]
        return min(strikes, key=lambda s: (abs(s.strike - target), s.strike))

    # ---- orders -------------------------------------------------------------------

    def _sensible(self, quote: OptionQuoteBook | None, side: str) -> str | None:
        return quote_problem(quote, side, self._book.tick)

    def _premium_since(self, since: float) -> Decimal:
        total = ZERO
        for intent in self.journal.intents(self.account, self.hedge.name):
            if intent.kind == BUY and intent.status is IntentStatus.DONE and intent.outcome and float(intent.outcome["at"]) >= since:
                total += -Decimal(intent.outcome["cash"]) if "cash" in intent.outcome else ZERO
        return total

    async def _buy(self, series: PutSeries, amount: Decimal) -> None:
        assert self.hedge.max_premium_per_order is not None and self.hedge.max_premium_per_month is not None
        quote = self._book.quote_of(series)
        why = self._sensible(quote, "buy")
        if why is not None or quote is None:
            self._wait("no sensible quote", why=why, series=series.symbol)
            return
        left = self.hedge.max_premium_per_month - self._premium_since(self.clock.now() - MONTH_SECONDS)
        budget = min(self.hedge.max_premium_per_order, left)
        per_contract = quote.ask * (1 + FEE_ALLOWANCE)
        affordable = floor_to_step(budget / per_contract, self._book.amount_step) if budget > 0 else ZERO
        size = min(floor_to_step(amount, self._book.amount_step), affordable)
        if 0 < size < amount:  # a smaller purchase is said each time; none at all is a wait, said once
            self._alert(
                "put_premium_capped", Severity.WARNING, wanted=str(amount), buying=str(size), ask=str(quote.ask),
                left_this_month=str(left), max_premium_per_order=str(self.hedge.max_premium_per_order),
            )
        if size <= 0:
            self._wait("the premium caps leave nothing to buy with", left_this_month=str(left))
            return
        await self._order(BUY, series, "buy", size, quote.ask)

    async def _sell(self, series: PutSeries, amount: Decimal, why: str) -> None:
        if amount <= 0:
            return
        quote = self._book.quote_of(series)
        if self._sensible(quote, "sell") is not None or quote is None:
            return  # kept: it still protects, and settles by itself at expiry
        await self._order(SELL, series, "sell", amount, quote.bid, reason=why)

    async def _order(self, kind: str, series: PutSeries, side: str, amount: Decimal, limit: Decimal, **extra: str) -> None:
        detail = {"strike": str(series.strike), "expiry": series.expiry, "side": side, "amount": str(amount),
                  "limit": str(limit), **extra}
        intent = self.journal.begin(self.account, self.hedge.name, kind, detail)
        from hedgebot.engine import crashpoints  # noqa: PLC0415 - the same crash points as the futures keeper

        crashpoints.reached("intent_journaled")
        try:
            fill = await self._book.place_limit(intent.client_id, series, side, amount, limit)
        except PermanentError as exc:
            self._finish(intent.client_id, kind, IntentStatus.REJECTED, {"error": str(exc)})
            self._alert("put_order_rejected", Severity.WARNING, error=str(exc), **detail)
            return
        except ExchangeError as exc:
            # Its outcome is unknown: looked up by client id before the next order (settle_open_intents).
            self.journal.finish(intent.client_id, IntentStatus.UNKNOWN, {"error": str(exc)})
            raise
        crashpoints.reached("action_sent")
        if fill is None:
            self._finish(intent.client_id, kind, IntentStatus.ABSENT, {"error": "the limit did not cross the book: cancelled"})
            self._wait("a limit order was not filled", side=side, series=series.symbol, limit=str(limit))
            return
        self._finish(intent.client_id, kind, IntentStatus.DONE, fill.to_json())
        crashpoints.reached("outcome_journaled")

    def _finish(self, client_id: str, kind: str, status: IntentStatus, outcome: dict[str, Any], recovered: bool = False) -> None:
        events: Sequence[NewEvent] = ()
        if status is IntentStatus.DONE:
            name = "put_bought" if kind == BUY else "put_sold"
            events = [NewEvent(self.account, self.hedge.name, name, Severity.INFO.value, {**outcome, "recovered": recovered})]
        self.journal.finish(client_id, status, outcome, events)

    # ---- alerts and status --------------------------------------------------------

    def _alert(self, kind: str, severity: Severity, **detail: Any) -> None:
        self.events.emit(self.account, self.hedge.name, kind, severity, **detail)

    def _wait(self, reason: str, **detail: Any) -> None:
        """Wait, and alert once per reason (not every tick)."""
        if self.status.waiting != reason:
            self._alert("put_leg_waiting", Severity.WARNING, reason=reason, **detail)
        self._waiting = reason

    def _status(self, price: Decimal, current: PutSeries | None, ticked: bool = True) -> PutLegStatus:
        assert self.hedge.floor is not None
        paid = payoff = ZERO
        for intent in self.journal.intents(self.account, self.hedge.name):
            if intent.status is IntentStatus.DONE and intent.outcome and "cash" in intent.outcome:
                cash = Decimal(intent.outcome["cash"])
                if intent.kind == BUY:
                    paid -= cash
                else:
                    payoff += cash
        for event in self.journal.events(self.account, self.hedge.name, "put_settled"):
            payoff += Decimal(event.detail["payoff"])
        value = delta = ZERO
        for series, amount in self._book.held.items():
            quote = self._book.quote_of(series)
            if quote is not None:
                value += quote.mark * amount
                delta += Decimal(repr(quote.delta)) * amount
        now = self.clock.now()
        return PutLegStatus(
            self.account, self.hedge.name, self.hedge.floor, current.strike if current else None,
            current.expiry if current else None, self._book.held.get(current, ZERO) if current else ZERO, self._target,
            paid, self._premium_since(now - MONTH_SECONDS), payoff, value.quantize(Decimal("0.01")),
            delta.quantize(Decimal("0.0001")), self._waiting, now if ticked else None,
            "starting" if not ticked else "waiting" if self._waiting else "active",
        )


def paper_put_leg(
    account: Any, hedge: HedgeConfig, venue: PriceAndCoins, simulated: Any, clock: Any, journal: JournalStore,
    events: EventLog, state_dir: Path,
) -> PutLeg:
    """Return the put leg of a paper account's hedge, giving its paper venue an options book (saved in `state_dir`)."""
    from hedgebot.domain.vol_surface import load_surface  # noqa: PLC0415 - paper only
    from hedgebot.exchange.paper_options import attach_options  # noqa: PLC0415 - paper only

    from hedgebot.engine.keeper import StartupRefused  # noqa: PLC0415 - the daemon's refusal

    puts = [h.name for h in account.hedges if h.instrument.option]
    if len(puts) > 1:
        raise StartupRefused(
            f"account {account.name!r} has {len(puts)} put hedges ({', '.join(puts)}): a paper account keeps one options "
            "book, whose puts one hedge owns; give each put hedge its own paper account"
        )
    book = options_book_of(simulated)
    if book is None:
        paper = account.paper
        quote = hedge.symbol.split("/")[1].split(":")[0]
        surface = paper.option_volatility_surface
        made = attach_options(
            simulated, hedge.symbol, hedge.asset, quote, lambda: paper.option_volatility,
            path=state_dir / f"options-{account.name}.json",
            surface=load_surface(surface) if surface is not None else None,  # checked when the config was read
        )
        made.spread = paper.option_spread
        book = made
    return PutLeg(account.name, hedge, venue, book, clock, journal, events)


def live_put_leg(
    account: Any, hedge: HedgeConfig, venue: PriceAndCoins, setup: Any, clock: Any, journal: JournalStore, events: EventLog,
) -> PutLeg:
    """Return the put leg of a live account's hedge on the account's Binance options (its `setup.options`, or a new one).

    The options book uses the account's own key: on Binance the options account answers to the same API key once the
    user has opened it and allowed options trading on the key.
    """
    from hedgebot.exchange.binance_options_book import BinanceOptionsBook  # noqa: PLC0415 - live only
    from hedgebot.exchange.factory import _secrets  # noqa: PLC0415

    from hedgebot.engine.keeper import StartupRefused  # noqa: PLC0415 - the daemon's refusal

    puts = [h.name for h in account.hedges if h.instrument.option]
    if len(puts) > 1:
        raise StartupRefused(
            f"account {account.name!r} has {len(puts)} put hedges ({', '.join(puts)}): the account's options positions "
            "cannot be told apart by hedge; give each put hedge its own account (a sub-account on Binance)"
        )
    if setup.options is None:
        api_key, secret, _ = _secrets(account)
        setup.options = BinanceOptionsBook.connect(hedge.asset, clock, api_key=api_key, secret=secret,
                                                   api_base_url=account.api_base_url)
    return PutLeg(account.name, hedge, venue, setup.options, clock, journal, events)
