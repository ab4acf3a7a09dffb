"""The put leg on a live Binance account: unmodified ccxt against the emulator's options desk (/eapi/v1/).

It buys the put nearest the floor in a limit order at the ask (never more than 5 % over the mark), rolls it before
expiry buying the new one before selling the old, waits and alerts on a chain with no sensible quote, is refused what
Binance refuses, and an order whose answer was lost is looked up by its client id and never sent twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.config import HedgeConfig
from hedgebot.engine.put_leg import BUY, SELL, PutLeg
from hedgebot.exchange.binance_options_book import BinanceOptionsBook
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.paper_options import PutSeries
from hedgebot.exchange.port import AuthenticationFailed, ExchangeError, InsufficientFunds, InvalidOrder
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import IntentStatus, Journal
from hedgebot.testing.binance_emulator import Emulator, serve
from hedgebot.testing.binance_faults import Fault
from hedgebot.testing.binance_options import OptionsDesk
from hedgebot.testing.clock import SteppingClock
from tests.emulator_rig import KEY, SECRET, START, connect, free_port

pytestmark = pytest.mark.slow

D = Decimal
SYMBOL = "BTC/USDT:USDT"
DAY = 86400.0
EXPIRIES = [int((START + days * DAY) * 1000) for days in (3, 10, 40)]
STRIKES = [D(k) for k in range(30000, 60001, 1000)]


def hedge(**overrides: Any) -> HedgeConfig:
    fields: dict[str, Any] = {
        "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": D(1), "instrument": "put", "floor": D("0.85"),
        "expiry_days": 7, "roll_before": 2 * DAY, "max_premium_per_order": D(5000), "max_premium_per_month": D(20000),
    }
    fields.update(overrides)
    return HedgeConfig(**fields)


@dataclass
class OptionsRig:
    emulator: Emulator
    desk: OptionsDesk
    url: str
    clock: SteppingClock
    venue: CcxtVenue
    journal: Journal
    events: EventLog
    books: list[BinanceOptionsBook]

    def book(self) -> BinanceOptionsBook:
        """Return a new options book on the emulator (a new process would build its own)."""
        made = BinanceOptionsBook.connect("BTC", self.clock, api_key=KEY, secret=SECRET, api_base_url=self.url,
                                          timeout_ms=1000, rate_limit=False)
        self.books.append(made)
        return made

    def leg(self, config: HedgeConfig | None = None, book: BinanceOptionsBook | None = None) -> PutLeg:
        return PutLeg("live", config or hedge(), self.venue, book or self.book(), self.clock, self.journal, self.events)

    def order_posts(self) -> list[dict[str, Any]]:
        return [r for r in self.emulator.request_log if r["path"] == "/eapi/v1/order" and r["method"] == "POST"]

    def kinds(self, kind: str) -> list[Any]:
        return self.journal.events("live", "btc-put", kind)


@asynccontextmanager
async def options_rig(*, btc: str = "2", premium_wallet: str = "10000", journal_path: str = ":memory:") -> AsyncIterator[OptionsRig]:
    clock = SteppingClock(START)
    emulator = Emulator(now=clock.now)
    emulator.add_key(KEY, SECRET)
    emulator.deposit("spot", "BTC", D(btc))
    emulator.set_mark("BTCUSDT", D(50000))
    desk = OptionsDesk(emulator, expiries_ms=EXPIRIES, strikes=STRIKES)
    desk.deposit("USDT", D(premium_wallet))
    port = free_port()
    runner = await serve(emulator, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    venue = connect(url, clock)
    journal = Journal(journal_path, clock)
    rig = OptionsRig(emulator, desk, url, clock, venue, journal, EventLog(journal, NullLogger()), [])
    try:
        yield rig
    finally:
        for book in rig.books:
            await book.close()
        await venue.close()
        journal.close()
        await runner.cleanup()


def symbol(expiry_ms: int, strike: int) -> str:
    from hedgebot.testing.binance_options import option_symbol

    return option_symbol(expiry_ms, D(strike))


async def test_a_live_put_leg_buys_the_put_nearest_the_floor_on_binance_options_in_a_limit_order_at_the_ask() -> None:
    async with options_rig() as rig:
        leg = rig.leg()
        await leg.tick()
        bought = symbol(EXPIRIES[1], 42000)  # 0.85 x 50,000 = 42,500: the nearest listed strike, the first expiry past 7 days
        assert rig.desk.held() == {bought: D(2)}
        [order] = rig.desk.state.orders.values()
        [intent] = rig.journal.intents()
        assert order["clientOrderId"] == intent.client_id and intent.kind == BUY and intent.status is IntentStatus.DONE
        assert (order["type"], order["timeInForce"], order["side"], order["reduceOnly"]) == ("LIMIT", "IOC", "BUY", False)
        quote = leg._book.quote_of(PutSeries(D(42000), EXPIRIES[1] / 1000))  # noqa: SLF001 - the quote it saw
        assert quote is not None and D(order["price"]) == quote.ask <= quote.mark * D("1.05")
        paid = D(order["avgPrice"]) * 2 + D(order["fee"])
        assert D(rig.desk.state.wallet["USDT"]) == D(10000) - paid  # paid from the options wallet
        status = leg.status.to_json()
        assert status["state"] == "active" and D(status["premium_paid"]) == paid and D(status["delta"]) < 0
        assert status["expiry"].startswith("2026-") and D(status["mark_value"]) > 0
        await leg.tick()
        assert len(rig.order_posts()) == 1, "a second tick buys nothing more"


async def test_the_live_leg_rolls_before_expiry_buying_the_new_put_before_selling_the_old() -> None:
    async with options_rig() as rig:
        leg = rig.leg()
        await leg.tick()
        old = symbol(EXPIRIES[1], 42000)
        rig.clock.advance(8.5 * DAY)  # 1.5 days before the held put's expiry: inside roll_before
        # The price fell and the market got nervous: the old put is worth selling (a bid within 5 % of its mark).
        rig.emulator.set_mark("BTCUSDT", D(45000))
        rig.desk.volatility = 0.9
        await leg.tick()
        new = symbol(EXPIRIES[2], 38000)  # 0.85 x 45,000 = 38,250
        assert rig.desk.held() == {new: D(2)}
        sequence = [(o["symbol"], o["side"]) for o in rig.desk.state.orders.values()]
        assert sequence == [(old, "BUY"), (new, "BUY"), (old, "SELL")]
        sale = list(rig.desk.state.orders.values())[-1]
        assert sale["reduceOnly"] is True and sale["timeInForce"] == "IOC"
        assert [i.kind for i in rig.journal.intents()] == [BUY, BUY, SELL]
        assert all(i.status is IntentStatus.DONE for i in rig.journal.intents())


async def test_a_chain_with_no_sensible_quote_makes_the_live_leg_wait_and_alert_and_pay_no_price() -> None:
    async with options_rig() as rig:
        leg = rig.leg()
        rig.desk.no_asks = True
        await leg.tick()
        await leg.tick()
        rig.desk.no_asks = False
        rig.desk.ask_over_mark = D("0.20")  # an ask 20 % over the mark is no market either
        await leg.tick()
        assert rig.order_posts() == [] and rig.desk.held() == {}
        waits = rig.kinds("put_leg_waiting")
        assert [w.detail["reason"] for w in waits] == ["no sensible quote"], "said once, not every tick"
        assert "above the mark" in leg.status.to_json()["waiting"] or leg.status.state == "waiting"
        rig.desk.ask_over_mark = None
        await leg.tick()
        assert rig.desk.held() == {symbol(EXPIRIES[1], 42000): D(2)}


async def test_the_options_desk_refuses_what_binance_refuses() -> None:
    async with options_rig(premium_wallet="100") as rig:
        book = rig.book()
        await book.refresh()
        series = PutSeries(D(42000), EXPIRIES[1] / 1000)
        quote = book.quote_of(series)
        assert quote is not None
        with pytest.raises(InvalidOrder, match="-4014"):
            await book.place_limit("tick", series, "buy", D("0.1"), quote.ask + D(1))  # off the 5 USDT tick
        with pytest.raises(InvalidOrder, match="-4004"):
            await book.place_limit("small", series, "buy", D("0.001"), quote.ask)
        with pytest.raises(InvalidOrder, match="-4023"):
            await book.place_limit("step", series, "buy", D("0.015"), quote.ask)
        with pytest.raises(InsufficientFunds, match="-2018"):
            await book.place_limit("poor", series, "buy", D(2), quote.ask)  # 100 USDT in the options wallet
        with pytest.raises(InvalidOrder, match="-2022"):
            await book.place_limit("write", series, "sell", D("0.1"), quote.bid)  # a reduce-only sale of puts not held
        rig.desk.state.enabled = False
        with pytest.raises(AuthenticationFailed, match="options"):
            await book.place_limit("closed", series, "buy", D("0.01"), quote.ask)
        assert rig.desk.executions == [] and rig.desk.held() == {}


async def test_a_purchase_the_options_wallet_cannot_pay_is_refused_and_alerted_and_nothing_is_held() -> None:
    async with options_rig(premium_wallet="50") as rig:
        leg = rig.leg()
        await leg.tick()
        assert rig.desk.held() == {}
        [refused] = rig.kinds("put_order_rejected")
        assert "options wallet cannot pay" in refused.detail["error"]
        assert [i.status for i in rig.journal.intents()] == [IntentStatus.REJECTED]


async def test_an_option_order_whose_answer_was_lost_is_looked_up_by_client_id_and_never_sent_twice() -> None:
    async with options_rig() as rig:
        leg = rig.leg()
        # Executed, then the answer lost: the client gives up after 1 s.
        rig.emulator.inject(Fault("timeout_after", path="/eapi/v1/order", method="POST", delay=2.5))
        with pytest.raises(ExchangeError):
            await leg.tick()
        assert [i.status for i in rig.journal.intents()] == [IntentStatus.UNKNOWN]
        assert len(rig.desk.executions) == 1
        # Binance's lookups may lag: the order is not visible for 20 s, and a miss proves nothing before the settle delay.
        rig.desk._visible_at = {cid: rig.clock.now() + 20 for cid in rig.desk.state.orders}  # noqa: SLF001
        await leg.tick()
        assert len(rig.order_posts()) == 1, "no order goes out while one is of unknown outcome"
        assert leg.status.waiting == "an order of unknown outcome is being looked up by its client id"
        rig.clock.advance(25)
        await leg.tick()
        [intent] = rig.journal.intents()
        assert intent.status is IntentStatus.DONE and rig.kinds("put_bought")[-1].detail["recovered"] is True
        await leg.tick()
        assert len(rig.order_posts()) == 1 and rig.desk.held() == {symbol(EXPIRIES[1], 42000): D(2)}


async def test_an_option_order_that_never_reached_the_book_is_proven_absent_by_the_history_then_sent_anew() -> None:
    async with options_rig() as rig:
        leg = rig.leg()
        rig.emulator.inject(Fault("drop_before", path="/eapi/v1/order", method="POST"))  # the connection dies unanswered
        with pytest.raises(ExchangeError):
            await leg.tick()
        await leg.tick()  # within the settle delay a miss proves nothing: the leg waits, sends nothing
        assert len(rig.order_posts()) == 1 and rig.desk.executions == []
        rig.clock.advance(BinanceOptionsBook.settle_seconds + 1)
        await leg.tick()  # neither found nor in historyOrders since it was sent: absent, and bought now
        statuses = [i.status for i in rig.journal.intents()]
        assert statuses == [IntentStatus.ABSENT, IntentStatus.DONE] and len(rig.desk.executions) == 1
        assert rig.desk.held() == {symbol(EXPIRIES[1], 42000): D(2)}


_CHILD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from hedgebot.clock import SimClock
from hedgebot.engine.put_leg import PutLeg
from hedgebot.exchange.binance_options_book import BinanceOptionsBook
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from tests.emulator_rig import KEY, SECRET
from tests.engine.test_put_leg_live_emulator import hedge

async def main():
    clock = SimClock(start={now!r})
    journal = Journal({journal!r}, clock)
    venue = CcxtVenue.connect(BinanceUsdm(), clock, api_key=KEY, secret=SECRET, api_base_url={url!r}, timeout_ms=20000,
                              rate_limit=False)  # a loaded machine must not turn a slow answer into a failure
    book = BinanceOptionsBook.connect("BTC", clock, api_key=KEY, secret=SECRET, api_base_url={url!r}, timeout_ms=20000,
                                      rate_limit=False)
    leg = PutLeg("live", hedge(), venue, book, clock, journal, EventLog(journal, NullLogger()))
    try:
        await leg.settle_open_intents()  # what a daemon does first after a restart
        await leg.tick()
    finally:
        await book.close()
        await venue.close()
        journal.close()

asyncio.run(main())
"""


