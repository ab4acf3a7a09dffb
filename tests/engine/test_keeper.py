"""The keeper on a paper venue in simulated time: hedging, the margin guard, alerts."""

from __future__ import annotations

import asyncio

from hedgebot.domain.margin import liquidation_price
from hedgebot.domain.model import Wallet
from hedgebot.exchange.funding import ConstantFunding
from tests.helpers import D, SYMBOL, btc_market, hedge_config, make_rig


async def test_hedge_is_established_from_zero() -> None:
    rig = await make_rig(spot={"BTC": "2.5"})
    await rig.keeper.tick()
    assert await rig.short() == D("2.5")
    assert rig.keeper.status.state == "hedged"
    assert rig.events.counts["hedge_opened"] == 1


async def test_spot_increase_grows_the_short() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.6"))
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert await rig.short() == D("1.6")


async def test_spot_decrease_shrinks_the_short_first() -> None:
    rig = await make_rig(spot={"BTC": "2"})
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("-1.2"))
    await rig.set_price("50000")
    before = len(rig.venue.orders)
    await rig.keeper.tick()
    first_new = list(rig.venue.orders.values())[before]
    assert (first_new.side.value, first_new.position_side.value) == ("buy", "short")
    assert await rig.short() == D("0.8")


async def test_drift_inside_the_band_trades_nothing() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(band=D("0.05")))
    await rig.keeper.tick()
    orders = len(rig.venue.orders)
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.08"))  # 4 % drift, band 5 %
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert len(rig.venue.orders) == orders and rig.keeper.status.state == "hedged"


async def test_out_of_band_drift_is_traded_back_to_the_target_not_the_band_edge() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(band=D("0.05"), max_order=D("0.1")))
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_ratio_half_keeps_half_hedged() -> None:
    rig = await make_rig(spot={"BTC": "3"}, hedge=hedge_config(ratio=D("0.5")))
    await rig.keeper.tick()
    assert await rig.short() == D("1.5")
    status = rig.keeper.status
    assert status.ratio == D("0.5") and status.target_ratio == D("0.5")


async def test_stale_price_trades_nothing() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(staleness_seconds=30))
    await rig.clock.advance(60)  # no price update for a minute
    await rig.keeper.tick()
    assert rig.venue.orders == {} and rig.keeper.status.state == "blocked"
    await rig.set_price("50000", advance=1)
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_a_price_jump_is_traded_only_once_a_second_reading_confirms_it() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "300000"}, hedge=hedge_config(leverage=1))
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("70000")  # +40 %: suspicious
    await rig.keeper.tick()
    assert await rig.short() == D("1")
    await rig.set_price("70100")  # confirmed
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_every_action_is_journaled_with_its_client_id_and_outcome() -> None:
    rig = await make_rig(spot={"BTC": "2.2"}, hedge=hedge_config(max_order=D("1")))
    await rig.keeper.tick()
    intents = rig.journal.intents()
    assert [i.status.value for i in intents] == ["done"] * 3
    assert {i.client_id for i in intents} == set(rig.venue.orders)
    assert sum(D(i.outcome["filled"]) for i in intents) == D("2.2")


# ---- the margin guard -------------------------------------------------------------


async def _rally(rig, prices: list[str]) -> None:
    for price in prices:
        await rig.set_price(price, high=price, advance=3600)
        await rig.keeper.tick()


RALLY = [str(p) for p in range(50_000, 100_001, 2_500)]


async def test_a_rally_with_the_guard_on_ends_with_no_liquidation_and_every_topup_logged() -> None:
    rig = await make_rig(spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    await _rally(rig, RALLY)
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []
    topups = [i for i in rig.journal.intents() if i.kind == "margin"]
    transfers = [i for i in rig.journal.intents() if i.kind == "transfer"]
    assert topups and all(i.status.value == "done" and i.detail["reason"] == "margin top-up" for i in topups)
    assert transfers and all(i.detail["from"] == "spot" for i in transfers)
    logged = rig.journal.events(kind="margin_adjusted")
    assert len(logged) == len(topups) and all(e.detail["source"].startswith("futures wallet") for e in logged)
    assert rig.keeper.status.distance >= D("0.20")
    assert await rig.short() == D("1")


async def test_a_rally_with_the_guard_off_liquidates_the_short_at_the_predicted_price() -> None:
    rig = await make_rig(
        spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "17000"},
        hedge=hedge_config(margin_guard={"enabled": False}), funding=ConstantFunding(D(0)),
    )
    await rig.keeper.tick()
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    predicted = liquidation_price("short", leg.size, leg.entry_price, leg.margin, btc_market().brackets)
    await _rally(rig, RALLY)
    liquidations = [e for e in rig.venue.events if e.kind == "liquidation"]
    assert liquidations and liquidations[0].price == predicted


