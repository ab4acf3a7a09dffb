"""A paper account's file: only what changed is written, off the event loop, and nothing acknowledged is lost."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import hedgebot.exchange.paper as paper
import hedgebot.exchange.paper_store as paper_store
from hedgebot.clock import RealClock, SimClock
from hedgebot.domain.model import MarginMode, OrderSide, PositionSide, Wallet
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.paper_store import log_path
from hedgebot.exchange.port import OrderRequest
from tests.helpers import D, SYMBOL, btc_market

START = 1_600_000_000.0


def account(path: Path, clock: RealClock | SimClock | None = None) -> PaperVenue:
    v = PaperVenue(
        clock or SimClock(start=START), [PaperMarket(btc_market(), ConstantFunding(D("0.0001")), leverage=3, margin_mode=MarginMode.ISOLATED)],
        spot={"BTC": D("2"), "USDT": D("1000")}, futures={"USDT": D("100000")}, slippage=D("0"), state_path=path,
        history_kept=paper.HISTORY_KEPT,  # as the daemon's accounts (hedgebot.exchange.factory) keep it
    )
    if not v.load():
        v.update_price(SYMBOL, START, D("50000"))
    return v


def sell(cid: str, amount: str = "0.01") -> OrderRequest:
    return OrderRequest(cid, SYMBOL, OrderSide.SELL, D(amount), PositionSide.SHORT)


async def same_account(a: PaperVenue, b: PaperVenue) -> None:
    assert await a.fetch_legs(SYMBOL) == await b.fetch_legs(SYMBOL)
    assert a.spot == b.spot and a.cash == b.cash
    assert a.orders == b.orders and a.movements == b.movements


async def test_on_the_real_clock_the_account_is_written_on_a_worker_thread_not_the_event_loop(tmp_path, monkeypatch) -> None:
    writers: list[str] = []
    write = paper_store.PaperStore._write

    def spy(self, items):  # type: ignore[no-untyped-def]
        writers.append(threading.current_thread().name)
        write(self, items)

    monkeypatch.setattr(paper_store.PaperStore, "_write", spy)
    v = account(tmp_path / "paper.json", RealClock())
    await v.place_order(sell("a"))
    await v.transfer("USDT", D("10"), Wallet.FUTURES, Wallet.SPOT)
    assert writers and threading.current_thread().name not in writers
    assert all(name.startswith("paper-store") for name in writers)


async def test_each_order_appends_only_itself_to_the_log_not_every_order_since_start(tmp_path) -> None:
    path = tmp_path / "paper.json"
    v = account(path, RealClock())
    for i in range(30):
        await v.place_order(sell(f"o{i}"))
    lines = [json.loads(line) for line in log_path(path).read_text().splitlines()]
    assert [list(line["orders"]) for line in lines[-5:]] == [[f"o{i}"] for i in range(25, 30)]
    assert all(len(line["orders"]) <= 1 for line in lines)


async def test_a_crash_between_writes_loses_no_acknowledged_order_or_transfer(tmp_path) -> None:
    path = tmp_path / "paper.json"
    v = account(path, RealClock())
    for i in range(5):
        await v.place_order(sell(f"o{i}"))
    await v.transfer("USDT", D("250"), Wallet.FUTURES, Wallet.SPOT)
    await v.adjust_margin(SYMBOL, PositionSide.SHORT, D("20"))
    # The process dies while writing the next change: half a line reaches the disk, never acknowledged.
    with log_path(path).open("a") as handle:
        handle.write('{"position_mode": "hedge", "spot": {"BT')
    again = account(path)
    assert again.restored_from == path
    await same_account(again, v)
    assert sorted(again.orders) == [f"o{i}" for i in range(5)]
    assert [m.venue_id for m in again.movements] == ["paper-transfer-1", "paper-margin-2"]


async def test_a_crash_after_the_log_but_before_the_account_file_is_rewritten_loses_nothing(tmp_path, monkeypatch) -> None:
    path = tmp_path / "paper.json"
    v = account(path, RealClock())
    await v.place_order(sell("o0"))
    before = path.read_text()
    await v.place_order(sell("o1"))
    await v.transfer("USDT", D("5"), Wallet.FUTURES, Wallet.SPOT)
    path.write_text(before)  # as if the process died after the log's fsync, before the file's rename
    again = account(path)
    await same_account(again, v)


async def test_a_crash_while_the_log_is_restarted_from_its_base_replays_nothing_twice(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(paper_store, "COMPACT_EVERY", 3)
    path = tmp_path / "paper.json"
    v = account(path, RealClock())
    for i in range(4):  # a base, then three records
        await v.place_order(sell(f"o{i}"))
    assert log_path(path).read_text().count("\n") == 4
    await v.place_order(sell("o4"))  # a new base: the log restarts from it
    assert log_path(path).read_text().count("\n") == 1
    with log_path(path).open("a") as handle:  # and dies half-way through the next record
        handle.write('{"seq": 9, "state": {"spot"')
    again = account(path)
    await same_account(again, v)
    await again.place_order(sell("o5"))
    assert (await again.fetch_legs(SYMBOL)).short.size == D("0.06")
    assert list(account(path).orders) == [f"o{i}" for i in range(6)]


async def test_a_clean_stop_writes_the_whole_account_file_as_before(tmp_path) -> None:
    path = tmp_path / "paper.json"
    v = account(path, RealClock())
    await v.place_order(sell("a"))
    assert "orders" not in json.loads(path.read_text()), "while running, the file holds the state, the log the history"
    await v.close()
    whole = json.loads(path.read_text())
    assert list(whole["orders"]) == ["a"] and D(whole["legs"][f"{SYMBOL}|short"][0]) == D("0.01")
    assert log_path(path).read_text() == ""
    await same_account(account(path), v)


async def test_an_account_file_written_before_the_change_log_still_loads_and_keeps_counting(tmp_path) -> None:
    path = tmp_path / "paper.json"
    # Exactly as hedgebot wrote a paper account before: one whole file, no log, no snapshot id, no movement count.
    path.write_text(json.dumps({
        "position_mode": "hedge",
        "spot": {"BTC": "2", "USDT": "1100"},
        "cash": {"USDT": "83233.33"},
        "markets": {SYMBOL: {"leverage": 3, "margin_mode": "isolated"}},
        "legs": {f"{SYMBOL}|short": ["0.5", "50000", "8333.33"]},
        "marks": {SYMBOL: ["50000", START]},
        "funding_checked": {},
        "orders": {"old-1": {
            "client_id": "old-1", "order_id": "paper-1", "symbol": SYMBOL, "side": "sell", "position_side": "short",
            "amount": "0.5", "filled": "0.5", "price": "50000", "fee": "10", "status": "filled",
            "timestamp": START,
        }},
        "movements": [["paper-margin-1", "margin", "USDT", "8333.33", START], ["paper-transfer-2", "transfer", "USDT", "100", START]],
        "order_seq": 1,
        "created_with": {"spot": {"BTC": "2", "USDT": "1000"}, "futures": {"USDT": "100000"}},
        "script_positions": {},
        "delivered": [],
    }))
    v = account(path)
    assert v.restored_from == path
    assert (await v.fetch_legs(SYMBOL)).short.size == D("0.5") and v.cash == {"USDT": D("83233.33")}
    assert (await v.fetch_order(SYMBOL, "old-1")).filled == D("0.5")
    movement = await v.transfer("USDT", D("1"), Wallet.FUTURES, Wallet.SPOT)
    assert movement.venue_id == "paper-transfer-3", "movement ids go on from the old file's count"
    await v.place_order(sell("new-1"))
    again = account(path)
    await same_account(again, v)
    assert list(again.orders) == ["old-1", "new-1"]


async def test_the_order_history_kept_in_memory_and_on_disk_is_bounded(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(paper, "HISTORY_KEPT", 10)
    monkeypatch.setattr(paper_store, "COMPACT_EVERY", 7)
    path = tmp_path / "paper.json"
    v = account(path)
    for i in range(25):
        await v.place_order(sell(f"o{i}", "0.003"))
        await v.transfer("USDT", D("1"), Wallet.FUTURES, Wallet.SPOT)
    assert list(v.orders) == [f"o{i}" for i in range(15, 25)], "the oldest orders leave first"
    assert len(v.movements) <= 20
    assert (await v.fetch_legs(SYMBOL)).short.size == D("0.075"), "the balances count every order, kept or not"
    again = account(path)
    assert list(again.orders) == list(v.orders) and again.movements[-1] == v.movements[-1]
    assert len(again.movements) <= 10
    await same_account(again, again)
    assert again.spot == v.spot and again.cash == v.cash


async def test_a_deleted_account_file_starts_afresh_even_with_a_log_left_beside_it(tmp_path) -> None:
    path = tmp_path / "paper.json"
    v = account(path)
    await v.place_order(sell("a"))
    await v.close()
    await v.place_order(sell("b"))
    path.unlink()
    fresh = account(path)
    assert fresh.restored_from is None and not fresh.orders
    await fresh.place_order(sell("c"))
    again = account(path)
    assert list(again.orders) == ["c"]


async def test_a_failed_write_is_reported_and_the_next_save_writes_the_whole_account(tmp_path, monkeypatch) -> None:
    path = tmp_path / "paper.json"
    v = account(path, RealClock())
    await v.place_order(sell("a"))
    write = paper_store.PaperStore._write
    failures = [OSError(28, "No space left on device")]

    def full_disk(self, items):  # type: ignore[no-untyped-def]
        if failures:
            raise failures.pop()
        write(self, items)

    monkeypatch.setattr(paper_store.PaperStore, "_write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        await v.place_order(sell("b"))
    await v.place_order(sell("c"))
    again = account(path)
    assert list(again.orders) == ["a", "b", "c"], "the order whose write failed is in the next (whole) write"


async def test_an_account_file_whose_history_log_is_missing_is_refused_with_a_message_naming_it(tmp_path) -> None:
    path = tmp_path / "paper.json"
    v = account(path)
    await v.place_order(sell("a"))
    log_path(path).unlink()  # a backup of the file alone, taken while the daemon ran
    with pytest.raises(ValueError, match=r"paper\.log, which is missing"):
        account(path)


async def test_a_venue_without_a_history_bound_keeps_every_funding_payment_a_backtest_sums_at_its_end() -> None:
    # The backtest's summary sums the venue's funding events and reads its liquidations from them: a bounded
    # history dropped most of a two-year replay's funding (6,105.96 instead of 41,937.72).
    v = PaperVenue(
        SimClock(start=START), [PaperMarket(btc_market(), ConstantFunding(D("0.0001")), leverage=3, margin_mode=MarginMode.ISOLATED)],
        spot={"BTC": D("2")}, futures={"USDT": D("100000")}, slippage=D("0"),
    )
    v.update_price(SYMBOL, START, D("50000"))
    await v.place_order(sell("short", "0.5"))
    hours = 3 * paper.HISTORY_KEPT * 8
    for hour in range(1, hours + 1):
        v.update_price(SYMBOL, START + hour * 3600, D("50000"))
    funding = [e for e in v.events if e.kind == "funding"]
    assert len(funding) == hours // 8 > 2 * paper.HISTORY_KEPT
