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
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from hedgebot.testing.binance_book import delivery_symbol, quarterly
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC, START, EmulatorRig, emulator_rig
from tests.engine.test_quarterly_roll import tick_until_killed
from tests.helpers import D, hedge_config

pytestmark = pytest.mark.slow

SEP_MS = 1_790_323_200_000  # 2026-09-25 08:00 UTC, 3.7 days after the rig's clock starts
DEC_MS = 1_798_185_600_000  # 2026-12-25 08:00 UTC
SEP, DEC = "BTCUSDT_260925", "BTCUSDT_261225"
SEP_CCXT, DEC_CCXT = "BTC/USDT:USDT-260925", "BTC/USDT:USDT-261225"
DAY = 86_400.0
SLICE = D("0.5")
ROLL_AT = SEP_MS / 1000 - 3 * DAY  # roll_before's default: 3 days


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


async def test_a_roll_order_whose_answer_is_lost_is_found_by_client_id_and_never_doubled() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        keeper = rig.keeper(quarterly_hedge())
        await keeper.prepare()
        await keeper.tick()
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        rig.emulator.lookup_lag_seconds = 5.0
        # The first slice on December executes 3 s after its answer was lost (Binance's "unknown" outcome).
        rig.emulator.inject(Fault("execute_later", "/fapi/v1/order", "POST", delay=3.0, retry_after=1))
        await keeper.tick()
        assert [i.status.value for i in rig.journal.intents() if i.kind == "order" and "roll" in i.detail] == ["unknown"]
        for _ in range(15):
            rig.clock.advance(1.0)
            await keeper.tick()
            sep, dec, _ = shorts(rig)
            assert D(2) <= sep + dec <= D(2) + SLICE
        assert shorts(rig) == (0, D(2), 0)
        orders = [i for i in rig.journal.intents() if i.kind == "order"]
        assert {i.status.value for i in orders} == {"done"}
        assert sorted(i.client_id for i in orders) == sorted(rig.emulator.futures_orders()), (
            "every order executed exactly once, under the client id it was journaled with"
        )
        assert ("GET", "/fapi/v1/order") in rig.emulator.requests, "the lost answer was looked up by client id"
        executed = rig.emulator.futures_orders().values()
        assert sum(D(o["executedQty"]) for o in executed if (o["symbol"], o["side"]) == (DEC, "SELL")) == D(2)
        assert sum(D(o["executedQty"]) for o in executed if (o["symbol"], o["side"]) == (SEP, "BUY")) == D(2)


CRASH_POINTS = ["roll_journaled", "intent_journaled", "action_sent", "outcome_journaled"]


@pytest.mark.parametrize("point,nth", [("roll_journaled", 1)] + [(p, n) for p in CRASH_POINTS[1:] for n in (1, 2, 3, 8)])
async def test_a_kill_at_a_step_of_a_live_roll_resumes_without_a_duplicate_leg_on_the_exchange(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, nth: int,
) -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        path = str(tmp_path / "journal.sqlite")

        def keeper_on(journal: Journal) -> Keeper:
            return Keeper("live", quarterly_hedge(), rig.venue, rig.clock, journal, EventLog(journal, NullLogger()))

        journal = Journal(path, rig.clock)
        keeper = keeper_on(journal)
        await keeper.prepare()
        await keeper.tick()
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        await tick_until_killed(keeper, monkeypatch, point, nth)
        journal.close()
        rig.clock.advance(30)
        journal = Journal(path, rig.clock)  # a new daemon on the same journal and the same exchange account
        keeper = keeper_on(journal)
        await keeper.prepare()
        for _ in range(3):
            await keeper.tick()
            sep, dec, perp = shorts(rig)
            assert D(2) <= sep + dec <= D(2) + SLICE and perp == 0
        assert shorts(rig) == (0, D(2), 0), "the roll completed with exactly one leg of the short"
        executed = rig.emulator.futures_orders().values()
        opened = sum(D(o["executedQty"]) for o in executed if (o["symbol"], o["side"]) == (DEC, "SELL"))
        closed = sum(D(o["executedQty"]) for o in executed if (o["symbol"], o["side"]) == (SEP, "BUY"))
        assert (opened, closed) == (D(2), D(2)), "each coin opened once on December and bought back once on September"
        assert len(journal.events(kind="roll_completed")) == 1
        journal.close()


async def test_a_next_contract_out_of_trading_makes_the_roll_fall_back_to_the_perpetual_with_a_critical_alert() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        keeper = rig.keeper(quarterly_hedge())
        await keeper.prepare()
        await keeper.tick()
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        rig.emulator.book.symbols[DEC].status = "PENDING_TRADING"  # listed, but takes no order (-4108)
        for _ in range(3):
            await keeper.tick()
            rig.clock.advance(10)
        assert shorts(rig) == (0, 0, D(2)), "the short moved from September to the perpetual"
        assert keeper.alerts.active["roll_fallback"].severity.value == "critical"


