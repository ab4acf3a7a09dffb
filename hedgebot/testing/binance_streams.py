"""Binance's websocket side for the emulator: listen keys, the user-data stream and the mark-price stream.

Unmodified ccxt (ccxt.pro) talks to it with its websocket URLs rewritten to
the emulator, as its REST URLs are:
- `POST/PUT/DELETE /fapi/v1/listenKey` (API key only, as Binance's
  USER_STREAM endpoints) create, keep alive and close a listen key; a key
  not kept alive for `listen_key_ttl` seconds expires, as Binance's do after
  60 minutes, and its stream is told `listenKeyExpired`;
- `/private/ws?listenKey=<key>` (or `/ws/<key>`) pushes ACCOUNT_UPDATE and ORDER_TRADE_UPDATE events for
  every fill, funding settlement and forced order the emulator makes;
- `/market/ws/<n>` (or `/ws/<n>`) is a market stream: `SUBSCRIBE` to `btcusdt@markPrice[@1s]` and
  each mark move is pushed as a markPriceUpdate;
- `/ws-api/v3` is the spot WebSocket API: `userDataStream.subscribe.signature` (signed as a REST request,
  with `apiKey`, `timestamp` and `signature` in its params) subscribes the connection to the spot account's
  user data, and each change of a spot balance is pushed as outboundAccountPosition (free `f`, locked `l`),
  wrapped as {"subscriptionId": n, "event": {...}}.
Every change of the book the emulator did not push itself (a deposit, a transfer, a margin change) is pushed
as Binance does: ACCOUNT_UPDATE on the futures user stream (`DEPOSIT`, `WITHDRAW` or `MARGIN_TRANSFER`),
outboundAccountPosition on the spot one.
Tests can drop every socket (`drop`), keep the market stream connected but
silent (`mute`), expire listen keys (`expire_listen_keys`), and lose the pushes of chosen kinds (`lose`),
as Binance's docs allow ("may be delayed or lost").

It owns the sockets, the listen keys and what is pushed on them. It may NOT change the book: it reads
it and hears the exchange's events (`Exchange.listeners`, `saved_listeners`). It takes from the REST side
(`binance_rest`) only the application to add its routes to and the shape of a refusal; nothing there
imports it back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from hedgebot.testing.binance_answers import BinanceError, bad_signature, key_refused, plain, signed_by
from hedgebot.testing.binance_rest import Emulator, error_response


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    listen_key: str | None  # None for a market stream
    topics: set[str] = field(default_factory=set)
    subscription: int | None = None  # a WebSocket API connection subscribed to the spot user data


class StreamHub:
    """The emulator's websocket streams."""

    def __init__(self, emulator: Emulator, *, listen_key_ttl: float = 3600.0) -> None:
        self.emulator = emulator
        self.listen_key_ttl = listen_key_ttl
        self.listen_keys: dict[str, float] = {}  # key -> time it expires
        self.keepalives = 0
        self.muted = False
        self.sockets: list[_Socket] = []
        self.connections = 0
        self.refusing = False  # a cut that lasts: new websockets are refused until `restore`
        self._ids = itertools.count(1)
        self.lost: set[str] = set()  # event kinds not delivered (`lose`)
        self.lost_count = 0
        self._spot_seen = self._spot_view()
        self._futures_seen = self._futures_view()
        emulator.listeners.append(self._on_event)
        emulator.route_installers.append(self._install)
        emulator.saved_listeners.append(self._on_saved)

    # ---- test controls -----------------------------------------------------------------

    async def drop(self) -> None:
        """Close every websocket, as a network cut would."""
        for socket in list(self.sockets):
            await socket.ws.close()
        self.sockets.clear()

    async def cut(self) -> None:
        """Close every websocket and refuse new ones until `restore`, as a lasting network cut would."""
        self.refusing = True
        await self.drop()

    def restore(self) -> None:
        """Accept websockets again after a `cut`."""
        self.refusing = False

    def mute(self, muted: bool = True) -> None:
        """Keep the market stream connected but send nothing (or speak again)."""
        self.muted = muted

    def expire_listen_keys(self) -> None:
        """Expire every listen key now, telling its stream `listenKeyExpired`."""
        for key in list(self.listen_keys):
            self._expire(key)

    def lose(self, *kinds: str) -> None:
        """Deliver no event of these kinds (e.g. ACCOUNT_UPDATE, outboundAccountPosition) until `lose()` with none."""
        self.lost = set(kinds)

    def spot_sockets(self) -> int:
        """Return how many WebSocket API connections are subscribed to the spot user data."""
        return sum(1 for s in self.sockets if s.subscription is not None and not s.ws.closed)

    def market_sockets(self) -> int:
        """Return how many market-stream sockets are connected."""
        return sum(1 for s in self.sockets if s.listen_key is None and not s.ws.closed)

    def mark_subscribers(self, symbol: str) -> int:
        """Return how many market sockets subscribed to `symbol`'s mark price (Binance id, e.g. BTCUSDT)."""
        return sum(1 for s in self.sockets if s.listen_key is None and not s.ws.closed and _wants_mark(s.topics, symbol.lower()))

    def user_sockets(self) -> int:
        """Return how many user-data sockets are connected."""
        return sum(1 for s in self.sockets if s.listen_key is not None and not s.ws.closed)

    # ---- the REST side -------------------------------------------------------------------

    def _install(self, router: web.UrlDispatcher) -> None:
        router.add_post("/fapi/v1/listenKey", self._listen_key)
        router.add_put("/fapi/v1/listenKey", self._listen_key)
        router.add_delete("/fapi/v1/listenKey", self._listen_key)
        # Binance's USDⓈ-M routes: /market/ws/<n> for market data, /private/ws?listenKey=<key> for the
        # account (ccxt >= 4.5 uses these), and the older /ws/<n>, /ws/<listenKey>.
        for prefix in ("", "/{category}"):
            router.add_get(f"{prefix}/ws/{{tail}}", self._socket)
            router.add_get(f"{prefix}/ws", self._socket)
        router.add_get("/ws-api/v3", self._ws_api)

    def _check_key(self, request: web.Request) -> None:
        if request.headers.get("X-MBX-APIKEY") not in self.emulator.book.keys:
            raise key_refused()

    async def _listen_key(self, request: web.Request) -> web.Response:
        try:
            self._check_key(request)
            self._expire_overdue()
            now = self.emulator._now()
            if request.method == "POST":
                key = next(iter(self.listen_keys), None) or f"emulatorListenKey{next(self._ids):04d}"
                self.listen_keys[key] = now + self.listen_key_ttl
                return web.json_response({"listenKey": key})
            key = request.query.get("listenKey") or (await request.post()).get("listenKey") or next(iter(self.listen_keys), None)
            if key not in self.listen_keys:
                raise BinanceError(-1125, "This listenKey does not exist.")
            if request.method == "PUT":
                self.keepalives += 1
                self.listen_keys[str(key)] = now + self.listen_key_ttl
                return web.json_response({"listenKey": key})
            self.listen_keys.pop(str(key), None)
            return web.json_response({})
        except BinanceError as exc:
            return error_response(exc)

    def _expire_overdue(self) -> None:
        now = self.emulator._now()
        for key, until in list(self.listen_keys.items()):
            if until < now:
                self._expire(key)

    def _expire(self, key: str) -> None:
        self.listen_keys.pop(key, None)
        event = {"e": "listenKeyExpired", "E": self.emulator.now_ms(), "listenKey": key}
        for socket in self.sockets:
            if socket.listen_key == key:
                self._send(socket, event)

    # ---- the websocket side -----------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        if self.refusing:
            raise web.HTTPServiceUnavailable(text="the network is cut")
        tail = request.query.get("listenKey") or request.match_info.get("tail", "")
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        self._expire_overdue()
        socket = _Socket(ws, tail if tail in self.listen_keys else None)
        if tail and not tail.isdigit() and socket.listen_key is None:
            await ws.close(message=b"unknown listen key")
            return ws
        self.sockets.append(socket)
        self.connections += 1
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                self._on_request(socket, json.loads(message.data))
        finally:
            if socket in self.sockets:
                self.sockets.remove(socket)
        return ws

    async def _ws_api(self, request: web.Request) -> web.WebSocketResponse:
        """Serve the spot WebSocket API's user-data subscription."""
        if self.refusing:
            raise web.HTTPServiceUnavailable(text="the network is cut")
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        socket = _Socket(ws, None)
        self.sockets.append(socket)
        self.connections += 1
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._send(socket, self._ws_api_answer(socket, json.loads(message.data)))
        finally:
            if socket in self.sockets:
                self.sockets.remove(socket)
        return ws

    def _ws_api_answer(self, socket: _Socket, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one WebSocket API request (only the spot user-data subscription is modelled)."""
        ident = request.get("id")
        params = {str(k): str(v) for k, v in (request.get("params") or {}).items()}
        if request.get("method") != "userDataStream.subscribe.signature":
            return _ws_error(ident, BinanceError(-1100, f"emulator: WebSocket API method {request.get('method')!r} is not modelled"))
        key = self.emulator.book.keys.get(params.get("apiKey", ""))
        if key is None:
            return _ws_error(ident, key_refused())
        signature = params.pop("signature", "")
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        if not signed_by(key.secret, payload, signature):
            return _ws_error(ident, bad_signature())
        socket.subscription = next(self._ids)
        return {"id": ident, "status": 200, "result": {"subscriptionId": socket.subscription}}

    # ---- pushes of what changed ---------------------------------------------------------------

    def _spot_view(self) -> dict[str, str]:
        return dict(self.emulator.book.spot)

    def _futures_view(self) -> tuple[dict[str, tuple[Decimal, Decimal]], dict[str, tuple[str, str, str]]]:
        book = self.emulator.book
        isolated: dict[str, Decimal] = {}
        # USDⓈ-M's own wallet and legs only: COIN-M's have streams of their own (not served).
        fapi = {key: pos for key, pos in book.positions.items() if book.symbols[key.partition("|")[0]].api == "fapi"}
        for key, pos in fapi.items():
            quote = book.symbols[key.partition("|")[0]].quote
            isolated[quote] = isolated.get(quote, Decimal(0)) + Decimal(pos.isolated_wallet)
        assets = {a: (Decimal(cash) + isolated.get(a, Decimal(0)), Decimal(cash)) for a, cash in book.futures.items()}
        legs = {key: (pos.amount, pos.entry, pos.isolated_wallet) for key, pos in fapi.items()}
        return assets, legs

    def _on_saved(self) -> None:
        """Push what changed in the book since the last push: a spot balance, or a futures wallet or leg."""
        spot = self._spot_view()
        changed = sorted(a for a in spot.keys() | self._spot_seen.keys() if spot.get(a) != self._spot_seen.get(a))
        self._spot_seen = spot
        if changed:
            now = self.emulator.now_ms()
            event = {"e": "outboundAccountPosition", "E": now, "u": now,
                     "B": [{"a": a, "f": spot.get(a, "0.00000000"), "l": "0.00000000"} for a in changed]}
            for socket in list(self.sockets):
                if socket.subscription is not None:
                    self._deliver(socket, {"subscriptionId": socket.subscription, "event": event}, event["e"])
        assets, legs = self._futures_view()
        seen_assets, seen_legs = self._futures_seen
        if (assets, legs) == (seen_assets, seen_legs):
            return
        moved = [key for key in legs.keys() | seen_legs.keys() if legs.get(key) != seen_legs.get(key)]
        for asset, (wallet, cross) in assets.items():
            before = seen_assets.get(asset, (Decimal(0), Decimal(0)))[0]
            change = wallet - before
            reason = "DEPOSIT" if change > 0 else "WITHDRAW" if change < 0 else "MARGIN_TRANSFER"
            event = self.emulator.account_update(reason, asset, change, *moved[0].split("|")) if moved else None
            if event is None:
                if (wallet, cross) == seen_assets.get(asset):
                    continue
                now = self.emulator.now_ms()
                event = {"e": "ACCOUNT_UPDATE", "E": now, "T": now,
                         "a": {"m": reason, "B": [{"a": asset, "wb": plain(wallet), "cw": plain(cross), "bc": plain(change)}], "P": []}}
            self.emulator.publish(event)  # seen again by _on_event, which takes the book as pushed
        self._futures_seen = (assets, legs)

    def _on_request(self, socket: _Socket, request: dict[str, Any]) -> None:
        method = request.get("method")
        params = [str(p).lower() for p in request.get("params") or []]
        if method == "SUBSCRIBE":
            socket.topics.update(params)
        elif method == "UNSUBSCRIBE":
            socket.topics.difference_update(params)
        self._send(socket, {"result": None, "id": request.get("id")})

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("e"))
        if self._symbol_api(event) == "dapi":
            return  # COIN-M has its own streams (not served): its events never reach USDⓈ-M's
        if kind == "ACCOUNT_UPDATE":
            self._futures_seen = self._futures_view()  # the emulator pushed the book as it is now
        for socket in list(self.sockets):
            if kind == "markPriceUpdate":
                if socket.listen_key is None and not self.muted and _wants_mark(socket.topics, str(event["s"]).lower()):
                    self._send(socket, event)
            elif socket.listen_key is not None:
                self._deliver(socket, event, kind)

    def _deliver(self, socket: _Socket, event: dict[str, Any], kind: str) -> None:
        if kind in self.lost:
            self.lost_count += 1
            return
        self._send(socket, event)

    def _symbol_api(self, event: dict[str, Any]) -> str:
        """Return the API family of the contract an event is about ("fapi" when it names none)."""
        symbol = event.get("s")
        if symbol is None and isinstance(event.get("o"), dict):
            symbol = event["o"].get("s")
        if symbol is None and isinstance(event.get("a"), dict):
            legs = event["a"].get("P") or [{}]
            symbol = legs[0].get("s")
        spec = self.emulator.book.symbols.get(str(symbol)) if symbol else None
        return spec.api if spec is not None else "fapi"

    def _send(self, socket: _Socket, event: dict[str, Any]) -> None:
        if socket.ws.closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop, no sockets to serve
        loop.create_task(_send_quietly(socket.ws, event))


def _ws_error(ident: Any, exc: BinanceError) -> dict[str, Any]:
    return {"id": ident, "status": exc.status, "error": exc.body}


def _wants_mark(topics: set[str], symbol: str) -> bool:
    return any(topic.startswith(f"{symbol}@markprice") for topic in topics)


async def _send_quietly(ws: web.WebSocketResponse, event: dict[str, Any]) -> None:
    try:
        await ws.send_str(json.dumps(event))
    except (ConnectionError, RuntimeError):
        pass  # the socket closed in between: the client reconnects
