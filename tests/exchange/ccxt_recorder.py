"""An offline stand-in for the HTTP session inside an unmodified ccxt exchange.

ccxt builds, signs and sends every request through `exchange.session`, an
aiohttp `ClientSession`. Handing ccxt a `RecordingSession` instead (through its
own `session` config key) leaves every line of ccxt's request building,
signing, response parsing and error mapping in play, while no byte leaves the
process: each request is recorded, and answered from a route table of response
bodies written in the exchange's documented shapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request exactly as ccxt would have sent it."""

    method: str
    url: str
    path: str
    query: dict[str, str]
    body: dict[str, Any] | list[Any] | None
    headers: dict[str, str]

    @property
    def params(self) -> dict[str, Any]:
        """Return the request's parameters, from the JSON or form body, else the query string."""
        if isinstance(self.body, dict):
            return self.body
        return self.query


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: a status and a body (JSON-encoded unless already text)."""

    body: Any
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """Return the body as the exchange would send it on the wire."""
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


Route = Any  # a body, a Reply, or a callable taking the RecordedRequest and returning either


class UnexpectedRequest(AssertionError):
    """ccxt sent a request no route answers: the test names every endpoint it expects."""


class _Headers(dict[str, str]):
    """The part of aiohttp's CIMultiDictProxy ccxt uses: iteration and lookup."""


class _Response:
    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        self.reason = "OK" if reply.status < 400 else "Error"
        self.headers = _Headers({"Content-Type": "application/json", **reply.headers})
        self._text = reply.text()

    async def text(self, errors: str = "strict") -> str:
        return self._text

    async def __aenter__(self) -> _Response:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def _decode_body(data: bytes | None) -> dict[str, Any] | list[Any] | None:
    if not data:
        return None
    text = data.decode()
    try:
        decoded = json.loads(text)
    except ValueError:
        return dict(parse_qsl(text, keep_blank_values=True))
    return decoded if isinstance(decoded, dict | list) else None


class RecordingSession:
    """Records every request ccxt sends and answers it from `routes`, keyed by (METHOD, path)."""

    closed = False

    def __init__(self, routes: Mapping[tuple[str, str], Route] | None = None, on_request: Callable[[], None] | None = None) -> None:
        self.routes: dict[tuple[str, str], Route] = dict(routes or {})
        self.on_request = on_request  # the answering book's clock: one tick per request
        self.requests: list[RecordedRequest] = []
        self.headers: dict[str, str] = {}  # ccxt merges the session's default headers into each request

    def route(self, method: str, path: str, answer: Route) -> None:
        """Answer `method path` with `answer` from now on."""
        self.routes[(method.upper(), path)] = answer

    def sent(self, method: str, path: str) -> list[RecordedRequest]:
        """Return the requests sent to `method path`, oldest first."""
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def last(self, method: str, path: str) -> RecordedRequest:
        """Return the latest request sent to `method path`; fail the test when there is none."""
        matches = self.sent(method, path)
        if not matches:
            seen = sorted({f"{r.method} {r.path}" for r in self.requests})
            raise AssertionError(f"no {method} {path} was sent; sent: {seen}")
        return matches[-1]

    def clear(self) -> None:
        """Forget the requests recorded so far."""
        self.requests.clear()

    def _request(self, method: str, url: Any, data: bytes | None = None, headers: Mapping[str, str] | None = None, **_: Any) -> _Response:
        parts = urlsplit(str(url))
        request = RecordedRequest(
            method=method,
            url=str(url),
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            body=_decode_body(data),
            headers=dict(headers or {}),
        )
        self.requests.append(request)
        if self.on_request is not None:
            self.on_request()
        answer = self.routes.get((method, parts.path))
        if answer is None:
            raise UnexpectedRequest(f"unexpected {method} {parts.path} (query {request.query}, body {request.body})")
        if callable(answer):
            answer = answer(request)
        return _Response(answer if isinstance(answer, Reply) else Reply(answer))

    def get(self, url: Any, **kwargs: Any) -> _Response:
        return self._request("GET", url, **kwargs)

    def post(self, url: Any, **kwargs: Any) -> _Response:
        return self._request("POST", url, **kwargs)

    def put(self, url: Any, **kwargs: Any) -> _Response:
        return self._request("PUT", url, **kwargs)

    def delete(self, url: Any, **kwargs: Any) -> _Response:
        return self._request("DELETE", url, **kwargs)

    async def close(self) -> None:
        self.closed = True


def recording_exchange(exchange_id: str, session: RecordingSession, config: Mapping[str, Any] | None = None) -> Any:
    """Return an unmodified ccxt.async_support exchange whose every request goes to `session`."""
    import ccxt.async_support as ccxt_async

    settings: dict[str, Any] = {"session": session, "enableRateLimit": False}
    settings.update(config or {})
    return getattr(ccxt_async, exchange_id)(settings)


Handler = Callable[[RecordedRequest], Any]
