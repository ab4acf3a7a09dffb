"""A holding of ETH hedged on the BTC perpetual by its beta: the short is beta x the holding's value / BTC's price,
estimated from the candles the venue serves (backfilled at start-up), held through estimation noise, and a broken
correlation raises a critical correlation_broken alert, then does what the user chose."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import Severity
from hedgebot.domain.trading import TradingState
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.funding import NoFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, btc_market

ETH = "ETH/USDT:USDT"
START = 1_600_000_000.0 - 1_600_000_000.0 % 3600


def _hedge(**fields: Any) -> HedgeConfig:
    data: dict[str, Any] = {
        "name": "eth-by-btc", "asset": "ETH", "symbol": SYMBOL, "ratio": "beta", "beta_timeframe": "1m",
        "beta_half_life": 40, "beta_min_observations": 30, "correlation_window": 30, "correlation_min": "0.5",
        "band": "0.05", "max_order": "5", "leverage": 3, "tick_seconds": 60, "staleness_seconds": 120,
    }
    data.update(fields)
    return HedgeConfig.model_validate(data)


class Market:
    """Two prices moving together at a known beta, one candle a minute."""

    def __init__(self, venue: PaperVenue, clock: SimClock, seed: int) -> None:
        self.venue, self.clock, self.rng = venue, clock, random.Random(seed)
        self.eth, self.btc = 3000.0, 50_000.0

    async def minutes(self, count: int, beta: float, noise: float = 0.0005, keeper: Keeper | None = None) -> None:
        for _ in range(count):
            move = self.rng.gauss(0.0, 0.002)
            own = self.rng.gauss(0.0, noise)
            self.btc *= 1 + move
            self.eth *= 1 + beta * move + own
            await self.clock.advance(60)
            now = self.clock.now()
            self.venue.update_price(SYMBOL, now, D(f"{self.btc:.1f}"))
            self.venue.update_price(ETH, now, D(f"{self.eth:.2f}"))
            if keeper is not None:
                await keeper.tick()


async def _rig(hedge: HedgeConfig, history_minutes: int, beta: float = 1.3, seed: int = 1) -> tuple[Keeper, PaperVenue, Market, EventLog]:
    clock = SimClock(start=START)
    venue = PaperVenue(
        clock, [PaperMarket(btc_market(), NoFunding()), PaperMarket(replace(btc_market(), symbol=ETH, base="ETH"), NoFunding())],
        spot={"ETH": D("100")}, futures={"USDT": D("1000000")}, slippage=D("0"),
    )
    market = Market(venue, clock, seed)
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    venue.update_price(ETH, clock.now(), D("3000"))
    await market.minutes(history_minutes, beta)
    journal = Journal(":memory:", clock)
    events = EventLog(journal, NullLogger())
    keeper = Keeper("acct", hedge, venue, clock, journal, events)
    await keeper.prepare()
    return keeper, venue, market, events


async def _short(venue: PaperVenue) -> Decimal:
    return (await venue.fetch_legs(SYMBOL)).short.size


async def test_the_short_is_beta_times_the_holdings_value_over_the_instruments_price_from_backfilled_candles() -> None:
    keeper, venue, market, _ = await _rig(_hedge(), history_minutes=200)
    await keeper.tick()
    status = keeper.status
    assert status.beta is not None and abs(status.beta - D("1.3")) <= D("0.05"), status
    expected = status.beta * 100 * D(f"{market.eth:.2f}") / D(f"{market.btc:.1f}")
    assert abs(await _short(venue) - expected) <= D("0.002")
    assert status.correlation is not None and status.correlation > D("0.9")
    assert status.hedge_effectiveness is not None and status.hedge_effectiveness > D("0.8")
    assert status.state == "hedged" and status.to_json()["beta"] == str(status.beta)


async def test_without_enough_history_nothing_is_traded_and_the_user_is_told_why() -> None:
    keeper, venue, _, _ = await _rig(_hedge(), history_minutes=10)
    await keeper.tick()
    assert await _short(venue) == 0
    assert keeper.status.state == "blocked" and "not estimated yet: 9 of 30 1m returns seen" in keeper.status.note


async def test_estimation_noise_inside_beta_band_does_not_trade() -> None:
    hedge = _hedge(band="0.5", beta_band="0.1")  # a wide position band: only a change of beta could trade
    keeper, venue, market, _ = await _rig(hedge, history_minutes=200)
    await keeper.tick()
    held, orders = keeper.status.beta, len(venue.orders)
    estimates = set()
    for _ in range(60):
        await market.minutes(1, 1.3, keeper=keeper)
        estimates.add(keeper.status.beta_estimate)
    assert len(estimates) > 10  # the estimate moved every candle...
    assert keeper.status.beta == held and len(venue.orders) == orders  # ...and nothing traded on it


async def test_a_beta_that_moves_beyond_its_band_re_hedges_to_the_new_beta() -> None:
    keeper, venue, market, _ = await _rig(_hedge(band="0.5", beta_band="0.1"), history_minutes=200)
    await keeper.tick()
    before = await _short(venue)
    await market.minutes(60, 0.6, keeper=keeper)
    assert keeper.status.beta is not None and keeper.status.beta < D("0.9")
    assert await _short(venue) < before * D("0.75")


async def test_a_beta_is_clamped_to_beta_max() -> None:
    keeper, venue, market, _ = await _rig(_hedge(beta_max="1.1"), history_minutes=200)
    await keeper.tick()
    assert keeper.status.beta == D("1.1") and keeper.status.beta_estimate is not None and keeper.status.beta_estimate > D("1.2")
    assert abs(await _short(venue) - D("1.1") * 100 * D(f"{market.eth:.2f}") / D(f"{market.btc:.1f}")) <= D("0.002")


async def _break(on_break: str, **fields: Any) -> tuple[Keeper, PaperVenue, Decimal, EventLog]:
    keeper, venue, market, events = await _rig(_hedge(on_correlation_break=on_break, **fields), history_minutes=200)
    await keeper.tick()
    before = await _short(venue)
    assert "correlation_broken" not in keeper.alerts.active
    await market.minutes(40, 0.0, noise=0.004, keeper=keeper)  # ETH now moves on its own
    return keeper, venue, before, events


async def test_a_collapsing_correlation_raises_a_critical_correlation_broken_alert_and_keeps_the_hedge_when_asked() -> None:
    keeper, venue, before, _ = await _break("keep", beta_band="1")  # a beta held through the break: only the alert
    alert = keeper.alerts.active.get("correlation_broken")
    assert alert is not None and alert.severity is Severity.CRITICAL
    assert "below correlation_min 0.5" in alert.message and 'on_correlation_break = "keep"' in alert.message
    assert keeper.status.correlation is not None and keeper.status.correlation < D("0.5")
    assert keeper.status.state == "alert"
    assert abs(await _short(venue) / before - 1) < D("0.5")  # still hedged (the prices moved, the beta did not)


async def test_a_broken_correlation_reduces_the_hedge_when_asked() -> None:
    keeper, venue, before, _ = await _break("reduce", beta_band="1", correlation_reduce_to="0.25")
    assert "correlation_broken" in keeper.alerts.active
    assert keeper.status.beta is not None and keeper.status.beta <= D("0.35")
    assert await _short(venue) < before * D("0.4")


async def test_a_broken_correlation_unwinds_the_hedge_when_asked() -> None:
    keeper, venue, _, _ = await _break("unwind")
    assert "correlation_broken" in keeper.alerts.active
    assert await _short(venue) == 0
    assert keeper.trading_state is TradingState.CLOSED


async def test_the_report_shows_the_beta_the_correlation_and_the_hedge_effectiveness_journaled() -> None:
    from hedgebot.ops.report import Period, build_reports, render_table

    keeper, _, market, _ = await _rig(_hedge(), history_minutes=200)
    await keeper.tick()
    await market.minutes(5, 1.3, keeper=keeper)
    [report] = build_reports(keeper.journal, [("acct", "eth-by-btc", SYMBOL)], Period(), keeper.clock.now())
    assert report.beta == keeper.status.beta and report.correlation == keeper.status.correlation
    assert report.hedge_effectiveness is not None and report.hedge_effectiveness > D("0.8")
    assert report.to_json()["beta"] == str(keeper.status.beta)
    assert "hedge effectiveness" in render_table([report], Period())


async def test_the_start_up_backfill_reads_the_history_page_by_page_back_four_half_lives() -> None:
    keeper, _, _, _ = await _rig(_hedge(beta_half_life=200), history_minutes=900)
    await keeper.tick()
    sizing = keeper.beta_sizing
    assert sizing is not None
    assert sizing.model.estimator.observations == 800  # 4 half-lives of 1m returns: more than one page of 200 candles
    assert sizing.model.last_period == keeper.clock.now() - keeper.clock.now() % 60 - 60  # the last closed minute


SOL = "SOL/USDT:USDT"


async def _basket_of_eth_and_sol_hedged_by_btc() -> tuple[Keeper, PaperVenue, tuple[float, float, float]]:
    """Return a keeper of 100 ETH and 1,000 SOL hedged by BTC after its first tick, its venue and the last prices."""
    clock = SimClock(start=START)
    venue = PaperVenue(
        clock, [PaperMarket(btc_market(), NoFunding()), PaperMarket(replace(btc_market(), symbol=ETH, base="ETH"), NoFunding()),
                PaperMarket(replace(btc_market(), symbol=SOL, base="SOL"), NoFunding())],
        spot={"ETH": D("100"), "SOL": D("1000")}, futures={"USDT": D("1000000")}, slippage=D("0"),
    )
    rng = random.Random(8)
    btc, eth, sol = 50_000.0, 3000.0, 150.0
    for _ in range(200):  # ETH moves at beta 1.3 to BTC, SOL at 0.6
        move = rng.gauss(0.0, 0.002)
        btc, eth, sol = btc * (1 + move), eth * (1 + 1.3 * move + rng.gauss(0, 0.0005)), sol * (1 + 0.6 * move + rng.gauss(0, 0.0005))
        await clock.advance(60)
        for symbol, price in ((SYMBOL, btc), (ETH, eth), (SOL, sol)):
            venue.update_price(symbol, clock.now(), D(f"{price:.2f}"))
    journal = Journal(":memory:", clock)
    keeper = Keeper("acct", _hedge(basket=[{"asset": "SOL"}], max_order="20"), venue, clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    return keeper, venue, (btc, eth, sol)


async def test_a_basket_of_eth_and_sol_hedged_by_btc_shorts_the_sum_of_each_holdings_beta_times_its_value() -> None:
    keeper, venue, (btc, eth, sol) = await _basket_of_eth_and_sol_hedged_by_btc()
    basket = {row["asset"]: row for row in keeper.status.to_json()["basket"]}
    assert set(basket) == {"ETH", "SOL"}
    assert abs(D(basket["ETH"]["beta"]) - D("1.3")) <= D("0.05") and abs(D(basket["SOL"]["beta"]) - D("0.6")) <= D("0.05")
    expected = (D(basket["ETH"]["beta"]) * 100 * D(f"{eth:.2f}") + D(basket["SOL"]["beta"]) * 1000 * D(f"{sol:.2f}")) / D(f"{btc:.2f}")
    assert abs(await _short(venue) - expected) <= D("0.002")
    assert keeper.status.state == "hedged"


async def test_the_start_up_leverage_check_sizes_a_beta_short_at_beta_max_times_the_holdings_worth_not_its_coin_count() -> None:
    from hedgebot.domain.model import Bracket
    from hedgebot.engine.keeper import StartupRefused

    brackets = (
        Bracket(D(0), D(600_000), D("0.004"), D(0), max_leverage=20),
        Bracket(D(600_000), D(10**9), D("0.01"), D(3_600), max_leverage=5),
    )

    async def start(beta_max: str) -> None:
        clock = SimClock(start=START)
        venue = PaperVenue(
            clock, [PaperMarket(btc_market(brackets=brackets), NoFunding()), PaperMarket(replace(btc_market(), symbol=ETH, base="ETH"), NoFunding())],
            spot={"ETH": D("100")}, futures={"USDT": D("1000000")},
        )
        venue.update_price(SYMBOL, clock.now(), D("50000"))
        venue.update_price(ETH, clock.now(), D("3000"))
        journal = Journal(":memory:", clock)
        keeper = Keeper("acct", _hedge(leverage=10, beta_max=beta_max), venue, clock, journal, EventLog(journal, NullLogger()))
        await keeper.prepare()

    await start("1.5")  # at most 1.5 x 100 ETH x 3,000 = 450,000 USDT of BTC: leverage 10 is allowed (100 BTC would not be)
    with pytest.raises(StartupRefused, match="leverage 10 is above 5"):
        await start("3")  # at most 900,000 USDT: beyond the 20x bracket


async def test_an_unwind_goes_on_while_the_holdings_price_is_stale_and_no_order_is_sized_on_it_otherwise() -> None:
    keeper, venue, market, _ = await _rig(_hedge(), history_minutes=200)
    await keeper.tick()
    assert await _short(venue) > 0
    for _ in range(5):  # BTC moves on, ETH's price is not updated: stale beyond staleness_seconds (120 s)
        await keeper.clock.advance(60)
        market.btc *= 1.004
        venue.update_price(SYMBOL, keeper.clock.now(), D(f"{market.btc:.1f}"))
    orders = len(venue.orders)
    await keeper.tick()
    assert keeper.status.state == "blocked" and "is 300s old" in keeper.status.note
    assert len(venue.orders) == orders  # nothing sized on a stale holding price
    keeper.control.submit("acct", "eth-by-btc", "unwind", "tester", "take it off")
    await keeper.tick()
    assert await _short(venue) == 0


async def test_a_restart_keeps_the_beta_held_so_a_restart_alone_trades_nothing() -> None:
    keeper, venue, market, events = await _rig(_hedge(band="0.5", beta_band="0.2"), history_minutes=200)
    await keeper.tick()
    held = keeper.status.beta
    await market.minutes(40, 1.45, keeper=keeper)  # the estimate drifts up, inside beta_band
    assert keeper.status.beta == held and keeper.status.beta_estimate is not None
    assert keeper.status.beta_estimate - held > D("0.03")
    orders = len(venue.orders)
    again = Keeper("acct", keeper.hedge, venue, keeper.clock, keeper.journal, events)  # the daemon restarted
    await again.prepare()
    await again.tick()
    assert again.status.beta == held  # judged from the beta held before, not the estimate now
    assert len(venue.orders) == orders


async def test_a_beta_held_before_a_restart_obeys_a_clamp_tightened_since_even_before_a_new_estimate() -> None:
    keeper, venue, market, events = await _rig(_hedge(), history_minutes=200)
    await keeper.tick()
    assert keeper.status.beta is not None and keeper.status.beta > D("1.2")
    # Restarted with beta_max lowered to 1 and an estimator that needs more history than the venue has served.
    tightened = _hedge(beta_max="1", beta_min_observations=500)
    again = Keeper("acct", tightened, venue, keeper.clock, keeper.journal, events)
    await again.prepare()
    await again.tick()
    assert again.status.beta_estimate is None
    assert again.status.beta is None or again.status.beta <= D("1")
    value = 100 * D(f"{market.eth:.2f}") / D(f"{market.btc:.1f}")
    assert await _short(venue) <= value * D("1.001")  # never above beta_max x the holding's worth


async def test_an_unwind_asked_with_sell_spot_on_a_beta_hedge_sells_none_of_the_instruments_coins() -> None:
    keeper, venue, _, _ = await _rig(_hedge(), history_minutes=200)
    await keeper.tick()
    assert await _short(venue) > 0
    venue.spot["BTC"] = D("5")  # the user also holds BTC on spot: it is not what the hedge hedges
    keeper.control.submit("acct", "eth-by-btc", "unwind", "tester", "take it off", sell_spot=True)
    for _ in range(5):
        await keeper.tick()
    balances = await venue.fetch_spot_balances()
    assert balances.get("BTC") == D("5") and balances.get("ETH") == D("100")
    assert all(o.symbol == SYMBOL for o in venue.orders.values())  # no spot order at all


def test_a_correlation_break_being_reduced_stays_reduced_across_a_restart_inside_the_rearm_margin() -> None:
    _reduced_inside_the_rearm_margin()


def _reduced_inside_the_rearm_margin() -> tuple[Any, list[tuple[float, Decimal, Decimal]]]:
    from hedgebot.engine.beta_sizing import BetaSizing

    hedge = _hedge(on_correlation_break="reduce", correlation_reduce_to="0.5", beta_band="1")
    rng = random.Random(7)
    closes: list[tuple[float, Decimal, Decimal]] = []
    eth, btc = 3000.0, 50_000.0

    def period(beta: float, noise: float) -> None:
        nonlocal eth, btc
        move = rng.gauss(0.0, 0.002)
        btc *= 1 + move
        eth *= 1 + beta * move + rng.gauss(0.0, noise)
        closes.append((START + 60 * len(closes), D(f"{eth:.2f}"), D(f"{btc:.1f}")))

    sizing = BetaSizing(hedge)
    holding = sizing.holdings[0]

    def feed() -> float | None:
        at, eth_close, btc_close = closes[-1]
        holding.model.observe(at, eth_close, btc_close)
        return holding.model.figures().correlation

    for _ in range(60):
        period(1.3, 0.0005)
        feed()
    while not sizing.broken():  # ETH moves on its own until the relation breaks
        period(0.0, 0.004)
        feed()
    reduced = sizing.beta_in_force()
    full = holding.held
    assert full is not None and reduced == (full * D("0.5")).quantize(D("0.0001"))
    for _ in range(200):  # the relation mends, to just above correlation_min: still broken (the re-arm margin)
        period(1.3, 0.0015)
        correlation = feed()
        if correlation is not None and 0.5 <= correlation < 0.58:
            break
    assert correlation is not None and 0.5 <= correlation < 0.58 and sizing.broken()
    remembered = sizing.remembered()

    again = BetaSizing(hedge)  # the daemon restarted: the same history is backfilled, the journaled record restored
    again.restore(remembered)
    for at, eth_close, btc_close in closes:
        again.holdings[0].model.observe(at, eth_close, btc_close)
    assert again.broken(), "a restart forgot the break: the hedge would grow back to its full beta"
    assert again.beta_in_force() == sizing.beta_in_force()
    return sizing, closes


def test_a_correlation_break_being_reduced_stays_reduced_across_a_reload_that_restarts_the_estimator() -> None:
    sizing, closes = _reduced_inside_the_rearm_margin()
    reduced = sizing.beta_in_force()
    sizing.reconfigure(_hedge(on_correlation_break="reduce", correlation_reduce_to="0.5", beta_band="1", beta_half_life=50))
    for at, eth_close, btc_close in closes:  # the new estimator is backfilled with the same history
        sizing.holdings[0].model.observe(at, eth_close, btc_close)
    assert sizing.broken(), "a reload forgot the break: the hedge would grow back to its full beta"
    assert sizing.beta_in_force() is not None and sizing.beta_in_force() <= reduced * D("1.2")


async def test_check_exchange_sizes_a_beta_hedges_short_on_the_holdings_worth_not_on_its_coin_count_as_the_instruments() -> None:
    from types import SimpleNamespace

    from hedgebot.live_check import LiveCheck, _check_hedge

    keeper, venue, market, _ = await _rig(_hedge(beta_max="2"), history_minutes=5)
    found = LiveCheck()
    account = SimpleNamespace(name="acct")
    await _check_hedge(account, keeper.hedge, venue, keeper.clock, Journal(":memory:", keeper.clock), found)  # type: ignore[arg-type]
    said = "\n".join(found.lines)
    # 100 ETH counted as 100 BTC would need millions of USDT of margin: the short is at most 2 x their worth in BTC.
    largest = 2 * 100 * D(f"{market.eth:.2f}") / D(f"{market.btc:.1f}")
    line = next((l for l in found.lines if "beta sizing" in l), "")
    assert f"at most {largest.quantize(D('0.001'), rounding='ROUND_CEILING')} BTC" in line, said
    assert "fundability: a short of" not in said and "runway: the margin sources" not in said, said
    assert not venue.orders


async def test_the_start_up_leverage_check_of_a_beta_hedge_whose_holding_price_cannot_be_read_says_it_was_skipped() -> None:
    from hedgebot.domain.model import Bracket

    brackets = (
        Bracket(D(0), D(600_000), D("0.004"), D(0), max_leverage=20),
        Bracket(D(600_000), D(10**9), D("0.01"), D(3_600), max_leverage=5),
    )
    clock = SimClock(start=START)
    venue = PaperVenue(
        clock, [PaperMarket(btc_market(brackets=brackets), NoFunding()), PaperMarket(replace(btc_market(), symbol=ETH, base="ETH"), NoFunding())],
        spot={"ETH": D("10")}, futures={"USDT": D("1000000")},
    )
    # The holding is priced far above the instrument (10 coins of 60,000 on a 2,000 instrument): at beta_max 1.5
    # the short is worth 900,000, past the 20x bracket. Its price cannot be read at start-up.
    venue.update_price(SYMBOL, clock.now(), D("2000"))
    journal = Journal(":memory:", clock)
    events = EventLog(journal, NullLogger())
    seen: list[Any] = []
    events.subscribe(seen.append)
    keeper = Keeper("acct", _hedge(leverage=10, beta_max="1.5"), venue, clock, journal, events)
    with pytest.raises(Exception):
        await venue.fetch_mark_price(ETH)
    await keeper.prepare()
    # Valuing the holding at the instrument's price (20,000 of it) would pass leverage 10 in silence.
    assert any(r.kind == "startup_check_skipped" and r.detail.get("check") == "leverage bracket" for r in seen), [r.kind for r in seen]


async def test_a_move_of_the_holdings_price_alone_wakes_the_keeper_once_it_takes_the_short_out_of_its_band() -> None:
    keeper, venue, market, _ = await _rig(_hedge(band="0.05"), history_minutes=200)
    await keeper.tick()
    assert await _short(venue) > 0 and keeper.last_plan is not None and keeper.last_plan.in_band
    keeper.wake.clear()
    eth = D(f"{market.eth:.2f}")
    keeper.notify_holding_price(ETH, eth * D("1.01"))  # the target moves 1 %: inside the 5 % band, nothing to do
    assert not keeper.wake.is_set()
    keeper.notify_holding_price(ETH, eth * D("1.08"))  # the holding alone rose 8 %: the short is 7 % under its target
    assert keeper.wake.is_set()
    before = await _short(venue)
    venue.update_price(ETH, venue.clock.now(), eth * D("1.08"))
    await keeper.tick()
    assert await _short(venue) > before * D("1.05")  # the woken keeper re-hedged the holding's new worth


async def test_a_move_of_the_instrument_that_changes_what_the_holding_is_worth_in_it_wakes_the_keeper() -> None:
    keeper, venue, market, _ = await _rig(_hedge(band="0.05"), history_minutes=200)
    await keeper.tick()
    keeper.wake.clear()
    btc = D(f"{market.btc:.1f}")
    keeper.notify_price(btc * D("0.99"))
    assert not keeper.wake.is_set()
    # BTC 8 % lower: the holding is worth 8.7 % more BTC, and the short is that much under its target.
    keeper.notify_price(btc * D("0.92"))
    assert keeper.wake.is_set()


async def test_a_basket_holdings_price_wakes_the_keeper_by_its_share_of_the_hedged_worth() -> None:
    keeper, venue, (btc, eth, sol) = await _basket_of_eth_and_sol_hedged_by_btc()
    assert keeper.last_plan is not None and keeper.last_plan.in_band
    keeper.wake.clear()
    # SOL is about a fifth of the beta-weighted worth (1000 x 150 x 0.6 beside 100 x 3000 x 1.3): a 20 % rise of SOL
    # moves the target about 4 %, inside the 5 % band; a 40 % rise moves it about 7.5 %.
    keeper.notify_holding_price(SOL, D(f"{sol:.2f}") * D("1.2"))
    assert not keeper.wake.is_set()
    keeper.notify_holding_price(SOL, D(f"{sol:.2f}") * D("1.4"))
    assert keeper.wake.is_set()
