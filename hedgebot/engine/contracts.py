"""Contracts: the quarterly held, its delivery and roll, and the choice of contract by carry.

Owns: the contract in hand at start, following delivery, the journaled roll and its slices, the fallback to
the perpetual, the carries compared and the choice made (instrument = "cheapest"), and the contract's status fields.
May not touch: how an order is sent or settled (engine/intents.py via engine/execution.py); trading states.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.domain import policy
from hedgebot.domain import choice as choosing
from hedgebot.domain import roll as rolling
from hedgebot.domain.basis import FUNDING_HISTORY_SECONDS, annual_basis, funding_annual_rate
from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import ZERO, Market, Severity, Wallet, ceil_to_step
from hedgebot.domain.trading import is_margin_topup
from hedgebot.engine import crashpoints
from hedgebot.engine.holds import ROLL_FALLBACK, ROLL_HOLD
from hedgebot.engine.status import shown_rate


class Contracts:
    """Holds the contract to hold: moves to it, rolls to it, or chooses it by carry.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    async def _contract_in_hand(self) -> str:
        """Return the contract a quarterly hedge holds: the roll's expiring one, the nearest with a leg, else the one to hold.

        With no tradable quarterly far enough from delivery, the perpetual of the same market (a critical alert).
        """
        if self._roll is not None:
            return str(self._roll["from"])
        side = self.policy.side
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        for contract in sorted(contracts, key=lambda c: c.expiry):
            legs = await self._read(lambda c=contract: self.port.fetch_legs(c.symbol))
            if legs.of(side).is_open:
                return contract.symbol
        perpetual = await self._read(lambda: self.port.fetch_legs(self.hedge.symbol))
        chosen = rolling.contract_to_hold(contracts, self.clock.now(), self.hedge.quarterly_roll_before)
        if self.hedge.instrument.chooses:
            if perpetual.of(side).is_open:
                return self.hedge.symbol  # chosen before: judged again now, and at each roll window
            return (await self._choose(self.hedge.symbol, chosen, ZERO, "opening")).symbol
        if perpetual.of(side).is_open:
            # A roll fell back to it: it stays there, loudly, until a person moves it back.
            self._fallback_alert(f"the {side.value} is on the perpetual (a roll fell back to it)")
            return self.hedge.symbol
        if chosen is None or not chosen.tradable:
            self._fallback_alert("no quarterly contract of it can be traded more than roll_before from delivery")
            return self.hedge.symbol
        return chosen.symbol

    def _fallback_alert(self, why: str) -> None:
        self._fallback = why
        self.alerts.raise_alert(
            ROLL_FALLBACK, Severity.CRITICAL,
            f"{self.hedge.symbol}: {why}; the {self.policy.side.value} is held on the perpetual {self.hedge.symbol} "
            "instead, which pays or earns funding: check the exchange's quarterlies, then restart to go back",
            symbol=self.hedge.symbol,
        )

    async def _use_contract(self, symbol: str) -> Market:
        """Load a contract's rules and put its margin mode and leverage where the config says, before it is traded."""
        market = await self._read(lambda: self.port.load_market(symbol))
        if await self._read(lambda: self.port.fetch_margin_mode(symbol)) is not self.hedge.margin_mode:
            await self._read(lambda: self.port.set_margin_mode(symbol, self.hedge.margin_mode))
        if await self._read(lambda: self.port.fetch_leverage(symbol)) != self.hedge.leverage:
            await self._read(lambda: self.port.set_leverage(symbol, self.hedge.leverage))
        return market

    async def _follow_delivery(self, held_back: bool) -> None:
        """Hold the contract to hold: move to it while flat, or begin the roll when the held one nears delivery."""
        market = self.market
        if self._fallback is not None and market is not None and market.expiry is None:
            self._fallback_alert(self._fallback)
        roll = self._roll
        if roll is not None and roll["to"] == self.hedge.symbol and roll["from"] != self.hedge.symbol and not self.hedge.instrument.chooses:
            # Still critical while the roll moves the leg to the perpetual (for as long as delivery holds it up, too).
            self._fallback_alert(f"a roll off {roll['from']} goes to the perpetual: no next quarterly can be traded")
        if self._roll is not None or market is None:
            return
        if market.expiry is None:
            if self.hedge.instrument.chooses and not held_back:
                await self._judge_on_perpetual(market)
            return  # on the perpetual: chosen, or after a fallback
        now = self.clock.now()
        side = self.policy.side
        held = rolling.Contract(market.symbol, market.expiry)
        if not rolling.roll_due(held, now, self.hedge.quarterly_roll_before):
            return
        if held_back and self.hedge.instrument.chooses:
            return  # an action of unknown outcome first; the choice is made once it is settled
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        chosen = rolling.contract_to_hold(contracts, now, self.hedge.quarterly_roll_before)
        to = chosen.symbol if chosen is not None and chosen.tradable and chosen.symbol != market.symbol else None
        legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
        if self.hedge.instrument.chooses:
            # The next quarterly is where the leg would go anyway: the perpetual must beat it by switch_advantage.
            nxt = chosen if to is not None else None
            to = (await self._choose(to or self.hedge.symbol, nxt, self.hedge.switch_advantage, "roll window")).symbol
        elif to is None:
            self._fallback_alert(f"no quarterly after {market.symbol} can be traded")
            to = self.hedge.symbol
        await self._move_leg(market, to, legs.of(side).size, held_back)

    async def _move_leg(self, market: Market, to: str, held: Decimal, held_back: bool) -> None:
        """Hold `to` from now on: at once while the leg is flat, else through a journaled roll from `market`."""
        now = self.clock.now()
        side = self.policy.side
        if held <= 0:
            self.market = await self._use_contract(to)  # nothing to move: hold the next one from now on
            self._emit("contract_held", contract=to, was=market.symbol)
            return
        if held_back:
            return  # an action of unknown outcome first; the roll begins once it is settled
        other = await self._read(lambda: self.port.fetch_legs(to))
        base = held + other.of(side).size
        self._roll = {"from": market.symbol, "to": to, "base": str(base), "started_at": now}
        self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, self._roll)
        crashpoints.reached("roll_journaled")
        target = self.last_plan.target if self.last_plan is not None else None
        self._emit("roll_started", contract=market.symbol, next_contract=to, base=base, expiry=market.expiry, target=target)

    async def _judge_on_perpetual(self, market: Market) -> None:
        """On the perpetual by choice: at each quarterly's roll window, move to the next quarterly when it earns enough more."""
        now = self.clock.now()
        if self._judged is not None and now < self._judged.expiry - self.hedge.quarterly_roll_before:
            return  # this window's choice is made; the next comes roll_before ahead of the judged quarterly's delivery
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        chosen = rolling.contract_to_hold(contracts, now, self.hedge.quarterly_roll_before)
        if chosen is None or (self._judged is not None and chosen.symbol == self._judged.symbol):
            return  # no quarterly to compare with (looked for again each tick), or this one is judged already
        when = "roll window" if self._judged is not None else "restart"  # a restart on the perpetual judges once at once
        made = await self._choose(market.symbol, chosen, self.hedge.switch_advantage, when)
        if made.symbol != market.symbol:
            legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
            await self._move_leg(market, made.symbol, legs.of(self.policy.side).size, False)

    async def _choose(
        self, default: str, quarterly: rolling.Contract | None, threshold: Decimal, when: str,
    ) -> choosing.Choice:
        """Compare the perpetual's carry with `quarterly`'s and choose (`default` unless another earns `threshold` more).

        The quarterly compared is remembered: its roll window is the next time a hedge on the perpetual chooses.
        """
        self._judged = quarterly
        carries = tuple(await self._carries(quarterly if quarterly is not None and quarterly.tradable else None))
        if len(carries) < 2:
            why = "no quarterly of it can be traded more than roll_before from delivery"
            made = choosing.Choice(self.hedge.symbol, f"{why}: the perpetual {self.hedge.symbol} is the only choice", None)
        else:
            made = choosing.choose(carries, default, self.policy.side, threshold)
        self._choice = (made, carries)
        held = self.market.symbol if self.market is not None else None
        self._emit(
            "instrument_chosen", contract=made.symbol, held=held, when=when, reason=made.reason,
            advantage=shown_rate(made.advantage), switch_advantage=str(threshold),
            carries={c.symbol: shown_rate(c.annual_rate) for c in carries},
        )
        return made

    async def _carries(self, quarterly: rolling.Contract | None) -> list[choosing.Carry]:
        """Price the contracts the hedge chooses among: the perpetual by its recent funding, the quarterly by its basis."""
        now = self.clock.now()
        perpetual = self.hedge.symbol
        kinds = self.hedge.contract_kinds
        out: list[choosing.Carry] = []
        if any(not k.delivers for k in kinds):
            settlements = await self._read(lambda: self.port.fetch_funding_rates(perpetual, now - FUNDING_HISTORY_SECONDS))
            out.append(choosing.Carry(
                perpetual, funding_annual_rate(settlements), f"{len(settlements)} funding settlements in the last 30 days",
            ))
        if quarterly is not None and any(k.delivers for k in kinds):
            spot = (await self._read(lambda: self.port.fetch_mark_price(perpetual))).price
            future = (await self._read(lambda: self.port.fetch_mark_price(quarterly.symbol))).price
            out.append(choosing.Carry(
                quarterly.symbol, annual_basis(future, spot, now, quarterly.expiry), "basis to the perpetual's mark until delivery",
            ))
        return out

    def _max_order_of(self, market: Market, price: Decimal) -> Decimal:
        """Return max_order (configured in coins) in the contract's own amounts."""
        return rule_for(market).size_for(self.hedge.max_order, price) if market.inverse else self.hedge.max_order

    async def _roll_steps(self, plan: policy.Plan | None) -> bool:
        """Carry the roll on, one journaled slice at a time: open on the next contract, then buy back the expiring one.

        Each step follows from the two legs as the venue shows them and the `base` journaled when the roll began,
        so a restart at any point goes on without doubling a leg. Return whether an order went out.
        """
        roll = self._roll
        assert roll is not None and self.market is not None
        side = self.policy.side
        source, target, base = str(roll["from"]), str(roll["to"]), Decimal(roll["base"])
        if self._roll_market is None or self._roll_market.symbol != target:
            self._roll_market = await self._use_contract(target)
        market = self._roll_market
        acted = False
        if await self._expiring_frozen(source):
            return acted
        for _ in range(self.max_steps):
            expiring = (await self._read(lambda: self.port.fetch_legs(source))).of(side).size
            following = (await self._read(lambda: self.port.fetch_legs(target))).of(side).size
            price = (await self._read(lambda: self.port.fetch_mark_price(target))).price
            view = rolling.RollView(expiring, following, base)
            minimum = market.min_amount if market.inverse else market.min_tradeable(price)
            step = rolling.next_roll_step(view, self._max_order_of(market, price), market.amount_step, minimum)
            if step is None:
                self._finish_roll(market, view)
                return acted
            if step.reason == rolling.OPEN_NEXT:
                held = self._roll_held_by(plan, market, step.amount, price)
                if held is None:
                    held = await self._roll_unfunded(market, step.amount, price)
                if held is not None:
                    self.alerts.raise_alert("roll_held", Severity.WARNING, f"the roll to {target} waits: {held}")
                    return acted
            self._intent_tag = {"roll": source}
            try:
                if step.reason == rolling.OPEN_NEXT:
                    outcome = await self._order(side.opening, step.amount, side, False, step.reason, contract=target)
                else:
                    outcome = await self._order(side.closing, step.amount, side, True, step.reason, contract=source)
            finally:
                self._intent_tag = {}
            acted = True
            if outcome is None:
                refused = not self.journal.open_intents(self.account, self.hedge.name)
                # An answer lost on the way (unknown, looked up by client id) is no refusal: it may have executed.
                if step.reason == rolling.OPEN_NEXT and following == 0 and target != self.hedge.symbol and refused:
                    self._next_refused(roll, target, source)
                return acted
            self.alerts.resolve("roll_held")
        return acted

    async def _expiring_frozen(self, source: str) -> bool:
        """Tell whether the expiring contract still holds a leg but takes no order (pre-delivery): the roll waits.

        Binance stops orders on a contract in PRE_DELIVERING and settles what is still open at delivery. A slice
        opened now could not be bought back: the short would stay a slice over until delivery, and each refused
        buy-back counts towards the rejection breaker. The roll opens the rest on the next contract once the leg
        is settled (critical: the short is briefly below target between delivery and the next slice).
        """
        if source == self.hedge.symbol:
            return False  # a move off the perpetual: nothing is delivered
        held = (await self._read(lambda: self.port.fetch_legs(source))).of(self.policy.side).size
        if held <= 0:
            self.alerts.resolve("roll_delivery")
            return False
        contracts = await self._read(lambda: self.port.fetch_delivery_contracts(self.hedge.symbol))
        if any(c.symbol == source and c.tradable for c in contracts):
            self.alerts.resolve("roll_delivery")
            return False
        self.alerts.raise_alert(
            "roll_delivery", Severity.CRITICAL,
            f"{source} takes no more orders before its delivery with {held} still short on it: the exchange settles "
            "that leg at the delivery price, and the roll opens it on the next contract once it is settled",
        )
        return True

    def _next_refused(self, roll: dict[str, Any], target: str, source: str) -> None:
        """Nothing opened on the next contract and it refuses: the leg goes to (or, chosen, stays on) the perpetual."""
        why = f"{target} refused the roll's first slice (see its order_failed event)"
        if not self.hedge.instrument.chooses:
            self._fallback_alert(why)
        elif source == self.hedge.symbol:
            # A move off the perpetual that cannot begin: nothing moved, the leg stays where it is until the next window.
            self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, None)
            self._roll = None
            self._roll_market = None
            self._emit("instrument_chosen", Severity.WARNING, contract=source, held=source, when="refused",
                       reason=f"{why}: the leg stays on the perpetual {source}")
            return
        else:
            self._emit("instrument_chosen", Severity.WARNING, contract=self.hedge.symbol, held=source, when="refused",
                       reason=f"{why}: the leg goes to the perpetual {self.hedge.symbol} instead")
        self._roll = {**roll, "to": self.hedge.symbol}
        self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, self._roll)

    def _roll_held_by(self, plan: policy.Plan | None, market: Market, amount: Decimal, price: Decimal) -> str | None:
        """Return why the guard holds the roll's next slice (a top-up due or a plan it cannot judge), or None."""
        if plan is None or plan.blocked is not None:
            return f"the plan cannot be judged ({plan.blocked if plan else 'no plan yet'})"
        if any(is_margin_topup(a) for a in plan.actions):
            return "a margin top-up is due first"
        return None

    async def _roll_unfunded(self, market: Market, amount: Decimal, price: Decimal) -> str | None:
        """Return why the futures wallet cannot fund a slice on the next contract (its margin and fee), or None.

        What the futures wallet lacks is moved from spot first when the guard may draw on spot (`spot_stablecoin`:
        the margin asset in spot, coins for a coin-margined contract), as a journaled transfer.
        """
        rule = rule_for(market)
        asset = market.margin_asset
        need = rule.notional(amount, price) * (1 / Decimal(self.hedge.leverage) + 2 * market.taker_fee)
        free = (await self._read(lambda: self.port.fetch_futures_balance(asset))).free
        if free < need and self.policy.guard.from_spot_stablecoin:
            lacking = ceil_to_step(need - free, market.margin_step)
            in_spot = (await self._read(self.port.fetch_spot_balances)).get(asset, ZERO)
            if in_spot >= lacking and await self._transfer(asset, lacking, Wallet.SPOT, Wallet.FUTURES, "roll: margin for the next contract"):
                free = (await self._read(lambda: self.port.fetch_futures_balance(asset))).free
        if free < need:
            return f"{need:.8f} {asset} of margin needed for a slice of {amount}, {free:.8f} free"
        return None

    def _finish_roll(self, market: Market, view: rolling.RollView) -> None:
        roll = self._roll
        assert roll is not None
        was = self.market.symbol if self.market is not None else roll["from"]
        self.market = market
        self.control.set_hold(self.account, self.hedge.name, ROLL_HOLD, None)
        self._roll = None
        self._roll_market = None
        self.alerts.resolve("roll_held")
        self._emit("roll_completed", contract=was, next_contract=market.symbol, base=roll["base"], short=view.next)

    def trades(self, symbol: str) -> bool:
        """Tell whether `symbol` is a contract this hedge trades: its market, the contract it holds, or its roll's."""
        roll = self._roll
        return (
            symbol == self.hedge.symbol or (self.market is not None and symbol == self.market.symbol)
            or (roll is not None and symbol in (roll["from"], roll["to"]))
        )

    def _contract_fields(self) -> dict[str, Any]:
        market = self.market
        if market is None or not self.hedge.instrument.follows_delivery:
            return {}
        expiry = market.expiry
        roll = self._roll
        if expiry is None and self._judged is not None and self.hedge.instrument.chooses:
            expiry_window = self._judged.expiry  # on the perpetual, the choice is made again at the quarterly's window
        else:
            expiry_window = expiry
        fields: dict[str, Any] = {
            "contract": market.symbol, "contract_expiry": expiry,
            "next_roll_at": expiry_window - self.hedge.quarterly_roll_before if expiry_window is not None and roll is None else None,
            "rolling": f"{roll['from']} -> {roll['to']}" if roll is not None else "",
        }
        if self._choice is not None:
            made, carries = self._choice
            fields["carries"] = tuple(
                {"symbol": c.symbol, "annual_rate": shown_rate(c.annual_rate), "source": c.source}
                for c in carries
            )
            fields["choice"] = made.reason
        return fields
