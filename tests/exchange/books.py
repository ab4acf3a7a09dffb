"""Tiny in-memory accounts that answer in each exchange's documented response shapes.

Each book keeps just enough state (mark, modes, leverage, two legs, wallets,
orders by client id, funding payments) to answer the requests hedgebot's
venue sends through unmodified ccxt, so that request-shape tests can also
check that the venue reads the answers right. Market orders fill at the mark.
The shapes follow the exchanges' API documentation (Bybit v5, OKX v5, Aster
futures v3); the values are this project's own.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.exchange.ccxt_recorder import RecordedRequest, RecordingSession, Reply

D = Decimal
NOW_MS = 1_700_000_000_000


@dataclass
class LegBook:
    """One side of a contract as the book holds it, in base units."""

    size: Decimal = D(0)
    entry: Decimal = D(0)
    margin: Decimal = D(0)


@dataclass
class OrderBook:
    """A market order as the book remembers it: filled, or accepted and still working (late-fill mode)."""

    order_id: str
    client_id: str
    side: str  # "buy" / "sell"
    position_side: str  # "long" / "short"
    amount: Decimal  # base units
    price: Decimal
    fee: Decimal
    reduce: bool
    created: int
    working: bool = False  # accepted, nothing filled yet (Bybit "New", OKX "live")
    visible_from: int = 0  # the book's request count from which lookups see the order
    fills_at: int = 0  # the book's request count at which a working order fills


@dataclass
class Book:
    """What every exchange's book shares: an account with one BTC/USDT perpetual."""

    mark: Decimal = D("50000")
    hedge_mode: bool = True
    isolated: bool = True
    leverage: int = 3
    long: LegBook = field(default_factory=LegBook)
    short: LegBook = field(default_factory=LegBook)
    coins: dict[str, Decimal] = field(default_factory=lambda: {"BTC": D("2"), "USDT": D("10000")})
    futures_usdt: Decimal = D("5000")
    orders: dict[str, OrderBook] = field(default_factory=dict)
    funding: list[tuple[int, Decimal]] = field(default_factory=lambda: [(NOW_MS - 8 * 3_600_000, D("-1.25"))])
    funding_rate: Decimal = D("0.0001")
    taker_fee: Decimal = D("0.00055")
    can_withdraw: bool = False
    ips: tuple[str, ...] = ("203.0.113.7",)
    # Late-fill mode, as Bybit and OKX may behave: an accepted order fills only `fill_after` requests later
    # (whatever they ask), and lookups do not see it for `lookup_lag` requests after it was accepted.
    fill_after: int = 0
    lookup_lag: int = 0
    requests_seen: int = 0
    # How far the exchange's server time runs ahead of the wall clock ccxt measures it against.
    clock_offset_seconds: float = 0.0
    _ids: Any = field(default_factory=lambda: itertools.count(1001))
    _deferred: dict[str, Callable[[], OrderBook]] = field(default_factory=dict)

    def server_ms(self) -> int:
        """Return the exchange's server time: the wall clock ccxt compares it with, plus the book's offset."""
        return int((time.time() + self.clock_offset_seconds) * 1000)

    def leg(self, side: str) -> LegBook:
        """Return the leg named `side` ("long" or "short")."""
        return self.long if side == "long" else self.short

    def advance(self) -> None:
        """Count one request to the exchange and fill the working orders that are due."""
        self.requests_seen += 1
        for client_id, order in list(self.orders.items()):
            if order.working and self.requests_seen >= order.fills_at:
                done = self._deferred.pop(client_id)()
                done.visible_from = order.visible_from
                self.orders[client_id] = done

    def accept(self, client_id: str, side: str, position_side: str, amount: Decimal, fill: Callable[[], OrderBook]) -> OrderBook:
        """Take an order: fill it now, or (late-fill mode) keep it working until it is due."""
        if self.fill_after <= 0:
            order = fill()
            order.visible_from = self.requests_seen + self.lookup_lag
            return order
        order = OrderBook(
            str(next(self._ids)), client_id, side, position_side, amount, self.mark, D(0), False, NOW_MS, working=True,
            visible_from=self.requests_seen + self.lookup_lag, fills_at=self.requests_seen + self.fill_after,
        )
        self.orders[client_id] = order

        def finish() -> OrderBook:
            done = fill()
            done.order_id = order.order_id
            return done

        self._deferred[client_id] = finish
        return order

    def visible(self, client_id: str) -> OrderBook | None:
        """Return the order as lookups see it: None while the lookup lag hides it."""
        order = self.orders.get(client_id)
        if order is None or self.requests_seen < order.visible_from:
            return None
        return order

    def fill_spot(self, client_id: str, side: str, amount: Decimal) -> OrderBook:
        """Fill a spot market order at the mark and move the coins."""
        sign = -1 if side == "sell" else 1
        self.coins["BTC"] = self.coins.get("BTC", D(0)) + sign * amount
        self.coins["USDT"] = self.coins.get("USDT", D(0)) - sign * amount * self.mark
        order = OrderBook(str(next(self._ids)), client_id, side, "", amount, self.mark, amount * self.mark * self.taker_fee, False, NOW_MS)
        self.orders[client_id] = order
        return order

    def fill(self, client_id: str, side: str, position_side: str, amount: Decimal, reduce: bool) -> OrderBook:
        """Fill a market order at the mark and move the leg."""
        leg = self.leg(position_side)
        opening = (side == "sell") == (position_side == "short")
        if opening:
            notional = leg.size * leg.entry + amount * self.mark
            leg.size += amount
            leg.entry = notional / leg.size
            if self.isolated:
                leg.margin += amount * self.mark / self.leverage
        else:
            if amount > leg.size:
                raise ValueError("reduce beyond the leg")
            if self.isolated and leg.size:
                leg.margin -= leg.margin * amount / leg.size
            leg.size -= amount
            if leg.size == 0:
                leg.entry = D(0)
        order = OrderBook(str(next(self._ids)), client_id, side, position_side, amount, self.mark, amount * self.mark * self.taker_fee, reduce, NOW_MS)
        self.orders[client_id] = order
        return order


Routes = dict[tuple[str, str], Callable[[RecordedRequest], Any] | Any]


def session_for(routes: Routes) -> RecordingSession:
    """Return a recording session answering `routes`."""
    return RecordingSession(routes)


# ---------------------------------------------------------------- Bybit v5


