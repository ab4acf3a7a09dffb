"""Withdrawals on Binance (the buffer's refill): the address book read, the apply and the history search, in Binance's shapes.

Shapes from https://developers.binance.com/docs/wallet/capital (withdraw, withdraw-history, and the
withdraw address list); the values are this project's own.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.clock import SimClock
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.withdrawals import WithdrawalRequest
from tests.exchange.ccxt_recorder import RecordingSession

ADDRESS = "0x94df8b352de7f46f64b01d3666bf6e936e44ce60"
ADDRESS_BOOK = [
    {"address": ADDRESS, "addressTag": "", "coin": "USDT", "name": "hedging account", "network": "ETH",
     "origin": "bla", "originType": "others", "whiteStatus": True},
    {"address": "0x1111111111111111111111111111111111111111", "addressTag": "", "coin": "USDT", "name": "not whitelisted",
     "network": "ETH", "origin": "bla", "originType": "others", "whiteStatus": False},
    {"address": "0x3333333333333333333333333333333333333333", "addressTag": "123456", "coin": "USDT", "name": "with a memo",
     "network": "ETH", "origin": "bla", "originType": "others", "whiteStatus": True},
]
HISTORY = [{
    "id": "b6ae22b3aa844210a7041aee7589627c", "amount": "25000.00", "transactionFee": "1", "coin": "USDT", "status": 4,
    "address": ADDRESS, "txId": "", "applyTime": "2023-11-14 22:13:20", "network": "ETH", "transferType": 0,
    "withdrawOrderId": "hbabc1", "info": "", "confirmNo": 0, "walletType": 0, "txKey": "", "completeTime": "",
}]


def routes() -> dict:
    return {
        ("GET", "/sapi/v1/capital/withdraw/address/list"): ADDRESS_BOOK,
        ("POST", "/sapi/v1/capital/withdraw/apply"): {"id": "7213fea8e94b4a5593d507237e5a555b"},
        ("GET", "/sapi/v1/capital/withdraw/history"): HISTORY,
        ("GET", "/sapi/v1/capital/deposit/address"): {"address": ADDRESS, "coin": "USDT", "tag": "", "url": ""},
        ("GET", "/api/v3/account"): {"balances": [{"asset": "USDT", "free": "30000.5", "locked": "1000"}],
                                      "accountType": "SPOT", "canTrade": True, "canWithdraw": True, "canDeposit": True},
    }


def venue(session: RecordingSession) -> CcxtVenue:
    return CcxtVenue.connect(BinanceUsdm(), SimClock(1_700_000_000.0), api_key="key", secret="secret", session=session)


async def test_a_binance_withdrawal_carries_the_journaled_client_id_as_withdraw_order_id_and_is_found_again_by_it() -> None:
    session = RecordingSession(routes())
    binance = venue(session)
    try:
        sent = await binance.withdraw(WithdrawalRequest("USDT", Decimal("25000.00"), ADDRESS, "ETH", "hbabc1"))
        found = await binance.find_withdrawal("hbabc1", 1_699_999_900.0)
    finally:
        await binance.close()
    applied = session.last("POST", "/sapi/v1/capital/withdraw/apply").params
    assert {k: str(applied[k]) for k in ("coin", "address", "amount", "network", "withdrawOrderId", "walletType")} == {
        "coin": "USDT", "address": ADDRESS, "amount": "25000.00", "network": "ETH", "withdrawOrderId": "hbabc1",
        "walletType": "0",  # from the spot wallet its free balance was read from
    }
    assert "signature" in applied or "signature" in session.last("POST", "/sapi/v1/capital/withdraw/apply").query
    assert sent.venue_id == "7213fea8e94b4a5593d507237e5a555b" and sent.client_id == "hbabc1"
    searched = session.last("GET", "/sapi/v1/capital/withdraw/history").params
    assert searched["withdrawOrderId"] == "hbabc1"
    assert int(searched["endTime"]) - int(searched["startTime"]) <= 7 * 86_400_000  # Binance's limit with an id
    assert found is not None and found.status == "processing" and found.amount == Decimal("25000.00")
    assert found.timestamp == 1_700_000_000.0


@pytest.mark.parametrize(("address", "network", "whitelisted"), [
    (ADDRESS, "ETH", True), (ADDRESS, None, True), (ADDRESS, "BSC", False),
    ("0x1111111111111111111111111111111111111111", "ETH", False),  # in the book, but not whitelisted
    ("0x2222222222222222222222222222222222222222", None, False),  # not in the book at all
    ("0x3333333333333333333333333333333333333333", "ETH", False),  # whitelisted with a memo hedgebot would not send
])
async def test_only_an_address_the_binance_address_book_whitelists_counts_as_whitelisted(
    address: str, network: str | None, whitelisted: bool,
) -> None:
    session = RecordingSession(routes())
    binance = venue(session)
    try:
        assert await binance.withdrawal_whitelisted("USDT", address, network) is whitelisted
    finally:
        await binance.close()
    assert [(r.method, r.path) for r in session.requests] == [("GET", "/sapi/v1/capital/withdraw/address/list")]


@pytest.mark.parametrize(("status", "seen"), [(0, "processing"), (2, "processing"), (6, "completed"), (1, "failed"), (3, "failed"), (5, "failed")])
async def test_binance_withdrawal_statuses_are_read_as_processing_completed_or_failed(status: int, seen: str) -> None:
    answer = routes()
    answer[("GET", "/sapi/v1/capital/withdraw/history")] = [{**HISTORY[0], "status": status}]
    session = RecordingSession(answer)
    binance = venue(session)
    try:
        found = await binance.find_withdrawal("hbabc1", 1_699_999_900.0)
    finally:
        await binance.close()
    assert found is not None and found.status == seen


async def test_the_refill_reads_the_spot_wallets_free_balance_and_the_hedging_accounts_own_deposit_address() -> None:
    session = RecordingSession(routes())
    binance = venue(session)
    try:
        free = await binance.free_spot_balance("USDT")
        own = await binance.fetch_deposit_address("USDT", "ETH")
    finally:
        await binance.close()
    assert free == Decimal("30000.5")  # not the 1,000 held by orders
    assert own == ADDRESS
    asked = session.last("GET", "/sapi/v1/capital/deposit/address").params
    assert asked["coin"] == "USDT" and asked["network"] == "ETH"
