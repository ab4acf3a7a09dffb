"""An OKX trading account whose legs live on each instrument: the USDT swap and its dated futures, each with its own
mark, in OKX v5's documented shapes, refusing an order on a contract that is not `live` as OKX does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import tests.exchange.books as books
from tests.exchange.books import LegBook, OkxBook, _okx
from tests.exchange.ccxt_recorder import RecordedRequest, Reply

SWAP = "BTC-USDT-SWAP"
SPOT = "BTC-USDT"
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
        return routes

    def _rows(self, inst_id: str) -> list[dict[str, Any]]:
        with self.on(inst_id):
            rows = [self._position(side, self.leg(side)) for side in ("long", "short") if self.leg(side).size > 0]
        for row in rows:
            row.update(instId=inst_id, instType="SWAP" if inst_id == SWAP else "FUTURES")
        return rows

    def _positions_of(self, request: RecordedRequest) -> Any:
        wanted = request.query.get("instId")
        insts = [wanted] if wanted else [SWAP, *self.dated]
        return _okx([row for inst in insts for row in self._rows(inst)])

    def _mark_of(self, request: RecordedRequest) -> Any:
        inst = request.query.get("instId", SWAP)
        kind = "SWAP" if inst == SWAP else "FUTURES"
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
            return self._batch_orders(request)

    def _margin_on(self, request: RecordedRequest) -> Any:
        with self.on(str(request.params["instId"])):
            return self._margin_balance(request)

    def _balance_with_dated_margin(self, request: RecordedRequest) -> Any:
        answer = _okx([self._balance()])
        posted = sum((leg.margin for pair in self.dated.values() for leg in pair), Decimal(0))
        for row in answer["data"][0]["details"]:
            if row["ccy"] == "USDT":
                # An isolated future's margin is frozen like the swap's: not free.
                row["availBal"] = row["availEq"] = str(Decimal(row["availBal"]) - posted)
                row["frozenBal"] = row["isoEq"] = str(Decimal(row["frozenBal"]) + posted)
        return answer
