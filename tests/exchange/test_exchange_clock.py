"""The exchange's clock: measured at start and on -1021, searched in, trusted only within a limit."""

from __future__ import annotations

import pytest

from hedgebot.exchange.port import ClockSkew
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC, emulator_rig
from tests.helpers import D, SYMBOL, hedge_config

pytestmark = pytest.mark.slow

BEHIND = 300.0  # the daemon's clock is 300 s behind the exchange's


async def test_a_daemon_300s_behind_the_exchange_never_repeats_a_transfer_or_margin_change_nor_records_one_done_as_failed() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "60000"}, futures="17500") as rig:
        rig.emulator.clock_offset_seconds = BEHIND
        rig.venue.max_clock_offset = 600.0  # the user allows this much: the hedge trades
        keeper = rig.keeper(hedge_config(margin_mode="isolated", leverage=3))
        await keeper.prepare()
        assert rig.venue.clock_offset == pytest.approx(BEHIND, abs=2.0), "the offset is measured at start"
        await keeper.tick()
        assert rig.short() == D("1")
        for path in ("/sapi/v1/asset/transfer", "/fapi/v1/positionMargin"):  # executed, the answer lost
            rig.emulator.inject(Fault("drop_after", path, "POST", count=2))
        for price in ("55000", "60000", "64000", "68000", "68000", "68000", "68000"):
            rig.emulator.set_mark(BTC, D(price))
            await keeper.tick()
            rig.clock.advance(40.0)  # past the settle delay: an unseen movement would be taken for absent
        transfers = {str(t["tranId"]) for t in rig.emulator.book.transfers}
        margins = rig.emulator.book.margin_history
        assert transfers and margins, "money moved"
        intents = rig.journal.intents()
        done_transfers = [i.outcome["venue_id"] for i in intents if i.kind == "transfer" and i.status.value == "done"]
        assert sorted(done_transfers) == sorted(transfers), "each transfer the exchange made is one done intent"
        done_margins = [i for i in intents if i.kind == "margin" and i.status.value == "done"]
        assert len(done_margins) == len(margins), "each margin change the exchange made is one done intent"
        failed = [(i.kind, i.status.value) for i in intents if i.kind != "order" and i.status.value != "done"]
        assert failed == [], "a movement the exchange carried out was journaled as not done"


async def test_a_mark_120s_old_on_the_exchanges_clock_is_not_traded_on_when_the_local_clock_is_behind() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        rig.emulator.clock_offset_seconds = BEHIND
        rig.venue.max_clock_offset = 600.0
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        rig.emulator.stall_mark(BTC, 120.0)
        await keeper.tick()
        assert rig.short() == 0, "an order went out on a price 120 s old"
        assert keeper.status.state == "blocked" and "stale mark price: 120" in keeper.status.note


async def test_an_exchange_clock_offset_beyond_the_limit_stops_risk_with_a_critical_alert_naming_it() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        rig.emulator.clock_offset_seconds = BEHIND
        keeper = rig.keeper(hedge_config())  # max_clock_offset: the default 10 s
        await keeper.prepare()
        await keeper.tick()
        assert rig.short() == 0, "the short was opened on an exchange whose clock is 300 s off"
        alert = keeper.alerts.active.get("clock_offset")
        assert alert is not None and alert.severity.value == "critical"
        assert "300" in alert.message and "behind this machine's" not in alert.message
        assert "ahead of this machine's, beyond max_clock_offset_seconds = 10" in alert.message
        rig.emulator.clock_offset_seconds = 0.0  # the clocks agree again: the next -1021 measures it
        await keeper.tick()
        await keeper.tick()
        assert rig.short() == D("1") and "clock_offset" not in keeper.alerts.active


async def test_every_timestamp_refusal_measures_the_exchanges_clock_again() -> None:
    async with emulator_rig() as rig:
        await rig.venue.measure_clock()
        assert rig.venue.clock_offset == pytest.approx(0.0, abs=2.0)
        rig.emulator.clock_offset_seconds = -BEHIND  # the exchange's clock is stepped back
        with pytest.raises(ClockSkew, match="-1021"):
            await rig.venue.fetch_legs(SYMBOL)
        assert rig.venue.clock_offset == pytest.approx(-BEHIND, abs=2.0)
        await rig.venue.fetch_legs(SYMBOL)  # stamped on the exchange's clock now


async def test_an_order_executed_after_its_answer_was_lost_is_found_in_the_order_history_on_the_exchanges_clock() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        rig.emulator.clock_offset_seconds = BEHIND
        rig.venue.max_clock_offset = 600.0
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        rig.emulator.inject(Fault("execute_later", "/fapi/v1/order", "POST", delay=1.0, retry_after=1))
        rig.emulator.inject(Fault("order_unseen", "/fapi/v1/order", "GET", count=100))  # lookups by id never see it
        await keeper.tick()
        for _ in range(3):
            rig.clock.advance(40.0)  # past the settle delay: only the order history can settle it
            await keeper.tick()
        executed = [k for k in rig.emulator.executions if k.startswith("futures|")]
        assert len(executed) == 1 and rig.short() == D("1")
        orders = [i for i in rig.journal.intents() if i.kind == "order"]
        assert [i.status.value for i in orders] == ["done"], "the executed order was journaled as not executed"


async def test_an_exchange_clock_that_cannot_be_measured_adds_no_risk_until_it_can() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        rig.emulator.inject(Fault("server_error", "/fapi/v1/time", count=1000))
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        await keeper.tick()
        assert rig.venue.clock_offset is None and rig.short() == 0, "a short was opened on an unmeasured clock"
        alert = keeper.alerts.active.get("clock_offset")
        assert alert is not None and "could not be measured" in alert.message
        rig.emulator.faults.clear()
        await keeper.tick()
        assert rig.short() == D("1") and "clock_offset" not in keeper.alerts.active
