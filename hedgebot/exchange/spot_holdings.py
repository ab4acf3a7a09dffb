"""The spot wallet of an account on any exchange ccxt knows, read-only: where a holdings account's coins are counted.

A holdings account (`[[accounts]]` with no hedges, named by hedges' `exposure.accounts`) on an
exchange hedgebot keeps no hedging venue for (Coinbase, Kraken, ...) is read through this: its
total spot balance by asset, and nothing else. It sends no request that could trade, move or
withdraw: only the exchange's market list and a pair's ticker (public), and its balance read. Every
request goes through the daemon's rate-limit gates like any venue's.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

import ccxt.async_support as ccxt_async

from hedgebot.clock import Clock
from hedgebot.exchange.port import (
    AccountFacts,
    AuthenticationFailed,
    BadData,
    ExchangeError,
    PriceQuote,
    RateLimited,
    VenueUnavailable,
)
from hedgebot.exchange.ratelimit import WeightFamily, gates_for

ONE_PER_REQUEST = (WeightFamily("all", "/", None),)  # no published weight table: one unit each, Retry-After obeyed


class SpotHoldings:
    """One account's spot wallet through an unmodified ccxt client, read-only."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.name = str(getattr(client, "id", "exchange"))

    @classmethod
    def connect(
        cls, exchange_id: str, clock: Clock, *, credentials: dict[str, str], account: str = "", session: Any | None = None,
        api_base_url: str | None = None,
    ) -> SpotHoldings:
        """Build the ccxt client of `exchange_id` with the account's (read-only) keys."""
        from hedgebot.exchange.ccxt_venue import rewrite_api_urls

        config: dict[str, Any] = {"enableRateLimit": True, "timeout": 10_000, **credentials}
        if session is not None:
            config["session"] = session
        client = getattr(ccxt_async, exchange_id)(config)
        if api_base_url:
            rewrite_api_urls(client, api_base_url)
        gates_for(clock).attach(client, ONE_PER_REQUEST, lambda _method, _path, _query: 1, account)
        return cls(client)

    async def _call(self, method: str, *args: Any) -> Any:
        """Call one of the client's unified reads, its errors as the port's."""
        try:
            return await getattr(self.client, method)(*args)
        except ccxt_async.AuthenticationError as exc:
            raise AuthenticationFailed(f"{self.name}: the key was refused ({exc})") from exc
        except ccxt_async.RateLimitExceeded as exc:
            raise RateLimited(f"{self.name}: {exc}") from exc
        except (ccxt_async.NetworkError, ccxt_async.ExchangeNotAvailable) as exc:
            raise VenueUnavailable(f"{self.name}: {exc}") from exc
        except ccxt_async.BaseError as exc:
            raise ExchangeError(f"{self.name}: {exc}") from exc

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        """Return the last spot price of the contract's base in its quote on this exchange: a public read.

        Only the same quote: a price in another (USD against a USDT mark) would show their basis as a spread.
        """
        markets = await self._call("load_markets")
        base, _, rest = symbol.partition("/")
        pair = f"{base}/{rest.split(':')[0]}"
        if pair not in markets:
            raise BadData(f"{self.name}: no spot pair {pair} to value {base} at")
        ticker = await self._call("fetch_ticker", pair)
        try:
            price = Decimal(str(ticker.get("last")))
        except (InvalidOperation, AttributeError):
            raise BadData(f"{self.name}: the {pair} ticker has no last price") from None
        if not price.is_finite() or price <= 0:
            raise BadData(f"{self.name}: the {pair} ticker's last price is {price}")
        stamp = ticker.get("timestamp")
        return PriceQuote(price, stamp / 1000 if isinstance(stamp, (int, float)) else float("nan"))

    async def fetch_spot_balances(self) -> dict[str, Decimal]:
        """Return the spot wallet's total balance by asset (the exchange's own codes, as ccxt unifies them)."""
        raw = await self._call("fetch_balance")
        totals = raw.get("total") if isinstance(raw, dict) else None
        if not isinstance(totals, dict):
            raise BadData(f"{self.name}: the balance answer has no totals")
        out: dict[str, Decimal] = {}
        for asset, amount in totals.items():
            if amount is None:
                continue
            try:
                value = Decimal(str(amount))
            except InvalidOperation:
                raise BadData(f"{self.name}: balance of {asset} is {str(amount)[:40]!r}, not a number") from None
            if not value.is_finite() or value < 0:
                raise BadData(f"{self.name}: balance of {asset} is {value}, not an amount held")
            out[str(asset)] = value
        return out

    async def fetch_account_facts(self) -> AccountFacts:
        """Say nothing of the key's powers: a generic exchange does not tell them; the daemon asks for a read-only key."""
        raise ExchangeError(f"{self.name} does not say through ccxt what its key may do")

    async def close(self) -> None:
        """Close the client's HTTP session."""
        await self.client.close()
