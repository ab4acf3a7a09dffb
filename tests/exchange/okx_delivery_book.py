"""An OKX trading account whose legs live on each instrument: the USDT swap and its dated futures, each with its own
mark, in OKX v5's documented shapes, refusing an order on a contract that is not `live` as OKX does. Coin-margined
instruments (BTC-USD-*) count contracts of 100 USD and book their margin in BTC."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import tests.exchange.books as books
from tests.exchange.books import LegBook, OkxBook, OrderBook, _okx
from tests.exchange.ccxt_recorder import RecordedRequest, Reply

SWAP = "BTC-USDT-SWAP"
SPOT = "BTC-USDT"
FACE = Decimal(100)  # USD per contract of a coin-margined instrument (ctVal 100, ctValCcy USD)


def inverse(inst_id: str) -> bool:
    """Tell whether an instrument is coin-margined (BTC-USD-SWAP, BTC-USD-231229)."""
    return inst_id.startswith("BTC-USD-")


def kind_of(inst_id: str) -> str:
    """Return the instType of an instrument."""
    return "SWAP" if inst_id.endswith("-SWAP") else "FUTURES"
# What OKX answers an order on a contract in each state but `live` (v5 error codes 51021, 51022, 51027; a
# contract being delivered answers 51028 "Contract under delivery"): refused, never executed.
NOT_LIVE = {
    "preopen": ("51021", "Contract to be listed"),
    "suspend": ("51022", "Contract suspended"),
    "expired": ("51027", "Contract expired"),
    "delivering": ("51028", "Contract under delivery"),
}


@dataclass
class OkxDeliveryBook(OkxBook):
    """OkxBook with a long and a short on every instrument (`dated`, by instId; the swap's are `long`/`short`)."""

    dated: dict[str, tuple[LegBook, LegBook]] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)  # each dated future's mark (the swap's: `mark`)
    inst: str = SWAP  # the instrument the request being answered is for
    settled: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)  # each swap's (fundingTime ms, rate)

    def leg(self, side: str) -> LegBook:
        """Return the leg named `side` of the instrument being answered."""
        if self.inst == SWAP:
            return super().leg(side)
        long, short = self.dated.setdefault(self.inst, (LegBook(), LegBook()))
        return long if side == "long" else short

    def state_of(self, inst_id: str) -> str:
        """Return the instrument's listed state (the swap is always live)."""
        return next((str(row["state"]) for row in self.listed if row["instId"] == inst_id), "live")

    def set_state(self, inst_id: str, state: str) -> None:
        """List the instrument in `state` from now on."""
        next(row for row in self.listed if row["instId"] == inst_id)["state"] = state

    @contextmanager
    def on(self, inst_id: str) -> Iterator[None]:
        """Answer as for `inst_id`: its legs and its mark."""
        was, mark = self.inst, self.mark
        self.inst, self.mark = inst_id, self.marks.get(inst_id, self.mark)
        try:
            yield
        finally:
            self.inst, self.mark = was, mark

    def routes(self) -> Any:
        """Answer positions, marks, orders and margin changes per instrument."""
        routes = super().routes()
        routes[("GET", "/api/v5/account/positions")] = self._positions_of
        routes[("GET", "/api/v5/public/mark-price")] = self._mark_of
        routes[("POST", "/api/v5/trade/batch-orders")] = self._order_on
        routes[("POST", "/api/v5/account/position/margin-balance")] = self._margin_on
        routes[("GET", "/api/v5/account/balance")] = self._balance_with_dated_margin
        routes[("GET", "/api/v5/public/position-tiers")] = self._tiers_of
        routes[("GET", "/api/v5/public/funding-rate-history")] = self._funding_history
        return routes

    def _funding_history(self, request: RecordedRequest) -> Any:
        """GET /public/funding-rate-history: newest first, records newer than `before`, at most `limit` (100 unless asked)."""
        inst = request.query["instId"]
        before = int(request.query.get("before", -1))
        limit = int(request.query.get("limit", 100))
        rows = sorted(((t, r) for t, r in self.settled.get(inst, []) if t > before), reverse=True)[:limit]
        return _okx([
            {"formulaType": "noRate", "fundingRate": str(rate), "fundingTime": str(t), "instId": inst, "instType": "SWAP",
             "method": "current_period", "realizedRate": str(rate)}
            for t, rate in rows
        ])

    def _tiers_of(self, request: RecordedRequest) -> Any:
        if request.query.get("instFamily") != "BTC-USD":
            return self._tiers(request)
        # BTC-USD's tiers, bounded in contracts of 100 USD.
        rows = [("1", "0", "5000", "0.005", "0.01", "100"), ("2", "5001", "10000", "0.01", "0.02", "50")]
        return _okx([
            {"baseMaxLoan": "", "imr": imr, "instFamily": "BTC-USD", "instId": "", "maxLever": lev, "maxSz": hi, "minSz": lo,
             "mmr": mmr, "optMgnFactor": "0", "quoteMaxLoan": "", "tier": tier, "uly": "BTC-USD"}
            for tier, lo, hi, mmr, imr, lev in rows
        ])

    def _rows(self, inst_id: str) -> list[dict[str, Any]]:
        with self.on(inst_id):
            rows = [self._position(side, self.leg(side)) for side in ("long", "short") if self.leg(side).size > 0]
        for row in rows:
            row.update(instId=inst_id, instType=kind_of(inst_id))
            if inverse(inst_id):
                leg = self.dated[inst_id][0 if row["posSide"] == "long" else 1]
                contracts = str(leg.size / FACE)
                row.update(pos=contracts, availPos=contracts, ccy="BTC", notionalUsd=str(leg.size), margin=str(leg.margin))
        return rows

    def _positions_of(self, request: RecordedRequest) -> Any:
        wanted = request.query.get("instId")
        insts = [wanted] if wanted else [SWAP, *self.dated]
        return _okx([row for inst in insts for row in self._rows(inst)])

    def _mark_of(self, request: RecordedRequest) -> Any:
        inst = request.query.get("instId", SWAP)
        kind = kind_of(inst)
        if request.query.get("instType") != kind:
            # v5 Get mark price: instType is Required (SWAP, FUTURES, ...); the harsh reading refuses it missing.
            return Reply(_okx([], "51000", "Parameter instType error"))
        return _okx([{"instType": kind, "instId": inst, "markPx": str(self.marks.get(inst, self.mark)), "ts": str(books.NOW_MS)}])

    def _order_on(self, request: RecordedRequest) -> Any:
        assert isinstance(request.body, list), "ccxt sends OKX orders as a list to batch-orders"
        order = request.body[0]
        inst = str(order["instId"])
        state = self.state_of(inst)
        if inst != SPOT and state != "live":
            code, msg = NOT_LIVE.get(state, ("51022", "Contract suspended"))
            row = {"clOrdId": order.get("clOrdId", ""), "ordId": "", "sCode": code, "sMsg": msg, "tag": "", "ts": str(books.NOW_MS)}
            return Reply(_okx([row], "1", "All operations failed"))
        if inst == SPOT:
            return self._batch_orders(request)
        with self.on(inst):
            return self._inverse_order(order) if inverse(inst) else self._batch_orders(request)

    def _inverse_order(self, order: dict[str, Any]) -> Any:
        """Fill a market order on a coin-margined instrument: `sz` contracts of 100 USD, margin in BTC at the mark."""
        client_id, side = str(order.get("clOrdId", "")), str(order["side"])
        if client_id in self.orders:
            row = {"clOrdId": client_id, "ordId": "", "sCode": "51016", "sMsg": "Duplicated clOrdId", "tag": "", "ts": str(books.NOW_MS)}
            return Reply(_okx([row], "1", "All operations failed"))
        pos_side = str(order.get("posSide", "net"))
        self.inst_ids[client_id] = self.inst
        face = Decimal(str(order["sz"])) * FACE
        filled = self.accept(client_id, side, pos_side, face, lambda: self._fill_inverse(client_id, side, pos_side, face))
        return _okx([{"clOrdId": client_id, "ordId": filled.order_id, "sCode": "0", "sMsg": "Order placed", "tag": "", "ts": str(books.NOW_MS)}])

    def _fill_inverse(self, client_id: str, side: str, pos_side: str, face: Decimal) -> OrderBook:
        leg = self.leg(pos_side)
        if (side == "sell") == (pos_side == "short"):
            coins = (leg.size / leg.entry if leg.size else Decimal(0)) + face / self.mark
            leg.size += face
            leg.entry = leg.size / coins  # an inverse leg's entry is the harmonic mean of its fills
            if self.isolated:
                leg.margin += face / self.mark / self.leverage
        else:
            if face > leg.size:
                raise ValueError("reduce beyond the leg")
            if self.isolated:
                leg.margin -= leg.margin * face / leg.size
            leg.size -= face
            if leg.size == 0:
                leg.entry = Decimal(0)
        fee = face / self.mark * self.taker_fee
        order = OrderBook(str(next(self._ids)), client_id, side, pos_side, face, self.mark, fee, False, books.NOW_MS)
        self.orders[client_id] = order
        return order

    def _okx_order(self, order: OrderBook) -> dict[str, Any]:
        """Show an order as OKX does; a coin-margined one in contracts of 100 USD with its fee in BTC."""
        row = super()._okx_order(order)
        inst = self.inst_ids.get(order.client_id, SWAP)
        row["instType"] = kind_of(inst) if order.position_side else "SPOT"
        if order.position_side and inverse(inst):
            contracts = str(order.amount / FACE)
            row.update(sz=contracts, feeCcy="BTC", **({} if order.working else {"accFillSz": contracts, "fillSz": contracts}))
        return row

    def _margin_on(self, request: RecordedRequest) -> Any:
        with self.on(str(request.params["instId"])):
            return self._margin_balance(request)

    def _balance_with_dated_margin(self, request: RecordedRequest) -> Any:
        answer = _okx([self._balance()])
        posted = {
            ccy: sum((leg.margin for inst, pair in self.dated.items() if inverse(inst) == (ccy == "BTC") for leg in pair), Decimal(0))
            for ccy in ("USDT", "BTC")
        }
        for row in answer["data"][0]["details"]:
            if row["ccy"] in posted:
                # An isolated leg's margin is frozen (in USDT on a USDT contract, in BTC on a coin-margined one).
                row["availBal"] = row["availEq"] = str(Decimal(row["availBal"]) - posted[row["ccy"]])
                row["frozenBal"] = row["isoEq"] = str(Decimal(row["frozenBal"]) + posted[row["ccy"]])
        return answer
