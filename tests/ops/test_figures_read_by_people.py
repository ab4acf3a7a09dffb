"""After a paper run, every figure a user reads in `status`, `history` and `report` is at its kind's precision.

Amounts at the market's step, prices at the price step, money to the margin step (or, in the ledger and the
report's JSON, as the wallet booked it: 8 decimals at most, so rows add up), ratios to 4 decimals; never an
exponent, never 28 digits.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

from hedgebot.commands.main import main
from hedgebot.exchange.binance_rules import default_market
from hedgebot.ops.figures import Precision
from tests.helpers import paper_run

EXPONENT = re.compile(r"(?<![\w.])\d+(\.\d+)?[eE][+-]?\d+(?![\w.])")  # a whole number in exponent form, not a client id's "9e5"
LONG_FRACTION = re.compile(r"\d\.\d{9,}")  # more decimals than any wallet books


def _places(text: str) -> int:
    return max(0, -int(Decimal(text).as_tuple().exponent))


async def _paper_run(tmp_path) -> str:
    return str(await paper_run(tmp_path, futures={"USDT": "36000"}))  # tight: the guard moves spot USDT to the short


def _read(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().out


async def test_after_a_paper_run_no_figure_a_user_reads_has_an_exponent_or_more_digits_than_its_kind(tmp_path, capsys) -> None:
    config = await _paper_run(tmp_path)
    outputs = {
        "status": _read(capsys, "status", "--config", config),
        "status --json": _read(capsys, "status", "--config", config, "--json"),
        "history": _read(capsys, "history", "--config", config, "--hedge", "btc-core"),
        "report": _read(capsys, "report", "--config", config),
        "report --json": _read(capsys, "report", "--config", config, "--json"),
        "report --csv": _read(capsys, "report", "--config", config, "--csv"),
    }
    for name, out in outputs.items():
        assert not EXPONENT.search(out), f"{name}: {EXPONENT.search(out).group()} in\n{out}"  # type: ignore[union-attr]
        assert not LONG_FRACTION.search(out), f"{name}: {LONG_FRACTION.search(out).group()} in\n{out}"  # type: ignore[union-attr]

    [report] = json.loads(outputs["report --json"])["hedges"]
    assert _places(report["worst_liquidation_distance"]) == 4, report  # a ratio, to 4 decimals
    assert _places(report["first_price"]) == _places(report["last_price"]) == 1, report  # BTC/USDT:USDT's price step 0.1
    assert _places(report["short_at_end"]) == _places(report["exposure_at_start"]) == 3, report  # amount step 0.001

    # The position before each fill is an amount at the step; a transfer of USDT is money, at the cent.
    history = outputs["history"]
    befores = re.findall(r" before=(\S+)", history)
    assert befores and all(_places(b) == 3 for b in befores), befores
    transfers = re.findall(r"transferred +amount=(\S+) asset=USDT", history)
    assert transfers and all(_places(t) == 2 for t in transfers), transfers


class _KeptLines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict]] = []

    def __getattr__(self, level: str):
        return lambda event, **fields: self.lines.append((event, fields))


def test_an_unwinds_end_and_its_alert_text_show_plain_figures_never_a_decimal_repr() -> None:
    from hedgebot.domain.model import Severity
    from hedgebot.ops.events import EventLog
    from hedgebot.ops.senders import describe_event

    logged = _KeptLines()
    told: list[str] = []
    events = EventLog(None, logged)
    events.subscribe(lambda record: told.append(describe_event(record)))
    events.emit("paper", "eth", "unwind_completed", Severity.INFO, unwind=2, short_bought_back=Decimal("1E+1"))
    assert logged.lines.pop() == ("unwind_completed", {"account": "paper", "hedge": "eth", "unwind": 2, "short_bought_back": "10"})
    assert told.pop() == "unwind=2, short_bought_back=10"  # no market loaded: plain digits, no step guessed
    events.show_figures("paper", "btc-core", Precision.of(default_market("BTC/USDT:USDT")))  # amounts 0.001, money 0.01
    events.emit(
        "paper", "btc-core", "unwind_completed", Severity.INFO, unwind=1, short_bought_back=Decimal("2.0"),
        spot_sold=Decimal("0"), short_left=Decimal("0.00"), margin_to_spot=Decimal("0"), spot_left=Decimal("2.0"),
        rate=Decimal("1E-7"),  # a figure of no known kind: plain digits, not Decimal('1E-7')
    )
    [(_, fields)] = logged.lines
    assert fields["short_bought_back"] == "2.000" and fields["short_left"] == "0.000" and fields["margin_to_spot"] == "0.00"
    assert fields["rate"] == "0.0000001", fields
    assert "Decimal" not in told[0] and "E-" not in told[0] and "short_bought_back=2.000" in told[0], told


def test_a_transfer_of_the_quote_asset_is_shown_as_booked_never_rounded_up_to_more_than_moved() -> None:
    from hedgebot.ops.figures import render_detail

    shown = Precision.of(default_market("BTC/USDT:USDT"))
    detail = render_detail({"asset": "USDT", "amount": Decimal("12.345678"), "from": "spot", "to": "futures"}, shown)
    assert detail["amount"] == "12.345678"  # not 12.35: more than was moved
    assert render_detail({"asset": "BTC", "amount": Decimal("0.5004")}, shown)["amount"] == "0.500"  # coins stay on their step
    # The coins a transfer's detail also names (held elsewhere, say) stay coins on their step.
    assert render_detail({"asset": "USDT", "amount": Decimal("12.5"), "exposure_elsewhere": "3"}, shown)["exposure_elsewhere"] == "3.000"


def test_a_daemon_wide_events_fields_keep_their_values_in_the_structured_log() -> None:
    from hedgebot.ops.figures import render_detail

    detail = {"since": 1_600_000_000.5, "waited_seconds": 0.4, "ratio": Decimal("0.123456"), "amount": Decimal("1E-7")}
    shown = render_detail(detail, None)  # no market: nothing is rounded to a kind's format
    assert shown == {"since": 1_600_000_000.5, "waited_seconds": 0.4, "ratio": "0.123456", "amount": "0.0000001"}
