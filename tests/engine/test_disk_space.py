"""Free space on the journal's filesystem: a warning when low; below the stop threshold only what lowers risk goes out."""

from __future__ import annotations

from hedgebot.domain.model import Wallet
from hedgebot.store.space import MB, DiskGuard
from tests.helpers import D, make_rig


class Disk:
    """A filesystem whose free space the test sets."""

    def __init__(self, free_mb: int) -> None:
        self.free = free_mb * MB

    def __call__(self, path: object) -> int:
        return self.free


def alerts(rig, code: str) -> list[tuple[str, str]]:
    return [(e.detail["state"], e.severity) for e in rig.journal.events(kind="alert") if e.detail["code"] == code]


async def test_free_space_below_the_warning_threshold_warns_and_the_hedge_still_trades() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    rig.keeper.disk = DiskGuard("/var/lib/hedgebot/journal.sqlite", 512 * MB, 64 * MB, reader=Disk(300))
    await rig.clock.run(rig.keeper.tick())
    assert await rig.short() == D("1")
    assert alerts(rig, "disk_space_low") == [("raised", "warning")]
    assert "300 MB free" in rig.keeper.alerts.active["disk_space_low"].message


async def test_free_space_below_the_stop_threshold_sends_only_reductions_alerts_critically_and_resumes_when_freed() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    disk = Disk(1000)
    rig.keeper.disk = DiskGuard("/var/lib/hedgebot/journal.sqlite", 512 * MB, 64 * MB, reader=disk)
    await rig.clock.run(rig.keeper.tick())
    assert await rig.short() == D("1")
    disk.free = 10 * MB
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
    await rig.set_price("50000")
    await rig.clock.run(rig.keeper.tick())
    assert await rig.short() == D("1"), "no order grows the short while the journal's disk is nearly full"
    assert alerts(rig, "disk_space_critical") == [("raised", "critical")]
    rig.venue.deposit(Wallet.SPOT, "BTC", D("-1"))  # now over-hedged: the reduction still goes out
    await rig.set_price("50000")
    await rig.clock.run(rig.keeper.tick())
    assert await rig.short() == D("0.5")
    disk.free = 2000 * MB
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("50000")
    await rig.clock.run(rig.keeper.tick())
    assert await rig.short() == D("1.5"), "trading resumes by itself once space is freed"
    assert alerts(rig, "disk_space_critical") == [("raised", "critical")]
    assert [e.detail["code"] for e in rig.journal.events(kind="alert_resolved")].count("disk_space_critical") == 1


async def test_below_the_stop_threshold_the_guard_still_sells_coins_for_margin_as_the_price_rallies() -> None:
    from tests.helpers import hedge_config

    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge)
    disk = Disk(2000)
    rig.keeper.disk = DiskGuard("/var/lib/hedgebot/journal.sqlite", 512 * MB, 64 * MB, reader=disk)
    await rig.keeper.tick()
    assert await rig.short() == 2
    disk.free = 10 * MB  # logs fill the disk: below the stop threshold
    for price in ("55000", "60000", "62000", "64000"):
        await rig.set_price(price, high=price, advance=60)
        await rig.keeper.tick()
    assert rig.venue.spot["BTC"] < 2, "coins were sold for margin: the only top-up the account had"
    plan = rig.keeper.last_plan
    assert plan is not None and plan.distance is not None and plan.distance >= hedge.margin_guard.trigger
    assert "disk_space_critical" in rig.keeper.alerts.active


class CountingDisk(Disk):
    """A filesystem whose free space the test sets, counting how often it is asked."""

    def __init__(self, free_mb: int) -> None:
        super().__init__(free_mb)
        self.asked = 0

    def __call__(self, path: object) -> int:
        self.asked += 1
        return self.free


class Monotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_guard_shared_by_many_hedges_asks_the_filesystem_once_per_max_age_and_sees_a_disk_filled_meanwhile() -> None:
    disk, clock = CountingDisk(1000), Monotonic()
    guard = DiskGuard("/var/lib/hedgebot/journal.sqlite", 512 * MB, 64 * MB, reader=disk, max_age=1.0, monotonic=clock)
    assert all(guard.read().level == "ok" for _ in range(1000))
    assert disk.asked == 1, "a thousand hedges ticking within a second ask the filesystem once"
    disk.free = 10 * MB
    clock.now += 1.0
    assert guard.read().level == "critical", "a disk filled since the last reading is seen once the reading is a second old"
    assert disk.asked == 2


def test_a_low_or_critical_reading_is_asked_again_at_every_read() -> None:
    disk, clock = CountingDisk(300), Monotonic()
    guard = DiskGuard("/var/lib/hedgebot/journal.sqlite", 512 * MB, 64 * MB, reader=disk, max_age=60.0, monotonic=clock)
    assert guard.read().level == "low"
    disk.free = 10 * MB
    assert guard.read().level == "critical", "near the thresholds every tick asks the filesystem"
    disk.free = 2000 * MB
    assert guard.read().level == "ok", "space freed is seen at once"
    assert disk.asked == 3


async def test_a_failed_journal_write_makes_the_next_tick_ask_the_filesystem_and_hold_back_orders_on_a_full_disk(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "journal.sqlite"
    rig = await make_rig(spot={"BTC": "1"}, journal_path=str(path))
    disk, clock = CountingDisk(1000), Monotonic()  # the monotonic clock never moves: only a failed write renews the reading
    rig.keeper.disk = DiskGuard(str(path), 512 * MB, 64 * MB, reader=disk, max_age=3600.0, monotonic=clock)
    await rig.keeper.tick()
    assert await rig.short() == D("1") and disk.asked == 1
    disk.free = 10 * MB
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the write fails, as on a disk that filled since the last reading
    await rig.set_price("50000", advance=10)
    assert await rig.keeper.tick() is None
    assert rig.keeper.status.state == "journal_unwritable"
    other.execute("ROLLBACK")
    other.close()
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert disk.asked == 2, "the failed write made the guard ask the filesystem again"
    assert await rig.short() == D("1"), "no order grows the short on the disk found full after the failed write"
    assert alerts(rig, "disk_space_critical") == [("raised", "critical")]
