"""Binance European options (`/eapi/v1/`) on the Binance emulator, for unmodified ccxt.

`OptionsDesk(emulator)` adds the options endpoints to an `Emulator`'s application (its
`route_installers`, through the same route table as the REST side, `binance_rest.add_routes`, and with
the refusals of `binance_answers`), so they share its signing checks, faults (a fault on path `/eapi/v1/order`
hits option orders), lookup lag, request log and weights. It lists puts and calls on BTCUSDT,
USDT-settled, at the expiries and strikes it is given, and keeps an options wallet, long
positions and orders by client id. Shapes follow Binance's options API documentation
(binance-docs.github.io/apidocs/voptions/en) and the sample responses quoted in ccxt's binance.py
(exchangeInfo `optionSymbols`, `mark`, `ticker`, `index`, `order`, `position`, `marginAccount`,
`historyOrders`, `exerciseHistory`).

It refuses what Binance refuses, with Binance's codes (docs/exchanges.md cites them):
- a price off the PRICE_FILTER tick (-4014) or below its minimum (-4013);
- a quantity below LOT_SIZE's minQty (-4004) or off its stepSize (-4023);
- a purchase the options wallet cannot pay, premium and fee (-2018 BALANCE_NOT_SUFFICIENT);
- a sale beyond the long held (a reduce-only sale: -2022; any other: writing options needs
  margin the desk never grants, -2027 OPTION_MARGIN_NOT_SUFFICIENT);
- any private request while the account has not opened options trading (-2015, as Binance
  answers a key without the options permission);
- an order on an expired or unknown symbol (-1121).

The harsh branch of each "may": an order that does not cross is cancelled at once (IOC) or rests
(GTC) but never fills later at a better price; a cancelled order with no fill is never found
again by a lookup (Binance: such orders "will not be found"); lookups lag by the emulator's
`lookup_lag_seconds`. The fee is the taker rate on the index per contract, capped at 10 % of the
premium (Binance's options fee rule as docs/exchanges.md reads it). At expiry every long is exercised in cash at the index (`realStrikePrice`) the first time
the desk is asked anything after it.

Quotes are a model: Black-Scholes at `volatility` on the BTCUSDT mark, a bid and an ask
`spread` either side of the mark, on the tick. `no_asks` empties the offer side (a chain with no
sensible quote) and `ask_over_mark` widens the ask alone.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from hedgebot.domain.options import OptionKind, as_money, black_scholes
from hedgebot.testing.binance_answers import (
    BinanceError,
    decimal_param,
    duplicate_client_id,
    invalid_order_type,
    invalid_side,
    invalid_symbol,
    key_refused,
    no_such_order,
    plain,
    reduce_only_rejected,
    write_json_atomically,
)
from hedgebot.testing.binance_book import KeySpec
from hedgebot.testing.binance_emulator import server_arguments, serve_until_interrupted
from hedgebot.testing.binance_rest import Emulator, add_routes

D = Decimal
ZERO = D(0)
YEAR_MS = 365.25 * 86400 * 1000
FEE_CAP_OF_PREMIUM = D("0.10")


def option_symbol(expiry_ms: int, strike: Decimal, kind: str = "P") -> str:
    """Return Binance's option symbol, e.g. BTC-270129-75000-P."""
    day = datetime.fromtimestamp(expiry_ms / 1000, UTC).strftime("%y%m%d")
    return f"BTC-{day}-{strike.normalize():f}-{kind}"


@dataclass
class DeskState:
    """What the options desk keeps (saved beside the emulator's own state when it has a path)."""

    expiries_ms: list[int] = field(default_factory=list)
    strikes: list[str] = field(default_factory=list)
    wallet: dict[str, str] = field(default_factory=lambda: {"USDT": "0"})
    positions: dict[str, str] = field(default_factory=dict)  # symbol -> long quantity
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # clientOrderId -> order
    exercised: list[dict[str, Any]] = field(default_factory=list)
    enabled: bool = True  # the account opened options trading


