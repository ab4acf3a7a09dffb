"""The Binance emulator's margin arithmetic: pure functions of the book, changing nothing.

It owns the formulas Binance's margin rules give: a leg's side and unrealized PnL, the maintenance margin
of its bracket, the cross legs of a wallet, the bankruptcy price and the liquidation price (USDⓈ-M's
linear formula and COIN-M's inverse one). The exchange (`binance_exchange`) applies them when it
liquidates; the REST routes show them. It may NOT change the book, and imports only the book's data.
"""

from __future__ import annotations

from decimal import Decimal

from hedgebot.testing.binance_book import Book, Position, SymbolSpec

D = Decimal
ZERO = D(0)


def wallet_of(book: Book, api: str) -> dict[str, str]:
    """Return the cross wallet of an API family: USDⓈ-M's (fapi) or COIN-M's (dapi), kept apart as Binance keeps them."""
    return book.coinm if api == "dapi" else book.futures


def is_short(side: str, pos: Position) -> bool:
    """Tell whether a leg is short: the SHORT leg, or a one-way (BOTH) leg of negative amount."""
    return side == "SHORT" or (side == "BOTH" and D(pos.amount) < 0)


def leg_pnl(spec: SymbolSpec, side: str, pos: Position, mark: Decimal) -> Decimal:
    """Return a leg's unrealized profit at `mark` in its margin asset."""
    return spec.pnl(is_short(side, pos), D(pos.entry), abs(D(pos.amount)), mark)


def bracket(spec: SymbolSpec, notional: Decimal) -> tuple[Decimal, Decimal]:
    """Return the maintenance ratio and maintenance amount (cum) of the bracket holding `notional`."""
    for _floor, cap, ratio, cum, _lev in spec.brackets:
        if notional <= cap:
            return D(ratio), D(cum)
    _floor, _cap, ratio, cum, _lev = spec.brackets[-1]
    return D(ratio), D(cum)


def maintenance_margin(spec: SymbolSpec, size: Decimal, price: Decimal) -> Decimal:
    """Return the maintenance margin of a leg of `size` at `price`, in its margin asset."""
    value = spec.value(size, price)
    ratio, cum = bracket(spec, value)
    return max(ZERO, value * ratio - cum)


def cross_legs(book: Book, api: str, asset: str) -> list[tuple[str, str, Position]]:
    """Return (symbol, side, leg) of every open cross leg of one family margined in `asset`."""
    return [
        (sym, side, pos) for key, pos in book.positions.items()
        for sym, _, side in [key.partition("|")]
        for spec in [book.symbols[sym]]
        if D(pos.amount) != 0 and spec.api == api and spec.settle == asset and spec.margin_type == "CROSSED"
    ]


def bankruptcy(spec: SymbolSpec, short: bool, entry: Decimal, size: Decimal, wallet: Decimal) -> Decimal | None:
    """Return the price at which a leg's wallet plus PnL is zero (None: an inverse short no rally bankrupts)."""
    if not spec.inverse:
        return entry + wallet / size if short else max(ZERO, entry - wallet / size)
    face = size * D(spec.contract_size)
    inverse_price = 1 / entry - wallet / face if short else 1 / entry + wallet / face
    return 1 / inverse_price if inverse_price > 0 else None


def liquidation_price(book: Book, symbol: str, side: str) -> Decimal:
    """Return the mark at which a leg is liquidated (0 when none), the other cross legs held at today's mark.

    The leg's margin balance (backing plus PnL) meets its maintenance margin, solved on each bracket:
    USDⓈ-M's linear formula, or COIN-M's inverse one (developers.binance.com, COIN-M "Liquidation Price"):
    LP = (Q x CS x MMR + Side x Q x CS) / (WB + cum + Side x Q x CS / EP), Side 1 long and -1 short. An
    inverse short whose backing covers its whole value at entry has no liquidation price on a rally.
    """
    pos = book.positions.get(f"{symbol}|{side}", Position())
    size = abs(D(pos.amount))
    spec = book.symbols[symbol]
    if size == 0:
        return ZERO
    if spec.margin_type == "ISOLATED":
        backing = D(pos.isolated_wallet)
    else:
        backing = D(wallet_of(book, spec.api).get(spec.settle, "0"))
        for sym, other_side, other in cross_legs(book, spec.api, spec.settle):
            if (sym, other_side) != (symbol, side):
                other_spec = book.symbols[sym]
                mark = D(other_spec.mark)
                backing += leg_pnl(other_spec, other_side, other, mark) - maintenance_margin(other_spec, abs(D(other.amount)), mark)
    entry = D(pos.entry)
    short = is_short(side, pos)
    for floor, cap, ratio, cum, _lev in spec.brackets:
        r, c = D(ratio), D(cum)
        if spec.inverse:
            face = size * D(spec.contract_size)
            # backing + face x (1/E - 1/P) x side = face x r / P - c, solved for P
            if short:
                denominator = face / entry - backing - c
                if denominator <= 0:
                    continue  # enough coins behind the short to pay any rally on this tier
                price = face * (1 - r) / denominator
            else:
                price = face * (1 + r) / (backing + c + face / entry)
            value = face / price
        else:
            # backing + pnl(P) = size * P * r - c, solved for P on this bracket
            if short:
                price = (backing + entry * size + c) / (size * (1 + r))
            else:
                price = (entry * size - backing - c) / (size * (1 - r))
            value = size * price
        if floor < value <= cap:
            return max(ZERO, price)
    return ZERO
