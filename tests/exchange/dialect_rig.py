"""A `CcxtVenue` in a given dialect, its ccxt clients recording every request into a book of documented answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hedgebot.clock import SimClock
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.aster import Aster
from hedgebot.exchange.dialects.bybit import Bybit
from hedgebot.exchange.dialects.okx import Okx
from tests.exchange.books import AsterBook, Book, BybitBook, OkxBook
from tests.exchange.ccxt_recorder import RecordedRequest, RecordingSession

SYMBOL = "BTC/USDT:USDT"
SPOT = "BTC/USDT"
# A throwaway secp256k1 key: Aster's requests are signed with a wallet key.
TEST_WALLET_KEY = "0x" + "11" * 32


@dataclass
class Rig:
    """The venue under test, the book answering it, and the requests it sent."""

    venue: CcxtVenue
    book: Any
    session: RecordingSession

    def last(self, method: str, path: str) -> dict[str, Any]:
        """Return the parameters of the latest `method path` request (the first order of a batch)."""
        request = self.session.last(method, path)
        if isinstance(request.body, list):
            return dict(request.body[0])
        return dict(request.params)

    def requests(self) -> list[RecordedRequest]:
        """Return every request sent since the last `forget`."""
        return list(self.session.requests)

    def forget(self) -> None:
        """Clear the recorded requests."""
        self.session.clear()


def make_rig(exchange: str, book: Book | None = None) -> Rig:
    """Return a venue for `exchange` ("bybit", "okx", "aster") over a fresh (or the given) book."""
    if exchange == "bybit":
        book = book or BybitBook()
        dialect: Any = Bybit()
        credentials: dict[str, str] = {"api_key": "test-key", "secret": "test-secret"}
    elif exchange == "okx":
        book = book or OkxBook()
        dialect = Okx()
        credentials = {"api_key": "test-key", "secret": "test-secret", "password": "test-passphrase"}
    elif exchange == "aster":
        book = book or AsterBook()
        dialect = Aster()
        credentials = {"secret": TEST_WALLET_KEY}
    else:
        raise ValueError(exchange)
    session = RecordingSession(book.routes(), on_request=book.advance)  # type: ignore[attr-defined]
    venue = CcxtVenue.connect(dialect, SimClock(1_700_000_000.0), session=session, **credentials)
    for client in {id(venue.futures): venue.futures, id(venue.spot): venue.spot}.values():
        # Nothing goes over the wire: no rate-limit pauses, no TLS context, no pause on close.
        client.enableRateLimit = False
        client.ssl_context = False
        client.timeout_on_exit = 0
    return Rig(venue, book, session)
