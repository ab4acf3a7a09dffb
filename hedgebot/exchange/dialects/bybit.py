"""Bybit USDT perpetuals, USDT futures and inverse contracts on a unified trading account (UTA), as ccxt 4.5 speaks to them.

Facts used here were read from ccxt's source (bybit.py) and Bybit's v5 API
documentation, and are listed with the endpoints in docs/exchanges.md. The
ones that shape this module:
- The short leg is `positionIdx: 2`, the long leg 1; in hedge mode Bybit
  accepts `reduceOnly` on the closing order, so the close form is
  Buy + positionIdx 2 + reduceOnly (it can never open the long).
- The client id travels as `orderLinkId`; ccxt's `fetch_order` on a unified
  account wants the exchange's order id, so an order is found by its
  `orderLinkId` in the realtime list, then in the history.
- ccxt has no `add_margin` for Bybit: the implicit `POST /v5/position/add-margin`
  takes a signed amount and the leg's positionIdx.
- A unified account is one wallet: spot coins and futures margin are the
  same USDT, so there are no transfers, and margin mode is account-wide.
- ccxt has no `fetch_position_mode`: the position list of a symbol shows
  positionIdx 1 and 2 in hedge mode and 0 in one-way mode.
- Only USDT perpetuals have hedge mode on a unified account: USDT futures,
  inverse perpetuals and inverse futures are one-way only. A hedge-mode
  order (a named leg) on one of those is refused here before it is sent; a
  one-way order is sent with positionIdx 0, reduce-only when it closes.
- Inverse contracts (category `inverse`, BTCUSD, BTCUSDH26) count their
  quantity in USD, one contract per dollar of face value; their margin is
  the coin (docs/exchanges.md, "Bybit").
- A delivery contract's time is `deliveryTime`, its state `status`; only
  Trading takes orders (PreLaunch, Delivering and Closed do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.model import Bracket, MarginMode, PositionMode, PositionSide, Wallet
from hedgebot.exchange.dialects.base import (
    Dialect,
    decimal_field,
    error_body,
    leg_from,
    symbol_parts,
    tiers_with_maintenance_amounts,
)
from hedgebot.exchange.port import (
    AccountFacts,
    AuthenticationFailed,
    BadData,
    DuplicateClientId,
    ExchangeError,
    FundingPayment,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    InsufficientFunds,
    InvalidOrder,
    Legs,
    ModeError,
    OrderRequest,
    PriceQuote,
    RateLimited,
    RequestTimeout,
)

_IDX = {PositionSide.LONG: 1, PositionSide.SHORT: 2}
COIN_STEP = Decimal("0.00000001")  # coins are booked to 8 decimals


def category_of(symbol: str) -> str:
    """Return Bybit's category of a ccxt contract symbol: inverse when it settles in its base coin, else linear."""
    base, _, settle, _ = symbol_parts(symbol)
    return "inverse" if settle == base else "linear"


def hedge_mode_exists(symbol: str) -> bool:
    """Tell whether Bybit offers hedge mode on a contract: USDT perpetuals only (docs/exchanges.md, "Bybit")."""
    _, _, settle, expiry = symbol_parts(symbol)
    return settle == "USDT" and expiry is None

# code -> (port error, what the user should know)
_CODES: dict[str, tuple[type[ExchangeError], str]] = {
    "110072": (DuplicateClientId, "an order with this orderLinkId already exists"),
    "110024": (ModeError, "the position mode cannot change while a position exists"),
    "110028": (ModeError, "the position mode cannot change while open orders exist"),
    "110007": (InsufficientFunds, "the available balance is not enough"),
    "110012": (InsufficientFunds, "the available balance is not enough"),
    "110044": (InsufficientFunds, "the available margin is not enough"),
    "110045": (InsufficientFunds, "the wallet balance is not enough"),
    "110017": (InvalidOrder, "the reduce-only order would not reduce the position"),
    "110021": (InvalidOrder, "the position is empty or open interest is exceeded"),
    "10003": (AuthenticationFailed, "the API key is invalid"),
    "10004": (AuthenticationFailed, "the request's signature is not valid (check the secret)"),
    "10005": (AuthenticationFailed, "the API key lacks a permission this call needs"),
    "10010": (AuthenticationFailed, "this IP is not on the API key's allowed list"),
    "10006": (RateLimited, "too many requests"),
    # Bybit's server-side failures: the request may or may not have been carried out.
    "10000": (RequestTimeout, "Bybit's server timed out: the outcome is unknown"),
    "5004": (RequestTimeout, "Bybit's server timed out: the outcome is unknown"),
    "10016": (RequestTimeout, "Bybit's internal error or service restart: the outcome is unknown"),
}


