"""Ambiguous outcomes are settled by client id: retries reuse it, unknowns block trading until settled."""

from __future__ import annotations

from typing import Any

from hedgebot.exchange.port import DuplicateClientId, InsufficientFunds, OrderHistory, RequestTimeout
from tests.helpers import D, make_rig


class Scripted:
    """Wraps the paper venue; fails chosen calls a chosen number of times.

    Its lookups may lag, so, as a real exchange's dialect does, it says a lookup proves nothing for 30 s.
    """

    settle_seconds = 30.0

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = "scripted"
        self.place_before = 0  # time out before reaching the venue, this many times
        self.place_after = 0  # execute, then time out, this many times
        self.reject = False
        self.duplicate_after = 0  # execute, then answer "duplicate client id", this many times
        self.lookups_fail = False
        self.lagging_lookups = 0  # answer "never seen" this many times, as a lagging read does
        self.history_fails = False  # the order history cannot be read
        self.history_cut = False  # the order history comes back as one full page: it may miss orders
        self.sent_ids: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def place_order(self, request: Any) -> Any:
        self.sent_ids.append(request.client_id)
        if self.reject:
            raise InsufficientFunds("scripted: not enough margin")
        if self.place_before:
            self.place_before -= 1
            raise RequestTimeout("scripted: timeout before")
        result = await self.inner.place_order(request)
        if self.place_after:
            self.place_after -= 1
            raise RequestTimeout("scripted: timeout after")
        if self.duplicate_after:
            self.duplicate_after -= 1
            raise DuplicateClientId(f"scripted: client order id {request.client_id} already used")
        return result

    async def fetch_order(self, symbol: str, client_id: str) -> Any:
        if self.lookups_fail:
            raise RequestTimeout("scripted: lookup timeout")
        if self.lagging_lookups:
            self.lagging_lookups -= 1
            return None
        return await self.inner.fetch_order(symbol, client_id)

    async def fetch_order_history(self, symbol: str, since: float, until: float) -> Any:
        if self.history_fails:
            raise RequestTimeout("scripted: order history timeout")
        if self.history_cut:
            return OrderHistory((), complete=False)
        return await self.inner.fetch_order_history(symbol, since, until)


async def test_a_timeout_whose_lookup_finds_nothing_is_never_resent_under_the_same_client_id() -> None:
    # Binance keeps a client id unique among open orders only: the same id sent again after a filled
    # order executes again. So an order lost in a timeout stays unknown until absence is proven, and the
    # next order goes out under a new id.
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_before = 2
    await rig.clock.run(rig.keeper.tick())
    await rig.clock.run(rig.keeper.tick())
    intents = rig.journal.intents()
    assert [i.status.value for i in intents] == ["unknown"] and port.sent_ids == [intents[0].client_id]
    for _ in range(2):
        await rig.set_price("50000", advance=31)  # past the settle delay: a miss now proves absence
        await rig.clock.run(rig.keeper.tick())
    intents = rig.journal.intents()
    assert [i.status.value for i in intents] == ["absent", "absent", "done"]
    assert port.sent_ids == [i.client_id for i in intents], "each client id was sent exactly once"
    assert list(rig.venue.orders) == [intents[-1].client_id] and await rig.short() == D("1")


async def test_an_order_executed_before_its_answer_was_lost_is_found_not_resent() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    rig.keeper.port.place_after = 1
    await rig.clock.run(rig.keeper.tick())
    assert len(rig.venue.orders) == 1 and await rig.short() == D("1")
    assert rig.journal.intents()[0].status.value == "done"


async def test_an_unknown_outcome_blocks_trading_until_the_lookup_settles_it() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_after = 1
    port.lookups_fail = True
    await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["unknown"]
    await rig.clock.run(rig.keeper.tick())
    assert rig.keeper.status.state == "unresolved" and len(port.sent_ids) == 1
    port.lookups_fail = False
    await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["done"]
    assert len(rig.venue.orders) == 1 and await rig.short() == D("1")
    assert rig.events.counts["intent_settled"] == 1


async def test_a_rejected_action_is_journaled_alerted_and_the_keeper_carries_on() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    rig.keeper.port.reject = True
    await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["rejected"]
    rejected = rig.journal.events(kind="action_rejected")
    assert rejected and "not enough margin" in rejected[0].detail["error"]
    rig.keeper.port.reject = False
    await rig.clock.run(rig.keeper.tick())
    assert await rig.short() == D("1")


async def test_a_duplicate_client_id_answer_is_looked_up_not_taken_for_a_rejection() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    rig.keeper.port.duplicate_after = 1
    await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["done"]
    assert len(rig.venue.orders) == 1 and await rig.short() == D("1")
    assert rig.events.counts["action_rejected"] == 0


