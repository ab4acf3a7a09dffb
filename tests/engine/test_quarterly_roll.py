"""A quarterly hedge on the paper venue: it holds the nearest contract, rolls to the next one before delivery in
slices (next contract first), never below its short nor above it by more than a slice, and resumes after a kill
at any step of the roll without a duplicate leg."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.roll import CLOSE_EXPIRING, OPEN_NEXT
from hedgebot.engine import crashpoints
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, btc_market, hedge_config

MARCH = "BTC/USDT:USDT-260327"
JUNE = "BTC/USDT:USDT-260626"
MARCH_DELIVERY = datetime(2026, 3, 27, 8, tzinfo=UTC).timestamp()
DAY = 86_400.0
SLICE = D("0.5")


class Killed(BaseException):
    """The process died here (SIGKILL): nothing after this line ran."""


async def tick_until_killed(keeper: Keeper, monkeypatch: pytest.MonkeyPatch, point: str, nth: int) -> None:
    """Tick the keeper until the `nth` time it reaches crash point `point`, where the process dies (SIGKILL)."""
    seen = {"count": 0}

    def reached(name: str) -> None:
        if name == point:
            seen["count"] += 1
            if seen["count"] == nth:
                raise Killed(f"{name}:{nth}")

    monkeypatch.setattr(crashpoints, "reached", reached)
    with pytest.raises(Killed):
        await keeper.tick()
    monkeypatch.setattr(crashpoints, "reached", lambda name: None)


def _venue(clock: SimClock) -> PaperVenue:
    venue = PaperVenue(
        clock, [PaperMarket(btc_market(), ConstantFunding(D("0.0001")), quarterlies=True, quarterly_basis=D("0.05"))],
        spot={"BTC": D("2")}, futures={"USDT": D("100000")},
    )
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    return venue


def _keeper(venue: PaperVenue, clock: SimClock, journal_path: str) -> tuple[Keeper, Journal]:
    journal = Journal(journal_path, clock)
    hedge = hedge_config(instrument=InstrumentKind.USDM_QUARTERLY, max_order=SLICE, margin_mode="cross")
    return Keeper("acct", hedge, venue, clock, journal, EventLog(journal, NullLogger())), journal


async def _to(clock: SimClock, venue: PaperVenue, at: float, price: str = "50000") -> None:
    await clock.advance(at - clock.now())
    venue.update_price(SYMBOL, clock.now(), D(price))


async def _shorts(venue: PaperVenue) -> tuple[Decimal, Decimal]:
    return (await venue.fetch_legs(MARCH)).short.size, (await venue.fetch_legs(JUNE)).short.size


def _roll_trail(journal: Journal) -> list[tuple[str, Decimal]]:
    """Return the roll's fills in the order they happened: (the step, filled)."""
    return [
        (i.detail["reason"], D(i.outcome["filled"]))
        for i in journal.intents()
        if i.kind == "order" and "roll" in i.detail and i.status.value == "done"
    ]


async def test_a_quarterly_hedge_holds_the_nearest_contract_more_than_roll_before_from_delivery(tmp_path: Path) -> None:
    clock = SimClock(start=MARCH_DELIVERY - 10 * DAY)
    venue = _venue(clock)
    keeper, _ = _keeper(venue, clock, str(tmp_path / "j.sqlite"))
    await keeper.prepare()
    await keeper.tick()
    assert await _shorts(venue) == (D("2"), 0)
    assert (await venue.fetch_legs(SYMBOL)).short.size == 0, "nothing on the perpetual"
    status = keeper.status.to_json()
    assert status["contract"] == MARCH and status["rolling"] == ""
    assert keeper.status.next_roll_at == MARCH_DELIVERY - 3 * DAY


async def test_a_hedge_started_within_roll_before_of_delivery_holds_the_next_contract(tmp_path: Path) -> None:
    clock = SimClock(start=MARCH_DELIVERY - 2 * DAY)
    venue = _venue(clock)
    keeper, _ = _keeper(venue, clock, str(tmp_path / "j.sqlite"))
    await keeper.prepare()
    await keeper.tick()
    assert await _shorts(venue) == (0, D("2"))


async def test_the_roll_opens_the_next_contract_first_and_never_leaves_the_account_short_less_or_a_slice_more(
    tmp_path: Path,
) -> None:
    clock = SimClock(start=MARCH_DELIVERY - 10 * DAY)
    venue = _venue(clock)
    keeper, journal = _keeper(venue, clock, str(tmp_path / "j.sqlite"))
    await keeper.prepare()
    await keeper.tick()
    await _to(clock, venue, MARCH_DELIVERY - 3 * DAY + 60)
    await keeper.tick()
    assert await _shorts(venue) == (0, D("2"))
    trail = _roll_trail(journal)
    assert [reason for reason, _ in trail] == [OPEN_NEXT, CLOSE_EXPIRING] * 4, "each slice opens on the next contract first"
    short = D("2")
    for reason, filled in trail:
        short += filled if reason == OPEN_NEXT else -filled
        assert D("2") <= short <= D("2") + SLICE
    assert [e.detail["next_contract"] for e in journal.events(kind="roll_completed")] == [JUNE]
    assert keeper.market is not None and keeper.market.symbol == JUNE and keeper.status.rolling == ""


