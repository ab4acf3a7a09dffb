"""Observation and status: what `hedgebot status` shows of one hedge, and what the alerts say of its figures.

Owns: `HedgeStatus`; setting the keeper's status from a plan and a snapshot; the figures an alert resolved
without words of its own says; why a hedge is under its target; whether the hedge is meant to be whole and at rest.
May not touch: the venue, the journal's intents, trading states; it sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hedgebot.domain import policy
from hedgebot.domain.model import ZERO, Market, PositionSide, Severity, Snapshot
from hedgebot.domain.trading import TradingState
from hedgebot.ops.figures import Figure, Precision, as_json, figure, iso_utc, render


def shown_rate(rate: Decimal | None) -> str | None:
    """Return a yearly rate as shown in events and status: to a ten-thousandth of a percent (None: unknown)."""
    return None if rate is None else str(rate.quantize(Decimal("0.000001")))


@dataclass(frozen=True)
class HedgeStatus:
    """What `hedgebot status` shows for one hedge; each figure says its kind, so it is shown the same way everywhere."""

    account: str
    name: str
    symbol: str
    state: str
    exposure: Decimal | None = figure(Figure.AMOUNT)
    short: Decimal | None = figure(Figure.AMOUNT)
    target: Decimal | None = figure(Figure.AMOUNT)
    target_ratio: Decimal | None = figure(Figure.RATIO)
    drift: Decimal | None = figure(Figure.AMOUNT)
    mark: Decimal | None = figure(Figure.PRICE)
    liquidation_price: Decimal | None = figure(Figure.PRICE)
    distance: Decimal | None = figure(Figure.RATIO)
    runway_price: Decimal | None = figure(Figure.PRICE)  # the rally the margin sources pay for (Infinity: no limit found)
    runway: Decimal | None = figure(Figure.RATIO)  # the runway as a fraction above the mark
    updated_at: float | None = figure(Figure.TIME)
    note: str = ""
    liquidated_at: float | None = figure(Figure.TIME)
    liquidated_price: Decimal | None = figure(Figure.PRICE)
    liquidated_amount: Decimal | None = figure(Figure.AMOUNT)
    margin_lost: Decimal | None = figure(Figure.MONEY)
    market: Market | None = figure(Figure.HIDDEN)
    trading_state: str = TradingState.ACTIVE.value
    trading_reason: str = ""
    trading_actor: str = ""
    window: str = ""  # the schedule's window in force ("" : the hedge's own ratio holds)
    next_window: str = ""
    next_window_at: float | None = figure(Figure.TIME)
    ends_at: float | None = figure(Figure.TIME)  # when the hedge unwinds by itself (`until`)
    # Where the exposure came from: the account's spot coins, the fixed offset, the coins a custody file counts.
    exposure_spot: Decimal | None = figure(Figure.AMOUNT)
    exposure_offset: Decimal | None = figure(Figure.AMOUNT)
    exposure_elsewhere: Decimal | None = figure(Figure.AMOUNT)
    exposure_elsewhere_at: float | None = figure(Figure.TIME)  # when the custody system counted them
    # The asset's price where the coins elsewhere are held, and how far it sits from the hedging mark (+: above).
    holding_price: Decimal | None = figure(Figure.PRICE)
    holding_spread: Decimal | None = figure(Figure.RATIO)
    # Each source of the coins held elsewhere: its name, its count (on the amount step) and when it was counted.
    exposure_sources: tuple[dict[str, Any], ...] = ()
    # A quarterly hedge: the contract it holds, its delivery, when the roll to the next one starts, the roll under way.
    contract: str = ""
    contract_expiry: float | None = figure(Figure.TIME)
    next_roll_at: float | None = figure(Figure.TIME)
    rolling: str = ""
    # instrument = "cheapest": the carries last compared ({symbol, annual_rate, source}) and why the contract was chosen.
    carries: tuple[dict[str, Any], ...] = ()
    choice: str = ""
    # ratio = "beta": the beta in force, the estimate and its OLS cross-check, the rolling correlation and the
    # out-of-sample variance reduction (engine/beta_sizing.py).
    beta: Decimal | None = figure(Figure.RATIO)
    beta_estimate: Decimal | None = figure(Figure.RATIO)
    beta_ols: Decimal | None = figure(Figure.RATIO)
    correlation: Decimal | None = figure(Figure.RATIO)
    hedge_effectiveness: Decimal | None = figure(Figure.RATIO)
    basket: tuple[dict[str, Any], ...] = ()  # a basket: each holding's {asset, beta, beta_estimate, correlation, ...}

    @property
    def ratio(self) -> Decimal | None:
        """Return the hedge ratio actually held (short / exposure)."""
        if self.exposure is None or self.short is None or self.exposure == 0:
            return None
        return self.short / self.exposure

    def to_json(self) -> dict[str, Any]:
        """Return the status as JSON-ready data: amounts and prices at the market's precision, times in ISO UTC."""
        out = as_json(self, Precision.of(self.market), extra={"ratio": (self.ratio, Figure.RATIO)})
        out["exposure_sources"] = list(self.exposure_sources)  # as JSON reads it back: a list
        out["carries"] = list(self.carries)
        out["basket"] = list(self.basket)
        return out


