"""Request weight and back-off on the ccxt venue, against the emulator's per-IP limits, 429s and 418 bans."""

from __future__ import annotations

from decimal import Decimal

import aiohttp
import pytest

from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.port import ExchangeError, IpBanned, RateLimited
from hedgebot.exchange.ratelimit import PACER_BURST, WeightFamily
from tests.emulator_rig import BTC, emulator_rig
from tests.helpers import D, SYMBOL, hedge_config

pytestmark = pytest.mark.slow

OTHER_KEY, OTHER_SECRET = "other-account-key", "other-account-secret"


class SmallLimitBinance(BinanceUsdm):
    """Binance whose futures weight limit per IP is 50 a minute (as the emulator is set up below)."""

    weight_families = (WeightFamily("fapi", "/fapi/", 50, "X-MBX-USED-WEIGHT-1M"), *BinanceUsdm.weight_families[1:])


def other_account(url: str, clock: object, dialect: BinanceUsdm | None = None) -> CcxtVenue:
    return CcxtVenue.connect(
        dialect or BinanceUsdm(), clock, api_key=OTHER_KEY, secret=OTHER_SECRET, api_base_url=url, timeout_ms=1000,
        rate_limit=False,
    )


async def tick(keeper: Keeper) -> None:
    """Tick as the daemon's loop does: an exchange error ends the tick, not the keeper."""
    try:
        await keeper.tick()
    except ExchangeError:
        pass


async def test_a_429_storm_on_the_emulator_never_escalates_to_a_418() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        rig.emulator.add_key(OTHER_KEY, OTHER_SECRET)
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        await keeper.tick()
        # A tight limit, and the harshest ban rule: one request inside a Retry-After period bans the IP.
        rig.emulator.limiter.limits["/fapi/"] = 40
        rig.emulator.limiter.ban_after = 1
        other = other_account(rig.url, rig.clock)  # a second account of the daemon, on the same IP
        try:
            for step in range(60):
                if step % 10 == 0:
                    rig.emulator.deposit("spot", "BTC", D("0.1"))
                await tick(keeper)
                try:
                    await other.fetch_legs(SYMBOL)
                except RateLimited:
                    pass
                rig.clock.advance(5.0)
        finally:
            await other.close()
        assert rig.emulator.limiter.answers[429] > 0, "the storm happened"
        assert rig.emulator.limiter.answers[418] == 0 and rig.emulator.limiter.bans == [], "the IP was banned"
        assert keeper.trading_state.value == "active", keeper.trading.reason
        rig.emulator.limiter.enabled = False
        for _ in range(2):
            rig.clock.advance(60.0)
            await keeper.settle_open_intents()
            await keeper.tick()
        assert rig.short() == D("1.6"), "the hedge caught up once the storm was over"


async def test_two_accounts_on_one_ip_share_one_weight_budget_and_are_throttled_before_the_exchange_says_429() -> None:
    async with emulator_rig() as rig:
        rig.emulator.add_key(OTHER_KEY, OTHER_SECRET)
        rig.emulator.limiter.limits["/fapi/"] = 50
        rig.emulator.limiter.ban_after = 1
        first = CcxtVenue.connect(
            SmallLimitBinance(), rig.clock, api_key="test-key", secret="test-secret", api_base_url=rig.url,
            timeout_ms=1000, rate_limit=False,
        )
        second = other_account(rig.url, rig.clock, SmallLimitBinance())
        started = rig.clock.now()
        try:
            for _ in range(15):
                for venue in (first, second):
                    await venue.fetch_legs(SYMBOL)  # positionRisk: weight 5
        finally:
            await first.close()
            await second.close()
        assert rig.emulator.limiter.answers[429] == 0, "the exchange had to say 429"
        # 150 weight at 40 a minute (80 % of 50) takes the daemon past three minute boundaries.
        assert rig.clock.now() - started >= 120.0


async def test_a_418_ban_is_a_critical_alert_naming_its_end_and_nothing_is_sent_until_it_is_over() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        await keeper.tick()
        rig.emulator.limiter.limits["/fapi/"] = 1
        rig.emulator.limiter.ban_after = 1
        async with aiohttp.ClientSession() as other_program:  # something else on this IP that ignores the 429
            for _ in range(3):
                async with other_program.get(rig.url + "/fapi/v1/time") as answer:
                    await answer.read()
        assert len(rig.emulator.limiter.bans) == 1
        _, banned_at, seconds = rig.emulator.limiter.bans[0]
        rig.emulator.limiter.limits["/fapi/"] = 2400
        sent = len(rig.emulator.requests)
        for _ in range(5):
            await tick(keeper)
            rig.clock.advance(10.0)
        assert len(rig.emulator.requests) - sent == 1, "after the first 418 nothing more is sent during the ban"
        ban = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "exchange_ban"]
        assert ban and ban[0].severity == "critical"
        assert abs(ban[0].detail["until_epoch"] - (banned_at + seconds)) <= 1.0
        assert "banned this IP (HTTP 418) until" in ban[0].detail["message"]
        with pytest.raises(IpBanned):
            await rig.venue.fetch_legs(SYMBOL)
        rig.clock.advance(seconds)
        rig.emulator.deposit("spot", "BTC", D("0.5"))
        await keeper.tick()
        assert rig.short() == Decimal("1.5"), "trading resumes once the ban is over"
        assert "exchange_ban" not in keeper.alerts.active


async def test_ccxts_request_pacing_runs_on_the_injected_monotonic_clock_not_the_wall_clock() -> None:
    async with emulator_rig() as rig:
        venue = CcxtVenue.connect(BinanceUsdm(), rig.clock, api_base_url=rig.url, rate_limit=True)
        try:
            await rig.clock.sleep(PACER_BURST * 0.050)  # quiet for as long as ccxt's pacing takes to regain a burst
            started = rig.clock.now()
            await venue.futures.throttle(PACER_BURST)  # a quiet client's burst passes at once
            assert rig.clock.now() == started
            for _ in range(4):
                await venue.futures.throttle(2)  # ccxt asks before each request: cost 2 at rateLimit 50 ms
            assert rig.clock.now() - started == pytest.approx(4 * 2 * 0.050)
            await venue.fetch_mark_price(SYMBOL)  # and ccxt's own requests still go through it
        finally:
            await venue.close()


async def test_a_client_restarted_in_a_loop_gets_no_burst_to_add_up_across_restarts() -> None:
    async with emulator_rig() as rig:
        venue = CcxtVenue.connect(BinanceUsdm(), rig.clock, api_base_url=rig.url, rate_limit=True)
        try:
            started = rig.clock.now()
            await venue.futures.throttle(30)  # a weight-30 read right after start (a crash loop's restart)
            await venue.futures.throttle(1)
            assert rig.clock.now() - started == pytest.approx(31 * 0.050)  # paced as ccxt would: no burst yet
        finally:
            await venue.close()
