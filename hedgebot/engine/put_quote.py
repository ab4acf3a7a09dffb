"""Whether an option's quote is a price the put leg may trade at: one pure function of the quote and the tick.

Owns the reach a quote may stand from its mark (MAX_OVER_MARK, or one tick). It may not read a venue or size an
order: the put leg asks it about a quote it already holds.
"""

from __future__ import annotations

from decimal import Decimal

from hedgebot.exchange.paper_options import OptionQuoteBook

# A quote whose ask is more than this above its mark (or whose bid is more than this below it) is no market.
MAX_OVER_MARK = Decimal("0.05")


def quote_problem(quote: OptionQuoteBook | None, side: str, tick: Decimal) -> str | None:
    """Return why `quote` is no price to buy (or sell) a put at, or None when it is within reach of its mark.

    Within reach: at most 5 % of the mark, or one price `tick`, whichever is larger, from the mark. A cheap put's
    nearest price may be a whole tick from its mark (Binance's 5 USDT on a put marked 3): without the tick it could
    never be bought.
    """
    if quote is None or not quote.mark.is_finite() or quote.mark <= 0:
        return "no mark"
    if side == "buy" and quote.ask <= 0:
        return "no ask: nobody offers this put"  # a live book's empty offer side reads as an ask of 0
    by_percent = quote.mark * MAX_OVER_MARK
    allowed = max(by_percent, tick)
    reach = f"{MAX_OVER_MARK:.0%}" if by_percent >= tick else f"one tick ({tick})"
    if side == "buy" and quote.ask > quote.mark + allowed:
        return f"ask {quote.ask} is more than {reach} above the mark {quote.mark}"
    if side == "sell" and (quote.bid <= 0 or quote.bid < quote.mark - allowed):
        return f"bid {quote.bid} is more than {reach} below the mark {quote.mark}"
    return None