async def test_a_roll_whose_next_contract_refuses_falls_back_to_the_perpetual_with_a_critical_alert(tmp_path: Path) -> None:
    clock = SimClock(start=MARCH_DELIVERY - 10 * DAY)
    venue = _venue(clock)
    keeper, journal = _keeper(venue, clock, str(tmp_path / "j.sqlite"))
    await keeper.prepare()
    await keeper.tick()
    await _to(clock, venue, MARCH_DELIVERY - 3 * DAY + 60)
    real = venue.place_order

    async def refuse_june(request: Any) -> Any:
        if request.symbol == JUNE:
            from hedgebot.exchange.port import InvalidOrder

            raise InvalidOrder(f"{JUNE} is not trading")
        return await real(request)

    venue.place_order = refuse_june  # type: ignore[method-assign]
    for _ in range(3):
        await keeper.tick()
    assert await _shorts(venue) == (0, 0)
    assert (await venue.fetch_legs(SYMBOL)).short.size == D("2"), "the short moved to the perpetual"
    assert keeper.alerts.active["roll_fallback"].severity.value == "critical"


CRASH_POINTS = ["roll_journaled", "intent_journaled", "action_sent", "outcome_journaled"]


@pytest.mark.parametrize("point,nth", [("roll_journaled", 1)] + [(p, n) for p in CRASH_POINTS[1:] for n in range(1, 9)])
async def test_a_kill_at_any_step_of_the_roll_resumes_without_a_duplicate_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, nth: int,
) -> None:
    clock = SimClock(start=MARCH_DELIVERY - 10 * DAY)
    venue = _venue(clock)
    path = str(tmp_path / "journal.sqlite")
    keeper, journal = _keeper(venue, clock, path)
    await keeper.prepare()
    await keeper.tick()
    assert await _shorts(venue) == (D("2"), 0)
    await _to(clock, venue, MARCH_DELIVERY - 3 * DAY + 60)
    await tick_until_killed(keeper, monkeypatch, point, nth)
    journal.close()
    # A new daemon on the same journal and the same (outliving) exchange account.
    await clock.advance(30)
    keeper, journal = _keeper(venue, clock, path)
    await keeper.prepare()
    for _ in range(3):
        await keeper.tick()
        march, june = await _shorts(venue)
        assert D("2") <= march + june <= D("2") + SLICE
    assert await _shorts(venue) == (0, D("2")), "the roll completed with exactly one leg of the short"
    fills = [
        (i.detail["symbol"], i.detail["side"], D(i.outcome["filled"]))
        for i in journal.intents() if i.kind == "order" and i.status.value == "done"
    ]
    opened = sum(f for symbol, side, f in fills if (symbol, side) == (JUNE, "sell"))
    closed = sum(f for symbol, side, f in fills if (symbol, side) == (MARCH, "buy"))
    assert (opened, closed) == (D("2"), D("2")), "each coin opened once on the next contract and bought back once"
    assert len(journal.events(kind="roll_completed")) == 1


async def test_a_coin_margined_quarterly_rolls_its_face_value_with_spot_coins_moved_behind_the_next_slice() -> None:
    clock = SimClock(start=MARCH_DELIVERY - 10 * DAY)
    market = default_market("BTC/USD:BTC")
    assert market is not None
    venue = PaperVenue(
        clock, [PaperMarket(market, ConstantFunding(D("0.0001")), quarterlies=True, quarterly_basis=D("0.05"))],
        spot={"BTC": D("2")}, futures={},
    )
    venue.update_price("BTC/USD:BTC", clock.now(), D("50000"))
    journal = Journal(":memory:", clock)
    hedge = hedge_config(
        symbol="BTC/USD:BTC", instrument=InstrumentKind.COINM_QUARTERLY, max_order=SLICE, leverage=2,
        margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
    )
    keeper = Keeper("acct", hedge, venue, clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    march, june = "BTC/USD:BTC-260327", "BTC/USD:BTC-260626"
    face = (await venue.fetch_legs(march)).short.size
    assert face > 0 and venue.spot["BTC"] > 0, "at 2x part of the coins wait in spot"
    await clock.advance(7 * DAY + 60)
    venue.update_price("BTC/USD:BTC", clock.now(), D("50000"))
    await keeper.tick()
    assert ((await venue.fetch_legs(march)).short.size, (await venue.fetch_legs(june)).short.size) == (0, face)
    moved = [i for i in journal.intents() if i.kind == "transfer" and i.detail["reason"] == "roll: margin for the next contract"]
    assert moved and all(i.detail["asset"] == "BTC" for i in moved), "the next slice's margin came from the spot coins"
    assert keeper.market is not None and keeper.market.symbol == june


async def test_a_margin_top_up_due_when_the_roll_begins_goes_out_before_the_first_slice(tmp_path: Path) -> None:
    clock = SimClock(start=MARCH_DELIVERY - 10 * DAY)
    venue = _venue(clock)
    journal = Journal(str(tmp_path / "j.sqlite"), clock)
    hedge = hedge_config(instrument=InstrumentKind.USDM_QUARTERLY, max_order=SLICE, margin_mode="isolated", leverage=3)
    keeper = Keeper("acct", hedge, venue, clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    assert await _shorts(venue) == (D("2"), 0)
    await _to(clock, venue, MARCH_DELIVERY - 3 * DAY + 60, "57000")  # the isolated March short near its trigger
    await keeper.tick()
    assert await _shorts(venue) == (0, D("2"))
    kinds = [(i.kind, i.detail.get("reason", "")) for i in journal.intents() if i.created_at > MARCH_DELIVERY - 4 * DAY]
    first_roll = next(n for n, (kind, reason) in enumerate(kinds) if reason == OPEN_NEXT)
    assert any(kind == "margin" for kind, _ in kinds[:first_roll]), f"the top-up first: {kinds}"