async def _run_child(rig: OptionsRig, journal: str, crashpoint: str | None = None) -> int:
    import asyncio
    import os
    import signal
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root}
    env.pop("HEDGEBOT_CRASHPOINT", None)
    if crashpoint is not None:
        env["HEDGEBOT_CRASHPOINT"] = crashpoint
    script = _CHILD.format(root=root, now=rig.clock.now(), journal=journal, url=rig.url)
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", script, env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(child.communicate(), timeout=120)
    assert child.returncode is not None
    expected = 0 if crashpoint is None else -signal.SIGKILL
    assert child.returncode == expected, err.decode()[-3000:]
    return child.returncode


async def test_a_process_killed_between_the_rolls_purchase_and_its_sale_resumes_the_roll_without_buying_twice(tmp_path) -> None:
    import signal

    journal = str(tmp_path / "journal.sqlite")
    async with options_rig() as rig:
        await _run_child(rig, journal)  # a process buys the put
        old = symbol(EXPIRIES[1], 42000)
        assert rig.desk.held() == {old: D(2)}
        rig.clock.advance(8.5 * DAY)
        rig.emulator.set_mark("BTCUSDT", D(45000))
        rig.desk.volatility = 0.9
        # The roll's purchase reaches the book, then the process is SIGKILLed before it journals the outcome.
        assert await _run_child(rig, journal, "action_sent:1") == -signal.SIGKILL
        new = symbol(EXPIRIES[2], 38000)
        assert rig.desk.held() == {old: D(2), new: D(2)}, "killed between the roll's purchase and its sale"
        rig.clock.advance(60)
        await _run_child(rig, journal)  # the restarted process finds the purchase by its client id, then sells the old
        assert rig.desk.held() == {new: D(2)}
        orders = list(rig.desk.state.orders.values())
        assert [(o["symbol"], o["side"]) for o in orders] == [(old, "BUY"), (new, "BUY"), (old, "SELL")]
        assert len(rig.desk.executions) == len(set(rig.desk.executions)) == 3
    check = Journal(journal, rig.clock)
    try:
        intents = {i.client_id: i for i in check.intents()}
        assert not check.open_intents()
        assert sorted(intents) == sorted(o["clientOrderId"] for o in orders), "every order is one journaled intent"
        assert all(i.status is IntentStatus.DONE for i in intents.values())
        [recovered] = [e for e in check.events("live", "btc-put", "put_bought") if e.detail["recovered"]]
        assert recovered.detail["client_id"] == orders[1]["clientOrderId"]
    finally:
        check.close()


