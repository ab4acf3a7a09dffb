"""The fence between a daemon and an account: nothing is sent once its lease has lapsed, and what is sent expires with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.engine.fencing import FencedPort
from hedgebot.exchange.port import Fenced, OrderRequest
from hedgebot.store.lease import Lease, LeaseTiming
from hedgebot.store.pg_journal import PgJournal
from tests.emulator_rig import emulator_rig

SYMBOL = "BTC/USDT:USDT"


def order(cid: str) -> OrderRequest:
    return OrderRequest(cid, SYMBOL, OrderSide.SELL, Decimal("0.01"), PositionSide.SHORT, False)


async def test_signed_requests_expire_with_the_lease_and_none_is_sent_once_it_has_lapsed(pg_url: str) -> None:
    async with emulator_rig() as rig:
        journal = PgJournal(pg_url, rig.clock, where="test")
        try:
            lease = Lease(journal, "live", "daemon-a", LeaseTiming(15.0, 3.0), rig.clock.now)
            lease.refresh()
            fenced = FencedPort(rig.venue, lease)
            await fenced.place_order(order("hbfence1"))
            rig.clock.advance(10.0)  # 2 s of the 12 s it may send for are left
            await fenced.place_order(order("hbfence2"))
            windows = [r.get("recv_window") for r in rig.emulator.request_log if r["path"] == "/fapi/v1/order"]
            assert windows == [10_000, 2_000]  # ccxt's 10 s, then cut to the lease left

            rig.clock.advance(2.5)
            before = len(rig.emulator.request_log)
            with pytest.raises(Fenced, match="lease"):
                await fenced.place_order(order("hbfence3"))
            with pytest.raises(Fenced, match="not signed nor sent"):
                await rig.venue.place_order(order("hbfence4"))  # past the port's check (a wait at the gate): refused at signing
            assert len(rig.emulator.request_log) == before and fenced.refused == 1
            assert [k.split("|", 2)[2] for k in rig.emulator.executions] == ["hbfence1", "hbfence2"]
            assert fenced.sent == {1: 2}
        finally:
            journal.close()
