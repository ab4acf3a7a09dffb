"""equity.csv's cells, formatted straight from the floats, read exactly as each figure's text: same digits, same rounding."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from hedgebot.commands.backtest.outputs import _cell, _cells, _times, iso
from hedgebot.ops.figures import Figure, Precision
from tests.helpers import btc_market

PRECISIONS = [Precision.of(btc_market()), Precision()]
KINDS = [Figure.PRICE, Figure.MONEY, Figure.AMOUNT, Figure.RATIO]
# Ties at the shown places (1.015, 0.125, 2.5), signed zeros, the far ends of a float, and what is not a number.
EDGES = [0.0, -0.0, 1.015, -1.015, 0.125, 2.5, 0.00015, 1e-12, -1e-12, 5e-5, 123456789012345.67, math.inf, -math.inf, math.nan]
# Beyond 1e15 the figure's own text cannot quantize a price to the cent either (decimal.InvalidOperation, as before).
LARGEST = 1e15


@given(st.lists(st.one_of(st.floats(-LARGEST, LARGEST), st.sampled_from(EDGES),
                          st.integers(-10**9, 10**9).map(lambda n: n / 1000)), max_size=200))
def test_each_cell_reads_as_the_figures_own_text(values: list[float]) -> None:
    for precision in PRECISIONS:
        for kind in KINDS:
            assert _cells(values, kind, precision) == [_cell(v, kind, precision) for v in values]


def test_times_read_as_iso_whole_seconds_or_not() -> None:
    whole = [1_609_459_200.0 + 60 * i for i in range(3000)]
    assert _times(whole) == [iso(t) for t in whole]
    assert _times([1.5, 2.0, 1_700_000_000.999999]) == [iso(1.5), iso(2.0), iso(1_700_000_000.999999)]
