"""Start-up checks and the exchange's clock: what `prepare` verifies before a hedge trades.

Owns: loading the contract, its margin mode and leverage, the size and order-limit checks, the refusals
(`StartupRefused` and its kinds), and the exchange's clock offset (measured, judged, used for schedules).
May not touch: the journal's intents, trading states, the plan; it sends no order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hedgebot.domain import policy
from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import MarginMode, Market, Severity, floor_to_step
from hedgebot.exchange.port import ExchangeError, ModeError
from hedgebot.ops.figures import Precision


class StartupRefused(Exception):
    """The account or contract is not in a state hedgebot may trade; the message says why."""


class StartupDeferred(StartupRefused):
    """Something the start needs does not answer yet (a database coming up): a later start may succeed."""


class StartupStopped(StartupRefused):
    """A stop was asked for while the start was still waiting: nothing was started, nothing is wrong."""


class StartupChecks:
    """Prepares the contract for trading, refusing what cannot be hedged safely; measures the exchange's clock.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    def _clock_offset(self) -> float | None:
        """Return how far the exchange's clock runs ahead of ours (0 for venues on our clock; None: not measured)."""
        return getattr(self.port, "clock_offset", 0.0)

    async def _measure_clock(self) -> None:
        """Measure the exchange's clock when the venue can; a failure leaves it unmeasured (risk waits)."""
        measure = getattr(self.port, "measure_clock", None)
        if measure is None:
            return
        try:
            offset = await self._read(measure)
        except ExchangeError as exc:
            self._venue_error(exc)
            return
        self._emit("exchange_clock_measured", offset_seconds=round(float(offset), 3), venue=self.port.name)

    def _exchange_now(self) -> float:
        """Return the time by the exchange's clock: ours plus its measured offset (ours while it is unmeasured)."""
        return self.clock.now() + (self._clock_offset() or 0.0)

    def _schedule_time(self) -> float | None:
        """Return the time a schedule's windows and end are judged on (the exchange's), or None while the clocks disagree.

        A wall clock stepped a day ahead must not end a hedge a day early: the exchange's time is the world's.
        """
        if self._clock_offset() is None or self._clock_problem() is not None:
            return None
        return self._exchange_now()

    def _clock_problem(self) -> str | None:
        """Return why the exchange's clock cannot be trusted, or None."""
        offset = self._clock_offset()
        limit = getattr(self.port, "max_clock_offset", None)
        if offset is None:
            return f"the clock of {self.port.name} could not be measured"
        if limit is not None and abs(offset) > limit:
            side = "ahead of" if offset > 0 else "behind"
            return (
                f"the clock of {self.port.name} is {abs(offset):.1f}s {side} this machine's, beyond "
                f"max_clock_offset_seconds = {limit:g}"
            )
        return None

    async def prepare(self, *, dry_run: bool = False) -> list[str]:
        """Load the contract's rules and put its margin mode and leverage where the config says.

        With `dry_run` nothing on the exchange changes: a margin mode or leverage that
        differs from the config is only noted (`margin_mode_differs`, `leverage_differs`),
        and every problem is returned instead of raising the first.
        """
        problems: list[str] = []

        async def step(check: Callable[[], Awaitable[None]]) -> None:
            try:
                await check()
            except StartupRefused as exc:
                if not dry_run:
                    raise
                problems.append(str(exc))

        symbol = self.hedge.symbol
        await self._measure_clock()
        if self.hedge.instrument.follows_delivery:
            symbol = await self._contract_in_hand()
        self.market = await self._read(lambda: self.port.load_market(symbol))
        self.events.show_figures(self.account, self.hedge.name, Precision.of(self.market))
        market = self.market
        await step(lambda: self._check_order_limits(market))
        sizes = await self._size_problems(market)
        if sizes and not dry_run:
            raise StartupRefused(sizes[0])
        problems += sizes
        await step(lambda: self._check_margin_mode(dry_run))
        leverage = await self._read(lambda: self.port.fetch_leverage(symbol))
        if leverage != self.hedge.leverage:
            if dry_run:
                self._emit("leverage_differs", leverage=self.hedge.leverage, was=leverage,
                           note="`run` sets the configured leverage")
            else:
                await self._read(lambda: self.port.set_leverage(symbol, self.hedge.leverage))
                self._emit("leverage_set", leverage=self.hedge.leverage, was=leverage)
        return problems

    async def _check_margin_mode(self, dry_run: bool) -> None:
        """Put the contract in the configured margin mode (only note a difference in a dry run); refuse a cross short it cannot price."""
        assert self.market is not None
        symbol = self.market.symbol
        mode = await self._read(lambda: self.port.fetch_margin_mode(symbol))
        if mode is not self.hedge.margin_mode:
            if dry_run:
                self._emit("margin_mode_differs", mode=self.hedge.margin_mode.value, was=mode.value,
                           note="`run` sets the configured margin mode while the contract is flat")
            else:
                try:
                    await self._read(lambda: self.port.set_margin_mode(symbol, self.hedge.margin_mode))
                except ModeError as exc:
                    raise StartupRefused(
                        f"{self.account}/{self.hedge.name}: {symbol} is in {mode.value} margin but the config asks for "
                        f"{self.hedge.margin_mode.value}, and it cannot change now: {exc}"
                    ) from exc
                self._emit("margin_mode_set", mode=self.hedge.margin_mode.value)
        if self.hedge.margin_mode is MarginMode.CROSS:
            quote = self.market.margin_asset
            balance = await self._read(lambda: self.port.fetch_futures_balance(quote))
            if balance.cross_wallet is None:
                # Without it the whole wallet, other contracts' isolated margin included, would seem to back the short.
                raise StartupRefused(
                    f"{self.account}/{self.hedge.name}: {self.port.name} does not report the cross wallet apart from "
                    "isolated margin, so the liquidation price of a cross short cannot be known; use "
                    'margin_mode = "isolated" for this hedge'
                )

    async def _size_problems(self, market: Market) -> list[str]:
        """Return why the exchange could not fill min_order, and a leverage above the bracket's maximum for the short."""
        where = f"{self.account}/{self.hedge.name}"
        problems = []
        # An inverse contract's minimum is one contract of face value: the policy rounds coin amounts up to it.
        if not market.inverse and self.hedge.min_order < market.min_amount:
            problems.append(
                f"{where}: min_order {self.hedge.min_order} is below {market.symbol}'s minimum amount "
                f"{market.min_amount}; set min_order to at least {market.min_amount}"
            )
        try:
            snapshot = await self.observe()
        except ExchangeError as exc:
            self._emit("startup_check_skipped", Severity.WARNING, check="leverage bracket", error=str(exc))
            return problems
        mark = snapshot.mark_price
        if mark > 0 and not market.inverse and self.hedge.min_order * mark < market.min_notional:
            self._emit(
                "min_order_below_min_notional", Severity.INFO, min_order=self.hedge.min_order,
                min_notional=market.min_notional, effective_min_order=market.min_tradeable(mark),
                note="orders are rounded up to the exchange's minimum notional at the current price",
            )
        # The coins the policy will hedge (with a coin-margined hedge's COIN-M wallet coins).
        exposure = policy.exposure_of(snapshot, self.policy) if market.inverse else (
            snapshot.spot_asset * int(self.policy.include_spot) + self.policy.offset
        )
        rule = rule_for(market)
        if self.beta_sizing is not None:
            # A beta hedge's coins are not the instrument's: its largest short is beta_max x their worth in it.
            try:
                exposure = await self.beta_sizing.largest_short(self.port, snapshot, self.policy, self._read)
            except ExchangeError as exc:
                self._emit("startup_check_skipped", Severity.WARNING, check="leverage bracket", error=f"a holding's price: {exc}")
                return problems
        size = max(snapshot.leg_of(self.policy.side).size, rule.size_for(self.policy.ratio * exposure, mark))
        notional = rule.notional(size, mark)  # what the brackets are read by: coins for an inverse contract
        bracket = next((b for b in market.brackets if b.holds(notional)), None)
        if bracket is not None and bracket.max_leverage is not None and self.hedge.leverage > bracket.max_leverage:
            problems.append(
                f"{where}: leverage {self.hedge.leverage} is above {bracket.max_leverage}, the maximum the exchange allows "
                f"for a {market.symbol} {self.policy.side.value} of {notional:.0f} {market.margin_asset}; lower leverage"
            )
        return problems

    async def _check_order_limits(self, market: Market) -> None:
        """Refuse a max_order the market can never fill (below its minimum amount, or notional at the mark)."""
        where = f"{self.account}/{self.hedge.name}: max_order {self.hedge.max_order}"
        if market.inverse:
            # Configured in coins, an inverse contract's order is face value: judged at the policy's own price.
            return
        largest = floor_to_step(self.hedge.max_order, market.amount_step)
        if largest < market.min_amount:
            raise StartupRefused(f"{where} is below the minimum order {market.min_amount} of {market.symbol}; no order could be placed")
        try:
            price = (await self._read(lambda: self.port.fetch_mark_price(market.symbol))).price
        except ExchangeError:
            return  # no price yet: the policy raises an alert if orders cannot meet the minimum
        if largest * price < market.min_notional:
            raise StartupRefused(
                f"{where} is worth {largest * price:.2f} {market.quote} at {price}, below the minimum order of "
                f"{market.min_notional} {market.quote} on {market.symbol}"
            )