async def test_a_fill_settled_late_after_a_lagging_lookup_is_not_taken_for_another_traders_order() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_after = 1
    port.lagging_lookups = 2
    await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["unknown"]
    await rig.clock.run(rig.keeper.tick())
    await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["done"]
    assert len(rig.venue.orders) == 1 and await rig.short() == D("1")
    assert rig.events.counts["short_changed_outside"] == 0
    assert rig.keeper.trading_state.value == "active"


async def test_a_fill_settled_by_a_later_lookup_is_journaled_as_order_filled_with_amount_price_and_fee() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_after = 1
    port.lookups_fail = True
    await rig.clock.run(rig.keeper.tick())
    assert not rig.journal.events(kind="order_filled")
    port.lookups_fail = False
    await rig.clock.run(rig.keeper.tick())
    [intent] = rig.journal.intents()
    [filled] = rig.journal.events(kind="order_filled")
    assert filled.detail["client_id"] == intent.client_id and filled.detail["settled_late"] is True
    assert D(filled.detail["filled"]) == D("1")
    assert D(filled.detail["average_price"]) > 0 and D(filled.detail["fee"]) > 0


# ---- issue 16: absence is proven from the order history, never from a lookup that misses ----------


async def test_an_executed_order_that_lookups_keep_missing_past_the_settle_delay_is_found_in_the_order_history() -> None:
    # A read replica that keeps answering "not found": past the settle delay a miss still proves nothing,
    # and the symbol's order history shows the order: it is settled as done, and nothing is sent again.
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_after = 1
    port.lagging_lookups = 1000
    await rig.clock.run(rig.keeper.tick())
    for _ in range(3):
        await rig.set_price("50000", advance=31)
        await rig.clock.run(rig.keeper.tick())
    [intent] = rig.journal.intents()
    assert intent.status.value == "done" and D(intent.outcome["filled"]) == D("1")
    assert port.sent_ids == [intent.client_id] and len(rig.venue.orders) == 1 and await rig.short() == D("1")


async def test_an_order_is_not_proven_absent_while_the_order_history_cannot_be_read() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_before = 1  # it never reached the venue, but nothing can prove it yet
    port.lagging_lookups = 1000
    port.history_fails = True
    await rig.clock.run(rig.keeper.tick())
    for _ in range(3):
        await rig.set_price("50000", advance=31)
        await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["unknown"] and len(port.sent_ids) == 1
    assert rig.keeper.status.state == "unresolved" and await rig.short() == D("0")
    port.history_fails = False  # the history is readable again and holds no such order: absent, then a new id
    await rig.set_price("50000", advance=31)
    await rig.clock.run(rig.keeper.tick())
    intents = rig.journal.intents()
    assert [i.status.value for i in intents] == ["absent", "done"] and port.sent_ids == [i.client_id for i in intents]
    assert "order history" in intents[0].outcome["error"] and await rig.short() == D("1")


async def test_an_order_missing_from_a_cut_order_history_stays_unknown() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_before = 1
    port.lagging_lookups = 1000
    port.history_cut = True
    await rig.clock.run(rig.keeper.tick())
    for _ in range(3):
        await rig.set_price("50000", advance=31)
        await rig.clock.run(rig.keeper.tick())
    assert [i.status.value for i in rig.journal.intents()] == ["unknown"] and len(port.sent_ids) == 1


# ---- issue 16: the user-data stream settles an order of unknown outcome ------------------------------


async def test_an_order_the_user_stream_reports_filled_is_settled_while_lookups_still_miss_it() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    port = rig.keeper.port
    port.place_after = 1
    port.lagging_lookups = 1000
    port.history_fails = True  # nothing but the stream can tell
    await rig.clock.run(rig.keeper.tick())
    [intent] = rig.journal.intents()
    assert intent.status.value == "unknown"
    rig.keeper.notify_order(rig.venue.orders[intent.client_id])  # the stream's ORDER_TRADE_UPDATE
    await rig.set_price("50000", advance=2)  # long before the settle delay
    await rig.clock.run(rig.keeper.tick())
    [intent] = rig.journal.intents()
    assert intent.status.value == "done" and D(intent.outcome["filled"]) == D("1")
    [settled] = rig.journal.events(kind="intent_settled")
    assert settled.detail["settled_by"] == "user_stream"
    assert port.sent_ids == [intent.client_id] and await rig.short() == D("1")


async def test_a_stream_report_of_an_order_that_is_not_ours_or_not_open_settles_nothing() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Scripted)
    await rig.clock.run(rig.keeper.tick())
    [done] = rig.journal.intents()
    rig.keeper.notify_order(rig.venue.orders[done.client_id])
    assert rig.keeper._streamed == {}
