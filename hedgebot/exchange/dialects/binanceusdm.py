"""Binance USDⓈ-M futures with the Binance spot wallet, as ccxt 4.5 speaks to them.

Facts used here were read from ccxt's source (binance.py) and are listed with
the endpoints in docs/exchanges.md. The ones that matter most:
- ccxt picks Binance error classes by URL prefix (https://fapi.binance.com/
  ...), so behind a proxy or the emulator many codes arrive as a bare
  `ExchangeError`; the code in the body is what we trust.
- In hedge mode the short is closed with BUY and positionSide SHORT; sending
  reduceOnly there is refused with -1106.
- Margin changes and transfers carry no client id; they are found again in
  /fapi/v1/positionMargin/history and /sapi/v1/asset/transfer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from hedgebot.domain.model import Leg, MarginMode, PositionSide, Wallet
from hedgebot.exchange.dialects.base import Dialect, decimal_value, leg_from
from hedgebot.exchange.paper import VenueEvent
from hedgebot.exchange.ratelimit import WeightFamily
from hedgebot.exchange.streaming import AccountPush, StreamSpec, SubscribedFeed
from hedgebot.exchange.withdrawals import Withdrawal, WithdrawalRequest
from hedgebot.exchange.port import (
    AccountFacts,
    AuthenticationFailed,
    BadData,
    ClockSkew,
    DuplicateClientId,
    ExchangeBusy,
    ExchangeError,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    InsufficientFunds,
    InvalidOrder,
    Legs,
    ModeError,
    OrderRequest,
    RateLimited,
    RequestTimeout,
    ServerStruggling,
)

_TRANSFER_TYPES = {(Wallet.SPOT, Wallet.FUTURES): "MAIN_UMFUTURE", (Wallet.FUTURES, Wallet.SPOT): "UMFUTURE_MAIN"}

# code -> (port error, what the user should know)
_CODES: dict[str, tuple[type[ExchangeError], str]] = {
    "-4116": (DuplicateClientId, "an order with this client id already exists"),
    "-2019": (InsufficientFunds, "margin is insufficient"),
    "-4061": (
        ModeError,
        "the order's position side does not match the account's position mode: the account is in one-way mode; "
        "switch it to hedge mode (Binance: Futures > Preferences > Position Mode > Hedge Mode)",
    ),
    "-1106": (InvalidOrder, "reduceOnly was sent in hedge mode (a short is closed with BUY on positionSide SHORT)"),
    "-2022": (InvalidOrder, "the reduce-only order was rejected: it would not reduce the position"),
    "-4164": (InvalidOrder, "the order's notional is below the contract's minimum"),
    "-1021": (ClockSkew, "the request's timestamp is outside recvWindow: the server clock and ours differ"),
    "-4067": (ModeError, "the position mode cannot change while open orders exist"),
    "-4068": (ModeError, "the position mode cannot change while positions exist"),
    "-4047": (ModeError, "the margin type cannot change while open orders exist"),
    "-4048": (ModeError, "the margin type cannot change while a position exists"),
    "-4028": (ModeError, "the leverage is not valid for this contract"),
    "-2015": (AuthenticationFailed, "the API key is invalid, the IP is not allowed, or the key lacks a permission"),
    "-2014": (AuthenticationFailed, "the API key's format is invalid"),
    "-1022": (AuthenticationFailed, "the request's signature is not valid (check the secret)"),
    "-1003": (RateLimited, "too many requests"),
    "-1008": (ExchangeBusy, "Binance is throttling requests to protect its system (reduce-only orders are exempt): try again"),
    "-4131": (ExchangeBusy, "the best counterparty price is beyond the price protection (PERCENT_PRICE): try again"),
    "-1007": (RequestTimeout, "Binance timed out waiting for its backend: the outcome is unknown"),
    "-1006": (RequestTimeout, "Binance received an unexpected response from its message bus: the execution status is unknown"),
    "-1000": (RequestTimeout, "Binance met an unknown error processing the request: the outcome is unknown"),
    "-1001": (ServerStruggling, "Binance could not process the request (internal error): the outcome is unknown"),
}


# Request weights per IP as Binance documents them on each endpoint (USDⓈ-M Futures, Spot, Wallet);
# see docs/exchanges.md, "Rate limits". A second figure applies when the symbol is left out.
_WEIGHTS: dict[tuple[str, str], int | tuple[int, int]] = {
    ("GET", "/fapi/v1/time"): 1, ("GET", "/fapi/v1/ping"): 1, ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/premiumIndex"): (1, 10), ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v1/positionSide/dual"): 30, ("POST", "/fapi/v1/positionSide/dual"): 1,
    ("GET", "/fapi/v1/multiAssetsMargin"): 30, ("GET", "/fapi/v1/symbolConfig"): 5,
    ("POST", "/fapi/v1/marginType"): 1, ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/order"): 0,  # counted on the order-count limits, not on the IP weight
    ("GET", "/fapi/v1/order"): 1, ("GET", "/fapi/v1/openOrders"): (1, 40), ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5, ("GET", "/fapi/v3/account"): 5, ("GET", "/fapi/v2/balance"): 5,
    ("POST", "/fapi/v1/positionMargin"): 1, ("GET", "/fapi/v1/positionMargin/history"): 1,
    ("GET", "/fapi/v1/income"): 30, ("POST", "/fapi/v1/listenKey"): 1, ("PUT", "/fapi/v1/listenKey"): 1,
    ("GET", "/api/v3/time"): 1, ("GET", "/api/v3/ping"): 1, ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/account"): 20, ("POST", "/api/v3/order"): 1, ("GET", "/api/v3/order"): 4,
    ("GET", "/api/v3/allOrders"): 20,
    ("POST", "/sapi/v1/asset/transfer"): 1, ("GET", "/sapi/v1/asset/transfer"): 1,
    ("GET", "/sapi/v1/account/apiRestrictions"): 1, ("GET", "/sapi/v1/portfolio/account"): 5,
    # The refill's wallet endpoints. Their heavy weights (apply 600, history 18,000) are per account (UID), not per
    # IP: the refill sends one withdrawal at a time and reads its progress at most every 5 minutes.
    ("POST", "/sapi/v1/capital/withdraw/apply"): 1, ("GET", "/sapi/v1/capital/withdraw/history"): 1,
    ("GET", "/sapi/v1/capital/withdraw/address/list"): 10, ("GET", "/sapi/v1/capital/deposit/address"): 10,
}

# Per-IP request weight per minute: USDⓈ-M 2400, spot 6000 (both reported in X-MBX-USED-WEIGHT-1M),
# wallet endpoints 12000 (X-SAPI-USED-IP-WEIGHT-1M).
_FAMILIES = (
    WeightFamily("fapi", "/fapi/", 2400, "X-MBX-USED-WEIGHT-1M"),
    WeightFamily("api", "/api/", 6000, "X-MBX-USED-WEIGHT-1M"),
    WeightFamily("sapi", "/sapi/", 12000, "X-SAPI-USED-IP-WEIGHT-1M"),
)


def binance_weight(method: str, path: str, query: Mapping[str, str]) -> int:
    """Return Binance's documented IP weight of a request (1 for an endpoint not in the table)."""
    weight = _WEIGHTS.get((method, path), 1)
    if isinstance(weight, tuple):
        return weight[0] if query.get("symbol") else weight[1]
    return weight


