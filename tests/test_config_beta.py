"""ratio = "beta": a hedge may name another instrument than its asset, with its beta settings under the names users
rely on; anything its sizing cannot keep is refused with a message naming the field and value."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from hedgebot.config import ConfigError, HedgeConfig, load_config
from tests.helpers import paper_settings_dict, write_toml


def _hedge(**fields: object) -> HedgeConfig:
    data: dict[str, object] = {"name": "sol", "asset": "SOL", "symbol": "ETH/USDT:USDT", "ratio": "beta"}
    data.update(fields)
    return HedgeConfig.model_validate(data)


def test_a_sol_holding_hedged_on_eth_by_beta_takes_the_documented_field_names() -> None:
    hedge = _hedge(beta_min="0.2", beta_max="2", beta_half_life=72, on_correlation_break="reduce", correlation_reduce_to="0.25")
    assert hedge.beta and hedge.fixed_ratio == 1
    settings = hedge.beta_settings()
    assert settings.holding_symbol == "SOL/USDT:USDT"
    assert (settings.beta_min, settings.beta_max, settings.half_life) == (Decimal("0.2"), Decimal(2), 72)
    assert settings.on_break == "reduce" and settings.reduce_to == Decimal("0.25")
    assert settings.timeframe == "1h" and settings.band == Decimal("0.05")


def test_another_instrument_than_the_asset_needs_ratio_beta() -> None:
    with pytest.raises(ValidationError, match=r"asset 'SOL' does not match the base of symbol 'ETH/USDT:USDT'.*ratio = \"beta\""):
        _hedge(ratio="0.5")


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"ratio": "1.5"}, r"ratio '1.5' is neither a fraction between 0 and 1 nor \"beta\""),
        ({"ratio": "betta"}, r"ratio 'betta' is neither"),
        ({"beta_min": "1.5", "beta_max": "1.2"}, "beta_min 1.5 is above beta_max 1.2"),
        ({"beta_half_life": 1}, "beta_half_life"),
        ({"on_correlation_break": "sell"}, "on_correlation_break"),
        ({"correlation_reduce_to": "0.3"}, r'correlation_reduce_to 0.3 applies to on_correlation_break = "reduce" only'),
        ({"holding_symbol": "SOLUSDT"}, "holding_symbol 'SOLUSDT' is not a ccxt perpetual symbol"),
        ({"instrument": "usdm-quarterly"}, r'ratio = "beta" hedges on a USDⓈ-M perpetual only \(instrument is "usdm-quarterly"\)'),
        ({"margin_guard": {"sources": ["futures_wallet", "sell_spot"]}}, r"selling them for margin is not modelled"),
        ({"beta_min_observations": 5000, "beta_half_life": 10}, "beta_min_observations 5000 is more than 20 half-lives"),
    ],
)
def test_beta_settings_that_make_no_sense_are_refused_naming_the_field(fields: dict[str, object], said: str) -> None:
    with pytest.raises(ValidationError, match=said):
        _hedge(**fields)


def test_beta_settings_on_a_fixed_ratio_are_refused() -> None:
    with pytest.raises(ValidationError, match=r'beta_max = 2 apply to ratio = "beta" only \(ratio is 0.5\)'):
        HedgeConfig.model_validate({"name": "h", "asset": "BTC", "symbol": "BTC/USDT:USDT", "ratio": "0.5", "beta_max": "2"})


def test_a_paper_beta_hedge_must_list_the_market_its_holding_is_priced_on(tmp_path: Path) -> None:
    data = paper_settings_dict(tmp_path, name="sol", asset="SOL", symbol="BTC/USDT:USDT", ratio="beta")
    with pytest.raises(ConfigError, match=r"values its SOL on SOL/USDT:USDT \(holding_symbol\), which \[accounts.paper\] does not list"):
        load_config(write_toml(tmp_path / "c.toml", data))
    data["accounts"][0]["paper"]["markets"].append(
        {"symbol": "SOL/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "150", "step_seconds": 1, "volatility": 0.5, "seed": 4}}
    )
    settings = load_config(write_toml(tmp_path / "c.toml", data))
    assert settings.accounts[0].hedges[0].beta


def test_a_basket_names_each_holding_once_and_only_on_a_beta_hedge() -> None:
    hedge = _hedge(basket=[{"asset": "AVAX"}, {"asset": "DOT", "holding_symbol": "DOT/USDT:USDT"}])
    assert hedge.holdings() == (("SOL", "SOL/USDT:USDT"), ("AVAX", "AVAX/USDT:USDT"), ("DOT", "DOT/USDT:USDT"))
    assert hedge.counted_assets == ("SOL", "AVAX", "DOT")
    with pytest.raises(ValidationError, match=r"basket: SOL hedged twice by hedge 'sol' \(its asset is 'SOL'\)"):
        _hedge(basket=[{"asset": "SOL"}])
    with pytest.raises(ValidationError, match=r"basket = \['ETH'\] apply to ratio = \"beta\" only"):
        HedgeConfig.model_validate({"name": "h", "asset": "BTC", "symbol": "BTC/USDT:USDT", "ratio": "1", "basket": [{"asset": "ETH"}]})


def test_a_basket_holding_counted_by_another_hedge_of_the_account_is_refused(tmp_path: Path) -> None:
    data = paper_settings_dict(tmp_path, name="alts", asset="SOL", symbol="BTC/USDT:USDT", ratio="beta", basket=[{"asset": "ETH"}])
    markets = data["accounts"][0]["paper"]["markets"]
    for symbol, price in (("SOL/USDT:USDT", "150"), ("ETH/USDT:USDT", "3000")):
        markets.append({"symbol": symbol, "feed": {"kind": "synthetic", "start_price": price, "step_seconds": 1, "volatility": 0.5, "seed": 4}})
    data["accounts"][0]["hedges"].append({"name": "eth", "asset": "ETH", "symbol": "ETH/USDT:USDT", "ratio": "1"})
    with pytest.raises(ConfigError, match=r"hedges 'alts', 'eth' all count the ETH held in this account"):
        load_config(write_toml(tmp_path / "c.toml", data))
    data["accounts"][0]["hedges"].pop()
    markets.pop()
    with pytest.raises(ConfigError, match=r"values its ETH on ETH/USDT:USDT \(holding_symbol\), which \[accounts.paper\] does not list"):
        load_config(write_toml(tmp_path / "c.toml", data))


def test_check_says_how_a_beta_hedge_is_sized_and_what_a_broken_correlation_does(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from hedgebot.commands.main import main

    data = paper_settings_dict(tmp_path, name="eth", asset="ETH", symbol="BTC/USDT:USDT", ratio="beta", beta_max="2",
                               on_correlation_break="unwind")
    data["accounts"][0]["paper"]["markets"].append(
        {"symbol": "ETH/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "3000", "step_seconds": 1, "volatility": 0.5, "seed": 4}}
    )
    assert main(["check", "--config", str(write_toml(tmp_path / "c.toml", data))]) == 0
    out = capsys.readouterr().out
    assert "beta: ETH (priced on ETH/USDT:USDT) hedged by beta to BTC/USDT:USDT, clamped to 0..2" in out
    assert "correlation under 0.5 over 48 x 1h: unwind" in out


def test_unwind_with_sell_spot_is_refused_for_a_beta_hedge_and_nothing_is_done(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from hedgebot.commands.main import main

    data = paper_settings_dict(tmp_path, name="eth", asset="ETH", symbol="BTC/USDT:USDT", ratio="beta")
    data["accounts"][0]["paper"]["markets"].append(
        {"symbol": "ETH/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "3000", "step_seconds": 1, "volatility": 0.5, "seed": 4}}
    )
    path = str(write_toml(tmp_path / "c.toml", data))
    assert main(["unwind", "--config", path, "--hedge", "eth", "--sell-spot", "--yes"]) == 2
    err = capsys.readouterr().err
    assert "beta hedge" in err and "--sell-spot would sell the instrument's coins" in err and "nothing was done" in err, err
    assert not (tmp_path / "state" / "journal.sqlite").exists()


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"holding_symbol": "AVAX/USDT:USDT"}, r"holding_symbol 'AVAX/USDT:USDT' prices AVAX, not the SOL held"),
        ({"holding_symbol": "SOL/BTC:BTC"}, r"holding_symbol 'SOL/BTC:BTC' is quoted in BTC, the instrument ETH/USDT:USDT in USDT"),
        ({"basket": [{"asset": "DOT", "holding_symbol": "AVAX/USDT:USDT"}]}, r"basket holding_symbol 'AVAX/USDT:USDT' prices AVAX, not the DOT held"),
        ({"basket": [{"asset": "dot"}]}, r"basket holding_symbol 'dot/USDT:USDT' \(the market 'dot' is valued on\) is not a ccxt perpetual symbol"),
    ],
)
def test_a_holding_priced_on_another_coins_market_or_in_another_quote_is_refused(fields: dict[str, object], said: str) -> None:
    # Valued at another coin's price (or in BTC against a USDT instrument) the short would be sized many times off.
    with pytest.raises(ValidationError, match=said):
        _hedge(**fields)


def test_check_sizes_a_beta_hedges_short_on_the_holdings_worth_not_on_its_coin_count_as_the_instruments(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from hedgebot.commands.main import main

    data = paper_settings_dict(tmp_path, name="eth", asset="ETH", symbol="BTC/USDT:USDT", ratio="beta", beta_max="2")
    data["accounts"][0]["paper"]["markets"].append(
        {"symbol": "ETH/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "3000", "step_seconds": 1, "volatility": 0.5, "seed": 4}}
    )
    data["accounts"][0]["paper"]["spot"] = {"ETH": "100", "USDT": "1000"}
    assert main(["check", "--config", str(write_toml(tmp_path / "c.toml", data))]) == 0
    out = capsys.readouterr().out
    # 100 ETH at 3,000 is worth 300,000 USDT: at beta_max 2 at most 600,000 USDT of BTC at 50,000, 12 BTC.
    assert "a short of 0.000 ETH" not in out and "no short to guard" not in out, out
    assert "at most 12.000 BTC" in out and "beta_max 2" in out, out


def test_a_basket_on_a_hedge_that_does_not_count_spot_is_refused_not_left_unhedged() -> None:
    # A basket's holdings are the account's spot coins of each asset: with exposure.spot false none would be counted.
    with pytest.raises(ValidationError, match=r"basket \['AVAX'\] counts the account's spot coins of each asset, but exposure.spot is false"):
        _hedge(exposure={"spot": False, "offset": "10"}, basket=[{"asset": "AVAX"}])


def test_check_says_a_baskets_other_holdings_count_only_the_accounts_spot_coins(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from hedgebot.commands.main import main

    data = paper_settings_dict(tmp_path, name="eth", asset="ETH", symbol="BTC/USDT:USDT", ratio="beta",
                               basket=[{"asset": "SOL"}], exposure={"offset": "10"})
    for symbol, price in (("ETH/USDT:USDT", "3000"), ("SOL/USDT:USDT", "150")):
        data["accounts"][0]["paper"]["markets"].append(
            {"symbol": symbol, "feed": {"kind": "synthetic", "start_price": price, "step_seconds": 1, "volatility": 0.5, "seed": 4}}
        )
    data["accounts"][0]["paper"]["markets"][-1] |= {  # SOL has no built-in rules: only priced, yet a market needs them
        "amount_step": "0.01", "min_amount": "0.01", "min_notional": "5", "price_step": "0.01", "taker_fee": "0.0005",
        "brackets": [{"notional_floor": "0", "notional_cap": "1000000", "maint_margin_rate": "0.01", "maint_amount": "0"}],
    }
    assert main(["check", "--config", str(write_toml(tmp_path / "c.toml", data))]) == 0
    out = capsys.readouterr().out
    assert ("basket: SOL counts this account's spot coins only: exposure.offset, exposure.file and exposure.accounts "
            "count ETH (the hedge's own asset) alone") in out