class OptionsDesk:
    """Binance's options API served on an emulator's application (see the module's docstring)."""

    def __init__(
        self, emulator: Emulator, *, expiries_ms: list[int] | None = None, strikes: list[Decimal] | None = None,
        volatility: float = 0.6, spread: Decimal = D("0.02"), tick: Decimal = D("5"), step: Decimal = D("0.01"),
        min_qty: Decimal = D("0.01"), taker_fee: Decimal = D("0.0003"), state_path: Path | None = None,
    ) -> None:
        self.emulator = emulator
        self.volatility, self.spread, self.tick, self.step, self.min_qty = volatility, spread, tick, step, min_qty
        self.taker_fee = taker_fee
        self.no_asks = False
        self.ask_over_mark: Decimal | None = None
        self.state_path = state_path
        self.state = DeskState(list(expiries_ms or []), [plain(k) for k in strikes or []])
        if state_path is not None and state_path.exists():
            self.state = DeskState(**json.loads(state_path.read_text()))
        self._visible_at: dict[str, float] = {}  # client id -> when lookups first see the order (the lookup lag)
        self.executions: list[str] = []  # every option order carried out, by client id (duplicates would show twice)
        emulator.route_installers.append(self.install)

    # ---- controls ------------------------------------------------------------------

    def save(self) -> None:
        """Write the desk's state atomically when it has a path."""
        if self.state_path is not None:
            write_json_atomically(self.state_path, self.state.__dict__)

    def deposit(self, asset: str, amount: Decimal) -> None:
        """Credit the options wallet (a transfer from spot, done by hand on Binance)."""
        self.state.wallet[asset] = plain(D(self.state.wallet.get(asset, "0")) + amount)
        self.save()

    def held(self) -> dict[str, Decimal]:
        """Return the long puts held, by symbol."""
        return {s: D(q) for s, q in self.state.positions.items() if D(q) > 0}

    # ---- the model -----------------------------------------------------------------

    def index(self) -> Decimal:
        """Return the underlying's index: the emulator's BTCUSDT mark."""
        return D(self.emulator.book.symbols["BTCUSDT"].mark)

    def _series(self) -> dict[str, tuple[int, Decimal, str]]:
        now = self.emulator.now_ms()
        return {
            option_symbol(e, D(k), kind): (e, D(k), kind)
            for e in self.state.expiries_ms if e > now for k in self.state.strikes for kind in ("P", "C")
        }

    def _quote(self, expiry_ms: int, strike: Decimal, kind: str) -> tuple[Decimal, Decimal, Decimal, float]:
        """Return (mark, bid, ask, delta): Black-Scholes at the desk's volatility, the spread either side on the tick."""
        years = max((expiry_ms - self.emulator.now_ms()) / YEAR_MS, 1e-9)
        model = black_scholes(OptionKind.PUT if kind == "P" else OptionKind.CALL, float(self.index()), float(strike), years,
                              self.volatility)
        mark = max(as_money(model.price).quantize(D("0.1")), D("0.1"))
        half = mark * self.spread
        bid = ((mark - half) / self.tick).to_integral_value(ROUND_FLOOR) * self.tick
        ask = ((mark + half) / self.tick).to_integral_value(ROUND_CEILING) * self.tick
        if self.ask_over_mark is not None:
            ask = ((mark * (1 + self.ask_over_mark)) / self.tick).to_integral_value(ROUND_CEILING) * self.tick
        return mark, max(bid, ZERO), ZERO if self.no_asks else max(ask, self.tick), model.delta

    def exercise_due(self) -> None:
        """Exercise every long whose expiry has passed, in cash at the index, as Binance does at 08:00 UTC."""
        now = self.emulator.now_ms()
        exercised = False
        for symbol, qty in list(self.state.positions.items()):
            _, day, strike_text, kind = symbol.split("-")
            expiry = next((e for e in self.state.expiries_ms if option_symbol(e, D(strike_text), kind) == symbol), None)
            if expiry is None or expiry > now:
                continue
            price, strike = self.index(), D(strike_text)
            payoff = max(strike - price, ZERO) if kind == "P" else max(price - strike, ZERO)
            self.deposit("USDT", payoff * D(qty))
            del self.state.positions[symbol]
            self.state.exercised.append({
                "symbol": symbol, "strikePrice": plain(strike), "realStrikePrice": plain(price), "expiryDate": expiry,
                "strikeResult": "REALISTIC_VALUE_STRICKEN" if payoff > 0 else "EXTRINSIC_VALUE_EXPIRED",
            })
            exercised = True
        if exercised:
            self.save()

    # ---- the application -------------------------------------------------------------

    def install(self, r: web.UrlDispatcher) -> None:
        """Add the /eapi/v1/ routes to the emulator's application."""
        e = self.emulator
        add_routes(r, {
            **e.clock_routes("/eapi/v1"),
            "GET /eapi/v1/exchangeInfo": self.exchange_info,
            "GET /eapi/v1/index": self.index_price,
            "GET /eapi/v1/mark": self.mark,
            "GET /eapi/v1/ticker": self.ticker,
            "GET /eapi/v1/exerciseHistory": self.exercise_history,
            "POST /eapi/v1/order": e.signed(self.new_order),
            "GET /eapi/v1/order": e.signed(self.get_order),
            "GET /eapi/v1/historyOrders": e.signed(self.history_orders),
            "GET /eapi/v1/position": e.signed(self.position),
            "GET /eapi/v1/marginAccount": e.signed(self.margin_account),
        })

    def _symbol_info(self, symbol: str, expiry_ms: int, strike: Decimal, kind: str) -> dict[str, Any]:
        return {
            "contractId": 2, "expiryDate": expiry_ms,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": plain(self.tick), "maxPrice": "100000", "tickSize": plain(self.tick)},
                {"filterType": "LOT_SIZE", "minQty": plain(self.min_qty), "maxQty": "100", "stepSize": plain(self.step)},
            ],
            "id": zlib.crc32(symbol.encode()) % 100000, "symbol": symbol, "side": "PUT" if kind == "P" else "CALL",
            "strikePrice": f"{strike:.8f}", "underlying": "BTCUSDT", "unit": 1, "makerFeeRate": plain(self.taker_fee),
            "takerFeeRate": plain(self.taker_fee), "minQty": plain(self.min_qty), "maxQty": "100", "initialMargin": "0.15000000",
            "maintenanceMargin": "0.07500000", "minInitialMargin": "0.10000000", "minMaintenanceMargin": "0.05000000",
            "priceScale": 0, "quantityScale": 2, "quoteAsset": "USDT", "status": "TRADING",
        }

    async def exchange_info(self, request: web.Request) -> web.Response:
        """GET /eapi/v1/exchangeInfo: the options listed now (expired series are gone)."""
        self.exercise_due()
        return web.json_response({
            "timezone": "UTC", "serverTime": self.emulator.now_ms(),
            "optionContracts": [{"id": 2, "baseAsset": "BTC", "quoteAsset": "USDT", "underlying": "BTCUSDT", "settleAsset": "USDT"}],
            "optionAssets": [{"id": 1, "name": "USDT"}],
            "optionSymbols": [self._symbol_info(s, *spec) for s, spec in self._series().items()],
            "rateLimits": [],
        })

    async def index_price(self, request: web.Request) -> web.Response:
        """GET /eapi/v1/index?underlying=BTCUSDT."""
        if request.query.get("underlying") != "BTCUSDT":
            raise invalid_symbol()
        return web.json_response({"time": self.emulator.now_ms(), "indexPrice": plain(self.index())})

    def _rows(self, request: web.Request) -> list[tuple[str, int, Decimal, str]]:
        series = self._series()
        wanted = request.query.get("symbol")
        if wanted is not None and wanted not in series:
            raise invalid_symbol()
        return [(s, *spec) for s, spec in series.items() if wanted is None or s == wanted]

    async def mark(self, request: web.Request) -> web.Response:
        """GET /eapi/v1/mark: mark price, IVs and greeks of each option (or of `symbol`)."""
        self.exercise_due()
        rows = []
        for symbol, expiry, strike, kind in self._rows(request):
            mark, _, _, delta = self._quote(expiry, strike, kind)
            rows.append({
                "symbol": symbol, "markPrice": plain(mark), "bidIV": "0", "askIV": "0", "markIV": f"{self.volatility:.4f}",
                "delta": f"{delta:.5f}", "theta": "0", "gamma": "0", "vega": "0",
                "highPriceLimit": plain(mark * 3 + self.tick), "lowPriceLimit": plain(self.tick),
            })
        return web.json_response(rows)

    async def ticker(self, request: web.Request) -> web.Response:
        """GET /eapi/v1/ticker: 24h statistics with the best bid and ask of each option (or of `symbol`)."""
        self.exercise_due()
        now = self.emulator.now_ms()
        rows = []
        for symbol, expiry, strike, kind in self._rows(request):
            mark, bid, ask, _ = self._quote(expiry, strike, kind)
            rows.append({
                "symbol": symbol, "priceChange": "0", "priceChangePercent": "0", "lastPrice": plain(mark), "lastQty": "0",
                "open": plain(mark), "high": plain(mark), "low": plain(mark), "volume": "0", "amount": "0",
                "bidPrice": plain(bid), "askPrice": plain(ask), "openTime": now - 86_400_000, "closeTime": now,
                "firstTradeId": 0, "tradeCount": 0, "strikePrice": plain(strike), "exercisePrice": plain(self.index()),
            })
        return web.json_response(rows)

    async def exercise_history(self, request: web.Request) -> web.Response:
        """GET /eapi/v1/exerciseHistory: the exercise price of each expired option."""
        self.exercise_due()
        return web.json_response(list(reversed(self.state.exercised)))

    # ---- private ---------------------------------------------------------------------

    def _open(self) -> None:
        if not self.state.enabled:
            raise key_refused()
        self.exercise_due()

    async def new_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /eapi/v1/order: a LIMIT order, filled at once where it crosses the book (the rest per timeInForce)."""
        self._open()
        symbol = p.get("symbol", "")
        series = self._series().get(symbol)
        if series is None or series[2] != "P":
            raise invalid_symbol()
        if p.get("type") != "LIMIT":
            raise invalid_order_type()
        side = p.get("side")
        if side not in ("BUY", "SELL"):
            raise invalid_side()
        qty, price = decimal_param(p, "quantity", "price", msg="A mandatory parameter was not sent, was empty/null, or malformed.")
        if price <= 0:
            raise BinanceError(-4001, "Price less than 0.")
        if price < self.tick:
            raise BinanceError(-4013, "Price less than min price.")
        if price % self.tick != 0:
            raise BinanceError(-4014, "Price not increased by tick size.")
        if qty < self.min_qty:
            raise BinanceError(-4004, "Quantity less than min quantity.")
        if qty % self.step != 0:
            raise BinanceError(-4023, "Qty not increased by step size.")
        cid = p.get("clientOrderId") or f"emu-{self.emulator.next_id()}"
        if cid in self.state.orders:
            raise duplicate_client_id()
        held = D(self.state.positions.get(symbol, "0"))
        if side == "SELL" and qty > held:
            if p.get("reduceOnly") == "true":
                raise reduce_only_rejected()
            raise BinanceError(-2027, "Option margin is insufficient.")
        expiry, strike, kind = series
        mark, bid, ask, _ = self._quote(expiry, strike, kind)
        crosses = (side == "BUY" and ask > 0 and price >= ask) or (side == "SELL" and bid > 0 and price <= bid)
        fill_price = ask if side == "BUY" else bid
        fee = ZERO
        if crosses:
            fee = min(self.taker_fee * self.index(), FEE_CAP_OF_PREMIUM * fill_price) * qty
            fee = fee.quantize(D("0.00000001"), ROUND_CEILING)
            cash = D(self.state.wallet.get("USDT", "0"))
            if side == "BUY" and cash < fill_price * qty + fee:
                raise BinanceError(-2018, "Balance is insufficient.")
            change = (fill_price * qty if side == "SELL" else -fill_price * qty) - fee
            self.state.wallet["USDT"] = plain(cash + change)
            self.state.positions[symbol] = plain(held + (qty if side == "BUY" else -qty))
            if D(self.state.positions[symbol]) == 0:
                del self.state.positions[symbol]
        tif = p.get("timeInForce", "GTC")
        status = "FILLED" if crosses else ("CANCELLED" if tif in ("IOC", "FOK") else "ACCEPTED")
        now = self.emulator.now_ms()
        order = {
            "orderId": self.emulator.next_id(), "symbol": symbol, "price": plain(price), "quantity": plain(qty),
            "executedQty": plain(qty if crosses else ZERO), "fee": plain(fee), "side": side, "type": "LIMIT",
            "timeInForce": tif, "reduceOnly": p.get("reduceOnly") == "true", "postOnly": False, "createTime": now,
            "updateTime": now, "status": status, "avgPrice": plain(fill_price if crosses else ZERO), "source": "API",
            "clientOrderId": cid, "priceScale": 0, "quantityScale": 2, "optionSide": "PUT", "quoteAsset": "USDT", "mmp": False,
        }
        self.state.orders[cid] = order
        self._visible_at[cid] = self.emulator._now() + self.emulator.lookup_lag_seconds  # noqa: SLF001
        if crosses:
            self.executions.append(cid)
        self.save()
        return order

    def _findable(self, order: dict[str, Any]) -> bool:
        """Tell whether a lookup finds an order: not before the lookup lag, never a cancelled one with no fill."""
        if self.emulator._now() < self._visible_at.get(order["clientOrderId"], 0.0):  # noqa: SLF001
            return False
        return not (order["status"] in ("CANCELLED", "REJECTED") and D(order["executedQty"]) == 0)

    async def get_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /eapi/v1/order?symbol=&clientOrderId= (or orderId)."""
        self._open()
        order = self.state.orders.get(p.get("clientOrderId", ""))
        if order is None and "orderId" in p:
            order = next((o for o in self.state.orders.values() if str(o["orderId"]) == p["orderId"]), None)
        if order is None or order["symbol"] != p.get("symbol") or not self._findable(order):
            raise no_such_order()
        return order

    async def history_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /eapi/v1/historyOrders?symbol=&startTime=: finished orders that traded (cancelled ones with no fill are not kept)."""
        self._open()
        since = int(p.get("startTime", "0"))
        return [
            o for o in self.state.orders.values()
            if o["symbol"] == p.get("symbol") and o["createTime"] >= since and o["status"] != "ACCEPTED" and self._findable(o)
        ]

    async def position(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /eapi/v1/position: each long held, with its mark."""
        self._open()
        series = self._series()
        rows = []
        for symbol, qty in self.held().items():
            if "symbol" in p and p["symbol"] != symbol:
                continue
            expiry, strike, kind = series[symbol]
            mark, _, _, _ = self._quote(expiry, strike, kind)
            rows.append({
                "entryPrice": "0", "symbol": symbol, "side": "LONG", "quantity": plain(qty), "reducibleQty": plain(qty),
                "markValue": plain(mark * qty), "ror": "0", "unrealizedPNL": "0", "markPrice": plain(mark),
                "strikePrice": f"{strike:.8f}", "positionCost": "0", "expiryDate": expiry, "priceScale": 0,
                "quantityScale": 2, "optionSide": "PUT", "quoteAsset": "USDT", "time": self.emulator.now_ms(),
            })
        return rows

    async def margin_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /eapi/v1/marginAccount: the options wallet."""
        self._open()
        cash = D(self.state.wallet.get("USDT", "0"))
        return {
            "asset": [{"asset": "USDT", "marginBalance": plain(cash), "equity": plain(cash), "available": plain(cash),
                       "initialMargin": "0", "maintMargin": "0", "unrealizedPNL": "0", "adjustedEquity": plain(cash)}],
            "greek": [], "time": self.emulator.now_ms(), "riskLevel": "NORMAL",
        }

    async def control_options(self, request: web.Request) -> web.Response:
        """GET /_emulator/options: the desk's state (wallet, longs, orders by client id) and every execution."""
        return web.json_response({**self.state.__dict__, "executions": self.executions})


