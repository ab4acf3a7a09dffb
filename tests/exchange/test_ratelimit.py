"""The host gate: what waits for read weight and what never does, and how long an exchange's Retry-After is believed."""

from __future__ import annotations

import pytest

from hedgebot.clock import SimClock
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm, binance_weight
from hedgebot.exchange.port import IpBanned, RateLimited
from hedgebot.exchange.ratelimit import MAX_WAIT_SECONDS, HostGate

THREE_DAYS = 3 * 24 * 3600


def busy_gate(clock: SimClock, used: int = 2000) -> HostGate:
    """Return Binance's futures gate after an answer reporting `used` of the IP's 2,400 weight this minute."""
    gate = HostGate("https://fapi.binance.com", clock, BinanceUsdm.weight_families)
    gate.observe("/fapi/v3/positionRisk", 200, {"X-MBX-USED-WEIGHT-1M": str(used)})
    return gate


async def test_an_order_of_weight_zero_goes_at_once_when_reads_have_used_most_of_the_ip_weight() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = busy_gate(clock, used=2390)  # even above the daemon's 80 % share and nearly at Binance's 2,400
    weight = binance_weight("POST", "/fapi/v1/order", {"symbol": "BTCUSDT"})
    assert weight == 0  # Binance counts orders on the order-count limits, not on the IP's weight
    await gate.admit("/fapi/v1/order", weight, action=True)
    assert clock.now() == 1_700_000_000.0 and gate.waited_seconds == 0


async def test_a_margin_top_up_uses_the_headroom_reads_leave_and_goes_at_once() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = busy_gate(clock)  # 2,000 used: above the reads' 1,920 share, 400 still free at the exchange
    await gate.admit("/fapi/v1/positionMargin", binance_weight("POST", "/fapi/v1/positionMargin", {}), action=True)
    assert clock.now() == 1_700_000_000.0 and gate.waited_seconds == 0


async def test_a_read_still_waits_above_the_daemons_share_of_the_ip_weight() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = busy_gate(clock)
    await gate.admit("/fapi/v3/positionRisk", binance_weight("GET", "/fapi/v3/positionRisk", {}))
    assert clock.now() > 1_700_000_000.0, "a read above 80 % of the IP's weight went without waiting"


async def test_an_action_still_waits_when_it_would_pass_the_exchanges_whole_limit() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = busy_gate(clock, used=2400)
    await gate.admit("/fapi/v1/positionMargin", 1, action=True)
    assert clock.now() > 1_700_000_000.0, "an action past Binance's 2,400 went at once: the exchange answers 429"


async def test_a_418_with_an_absurd_retry_after_bans_the_host_for_at_most_binances_longest_ban() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = HostGate("https://fapi.binance.com", clock, BinanceUsdm.weight_families)
    gate.observe("/fapi/v3/positionRisk", 418, {"Retry-After": "1e300"})
    refusal = gate.refusal()
    assert isinstance(refusal, IpBanned)
    assert refusal.until <= clock.now() + THREE_DAYS
    await clock.advance(THREE_DAYS + 1)
    assert gate.refusal() is None, "the daemon never sends again after an absurd Retry-After"


@pytest.mark.parametrize("retry_after", ["1e300", "inf", "-5", "soon"])
async def test_a_429_whose_retry_after_is_absurd_or_unreadable_backs_off_for_a_bounded_time(retry_after: str) -> None:
    clock = SimClock(1_700_000_000.0)
    gate = HostGate("https://fapi.binance.com", clock, BinanceUsdm.weight_families)
    gate.observe("/fapi/v3/positionRisk", 429, {"Retry-After": retry_after})
    assert isinstance(gate.refusal(), RateLimited)
    await clock.advance(MAX_WAIT_SECONDS + 1)
    assert gate.refusal() is None


