"""instrument = "cheapest" on a live Binance account: the keeper, the real ccxt venue and the emulator.

The carries come from the exchange through the port, as Binance serves them: the perpetual's settled funding
from GET /fapi/v1/fundingRate (/dapi/v1/fundingRate on COIN-M), the quarterly's basis from its mark against the
perpetual's (premiumIndex). Virtual time (the rig's stepping clock); the emulator lists September's and December's
delivery contracts, September 3.7 days after the clock starts (roll_before: 3 days).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.config import HedgeConfig
from hedgebot.domain.basis import modelled_future_price
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.roll import CLOSE_EXPIRING, OPEN_NEXT
from hedgebot.engine.keeper import Keeper
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from hedgebot.testing.binance_emulator import Emulator, delivery_symbol, quarterly
from tests.emulator_rig import BTC, BTC_COINM, COINM_SYMBOL, EmulatorRig, emulator_rig
from tests.engine.test_quarterly_live_emulator import DEC, DEC_CCXT, DEC_MS, ROLL_AT, SEP, SEP_CCXT, SEP_MS, SLICE, list_quarterlies, shorts
from tests.engine.test_quarterly_roll import tick_until_killed
from tests.helpers import D, hedge_config

pytestmark = pytest.mark.slow

PERP_CCXT = "BTC/USDT:USDT"
HOUR = 3600.0
# Per 8 h: -0.0001 is -10.95 % a year (a short pays it), 0.0003 is +32.85 % (a short receives it).
PAYING, RICH = D("-0.0001"), D("0.0003")


def funding_settled(emulator: Emulator, symbol: str, rate: Decimal, until: float, count: int = 90) -> None:
    """Have `symbol` settled at `rate` every 8 h up to `until` (the last 30 days), as /fapi/v1/fundingRate lists them."""
    mark = emulator.book.symbols[symbol].mark
    for n in range(count, 0, -1):
        emulator.book.funding_history.append(
            {"symbol": symbol, "fundingTime": int((until - n * 8 * HOUR) * 1000), "fundingRate": f"{rate:.8f}", "markPrice": mark}
        )


def quarterlies_at_basis(emulator: Emulator, now: float, basis: Decimal, perpetual: str = BTC, symbols: tuple[str, ...] = (SEP, DEC)) -> None:
    """Mark each quarterly at the perpetual's mark plus `basis` a year until its delivery."""
    mark = D(emulator.book.symbols[perpetual].mark)
    for symbol, delivery in zip(symbols, (SEP_MS, DEC_MS), strict=True):
        emulator.set_mark(symbol, modelled_future_price(mark, now, delivery / 1000, basis).quantize(D("0.1")))


def cheapest_hedge(**overrides: object) -> HedgeConfig:
    base = {"instrument": InstrumentKind.CHEAPEST, "max_order": SLICE, "margin_mode": "cross", "leverage": 3}
    return hedge_config(**{**base, **overrides})


def choices(journal: Journal) -> list[dict[str, object]]:
    return [e.detail for e in journal.events(kind="instrument_chosen")]


async def opened(rig: EmulatorRig, funding: Decimal, basis: Decimal, keeper: Keeper | None = None) -> Keeper:
    list_quarterlies(rig)
    funding_settled(rig.emulator, BTC, funding, rig.clock.now())
    quarterlies_at_basis(rig.emulator, rig.clock.now(), basis)
    keeper = keeper or rig.keeper(cheapest_hedge())
    await keeper.prepare()
    await keeper.tick()
    return keeper


async def test_a_live_cheapest_hedge_opens_on_the_quarterly_when_the_exchange_s_funding_makes_a_short_pay() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        keeper = await opened(rig, PAYING, D("0.10"))
        assert shorts(rig) == (D(2), 0, 0), "the short opened on September, the nearest quarterly"
        [chosen] = choices(rig.journal)
        assert chosen["contract"] == SEP_CCXT and chosen["when"] == "opening"
        carries = chosen["carries"]
        assert isinstance(carries, dict)
        assert D(carries[PERP_CCXT]) == PAYING * 3 * 365, "90 settlements 8 h apart, read from the exchange"
        assert abs(D(carries[SEP_CCXT]) - D("0.10")) < D("0.01"), "September's mark against the perpetual's, a year"
        asked = {path for _, path in rig.emulator.requests}
        assert {"/fapi/v1/fundingRate", "/fapi/v1/premiumIndex"} <= asked, "both carries read from the exchange"
        assert keeper.status.to_json()["contract"] == SEP_CCXT
        assert "roll_fallback" not in keeper.alerts.active