class Bybit(Dialect):
    """Bybit USDT perpetuals (`bybit`, category linear) on a unified trading account."""

    futures_id = "bybit"
    spot_id = "bybit"
    client_id_field = "orderLinkId"
    already_set_codes = frozenset({"110025", "110026", "110043"})
    label = "bybit"
    codes = _CODES
    # Bybit reports a positionIdx that does not fit the account's mode with the generic
    # parameter code 10001; the parameter its message names tells it apart.
    side_mismatch = ("10001", "position idx")
    hedge_mode_hint = "switch the USDT perpetuals to hedge mode (Bybit: Derivatives > Settings > Position Mode > Hedge Mode)"
    unified_wallet = True
    margin_step = Decimal("0.01")
    # Hedge mode exists on USDT perpetuals only (docs/exchanges.md, "Bybit: only USDT perpetuals have hedge mode").
    instruments = frozenset({InstrumentKind.USDM_PERP})
    unhedgeable = {
        kind: f"bybit lists {what} but keeps them in one-way mode only on a unified account, so hedgebot cannot "
        "keep its leg apart there"
        for kind, what in (
            (InstrumentKind.COINM_PERP, "inverse perpetuals (category inverse)"),
            (InstrumentKind.COINM_QUARTERLY, "inverse futures (category inverse)"),
            (InstrumentKind.USDM_QUARTERLY, "USDT futures"),
        )
    }
    delivery_time_field = "deliveryTime"
    status_field = "status"
    tradable_statuses = frozenset({"Trading"})

    def margin_step_for(self, market: Mapping[str, Any]) -> Decimal | None:
        """Return the margin step: cents of USDT, or the coin's 8 decimals on an inverse contract."""
        return COIN_STEP if market.get("inverse") else self.margin_step

    def contract_size(self, market: Mapping[str, Any]) -> Decimal:
        """Return 1: a linear quantity is in coins, an inverse one in USD (ccxt takes the minimum order for its size)."""
        return Decimal(1)

    def order_position_side(self, info: Mapping[str, Any]) -> PositionSide | None:
        """Return the leg an order names by positionIdx (1 long, 2 short, 0 one-way)."""
        return {"1": PositionSide.LONG, "2": PositionSide.SHORT}.get(str(info.get("positionIdx")))

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Load linear (USDT perpetuals and futures), inverse and spot markets."""
        return {"fetchMarkets": {"types": ["inverse", "linear", "spot"]}, "defaultType": "swap", "defaultSubType": "linear"}

    def configure(self, client: Any) -> None:
        """Skip the currencies call (a signed endpoint that needs the Wallet permission)."""
        client.has["fetchCurrencies"] = False

    def error_code(self, exc: Exception) -> str | None:
        """Read `retCode` from the body ccxt quotes in the exception."""
        body = error_body(exc)
        code = body.get("retCode") if body else None
        return str(code) if code not in (None, 0, "0") else None

    def order_params(self, request: OrderRequest) -> dict[str, Any]:
        """Carry the client id as orderLinkId and name the leg by positionIdx; closes are reduce-only.

        A named leg on a contract without hedge mode is refused: Bybit would net it into the one position.
        """
        params: dict[str, Any] = {self.client_id_field: request.client_id}
        if request.position_side is not None and ":" in request.symbol and not hedge_mode_exists(request.symbol):
            raise ModeError(
                f"bybit has no hedge mode for {request.symbol} ({category_of(request.symbol)} "
                f"{'futures' if symbol_parts(request.symbol)[3] else 'perpetual'}): only USDT perpetuals keep separate "
                "long and short legs, so hedgebot cannot keep its leg apart there; nothing was sent. "
                "Hedge on a USDT perpetual on bybit, or on an exchange whose coin-margined contracts have hedge mode"
            )
        if request.position_side is not None:
            params["positionIdx"] = _IDX[request.position_side]
            closing = (request.side.value == "buy") == (request.position_side is PositionSide.SHORT)
            if closing:
                params["reduceOnly"] = True
        else:
            if ":" in request.symbol and not hedge_mode_exists(request.symbol):
                params["positionIdx"] = 0  # the one position of a one-way contract
            if request.reduce_only:
                params["reduceOnly"] = True
        return params

    def margin_params(self, side: PositionSide) -> dict[str, Any]:
        """Name the leg of a margin change by positionIdx."""
        return {"positionIdx": _IDX[side]}

    def wallet_name(self, wallet: Wallet) -> str:
        """Return ccxt's account names (unused: a unified account needs no transfer)."""
        return "spot" if wallet is Wallet.SPOT else "swap"

    async def fetch_legs(self, futures: Any, symbol: str) -> Legs:
        """Read /v5/position/list: positionIdx 1 is the long leg, 2 the short; positionBalance is the leg's margin."""
        rows = await self._position_rows(futures, symbol)
        legs = {PositionSide.LONG: leg_from(PositionSide.LONG, Decimal(0), Decimal(0), Decimal(0)), PositionSide.SHORT: leg_from(PositionSide.SHORT, Decimal(0), Decimal(0), Decimal(0))}
        for row in rows:
            idx = str(row.get("positionIdx"))
            size = decimal_field(row, "size", "bybit")
            entry = decimal_field(row, "avgPrice", "bybit", default="0")
            margin = decimal_field(row, "positionBalance", "bybit", default="0")
            if idx == "1" or (idx == "0" and row.get("side") == "Buy"):
                legs[PositionSide.LONG] = leg_from(PositionSide.LONG, size, entry, margin)
            elif idx == "2" or (idx == "0" and row.get("side") == "Sell"):
                legs[PositionSide.SHORT] = leg_from(PositionSide.SHORT, size, entry, margin)
        return Legs(legs[PositionSide.LONG], legs[PositionSide.SHORT])

    async def _position_rows(self, futures: Any, symbol: str) -> list[dict[str, Any]]:
        market = futures.market(symbol)
        answer = await futures.privateGetV5PositionList({"category": category_of(symbol), "symbol": market["id"]})
        return list(((answer or {}).get("result") or {}).get("list") or [])

    async def fetch_futures_balance(self, futures: Any, asset: str) -> FuturesBalance:
        """Read the unified wallet: the coin's walletBalance, and what is free of position and order margin."""
        answer = await futures.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
        for account in ((answer or {}).get("result") or {}).get("list") or []:
            for coin in account.get("coin") or []:
                if coin.get("coin") != asset:
                    continue
                wallet = decimal_field(coin, "walletBalance", "bybit")
                locked = sum(
                    (decimal_field(coin, key, "bybit", default="0") for key in ("totalPositionIM", "totalOrderIM", "locked")),
                    Decimal(0),
                )
                return FuturesBalance(wallet=wallet, free=max(Decimal(0), wallet - locked))
        return FuturesBalance(Decimal(0), Decimal(0))

    async def fetch_spot_balances(self, spot: Any, settle: str) -> dict[str, Decimal]:
        """Return the unified wallet's coins except the settlement asset, which is reported as futures balance."""
        answer = await spot.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
        out: dict[str, Decimal] = {}
        for account in ((answer or {}).get("result") or {}).get("list") or []:
            for coin in account.get("coin") or []:
                name = str(coin.get("coin"))
                amount = decimal_field(coin, "walletBalance", "bybit", default="0")
                if name != settle and amount:
                    out[name] = amount
        return out

    async def fetch_margin_mode(self, futures: Any, symbol: str) -> MarginMode:
        """Read the account-wide mode from /v5/account/info (REGULAR_MARGIN is cross)."""
        answer = await futures.privateGetV5AccountInfo()
        mode = str(((answer or {}).get("result") or {}).get("marginMode"))
        if mode == "PORTFOLIO_MARGIN":
            raise ModeError("bybit: the account is in portfolio margin mode, which hedgebot does not support yet")
        return MarginMode.ISOLATED if mode == "ISOLATED_MARGIN" else MarginMode.CROSS

    async def set_margin_mode(self, futures: Any, symbol: str, mode: MarginMode) -> None:
        """Set the account-wide margin mode (it applies to every contract of the unified account)."""
        await futures.set_margin_mode(mode.value)

    async def fetch_leverage(self, futures: Any, symbol: str) -> int:
        """Read the leg's leverage from /v5/position/list."""
        for row in await self._position_rows(futures, symbol):
            if str(row.get("positionIdx")) in ("2", "0"):
                return int(decimal_field(row, "leverage", "bybit"))
        raise InvalidOrder(f"bybit lists no position row for {symbol}")

    async def fetch_position_mode(self, futures: Any, symbols: list[str]) -> PositionMode:
        """Tell the mode from the position rows: hedge mode lists positionIdx 1 and 2."""
        if not symbols:
            raise InvalidOrder("bybit keeps the position mode per contract: load a market before asking for it")
        rows = await self._position_rows(futures, symbols[0])
        return PositionMode.HEDGE if any(str(r.get("positionIdx")) in ("1", "2") for r in rows) else PositionMode.ONE_WAY

    async def set_position_mode(self, futures: Any, mode: PositionMode) -> None:
        """Switch every USDT perpetual of the account (`coin: USDT`) to hedge (3) or one-way (0) mode."""
        await futures.set_position_mode(mode is PositionMode.HEDGE, None, {"coin": "USDT"})

    async def adjust_margin(self, futures: Any, symbol: str, side: PositionSide, amount: Decimal) -> None:
        """Add or remove margin through the implicit add-margin endpoint (ccxt has no unified method for Bybit)."""
        market = futures.market(symbol)
        await futures.privatePostV5PositionAddMargin(
            {
                "category": category_of(symbol), "symbol": market["id"], "margin": str(amount),
                # the one position of a one-way contract is positionIdx 0
                **(self.margin_params(side) if hedge_mode_exists(symbol) else {"positionIdx": 0}),
            }
        )

    history_limit = 50  # /v5/order/history and /v5/order/realtime: at most 50 a page

    async def fetch_order_history(self, client: Any, symbol: str, since_ms: int, until_ms: int) -> tuple[list[dict[str, Any]], bool]:
        """Return the working orders (order/realtime) and the ended ones created in the window (order/history, every final state)."""
        working = await client.fetch_open_orders(symbol, None, self.history_limit)
        ended = await client.fetch_canceled_and_closed_orders(symbol, since_ms, self.history_limit, {"until": until_ms})
        return [dict(o) for o in (*working, *ended)], len(working) < self.history_limit and len(ended) < self.history_limit

    async def fetch_order(self, client: Any, symbol: str, client_id: str) -> dict[str, Any] | None:
        """Find the order by orderLinkId among open orders, then in the history of every final state.

        The history is asked without an orderStatus filter: ccxt's fetch_closed_orders
        asks only for Filled, and would miss a partly filled, then cancelled market order.
        """
        params = {self.client_id_field: client_id}
        for fetch in (client.fetch_open_orders, client.fetch_canceled_and_closed_orders):
            orders = await fetch(symbol, None, None, params)
            for order in orders:
                if order.get("clientOrderId") == client_id:
                    return order
        return None

    async def fetch_mark_price(self, futures: Any, symbol: str) -> PriceQuote:
        """Read markPrice from /v5/market/tickers, stamped with the response's own `time` (the row has none)."""
        market = futures.market(symbol)
        answer = await futures.publicGetV5MarketTickers({"category": category_of(symbol), "symbol": market["id"]})
        rows = ((answer or {}).get("result") or {}).get("list") or []
        row = next((r for r in rows if r.get("symbol") == market["id"]), None)
        if row is None:
            raise BadData(f"bybit tickers has no row for {market['id']}")
        stamp = (answer or {}).get("time")
        return PriceQuote(decimal_field(row, "markPrice", "bybit ticker"), int(stamp) / 1000 if stamp else float("-inf"))

    async def fetch_brackets(self, futures: Any, symbol: str, mark: Decimal | None) -> tuple[Bracket, ...]:
        """Read the risk-limit tiers: riskLimitValue caps each tier's notional, maintenanceMargin is its rate."""
        tiers = await futures.fetch_market_leverage_tiers(symbol)
        rows = [
            (decimal_field(t, "minNotional", "bybit tier"), decimal_field(t, "maxNotional", "bybit tier"), decimal_field(t, "maintenanceMarginRate", "bybit tier"), t.get("maxLeverage"))
            for t in tiers
        ]
        return tiers_with_maintenance_amounts(rows)

    async def fetch_funding_history(self, futures: Any, symbol: str, since: float) -> list[FundingPayment]:
        """Read funding executions: execFee is what the account paid (negative when it received)."""
        rows = await futures.fetch_funding_history(symbol, int(since * 1000))
        payments = []
        for row in rows:
            info = row.get("info") or {}
            paid = decimal_field(info, "execFee", "bybit funding")
            payments.append(FundingPayment(symbol, str(info.get("feeCurrency") or "USDT"), -paid, int(info["execTime"]) / 1000))
        return payments

    async def find_margin_change(self, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Bybit keeps no margin-change history: an ambiguous change is settled by observing the leg again."""
        return None

    async def find_transfer(self, spot: Any, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """A unified account makes no transfers."""
        return None

    async def fetch_account_facts(self, spot: Any, futures: Any) -> AccountFacts:
        """Read the key's permissions and IP list (/v5/user/query-api) and the account's margin mode."""
        key = ((await futures.privateGetV5UserQueryApi()) or {}).get("result") or {}
        wallet = (key.get("permissions") or {}).get("Wallet") or []
        ips = [ip for ip in key.get("ips") or [] if ip and ip != "*"]
        info = ((await futures.privateGetV5AccountInfo()) or {}).get("result") or {}
        return AccountFacts(
            can_withdraw="Withdraw" in wallet,
            ip_restricted=bool(ips),
            multi_assets_margin=False,
            portfolio_margin=str(info.get("marginMode")) == "PORTFOLIO_MARGIN",
        )

