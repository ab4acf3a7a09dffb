"""The unwind's execution: a hedge taken off in slices, its progress read back from the journal.

Owns: starting an unwind, its view and progress, the actions allowed while it runs, its end, and tagging the
journal's intents with the unwind each step belongs to.
May not touch: how an action is sent or settled (engine/intents.py); the requests themselves (engine/control_channel.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from hedgebot.domain import policy
from hedgebot.domain import unwind as unwinding
from hedgebot.domain.margin import rule_for
from hedgebot.domain.model import ZERO, Action, AdjustMargin, Snapshot, Transfer
from hedgebot.domain.trading import TradingState, is_margin_topup, permits
from hedgebot.store.control import Request, UnwindRecord
from hedgebot.store.journal import IntentStatus


class UnwindExecution:
    """Takes a hedge off in slices, one journaled step at a time.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    async def _start_unwind(self, request: Request) -> str:
        if self.unwind is not None:
            return f"unwind {self.unwind.id} is already under way; it carries on"
        assert self.market is not None
        market = self.market
        legs = await self._read(lambda: self.port.fetch_legs(market.symbol))
        short = legs.of(self.policy.side)
        detail = request.detail
        sell_spot = bool(detail.get("sell_spot", False))
        if sell_spot and self.market.inverse:
            # An inverse short's margin is the coins themselves (the command refuses this; a raw request may not).
            return "refused: a coin-margined hedge's unwind sells no coins (its margin is the coins); ask without sell_spot"
        if sell_spot and self.beta_sizing is not None:
            # The coins held (the hedge's asset) are not the instrument's: a spot slice would sell the instrument's coins.
            return (
                f"refused: a beta hedge's unwind sells no coins ({self.hedge.asset} held is not {market.base}, the "
                "instrument's coin); ask without sell_spot"
            )
        slices = detail.get("slices")
        max_order = self.hedge.max_order
        if self.market.inverse:  # configured in coins; the leg counts face value
            price = (await self._read(lambda: self.port.fetch_mark_price(market.symbol))).price
            max_order = rule_for(self.market).size_for(max_order, price)
        spec = {
            "slice_size": str(unwinding.slice_size(short.size, max_order, slices, self.market)),
            "sell_spot": sell_spot,
            "margin_to_spot": str(short.margin if sell_spot else ZERO),
            "short_at_start": str(short.size),
        }
        self.unwind = self.control.start_unwind(self.account, self.hedge.name, spec, request.actor)
        self._emit("unwind_started", unwind=self.unwind.id, actor=request.actor, **spec)
        self._drop_held_sale(f"unwind {self.unwind.id} takes the {self.policy.side.value} off")
        self.set_trading_state(TradingState.REDUCING, f"unwinding (unwind {self.unwind.id})", request.actor)
        return f"unwind {self.unwind.id} started: {self.policy.side.value} {short.size} in slices of at most {spec['slice_size']}"

    def unwind_progress(self, unwind_id: int) -> tuple[Decimal, Decimal, Decimal]:
        """Return what an unwind has done so far, from the journal: short bought back, spot sold, margin moved."""
        reduced = sold = moved = ZERO
        for intent in self.journal.intents(self.account, self.hedge.name):
            if intent.detail.get("unwind") != unwind_id or intent.status is not IntentStatus.DONE:
                continue
            outcome = intent.outcome or {}
            if intent.kind == "transfer":
                moved += Decimal(intent.detail["amount"])
            elif intent.kind == "order" and "filled" in outcome:
                if intent.detail.get("position_side") == self.policy.side.value:
                    reduced += Decimal(outcome["filled"])
                else:
                    sold += Decimal(outcome["filled"])
        return reduced, sold, moved

    def unwind_view(self, record: UnwindRecord, snapshot: Snapshot) -> tuple[unwinding.UnwindView, unwinding.UnwindSpec]:
        """Return an unwind's view of the venue (with its progress from the journal) and what it was asked to do."""
        reduced, sold, moved = self.unwind_progress(record.id)
        elsewhere = self.policy.offset + (snapshot.long.size if self.policy.include_perp_long else ZERO)
        view = unwinding.UnwindView(
            snapshot.market, snapshot.mark_price, snapshot.leg_of(self.policy.side).size, snapshot.spot_asset, elsewhere,
            snapshot.futures_free, reduced, sold, moved,
        )
        spec = unwinding.UnwindSpec(
            Decimal(record.spec["slice_size"]), bool(record.spec["sell_spot"]), Decimal(record.spec["margin_to_spot"]),
            self.policy.side,
        )
        return view, spec

    def _allowed_actions(self, plan: policy.Plan, snapshot: Snapshot, topups: bool = True) -> list[Action]:
        """Return the actions the hedge may take now: the plan's (or the unwind's), as its trading state permits.

        With `topups` False (one failed this tick), the unwind's next slice is returned even though a top-up is due.
        """
        state = self.trading_state
        if self.unwind is None:
            return [a for a in plan.actions if permits(state, a)]
        # Unwinding: a margin top-up still comes first (it only lowers risk); the
        # policy's other wishes wait, since the user asked for the hedge to come off.
        topups = [a for a in plan.actions if is_margin_topup(a)] if topups else []
        if topups:
            return topups
        if state not in (TradingState.ACTIVE, TradingState.REDUCING):
            return []
        view, spec = self.unwind_view(self.unwind, snapshot)
        step = unwinding.next_step(view, spec)
        if step is None:
            self._finish_unwind(self.unwind, view)
            return []
        return [step]

    def _finish_unwind(self, record: UnwindRecord, view: unwinding.UnwindView) -> None:
        self.control.finish_unwind(record.id)
        self.unwind = None
        self._emit(
            "unwind_completed", unwind=record.id, short_bought_back=view.reduced, spot_sold=view.sold,
            margin_to_spot=view.moved, short_left=view.short, spot_left=view.spot_asset,
        )
        self.set_trading_state(
            TradingState.CLOSED,
            f"unwound (unwind {record.id}); `hedgebot resume --hedge {self.hedge.name}` re-arms it",
            "unwind",
        )

    async def _execute_step(self, action: Action, snapshot: Snapshot, following: Sequence[Action] = ()) -> bool:
        """Execute one action, tagging the journal's intents with the unwind it belongs to."""
        posting = following[0] if following else None
        if isinstance(action, Transfer) and is_margin_topup(action) and isinstance(posting, AdjustMargin) and is_margin_topup(posting):
            return await self._fund_topup(action, posting)
        if self.unwind is None or is_margin_topup(action):
            return await self._execute(action, snapshot)
        self._intent_tag = {"unwind": self.unwind.id}
        try:
            return await self._execute(action, snapshot)
        finally:
            self._intent_tag = {}
