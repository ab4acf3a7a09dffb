"""What the start-up checks conclude from an account's key and modes: `run` refuses on the first, `check --exchange` lists all.

The facts come from the venue (`ExchangePort.fetch_account_facts`); nothing here
calls the exchange.
"""

from __future__ import annotations

from hedgebot.config import AccountConfig
from hedgebot.exchange.port import AccountFacts

UNRESTRICTED_KEY = "the API key accepts requests from any IP address; restrict it to this server's IP"


def key_problems(account: AccountConfig, facts: AccountFacts) -> list[str]:
    """Return every reason the account cannot be hedged safely with this key and these modes (empty when none)."""
    name = account.name
    problems = []
    if facts.can_withdraw and not account.allow_withdraw_permission:
        problems.append(
            f"account {name!r}: the API key can withdraw funds. hedgebot never withdraws; create a key "
            "without the withdrawal permission (or set allow_withdraw_permission = true to accept the risk)"
        )
    if facts.can_trade_futures is False:
        problems.append(
            f"account {name!r}: the API key has no futures permission (Enable Futures). A key created before the "
            "futures account was opened can never get it: create a new key"
        )
    sources = {source for hedge in account.hedges if hedge.margin_guard.enabled for source in hedge.margin_guard.sources}
    if facts.can_transfer is False and sources & {"spot_stablecoin", "sell_spot"}:
        problems.append(
            f"account {name!r}: the margin guard moves money from the spot wallet, but the API key may not transfer "
            "between wallets (Permits Universal Transfer)"
        )
    if facts.can_trade_spot is False and "sell_spot" in sources:
        problems.append(
            f"account {name!r}: a margin guard may sell spot coins (sell_spot), but the API key may not trade spot "
            "(Enable Spot & Margin Trading)"
        )
    if facts.multi_assets_margin:
        problems.append(
            f"account {name!r} is in multi-assets margin mode, which hedgebot does not support yet: "
            "switch to single-asset mode (Futures > Preferences > Asset Mode)"
        )
    if facts.portfolio_margin:
        problems.append(
            f"account {name!r} is a portfolio-margin account, which hedgebot does not support yet; "
            "use a classic futures account"
        )
    return problems
