"""An offline Binance (USDⓈ-M and COIN-M futures, spot, wallet) emulator that unmodified ccxt talks to.

COIN-M (`/dapi/`, ccxt's `binancecoinm`) runs on the same book and handlers as USDⓈ-M (`/fapi/`): a
contract's `SymbolSpec` says whether it is linear or inverse (contracts of `contract_size` USD,
margin, PnL, fees and funding in the coin, its own wallet `Book.coinm` and position mode), and one
set of formulas answers both. Faults, lookup lag, weights and liquidation apply to both alike.

An aiohttp application on 127.0.0.1 answering the REST endpoints hedgebot
uses, at Binance's own paths, with Binance's documented response shapes and
error codes. Point a ccxt client at it by rewriting `urls['api']` (see
`hedgebot.exchange.ccxt_venue.rewrite_api_urls`). It keeps its own book:
spot and futures wallets, both legs of each symbol with entry price and
isolated margin, orders by client id, margin and transfer history, funding
income, brackets, position mode. Every signed request is checked as Binance
checks it: API key, HMAC-SHA256 signature over the query and body,
timestamp within `recvWindow`.

For tests it can inject faults (timeouts before or after executing, 429 with
Retry-After, 5xx, -1021) and move the mark price. Control endpoints live
under `/_emulator/` (never part of Binance's API); `/_emulator/requests` lists
every request with the API key it came under and when it arrived, and every
order carried out, so a test can tell which of two daemons sent what.

Run by hand:

    python -m hedgebot.testing.binance_emulator --port 8765 --key demo:demosecret --state var/emulator.json

It also serves Binance's websocket streams (`hedgebot.testing.binance_streams`):
the user-data stream (ACCOUNT_UPDATE, ORDER_TRADE_UPDATE) for a listen key, and
the mark-price stream, which pushes again each time `/_emulator/mark` moves it.

It counts Binance's request weight per IP and minute
(`hedgebot.testing.binance_limits`): `X-MBX-USED-WEIGHT-1M` on every answer,
429 with Retry-After past the limit, 418 with the ban's end for a client
that keeps sending inside the Retry-After period.

A liquidation engine runs on every mark change and funding payment: a leg whose
margin balance falls below its maintenance margin on the mark is closed by an
`autoclose-` order of the exchange's own (order history, ORDER_TRADE_UPDATE,
REALIZED_PNL and INSURANCE_CLEAR income), its margin lost; `auto_deleverage`
(`/_emulator/adl`) closes a profitable leg the same way with `adl_autoclose-`.

Limits: COIN-M's streams are not served (its events never reach the USDⓈ-M user stream); delivery
contracts are listed (`quarterly`) and settled when asked (`deliver`, `/_emulator/deliver`), not on
their date; market orders only, filled at the mark (under the `partial_fill` fault in
part, the rest EXPIRED); liquidation takes the whole margin at once (no partial
liquidation by tier); ADL only when asked.

Its parts, imports running one way (each imports only those listed before it):
- `binance_answers`: refusals (`BinanceError`), Binance's decimals, signatures, parameter reading;
- `binance_book`: what the exchange knows, as data (contracts, keys, legs, wallets, orders);
- `binance_margin`: the margin arithmetic over the book (PnL, maintenance, liquidation price);
- `binance_exchange`: what the exchange does (matching, funding, delivery, liquidation, lookup lag);
- `binance_faults`: the faults a test injects (`Fault`) and what each does to a request;
- `binance_rest`: the aiohttp application (`Emulator`): routes, signatures, weights, faults, controls;
- `binance_streams`: the websockets (`StreamHub`), added to the application by `route_installers`;
- this module: serving it, and the command line.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from hedgebot.testing.binance_book import KeySpec, delivery_symbol, quarterly
from hedgebot.testing.binance_rest import Emulator
from hedgebot.testing.binance_streams import StreamHub

D = Decimal


async def serve(emulator: Emulator, host: str, port: int) -> web.AppRunner:
    """Start serving on host:port; return the runner (call `cleanup()` to stop)."""
    runner = web.AppRunner(emulator.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _parse_key(text: str) -> tuple[str, KeySpec]:
    parts = text.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"--key {text!r}: expected KEY:SECRET[:withdraw][:noip]")
    return parts[0], KeySpec(
        parts[1], can_withdraw="withdraw" in parts[2:], ip_restrict="noip" not in parts[2:], futures="nofutures" not in parts[2:]
    )


def serve_until_interrupted(emulator: Emulator, host: str, port: int, note: str) -> int:
    """Serve the emulator on host:port until interrupted, saying where it listens first; return the exit status."""

    async def run() -> None:
        runner = await serve(emulator, host, port)
        print(f"binance emulator on http://{host}:{port} {note}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def server_arguments(prog: str, description: str) -> argparse.ArgumentParser:
    """Return a command line parser with the arguments every emulator server takes: --host and --port."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    parser = server_arguments("binance_emulator", "Offline Binance USDⓈ-M/COIN-M/spot emulator for ccxt.")
    parser.add_argument("--key", type=_parse_key, action="append", default=[], help="KEY:SECRET[:withdraw][:noip]")
    parser.add_argument("--state", type=Path, help="keep the book in this JSON file (survives restarts)")
    parser.add_argument("--spot", action="append", default=[], help="ASSET=AMOUNT credited to spot on a new book")
    parser.add_argument("--futures", action="append", default=[], help="ASSET=AMOUNT credited to futures on a new book")
    parser.add_argument("--coinm", action="append", default=[], help="ASSET=AMOUNT credited to the COIN-M wallet on a new book")
    parser.add_argument("--mark", default=None, help="BTCUSDT and BTCUSD_PERP mark price on a new book")
    parser.add_argument("--hedge-mode", action="store_true", help="start a new book in hedge mode (USDⓈ-M and COIN-M)")
    parser.add_argument("--clock-offset", type=float, default=0.0, help="seconds the exchange's clock runs ahead (negative: behind)")
    parser.add_argument(
        "--quarterly", action="append", default=[], metavar="YYMMDD",
        help="list BTCUSDT_YYMMDD and BTCUSD_YYMMDD, delivered that day at 08:00 UTC (or at @EPOCH_SECONDS), on a new book",
    )
    args = parser.parse_args(argv)
    fresh = args.state is None or not args.state.exists()
    emulator = Emulator(state_path=args.state, clock_offset_seconds=args.clock_offset)
    for api_key, spec in args.key:
        emulator.book.keys[api_key] = spec
    if fresh:
        credits = [(t, "spot") for t in args.spot] + [(t, "futures") for t in args.futures] + [(t, "coinm") for t in args.coinm]
        for text, wallet in credits:
            asset, _, amount = text.partition("=")
            emulator.deposit(wallet, asset, D(amount))
        if args.mark:
            emulator.set_mark("BTCUSDT", D(args.mark))
            emulator.set_mark("BTCUSD_PERP", D(args.mark))
        emulator.book.dual_side = emulator.book.coinm_dual_side = args.hedge_mode

        def delivery_of(day: str) -> int:
            if day.startswith("@"):  # a test's own delivery time (Binance delivers at 08:00 UTC)
                return int(float(day[1:]) * 1000)
            return int(datetime.strptime(day, "%y%m%d").replace(hour=8, tzinfo=UTC).timestamp() * 1000)

        for n, delivery_ms in enumerate(sorted(delivery_of(day) for day in args.quarterly)):
            for perpetual in ("BTCUSDT", "BTCUSD_PERP"):
                spec = quarterly(emulator.book.symbols[perpetual], delivery_ms, ("CURRENT_QUARTER", "NEXT_QUARTER")[min(n, 1)])
                emulator.book.symbols[delivery_symbol(spec, delivery_ms)] = spec
    emulator.save()
    StreamHub(emulator)  # listen keys and the user-data and mark-price websockets

    return serve_until_interrupted(emulator, args.host, args.port, f"(state: {args.state or 'memory'})")


if __name__ == "__main__":
    raise SystemExit(main())