async def test_an_accounts_reads_wait_at_its_share_of_the_ip_weight_while_another_accounts_still_go() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = HostGate("https://fapi.binance.com", clock, BinanceUsdm.weight_families)
    gate.shares["busy"] = 0.25  # 25 % of the 1,920 the daemon keeps to: 480 a minute
    for _ in range(4):
        await gate.admit("/fapi/v3/positionRisk", 100, account="busy")
    assert clock.now() == 1_700_000_000.0 and gate.used_by("busy", "fapi") == 400
    await gate.admit("/fapi/v3/positionRisk", 100, account="quiet")  # another account on the IP is not held
    await gate.admit("/fapi/v1/positionMargin", 100, action=True, account="busy")  # a top-up never waits on a share
    assert clock.now() == 1_700_000_000.0
    await gate.admit("/fapi/v3/positionRisk", 100, account="busy")  # 600 > 480: waits for its oldest weight to age out
    assert clock.now() >= 1_700_000_000.0 + 60


async def test_the_weight_each_account_sent_and_the_hosts_use_are_in_the_metrics() -> None:
    from prometheus_client.core import Metric

    from hedgebot.exchange.ratelimit import RateGates

    clock = SimClock(1_700_000_000.0)
    gates = RateGates(clock)
    gate = gates.gate("https://fapi.binance.com", BinanceUsdm.weight_families)
    gate.shares["main"] = 0.5
    await gate.admit("/fapi/v3/positionRisk", 5, account="main")
    await gate.admit("/fapi/v2/balance", 5, account="main")
    await gate.admit("/fapi/v3/positionRisk", 5, account="other")
    gate.observe("/fapi/v3/positionRisk", 429, {"Retry-After": "1"})
    families: dict[str, Metric] = {m.name: m for m in gates.metrics()}
    samples = {(m, tuple(sorted(s.labels.items()))): s.value for m, f in families.items() for s in f.samples}
    host = ("host", "https://fapi.binance.com")
    assert samples[("hedgebot_request_weight", (("account", "main"), ("family", "fapi"), host))] == 10
    assert samples[("hedgebot_request_weight", (("account", "other"), ("family", "fapi"), host))] == 5
    assert samples[("hedgebot_request_weight_used", (("family", "fapi"), host))] == 15
    assert samples[("hedgebot_request_weight_limit", (("family", "fapi"), host))] == 2400
    assert samples[("hedgebot_request_weight_account_allowed", (("account", "main"), ("family", "fapi"), host))] == 2400 * 0.8 * 0.5
    assert samples[("hedgebot_rate_limit_answers", (("code", "429"), host))] == 1


async def test_a_fresh_venue_says_how_long_until_its_pacing_burst_is_regained_and_a_quiet_one_is_warm() -> None:
    from hedgebot.exchange.ccxt_venue import CcxtVenue

    clock = SimClock(1_700_000_000.0)
    venue = CcxtVenue.connect(BinanceUsdm(), clock, api_key="k", secret="s", api_base_url="http://127.0.0.1:9")
    try:
        assert venue.warm_in() == pytest.approx(4.5)  # 90 units at ccxt's 50 ms each: a fresh process has no burst
        await clock.advance(3.0)
        assert venue.warm_in() == pytest.approx(1.5)
        await clock.advance(2.0)
        assert venue.warm_in() == 0.0  # stood by quietly long enough: a takeover's requests go at once
        await venue.futures.throttle(30)  # one weight-30 read
        assert venue.warm_in() == pytest.approx(1.5)
    finally:
        await venue.close()


async def test_an_account_alone_on_the_host_is_not_held_by_its_share_and_the_default_share_holds_nothing() -> None:
    clock = SimClock(1_700_000_000.0)
    gate = HostGate("https://fapi.binance.com", clock, BinanceUsdm.weight_families)
    gate.shares["busy"] = 0.25
    for _ in range(8):  # 800 > its 480, but nobody else uses the host: nobody to starve
        await gate.admit("/fapi/v3/positionRisk", 100, account="busy")
    assert clock.now() == 1_700_000_000.0
    gate.observe("/fapi/v3/positionRisk", 200, {"X-MBX-USED-WEIGHT-1M": "0"})  # the exchange's minute rolled over
    for account in ("a", "b"):
        for _ in range(9):  # the default share: only the host's budget (as the exchange reports it) holds reads
            await gate.admit("/fapi/v3/positionRisk", 100, account=account)
    assert clock.now() == 1_700_000_000.0
