"""Buy and sell an option through unmodified ccxt in each venue's documented order form.

The order form the put leg will use (issue 22): always a limit order at a price
the caller derived from the mark (`hedgebot.domain.put_plan.limit_price`), with the
client id in the venue's own field. A sale closes a long put (reduce-only), so
it can never open a short option.

- Deribit: `GET /api/v2/private/buy|sell` with instrument_name, amount (coins), type limit, price
  (in the coin), label (the client id, up to 64 chars), reduce_only on a sale.
- Binance options: `POST /eapi/v1/order` with symbol, side, type LIMIT, quantity, price (USDT),
  timeInForce GTC, clientOrderId, reduceOnly on a sale.
- OKX: `POST /api/v5/trade/batch-orders` (ccxt sends one order there as a one-item list) with
  instId, tdMode (cross), side, ordType limit, sz (contracts), px (in the coin), clOrdId, reduceOnly
  on a sale.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from hedgebot.exchange.option_chains import VENUES, ChainError


@dataclass(frozen=True)
class OptionOrder:
    """A limit order on one option: contracts and price in the venue's own units."""

    symbol: str
    side: Literal["buy", "sell"]
    contracts: Decimal
    price: Decimal
    client_id: str


def order_params(venue: str, order: OptionOrder) -> dict[str, Any]:
    """Return the ccxt params that put the client id in `venue`'s field and make a sale reduce-only."""
    if venue not in VENUES:
        raise ChainError(f"venue {venue!r} has no options hedgebot trades (one of {', '.join(VENUES)})")
    params: dict[str, Any] = {"clientOrderId": order.client_id, "timeInForce": "GTC"}
    if venue == "deribit":
        params = {"label": order.client_id, "timeInForce": "GTC"}
    if venue == "okx":
        params["marginMode"] = "cross"
    if order.side == "sell":
        params["reduceOnly"] = True
    return params


async def place_option_order(client: Any, venue: str, order: OptionOrder) -> str:
    """Send `order` as a limit order and return the venue's order id."""
    if order.contracts <= 0 or order.price <= 0:
        raise ChainError(f"an option order needs contracts and a price above zero, got {order.contracts} at {order.price}")
    result = await client.create_order(order.symbol, "limit", order.side, float(order.contracts), float(order.price), order_params(venue, order))
    return str(result.get("id"))
