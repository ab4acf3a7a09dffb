"""`hedgebot compare`: each instrument's carrying cost, margin and runway for a hedge, from the account's balances."""

from __future__ import annotations

from pathlib import Path

from hedgebot.commands.main import main
from tests.helpers import paper_settings_dict, write_toml


def _coin_holder(tmp_path: Path) -> Path:
    """10 BTC and no stablecoin, with Binance's USDⓈ-M and COIN-M perpetuals listed, at 1x."""
    data = paper_settings_dict(tmp_path, leverage=1, margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]})
    paper = data["accounts"][0]["paper"]
    paper["spot"], paper["futures"] = {"BTC": "10"}, {}
    feed = {"kind": "synthetic", "start_price": "50000", "step_seconds": 1, "volatility": 0.5, "seed": 3}
    paper["markets"] = [
        {"symbol": "BTC/USDT:USDT", "feed": feed, "funding": {"rate": "0.0001"}},
        {"symbol": "BTC/USD:BTC", "feed": feed, "funding": {"rate": "0.0002"}},
    ]
    return write_toml(tmp_path / "hedgebot.toml", data)


def _block(out: str, instrument: str) -> str:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(instrument))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return "\n".join(lines[start:end])


def test_compare_shows_a_coin_only_holder_that_the_coin_margined_perpetual_is_funded_and_the_usdm_one_is_not(tmp_path, capsys) -> None:
    assert main(["compare", "--config", str(_coin_holder(tmp_path)), "--hedge", "btc-core"]) == 0
    out = capsys.readouterr().out
    usdm, coinm = _block(out, "usdm-perp"), _block(out, "coinm-perp")
    assert "BTC/USDT:USDT  (held now)" in usdm
    # Funding of 0.01 % every 8 h on 10 BTC at 50,000: 10.95 % a year, 54,750 USDT received by the short.
    assert "carrying cost: 10.95% a year (90 settlements in the last 30 days); the short receives about 54,750.00 USDT a year" in usdm, usdm
    assert "the balances fund 0.00% of the target" in usdm, usdm  # no stablecoin: not one USDⓈ-M contract is paid for
    # On the coins themselves: 0.02 % every 8 h is 21.9 % a year of the 10 BTC, paid in the coin.
    assert "carrying cost: 21.90% a year (90 settlements in the last 30 days); the short receives about 2.19000000 BTC a year" in coinm, coinm
    # 10 BTC of margin at 1x for 10 BTC of face value, plus the opening fee (0.05 %): all but the fee's share is funded.
    assert "margin locked: 10.00500000 BTC for the whole target; the balances fund 99.94% of the target" in coinm, coinm
    assert "runway: no limit found" in coinm, coinm  # 1x on its own coins: no rally liquidates it


def test_compare_names_the_hedges_in_the_config_when_the_one_asked_for_is_not_there(tmp_path, capsys) -> None:
    assert main(["compare", "--config", str(_coin_holder(tmp_path)), "--hedge", "eth"]) == 2
    err = capsys.readouterr().err
    assert "--hedge 'eth' is not in the config (hedges: paper/btc-core)" in err and "Traceback" not in err


def test_compare_prices_a_paper_markets_quarterlies_by_their_basis_until_delivery(tmp_path, capsys) -> None:
    data = paper_settings_dict(tmp_path)
    market = data["accounts"][0]["paper"]["markets"][0]
    market.update(quarterlies=True, quarterly_basis="0.08", funding={"rate": "0.0001"})
    assert main(["compare", "--config", str(write_toml(tmp_path / "hedgebot.toml", data)), "--hedge", "btc-core"]) == 0
    out = capsys.readouterr().out
    quarterlies = [line for line in out.splitlines() if line.startswith("usdm-quarterly")]
    assert len(quarterlies) == 2, out  # the current and the next quarter, as Binance lists them
    block = _block(out, "usdm-quarterly")
    # A short sells the future above spot and it converges: 8 % a year of basis is its income, none of it funding.
    assert "carrying cost: 8.00% a year (basis to the perpetual's mark); the short receives about" in block, block
    assert "until delivery" in block and "margin locked:" in block, block
