"""The Binance emulator's exchange: what it does to its book, with no web framework.

It owns the exchange's clock, the state file, and every change of the book: deposits, marks, funding,
delivery, the matching of market orders (futures and spot, filled at the mark, in part under a
liquidity fault), isolated margin, transfers, account settings, the order records and how late lookups
see them, and the liquidation engine with auto-deleveraging. It refuses what Binance's matching refuses
(`BinanceError`) and tells listeners what changed, as Binance's websocket events. It may NOT read a request,
check a signature or count weight (`binance_rest`), nor hold a socket (`binance_streams`); it imports
neither. The margin arithmetic it applies is `binance_margin`'s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.exchange.candles import CandleBook
from hedgebot.testing.binance_answers import BinanceError, plain, reduce_only_rejected, write_json_atomically
from hedgebot.testing.binance_book import PRE_DELIVERY_SECONDS, Book, KeySpec, Position, SymbolSpec
from hedgebot.testing.binance_margin import bankruptcy, cross_legs, is_short, leg_pnl, liquidation_price, maintenance_margin, wallet_of

D = Decimal
ZERO = D(0)

_EIGHT = D("0.00000001")
OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}
SPOT_STEP = D("0.00001")  # the LOT_SIZE step /api/v3/exchangeInfo serves


class Exchange:
    """The emulated exchange: a book, a clock, and every change Binance would make to it."""

    def __init__(
        self,
        book: Book | None = None,
        *,
        state_path: Path | None = None,
        now: Callable[[], float] | None = None,
        clock_offset_seconds: float = 0.0,
    ) -> None:
        self.book = book or Book()
        # How far the exchange's clock runs ahead of the daemon's (negative: behind). Every time the
        # exchange shows (server time, order, history, mark and event stamps) and its minute windows run on it.
        self.clock_offset_seconds = clock_offset_seconds
        self.state_path = state_path
        self._now = now or time.time
        # Order lookups lag behind execution by this many seconds (Binance: reads may lag).
        self.lookup_lag_seconds = 0.0
        self._visible_at: dict[str, float] = {}
        self.executions: list[str] = []  # the book key of every order carried out, duplicates included
        # Who hears of changes (the websocket side, hedgebot.testing.binance_streams, and tests).
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.order_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.saved_listeners: list[Callable[[], None]] = []  # called on every change of the book (the streams' pushes)
        self.forced: list[str] = []  # the book key of every order Binance placed itself (liquidation, ADL)
        # The marks set, served as klines (kept in memory only: an emulator restarted from its state file has none).
        self.candles = CandleBook()
        if state_path is not None and state_path.exists():
            self.book = Book.from_json(json.loads(state_path.read_text()))

    # ---- time, persistence --------------------------------------------------------

    def now_ms(self) -> int:
        """Return the exchange's time in milliseconds (the clock the emulator was given, plus its offset)."""
        return int((self._now() + self.clock_offset_seconds) * 1000)

    def save(self) -> None:
        """Tell who watches the book that it changed; write it atomically when a state path is set."""
        for listener in list(self.saved_listeners):
            listener()
        if self.state_path is not None:
            write_json_atomically(self.state_path, self.book.to_json())

    def next_id(self) -> int:
        """Return the next id of the exchange's one sequence (orders, transfers, income)."""
        self.book.next_id += 1
        return self.book.next_id

    # ---- test controls ------------------------------------------------------------

    def add_key(self, api_key: str, secret: str, *, can_withdraw: bool = False, ip_restrict: bool = True) -> None:
        """Register an API key."""
        self.book.keys[api_key] = KeySpec(secret, can_withdraw, ip_restrict)
        self.save()

    def deposit(self, wallet: str, asset: str, amount: Decimal) -> None:
        """Credit (or debit, never below zero) the spot, futures (USDⓈ-M) or coinm (COIN-M) wallet from outside."""
        book = {"spot": self.book.spot, "coinm": self.book.coinm}.get(wallet, self.book.futures)
        book[asset] = plain(max(ZERO, D(book.get(asset, "0")) + amount))
        self.save()

    def set_mark(self, symbol: str, price: Decimal) -> None:
        """Move the mark price of a symbol (Binance id, e.g. BTCUSDT)."""
        self.book.symbols[symbol].mark = plain(price)
        self.candles.record(symbol, self.now_ms() / 1000, price)
        self.save()
        self.publish(self.mark_price_update(symbol))
        self.liquidate_due()

    def stall_mark(self, symbol: str, seconds: float) -> None:
        """Make the mark price look `seconds` old, as a stalled price engine would serve it."""
        self.book.mark_lag_ms[symbol] = int(seconds * 1000)
        self.save()

    def mark_price_update(self, symbol: str) -> dict[str, Any]:
        """Return a markPriceUpdate event as the market stream pushes it."""
        premium = self.premium(symbol)
        return {
            "e": "markPriceUpdate", "E": premium["time"], "s": symbol, "p": premium["markPrice"], "i": premium["indexPrice"],
            "P": premium["estimatedSettlePrice"], "r": premium["lastFundingRate"], "T": premium["nextFundingTime"],
        }

    def publish(self, event: dict[str, Any]) -> None:
        """Hand an event (Binance's websocket shape) to whoever listens: the stream hub, tests."""
        for listener in list(self.listeners):
            listener(event)

    def settle_funding(self, symbol: str, rate: Decimal | None = None) -> None:
        """Pay funding on every leg of `symbol` now (positive rate: longs pay shorts)."""
        spec = self.book.symbols[symbol]
        if spec.contract_type != "PERPETUAL":
            raise ValueError(f"{symbol} is a delivery contract: it pays no funding")
        rate = D(spec.funding_rate) if rate is None else rate
        mark = D(spec.mark)
        self.book.funding_history.append(
            {"symbol": symbol, "fundingTime": self.now_ms(), "fundingRate": plain(rate), "markPrice": spec.mark}
        )
        for key, pos in self.book.positions.items():
            sym, _, side = key.partition("|")
            amount = D(pos.amount)
            if sym != symbol or amount == 0:
                continue
            short = side == "SHORT" or (side == "BOTH" and amount < 0)
            # In the margin asset: USDT on USDⓈ-M, the coin on COIN-M (the position's value in coins at the mark).
            payment = (spec.value(abs(amount), mark) * rate * (1 if short else -1)).quantize(_EIGHT)
            if spec.margin_type == "ISOLATED":
                pos.isolated_wallet = plain(D(pos.isolated_wallet) + payment)
            else:
                self._cash(spec, payment)
            self.book.income.append(
                {"symbol": symbol, "incomeType": "FUNDING_FEE", "income": plain(payment), "asset": spec.settle,
                 "info": "FUNDING_FEE", "time": self.now_ms(), "tranId": self.next_id(), "tradeId": ""}
            )
            self.publish(self.account_update("FUNDING_FEE", spec.settle, payment, symbol, side))
        self.save()
        self.liquidate_due()  # a funding payment can push a leg below its maintenance margin

    def age_quarterlies(self) -> None:
        """Turn each TRADING delivery contract PRE_DELIVERING once it is `PRE_DELIVERY_SECONDS` from its delivery.

        Binance lists a contract's status in exchangeInfo and stops its orders before delivery (-4108), but does
        not publish when PRE_DELIVERING begins; the settlement price is the index averaged over the last 30
        minutes. The emulator takes the harsh reading: no orders from an hour before delivery, as the paper venue.
        """
        now = self.now_ms()
        for spec in self.book.symbols.values():
            if spec.contract_type != "PERPETUAL" and spec.status == "TRADING" and now >= spec.delivery_ms - PRE_DELIVERY_SECONDS * 1000:
                spec.status = "PRE_DELIVERING"

    def deliver(self, symbol: str, price: Decimal | None = None) -> list[Decimal]:
        """Settle a delivery contract at `price` (its mark by default): every leg closed, its PnL and margin booked.

        Binance settles the positions still open at delivery at the delivery price, with no order of the
        user's: the income history shows DELIVERED_SETTELMENT (Binance's spelling) and the contract is
        DELIVERED, taking no order afterwards. Returns the PnL of each leg settled.
        """
        spec = self.book.symbols[symbol]
        if spec.contract_type == "PERPETUAL":
            raise ValueError(f"{symbol} is a perpetual: it has no delivery")
        price = D(spec.mark) if price is None else price
        settled = []
        for key, pos in self.book.positions.items():
            sym, _, side = key.partition("|")
            size = abs(D(pos.amount))
            if sym != symbol or size == 0:
                continue
            pnl = spec.pnl(is_short(side, pos), D(pos.entry), size, price)
            self._cash(spec, D(pos.isolated_wallet) + pnl)
            pos.amount, pos.entry, pos.isolated_wallet, pos.update_time = "0", "0", "0", self.now_ms()
            self._income(symbol, spec.settle, "DELIVERED_SETTELMENT", pnl)
            self.publish(self.account_update("ORDER", spec.settle, pnl, symbol, side))
            settled.append(pnl)
        spec.status = "DELIVERED"
        self.save()
        return settled

    def account_update(self, reason: str, asset: str, change: Decimal, symbol: str, side: str) -> dict[str, Any]:
        """Return an ACCOUNT_UPDATE event as Binance pushes it on the user-data stream."""
        pos = self.book.positions.get(f"{symbol}|{side}", Position())
        spec = self.book.symbols[symbol]
        wallet = D(self.wallet(spec.api).get(asset, "0"))
        isolated = sum((D(p.isolated_wallet) for k, p in self.book.positions.items()
                        if (other := self.book.symbols[k.partition("|")[0]]).api == spec.api and other.settle == asset), ZERO)
        return {
            "e": "ACCOUNT_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
            "a": {
                "m": reason,
                # wb: the wallet with isolated margin (as /fapi/v3/account's walletBalance), cw: without it
                "B": [{"a": asset, "wb": plain(wallet + isolated), "cw": plain(wallet), "bc": plain(change)}],
                "P": [{
                    "s": symbol, "pa": plain(-D(pos.amount) if side == "SHORT" else D(pos.amount)), "ep": pos.entry, "bep": pos.entry, "cr": "0", "up": "0",
                    "mt": spec.margin_type.lower() if spec.margin_type == "ISOLATED" else "cross",
                    "iw": pos.isolated_wallet, "ps": side,
                }],
            },
        }

    def futures_orders(self) -> dict[str, dict[str, Any]]:
        """Return every futures order by client id."""
        return {k.split("|", 2)[2]: v for k, v in self.book.orders.items() if k.startswith("futures|")}

    def position(self, symbol: str, side: str) -> Position:
        """Return a leg (empty when there is none)."""
        return self.book.positions.get(f"{symbol}|{side}", Position())

    def record_order(self, key: str, answer: dict[str, Any]) -> None:
        """Keep an executed order; lookups see it only after the lookup lag."""
        self.book.orders[key] = answer
        self.executions.append(key)
        self.lag_lookups(key)

    def lag_lookups(self, key: str) -> None:
        """Hide the order under `key` from lookups for the lookup lag, from now."""
        self._visible_at[key] = self._now() + self.lookup_lag_seconds

    def visible(self, key: str) -> bool:
        """Tell whether lookups see the order under `key` yet."""
        return self._now() >= self._visible_at.get(key, 0.0)

    def is_open(self, key: str) -> bool:
        """Tell whether the order under `key` is still open (its client id is then taken)."""
        return self.book.orders.get(key, {}).get("status") in OPEN_STATUSES

    def premium(self, sym: str) -> dict[str, Any]:
        """Return a contract's mark, index and funding as premiumIndex serves them (stamped as old as a stalled mark)."""
        spec = self.book.symbols[sym]
        interval = 8 * 3600 * 1000
        now = self.now_ms()
        perpetual = spec.contract_type == "PERPETUAL"  # a delivery contract has no funding: empty rate, no next time
        return {
            "symbol": sym, "markPrice": spec.mark, "indexPrice": spec.mark, "estimatedSettlePrice": spec.mark,
            "lastFundingRate": spec.funding_rate if perpetual else "", "interestRate": "0.00010000" if perpetual else "",
            "nextFundingTime": (now // interval + 1) * interval if perpetual else 0,
            "time": now - self.book.mark_lag_ms.get(sym, 0),
        }


    # ---- funds ------------------------------------------------------------------------------

    def wallet(self, api: str) -> dict[str, str]:
        """Return the cross wallet of an API family: USDⓈ-M's (fapi) or COIN-M's (dapi), kept apart as Binance keeps them."""
        return wallet_of(self.book, api)

    def _cash(self, spec: SymbolSpec, delta: Decimal) -> None:
        """Book `delta` of a contract's margin asset to the cross wallet of its family."""
        self._move(spec.api, spec.settle, delta)

    def _move(self, api: str, asset: str, delta: Decimal) -> None:
        wallet = self.wallet(api)
        wallet[asset] = plain(D(wallet.get(asset, "0")) + delta)

    def cross_used(self, api: str, asset: str) -> Decimal:
        """Return the initial margin and unrealized loss of cross legs, which the wallet must back."""
        used = ZERO
        for sym, side, pos in cross_legs(self.book, api, asset):
            spec = self.book.symbols[sym]
            mark = D(spec.mark)
            used += spec.value(abs(D(pos.amount)), mark) / spec.leverage - min(ZERO, leg_pnl(spec, side, pos, mark))
        return used

    def available(self, api: str, asset: str) -> Decimal:
        """Return what the cross wallet of `asset` has free: its cash less what the cross legs use."""
        return max(ZERO, D(self.wallet(api).get(asset, "0")) - self.cross_used(api, asset))

    def dual(self, api: str) -> bool:
        """Return whether the family's account is in hedge mode (USDⓈ-M and COIN-M each keep their own)."""
        return self.book.coinm_dual_side if api == "dapi" else self.book.dual_side

    # ---- account settings ---------------------------------------------------------------------

    def set_dual(self, family: str, wanted: bool) -> None:
        """Turn the family's hedge mode on or off, refusing as Binance does while anything is open."""
        if wanted == self.dual(family):
            raise BinanceError(-4059, "No need to change position side.")
        if self.book.open_orders:
            raise BinanceError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(D(pos.amount) != 0 and self.book.symbols[key.partition("|")[0]].api == family
               for key, pos in self.book.positions.items()):
            raise BinanceError(-4068, "Position side cannot be changed if there exists position.")
        if family == "dapi":
            self.book.coinm_dual_side = wanted
        else:
            self.book.dual_side = wanted

    def _has_position(self, symbol: str) -> bool:
        return any(k.startswith(f"{symbol}|") and D(v.amount) != 0 for k, v in self.book.positions.items())

    def set_margin_type(self, spec: SymbolSpec, symbol: str, wanted: str) -> None:
        """Set a contract's margin type, refusing a change to the same or under a position."""
        if wanted == spec.margin_type:
            raise BinanceError(-4046, "No need to change margin type.")
        if self._has_position(symbol):
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        spec.margin_type = wanted

    def set_leverage(self, spec: SymbolSpec, value: int) -> None:
        """Set a contract's leverage, refusing one beyond its brackets (-4028)."""
        if not 1 <= value <= max(b[4] for b in spec.brackets):
            raise BinanceError(-4028, "Leverage is not valid")
        spec.leverage = value

    # ---- futures trading ----------------------------------------------------------------------

    def _order_answer(self, sym: str, cid: str, order_id: int, qty: Decimal, price: Decimal, side: str,
                      position_side: str, reduce_only: bool) -> dict[str, Any]:
        now = self.now_ms()
        spec = self.book.symbols[sym]
        answer = {
            "orderId": order_id, "symbol": sym, "status": "FILLED", "clientOrderId": cid,
            "price": "0", "avgPrice": plain(price), "origQty": plain(qty), "executedQty": plain(qty), "cumQty": plain(qty),
            "cumQuote": plain(qty * price), "timeInForce": "GTC", "type": "MARKET", "reduceOnly": reduce_only,
            "closePosition": False, "side": side, "positionSide": position_side, "stopPrice": "0",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "MARKET", "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "time": now, "updateTime": now,
        }
        if spec.inverse:
            # COIN-M's order: its pair, and cumBase (the value in coins) where USDⓈ-M has cumQuote.
            del answer["cumQuote"], answer["priceMatch"], answer["selfTradePreventionMode"], answer["goodTillDate"]
            answer.update(pair=sym.split("_")[0], cumBase=plain(spec.value(qty, price)) if qty > 0 else "0")
        return answer

    def place_futures_market(
        self, sym: str, cid: str, side: str, position_side: str, qty: Decimal, reduce_only: bool, fill: Decimal | None,
    ) -> dict[str, Any]:
        """Fill a futures MARKET order at the mark (`fill` of it under a liquidity fault); return the order as recorded.

        It refuses what matching refuses: a reduce-only order that would open or flip (-2022), a one-way flip
        (not modelled), an opening order under the minimum notional (-4164) or the margin it needs (-2019).
        """
        spec = self.book.symbols[sym]
        step = D(spec.step)
        key = f"futures|{sym}|{cid}"
        mark = D(spec.mark)
        pos_key = f"{sym}|{position_side}"
        pos = self.book.positions.get(pos_key, Position())
        amount = D(pos.amount)
        if position_side == "BOTH":
            signed = qty if side == "BUY" else -qty
            opening = amount == 0 or (amount > 0) == (signed > 0)
            if not opening and qty > abs(amount):
                raise reduce_only_rejected() if reduce_only else BinanceError(-4003, "emulator: one-way flips are not modelled")
            if reduce_only and opening:
                raise reduce_only_rejected()
        else:
            opening = (side == "SELL") == (position_side == "SHORT")
            if not opening and qty > amount:
                raise reduce_only_rejected()
        if opening and D(spec.min_notional) > 0 and qty * mark < D(spec.min_notional):
            raise BinanceError(-4164, f"Order's notional must be no smaller than {spec.min_notional} (unless you choose reduce only).")
        ordered, qty = qty, self._fillable(qty, step, fill)
        if qty == 0:
            return self._expire_unfilled(key, self._order_answer(sym, cid, self.next_id(), ordered, mark, side, position_side, reduce_only))
        fee = spec.value(qty, mark) * D(self.book.taker_fee)  # in the margin asset: coins on COIN-M
        size = abs(amount)
        if opening:
            initial = spec.value(qty, mark) / spec.leverage
            if self.available(spec.api, spec.settle) < initial + fee:
                raise BinanceError(-2019, "Margin is insufficient.")
            pos.entry = plain(spec.average_entry(D(pos.entry), size, mark, qty))
            if position_side == "BOTH":
                pos.amount = plain(amount + (qty if side == "BUY" else -qty))
            else:
                pos.amount = plain(amount + qty)
            if spec.margin_type == "ISOLATED":
                pos.isolated_wallet = plain(D(pos.isolated_wallet) + initial)
                self._cash(spec, -initial)
        else:
            pnl = spec.pnl(is_short(position_side, pos), D(pos.entry), qty, mark)
            remaining = size - qty
            released = ZERO
            if spec.margin_type == "ISOLATED":
                released = D(pos.isolated_wallet) if remaining == 0 else D(pos.isolated_wallet) * qty / size
                pos.isolated_wallet = plain(D(pos.isolated_wallet) - released)
            sign = -1 if position_side == "BOTH" and amount < 0 else 1
            pos.amount = plain(sign * remaining)
            if remaining == 0:
                pos.entry = "0"
            self._cash(spec, released + pnl)
        self._cash(spec, -fee)
        pos.update_time = self.now_ms()
        self.book.positions[pos_key] = pos
        answer = self._expire_rest(self._order_answer(sym, cid, self.next_id(), qty, mark, side, position_side, reduce_only), ordered)
        self.record_order(key, answer)
        for update in self._order_updates(answer, fee):
            self.publish(update)
        self.publish(self.account_update("ORDER", spec.settle, -fee, sym, position_side))
        for listener in self.order_listeners:
            listener(answer)
        return answer

    def order_update(self, order: dict[str, Any], fee: Decimal) -> dict[str, Any]:
        """Return an ORDER_TRADE_UPDATE event for a filled market order."""
        return {
            "e": "ORDER_TRADE_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
            "o": {
                "s": order["symbol"], "c": order["clientOrderId"], "S": order["side"], "o": "MARKET", "f": "GTC",
                "q": order["origQty"], "p": "0", "ap": order["avgPrice"], "sp": "0", "x": "TRADE", "X": "FILLED",
                "i": order["orderId"], "l": order["executedQty"], "z": order["executedQty"], "L": order["avgPrice"],
                "N": self.book.symbols[order["symbol"]].settle, "n": plain(fee), "T": self.now_ms(), "t": order["orderId"], "b": "0", "a": "0", "m": False,
                "R": order.get("reduceOnly", False), "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": order["positionSide"],
                "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
            },
        }

    # ---- liquidity: market orders filled in part, the rest EXPIRED --------------------------

    @staticmethod
    def _fillable(qty: Decimal, step: Decimal, fill: Decimal | None) -> Decimal:
        """Return how much of a market order the book fills: all of it, or its `fill` share, rounded down to the step."""
        if fill is None:
            return qty
        return min(qty, (qty * fill / step).to_integral_value(rounding="ROUND_FLOOR") * step)

    @staticmethod
    def _expire_rest(answer: dict[str, Any], ordered: Decimal) -> dict[str, Any]:
        """Turn the answer of an order filled in part into Binance's: origQty as sent, status EXPIRED."""
        if D(answer["executedQty"]) >= ordered:
            return answer
        return {**answer, "origQty": plain(ordered), "status": "EXPIRED"}

    def _expire_unfilled(self, key: str, answer: dict[str, Any]) -> dict[str, Any]:
        """Record and answer a market order that found no liquidity at all: EXPIRED, nothing executed, no fee."""
        answer = {**answer, "status": "EXPIRED", "avgPrice": "0", "executedQty": "0", "cumQty": "0", "cumQuote": "0"}
        self.record_order(key, answer)
        for update in self._order_updates(answer, ZERO):
            self.publish(update)
        return answer

    def _order_updates(self, answer: dict[str, Any], fee: Decimal) -> list[dict[str, Any]]:
        """Return the ORDER_TRADE_UPDATE events of a market order: its trade, then its expiry when it did not fill whole."""
        if answer["status"] != "EXPIRED":
            return [self.order_update(answer, fee)]
        updates = []
        if D(answer["executedQty"]) > 0:
            trade = self.order_update(answer, fee)
            trade["o"]["X"] = "PARTIALLY_FILLED"
            updates.append(trade)
        expiry = self.order_update(answer, ZERO)
        expiry["o"].update(x="EXPIRED", X="EXPIRED", l="0", L="0", n="0", t=0)
        updates.append(expiry)
        return updates

    # ---- the liquidation engine and auto-deleveraging ------------------------------------------
    # Binance liquidates a leg when its margin balance falls below its maintenance margin on the
    # mark: an isolated leg against its own wallet, the cross legs of an asset against the cross
    # wallet. The harsh branch of "Liquidation Protocols" is modelled: the user is declared bankrupt,
    # the leg is closed at the mark (never past the bankruptcy price) and what margin is left goes to
    # the insurance fund (INSURANCE_CLEAR), so the whole margin behind the leg is lost.

    def liquidation_price(self, symbol: str, side: str) -> Decimal:
        """Return the mark at which a leg is liquidated (0 when none), the other cross legs held at today's mark."""
        return liquidation_price(self.book, symbol, side)

    def liquidate_due(self) -> list[dict[str, Any]]:
        """Liquidate every leg whose margin is below maintenance on its mark; return the forced orders."""
        forced: list[dict[str, Any]] = []
        for key, pos in list(self.book.positions.items()):
            sym, _, side = key.partition("|")
            spec = self.book.symbols[sym]
            size = abs(D(pos.amount))
            if size == 0 or spec.margin_type != "ISOLATED":
                continue
            mark = D(spec.mark)
            if D(pos.isolated_wallet) + leg_pnl(spec, side, pos, mark) < maintenance_margin(spec, size, mark):
                forced.append(self._liquidate_isolated(sym, side, pos))
        for api, asset in dict.fromkeys((spec.api, spec.settle) for spec in self.book.symbols.values()):
            legs = cross_legs(self.book, api, asset)
            if not legs:
                continue
            balance = D(self.wallet(api).get(asset, "0"))
            maintenance = ZERO
            for sym, side, pos in legs:
                spec = self.book.symbols[sym]
                mark = D(spec.mark)
                balance += leg_pnl(spec, side, pos, mark)
                maintenance += maintenance_margin(spec, abs(D(pos.amount)), mark)
            if balance < maintenance:
                forced.extend(self._liquidate_cross(api, asset, legs))
        if forced:
            self.save()
        return forced

    def _liquidate_isolated(self, sym: str, side: str, pos: Position) -> dict[str, Any]:
        spec = self.book.symbols[sym]
        size = abs(D(pos.amount))
        wallet = D(pos.isolated_wallet)
        entry = D(pos.entry)
        short = is_short(side, pos)
        mark = D(spec.mark)
        bankrupt_at = bankruptcy(spec, short, entry, size, wallet)
        if bankrupt_at is None:
            bankrupt_at = mark
        price = min(mark, bankrupt_at) if short else max(mark, bankrupt_at)
        pnl = spec.pnl(short, entry, size, price)
        cleared = max(ZERO, wallet + pnl)
        order = self._forced_close(sym, side, pos, "autoclose-", price, bankrupt_at, pnl)
        pos.isolated_wallet = "0"
        self._income(sym, spec.settle, "INSURANCE_CLEAR", -cleared)
        self.publish(self.account_update("ORDER", spec.settle, ZERO, sym, side))
        return order

    def _liquidate_cross(self, api: str, asset: str, legs: list[tuple[str, str, Position]]) -> list[dict[str, Any]]:
        orders = []
        for sym, side, pos in legs:
            spec = self.book.symbols[sym]
            mark = D(spec.mark)
            pnl = leg_pnl(spec, side, pos, mark)
            orders.append(self._forced_close(sym, side, pos, "autoclose-", mark, mark, pnl))
            self._move(api, asset, pnl)
        wallet = self.wallet(api)
        left = D(wallet.get(asset, "0"))
        wallet[asset] = "0"  # bankrupt: what is left goes to the insurance fund, a debt is covered by it
        if left > 0:
            self._income(legs[0][0], asset, "INSURANCE_CLEAR", -left)
        self.publish(self.account_update("INSURANCE_CLEAR", asset, -left, legs[0][0], legs[0][1]))
        return orders

    def auto_deleverage(self, symbol: str, side: str, amount: Decimal | None = None) -> dict[str, Any]:
        """Close `amount` (all by default) of a profitable leg at the mark, as Binance's ADL does against a bankrupt trader."""
        pos = self.position(symbol, side)
        size = abs(D(pos.amount))
        spec = self.book.symbols[symbol]
        mark = D(spec.mark)
        qty = size if amount is None else min(size, amount)
        if qty <= 0:
            raise ValueError(f"no {side} leg of {symbol} to deleverage")
        if leg_pnl(spec, side, pos, mark) <= 0:
            raise ValueError(f"the {side} leg of {symbol} is not in profit: Binance deleverages profitable legs only")
        pnl = spec.pnl(is_short(side, pos), D(pos.entry), qty, mark)
        released = ZERO
        if spec.margin_type == "ISOLATED":
            released = D(pos.isolated_wallet) * qty / size
            pos.isolated_wallet = plain(D(pos.isolated_wallet) - released)
        order = self._forced_close(symbol, side, pos, "adl_autoclose-", mark, mark, pnl, qty)
        self._cash(spec, released + pnl if spec.margin_type == "ISOLATED" else pnl)
        self.publish(self.account_update("ORDER", spec.settle, ZERO, symbol, side))
        self.save()
        return order

    def _income(self, symbol: str, asset: str, kind: str, amount: Decimal) -> None:
        if amount != 0:
            self.book.income.append({"symbol": symbol, "incomeType": kind, "income": plain(amount), "asset": asset,
                                     "info": kind, "time": self.now_ms(), "tranId": self.next_id(), "tradeId": ""})

    def _forced_close(self, sym: str, side: str, pos: Position, prefix: str, price: Decimal, limit: Decimal,
                      pnl: Decimal, qty: Decimal | None = None) -> dict[str, Any]:
        """Close `qty` (all) of a leg with an order of Binance's own: in order history, on the user stream, in income."""
        size = abs(D(pos.amount))
        qty = size if qty is None else qty
        short = is_short(side, pos)
        now = self.now_ms()
        order_id = self.next_id()
        cid = f"{prefix}{now}{order_id % 1000:03d}"
        remaining = size - qty
        pos.amount = plain(-remaining if side == "BOTH" and short else remaining)
        if remaining == 0:
            pos.entry = "0"
        pos.update_time = now
        spec = self.book.symbols[sym]
        tick = D(spec.tick)
        answer = {
            "orderId": order_id, "symbol": sym, "status": "FILLED", "clientOrderId": cid,
            "price": plain((limit / tick).to_integral_value() * tick), "avgPrice": plain(price), "origQty": plain(qty),
            "executedQty": plain(qty), "cumQty": plain(qty), "cumQuote": plain(qty * price), "timeInForce": "IOC", "type": "LIMIT",
            "reduceOnly": True, "closePosition": False, "side": "BUY" if short else "SELL", "positionSide": side,
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "LIMIT",
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": now, "updateTime": now,
        }
        if spec.inverse:
            del answer["cumQuote"]
            answer.update(pair=sym.split("_")[0], cumBase=plain(spec.value(qty, price)))
        key = f"futures|{sym}|{cid}"
        self.book.orders[key] = answer
        self.lag_lookups(key)
        self.forced.append(key)
        self._income(sym, spec.settle, "REALIZED_PNL", pnl)
        update = self.order_update(answer, ZERO)
        update["o"].update(o="LIMIT", f="IOC", p=answer["price"], R=True, ot="LIMIT", rp=plain(pnl))
        self.publish(update)
        return answer


    # ---- order lookups ----------------------------------------------------------------------------

    def find_futures_order(self, sym: str, cid: str | None, order_id: str | None) -> dict[str, Any] | None:
        """Return a futures order by client id (or, with none, by order id) once lookups see it; None otherwise."""
        if cid is not None:
            key = f"futures|{sym}|{cid}"
            return self.book.orders.get(key) if self.visible(key) else None
        return next((o for k, o in self.book.orders.items() if k.startswith(f"futures|{sym}|") and str(o["orderId"]) == order_id and self.visible(k)), None)

    def find_spot_order(self, sym: str, cid: str | None) -> dict[str, Any] | None:
        """Return a spot order by client id once lookups see it; None otherwise."""
        key = f"spot|{sym}|{cid}"
        return self.book.orders.get(key) if self.visible(key) else None

    def orders_between(self, market: str, sym: str, start: int, end: int) -> list[dict[str, Any]]:
        """Return the orders of one symbol ("futures" or "spot") made in [start, end] that lookups see, oldest first."""
        # History reads lag like lookups: an order is invisible to both for the lookup lag.
        found = [o for k, o in self.book.orders.items() if k.startswith(f"{market}|{sym}|") and self.visible(k) and start <= int(o["time"]) <= end]
        return sorted(found, key=lambda o: int(o["orderId"]))

    # ---- isolated margin ----------------------------------------------------------------------------

    def adjust_isolated_margin(self, sym: str, side: str, amount: Decimal, kind: int) -> None:
        """Add (`kind` 1) or take (2) `amount` of a leg's isolated margin, refusing as Binance does."""
        spec = self.book.symbols[sym]
        if spec.margin_type != "ISOLATED":
            raise BinanceError(-4050, "Cross balance insufficient.")
        pos = self.book.positions.get(f"{sym}|{side}")
        if pos is None or D(pos.amount) == 0:
            raise BinanceError(-2019, "Margin is insufficient.")
        if kind == 1:
            if self.available(spec.api, spec.settle) < amount:
                raise BinanceError(-2019, "Margin is insufficient.")
            pos.isolated_wallet = plain(D(pos.isolated_wallet) + amount)
            self._cash(spec, -amount)
        elif kind == 2:
            if D(pos.isolated_wallet) - amount <= spec.value(abs(D(pos.amount)), D(spec.mark)) / spec.leverage / 2:
                raise BinanceError(-4051, "Isolated balance insufficient.")
            pos.isolated_wallet = plain(D(pos.isolated_wallet) - amount)
            self._cash(spec, amount)
        else:
            raise BinanceError(-1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        self.book.margin_history.append({
            "symbol": sym, "type": kind, "deltaType": "USER_ADJUST", "amount": plain(amount), "asset": spec.settle,
            "time": self.now_ms(), "positionSide": side, "clientTranId": "",
        })

    # ---- spot --------------------------------------------------------------------------------

    def place_spot_market(self, sym: str, cid: str, side: str, qty: Decimal, fill: Decimal | None) -> dict[str, Any]:
        """Fill a spot MARKET order at the mark less the spot fee (`fill` of it under a liquidity fault); return the answer."""
        spec = self.book.symbols[sym]
        key = f"spot|{sym}|{cid}"
        price = D(spec.mark)
        if side == "SELL" and D(self.book.spot.get(spec.base, "0")) < qty:
            raise BinanceError(-2010, "Account has insufficient balance for requested action.")
        ordered, qty = qty, self._fillable(qty, SPOT_STEP, fill)
        quote_qty = qty * price
        fee = (quote_qty if side == "SELL" else qty) * D(self.book.spot_fee)
        base_held = D(self.book.spot.get(spec.base, "0"))
        quote_held = D(self.book.spot.get(spec.quote, "0"))
        if side == "SELL":
            if base_held < qty:
                raise BinanceError(-2010, "Account has insufficient balance for requested action.")
            self.book.spot[spec.base] = plain(base_held - qty)
            self.book.spot[spec.quote] = plain(quote_held + quote_qty - fee)
            fee_asset = spec.quote
        else:
            if quote_held < quote_qty:
                raise BinanceError(-2010, "Account has insufficient balance for requested action.")
            self.book.spot[spec.quote] = plain(quote_held - quote_qty)
            self.book.spot[spec.base] = plain(base_held + qty - fee)
            fee_asset = spec.base
        now = self.now_ms()
        order_id = self.next_id()
        answer = {
            "symbol": sym, "orderId": order_id, "orderListId": -1, "clientOrderId": cid, "transactTime": now,
            "price": "0.00000000", "origQty": plain(qty), "executedQty": plain(qty), "origQuoteOrderQty": "0.00000000",
            "cummulativeQuoteQty": plain(quote_qty), "status": "FILLED", "timeInForce": "GTC", "type": "MARKET",
            "side": side, "workingTime": now,
            "fills": [{"price": plain(price), "qty": plain(qty), "commission": plain(fee), "commissionAsset": fee_asset, "tradeId": order_id}],
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if qty < ordered:
            answer.update(origQty=plain(ordered), status="EXPIRED", fills=answer["fills"] if qty > 0 else [])
        self.record_order(key, {k: v for k, v in answer.items() if k != "fills"} | {"time": now, "updateTime": now})
        return answer

    # ---- wallet -------------------------------------------------------------------------------

    def transfer(self, kind: str | None, asset: str, amount: Decimal) -> int:
        """Move `amount` of `asset` between spot and a futures wallet (`kind` as Binance names it); return its id."""
        api = "dapi" if "CMFUTURE" in str(kind) else "fapi"
        if kind in {"MAIN_UMFUTURE", "MAIN_CMFUTURE"}:
            held = D(self.book.spot.get(asset, "0"))
            if held < amount:
                raise BinanceError(-5002, "You have insufficient balance.")
            self.book.spot[asset] = plain(held - amount)
            self._move(api, asset, amount)
        elif kind in {"UMFUTURE_MAIN", "CMFUTURE_MAIN"}:
            if self.available(api, asset) < amount:
                raise BinanceError(-5002, "You have insufficient balance.")
            self._move(api, asset, -amount)
            self.book.spot[asset] = plain(D(self.book.spot.get(asset, "0")) + amount)
        else:
            raise BinanceError(-1102, f"emulator: transfer type {kind!r} is not modelled")
        tran_id = self.next_id()
        self.book.transfers.append({"asset": asset, "amount": plain(amount), "type": kind, "status": "CONFIRMED",
                                    "tranId": tran_id, "timestamp": self.now_ms()})
        return tran_id