# Each crash point of the roll's two orders (counted within the killed process, which only rolls), and what the
# exchange holds right after the kill: (crash point, new put held, old put still held).
ROLL_CRASHES = [
    ("intent_journaled:1", False, True),  # the purchase journaled, never sent
    ("outcome_journaled:1", True, True),  # the purchase done and journaled, the sale not begun
    ("intent_journaled:2", True, True),  # the sale journaled, never sent
    ("action_sent:2", True, False),  # the sale executed, its outcome not journaled
]


@pytest.mark.parametrize(("crashpoint", "new_held", "old_held"), ROLL_CRASHES, ids=[c[0] for c in ROLL_CRASHES])
async def test_a_process_killed_at_any_step_of_the_roll_resumes_it_with_each_order_once(
    tmp_path, crashpoint: str, new_held: bool, old_held: bool,
) -> None:
    journal_path = str(tmp_path / "journal.sqlite")
    async with options_rig() as rig:
        journal = Journal(journal_path, rig.clock)
        first = PutLeg("live", hedge(), rig.venue, rig.book(), rig.clock, journal, EventLog(journal, NullLogger()))
        await first.tick()  # the first purchase, in this process
        journal.close()
        old, new = symbol(EXPIRIES[1], 42000), symbol(EXPIRIES[2], 38000)
        rig.clock.advance(8.5 * DAY)
        rig.emulator.set_mark("BTCUSDT", D(45000))
        rig.desk.volatility = 0.9
        await _run_child(rig, journal_path, crashpoint)  # SIGKILLed at the crash point
        after_kill = {s for s in (old if old_held else None, new if new_held else None) if s}
        assert set(rig.desk.held()) == after_kill, rig.desk.held()
        rig.clock.advance(BinanceOptionsBook.settle_seconds + 30)  # past the settle delay: a miss can be proven
        await _run_child(rig, journal_path)
        assert rig.desk.held() == {new: D(2)}
        orders = list(rig.desk.state.orders.values())
        assert [(o["symbol"], o["side"]) for o in orders] == [(old, "BUY"), (new, "BUY"), (old, "SELL")]
        assert len(rig.desk.executions) == len(set(rig.desk.executions)) == 3, "no order executed twice"
    check = Journal(journal_path, rig.clock)
    try:
        assert not check.open_intents()
        done = {i.client_id for i in check.intents() if i.status is IntentStatus.DONE}
        assert done == {o["clientOrderId"] for o in orders}, "every order is one intent, done"
        others = [i for i in check.intents() if i.status is not IntentStatus.DONE]
        assert all(i.status is IntentStatus.ABSENT for i in others), "only orders never sent are anything else"
    finally:
        check.close()