async def test_a_live_cheapest_hedge_opens_on_the_perpetual_when_its_funding_pays_a_short_more_than_the_basis() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        keeper = await opened(rig, RICH, D("0.05"))
        assert shorts(rig) == (0, 0, D(2))
        [chosen] = choices(rig.journal)
        assert chosen["contract"] == PERP_CCXT and "earns the most" in str(chosen["reason"])
        assert keeper.status.next_roll_at == ROLL_AT, "it chooses again at September's roll window"
        assert "roll_fallback" not in keeper.alerts.active


async def test_at_the_roll_window_a_live_cheapest_hedge_moves_to_the_perpetual_next_contract_first_within_its_bounds() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        keeper = await opened(rig, PAYING, D("0.05"))
        assert shorts(rig) == (D(2), 0, 0)
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        # Funding has turned: the exchange settled 0.03 % three times a day lately; December is at 5 % a year.
        rig.emulator.book.funding_history.clear()
        funding_settled(rig.emulator, BTC, RICH, rig.clock.now())
        quarterlies_at_basis(rig.emulator, rig.clock.now(), D("0.05"))
        for _ in range(2):
            await keeper.tick()
            rig.clock.advance(10)
        assert shorts(rig) == (0, 0, D(2)), "the whole short moved from September to the perpetual"
        window = choices(rig.journal)[-1]
        assert window["when"] == "roll window" and window["contract"] == PERP_CCXT and window["held"] == SEP_CCXT
        assert set(window["carries"]) == {PERP_CCXT, DEC_CCXT}  # type: ignore[arg-type]
        fills = [(o["symbol"], o["side"], D(o["executedQty"])) for o in rig.emulator.futures_orders().values()
                 if o["symbol"] in (SEP, BTC)]
        fills = fills[next(n for n, f in enumerate(fills) if f[0] == BTC):]
        assert [f[:2] for f in fills] == [(BTC, "SELL"), (SEP, "BUY")] * 4, "the perpetual opened first, slice by slice"
        short = D(2)
        for _, side, filled in fills:
            assert filled <= SLICE
            short += filled if side == "SELL" else -filled
            assert D(2) <= short <= D(2) + SLICE
        assert [e.detail["next_contract"] for e in rig.journal.events(kind="roll_completed")] == [PERP_CCXT]
        assert "roll_fallback" not in keeper.alerts.active
        assert keeper.status.contract == PERP_CCXT


CRASH_POINTS = ["intent_journaled", "action_sent", "outcome_journaled"]


@pytest.mark.parametrize("point,nth", [("roll_journaled", 1)] + [(p, n) for p in CRASH_POINTS for n in (1, 2, 8)])
async def test_a_kill_at_a_step_of_a_live_move_between_contracts_resumes_without_a_duplicate_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, nth: int,
) -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        path = str(tmp_path / "journal.sqlite")

        def keeper_on(journal: Journal) -> Keeper:
            return Keeper("live", cheapest_hedge(), rig.venue, rig.clock, journal, EventLog(journal, NullLogger()))

        journal = Journal(path, rig.clock)
        keeper = await opened(rig, PAYING, D("0.05"), keeper_on(journal))
        assert shorts(rig) == (D(2), 0, 0)
        rig.clock.advance(ROLL_AT + 60 - rig.clock.now())
        rig.emulator.book.funding_history.clear()
        funding_settled(rig.emulator, BTC, RICH, rig.clock.now())
        quarterlies_at_basis(rig.emulator, rig.clock.now(), D("0.05"))
        await tick_until_killed(keeper, monkeypatch, point, nth)
        journal.close()
        rig.clock.advance(30)
        journal = Journal(path, rig.clock)  # a new daemon on the same journal and the same exchange account
        keeper = keeper_on(journal)
        await keeper.prepare()
        for _ in range(3):
            await keeper.tick()
            sep, dec, perp = shorts(rig)
            assert D(2) <= sep + perp <= D(2) + SLICE and dec == 0
            rig.clock.advance(10)
        assert shorts(rig) == (0, 0, D(2)), "the move completed with exactly one leg of the short"
        executed = rig.emulator.futures_orders().values()
        opened_perp = sum(D(o["executedQty"]) for o in executed if (o["symbol"], o["side"]) == (BTC, "SELL"))
        closed_sep = sum(D(o["executedQty"]) for o in executed if (o["symbol"], o["side"]) == (SEP, "BUY"))
        assert (opened_perp, closed_sep) == (D(2), D(2)), "each coin opened once on the perpetual and bought back once"
        assert len(journal.events(kind="roll_completed")) == 1
        orders = [i for i in journal.intents() if i.kind == "order"]
        assert {i.status.value for i in orders} <= {"done", "absent"}, "each order settled: carried out, or never sent"
        assert sorted(i.client_id for i in orders if i.status.value == "done") == sorted(rig.emulator.futures_orders())
        journal.close()