def _bybit(result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": NOW_MS}


@dataclass
class BybitBook(Book):
    """A Bybit unified trading account (UTA) with BTCUSDT linear."""

    account_margin_mode: str = "ISOLATED_MARGIN"
    uta: int = 1
    reject_order: tuple[int, str] | None = None
    # More instruments listed beside BTCUSDT, by category ("linear", "inverse") and status ("Trading", "PreLaunch")
    listed: list[dict[str, Any]] = field(default_factory=list)
    # The symbol and positionIdx each order was sent with (by orderLinkId), echoed by the order endpoints
    sent_as: dict[str, tuple[str, int]] = field(default_factory=dict)

    def routes(self) -> Routes:
        """Answer the Bybit v5 endpoints hedgebot uses."""
        return {
            ("GET", "/v5/market/time"): lambda r: {**_bybit({"timeSecond": str(self.server_ms() // 1000), "timeNano": str(self.server_ms() * 1_000_000)}), "time": self.server_ms()},
            ("GET", "/v5/market/instruments-info"): self._instruments,
            ("GET", "/v5/user/query-api"): lambda r: _bybit(self._key()),
            ("GET", "/v5/account/info"): lambda r: _bybit(
                {"marginMode": self.account_margin_mode, "updatedTime": str(NOW_MS), "unifiedMarginStatus": 5 if self.uta else 1, "dcpStatus": "OFF", "timeWindow": 10, "smpGroup": 0, "isMasterTrader": False, "spotHedgingStatus": "OFF"}
            ),
            ("GET", "/v5/position/list"): lambda r: _bybit({"category": "linear", "list": self._positions(), "nextPageCursor": ""}),
            ("POST", "/v5/position/switch-mode"): self._switch_mode,
            ("POST", "/v5/account/set-margin-mode"): self._set_margin_mode,
            ("POST", "/v5/position/set-leverage"): self._set_leverage,
            ("POST", "/v5/order/create"): self._create,
            ("GET", "/v5/order/realtime"): lambda r: _bybit({"category": "linear", "list": self._orders(r, history=False), "nextPageCursor": ""}),
            ("GET", "/v5/order/history"): lambda r: _bybit({"category": "linear", "list": self._orders(r, history=True), "nextPageCursor": ""}),
            ("POST", "/v5/position/add-margin"): self._add_margin,
            ("GET", "/v5/account/wallet-balance"): lambda r: _bybit({"list": [self._wallet()]}),
            ("GET", "/v5/market/tickers"): lambda r: _bybit({"category": "linear", "list": [self._ticker()]}),
            ("GET", "/v5/market/risk-limit"): lambda r: _bybit({"category": "linear", "list": self._risk_limits(), "nextPageCursor": ""}),
            ("GET", "/v5/execution/list"): lambda r: _bybit({"category": "linear", "list": self._funding_executions(), "nextPageCursor": ""}),
            ("POST", "/v5/asset/transfer/inter-transfer"): lambda r: Reply(_bybit({}, 10005, "Permission denied, please check your API key permissions.")),
        }

    def _instruments(self, request: RecordedRequest) -> dict[str, Any]:
        category = request.query.get("category")
        if request.query.get("status") == "PreLaunch" or category == "inverse":
            # Bybit lists pre-launch contracts only when asked for that status
            wanted = [i for i in self.listed if i["category"] == category and (i["status"] == "PreLaunch") == (request.query.get("status") == "PreLaunch")]
            return _bybit({"category": category, "list": [{k: v for k, v in i.items() if k != "category"} for i in wanted], "nextPageCursor": ""})
        if request.query.get("category") == "spot":
            return _bybit(
                {
                    "category": "spot",
                    "list": [
                        {
                            "symbol": "BTCUSDT",
                            "baseCoin": "BTC",
                            "quoteCoin": "USDT",
                            "innovation": "0",
                            "status": "Trading",
                            "marginTrading": "utaOnly",
                            "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048", "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
                            "priceFilter": {"tickSize": "0.01"},
                        }
                    ],
                }
            )
        return _bybit(
            {
                "category": "linear",
                "list": [
                    {
                        "symbol": "BTCUSDT",
                        "contractType": "LinearPerpetual",
                        "status": "Trading",
                        "baseCoin": "BTC",
                        "quoteCoin": "USDT",
                        "launchTime": "1585526400000",
                        "deliveryTime": "0",
                        "deliveryFeeRate": "",
                        "priceScale": "2",
                        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
                        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
                        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001", "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "119.000", "minNotionalValue": "5"},
                        "unifiedMarginTrade": True,
                        "fundingInterval": 480,
                        "settleCoin": "USDT",
                        "copyTrading": "both",
                        "upperFundingRate": "0.005",
                        "lowerFundingRate": "-0.005",
                    }
                ] + [{k: v for k, v in i.items() if k != "category"} for i in self.listed if i["category"] == "linear" and i["status"] != "PreLaunch"],
                "nextPageCursor": "",
            }
        )

    def _key(self) -> dict[str, Any]:
        wallet = ["AccountTransfer", "Withdraw"] if self.can_withdraw else ["AccountTransfer"]
        return {
            "id": "13579",
            "note": "hedgebot",
            "apiKey": "XXXXXXXXXXXXXXXXXX",
            "readOnly": 0,
            "secret": "",
            "permissions": {"ContractTrade": ["Order", "Position"], "Spot": ["SpotTrade"], "Wallet": wallet, "Options": [], "Derivatives": [], "CopyTrading": [], "BlockTrade": [], "Exchange": [], "NFT": [], "Affiliate": []},
            "ips": list(self.ips) or ["*"],
            "type": 1,
            "deadlineDay": 66,
            "expiredAt": "2024-12-31T00:00:00Z",
            "createdAt": "2023-10-01T00:00:00Z",
            "unified": 0,
            "uta": self.uta,
            "userID": 24617703,
            "inviterID": 0,
            "vipLevel": "No VIP",
            "mktMakerLevel": "0",
            "affiliateID": 0,
        }

    def _position(self, idx: int, leg: LegBook) -> dict[str, Any]:
        side = "" if leg.size == 0 else ("Buy" if idx == 1 else "Sell")
        return {
            "positionIdx": idx,
            "riskId": 1,
            "riskLimitValue": "2000000",
            "symbol": "BTCUSDT",
            "side": side,
            "size": str(leg.size),
            "avgPrice": str(leg.entry),
            "positionValue": str(leg.size * leg.entry),
            "tradeMode": 1 if self.isolated else 0,
            "autoAddMargin": 0,
            "positionStatus": "Normal",
            "leverage": str(self.leverage),
            "markPrice": str(self.mark),
            "liqPrice": "",
            "bustPrice": "",
            "positionIM": str(leg.margin),
            "positionMM": "0",
            "positionBalance": str(leg.margin),
            "takeProfit": "0.00",
            "stopLoss": "0.00",
            "trailingStop": "0.00",
            "sessionAvgPrice": "",
            "unrealisedPnl": "0",
            "curRealisedPnl": "0",
            "cumRealisedPnl": "0",
            "adlRankIndicator": 0,
            "createdTime": str(NOW_MS - 86_400_000),
            "updatedTime": str(NOW_MS),
            "seq": 8172241024,
            "isReduceOnly": False,
            "mmrSysUpdatedTime": "",
            "leverageSysUpdatedTime": "",
        }

    def _positions(self) -> list[dict[str, Any]]:
        if not self.hedge_mode:
            return [self._position(0, self.short)]
        return [self._position(1, self.long), self._position(2, self.short)]

    def _switch_mode(self, request: RecordedRequest) -> Any:
        wanted = int(request.params["mode"]) == 3
        if wanted == self.hedge_mode:
            return Reply(_bybit({}, 110025, "Position mode is not modified"))
        if self.long.size or self.short.size:
            return Reply(_bybit({}, 110024, "You have an existing position, so position mode cannot be switched"))
        self.hedge_mode = wanted
        return _bybit({})

    def _set_margin_mode(self, request: RecordedRequest) -> Any:
        self.account_margin_mode = request.params["setMarginMode"]
        self.isolated = self.account_margin_mode == "ISOLATED_MARGIN"
        return _bybit({"reasons": []}, 0, "Request accepted")

    def _set_leverage(self, request: RecordedRequest) -> Any:
        wanted = int(D(request.params["buyLeverage"]))
        if wanted == self.leverage:
            return Reply(_bybit({}, 110043, "Set leverage not modified"))
        self.leverage = wanted
        return _bybit({})

    def _create(self, request: RecordedRequest) -> Any:
        params = request.params
        if self.reject_order is not None:
            code, msg = self.reject_order
            return Reply(_bybit({}, code, msg))
        client_id = params.get("orderLinkId", "")
        if client_id in self.orders:
            return Reply(_bybit({}, 110072, "OrderLinkedID is duplicate"))
        side, qty = params["side"].lower(), D(params["qty"])
        if params["category"] == "spot":
            order = self.accept(client_id, side, "", qty, lambda: self.fill_spot(client_id, side, qty))
            return _bybit({"orderId": order.order_id, "orderLinkId": client_id})
        idx = int(params.get("positionIdx", 0))
        self.sent_as[client_id] = (params["symbol"], idx)
        if self.hedge_mode != (idx in (1, 2)):
            return Reply(_bybit({}, 10001, "position idx not match position mode"))
        position_side = "long" if idx == 1 else "short"
        reduce = bool(params.get("reduceOnly"))
        order = self.accept(client_id, side, position_side, qty, lambda: self.fill(client_id, side, position_side, qty, reduce))
        return _bybit({"orderId": order.order_id, "orderLinkId": client_id})

    def _order(self, order: OrderBook) -> dict[str, Any]:
        return {
            "orderId": order.order_id,
            "orderLinkId": order.client_id,
            "blockTradeId": "",
            "symbol": self.sent_as.get(order.client_id, ("BTCUSDT", 0))[0],
            "price": str(order.price * D("1.05") if order.side == "buy" else order.price * D("0.95")),
            "qty": str(order.amount),
            "side": order.side.capitalize(),
            "isLeverage": "",
            "positionIdx": self.sent_as[order.client_id][1] if order.client_id in self.sent_as else {"long": 1, "short": 2}.get(order.position_side, 0),
            "orderStatus": "New" if order.working else "Filled",
            "createType": "CreateByUser",
            "cancelType": "UNKNOWN",
            "rejectReason": "EC_NoError",
            "avgPrice": "" if order.working else str(order.price),
            "leavesQty": str(order.amount) if order.working else "0.000",
            "leavesValue": str(order.amount * order.price) if order.working else "0",
            "cumExecQty": "0.000" if order.working else str(order.amount),
            "cumExecValue": "0" if order.working else str(order.amount * order.price),
            "cumExecFee": "0" if order.working else str(order.fee),
            "cumFeeDetail": {} if order.working else {"USDT": str(order.fee)},
            "timeInForce": "IOC",
            "orderType": "Market",
            "stopOrderType": "",
            "orderIv": "",
            "triggerPrice": "0.00",
            "takeProfit": "0.00",
            "stopLoss": "0.00",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": str(order.price),
            "reduceOnly": order.reduce,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpslMode": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "placeType": "",
            "createdTime": str(order.created),
            "updatedTime": str(order.created + 3),
        }

    def _orders(self, request: RecordedRequest, history: bool) -> list[dict[str, Any]]:
        wanted = request.query.get("orderLinkId")
        spot = request.query.get("category") == "spot"
        start, end = int(request.query.get("startTime", 0)), int(request.query.get("endTime", 2**62))
        candidates = [self.visible(wanted)] if wanted else [self.visible(cid) for cid in self.orders]
        # The realtime list holds working orders; ended ones are in the history only (within its window).
        found = [
            o for o in candidates
            if o is not None and spot == (o.position_side == "") and history != o.working
            and (not history or start <= o.created <= end)
        ]
        return [self._order(o) for o in found][: int(request.query.get("limit", 20))]

    def _add_margin(self, request: RecordedRequest) -> Any:
        params = request.params
        leg = self.short if int(params["positionIdx"]) == 2 else self.long
        if leg.size == 0:
            return Reply(_bybit({}, 110021, "Position is zero"))
        leg.margin += D(params["margin"])
        position = self._position(int(params["positionIdx"]), leg)
        return _bybit({key: position[key] for key in ("symbol", "positionIdx", "riskId", "riskLimitValue", "size", "avgPrice", "liqPrice", "bustPrice", "markPrice", "positionValue", "leverage", "autoAddMargin", "positionStatus", "positionIM", "positionMM", "takeProfit", "stopLoss", "trailingStop", "unrealisedPnl", "cumRealisedPnl", "createdTime", "updatedTime")} | {"category": "linear"})

    def _wallet(self) -> dict[str, Any]:
        coins = []
        for coin, amount in self.coins.items():
            coins.append(
                {
                    "coin": coin,
                    "equity": str(amount),
                    "usdValue": str(amount * (self.mark if coin == "BTC" else 1)),
                    "walletBalance": str(amount),
                    "free": "",
                    "locked": "0",
                    "spotHedgingQty": "0",
                    "borrowAmount": "0",
                    "availableToWithdraw": "",
                    "accruedInterest": "0",
                    "totalOrderIM": "0",
                    "totalPositionIM": str(self.short.margin + self.long.margin) if coin == "USDT" else "0",
                    "totalPositionMM": "0",
                    "unrealisedPnl": "0",
                    "cumRealisedPnl": "0",
                    "bonus": "0",
                    "marginCollateral": True,
                    "collateralSwitch": True,
                }
            )
        usdt = self.coins.get("USDT", D(0))
        return {
            "accountType": "UNIFIED",
            "accountIMRate": "0",
            "accountMMRate": "0",
            "totalEquity": str(usdt),
            "totalWalletBalance": str(usdt),
            "totalMarginBalance": str(usdt),
            "totalAvailableBalance": str(usdt - self.short.margin - self.long.margin),
            "totalPerpUPL": "0",
            "totalInitialMargin": str(self.short.margin + self.long.margin),
            "totalMaintenanceMargin": "0",
            "accountLTV": "0",
            "coin": coins,
        }

    def _ticker(self) -> dict[str, Any]:
        return {
            "symbol": "BTCUSDT",
            "lastPrice": str(self.mark),
            "indexPrice": str(self.mark),
            "markPrice": str(self.mark),
            "prevPrice24h": str(self.mark),
            "price24hPcnt": "0",
            "highPrice24h": str(self.mark),
            "lowPrice24h": str(self.mark),
            "prevPrice1h": str(self.mark),
            "openInterest": "50000",
            "openInterestValue": "2500000000",
            "turnover24h": "1000000",
            "volume24h": "20",
            "fundingRate": str(self.funding_rate),
            "nextFundingTime": str(NOW_MS + 3_600_000),
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "ask1Size": "1",
            "bid1Price": str(self.mark),
            "ask1Price": str(self.mark),
            "bid1Size": "1",
            "basis": "",
        }

    def _risk_limits(self) -> list[dict[str, Any]]:
        rows = [("2000000", "0.005", "0.01", "100.00", "0"), ("3600000", "0.0054", "0.0108", "92.59", "800"), ("5200000", "0.0058", "0.0116", "86.20", "2240")]
        return [
            {"id": i + 1, "symbol": "BTCUSDT", "riskLimitValue": cap, "maintenanceMargin": mmr, "initialMargin": im, "isLowestRisk": 1 if i == 0 else 0, "maxLeverage": lev, "mmDeduction": ded}
            for i, (cap, mmr, im, lev, ded) in enumerate(rows)
        ]

    def _funding_executions(self) -> list[dict[str, Any]]:
        return [
            {
                "symbol": "BTCUSDT",
                "orderType": "UNKNOWN",
                "underlyingPrice": "",
                "orderLinkId": "",
                "orderId": "1672128000-8-592324-1-2",
                "stopOrderType": "UNKNOWN",
                "execTime": str(t),
                "feeCurrency": "USDT",
                "createType": "",
                "feeRate": str(self.funding_rate),
                "tradeIv": "",
                "blockTradeId": "",
                "markPrice": str(self.mark),
                "execPrice": str(self.mark),
                "markIv": "",
                "orderQty": "0",
                "orderPrice": "0",
                "execValue": str(self.short.size * self.mark),
                "closedSize": "0",
                "execType": "Funding",
                "seq": 9_000_000_000 + i,
                "side": "Sell",
                "indexPrice": "",
                "leavesQty": "0",
                "isMaker": False,
                "execFee": str(-amount),
                "execId": f"exec-{i}",
                "marketUnit": "",
                "execQty": str(self.short.size),
            }
            for i, (t, amount) in enumerate(self.funding)
        ]


# ---------------------------------------------------------------- OKX v5


def _okx(data: list[Any], code: str = "0", msg: str = "") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


CT_VAL = D("0.01")  # BTC per contract of BTC-USDT-SWAP


@dataclass
class OkxBook(Book):
    """An OKX trading account (single-currency margin, account level 2) with BTC-USDT-SWAP."""

    account_level: str = "2"
    tiers_by_mode: dict[str, str] = field(default_factory=dict)
    reject_order: tuple[str, str] | None = None
    # More instruments listed beside BTC-USDT-SWAP, each with its instType ("SWAP", "FUTURES")
    listed: list[dict[str, Any]] = field(default_factory=list)
    # The instrument each order was sent for (by clOrdId), echoed by the order endpoints
    inst_ids: dict[str, str] = field(default_factory=dict)

    def routes(self) -> Routes:
        """Answer the OKX v5 endpoints hedgebot uses."""
        return {
            ("GET", "/api/v5/public/time"): lambda r: _okx([{"ts": str(self.server_ms())}]),
            ("GET", "/api/v5/public/instruments"): self._instruments,
            ("GET", "/api/v5/account/config"): lambda r: _okx([self._config()]),
            ("POST", "/api/v5/account/set-position-mode"): self._set_position_mode,
            ("GET", "/api/v5/account/positions"): lambda r: _okx(self._positions()),
            ("POST", "/api/v5/account/set-leverage"): self._set_leverage,
            ("GET", "/api/v5/account/leverage-info"): self._leverage_info,
            ("POST", "/api/v5/trade/batch-orders"): self._batch_orders,
            ("GET", "/api/v5/trade/order"): self._order_lookup,
            ("GET", "/api/v5/trade/orders-pending"): lambda r: _okx([self._okx_order(o) for o in self._listed(r, working=True)]),
            ("GET", "/api/v5/trade/orders-history"): lambda r: _okx([self._okx_order(o) for o in self._listed(r, working=False)]),
            ("POST", "/api/v5/account/position/margin-balance"): self._margin_balance,
            ("GET", "/api/v5/account/balance"): lambda r: _okx([self._balance()]),
            ("GET", "/api/v5/public/mark-price"): lambda r: _okx([{"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": str(self.mark), "ts": str(NOW_MS)}]),
            ("GET", "/api/v5/public/funding-rate"): lambda r: _okx([self._funding_rate()]),
            ("GET", "/api/v5/public/position-tiers"): self._tiers,
            ("GET", "/api/v5/account/bills-archive"): lambda r: _okx(self._funding_bills()),
        }

    def _instruments(self, request: RecordedRequest) -> dict[str, Any]:
        more = [i for i in self.listed if i["instType"] == request.query.get("instType")]
        if request.query.get("instType") == "FUTURES":
            return _okx(more)
        if request.query.get("instType") == "SPOT":
            return _okx(
                [
                    {
                        "alias": "", "baseCcy": "BTC", "category": "1", "ctMult": "", "ctType": "", "ctVal": "", "ctValCcy": "", "expTime": "",
                        "instFamily": "", "instId": "BTC-USDT", "instType": "SPOT", "lever": "10", "listTime": "1548133413000", "lotSz": "0.00000001",
                        "maxIcebergSz": "9999999999", "maxLmtAmt": "20000000", "maxLmtSz": "9999999999", "maxMktAmt": "1000000", "maxMktSz": "",
                        "maxStopSz": "", "maxTriggerSz": "", "maxTwapSz": "", "minSz": "0.00001", "optType": "", "quoteCcy": "USDT", "settleCcy": "",
                        "state": "live", "stk": "", "tickSz": "0.1", "uly": "",
                    }
                ]
            )
        return _okx(
            [
                {
                    "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": "linear", "ctVal": str(CT_VAL), "ctValCcy": "BTC",
                    "expTime": "", "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP", "instType": "SWAP", "lever": "100",
                    "listTime": "1573557408000", "lotSz": "0.01", "maxIcebergSz": "100000000", "maxLmtAmt": "20000000", "maxLmtSz": "100000000",
                    "maxMktAmt": "", "maxMktSz": "12000", "maxStopSz": "12000", "maxTriggerSz": "100000000", "maxTwapSz": "100000000",
                    "minSz": "0.01", "optType": "", "quoteCcy": "", "settleCcy": "USDT", "state": "live", "stk": "", "tickSz": "0.1", "uly": "BTC-USDT",
                }
            ] + more
        )

    def _config(self) -> dict[str, Any]:
        perms = "read_only,trade,withdraw" if self.can_withdraw else "read_only,trade"
        return {
            "acctLv": self.account_level, "autoLoan": False, "ctIsoMode": "automatic", "greeksType": "PA", "level": "Lv1", "levelTmp": "",
            "mgnIsoMode": "automatic", "posMode": "long_short_mode" if self.hedge_mode else "net_mode", "spotOffsetType": "",
            "uid": "44705892343619584", "label": "hedgebot", "roleType": "0", "traderInsts": [], "spotRoleType": "0", "spotTraderInsts": [],
            "opAuth": "0", "kycLv": "3", "ip": ",".join(self.ips), "perm": perms, "mainUid": "44705892343619584",
        }

    def _set_position_mode(self, request: RecordedRequest) -> Any:
        wanted = request.params["posMode"] == "long_short_mode"
        if wanted != self.hedge_mode and (self.long.size or self.short.size):
            return Reply(_okx([], "59000", "Settings failed. Close any open positions or orders before modifying settings."))
        self.hedge_mode = wanted
        return _okx([{"posMode": request.params["posMode"]}])

    def _position(self, side: str, leg: LegBook) -> dict[str, Any]:
        return {
            "adl": "1", "availPos": str(leg.size / CT_VAL), "avgPx": str(leg.entry), "cTime": str(NOW_MS - 86_400_000), "ccy": "USDT",
            "deltaBS": "", "deltaPA": "", "gammaBS": "", "gammaPA": "", "imr": "" if self.isolated else str(leg.margin),
            "instId": "BTC-USDT-SWAP", "instType": "SWAP", "interest": "", "idxPx": str(self.mark), "last": str(self.mark),
            "usdPx": "", "bePx": str(leg.entry), "lever": str(self.leverage), "liab": "", "liabCcy": "", "liqPx": "",
            "markPx": str(self.mark), "margin": str(leg.margin) if self.isolated else "", "mgnMode": "isolated" if self.isolated else "cross",
            "mgnRatio": "", "mmr": "0", "notionalUsd": str(leg.size * self.mark), "optVal": "", "pendingCloseOrdLiabVal": "",
            "pos": str(leg.size / CT_VAL), "posCcy": "", "posId": "307173036051017730" if side == "short" else "307173036051017731",
            "posSide": side, "spotInUseAmt": "", "spotInUseCcy": "", "thetaBS": "", "thetaPA": "", "tradeId": "109844", "bizRefId": "",
            "bizRefType": "", "quoteBal": "", "baseBal": "", "baseBorrowed": "", "baseInterest": "", "quoteBorrowed": "", "quoteInterest": "",
            "uTime": str(NOW_MS), "upl": "0", "uplLastPx": "0", "uplRatio": "0", "uplRatioLastPx": "0", "vegaBS": "", "vegaPA": "",
            "realizedPnl": "0", "pnl": "0", "fee": "0", "fundingFee": "0", "liqPenalty": "0", "closeOrderAlgo": [],
        }

    def _positions(self) -> list[dict[str, Any]]:
        # OKX lists only non-empty positions.
        return [self._position(side, leg) for side, leg in (("long", self.long), ("short", self.short)) if leg.size > 0]

    def _set_leverage(self, request: RecordedRequest) -> Any:
        params = request.params
        if params["mgnMode"] == "isolated" and self.hedge_mode and params.get("posSide") not in ("long", "short"):
            return Reply(_okx([], "51000", "Parameter posSide error"))
        self.leverage = int(params["lever"])
        self.isolated = params["mgnMode"] == "isolated"
        return _okx([{"lever": str(params["lever"]), "mgnMode": params["mgnMode"], "instId": params["instId"], "posSide": params.get("posSide", "")}])

    def _leverage_info(self, request: RecordedRequest) -> Any:
        mode = request.query["mgnMode"]
        sides = ("long", "short") if mode == "isolated" and self.hedge_mode else ("net",)
        return _okx([{"instId": "BTC-USDT-SWAP", "mgnMode": mode, "posSide": side, "lever": str(self.leverage)} for side in sides])

    def _batch_orders(self, request: RecordedRequest) -> Any:
        assert isinstance(request.body, list), "ccxt sends OKX orders as a list to batch-orders"
        order = request.body[0]
        client_id = order.get("clOrdId", "")
        if self.reject_order is not None:
            code, msg = self.reject_order
            return Reply(_okx([{"clOrdId": client_id, "ordId": "", "sCode": code, "sMsg": msg, "tag": "", "ts": str(NOW_MS)}], "1", "All operations failed"))
        if client_id in self.orders:
            return Reply(_okx([{"clOrdId": client_id, "ordId": "", "sCode": "51016", "sMsg": "Duplicated clOrdId", "tag": "", "ts": str(NOW_MS)}], "1", "All operations failed"))
        side = order["side"]
        if order["instId"] == "BTC-USDT":
            qty = D(order["sz"])
            filled = self.accept(client_id, side, "", qty, lambda: self.fill_spot(client_id, side, qty))
            return _okx([{"clOrdId": client_id, "ordId": filled.order_id, "sCode": "0", "sMsg": "Order placed", "tag": "", "ts": str(NOW_MS)}])
        pos_side = order.get("posSide", "net")
        self.inst_ids[client_id] = order["instId"]
        if self.hedge_mode != (pos_side in ("long", "short")):
            return Reply(_okx([{"clOrdId": client_id, "ordId": "", "sCode": "51000", "sMsg": "Parameter posSide error", "tag": "", "ts": str(NOW_MS)}], "1", "All operations failed"))
        amount, reduce = D(order["sz"]) * CT_VAL, bool(order.get("reduceOnly"))
        filled = self.accept(client_id, side, pos_side, amount, lambda: self.fill(client_id, side, pos_side, amount, reduce))
        return _okx([{"clOrdId": client_id, "ordId": filled.order_id, "sCode": "0", "sMsg": "Order placed", "tag": "", "ts": str(NOW_MS)}])

    def _order_lookup(self, request: RecordedRequest) -> Any:
        order = self.visible(request.query.get("clOrdId", ""))
        spot = request.query.get("instId") == "BTC-USDT"
        if order is None or spot != (order.position_side == ""):
            return Reply(_okx([], "51603", "Order does not exist"))
        return _okx([self._okx_order(order)])

    def _listed(self, request: RecordedRequest, working: bool) -> list[OrderBook]:
        """Return the visible orders of the asked instrument: working ones (orders-pending) or ended ones in [begin, end] (orders-history)."""
        spot = request.query.get("instId") == "BTC-USDT"
        begin, end = int(request.query.get("begin", 0)), int(request.query.get("end", 2**62))
        found = [
            o for o in (self.visible(cid) for cid in self.orders)
            if o is not None and spot == (o.position_side == "") and o.working == working and (working or begin <= o.created <= end)
        ]
        return found[: int(request.query.get("limit", 100))]

    def _okx_order(self, order: OrderBook) -> dict[str, Any]:
        """Return an order as OKX's order endpoints show it."""
        spot = order.position_side == ""
        contracts = order.amount if spot else order.amount / CT_VAL
        done = "0" if order.working else str(contracts)
        return (
                {
                    "accFillSz": done, "algoClOrdId": "", "algoId": "", "attachAlgoClOrdId": "", "attachAlgoOrds": [], "avgPx": "" if order.working else str(order.price),
                    "cTime": str(order.created), "cancelSource": "", "cancelSourceReason": "", "category": "normal", "ccy": "", "clOrdId": order.client_id,
                    "fee": str(-order.fee), "feeCcy": "USDT", "fillPx": "" if order.working else str(order.price), "fillSz": done, "fillTime": "" if order.working else str(order.created + 2),
                    "instId": "BTC-USDT" if spot else self.inst_ids.get(order.client_id, "BTC-USDT-SWAP"),
                    "instType": "SPOT" if spot else ("SWAP" if self.inst_ids.get(order.client_id, "-SWAP").endswith("-SWAP") else "FUTURES"), "isTpLimit": "false", "lever": str(self.leverage), "linkedAlgoOrd": {"algoId": ""},
                    "ordId": order.order_id, "ordType": "market", "pnl": "0", "posSide": order.position_side, "px": "", "pxType": "", "pxUsd": "", "pxVol": "",
                    "quickMgnType": "", "rebate": "0", "rebateCcy": "USDT", "reduceOnly": "true" if order.reduce else "false", "side": order.side,
                    "slOrdPx": "", "slTriggerPx": "", "slTriggerPxType": "", "source": "", "state": "live" if order.working else "filled", "stpId": "", "stpMode": "cancel_maker",
                    "sz": str(contracts), "tag": "", "tdMode": "cash" if spot else ("isolated" if self.isolated else "cross"), "tgtCcy": "base_ccy" if spot else "", "tpOrdPx": "", "tpTriggerPx": "",
                    "tpTriggerPxType": "", "tradeId": "12345", "uTime": str(order.created + 2),
                }
        )

    def _margin_balance(self, request: RecordedRequest) -> Any:
        params = request.params
        leg = self.leg(params["posSide"])
        if leg.size == 0:
            return Reply(_okx([], "51023", "Position does not exist."))
        amount = D(str(params["amt"]))
        leg.margin += amount if params["type"] == "add" else -amount
        return _okx([{"amt": str(params["amt"]), "ccy": "USDT", "instId": "BTC-USDT-SWAP", "leverage": str(self.leverage), "posSide": params["posSide"], "type": params["type"]}])

    def _balance(self) -> dict[str, Any]:
        details = []
        for coin, amount in self.coins.items():
            frozen = self.short.margin + self.long.margin if coin == "USDT" else D(0)
            details.append(
                {
                    "availBal": str(amount - frozen), "availEq": str(amount - frozen), "borrowFroz": "", "cashBal": str(amount), "ccy": coin,
                    "crossLiab": "", "disEq": str(amount), "eq": str(amount), "eqUsd": str(amount * (self.mark if coin == "BTC" else 1)),
                    "smtSyncEq": "0", "spotCopyTradingEq": "0", "fixedBal": "0", "frozenBal": str(frozen), "imr": "", "interest": "",
                    "isoEq": str(frozen), "isoLiab": "", "isoUpl": "0", "liab": "", "maxLoan": "", "mgnRatio": "", "mmr": "", "notionalLever": "",
                    "ordFrozen": "0", "rewardBal": "0", "spotInUseAmt": "", "clSpotInUseAmt": "", "maxSpotInUse": "", "spotIsoBal": "0",
                    "stgyEq": "0", "twap": "0", "uTime": str(NOW_MS), "upl": "0", "uplLiab": "", "spotBal": "", "openAvgPx": "", "accAvgPx": "",
                    "spotUpl": "", "spotUplRatio": "", "totalPnl": "", "totalPnlRatio": "",
                }
            )
        return {
            "adjEq": "", "borrowFroz": "", "details": details, "imr": "", "isoEq": "0", "mgnRatio": "", "mmr": "", "notionalUsd": "",
            "notionalUsdForBorrow": "", "notionalUsdForFutures": "", "notionalUsdForOption": "", "notionalUsdForSwap": "", "ordFroz": "",
            "totalEq": str(self.coins.get("USDT", D(0))), "uTime": str(NOW_MS), "upl": "",
        }

    def _funding_rate(self) -> dict[str, Any]:
        return {
            "formulaType": "noRate", "fundingRate": str(self.funding_rate), "fundingTime": str(NOW_MS + 3_600_000), "impactValue": "",
            "instId": "BTC-USDT-SWAP", "instType": "SWAP", "interestRate": "", "maxFundingRate": "0.00375", "method": "current_period",
            "minFundingRate": "-0.00375", "nextFundingRate": "", "nextFundingTime": str(NOW_MS + 3_600_000 + 28_800_000), "premium": "0.0001",
            "settFundingRate": str(self.funding_rate), "settState": "settled", "ts": str(NOW_MS),
        }

    def _tiers(self, request: RecordedRequest) -> Any:
        # minSz/maxSz count contracts of 0.01 BTC.
        rows = [("1", "0", "2500", "0.004", "0.005", "125"), ("2", "2501", "5000", "0.005", "0.00667", "100"), ("3", "5001", "10000", "0.0065", "0.01", "75")]
        return _okx(
            [
                {"baseMaxLoan": "", "imr": imr, "instFamily": "BTC-USDT", "instId": "", "maxLever": lev, "maxSz": hi, "minSz": lo, "mmr": mmr,
                 "optMgnFactor": "0", "quoteMaxLoan": "", "tier": tier, "uly": "BTC-USDT"}
                for tier, lo, hi, mmr, imr, lev in rows
            ]
        )

    def _funding_bills(self) -> list[dict[str, Any]]:
        return [
            {
                "bal": "9998.75", "balChg": str(amount), "billId": f"62371883868979{i}", "ccy": "USDT", "clOrdId": "", "execType": "", "fee": "0",
                "fillFwdPx": "", "fillIdxPx": "", "fillMarkPx": "", "fillMarkVol": "", "fillPxUsd": "", "fillPxVol": "", "fillTime": str(t),
                "from": "", "instId": "BTC-USDT-SWAP", "instType": "SWAP", "interest": "0", "mgnMode": "isolated", "notes": "", "ordId": "",
                "pnl": str(amount), "posBal": "0", "posBalChg": "0", "px": str(self.mark), "subType": "174" if amount > 0 else "173",
                "sz": str(self.short.size / CT_VAL), "tag": "", "to": "", "tradeId": "", "ts": str(t), "type": "8",
            }
            for i, (t, amount) in enumerate(self.funding)
        ]


# ---------------------------------------------------------------- Aster futures v3


def _aster_error(code: int, msg: str, status: int = 400) -> Reply:
    return Reply({"code": code, "msg": msg}, status=status)


ASTER_OK = {"code": 200, "msg": "success"}


@dataclass
class AsterBook(Book):
    """An Aster Pro API account: separate spot and perpetual wallets, Binance-compatible endpoints."""

    multi_assets: bool = False
    transfers: dict[str, tuple[str, Decimal, str, int]] = field(default_factory=dict)
    margin_history: list[dict[str, Any]] = field(default_factory=list)

    def routes(self) -> Routes:
        """Answer the Aster v3 endpoints hedgebot uses."""
        return {
            ("GET", "/fapi/v3/time"): lambda r: {"serverTime": self.server_ms()},
            ("GET", "/api/v3/time"): lambda r: {"serverTime": self.server_ms()},
            ("GET", "/fapi/v3/exchangeInfo"): lambda r: self._futures_info(),
            ("GET", "/api/v3/exchangeInfo"): lambda r: self._spot_info(),
            ("GET", "/fapi/v3/positionSide/dual"): lambda r: {"dualSidePosition": self.hedge_mode},
            ("POST", "/fapi/v3/positionSide/dual"): self._set_dual,
            ("GET", "/fapi/v3/multiAssetsMargin"): lambda r: {"multiAssetsMargin": self.multi_assets},
            ("GET", "/fapi/v3/positionRisk"): lambda r: self._position_risk(),
            ("POST", "/fapi/v3/marginType"): self._margin_type,
            ("POST", "/fapi/v3/leverage"): self._leverage,
            ("POST", "/fapi/v3/order"): self._new_order,
            ("GET", "/fapi/v3/order"): self._query_order,
            ("POST", "/api/v3/order"): self._new_spot_order,
            ("GET", "/api/v3/order"): self._query_order,
            ("POST", "/fapi/v3/positionMargin"): self._position_margin,
            ("GET", "/fapi/v3/positionMargin/history"): lambda r: list(self.margin_history),
            ("GET", "/fapi/v3/balance"): lambda r: self._futures_balance(),
            ("GET", "/api/v3/account"): lambda r: self._spot_account(),
            ("GET", "/fapi/v3/premiumIndex"): lambda r: self._premium_index(),
            ("GET", "/fapi/v3/leverageBracket"): lambda r: self._brackets(),
            ("GET", "/fapi/v3/income"): lambda r: self._income(),
            ("POST", "/api/v3/asset/wallet/transfer"): self._transfer,
        }

    def _futures_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC", "serverTime": NOW_MS, "futuresType": "U_MARGINED", "rateLimits": [], "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [
                {
                    "symbol": "BTCUSDT", "pair": "BTCUSDT", "contractType": "PERPETUAL", "deliveryDate": 4133404800000, "onboardDate": 1569398400000,
                    "status": "TRADING", "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": "BTC", "quoteAsset": "USDT",
                    "marginAsset": "USDT", "pricePrecision": 1, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
                    "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500", "liquidationFee": "0.015000",
                    "marketTakeBound": "0.05",
                    "filters": [
                        {"minPrice": "1", "maxPrice": "1000000", "filterType": "PRICE_FILTER", "tickSize": "0.1"},
                        {"stepSize": "0.001", "filterType": "LOT_SIZE", "maxQty": "500", "minQty": "0.001"},
                        {"stepSize": "0.001", "filterType": "MARKET_LOT_SIZE", "maxQty": "100", "minQty": "0.001"},
                        {"limit": 200, "filterType": "MAX_NUM_ORDERS"},
                        {"limit": 10, "filterType": "MAX_NUM_ALGO_ORDERS"},
                        {"notional": "5", "filterType": "MIN_NOTIONAL"},
                        {"multiplierDown": "0.9500", "multiplierUp": "1.0500", "multiplierDecimal": "4", "filterType": "PERCENT_PRICE"},
                    ],
                    "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX", "HIDDEN"],
                }
            ],
        }

    def _spot_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC", "serverTime": NOW_MS, "rateLimits": [], "exchangeFilters": [],
            "assets": [{"asset": "BTC"}, {"asset": "USDT"}],
            "symbols": [
                {
                    "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "pricePrecision": 2, "quantityPrecision": 5,
                    "baseAssetPrecision": 8, "quotePrecision": 8, "filters": [
                        {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000", "tickSize": "0.01"},
                        {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000", "stepSize": "0.00001"},
                        {"filterType": "MIN_NOTIONAL", "minNotional": "5"},
                    ],
                    "orderTypes": ["LIMIT", "MARKET"], "ocoAllowed": False, "symbol": "BTCUSDT",
                }
            ],
        }

    def _set_dual(self, request: RecordedRequest) -> Any:
        wanted = request.params["dualSidePosition"] == "true"
        if wanted == self.hedge_mode:
            return _aster_error(-4059, "No need to change position side.")
        if self.long.size or self.short.size:
            return _aster_error(-4068, "Position side cannot be changed if there exists position.")
        self.hedge_mode = wanted
        return ASTER_OK

    def _risk_row(self, side: str, leg: LegBook) -> dict[str, Any]:
        amount = -leg.size if side == "SHORT" else leg.size
        return {
            "symbol": "BTCUSDT", "positionAmt": str(amount), "entryPrice": str(leg.entry), "markPrice": str(self.mark),
            "unRealizedProfit": "0.00000000", "liquidationPrice": "0", "leverage": str(self.leverage), "maxNotionalValue": "25000000",
            "marginType": "isolated" if self.isolated else "cross", "isolatedMargin": str(leg.margin) if self.isolated else "0.00000000",
            "isAutoAddMargin": "false", "positionSide": side, "notional": str(amount * self.mark),
            "isolatedWallet": str(leg.margin) if self.isolated else "0", "updateTime": NOW_MS,
        }

    def _position_risk(self) -> list[dict[str, Any]]:
        if not self.hedge_mode:
            return [self._risk_row("BOTH", self.short)]
        return [self._risk_row("LONG", self.long), self._risk_row("SHORT", self.short)]

    def _margin_type(self, request: RecordedRequest) -> Any:
        wanted = request.params["marginType"] == "ISOLATED"
        if wanted == self.isolated:
            return _aster_error(-4046, "No need to change margin type.")
        self.isolated = wanted
        return ASTER_OK

    def _leverage(self, request: RecordedRequest) -> Any:
        self.leverage = int(request.params["leverage"])
        return {"leverage": self.leverage, "maxNotionalValue": "25000000", "symbol": "BTCUSDT"}

    def _order_json(self, order: OrderBook) -> dict[str, Any]:
        return {
            "clientOrderId": order.client_id, "cumQty": str(order.amount), "cumQuote": str(order.amount * order.price),
            "executedQty": str(order.amount), "orderId": int(order.order_id), "avgPrice": str(order.price), "origQty": str(order.amount),
            "price": "0", "reduceOnly": order.reduce, "side": order.side.upper(), "positionSide": order.position_side.upper(),
            "status": "FILLED", "stopPrice": "0", "closePosition": False, "symbol": "BTCUSDT", "timeInForce": "GTC", "type": "MARKET",
            "origType": "MARKET", "updateTime": order.created + 2, "time": order.created, "workingType": "CONTRACT_PRICE", "priceProtect": False,
        }

    def _new_order(self, request: RecordedRequest) -> Any:
        params = request.params
        client_id = params.get("newClientOrderId", "")
        if client_id in self.orders:
            return _aster_error(-4116, "ClientOrderId is duplicated.")
        side = params.get("positionSide", "BOTH")
        if self.hedge_mode != (side in ("LONG", "SHORT")):
            return _aster_error(-4061, "Order's position side does not match user's setting.")
        if self.hedge_mode and params.get("reduceOnly") is not None:
            return _aster_error(-1106, "Parameter 'reduceonly' sent when not required.")
        order = self.fill(client_id, params["side"].lower(), side.lower() if side != "BOTH" else "short", D(params["quantity"]), False)
        return self._order_json(order)

    def _new_spot_order(self, request: RecordedRequest) -> Any:
        params = request.params
        order = self.fill_spot(params.get("newClientOrderId", ""), params["side"].lower(), D(params["quantity"]))
        return {
            "symbol": "BTCUSDT", "orderId": int(order.order_id), "orderListId": -1, "clientOrderId": order.client_id,
            "updateTime": order.created, "price": "0", "avgPrice": str(order.price), "origQty": str(order.amount),
            "executedQty": str(order.amount), "cumQuote": str(order.amount * order.price), "status": "FILLED", "timeInForce": "GTC",
            "type": "MARKET", "side": order.side.upper(), "stopPrice": "0", "origType": "MARKET",
        }

    def _query_order(self, request: RecordedRequest) -> Any:
        order = self.orders.get(request.query.get("origClientOrderId", ""))
        if order is None:
            return _aster_error(-2013, "Order does not exist.")
        return self._order_json(order)

    def _position_margin(self, request: RecordedRequest) -> Any:
        params = request.params
        leg = self.leg(params["positionSide"].lower())
        if leg.size == 0:
            return _aster_error(-4054, "Cannot add position margin: position is 0.")
        amount = D(params["amount"])
        kind = int(params["type"])
        leg.margin += amount if kind == 1 else -amount
        self.margin_history.append({"amount": params["amount"], "asset": "USDT", "symbol": "BTCUSDT", "time": NOW_MS + len(self.margin_history), "type": kind, "positionSide": params["positionSide"]})
        return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.", "type": kind}

    def _futures_balance(self) -> list[dict[str, Any]]:
        used = self.short.margin + self.long.margin
        return [
            {
                "accountAlias": "SgsR", "asset": "USDT", "balance": str(self.futures_usdt), "crossWalletBalance": str(self.futures_usdt - used),
                "crossUnPnl": "0.00000000", "availableBalance": str(self.futures_usdt - used), "maxWithdrawAmount": str(self.futures_usdt - used),
                "marginAvailable": True, "updateTime": NOW_MS,
            }
        ]

    def _spot_account(self) -> dict[str, Any]:
        return {
            "feeTier": 0, "canTrade": True, "canDeposit": True, "canWithdraw": self.can_withdraw, "canBurnAsset": True, "updateTime": 0,
            "balances": [{"asset": coin, "free": str(amount), "locked": "0.00000000"} for coin, amount in self.coins.items()],
        }

    def _premium_index(self) -> dict[str, Any]:
        return {
            "symbol": "BTCUSDT", "markPrice": str(self.mark), "indexPrice": str(self.mark), "estimatedSettlePrice": str(self.mark),
            "lastFundingRate": str(self.funding_rate), "interestRate": "0.00010000", "nextFundingTime": NOW_MS + 3_600_000, "time": NOW_MS,
        }

    def _brackets(self) -> list[dict[str, Any]]:
        rows = [(1, 125, 50000, 0, "0.004", "0.0"), (2, 100, 250000, 50000, "0.005", "50.0"), (3, 50, 3000000, 250000, "0.01", "1300.0")]
        return [
            {
                "symbol": "BTCUSDT",
                "brackets": [
                    {"bracket": b, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor, "maintMarginRatio": float(mmr), "cum": float(cum)}
                    for b, lev, cap, floor, mmr, cum in rows
                ],
            }
        ]

    def _income(self) -> list[dict[str, Any]]:
        return [
            {"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE", "income": str(amount), "asset": "USDT", "info": "FUNDING_FEE", "time": t, "tranId": 9689322392 + i, "tradeId": ""}
            for i, (t, amount) in enumerate(self.funding)
        ]

    def _transfer(self, request: RecordedRequest) -> Any:
        params = request.params
        client_id = params["clientTranId"]
        if client_id in self.transfers:
            return _aster_error(-4115, "clientTranId is duplicated")
        amount = D(params["amount"])
        if params["kindType"] == "SPOT_FUTURE":
            self.coins[params["asset"]] -= amount
            self.futures_usdt += amount
        else:
            self.futures_usdt -= amount
            self.coins[params["asset"]] = self.coins.get(params["asset"], D(0)) + amount
        self.transfers[client_id] = (params["asset"], amount, params["kindType"], NOW_MS)
        return {"tranId": 21841 + len(self.transfers), "status": "SUCCESS"}