class HedgeReporting:
    """Tells how the hedge stands: its status, its figures now, why it is under its target.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    def _liquidation_fields(self) -> dict[str, Any]:
        event = self._liquidation
        if event is None:
            return {}
        return {
            "liquidated_at": event.at, "liquidated_price": event.price,
            "liquidated_amount": event.amount, "margin_lost": event.margin_lost,
        }

    # What the policy says when the target cannot be reached however long one waits.
    _CANNOT_REACH = {
        "under_hedged_no_margin": "no margin: the futures wallet cannot fund the rest of the short",
        "order_below_minimum": "order size: max_order is below the market's minimum",
        "reopen_unfunded": "no margin: the short is not re-opened until its margin can reach the guard's target",
        "margin_sale_failed": "a failed margin sale holds growth",
        "margin_unfunded": "no margin: the margin sources ran dry",
        "exposure_stale": "a stale count of the coins held elsewhere holds growth",
        "exposure_unknown": "the coins held elsewhere could not be read",
        "buffer_lockstep": "the buffer: the margin cannot keep the whole short at the buffer's distance until a deposit arrives",
    }

    @property
    def hedge_meant(self) -> bool:
        """Return whether the hedge is meant to follow its target now: not closed, unwinding or paused by a person."""
        state = self.trading_state
        if state is TradingState.CLOSED or self.unwind is not None:
            return False
        return state is TradingState.ACTIVE or self.trading.actor.startswith("circuit breaker")

    def at_rest(self) -> bool:
        """Tell whether a tick now would change nothing while the mark stays inside the last plan's range.

        That is: the last plan was judged, in band, with nothing to do and nothing
        to say; no alert is up; no action is open, held or streamed; no signal
        waits; the hedge trades as configured, with no holdings source, disk or
        exchange-busy breaker to read. Such a tick only re-centres the plan's
        range on the new mark (a backtest leaps over a run of them).
        """
        plan = self.last_plan
        return (
            plan is not None and plan.blocked is None and plan.in_band and not plan.actions and not plan.alerts
            and plan.orders_remaining == 0
            and self._plan_judged and not self.alerts.active and not self._stopping
            and self.trading_state is TradingState.ACTIVE and self.unwind is None and self._roll is None
            and not self._rebalancing and not self._reopening and self._held_sale is None
            and self._suspect_price is None and self._liquidation is None
            and not self._liquidation_unseen and not self._deleveraging_unseen and not self._streamed
            and not self.holdings and self.disk is None and self.clock.now() >= self._busy_until
            and not self.wake.is_set()
            and not self.journal.open_intents(self.account, self.hedge.name)
        )

    def _underhedge_cause(self, plan: policy.Plan) -> tuple[str | None, bool]:
        """Say why the hedge is short of its target, and whether waiting can cure it; None when it is not meant to be hedged."""
        if not self.hedge_meant:
            return None, False  # closed, unwinding, or paused by a person: not meant to grow now
        state = self.trading_state
        active = set(self.alerts.active) | {a.code for a in plan.alerts}
        for code, cause in self._CANNOT_REACH.items():
            if code in active:
                return cause, True
        if state is not TradingState.ACTIVE:
            return f"held by a breaker ({self.trading.actor}: {self.trading.reason})", True
        if plan.blocked is not None:
            return f"trading blocked: {plan.blocked}", False
        if any("below the minimum order" in note for note in plan.notes):
            return "the drift is below the market's minimum order", False
        return "the rebalance has not reached the target", False

    def _figures_now(self, code: str) -> str:
        """Say the hedge's figures as they are now, for an alert resolved without words of its own."""
        plan = self.last_plan
        if plan is None:
            return ""
        shown = Precision.of(self.market)
        asset = self.hedge.asset
        beyond = "above" if self.policy.side is PositionSide.SHORT else "below"  # where the leg's liquidation lies
        if code == "runway_short" and plan.runway is not None and plan.runway_price is not None:
            return (
                f"runway back to {render(plan.runway_price, Figure.PRICE, shown)} ({plan.runway:.2%} {beyond} the mark; "
                f"warning below {self.policy.guard.runway_warning:.0%})"
            )
        parts = [
            f"{self.policy.side.value} {render(plan.short, Figure.AMOUNT, shown)} {asset} against a target of "
            f"{render(plan.target, Figure.AMOUNT, shown)} {asset}"
        ]
        if plan.distance is not None:
            parts.append(f"liquidation distance {plan.distance:.2%}")
        if plan.runway_price is not None:
            runway = "unlimited" if not plan.runway_price.is_finite() else render(plan.runway_price, Figure.PRICE, shown)
            fraction = f" ({plan.runway:.2%} {beyond} the mark)" if plan.runway is not None else ""
            parts.append(f"runway {runway}{fraction}")
        return "now " + ", ".join(parts)

    def _set_status(self, plan: policy.Plan | None, snapshot: Snapshot | None, state: str | None = None, note: str = "") -> None:
        if plan is None:
            self.status = HedgeStatus(
                self.account, self.hedge.name, self.hedge.symbol, state or "starting",
                updated_at=self.clock.now(), note=note, market=self.market, **self._liquidation_fields(),
                **self._trading_fields(), **self._contract_fields(),
            )
            return
        if self._liquidation is not None and plan.blocked is None and plan.in_band and plan.short > 0:
            # The hedge is whole again: say its figures now, and keep what was learnt of the liquidation.
            active = self.alerts.active.get("liquidated")
            told = f"; the liquidation: {active.message}" if active is not None else ""
            self.alerts.resolve("liquidated", f"the hedge is whole again, {self._figures_now('liquidated')}{told}")
            self._liquidation = None
        if self._held_sale is not None and state is None:
            state = "alert"
            note = note or self._held_sale.message
        trading = self.trading_state
        if state is None and trading in (TradingState.HALTED, TradingState.CLOSED):
            state = trading.value  # no order goes out: "rebalancing" or "drifting" would promise one
        if state is None:
            if any(a.severity is Severity.CRITICAL for a in plan.alerts) or self.alerts.worst() is Severity.CRITICAL:
                state = "alert"
            elif plan.in_band:
                state = "hedged"
            elif plan.actions:
                state = "rebalancing"
            else:
                state = "drifting"
        note = note or "; ".join([a.message for a in plan.alerts] + list(plan.notes))
        if self._liquidation is not None:
            state = "liquidated"
            active = self.alerts.active.get("liquidated")
            note = "; ".join(filter(None, [active.message if active else "", note]))
        # Coins held elsewhere not read yet: the exposure, and so the target and the drift, are not known.
        unknown = snapshot is not None and snapshot.elsewhere is not None and not snapshot.elsewhere.known
        self.status = HedgeStatus(
            self.account, self.hedge.name, self.hedge.symbol, state,
            exposure=None if unknown else plan.exposure, short=plan.short,
            # A closed hedge aims at no short until it is resumed.
            target=ZERO if trading is TradingState.CLOSED else None if unknown else plan.target, target_ratio=self.policy.ratio if self.beta_sizing is None else self.beta_sizing.beta_in_force(),
            # Closed, unwinding or paused by a person: no target is followed, so there is no drift from it.
            drift=plan.drift if self.hedge_meant and not unknown else None, mark=snapshot.mark_price if snapshot else self.status.mark,
            liquidation_price=plan.liquidation_price, distance=plan.distance,
            runway_price=plan.runway_price, runway=plan.runway,
            updated_at=self.clock.now(), note=note, market=self.market, **self._liquidation_fields(),
            **self._trading_fields(), **self._schedule_fields(), **self._exposure_fields(snapshot),
            **self._contract_fields(), **(self.beta_sizing.status_fields() if self.beta_sizing is not None else {}),
        )

    def _exposure_fields(self, snapshot: Snapshot | None) -> dict[str, Any]:
        if snapshot is None:
            return {}
        config = self.hedge.exposure
        held = snapshot.elsewhere
        return {
            "exposure_spot": snapshot.spot_asset if config.spot else None,
            "exposure_offset": self.policy.offset or None,
            "exposure_elsewhere": held.amount if held is not None and held.known else None,
            "exposure_elsewhere_at": held.at if held is not None else None,
            "holding_price": held.price if held is not None else None,
            # Beside the instrument's mark only when the holding is the instrument's coin (not a beta hedge's).
            "holding_spread": held.spread(snapshot.mark_price) if held is not None and self.beta_sizing is None else None,
            "exposure_sources": tuple(
                {"source": name, "amount": render(amount, Figure.AMOUNT, Precision.of(self.market)), "at": iso_utc(at)}
                for name, amount, at in (held.parts if held is not None else ())
            ),
        }

    def _schedule_fields(self) -> dict[str, Any]:
        now = self._exchange_now()
        schedule = self.scheduled.schedule
        window, coming = schedule.window_at(now), schedule.next_window(now)
        return {
            "window": window.name if window else "", "next_window": coming.name if coming else "",
            "next_window_at": coming.start if coming else None, "ends_at": schedule.ends_at,
        }