async def test_with_no_funds_anywhere_a_critical_alert_is_raised_and_repeated_while_it_lasts_and_nothing_crashes() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    for price in ("55000", "58000", "60000", "61000", "62000"):
        await rig.set_price(price, advance=600)
        await rig.keeper.tick()
    alerts = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "margin_unfunded"]
    assert len(alerts) >= 2 and all(e.severity == "critical" for e in alerts)
    assert [e.detail["state"] for e in alerts] == ["raised"] + ["repeated"] * (len(alerts) - 1)
    assert rig.keeper.status.state == "alert"
    before = len(alerts)
    await rig.set_price("62000", advance=900)
    await rig.keeper.tick()
    assert len([e for e in rig.journal.events(kind="alert") if e.detail["code"] == "margin_unfunded"]) == before + 1


async def test_selling_spot_funds_margin_by_reducing_the_short_first_then_selling() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge)
    await rig.keeper.tick()
    await _rally(rig, ["55000", "60000", "64000"])
    kinds = [(i.kind, i.detail.get("symbol"), i.detail.get("side")) for i in rig.journal.intents()]
    sale = kinds.index(("order", "BTC/USDT", "sell"))
    assert kinds[sale - 1] == ("order", SYMBOL, "buy"), "the short is reduced before the spot is sold"
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []
    spot_btc = rig.venue.spot["BTC"]
    assert spot_btc < D("2") and abs(await rig.short() - spot_btc) <= D("0.001") + spot_btc * D("0.02")


async def test_spare_margin_is_released_back_to_spot_only_when_opted_in() -> None:
    rig = await make_rig(
        spot={"BTC": "1", "USDT": "0"}, futures={"USDT": "60000"},
        hedge=hedge_config(leverage=1, margin_guard={"release": D("0.8")}),
    )
    await rig.keeper.tick()
    await rig.keeper.tick()
    assert rig.venue.spot["USDT"] > 0
    assert D("0.35") <= rig.keeper.status.distance <= D("0.8")
    plain = await make_rig(spot={"BTC": "1", "USDT": "0"}, futures={"USDT": "60000"}, hedge=hedge_config(leverage=1))
    await plain.keeper.tick()
    assert plain.venue.spot["USDT"] == 0




async def test_under_cross_margin_a_topup_is_a_transfer_into_the_futures_wallet() -> None:
    rig = await make_rig(
        spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "20000"}, hedge=hedge_config(margin_mode="cross")
    )
    await rig.keeper.tick()
    await _rally(rig, RALLY)
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []
    kinds = {i.kind for i in rig.journal.intents()}
    assert "transfer" in kinds and "margin" not in kinds
    assert rig.keeper.status.distance >= D("0.20")


async def test_an_unexpected_error_raises_a_critical_event_and_the_keeper_keeps_watching() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    broken = True
    real_observe = rig.keeper.observe

    async def flaky_observe():
        if broken:
            raise ZeroDivisionError("a bug")
        return await real_observe()

    rig.keeper.observe = flaky_observe
    task = asyncio.create_task(rig.keeper.run())
    await rig.clock.advance(25)
    errors = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "keeper_error"]
    assert len(errors) == 1 and errors[0].severity == "critical" and not task.done()
    assert rig.keeper.status.state == "alert"
    broken = False
    await rig.clock.advance(10)
    assert [e.detail["code"] for e in rig.journal.events(kind="alert_resolved")] == ["keeper_error"]
    assert await rig.short() == D("1")
    rig.keeper.stop()
    await rig.clock.advance(10)
    assert task.done()


async def test_a_partly_filled_reduction_limits_the_spot_sale_so_the_account_is_never_net_short() -> None:
    from hedgebot.domain.model import RaiseFromSpot

    hedge = hedge_config(margin_guard={"sources": ["sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "40000"}, hedge=hedge)
    await rig.keeper.tick()
    rig.venue.fill_model = type(rig.venue.fill_model)(partial_probability=1.0, seed=5)  # every fill is partial now
    snapshot = await rig.keeper.observe()
    assert await rig.keeper._execute(RaiseFromSpot(D("0.5"), D("0.5"), "test"), snapshot)
    short, spot = await rig.short(), rig.venue.spot["BTC"]
    assert short < D("2") and short <= spot, (short, spot)
