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
