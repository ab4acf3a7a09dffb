"""The control channel: the requests people (and the schedule) send a hedge, carried out oldest first.

Owns: taking and acknowledging requests (pause, reduce, resume, unwind), following the schedule's windows and end,
and asking for an unwind.
May not touch: the venue or the journal's intents; an unwind's steps are engine/unwind.py's.
"""

from __future__ import annotations

from hedgebot.domain.model import Severity
from hedgebot.domain.trading import TradingState
from hedgebot.store.control import Request


class ControlChannel:
    """Carries out what was asked through the control channel, and what the schedule asks.

    A mixin of `Keeper` (engine/keeper.py): `self` is the keeper, whose state it reads and writes.
    """

    def _follow_schedule(self) -> None:
        """Hold the ratio of the schedule's window in force, say when one begins or ends, and ask for the unwind at the end.

        While the exchange's clock is unmeasured or far from ours, nothing changes: the window in force stays, the end waits.
        """
        now = self._schedule_time()
        if now is None:
            return
        self.policy = self.scheduled.policy_at(now)
        change = self.scheduled.look(now)
        if change is not None:
            left, entered = change
            said = f"window {entered.name!r} begins" if entered else f"window {left.name!r} ends" if left else ""
            self._emit(
                "schedule_window", Severity.INFO, entered=entered.name if entered else "", left=left.name if left else "",
                ratio=str(self.policy.ratio), message=f"{said}: the hedge keeps a ratio of {self.policy.ratio}",
            )
        if not self.scheduled.end_due(now) or self.unwind is not None or self.trading_state is TradingState.CLOSED:
            return
        reason = f"the hedge's end has come ({self.scheduled.schedule.ends_because})"
        if self.trading_state is TradingState.HALTED:
            # A person's pause or a breaker's halt is lifted only by a person: the end's unwind waits for `resume`.
            self.alerts.raise_alert(
                "hedge_end_waiting", Severity.WARNING,
                f"{reason}, but the hedge is halted ({self.trading.reason or self.hedge.state}): nothing is sent; "
                "`hedgebot resume` lets the unwind go",
            )
            return
        if any(r.command == "unwind" for r in self.control.pending(self.account, self.hedge.name)):
            return
        self.control.submit(self.account, self.hedge.name, "unwind", "schedule", reason, sell_spot=self.hedge.until_sell_spot)
        self._emit(
            "hedge_end_reached", Severity.WARNING, until=self.hedge.until, sell_spot=self.hedge.until_sell_spot,
            message=f"{reason}: the hedge is unwound" + (" with its spot sold" if self.hedge.until_sell_spot else ", its spot kept")
            + ", then stays closed until `hedgebot resume`",
        )

    def _ask_unwind(self, reason: str) -> None:
        """Ask for the normal unwind (once: not while one is asked for, under way, or the hedge is closed)."""
        if self.unwind is not None or self.trading_state in (TradingState.CLOSED, TradingState.HALTED):
            return  # halted by a person or a breaker: only a person lets anything go (the alert says why)
        if any(r.command == "unwind" for r in self.control.pending(self.account, self.hedge.name)):
            return
        self.control.submit(self.account, self.hedge.name, "unwind", "beta", reason, sell_spot=False)
        self._emit("hedge_unwind_asked", Severity.WARNING, reason=reason, message=f"{reason}: the hedge is unwound")

    async def take_requests(self) -> None:
        """Carry out what was asked through the control channel, oldest first, and acknowledge each."""
        for request in self.control.pending(self.account, self.hedge.name):
            result = await self._carry_out(request)
            self.control.take(request.id, self.taken_by, result)
            self._emit(
                "request_taken", request_id=request.id, command=request.command, actor=request.actor,
                reason=request.reason, result=result,
            )

    async def _carry_out(self, request: Request) -> str:
        actor = request.actor
        reason = request.reason or f"{request.command} requested"
        match request.command:
            case "pause":
                self.set_trading_state(TradingState.HALTED, reason, actor)
            case "reduce":
                self.set_trading_state(TradingState.REDUCING, reason, actor)
            case "resume":
                if self.scheduled.end_due(self._exchange_now()):
                    ends = self.scheduled.schedule.ends_because
                    if self.trading_state is TradingState.CLOSED:
                        # Re-armed now, the hedge would open its whole short only to be unwound again at once.
                        return (
                            f"not resumed: the hedge's end has passed ({ends}); change or remove `until` in the config "
                            "and reload, then resume"
                        )
                    # Halted when its end came: the person's resume lets the end's unwind go, and nothing else.
                    self.breakers.reset()
                    self.set_trading_state(TradingState.REDUCING, f"resumed at the hedge's end ({ends}): unwinding", actor)
                    return f"resumed into the hedge's end ({ends}): it is unwound now, then stays closed"
                self.breakers.reset()
                self.set_trading_state(TradingState.ACTIVE, reason, actor)
                if self.hedge.state != TradingState.ACTIVE.value:
                    return f"resumed in the journal, but the config sets state = {self.hedge.state!r}: edit the config"
            case "unwind":
                return await self._start_unwind(request)
            case _:
                return f"unknown command {request.command!r}; nothing done"
        return f"hedge is {self.trading_state.value}"
