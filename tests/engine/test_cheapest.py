"""instrument = "cheapest" on the paper venue: the hedge opens on the contract whose carry pays its short the most,
and at each roll window moves the leg to another contract only when it earns more than switch_advantage a year,
through the journaled roll (next contract first, never unhedged), resuming after a kill at any step without a
duplicate leg. Holding the perpetual by choice is not a fallback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.port import InvalidOrder, OrderRequest
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.engine.test_quarterly_roll import CRASH_POINTS, DAY, JUNE, MARCH, MARCH_DELIVERY, SLICE, _to, tick_until_killed
from tests.helpers import D, SYMBOL, btc_market, hedge_config

# Per 8 h: -0.0001 is about -10.95 % a year (a short pays it), 0.0003 about +32.85 % (a short receives it).
PAYING = D("-0.0001")
RICH = D("0.0003")
START = MARCH_DELIVERY - 10 * DAY
WINDOW = MARCH_DELIVERY - 3 * DAY + 60  # just inside roll_before (3 days) of March's delivery
JUNE_WINDOW = datetime(2026, 6, 26, 8, tzinfo=UTC).timestamp() - 3 * DAY  # June's delivery less roll_before


def _venue(clock: SimClock, funding: Decimal, basis: Decimal) -> PaperVenue:
    venue = PaperVenue(
        clock, [PaperMarket(btc_market(), ConstantFunding(funding), quarterlies=True, quarterly_basis=basis)],
        spot={"BTC": D("2")}, futures={"USDT": D("100000")},
    )
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    return venue


def _carry_changes(venue: PaperVenue, funding: Decimal, basis: Decimal) -> None:
    """The market's funding history and the quarterlies' basis are now these (priced at the next price update)."""
    venue.markets[SYMBOL].funding = ConstantFunding(funding)
    venue.markets[SYMBOL].quarterly_basis = basis


def _keeper(venue: PaperVenue, clock: SimClock, path: str, **hedge: object) -> tuple[Keeper, Journal]:
    journal = Journal(path, clock)
    config = hedge_config(instrument=InstrumentKind.CHEAPEST, max_order=SLICE, margin_mode="cross", **hedge)
    return Keeper("acct", config, venue, clock, journal, EventLog(journal, NullLogger())), journal


async def _shorts(venue: PaperVenue) -> tuple[Decimal, Decimal, Decimal]:
    """Return the short on the perpetual, on March and on June."""
    return tuple([(await venue.fetch_legs(s)).short.size for s in (SYMBOL, MARCH, JUNE)])  # type: ignore[return-value]


def _choices(journal: Journal) -> list[dict[str, object]]:
    return [e.detail for e in journal.events(kind="instrument_chosen")]


async def _opened(tmp_path: Path, funding: Decimal, basis: Decimal, **hedge: object) -> tuple[SimClock, PaperVenue, Keeper, Journal]:
    clock = SimClock(start=START)
    venue = _venue(clock, funding, basis)
    keeper, journal = _keeper(venue, clock, str(tmp_path / "j.sqlite"), **hedge)
    await keeper.prepare()
    await keeper.tick()
    return clock, venue, keeper, journal


async def test_with_funding_the_short_pays_and_a_positive_basis_the_hedge_opens_on_the_quarterly(tmp_path: Path) -> None:
    _, venue, keeper, journal = await _opened(tmp_path, PAYING, D("0.05"))
    assert await _shorts(venue) == (0, D("2"), 0)
    [chosen] = _choices(journal)
    assert chosen["contract"] == MARCH and chosen["when"] == "opening"
    carries = chosen["carries"]
    assert isinstance(carries, dict)
    assert D(carries[SYMBOL]) == PAYING * 3 * 365, "the perpetual's 30 days of funding at a year's pace"
    assert abs(D(carries[MARCH]) - D("0.05")) < D("0.0005"), "the quarterly's basis to the perpetual's mark a year"
    status = keeper.status.to_json()
    assert status["contract"] == MARCH
    assert {c["symbol"] for c in status["carries"]} == {SYMBOL, MARCH} and MARCH in status["choice"]
    assert "roll_fallback" not in keeper.alerts.active


async def test_with_rich_funding_and_a_low_basis_the_hedge_opens_on_the_perpetual_and_that_is_no_fallback(
    tmp_path: Path,
) -> None:
    _, venue, keeper, journal = await _opened(tmp_path, RICH, D("0.02"))
    assert await _shorts(venue) == (D("2"), 0, 0)
    [chosen] = _choices(journal)
    assert chosen["contract"] == SYMBOL and "earns the most" in str(chosen["reason"])
    assert "roll_fallback" not in keeper.alerts.active and not journal.events(kind="alert")
    status = keeper.status.to_json()
    assert status["contract"] == SYMBOL and status["rolling"] == ""
    assert keeper.status.next_roll_at == MARCH_DELIVERY - 3 * DAY, "it chooses again at March's roll window"


async def test_at_the_roll_window_the_leg_moves_to_the_perpetual_once_it_earns_more_than_switch_advantage(
    tmp_path: Path,
) -> None:
    clock, venue, keeper, journal = await _opened(tmp_path, PAYING, D("0.05"))
    assert await _shorts(venue) == (0, D("2"), 0)
    _carry_changes(venue, RICH, D("0.05"))  # 32.85 % on the perpetual against 5 % on June: far above 2 %
    await _to(clock, venue, WINDOW)
    for _ in range(2):
        await keeper.tick()
    assert await _shorts(venue) == (D("2"), 0, 0)
    window = _choices(journal)[-1]
    assert window["when"] == "roll window" and window["contract"] == SYMBOL and window["held"] == MARCH
    assert set(window["carries"]) == {SYMBOL, JUNE}  # type: ignore[arg-type]
    assert [e.detail["next_contract"] for e in journal.events(kind="roll_completed")] == [SYMBOL]
    assert "roll_fallback" not in keeper.alerts.active
    assert keeper.status.contract == SYMBOL and keeper.status.next_roll_at == JUNE_WINDOW


async def test_at_the_roll_window_an_advantage_below_switch_advantage_keeps_the_hedge_on_the_quarterlies(
    tmp_path: Path,
) -> None:
    clock, venue, keeper, journal = await _opened(tmp_path, PAYING, D("0.05"), switch_advantage=D("0.03"))
    _carry_changes(venue, D("0.00007"), D("0.05"))  # 7.665 % against 5 %: 2.665 % more, under the 3 % asked
    await _to(clock, venue, WINDOW)
    for _ in range(2):
        await keeper.tick()
    assert await _shorts(venue) == (0, 0, D("2")), "rolled to June as a quarterly hedge would"
    window = _choices(journal)[-1]
    assert window["contract"] == JUNE and "not above the 3.00 % asked" in str(window["reason"])
    assert [e.detail["next_contract"] for e in journal.events(kind="roll_completed")] == [JUNE]


async def test_on_the_perpetual_the_hedge_moves_to_the_quarterly_at_the_window_when_funding_turns_against_it(
    tmp_path: Path,
) -> None:
    clock, venue, keeper, journal = await _opened(tmp_path, RICH, D("0.02"))
    await _to(clock, venue, START + DAY)
    await keeper.tick()
    assert await _shorts(venue) == (D("2"), 0, 0)
    assert len(_choices(journal)) == 1, "between windows nothing is judged again"
    _carry_changes(venue, PAYING, D("0.05"))
    await _to(clock, venue, WINDOW)
    for _ in range(2):
        await keeper.tick()
    assert await _shorts(venue) == (0, 0, D("2"))
    assert _choices(journal)[-1]["contract"] == JUNE
    trail = [
        (i.detail["symbol"], i.detail["side"]) for i in journal.intents()
        if i.kind == "order" and "roll" in i.detail and i.status.value == "done"
    ]
    assert trail == [(JUNE, "sell"), (SYMBOL, "buy")] * 4, "each slice opens on the quarterly before the perpetual is bought back"


async def test_a_quarterly_that_refuses_the_move_leaves_the_leg_on_the_perpetual_without_a_fallback_alert(
    tmp_path: Path,
) -> None:
    clock, venue, keeper, journal = await _opened(tmp_path, RICH, D("0.02"))
    _carry_changes(venue, PAYING, D("0.05"))
    await _to(clock, venue, WINDOW)
    real = venue.place_order

    async def refuse_june(request: OrderRequest) -> object:
        if request.symbol == JUNE:
            raise InvalidOrder(f"{JUNE} is not trading")
        return await real(request)

    venue.place_order = refuse_june  # type: ignore[method-assign]
    for _ in range(3):
        await keeper.tick()
    assert await _shorts(venue) == (D("2"), 0, 0)
    assert keeper.status.rolling == "" and "roll_fallback" not in keeper.alerts.active
    assert _choices(journal)[-1]["when"] == "refused"
    assert len([c for c in _choices(journal) if c["when"] == "roll window"]) == 1, "the window is judged once"


# A move each way: off a quarterly at its window onto rich funding, and off the perpetual onto June when funding turns.
MOVES = {
    "quarterly to perpetual": ((PAYING, D("0.05")), (RICH, D("0.05")), MARCH, SYMBOL),
    "perpetual to quarterly": ((RICH, D("0.02")), (PAYING, D("0.05")), SYMBOL, JUNE),
}


@pytest.mark.parametrize("move", list(MOVES))
@pytest.mark.parametrize("point,nth", [("roll_journaled", 1)] + [(p, n) for p in CRASH_POINTS[1:] for n in range(1, 9)])
async def test_a_kill_at_any_step_of_a_move_between_contracts_resumes_without_a_duplicate_leg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str, nth: int, move: str,
) -> None:
    (funding, basis), (later_funding, later_basis), source, target = MOVES[move]
    clock = SimClock(start=START)
    venue = _venue(clock, funding, basis)
    path = str(tmp_path / "journal.sqlite")
    keeper, journal = _keeper(venue, clock, path)
    await keeper.prepare()
    await keeper.tick()
    assert (await venue.fetch_legs(source)).short.size == D("2")
    _carry_changes(venue, later_funding, later_basis)
    await _to(clock, venue, WINDOW)
    await tick_until_killed(keeper, monkeypatch, point, nth)
    journal.close()
    # A new daemon on the same journal and the same (outliving) exchange account.
    await clock.advance(30)
    keeper, journal = _keeper(venue, clock, path)
    await keeper.prepare()
    for _ in range(3):
        await keeper.tick()
        shorts = dict(zip((SYMBOL, MARCH, JUNE), await _shorts(venue)))
        assert sum(v for k, v in shorts.items() if k not in (source, target)) == 0, "nothing on a third contract"
        assert D("2") <= shorts[source] + shorts[target] <= D("2") + SLICE
    assert (await venue.fetch_legs(source)).short.size == 0 and (await venue.fetch_legs(target)).short.size == D("2"), (
        "the move completed with exactly one leg of the short"
    )
    fills = [
        (i.detail["symbol"], i.detail["side"], D(i.outcome["filled"]))
        for i in journal.intents() if i.kind == "order" and i.status.value == "done"
    ]
    opened = sum(f for symbol, side, f in fills if (symbol, side) == (target, "sell"))
    closed = sum(f for symbol, side, f in fills if (symbol, side) == (source, "buy"))
    assert (opened, closed) == (D("2"), D("2")), "each coin opened once on the new contract and bought back once"
    assert len(journal.events(kind="roll_completed")) == 1
    assert "roll_fallback" not in keeper.alerts.active


async def test_a_paper_daemon_shows_the_chosen_contract_and_the_carries_compared_in_status(tmp_path: Path, capsys) -> None:
    from hedgebot.commands.main import main
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon
    from tests.helpers import paper_settings_dict, write_toml

    data = paper_settings_dict(tmp_path, instrument="cheapest", max_order="0.5")
    market = data["accounts"][0]["paper"]["markets"][0]
    market.update(quarterlies=True, quarterly_basis="0.20", funding={"rate": "0.0001", "interval_hours": 8})
    path = write_toml(tmp_path / "hedgebot.toml", data)
    clock = SimClock(start=START)
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    await clock.advance(60)
    await daemon.stop()
    capsys.readouterr()
    assert main(["status", "--config", str(path), "--json"]) == 0
    [hedge] = json.loads(capsys.readouterr().out)
    assert hedge["contract"] == MARCH and hedge["short"] == "2.000"
    assert [(c["symbol"], c["annual_rate"]) for c in hedge["carries"]] == [(SYMBOL, "0.109500"), (MARCH, hedge["carries"][1]["annual_rate"])]
    assert MARCH in hedge["choice"] and "20.00 %" in hedge["choice"]
    assert main(["status", "--config", str(path)]) == 0
    table = capsys.readouterr().out
    assert f"contract {MARCH} (delivered 2026-03-27T08:00:00Z); next roll window 2026-03-24T08:00:00Z" in table, table
    assert f"carries a year: {SYMBOL} 10.95%, {MARCH} 20.00%" in table, table
