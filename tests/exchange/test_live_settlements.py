"""Which live accounts can hold a hedge on which instrument: each exchange's dialect says, and the refusal says why not."""

from __future__ import annotations

import pytest

from hedgebot.config import AccountConfig
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.exchange.factory import TRADED, account_problems, coin_margined_exchanges, exchanges_for
from tests.helpers import hedge_config

CREDENTIALS = {"api_key": {"env": "HB_KEY"}, "secret": {"env": "HB_SECRET"}, "password": {"env": "HB_PASS"}}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HB_KEY", "HB_SECRET", "HB_PASS"):
        monkeypatch.setenv(name, "x")


def problems(exchange: str, symbol: str, instrument: str) -> list[str]:
    hedge = hedge_config(symbol=symbol, instrument=instrument)
    return account_problems(AccountConfig(name="main", exchange=exchange, mode="live", credentials=CREDENTIALS, hedges=(hedge,)))


def test_coin_margined_hedges_are_possible_on_binance_coin_m_and_on_okx_whose_account_holds_both_kinds() -> None:
    assert coin_margined_exchanges() == {"binancecoinm", "okx"}


def test_an_okx_account_may_hold_a_coin_margined_hedge_beside_a_usdt_one() -> None:
    for symbol, instrument in (("BTC/USD:BTC", "coinm-perp"), ("BTC/USDT:USDT", "usdm-perp")):
        # only the instrument's live rollout (TRADED) is left to refuse it, never the exchange
        assert [p for p in problems("okx", symbol, instrument) if "not supported yet on a live account" not in p] == []


def test_a_coin_margined_hedge_on_bybit_is_refused_because_its_inverse_contracts_have_no_hedge_mode() -> None:
    found = [p for p in problems("bybit", "BTC/USD:BTC", "coinm-perp") if "does not trade on" in p]
    assert len(found) == 1
    assert "keeps them in one-way mode only" in found[0] and "coin-margined contracts trade on binancecoinm, okx" in found[0]


def test_a_usdt_hedge_on_binance_coin_m_is_refused_and_names_the_coin_margined_instruments() -> None:
    found = [p for p in problems("binancecoinm", "BTC/USDT:USDT", "usdm-perp") if "does not trade on" in p]
    assert len(found) == 1 and "lists only coin-margined contracts" in found[0] and '"coinm-quarterly"' in found[0]


def test_live_rollout_is_what_the_emulator_proves_and_quarterlies_on_binance_only() -> None:
    # The USDⓈ-M long, the COIN-M short, both quarterly shorts (with their roll) and the choice by carry run on the
    # Binance emulator through the real venue (tests/engine/test_quarterly_live_emulator.py,
    # tests/engine/test_cheapest_live_emulator.py); OKX's USDT and coin-margined futures are rolled on a recorded
    # OKX account (tests/exchange/test_okx_quarterly_roll.py); Bybit's cannot hold the leg (one-way only).
    assert {(i.value, s.value) for i, s in TRADED["live"]} == {
        ("usdm-perp", "short"), ("usdm-perp", "long"), ("coinm-perp", "short"), ("usdm-quarterly", "short"),
        ("coinm-quarterly", "short"), ("cheapest", "short"),
    }
    assert [p for p in problems("binanceusdm", "BTC/USDT:USDT", "usdm-quarterly") if p] == []
    assert [p for p in problems("binancecoinm", "BTC/USD:BTC", "coinm-quarterly") if p] == []
    assert [p for p in problems("okx", "BTC/USDT:USDT", "usdm-quarterly") if p] == []
    assert [p for p in problems("okx", "BTC/USD:BTC", "coinm-quarterly") if p] == []
    found = [p for p in problems("aster", "BTC/USDT:USDT", "usdm-quarterly") if p]
    assert any("a live usdm-quarterly hedge runs on binanceusdm, okx" in p for p in found), found


def test_a_live_cheapest_hedge_runs_on_binance_and_okx_and_is_refused_where_it_is_not_proven() -> None:
    assert [p for p in problems("binanceusdm", "BTC/USDT:USDT", "cheapest") if p] == []
    assert [p for p in problems("binancecoinm", "BTC/USD:BTC", "cheapest") if p] == []
    assert [p for p in problems("okx", "BTC/USDT:USDT", "cheapest") if p] == []
    found = [p for p in problems("aster", "BTC/USDT:USDT", "cheapest") if "is not supported yet on 'aster'" in p]
    assert len(found) == 1 and "a live cheapest hedge runs on binancecoinm, binanceusdm, okx" in found[0], found


def test_quarterlies_can_be_held_on_binance_and_okx_but_not_on_bybit_whose_usdt_futures_are_one_way() -> None:
    assert exchanges_for(InstrumentKind.USDM_QUARTERLY) == ["binanceusdm", "okx"]
    assert exchanges_for(InstrumentKind.COINM_QUARTERLY) == ["binancecoinm", "okx"]
    found = [p for p in problems("bybit", "BTC/USDT:USDT", "usdm-quarterly") if "does not trade on" in p]
    assert len(found) == 1 and "USDT futures but keeps them in one-way mode only" in found[0]
    assert "usdm-quarterly trades on binanceusdm, okx" in found[0]
    assert [p for p in problems("aster", "BTC/USDT:USDT", "usdm-quarterly") if "lists no usdm-quarterly contracts" in p]