async def test_a_put_binance_exercised_while_the_daemon_was_stopped_is_reported_settled_with_its_payoff() -> None:
    async with options_rig() as rig:
        first = rig.leg()
        await first.prepare()
        await first.tick()
        bought = PutSeries(D(42000), EXPIRIES[1] / 1000)
        assert rig.desk.held() == {symbol(EXPIRIES[1], 42000): D(2)}
        # Stopped; meanwhile the price falls below the strike and the put expires: Binance exercises it at its index.
        rig.emulator.set_mark("BTCUSDT", D(40000))
        rig.clock.advance(EXPIRIES[1] / 1000 - rig.clock.now() + 60)
        rig.desk.exercise_due()
        assert rig.desk.held() == {}
        again = rig.leg()  # the restarted daemon: a new book, the same journal
        await again.prepare()
        await again.tick()
        [settled] = rig.kinds("put_settled")
        assert D(settled.detail["strike"]) == bought.strike and D(settled.detail["payoff"]) == D(2) * (42000 - 40000)
        assert D(again.status.to_json()["put_payoff"]) >= D(4000)
        await again.tick()
        assert len(rig.kinds("put_settled")) == 1, "reported once"
        third = rig.leg()
        await third.prepare()
        await third.tick()
        assert len(rig.kinds("put_settled")) == 1, "not again after another restart"


