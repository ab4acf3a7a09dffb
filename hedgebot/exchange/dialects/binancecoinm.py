"""Binance COIN-M (coin-margined, inverse) perpetuals through ccxt's `binancecoinm`, plus the spot wallet (`binance`).

Everything Binance's two futures APIs share (client ids, hedge mode's positionSide, error codes, the
spot wallet, transfers, withdrawals, the key's restrictions) is `BinanceUsdm`'s. What differs here:
- the `/dapi/` endpoints, their weights and their per-IP budget (docs/exchanges.md, "Rate limits");
- amounts are contracts of a fixed face value in USD (100 for BTCUSD, 10 for every other coin): a
  leg's size is face value (contracts x contract size), and its margin, PnL and fees are in the coin;
- the margin mode and leverage of a contract are read from `/dapi/v1/positionRisk` (COIN-M has no
  symbolConfig); the multi-assets mode does not exist there;
- transfers between spot and the COIN-M wallet are universal transfers MAIN_CMFUTURE and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.model import MarginMode, PositionSide, Wallet
from hedgebot.exchange.dialects.base import leg_from
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm, _d, binance_weight
from hedgebot.exchange.port import BadData, Legs
from hedgebot.exchange.ratelimit import WeightFamily

# COIN-M's own endpoints (https://developers.binance.com/docs/derivatives/coin-margined-futures), per IP.
_DAPI_WEIGHTS: dict[tuple[str, str], int | tuple[int, int]] = {
    ("GET", "/dapi/v1/exchangeInfo"): 1, ("GET", "/dapi/v1/time"): 1, ("GET", "/dapi/v1/premiumIndex"): (10, 10),
    ("GET", "/dapi/v2/leverageBracket"): 1, ("GET", "/dapi/v1/positionRisk"): 1, ("GET", "/dapi/v1/account"): 5,
    ("GET", "/dapi/v1/positionSide/dual"): 30, ("POST", "/dapi/v1/positionSide/dual"): 1,
    ("POST", "/dapi/v1/marginType"): 1, ("POST", "/dapi/v1/leverage"): 1, ("POST", "/dapi/v1/order"): 0,
    ("GET", "/dapi/v1/order"): 1, ("GET", "/dapi/v1/allOrders"): 20, ("POST", "/dapi/v1/positionMargin"): 1,
    ("GET", "/dapi/v1/positionMargin/history"): 1, ("GET", "/dapi/v1/income"): 20,
}
# COIN-M's per-IP weight per minute, reported in X-MBX-USED-WEIGHT-1M; spot and wallet as on USDⓈ-M.
_FAMILIES = (
    WeightFamily("dapi", "/dapi/", 2400, "X-MBX-USED-WEIGHT-1M"),
    WeightFamily("api", "/api/", 6000, "X-MBX-USED-WEIGHT-1M"),
    WeightFamily("sapi", "/sapi/", 12000, "X-SAPI-USED-IP-WEIGHT-1M"),
)
_TRANSFER_TYPES = {(Wallet.SPOT, Wallet.FUTURES): "MAIN_CMFUTURE", (Wallet.FUTURES, Wallet.SPOT): "CMFUTURE_MAIN"}
COIN_STEP = Decimal("0.00000001")


class BinanceCoinm(BinanceUsdm):
    """Binance COIN-M perpetuals (`binancecoinm`): inverse contracts margined in the coin."""

    futures_id = "binancecoinm"
    margin_step = COIN_STEP  # coins are booked to 8 decimals
    instruments = frozenset({InstrumentKind.COINM_PERP, InstrumentKind.COINM_QUARTERLY})  # only coin-margined contracts
    status_field = "contractStatus"  # COIN-M's exchangeInfo names a contract's status so (USDⓈ-M: status)
    weight_families = _FAMILIES

    def request_weight(self, method: str, path: str, query: Mapping[str, str]) -> int:
        """Return Binance's documented IP weight of the request (COIN-M's own, or spot's and the wallet's)."""
        weight = _DAPI_WEIGHTS.get((method, path))
        if weight is None:
            return binance_weight(method, path, query)
        if isinstance(weight, tuple):
            return weight[0] if query.get("symbol") else weight[1]
        return weight

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Return options that keep ccxt to COIN-M's inverse contracts (and the spot markets for the spot client)."""
        options = super().client_options(futures=futures)
        if futures:
            options["fetchMarkets"] = {"types": ["inverse"]}
        return options

    def wallet_name(self, wallet: Wallet) -> str:
        """Return ccxt's account names: 'spot' and 'inverse' (MAIN and CMFUTURE).

        ccxt maps only the names in its accountsByType; any other name ('delivery') is taken for an
        isolated-margin symbol and sent as MAIN_ISOLATED_MARGIN, which moves nothing into COIN-M.
        """
        return "spot" if wallet is Wallet.SPOT else "inverse"

    def transfer_type(self, source: Wallet, destination: Wallet) -> str:
        """Return Binance's universal-transfer type between spot and the COIN-M wallet."""
        return _TRANSFER_TYPES[(source, destination)]

    async def fetch_legs(self, futures: Any, symbol: str) -> Legs:
        """Read /dapi/v1/positionRisk: positionAmt in contracts, made face value; isolatedWallet in coins."""
        legs = await super().fetch_legs(futures, symbol)  # loads the markets first when none are (a daemon's first read)
        size = self.contract_size(futures.market(symbol))
        return Legs(*(
            leg_from(leg.side, leg.size * size, leg.entry_price, leg.margin) for leg in (legs.long, legs.short)
        ))

    async def _position_row(self, futures: Any, symbol: str) -> dict[str, Any]:
        # Read /dapi/v1/positionRisk itself: ccxt's fetch_positions drops the rows of empty legs (entryPrice 0),
        # and those are the only rows carrying marginType and leverage before the first order.
        market = futures.market(symbol)
        pair = (market.get("info") or {}).get("pair") or market["id"].split("_")[0]
        rows = await futures.dapiPrivateGetPositionRisk({"pair": pair})
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and row.get("symbol") == market["id"]:
                return row
        raise BadData(f"binance positionRisk has no row for {market['id']}")

    async def adjust_margin(self, futures: Any, symbol: str, side: PositionSide, amount: Decimal) -> None:
        """POST /dapi/v1/positionMargin with the amount in coins (type 1 add, 2 reduce).

        ccxt's add_margin rounds the amount to the contract's amount precision (whole contracts on COIN-M),
        which would refuse or truncate a margin change of a fraction of a coin.
        """
        market = futures.market(symbol)
        await futures.dapiPrivatePostPositionMargin({
            "symbol": market["id"], "positionSide": side.value.upper(), "amount": format(abs(amount), "f"),
            "type": 1 if amount > 0 else 2,
        })

    async def fetch_margin_mode(self, futures: Any, symbol: str) -> MarginMode:
        """Read /dapi/v1/positionRisk's marginType (cross or isolated)."""
        row = await self._position_row(futures, symbol)
        return MarginMode.ISOLATED if str(row.get("marginType")).lower() == "isolated" else MarginMode.CROSS

    async def fetch_leverage(self, futures: Any, symbol: str) -> int:
        """Read /dapi/v1/positionRisk's leverage."""
        row = await self._position_row(futures, symbol)
        return int(_d(row.get("leverage"), "leverage"))

    async def _multi_assets(self, futures: Any) -> dict[str, Any]:
        """Say no multi-assets mode: COIN-M has none."""
        return {}

    def stream_specs(self, futures: Any, symbols: list[str], stale_after: float) -> list[Any]:
        """Stream nothing yet: COIN-M's streams are not tapped, so the keeper reads the account by REST."""
        return []

    def tap_user_stream(self, futures: Any, on_event: Any) -> None:
        """Tap nothing (see stream_specs)."""
