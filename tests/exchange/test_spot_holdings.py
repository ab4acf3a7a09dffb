"""A holdings account on an exchange hedgebot keeps no hedging venue for (Kraken): its spot read, and nothing else sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import AccountConfig
from hedgebot.exchange.factory import account_problems, build_holdings
from hedgebot.exchange.port import AuthenticationFailed
from hedgebot.exchange.spot_holdings import SpotHoldings
from tests.exchange.ccxt_recorder import RecordingSession, Reply
from tests.exchange.holdings_books import kraken_routes
from tests.helpers import hedge_config

KEYS = {"apiKey": "read-only-key", "secret": "c2VjcmV0LWJ5dGVz"}
# Kraken's endpoints that trade, move or withdraw funds (https://docs.kraken.com/api-reference/): never sent.
KRAKEN_WRITES = ("AddOrder", "AddOrderBatch", "EditOrder", "AmendOrder", "CancelOrder", "CancelAll", "Withdraw",
                 "WalletTransfer", "DepositAddresses", "Stake", "Unstake")


async def test_reading_a_kraken_holdings_account_sends_only_its_market_lists_and_the_balance_read() -> None:
    session = RecordingSession(kraken_routes())
    reader = SpotHoldings.connect("kraken", SimClock(1_700_000_000.0), credentials=KEYS, account="cold", session=session)
    try:
        balances = await reader.fetch_spot_balances()
    finally:
        await reader.close()
    assert balances == {"BTC": Decimal("3.25"), "USD": Decimal("1200.00")}  # total held, including what orders hold
    sent = [(r.method, r.path) for r in session.requests]
    assert sent == [("GET", "/0/public/Assets"), ("GET", "/0/public/AssetPairs"), ("POST", "/0/private/BalanceEx")]
    assert not any(path.rsplit("/", 1)[-1] in KRAKEN_WRITES for _, path in sent)
    signed = session.last("POST", "/0/private/BalanceEx")
    assert signed.headers.get("API-Key") == "read-only-key" and "nonce" in signed.params


async def test_the_price_a_kraken_holding_is_valued_at_is_its_spot_pairs_last_trade_read_publicly() -> None:
    session = RecordingSession(kraken_routes())
    reader = SpotHoldings.connect("kraken", SimClock(1_700_000_000.0), credentials=KEYS, account="cold", session=session)
    try:
        quote = await reader.fetch_mark_price("BTC/USDT:USDT")  # the pair in the hedge's quote: XBT/USDT
    finally:
        await reader.close()
    assert quote.price == Decimal("30303.2")
    ticker = session.last("GET", "/0/public/Ticker")
    assert ticker.params.get("pair") == "XBTUSDT"
    assert not any(r.path.startswith("/0/private/") for r in session.requests)  # a price needs no key


async def test_a_refused_kraken_key_is_named_and_never_taken_for_zero_coins() -> None:
    routes = kraken_routes()
    routes[("POST", "/0/private/BalanceEx")] = Reply({"error": ["EAPI:Invalid key"]})
    session = RecordingSession(routes)
    reader = SpotHoldings.connect("kraken", SimClock(1_700_000_000.0), credentials=KEYS, session=session)
    try:
        with pytest.raises(AuthenticationFailed, match="kraken: the key was refused"):
            await reader.fetch_spot_balances()
    finally:
        await reader.close()


def test_any_exchange_ccxt_knows_may_hold_coins_but_only_those_with_a_venue_may_hedge(monkeypatch) -> None:
    monkeypatch.setenv("HB_KRAKEN_KEY", "k")
    monkeypatch.setenv("HB_KRAKEN_SECRET", "c2VjcmV0")
    credentials = {"api_key": {"env": "HB_KRAKEN_KEY"}, "secret": {"env": "HB_KRAKEN_SECRET"}}
    holdings = AccountConfig(name="cold", exchange="kraken", mode="live", credentials=credentials)
    assert account_problems(holdings) == []
    setup = build_holdings(holdings, SimClock(1_700_000_000.0), None)
    assert isinstance(setup.venue, SpotHoldings)
    hedged = AccountConfig(name="main", exchange="kraken", mode="live", credentials=credentials, hedges=(hedge_config(),))
    assert any("'kraken' has no live venue yet" in p for p in account_problems(hedged))


async def test_an_exchange_that_cannot_be_reached_says_why_not_only_which_request_failed() -> None:
    from hedgebot.clock import RealClock
    from hedgebot.exchange.ccxt_venue import CcxtVenue
    from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
    from hedgebot.exchange.port import VenueUnavailable

    venue = CcxtVenue.connect(BinanceUsdm(), RealClock(), api_key="k", secret="s", api_base_url="http://127.0.0.1:9", timeout_ms=2000)
    try:
        with pytest.raises(VenueUnavailable, match="Cannot connect to host 127.0.0.1:9"):
            await venue.fetch_spot_balances()
    finally:
        await venue.close()