async def test_an_order_answer_that_cannot_be_read_is_an_unknown_outcome_looked_up_not_a_refusal_bought_again() -> None:
    from hedgebot.exchange.binance_options_book import OptionsDataError

    async with options_rig() as rig:
        book = rig.book()
        leg = rig.leg(book=book)
        read = book._fill  # noqa: SLF001
        garbled = {"once": True}

        def unreadable(order: dict[str, Any], series: PutSeries) -> Any:
            if garbled.pop("once", False):
                raise OptionsDataError(f"binance options order: field 'executedQty' is {'?'!r}, not a number")
            return read(order, series)

        book._fill = unreadable  # type: ignore[method-assign]  # noqa: SLF001
        with pytest.raises(ExchangeError):
            await leg.tick()
        assert [i.status for i in rig.journal.intents()] == [IntentStatus.UNKNOWN]
        await leg.tick()
        await leg.tick()
        assert [i.status for i in rig.journal.intents()] == [IntentStatus.DONE]
        assert len(rig.order_posts()) == 1 and rig.desk.held() == {symbol(EXPIRIES[1], 42000): D(2)}


async def test_live_purchases_keep_within_the_premium_per_order_and_per_month() -> None:
    async with options_rig() as rig:
        leg = rig.leg(hedge(max_premium_per_order=D(100), max_premium_per_month=D(150)))  # 2 puts ask about 150 + fees
        await leg.tick()
        def cost(order: dict[str, Any]) -> Decimal:
            return D(order["avgPrice"]) * D(order["executedQty"]) + D(order["fee"])

        orders = list(rig.desk.state.orders.values())
        assert orders and all(cost(o) <= 100 for o in orders), "no order above max_premium_per_order"
        assert sum(D(o["executedQty"]) for o in orders) < 2, "the caps leave the target short"
        assert rig.kinds("put_premium_capped"), "a smaller purchase is said"
        for _ in range(4):
            rig.clock.advance(3600)
            await leg.tick()
        orders = list(rig.desk.state.orders.values())
        assert all(cost(o) <= 100 for o in orders) and sum(cost(o) for o in orders) <= 150, "within both caps"
        assert sum(D(o["executedQty"]) for o in orders) < 2
        assert leg.status.waiting is not None, "short of its target, the leg says why it waits"
