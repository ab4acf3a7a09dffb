"""Cross margin on each live dialect: the short is backed by the cross wallet only, or cross is refused at start."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.exchange.books import LegBook
from tests.exchange.dialect_rig import make_rig
from tests.helpers import D, hedge_config


def _keeper(venue: Any, margin_mode: str) -> Keeper:
    journal = Journal(":memory:", venue.clock)
    return Keeper("acct", hedge_config(margin_mode=margin_mode), venue, venue.clock, journal, EventLog(journal, NullLogger()))


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_a_cross_hedge_is_refused_at_start_where_the_venue_does_not_report_the_cross_wallet(exchange: str) -> None:
    rig = make_rig(exchange)
    try:
        with pytest.raises(StartupRefused, match="cross wallet"):
            await _keeper(rig.venue, "cross").prepare()
        await _keeper(rig.venue, "isolated").prepare()  # isolated margin needs no cross wallet
    finally:
        await rig.venue.close()


async def test_aster_reports_the_cross_wallet_without_isolated_margin() -> None:
    rig = make_rig("aster")
    try:
        rig.book.short = LegBook(D("0.5"), D("50000"), D("8000"))
        balance = await rig.venue.fetch_futures_balance("USDT")
        assert balance.cross_wallet is not None and balance.cross_wallet < balance.wallet
    finally:
        await rig.venue.close()