async def test_a_live_coin_m_cheapest_hedge_reads_the_coin_m_funding_and_opens_on_the_coin_m_quarterly() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}, coinm="0") as rig:
        book = rig.emulator.book
        sep, dec = "BTCUSD_260925", "BTCUSD_261225"
        for delivery, kind in ((SEP_MS, "CURRENT_QUARTER"), (DEC_MS, "NEXT_QUARTER")):
            spec = quarterly(book.symbols[BTC_COINM], delivery, kind)
            book.symbols[delivery_symbol(spec, delivery)] = spec
        funding_settled(rig.emulator, BTC_COINM, PAYING, rig.clock.now())
        quarterlies_at_basis(rig.emulator, rig.clock.now(), D("0.08"), BTC_COINM, (sep, dec))
        hedge = hedge_config(
            symbol=COINM_SYMBOL, instrument=InstrumentKind.CHEAPEST, max_order=SLICE, leverage=2,
            margin_mode="isolated", margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
        )
        keeper = rig.keeper(hedge)
        await keeper.prepare()
        await keeper.tick()
        [chosen] = choices(rig.journal)
        assert chosen["contract"] == "BTC/USD:BTC-260925"
        carries = chosen["carries"]
        assert isinstance(carries, dict) and D(carries[COINM_SYMBOL]) == PAYING * 3 * 365
        assert {"/dapi/v1/fundingRate", "/dapi/v1/premiumIndex"} <= {path for _, path in rig.emulator.requests}
        assert D(rig.emulator.position(sep, "SHORT").amount) >= 990, "2 BTC less fees, in 100 USD contracts"
        assert D(rig.emulator.position(BTC_COINM, "SHORT").amount) == 0
        assert not [o for o in book.orders if o.startswith("spot|")], "no coin sold"


async def test_a_perpetual_settling_every_hour_is_priced_on_its_whole_last_30_days_not_on_the_exchange_s_first_page() -> None:
    # Binance answers GET /fapi/v1/fundingRate from startTime with the first `limit` settlements (100 unless
    # asked): an hourly market has 720 in 30 days. The oldest 100 made a short pay, the last 620 pay it.
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        list_quarterlies(rig)
        now = rig.clock.now()
        mark = rig.emulator.book.symbols[BTC].mark
        rates = [D("-0.0001")] * 100 + [D("0.00003")] * 620
        for n, rate in enumerate(rates):
            rig.emulator.book.funding_history.append(
                {"symbol": BTC, "fundingTime": int((now - (720 - n) * HOUR + 60) * 1000), "fundingRate": f"{rate:.8f}", "markPrice": mark}
            )
        quarterlies_at_basis(rig.emulator, now, D("0.05"))
        keeper = rig.keeper(cheapest_hedge())
        await keeper.prepare()
        await keeper.tick()
        [chosen] = choices(rig.journal)
        carries = chosen["carries"]
        assert isinstance(carries, dict)
        assert abs(D(carries[PERP_CCXT]) - sum(rates) / 720 * 24 * 365) < D("0.0001"), "the 720 settlements at their hourly pace"
        assert chosen["contract"] == PERP_CCXT and shorts(rig) == (0, 0, D(2)), "10.5 % a year beats September's 5 %"


async def test_a_live_cheapest_hedge_back_inside_the_pre_delivery_hour_opens_nothing_until_the_settlement_then_holds_its_choice() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}) as rig:
        keeper = rig.keeper(cheapest_hedge(roll_before=2 * 3600))
        await opened(rig, PAYING, D("0.05"), keeper)
        assert shorts(rig) == (D(2), 0, 0)
        # The daemon was down through the roll window and funding has turned: it comes back 30 minutes before
        # delivery, with September PRE_DELIVERING (the emulator's harsh hour) and the perpetual the better carry.
        rig.clock.advance(SEP_MS / 1000 - 1800 - rig.clock.now())
        rig.emulator.book.funding_history.clear()
        funding_settled(rig.emulator, BTC, RICH, rig.clock.now())
        for _ in range(3):
            await keeper.tick()
            rig.clock.advance(10)
        assert rig.emulator.book.symbols[SEP].status == "PRE_DELIVERING"
        assert shorts(rig) == (D(2), 0, 0), "no slice opened that could not be bought back"
        assert not rig.journal.events(kind="action_rejected"), "no order sent to a contract that takes none"
        rig.clock.advance(SEP_MS / 1000 - rig.clock.now())
        rig.emulator.deliver(SEP)
        for _ in range(3):
            rig.clock.advance(10)
            await keeper.tick()
        assert shorts(rig) == (0, 0, D(2)), "the settled leg is opened again on the contract chosen: the perpetual"
        assert keeper.market is not None and keeper.market.symbol == PERP_CCXT
        assert "roll_fallback" not in keeper.alerts.active
