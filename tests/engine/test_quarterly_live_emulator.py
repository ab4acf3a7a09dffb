"""A live quarterly hedge on Binance USDⓈ-M: the keeper, the real ccxt venue (`binanceusdm`) and the emulator.

Virtual time (the rig's stepping clock). The emulator lists two delivery contracts (BTCUSDT_260925 and
BTCUSDT_261225, as exchangeInfo serves them with deliveryDate and status); the keeper holds the nearest one more
than roll_before from delivery and rolls to the next one in slices, next contract first.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.config import HedgeConfig
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.roll import CLOSE_EXPIRING, OPEN_NEXT
from hedgebot.engine import crashpoints
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from hedgebot.testing.binance_emulator import Fault, delivery_symbol, quarterly
from tests.emulator_rig import BTC, START, EmulatorRig, emulator_rig
from tests.helpers import D, hedge_config

pytestmark = pytest.mark.slow

SEP_MS = 1_790_323_200_000  # 2026-09-25 08:00 UTC, 3.7 days after the rig's clock starts
DEC_MS = 1_798_185_600_000  # 2026-12-25 08:00 UTC
SEP, DEC = "BTCUSDT_260925", "BTCUSDT_261225"
SEP_CCXT, DEC_CCXT = "BTC/USDT:USDT-260925", "BTC/USDT:USDT-261225"
DAY = 86_400.0
SLICE = D("0.5")
ROLL_AT = SEP_MS / 1000 - 3 * DAY  # roll_before's default: 3 days


class Killed(BaseException):
    """The process died here (SIGKILL): nothing after this line ran."""


def list_quarterlies(rig: EmulatorRig) -> None:
    """Have the emulator list September's and December's BTCUSDT delivery contracts, marked at the perpetual's mark."""
    book = rig.emulator.book
    for delivery, kind in ((SEP_MS, "CURRENT_QUARTER"), (DEC_MS, "NEXT_QUARTER")):
        spec = quarterly(book.symbols[BTC], delivery, kind)
        book.symbols[delivery_symbol(spec, delivery)] = spec


def quarterly_hedge(**overrides: object) -> HedgeConfig:
    base = {"instrument": InstrumentKind.USDM_QUARTERLY, "max_order": SLICE, "margin_mode": "cross", "leverage": 3}
    return hedge_config(**{**base, **overrides})


def shorts(rig: EmulatorRig) -> tuple[Decimal, Decimal, Decimal]:
    """The SHORT legs on the exchange: September, December, the perpetual."""
    return tuple(D(rig.emulator.position(s, "SHORT").amount) for s in (SEP, DEC, BTC))  # type: ignore[return-value]


def roll_trail(journal: Journal) -> list[tuple[str, Decimal]]:
    return [
        (i.detail["reason"], D(i.outcome["filled"]))
        for i in journal.intents() if i.kind == "order" and "roll" in i.detail and i.status.value == "done"
    ]


async def test_a_live_quarterly_short_holds_the_nearest_contract_and_rolls_next_contract_first_within_its_bounds() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        keeper = rig.keeper(quarterly_hedge())
        await keeper.prepare()
        await keeper.tick()
        assert shorts(rig) == (D(2), 0, 0), "the nearest contract more than roll_before from delivery"
        assert keeper.status.to_json()["contract"] == SEP_CCXT
        assert keeper.status.next_roll_at == ROLL_AT
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        await keeper.tick()
        assert shorts(rig) == (0, D(2), 0)
        trail = roll_trail(rig.journal)
        assert [reason for reason, _ in trail] == [OPEN_NEXT, CLOSE_EXPIRING] * 4
        short = D(2)
        for reason, filled in trail:
            assert filled <= SLICE
            short += filled if reason == OPEN_NEXT else -filled
            assert D(2) <= short <= D(2) + SLICE
        orders = [o for o in rig.emulator.futures_orders().values() if o["symbol"] in (SEP, DEC)]
        # Hedge mode's close form on both contracts: SELL on SHORT opens December, BUY on SHORT closes September.
        assert {(o["symbol"], o["side"], o["positionSide"]) for o in orders} >= {(DEC, "SELL", "SHORT"), (SEP, "BUY", "SHORT")}
        assert [e.detail["next_contract"] for e in rig.journal.events(kind="roll_completed")] == [DEC_CCXT]
        assert keeper.market is not None and keeper.market.symbol == DEC_CCXT