def main(argv: list[str] | None = None) -> int:
    """Run the Binance emulator with the options desk until interrupted (for process-level tests and by hand)."""
    parser = server_arguments("binance_options", "The Binance emulator with European options (/eapi/v1/).")
    parser.add_argument("--key", action="append", default=[], help="KEY:SECRET")
    parser.add_argument("--spot", action="append", default=[], help="ASSET=AMOUNT credited to spot")
    parser.add_argument("--options-usdt", default="10000", help="USDT in the options wallet")
    parser.add_argument("--mark", default="50000", help="BTCUSDT mark price")
    parser.add_argument("--expiry", action="append", type=float, default=[], help="an expiry, epoch seconds (repeat)")
    parser.add_argument("--strikes", default="30000:60000:1000", help="LOW:HIGH:STEP")
    parser.add_argument("--volatility", type=float, default=0.6)
    parser.add_argument("--state", type=Path, help="keep the desk's state in this JSON file")
    args = parser.parse_args(argv)
    emulator = Emulator()
    for text in args.key:
        key, _, secret = text.partition(":")
        emulator.book.keys[key] = KeySpec(secret)
    for text in args.spot:
        asset, _, amount = text.partition("=")
        emulator.deposit("spot", asset, D(amount))
    emulator.set_mark("BTCUSDT", D(args.mark))
    low, high, step = (int(x) for x in args.strikes.split(":"))
    fresh = args.state is None or not args.state.exists()
    desk = OptionsDesk(emulator, expiries_ms=[int(e * 1000) for e in args.expiry], strikes=[D(k) for k in range(low, high + 1, step)],
                       volatility=args.volatility, state_path=args.state)
    if fresh:
        desk.deposit("USDT", D(args.options_usdt))
    emulator.route_installers.append(lambda r: r.add_get("/_emulator/options", desk.control_options))

    return serve_until_interrupted(emulator, args.host, args.port, "(with options)")


if __name__ == "__main__":
    raise SystemExit(main())
