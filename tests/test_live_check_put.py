"""`hedgebot check --exchange` on a live put hedge reads the Binance options account, not a short's margin: whether the
key may trade options, what the leg would buy at the ask, and whether the options wallet pays for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedgebot.exchange.factory import VenueSetup
from hedgebot.live_check import check_exchange
from hedgebot.ops.figures import iso_utc
from tests.engine.test_daemon_put_live import keys_in_environment, settings  # noqa: F401 - the keys' fixture
from tests.engine.test_put_leg_live_emulator import EXPIRIES, options_rig
from tests.emulator_rig import SECRET

pytestmark = pytest.mark.slow


async def test_check_exchange_on_a_put_hedge_says_what_it_would_buy_and_that_the_options_wallet_pays_for_it(tmp_path: Path) -> None:
    async with options_rig(premium_wallet="100") as rig:
        book = rig.book()
        found = await check_exchange(settings(tmp_path, rig.url), rig.clock, lambda a: VenueSetup(rig.venue, options=book))
        text = "\n".join(found.lines)
        assert found.problems == [], found.problems
        assert "long puts on Binance options; the key may trade options; options wallet 100 USDT" in text, text
        assert "it would buy 2.0 puts at strike 48000" in text and "UNDER-FUNDED" in text, text
        assert "position mode" not in text and "margin locked" not in text and "leverage" not in text, text
        assert f"expiry {iso_utc(EXPIRIES[1] / 1000)}" in text, text  # the first expiry past 7 days, as an ISO time
        assert rig.order_posts() == [], "check places no order"


async def test_check_exchange_names_a_key_that_cannot_trade_options(tmp_path: Path) -> None:
    async with options_rig() as rig:
        rig.desk.state.enabled = False
        book = rig.book()
        found = await check_exchange(settings(tmp_path, rig.url), rig.clock, lambda a: VenueSetup(rig.venue, options=book))
        assert len(found.problems) == 1 and "cannot trade Binance options" in found.problems[0], found.problems
        assert SECRET not in found.problems[0]