def _d(value: Any, where: str) -> Decimal:
    return decimal_value(value, f"binance {where}")



# Binance's withdrawal statuses (0 email sent, 1 cancelled, 2 awaiting approval, 3 rejected, 4 processing, 5 failure,
# 6 completed): what hedgebot makes of each.
_WITHDRAW_STATUS = {"0": "processing", "1": "failed", "2": "processing", "3": "failed", "4": "processing",
                    "5": "failed", "6": "completed"}
_WITHDRAW_WINDOW_MS = 7 * 86_400_000 - 60_000  # a history search by withdrawOrderId spans at most 7 days


def _utc_seconds(text: str) -> float:
    """Read Binance's "2019-10-12 11:12:02" (UTC) as epoch seconds (NaN when it says nothing readable)."""
    from datetime import UTC, datetime

    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return float("nan")


class BinanceUsdm(Dialect):
    """Binance USDⓈ-M perpetuals (`binanceusdm`) plus the spot wallet (`binance`)."""

    futures_id = "binanceusdm"
    withdrawals_supported = True
    spot_id = "binance"
    client_id_field = "newClientOrderId"
    already_set_codes = frozenset({"-4059", "-4046"})
    label = "binance"
    codes = _CODES
    weight_families = _FAMILIES

    def request_weight(self, method: str, path: str, query: Mapping[str, str]) -> int:
        """Return Binance's documented IP weight of the request."""
        return binance_weight(method, path, query)

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Return options that keep ccxt to the endpoints hedgebot uses."""
        options: dict[str, Any] = {
            # fetchCurrencies is a signed sapi call hedgebot does not need; margin pairs likewise.
            "fetchCurrencies": False,
            "fetchMargins": False,
            "recvWindow": 10_000,
        }
        options["fetchMarkets"] = {"types": ["linear"]} if futures else {"types": ["spot"]}
        return options

    def order_params(self, request: OrderRequest) -> dict[str, Any]:
        """Carry the journaled client id; in hedge mode name the leg instead of sending reduceOnly."""
        params: dict[str, Any] = {self.client_id_field: request.client_id}
        if request.position_side is not None:
            params["positionSide"] = request.position_side.value.upper()
        elif request.reduce_only:
            params["reduceOnly"] = True  # one-way mode only
        return params

    def margin_params(self, side: PositionSide) -> dict[str, Any]:
        """Name the leg of an isolated margin change."""
        return {"positionSide": side.value.upper()}

    def wallet_name(self, wallet: Wallet) -> str:
        """Return ccxt's account names: 'spot' and 'swap' (MAIN and UMFUTURE)."""
        return "spot" if wallet is Wallet.SPOT else "swap"

    async def fetch_legs(self, futures: Any, symbol: str) -> Legs:
        """Read /fapi/v3/positionRisk through fetch_positions; isolatedWallet is the margin posted."""
        positions = await futures.fetch_positions([symbol])
        long = leg_from(PositionSide.LONG, Decimal(0), Decimal(0), Decimal(0))
        short = leg_from(PositionSide.SHORT, Decimal(0), Decimal(0), Decimal(0))
        for position in positions:
            if position.get("symbol") != symbol:
                continue
            info = position.get("info") or {}
            amount = _d(info.get("positionAmt", "0"), "positionAmt")
            entry = _d(info.get("entryPrice", "0"), "entryPrice")
            margin = _d(info.get("isolatedWallet", "0") or "0", "isolatedWallet")
            side = str(info.get("positionSide", "BOTH")).upper()
            if side == "LONG" or (side == "BOTH" and amount > 0):
                long = leg_from(PositionSide.LONG, amount, entry, margin)
            elif side == "SHORT" or (side == "BOTH" and amount < 0):
                short = leg_from(PositionSide.SHORT, amount, entry, margin)
        return Legs(long, short)

    async def fetch_futures_balance(self, futures: Any, asset: str) -> FuturesBalance:
        """Read /fapi/v3/account: walletBalance includes isolated margin, crossWalletBalance does not; availableBalance is free."""
        balance = await futures.fetch_balance({"type": "swap"})
        for row in (balance.get("info") or {}).get("assets", []):
            if row.get("asset") == asset:
                return FuturesBalance(
                    wallet=_d(row.get("walletBalance"), "walletBalance"),
                    free=max(Decimal(0), _d(row.get("availableBalance"), "availableBalance")),
                    cross_wallet=_d(row.get("crossWalletBalance"), "crossWalletBalance"),
                )
        return FuturesBalance(Decimal(0), Decimal(0))

    async def _symbol_config(self, futures: Any, symbol: str) -> dict[str, Any]:
        market = futures.market(symbol)
        rows = await futures.fapiPrivateGetSymbolConfig({"symbol": market["id"]})
        for row in rows or []:
            if row.get("symbol") == market["id"]:
                return row
        raise BadData(f"binance symbolConfig has no row for {market['id']}")

    async def fetch_margin_mode(self, futures: Any, symbol: str) -> MarginMode:
        """Read /fapi/v1/symbolConfig's marginType (CROSSED or ISOLATED)."""
        row = await self._symbol_config(futures, symbol)
        return MarginMode.ISOLATED if str(row.get("marginType")).upper() == "ISOLATED" else MarginMode.CROSS

    async def fetch_leverage(self, futures: Any, symbol: str) -> int:
        """Read /fapi/v1/symbolConfig's leverage."""
        row = await self._symbol_config(futures, symbol)
        return int(_d(row.get("leverage"), "leverage"))

    async def find_margin_change(self, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Search /fapi/v1/positionMargin/history (type 1 add, 2 reduce) for the leg, asset, amount and window."""
        kind = "add" if query.amount > 0 else "reduce"
        rows = await futures.fetch_margin_adjustment_history(
            query.symbol, kind, int(query.since * 1000), 500, {"until": int(query.until * 1000)}
        )
        for row in rows:
            info = row.get("info") or {}
            if query.side is not None and str(info.get("positionSide", "")).upper() != query.side.value.upper():
                continue
            amount = _d(info.get("amount"), "amount")
            signed = amount if str(info.get("type")) == "1" else -amount
            venue_id = f"{info.get('symbol')}:{info.get('positionSide')}:{info.get('time')}:{info.get('type')}:{amount}"
            movement = FundsMovement(venue_id, "margin", str(info.get("asset")), signed, int(info.get("time", 0)) / 1000)
            if query.matches(movement):
                return movement
        return None

    async def find_transfer(self, spot: Any, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Search /sapi/v1/asset/transfer of the transfer's type for the asset, amount and window."""
        assert query.source is not None and query.destination is not None
        answer = await spot.sapiGetAssetTransfer(
            {
                "type": self.transfer_type(query.source, query.destination),  # COIN-M's own types, on COIN-M
                "startTime": int(query.since * 1000),
                "endTime": int(query.until * 1000),
                "size": 100,
            }
        )
        for row in (answer or {}).get("rows", []):
            if str(row.get("status", "CONFIRMED")).upper() == "FAILED":
                continue
            movement = FundsMovement(
                str(row.get("tranId")), "transfer", str(row.get("asset")), _d(row.get("amount"), "amount"),
                int(row.get("timestamp", 0)) / 1000,
            )
            if query.matches(movement):
                return movement
        return None

    async def withdrawal_whitelisted(self, spot: Any, asset: str, address: str, network: str | None) -> bool:
        """Read the address book (GET /sapi/v1/capital/withdraw/address/list): is `address` whitelisted for `asset`?"""
        rows = await spot.sapiGetCapitalWithdrawAddressList()
        if not isinstance(rows, list):
            raise BadData(f"binance withdrawal address list: expected a list, got {type(rows).__name__}")
        return any(
            isinstance(row, dict) and str(row.get("address")) == address and str(row.get("coin", "")).upper() == asset.upper()
            and (network is None or str(row.get("network", "")).upper() == network.upper())
            and str(row.get("whiteStatus")).lower() == "true"
            and not row.get("addressTag")  # an entry with a memo would be paid without it: not this address
            for row in rows
        )

    async def free_spot_balance(self, spot: Any, asset: str) -> Decimal:
        """Read the spot account (GET /api/v3/account): the free balance of `asset`, not what orders hold."""
        answer = await spot.privateGetAccount({"omitZeroBalances": "true"})
        rows = answer.get("balances") if isinstance(answer, dict) else None
        if not isinstance(rows, list):
            raise BadData(f"binance spot account answer has no balances: {str(answer)[:200]}")
        row = next((r for r in rows if isinstance(r, dict) and r.get("asset") == asset), None)
        return _d(row.get("free"), f"spot free {asset}") if row is not None else Decimal(0)

    async def deposit_address(self, spot: Any, asset: str, network: str | None) -> str | None:
        """Read the account's deposit address (GET /sapi/v1/capital/deposit/address) for `asset` on `network`."""
        answer = await spot.sapiGetCapitalDepositAddress({"coin": asset, **({"network": network} if network else {})})
        address = answer.get("address") if isinstance(answer, dict) else None
        if not address:
            raise BadData(f"binance deposit address answer has no address: {str(answer)[:200]}")
        return str(address)

    async def withdraw(self, spot: Any, request: WithdrawalRequest, now: float) -> Withdrawal:
        """Apply for a withdrawal (POST /sapi/v1/capital/withdraw/apply) under `withdrawOrderId` = the client id."""
        params = {
            "coin": request.asset, "address": request.address, "amount": format(request.amount, "f"),
            "withdrawOrderId": request.client_id, **({"network": request.network} if request.network else {}),
            "walletType": 0,  # from the spot wallet, whose free balance sized it (not the user's default wallet)
        }
        answer = await spot.sapiPostCapitalWithdrawApply(params)
        venue_id = answer.get("id") if isinstance(answer, dict) else None
        if not venue_id:
            raise BadData(f"binance withdrawal answer has no id: {str(answer)[:200]}")
        return Withdrawal(str(venue_id), request.client_id, request.asset, request.amount, request.address, "processing", now)

    async def find_withdrawal(self, spot: Any, client_id: str, since: float) -> Withdrawal | None:
        """Search the withdrawal history (GET /sapi/v1/capital/withdraw/history) by `withdrawOrderId`.

        Binance searches at most 7 days when the id is given: the window starts a little before `since`.
        """
        start = int(since * 1000)
        rows = await spot.sapiGetCapitalWithdrawHistory(
            {"withdrawOrderId": client_id, "startTime": start, "endTime": start + _WITHDRAW_WINDOW_MS}
        )
        if not isinstance(rows, list):
            raise BadData(f"binance withdrawal history: expected a list, got {type(rows).__name__}")
        for row in rows:
            if not isinstance(row, dict) or row.get("withdrawOrderId") != client_id:
                continue
            status = _WITHDRAW_STATUS.get(str(row.get("status")), "processing")
            applied = _utc_seconds(str(row.get("applyTime", "")))
            return Withdrawal(str(row.get("id")), client_id, str(row.get("coin")), _d(row.get("amount"), "withdrawal amount"),
                              str(row.get("address")), status, applied)
        return None

    def transfer_type(self, source: Wallet, destination: Wallet) -> str:
        """Return Binance's universal-transfer type between two wallets."""
        try:
            return _TRANSFER_TYPES[(source, destination)]
        except KeyError:
            raise InvalidOrder(f"no transfer from {source.value} to {destination.value}") from None

    async def fetch_account_facts(self, spot: Any, futures: Any) -> AccountFacts:
        """Read the key's restrictions, the multi-assets mode and whether the account is portfolio margin."""
        restrictions = await spot.sapiGetAccountApiRestrictions()
        # A key without futures permission is refused by every /fapi endpoint: say why instead.
        multi = await self._multi_assets(futures) if _flag(restrictions, "enableFutures") is not False else {}
        return AccountFacts(
            can_withdraw=bool(restrictions.get("enableWithdrawals")),
            ip_restricted=bool(restrictions.get("ipRestrict")),
            multi_assets_margin=str(multi.get("multiAssetsMargin")).lower() == "true",
            portfolio_margin=await self._is_portfolio_margin(spot),
            can_trade_futures=_flag(restrictions, "enableFutures"),
            can_transfer=_flag(restrictions, "permitsUniversalTransfer"),
            can_trade_spot=_flag(restrictions, "enableSpotAndMarginTrading"),
        )

    async def _multi_assets(self, futures: Any) -> dict[str, Any]:
        """Read whether the account is in multi-assets mode (GET /fapi/v1/multiAssetsMargin)."""
        return await futures.fapiPrivateGetMultiAssetsMargin()

    def tap_user_stream(self, futures: Any, on_event: Callable[[Any], None]) -> None:
        """Turn the user-data stream's own events into venue events, and `listenKeyExpired` into a reconnect."""
        tap_binance_user_stream(futures, on_event)

    def account_push(self, message: Any, symbol_of: Callable[[str], str]) -> AccountPush | None:
        """Read ACCOUNT_UPDATE, ORDER_TRADE_UPDATE fills, outboundAccountPosition and balanceUpdate (see `account_push`)."""
        return account_push(message, symbol_of)

    def stream_specs(self, futures: Any, symbols: list[str], stale_after: float) -> list[StreamSpec]:
        """Return ccxt's feeds, the futures balance feed first reporting that the user-data socket is connected.

        Its pushes (ACCOUNT_UPDATE) keep the legs and balances the port serves, so the port must know when the
        socket is up: a positions feed speaks first with a REST snapshot, which answers even while the socket is refused.
        """
        specs = [s for s in super().stream_specs(futures, symbols, stale_after) if s.name != "balance"]
        if not (getattr(futures, "has", {}) or {}).get("watchBalance"):
            return specs
        return [*specs, StreamSpec("balance", SubscribedFeed(lambda: _user_socket(futures), futures.watch_balance),
                                   carries=frozenset({"futures"}))]

    def spot_stream_specs(self, spot: Any) -> list[StreamSpec]:
        """Return the spot user-data feed: ccxt's watch_balance on the WebSocket API (userDataStream.subscribe.signature).

        The feed first reports its subscription (ccxt's authenticate waits for Binance's answer to it), so the port
        knows the spot wallet's pushes reach it before it serves the wallet from them. Its name has no symbol, so
        each push wakes every keeper of the account, as the futures balance feed's do.
        """
        if not (getattr(spot, "has", {}) or {}).get("watchBalance"):
            return []
        return [StreamSpec("spot_balance", SubscribedFeed(lambda: spot.authenticate({"type": "spot"}), spot.watch_balance),
                           carries=frozenset({"spot"}))]

    async def _is_portfolio_margin(self, spot: Any) -> bool:
        # /sapi/v1/portfolio/account answers only for portfolio-margin accounts;
        # any other account gets an error code back (a refusal, not an outage).
        import ccxt

        try:
            answer = await spot.sapiGetPortfolioAccount()
        except ccxt.NetworkError:
            raise
        except ccxt.BaseError:
            return False
        return isinstance(answer, dict) and "uniMMR" in answer


# ---- the user-data stream ------------------------------------------------------------------

# ORDER_TRADE_UPDATE client ids Binance gives the orders it places itself
_FORCED_ORDERS = (("autoclose-", "liquidation"), ("adl_autoclose", "adl"), ("settlement_autoclose-", "settlement"))


def user_stream_events(message: dict[str, Any], symbol_of: Callable[[str], str]) -> list[VenueEvent]:
    """Return what a raw user-data message tells about money or legs the bot did not move itself.

    ACCOUNT_UPDATE carries its reason in `a.m`: FUNDING_FEE is a funding
    payment per asset (`bc`, the balance change); MARGIN_TRANSFER and other
    reasons are moves someone else made. ORDER_TRADE_UPDATE with a client id
    Binance reserves for itself is a liquidation, an auto-deleveraging or a
    settlement of one of our legs.
    """
    kind = message.get("e")
    at = int(message.get("E") or message.get("T") or 0) / 1000
    events: list[VenueEvent] = []
    if kind == "ACCOUNT_UPDATE":
        update = message.get("a") or {}
        reason = str(update.get("m") or "")
        positions = update.get("P") or []
        symbol = symbol_of(str(positions[0].get("s"))) if positions else ""
        side = str(positions[0].get("ps", "")).lower() if positions else ""
        for balance in update.get("B") or []:
            change = _d(balance.get("bc", "0") or "0", "balance change")
            if reason == "FUNDING_FEE" and change:
                events.append(VenueEvent("funding", symbol, side, change, Decimal(0), at, f"{balance.get('a')} FUNDING_FEE"))
            elif reason not in ("ORDER", "FUNDING_FEE") and change:
                events.append(VenueEvent("account_update", symbol, side, change, Decimal(0), at, f"{balance.get('a')} {reason}"))
    elif kind == "ORDER_TRADE_UPDATE":
        order = message.get("o") or {}
        client_id = str(order.get("c") or "")
        for prefix, name in _FORCED_ORDERS:
            if client_id.startswith(prefix) and str(order.get("X")) in ("FILLED", "PARTIALLY_FILLED"):
                events.append(
                    VenueEvent(
                        name, symbol_of(str(order.get("s"))), str(order.get("ps", "")).lower(),
                        _d(order.get("l") or order.get("z") or "0", "filled"), _d(order.get("ap") or order.get("L") or "0", "price"),
                        at, client_id,
                    )
                )
    return events


def account_push(message: Any, symbol_of: Callable[[str], str]) -> AccountPush | None:
    """Return what a raw user-data message says the account holds, or None for a message that says nothing of it.

    Binance's shapes ("Event: Balance and Position Update", "Event: Account Update"; see docs/exchanges.md):
    ACCOUNT_UPDATE's `a.B` rows carry the wallet balance `wb` (isolated margin included) and the cross wallet `cw`,
    its `a.P` rows each changed leg (`pa` signed amount, `ep` entry, `iw` isolated wallet, `ps` leg); an
    ORDER_TRADE_UPDATE with a trade (`x` TRADE, or a filled amount `l`) is a fill; spot's outboundAccountPosition
    carries each changed asset's `f` free and `l` locked; balanceUpdate only a delta. The WebSocket API wraps each
    event as {"subscriptionId": n, "event": {...}}.
    """
    if not isinstance(message, dict):
        return None
    event = message.get("event") if isinstance(message.get("event"), dict) else message
    kind = event.get("e")
    at = int(event.get("E") or event.get("T") or 0) / 1000
    if kind == "ACCOUNT_UPDATE":
        update = event.get("a") or {}
        futures = {
            str(row.get("a")): (_d(row.get("wb"), "ACCOUNT_UPDATE wb"), _d(row.get("cw"), "ACCOUNT_UPDATE cw"))
            for row in update.get("B") or [] if isinstance(row, dict) and row.get("wb") is not None and row.get("cw") is not None
        }
        legs: dict[tuple[str, PositionSide], Leg] = {}
        rows = [row for row in update.get("P") or [] if isinstance(row, dict)]
        # Binance pushes the BOTH row of a changed symbol in hedge mode too (empty): it names no leg there.
        hedged = {str(row.get("s")) for row in rows if str(row.get("ps", "")).upper() in ("LONG", "SHORT")}
        unsure: set[str] = set()
        for row in rows:
            symbol = symbol_of(str(row.get("s")))
            amount = _d(row.get("pa", "0"), "ACCOUNT_UPDATE pa")
            entry = _d(row.get("ep", "0") or "0", "ACCOUNT_UPDATE ep")
            margin = _d(row.get("iw", "0") or "0", "ACCOUNT_UPDATE iw") if str(row.get("mt", "")).lower() == "isolated" else Decimal(0)
            side = str(row.get("ps", "BOTH")).upper()
            if side in ("LONG", "SHORT"):
                legs[(symbol, PositionSide(side.lower()))] = leg_from(PositionSide(side.lower()), amount, entry, margin)
            elif str(row.get("s")) in hedged:
                continue
            elif amount != 0:  # one-way mode: the sign names the leg, and the other one is empty
                legs[(symbol, PositionSide.LONG)] = leg_from(PositionSide.LONG, max(amount, Decimal(0)), entry, margin)
                legs[(symbol, PositionSide.SHORT)] = leg_from(PositionSide.SHORT, min(amount, Decimal(0)), entry, margin)
            else:  # an empty BOTH row alone: a one-way position closed, or a hedge-mode change whose leg row is not here
                unsure.add(symbol)
        return AccountPush(at, legs=legs, futures=futures, reread=frozenset(unsure))
    if kind == "ORDER_TRADE_UPDATE":
        order = event.get("o") or {}
        traded = str(order.get("x")) == "TRADE" or _d(order.get("l") or "0", "ORDER_TRADE_UPDATE l") != 0
        return AccountPush(at, fills=frozenset({symbol_of(str(order.get("s")))})) if traded else None
    if kind == "outboundAccountPosition":
        spot = {
            str(row.get("a")): _d(row.get("f"), "outboundAccountPosition f") + _d(row.get("l"), "outboundAccountPosition l")
            for row in event.get("B") or [] if isinstance(row, dict)
        }
        return AccountPush(at, spot=spot)
    if kind == "balanceUpdate":
        return AccountPush(at, spot_moved=True)
    return None


async def _user_socket(client: Any) -> None:
    """Open the futures user-data socket as ccxt's watchers do (the listen key, then its URL) and wait until it is connected."""
    kind, sub_type, params = client.resolve_auth_type("watchBalance", None, {})
    await client.authenticate(client.extend({"type": kind, "subType": sub_type}, params))
    url = client.get_private_ws_url(kind, client.options[kind]["listenKey"])
    await client.client(url).connect(client.session)


def _forget_binance_listen_key(futures: Any) -> None:
    """Make ccxt's next authenticate() ask Binance for a new listen key (USDⓈ-M keeps it under options['linear'])."""
    options = dict(futures.options.get("linear") or {})
    options["lastAuthenticatedTime"] = 0
    futures.options["linear"] = options


def tap_binance_user_stream(
    futures: Any, on_event: Callable[[VenueEvent], None], forget_listen_key: Callable[[Any], None] = _forget_binance_listen_key
) -> None:
    """See every raw websocket message of a ccxt Binance client before ccxt handles it.

    ccxt keeps the listen key alive (PUT every `listenKeyRefreshRate`) but ignores
    `listenKeyExpired`, after which the socket stays open and silent. Here that
    event forgets the key and fails the socket's pending watchers, so the stream
    supervisor reconnects, and ccxt asks for a new key.
    """
    import ccxt

    original = futures.handle_message

    def tapped(client: Any, message: Any) -> Any:
        if isinstance(message, dict):
            if message.get("e") == "listenKeyExpired":
                forget_listen_key(futures)
                client.reject(ccxt.NetworkError("binance listenKeyExpired: reconnecting with a new listen key"))
                return None
            for event in user_stream_events(message, lambda market_id: futures.safe_symbol(market_id, None, None, "contract")):
                on_event(event)
        return original(client, message)

    futures.handle_message = tapped


def _flag(answer: dict[str, Any], name: str) -> bool | None:
    """Return a permission flag of /sapi/v1/account/apiRestrictions, None when the answer lacks it."""
    value = answer.get(name)
    return None if value is None else str(value).lower() == "true"
