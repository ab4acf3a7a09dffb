"""OKX USDT and coin-margined swaps and futures on a trading account in long/short mode, as ccxt 4.5 speaks to them.

Facts used here were read from ccxt's source (okx.py) and OKX's v5 API
documentation, and are listed with the endpoints in docs/exchanges.md. The
ones that shape this module:
- Hedge mode is `long_short_mode`; the short leg is `posSide: short`, and the
  margin mode is chosen on every order (`tdMode`), not set on the contract.
  This dialect remembers the mode the start-up checks ask for and sends it
  on every order, leverage call and lookup.
- OKX closes a leg with the opposite side on the same posSide; `reduceOnly`
  applies only in net mode and is never sent here.
- Amounts are contracts of `ctVal` (0.01 BTC on BTC-USDT-SWAP); the venue
  converts through the market's contract size, and this dialect reads sizes
  from the raw `pos` strings so nothing is lost to floats.
- Position tiers bound a tier by size in contracts, not notional: they are
  converted at the mark price when the market is loaded (see docs).
- Spot coins and swap margin share the trading account: no transfers.
- Coin-margined swaps and futures (BTC-USD-SWAP, BTC-USD-260327) are the
  same account, the same posSide and tdMode: `ctVal` is 100 USD
  (`ctValCcy` USD), margin and PnL are in `settleCcy` BTC; their tiers are
  sized in contracts of face value and turned into coins at the mark.
- A delivery contract's time is `expTime`, its state `state`; only live
  takes orders (suspend, preopen, expired do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.model import Bracket, MarginMode, PositionMode, PositionSide, Wallet
from hedgebot.exchange.dialects.base import Dialect, decimal_field, error_body, leg_from, tiers_with_maintenance_amounts
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

COIN_STEP = Decimal("0.00000001")  # coins are booked to 8 decimals
_INST_TYPES = {"swap": "SWAP", "future": "FUTURES", "spot": "SPOT"}

_CODES: dict[str, tuple[type[ExchangeError], str]] = {
    "51016": (DuplicateClientId, "an order with this clOrdId already exists"),
    "59000": (ModeError, "the setting cannot change while positions or open orders exist"),
    "51008": (InsufficientFunds, "the balance or margin is insufficient"),
    "58350": (InsufficientFunds, "the balance is insufficient"),
    "51020": (InvalidOrder, "the order is smaller than the contract's minimum"),
    "51121": (InvalidOrder, "the order is not a whole number of lots"),
    "51023": (InvalidOrder, "the position does not exist"),
    # A contract that is not `live` takes no order (a quarterly before listing, suspended, delivering, expired).
    "51021": (InvalidOrder, "the contract is not listed for trading yet; no order was placed"),
    "51022": (InvalidOrder, "the contract is suspended; no order was placed"),
    "51027": (InvalidOrder, "the contract is expired; no order was placed"),
    "51028": (InvalidOrder, "the contract is being delivered; no order was placed"),
    "51029": (InvalidOrder, "the contract is being settled; no order was placed"),
    "50111": (AuthenticationFailed, "the API key is invalid"),
    "50113": (AuthenticationFailed, "the request's signature is not valid (check the secret)"),
    "50105": (AuthenticationFailed, "the passphrase is wrong"),
    "50110": (AuthenticationFailed, "this IP is not on the API key's allowed list"),
    "50011": (RateLimited, "too many requests"),
    # OKX: the order request timed out; it may still be placed. Never a refusal: it is looked up by its clOrdId.
    "51149": (RequestTimeout, "the order request timed out and may still be placed (outcome unknown)"),
}


class Okx(Dialect):
    """OKX USDT perpetual swaps (`okx`, instType SWAP) and the spot coins of the same trading account."""

    futures_id = "okx"
    spot_id = "okx"
    client_id_field = "clOrdId"
    label = "okx"
    codes = _CODES
    # A posSide that does not fit the account's mode comes back as the generic parameter
    # code 51000 naming the posSide parameter.
    side_mismatch = ("51000", "posside")
    hedge_mode_hint = "switch the account to long/short mode (OKX: Settings > Position mode > Long/short mode)"
    unified_wallet = True
    tiers_need_mark = True
    margin_step = Decimal("0.01")
    # One trading account in long/short mode holds USDT-margined and coin-margined swaps and futures alike.
    instruments = frozenset(InstrumentKind)
    delivery_time_field = "expTime"
    status_field = "state"
    tradable_statuses = frozenset({"live"})

    def margin_step_for(self, market: Mapping[str, Any]) -> Decimal | None:
        """Return the margin step: cents of USDT, or the coin's 8 decimals on a coin-margined contract."""
        return COIN_STEP if market.get("inverse") else self.margin_step

    def __init__(self) -> None:
        # OKX has no per-contract margin mode: remember the one asked for and send it on every order.
        self.margin_modes: dict[str, MarginMode] = {}

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Load swap, futures and spot instruments."""
        return {"fetchMarkets": {"types": ["swap", "future", "spot"]}, "defaultType": "swap"}

    def configure(self, client: Any) -> None:
        """Skip the currencies call (a signed endpoint of the funding account)."""
        client.has["fetchCurrencies"] = False

    def error_code(self, exc: Exception) -> str | None:
        """Read the order's `sCode` when the body carries one, else the top-level `code`."""
        body = error_body(exc)
        if not body:
            return None
        for row in body.get("data") or []:
            if isinstance(row, dict) and row.get("sCode") not in (None, "", "0"):
                return str(row["sCode"])
        code = body.get("code")
        return str(code) if code not in (None, "0") else None

    def order_position_side(self, info: Mapping[str, Any]) -> PositionSide | None:
        """Return the leg an order names by posSide."""
        return {"long": PositionSide.LONG, "short": PositionSide.SHORT}.get(str(info.get("posSide")))

    def margin_mode_of(self, symbol: str) -> MarginMode:
        """Return the margin mode sent as tdMode for `symbol` (cross until one is set)."""
        return self.margin_modes.get(symbol, MarginMode.CROSS)

    def order_params(self, request: OrderRequest) -> dict[str, Any]:
        """Carry clOrdId, the leg as posSide and the margin mode as tdMode; never reduceOnly in long/short mode."""
        params: dict[str, Any] = {self.client_id_field: request.client_id}
        if ":" in request.symbol:
            params["tdMode"] = self.margin_mode_of(request.symbol).value
        else:
            params["tdMode"] = "cash"
        if request.position_side is not None:
            params["posSide"] = request.position_side.value
        elif request.reduce_only:
            params["reduceOnly"] = True  # net mode only
        return params

    def margin_params(self, side: PositionSide) -> dict[str, Any]:
        """Name the leg of an isolated margin change by posSide."""
        return {"posSide": side.value}

    def wallet_name(self, wallet: Wallet) -> str:
        """Return ccxt's account names (unused: spot and swaps share the trading account)."""
        return "trading"

    async def _positions(self, futures: Any, symbol: str) -> list[dict[str, Any]]:
        market = futures.market(symbol)
        answer = await futures.privateGetAccountPositions({"instId": market["id"]})
        return [row for row in (answer or {}).get("data") or [] if row.get("instId") == market["id"]]

    def contract_size(self, market: Mapping[str, Any]) -> Decimal:
        """Return a swap's ctVal from the instrument's own string (ccxt's contractSize is a float); 1 for spot."""
        info = market.get("info") or {}
        if not info.get("ctVal"):
            return super().contract_size(market)
        value = decimal_field(info, "ctVal", "okx instrument")
        if value <= 0:
            raise BadData(f"okx {market.get('symbol')}: contract value {value} is not positive")
        return value

    def contract_value(self, futures: Any, symbol: str) -> Decimal:
        """Return the base units in one contract of `symbol`."""
        return self.contract_size(futures.market(symbol))

    async def fetch_legs(self, futures: Any, symbol: str) -> Legs:
        """Read /account/positions: `pos` contracts times ctVal is the leg's size, `margin` its isolated margin."""
        ct_val = self.contract_value(futures, symbol)
        long = leg_from(PositionSide.LONG, Decimal(0), Decimal(0), Decimal(0))
        short = leg_from(PositionSide.SHORT, Decimal(0), Decimal(0), Decimal(0))
        for row in await self._positions(futures, symbol):
            contracts = decimal_field(row, "pos", "okx position")
            size = abs(contracts) * ct_val
            entry = decimal_field(row, "avgPx", "okx position", default="0")
            margin = decimal_field(row, "margin", "okx position", default="0")
            side = row.get("posSide")
            if side == "long" or (side == "net" and contracts > 0):
                long = leg_from(PositionSide.LONG, size, entry, margin)
            elif side == "short" or (side == "net" and contracts < 0):
                short = leg_from(PositionSide.SHORT, size, entry, margin)
        return Legs(long, short)

    async def _details(self, client: Any) -> list[dict[str, Any]]:
        answer = await client.privateGetAccountBalance()
        rows: list[dict[str, Any]] = []
        for account in (answer or {}).get("data") or []:
            rows.extend(account.get("details") or [])
        return rows

    async def fetch_futures_balance(self, futures: Any, asset: str) -> FuturesBalance:
        """Read /account/balance: cashBal is the asset's cash (margin posted included), availBal what is free."""
        for row in await self._details(futures):
            if row.get("ccy") == asset:
                return FuturesBalance(
                    wallet=decimal_field(row, "cashBal", "okx balance"),
                    free=max(Decimal(0), decimal_field(row, "availBal", "okx balance", default="0")),
                )
        return FuturesBalance(Decimal(0), Decimal(0))

    async def fetch_spot_balances(self, spot: Any, settle: str) -> dict[str, Decimal]:
        """Return the trading account's coins except the settlement asset, which is reported as futures balance."""
        out: dict[str, Decimal] = {}
        for row in await self._details(spot):
            name = str(row.get("ccy"))
            amount = decimal_field(row, "cashBal", "okx balance", default="0")
            if name != settle and amount:
                out[name] = amount
        return out

    async def fetch_margin_mode(self, futures: Any, symbol: str) -> MarginMode:
        """Return the open legs' mgnMode, else the mode this dialect sends on orders."""
        modes = {row.get("mgnMode") for row in await self._positions(futures, symbol) if row.get("mgnMode")}
        if len(modes) == 1:
            return MarginMode(modes.pop())
        return self.margin_mode_of(symbol)

    async def set_margin_mode(self, futures: Any, symbol: str, mode: MarginMode) -> None:
        """Choose the tdMode sent from now on; refused while a leg is open in the other mode."""
        held = {row.get("mgnMode") for row in await self._positions(futures, symbol)}
        if held and held != {mode.value}:
            raise ModeError(f"okx {symbol}: a position is open in {', '.join(sorted(map(str, held)))} margin; close it before using {mode.value}")
        self.margin_modes[symbol] = mode

    def _leverage_targets(self, symbol: str) -> list[dict[str, Any]]:
        mode = self.margin_mode_of(symbol)
        if mode is MarginMode.ISOLATED:
            # Isolated leverage in long/short mode is kept per leg.
            return [{"marginMode": mode.value, "posSide": side} for side in ("long", "short")]
        return [{"marginMode": mode.value}]

    async def fetch_leverage(self, futures: Any, symbol: str) -> int:
        """Read /account/leverage-info for the mode in use (the short leg's in isolated mode)."""
        market = futures.market(symbol)
        mode = self.margin_mode_of(symbol)
        answer = await futures.privateGetAccountLeverageInfo({"instId": market["id"], "mgnMode": mode.value})
        rows = (answer or {}).get("data") or []
        for row in rows:
            if row.get("posSide") in ("short", "net"):
                return int(decimal_field(row, "lever", "okx leverage"))
        raise BadData(f"okx sent no leverage for {symbol} in {mode.value} margin")

    async def set_leverage(self, futures: Any, symbol: str, leverage: int) -> None:
        """Set the leverage of the mode in use: both legs separately when isolated."""
        for params in self._leverage_targets(symbol):
            await futures.set_leverage(leverage, symbol, params)

    async def fetch_position_mode(self, futures: Any, symbols: list[str]) -> PositionMode:
        """Read posMode from /account/config."""
        answer = await futures.fetch_position_mode()
        return PositionMode.HEDGE if answer.get("hedged") else PositionMode.ONE_WAY

    async def set_position_mode(self, futures: Any, mode: PositionMode) -> None:
        """Set long_short_mode (hedge) or net_mode for the whole account."""
        await futures.set_position_mode(mode is PositionMode.HEDGE)

    async def adjust_margin(self, futures: Any, symbol: str, side: PositionSide, amount: Decimal) -> None:
        """Add or remove isolated margin on the leg through /account/position/margin-balance.

        Sent through ccxt's implicit method: ccxt 4.5.90's `add_margin` for OKX sends
        the request and then fails parsing the answer (`type['type']` on a string),
        which would report a margin change that happened as a crash.
        """
        market = futures.market(symbol)
        await futures.privatePostAccountPositionMarginBalance(
            {"instId": market["id"], "posSide": side.value, "type": "add" if amount > 0 else "reduce", "amt": str(abs(amount))}
        )

    history_limit = 100  # /trade/orders-history and /trade/orders-pending: at most 100 a page

    async def fetch_order_history(self, client: Any, symbol: str, since_ms: int, until_ms: int) -> tuple[list[dict[str, Any]], bool]:
        """Return the working orders (orders-pending) and the ended ones created in the window (orders-history, every state).

        ccxt's fetch_closed_orders asks orders-history for `state=filled` only, which would miss a market
        order partly filled and then cancelled: the endpoint is asked directly, without a state.
        """
        await client.load_markets()
        market = client.market(symbol)
        working = await client.fetch_open_orders(symbol, None, self.history_limit)
        answer = await client.privateGetTradeOrdersHistory({
            "instType": _INST_TYPES[str(market.get("type"))], "instId": market["id"],
            "begin": str(since_ms), "end": str(until_ms), "limit": str(self.history_limit),
        })
        ended = client.parse_orders(answer.get("data") or [], market)
        return [dict(o) for o in (*working, *ended)], len(working) < self.history_limit and len(ended) < self.history_limit

    async def fetch_order(self, client: Any, symbol: str, client_id: str) -> dict[str, Any] | None:
        """Look the order up by clOrdId (/trade/order); 51603 is ccxt's OrderNotFound, the port's None."""
        import ccxt

        try:
            return dict(await client.fetch_order(None, symbol, {self.client_id_field: client_id}))
        except ccxt.OrderNotFound:
            return None

    async def fetch_mark_price(self, futures: Any, symbol: str) -> PriceQuote:
        """Read markPx and its ts from /public/mark-price, naming the instType OKX's docs require (ccxt sends instId only)."""
        await futures.load_markets()
        kind = _INST_TYPES.get(str(futures.market(symbol).get("type")), "SWAP")
        ticker = await futures.fetch_mark_price(symbol, {"instType": kind})
        info = ticker.get("info") or {}
        price = decimal_field(info, "markPx", "okx mark price")
        stamp = info.get("ts")
        return PriceQuote(price, int(stamp) / 1000 if stamp else float("-inf"))

    async def fetch_brackets(self, futures: Any, symbol: str, mark: Decimal | None) -> tuple[Bracket, ...]:
        """Read /public/position-tiers for the mode in use and turn their contract bounds into notional at `mark`.

        A linear contract's notional is in USDT (contracts x ctVal coins x mark); a coin-margined one's in
        coins (contracts x ctVal USD / mark), the unit the inverse margin rule reads brackets in.
        """
        if mark is None or mark <= 0:
            raise BadData(f"okx {symbol}: position tiers are sized in contracts and need a mark price to convert")
        ct_val = self.contract_value(futures, symbol)
        inverse = bool(futures.market(symbol).get("inverse"))
        tiers = await futures.fetch_market_leverage_tiers(symbol, {"tdMode": self.margin_mode_of(symbol).value})
        rows = []
        for tier in tiers:
            info = tier.get("info") or {}
            face = decimal_field(info, "maxSz", "okx tier") * ct_val
            cap = face / mark if inverse else face * mark
            rate = decimal_field(info, "mmr", "okx tier")
            rows.append((None, cap, rate, tier.get("maxLeverage")))
        return tiers_with_maintenance_amounts(rows)

    async def fetch_funding_history(self, futures: Any, symbol: str, since: float) -> list[FundingPayment]:
        """Read funding bills (type 8): balChg is what the account received (negative when it paid)."""
        rows = await futures.fetch_funding_history(symbol, int(since * 1000))
        out = []
        for row in rows:
            info = row.get("info") or {}
            stamp = int(info["ts"]) / 1000
            if stamp >= since:  # ccxt does not pass `since` on to bills-archive
                out.append(FundingPayment(symbol, str(info.get("ccy") or "USDT"), decimal_field(info, "balChg", "okx funding"), stamp))
        return out

    async def find_margin_change(self, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Not searched: an ambiguous margin change is settled by observing the leg again."""
        return None

    async def find_transfer(self, spot: Any, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """The trading account makes no transfers."""
        return None

    async def fetch_account_facts(self, spot: Any, futures: Any) -> AccountFacts:
        """Read /account/config: the key's `perm` and `ip`, and the account level (4 is portfolio margin)."""
        answer = await futures.privateGetAccountConfig()
        config = ((answer or {}).get("data") or [{}])[0]
        level = str(config.get("acctLv"))
        if level == "1":
            raise ModeError("okx: the account is in Spot mode (acctLv 1), which cannot trade swaps: switch to Futures mode")
        perms = {p.strip() for p in str(config.get("perm") or "").split(",")}
        return AccountFacts(
            can_withdraw="withdraw" in perms,
            ip_restricted=bool(str(config.get("ip") or "").strip()),
            multi_assets_margin=level == "3",
            portfolio_margin=level == "4",
        )