async def test_a_roll_cut_short_by_pre_delivery_falls_back_to_the_perpetual_and_the_leg_left_is_settled_at_delivery() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        keeper = rig.keeper(quarterly_hedge())
        await keeper.prepare()
        await keeper.tick()
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        # Both contracts stop trading before the roll starts: December refuses the first slice, September can no
        # longer be bought back (Binance's PRE_DELIVERING: -4108).
        rig.emulator.book.symbols[DEC].status = "PENDING_TRADING"
        rig.emulator.book.symbols[SEP].status = "PRE_DELIVERING"
        for _ in range(3):
            await keeper.tick()
            rig.clock.advance(10)
        sep, dec, perp = shorts(rig)
        assert keeper.alerts.active["roll_fallback"].severity.value == "critical"
        assert (sep, dec, perp) == (D(2), 0, 0), "no slice opened that could not be bought back before delivery"
        assert keeper.alerts.active["roll_delivery"].severity.value == "critical"
        assert keeper.trading_state.value == "active", "no refused buy-back piled up towards the rejection breaker"
        rig.clock.advance(SEP_MS / 1000 - rig.clock.now())
        wallet = D(rig.emulator.book.futures["USDT"])
        rig.emulator.set_mark(SEP, D(48000))
        [pnl] = rig.emulator.deliver(SEP)
        assert pnl == D(2) * (D(50000) - D(48000)) and D(rig.emulator.book.futures["USDT"]) > wallet
        for _ in range(3):
            rig.clock.advance(10)
            await keeper.tick()
        sep, dec, perp = shorts(rig)
        assert (sep, dec, perp) == (0, 0, D(2)), "the hedge lives on on the perpetual"
        assert [r["incomeType"] for r in rig.emulator.book.income if r["symbol"] == SEP] == ["DELIVERED_SETTELMENT"]
        assert len(rig.journal.events(kind="roll_completed")) == 1 and "roll_delivery" not in keeper.alerts.active


async def test_a_live_coin_m_quarterly_short_rolls_its_contracts_next_first_backed_by_its_own_coins() -> None:
    from tests.emulator_rig import BTC_COINM

    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}, coinm="0") as rig:
        book = rig.emulator.book
        for delivery, kind in ((SEP_MS, "CURRENT_QUARTER"), (DEC_MS, "NEXT_QUARTER")):
            spec = quarterly(book.symbols[BTC_COINM], delivery, kind)
            book.symbols[delivery_symbol(spec, delivery)] = spec
        sep, dec = "BTCUSD_260925", "BTCUSD_261225"
        hedge = hedge_config(
            symbol="BTC/USD:BTC", instrument=InstrumentKind.COINM_QUARTERLY, max_order=SLICE, leverage=2,
            margin_mode="isolated", margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
        )
        keeper = rig.keeper(hedge)
        await keeper.prepare()
        await keeper.tick()
        held = D(rig.emulator.position(sep, "SHORT").amount)
        assert held >= 990 and keeper.status.to_json()["contract"] == "BTC/USD:BTC-260925"  # 2 BTC less fees, in 100 USD contracts
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        for _ in range(3):
            await keeper.tick()
            rig.clock.advance(10)
        assert (D(rig.emulator.position(sep, "SHORT").amount), D(rig.emulator.position(dec, "SHORT").amount)) == (0, held)
        # The exchange's own orders, in the order they executed, in contracts of 100 USD.
        fills = [(o["symbol"], o["side"], D(o["executedQty"])) for o in rig.emulator.futures_orders().values() if o["symbol"] in (sep, dec)]
        fills = fills[next(n for n, f in enumerate(fills) if f[0] == dec):]  # the roll's, after the opening
        assert fills[0][:2] == (dec, "SELL") and fills[1][:2] == (sep, "BUY"), "the next contract first"
        contracts = held
        for _, side, filled in fills:
            contracts += filled if side == "SELL" else -filled
            assert held <= contracts <= held + 250, "never below the short, never above it by more than a slice (0.5 BTC)"
        moved = [t for t in book.transfers if t["type"] == "MAIN_CMFUTURE"]
        assert moved and all(t["asset"] == "BTC" for t in moved), "the margin came from the coins in spot, none sold"
        assert not [o for o in book.orders if o.startswith("spot|")]
        assert keeper.market is not None and keeper.market.symbol == "BTC/USD:BTC-261225"


async def test_a_roll_reached_inside_the_pre_delivery_hour_waits_for_the_settlement_and_then_opens_the_next_contract() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        keeper = rig.keeper(quarterly_hedge(roll_before=2 * 3600))
        await keeper.prepare()
        await keeper.tick()
        assert shorts(rig) == (D(2), 0, 0)
        # The daemon was down through the roll window: it comes back 30 minutes before delivery, and the exchange
        # has turned September PRE_DELIVERING on its own (the emulator's harsh hour, see docs/exchanges.md).
        rig.clock.advance(SEP_MS / 1000 - 1800 - rig.clock.now())
        for _ in range(3):
            await keeper.tick()
            rig.clock.advance(10)
        assert rig.emulator.book.symbols[SEP].status == "PRE_DELIVERING"
        assert shorts(rig) == (D(2), 0, 0), "no slice opened that could not be bought back"
        assert keeper.alerts.active["roll_delivery"].severity.value == "critical"
        assert not [e for e in rig.journal.events(kind="action_rejected")], "no order sent to a contract that takes none"
        rig.clock.advance(SEP_MS / 1000 - rig.clock.now())
        rig.emulator.deliver(SEP)
        for _ in range(2):
            rig.clock.advance(10)
            await keeper.tick()
        assert shorts(rig) == (0, D(2), 0), "the settled leg is opened again on December"
        assert keeper.market is not None and keeper.market.symbol == DEC_CCXT
        assert "roll_delivery" not in keeper.alerts.active
