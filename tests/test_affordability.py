"""`check`'s fundability lines: the figures a user acts on are rounded so that acting on them closes the gap."""

from __future__ import annotations

import re
from decimal import Decimal

from hedgebot.affordability import fundability_lines
from hedgebot.domain.fundability import fundability
from tests.helpers import D, btc_market, hedge_config


def _after(text: str, before: str) -> Decimal:
    found = re.search(re.escape(before) + r" ([0-9.,]+)", text)
    assert found, (before, text)
    return Decimal(found.group(1).replace(",", "").rstrip("."))


def test_depositing_the_amount_check_names_funds_the_target_and_the_held_figure_is_never_more_than_held() -> None:
    hedge = hedge_config(max_order=D("20"))
    for held in ("50000.015", "12345.675", "30000.125", "777.005"):
        for price in ("29000.1", "31111.7", "45000.3"):
            lines = fundability_lines(btc_market(), D(price), {"BTC": D(10)}, {"USDT": D(held)}, hedge, "test")
            text = "\n".join(lines)
            assert "UNDER-FUNDED" in text, text
            assert _after(text, "the sources hold") <= D(held), text
            deposit = _after(text, "deposit")
            after = fundability(btc_market(), D(price), {"BTC": D(10)}, {"USDT": D(held) + deposit}, hedge.policy(), hedge.leverage)
            assert after.funded, (held, price, text)
            lowered = hedge_config(max_order=D("20"), ratio=_after(text, "lower ratio to"))
            lower = fundability(btc_market(), D(price), {"BTC": D(10)}, {"USDT": D(held)}, lowered.policy(), hedge.leverage)
            assert lower.funded, (held, price, text)


def test_the_runway_check_prints_is_rounded_toward_the_price_never_promising_more_room() -> None:
    from hedgebot.affordability import opened, runway_line
    from hedgebot.domain.runway import runway_price

    hedge = hedge_config(max_order=D("20"))
    for price in ("29000.13", "31111.77", "45000.35"):
        snapshot = opened(btc_market(), D(price), {"BTC": D(1), "USDT": D("30000.015")}, {"USDT": D("7777.77")}, hedge)
        true = runway_price(snapshot, hedge.policy())
        assert true is not None and true.is_finite()
        assert _after(runway_line(snapshot, hedge, "test"), "up to") <= true


def test_the_carrying_cost_is_the_funding_a_year_on_the_notional_received_by_a_short_and_paid_by_a_long_in_the_margin_asset() -> None:
    from hedgebot.affordability import carry_line
    from hedgebot.exchange.binance_rules import default_market

    rates = [D("0.0001"), D("0.0003")]  # a mean of 0.02 % per 8 h: 21.9 % a year
    short = carry_line(btc_market(), D(30000), D(10), hedge_config(), rates, D(8), "test")
    assert "0.0200% per 8 h (21.90% a year, test)" in short and "receives about 65,700.00 USDT a year" in short, short
    long = carry_line(btc_market(), D(30000), D(10), hedge_config(side="long", amount="10"), rates, D(8), "test")
    assert "pays about 65,700.00 USDT a year" in long, long
    coinm = default_market("BTC/USD:BTC")
    assert coinm is not None
    inverse = carry_line(coinm, D(30000), D(10), hedge_config(symbol="BTC/USD:BTC", instrument="coinm-perp"), rates, D(8), "test")
    assert "receives about 2.19000000 BTC a year" in inverse, inverse  # on the coins, in the coin


def test_check_says_the_carrying_cost_from_a_replayed_funding_files_last_30_days(tmp_path, capsys) -> None:
    from hedgebot.commands.main import main
    from tests.helpers import paper_settings_dict, shared_file, write_toml

    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["markets"][0]["funding"] = {"file": str(shared_file("BTCUSDT-fundingRate-2020-2021.csv"))}
    assert main(["check", "--config", str(write_toml(tmp_path / "hedgebot.toml", data))]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "carrying cost" in line)
    assert "the funding file's last 30 days" in line and "a short of 2.000 BTC receives about" in line, line
