"""Binance's per-IP request weight, 429 and 418, as the emulator enforces them.

What Binance documents (Spot *LIMITS* and USDⓈ-M *General Info*, "IP Limits"):

- each route has a weight; the weight used by the IP in the current minute
  (a minute starts every minute, and the count then resets) is reported on
  every answer in `X-MBX-USED-WEIGHT-1M` (wallet routes: `X-SAPI-USED-IP-WEIGHT-1M`);
- past the limit, requests fail with HTTP 429 and `Retry-After`, the seconds
  to wait "to prevent a ban";
- "repeatedly violating rate limits and/or failing to back off after
  receiving 429s will result in an automated IP ban (HTTP status 418)",
  with `Retry-After` until the ban is over; bans "scale in duration for
  repeat offenders, from 2 minutes to 3 days".

Binance does not say how many requests inside the Retry-After period earn a
ban. The emulator answers each of them 429 again and bans on the
`ban_after`-th (default 3: the requests a daemon may already have in flight
when the first 429 arrives are tolerated, a client that keeps sending is not).
The first ban lasts 2 minutes and each next one twice as long, up to 3 days.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

# Binance's documented IP weights of the routes the emulator serves; (with symbol, without) where they differ.
WEIGHTS: dict[tuple[str, str], int | tuple[int, int]] = {
    ("GET", "/fapi/v1/time"): 1, ("GET", "/fapi/v1/ping"): 1, ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/premiumIndex"): (1, 10), ("GET", "/fapi/v1/fundingRate"): 1, ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v1/positionSide/dual"): 30, ("POST", "/fapi/v1/positionSide/dual"): 1,
    ("GET", "/fapi/v1/multiAssetsMargin"): 30, ("GET", "/fapi/v1/symbolConfig"): 5,
    ("POST", "/fapi/v1/marginType"): 1, ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/order"): 0, ("GET", "/fapi/v1/order"): 1, ("GET", "/fapi/v1/openOrders"): (1, 40),
    ("GET", "/fapi/v1/allOrders"): 5, ("GET", "/api/v3/allOrders"): 20,
    ("GET", "/fapi/v3/positionRisk"): 5, ("GET", "/fapi/v3/account"): 5,
    ("POST", "/fapi/v1/positionMargin"): 1, ("GET", "/fapi/v1/positionMargin/history"): 1,
    ("GET", "/fapi/v1/income"): 30,
    ("POST", "/fapi/v1/listenKey"): 1, ("PUT", "/fapi/v1/listenKey"): 1, ("DELETE", "/fapi/v1/listenKey"): 1,
    ("GET", "/api/v3/time"): 1, ("GET", "/api/v3/ping"): 1, ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/account"): 20, ("POST", "/api/v3/order"): 1, ("GET", "/api/v3/order"): 4,
    ("POST", "/sapi/v1/asset/transfer"): 1, ("GET", "/sapi/v1/asset/transfer"): 1,
    ("GET", "/sapi/v1/account/apiRestrictions"): 1, ("GET", "/sapi/v1/portfolio/account"): 5,
    # COIN-M (developers.binance.com/docs/derivatives/coin-margined-futures), its own 2400 per IP per minute.
    ("GET", "/dapi/v1/time"): 1, ("GET", "/dapi/v1/ping"): 1, ("GET", "/dapi/v1/exchangeInfo"): 1,
    ("GET", "/dapi/v1/premiumIndex"): (10, 10), ("GET", "/dapi/v1/fundingRate"): 1, ("GET", "/dapi/v2/leverageBracket"): 1,
    ("GET", "/dapi/v1/positionSide/dual"): 30, ("POST", "/dapi/v1/positionSide/dual"): 1,
    ("POST", "/dapi/v1/marginType"): 1, ("POST", "/dapi/v1/leverage"): 1, ("POST", "/dapi/v1/order"): 0,
    ("GET", "/dapi/v1/order"): 1, ("GET", "/dapi/v1/openOrders"): (1, 40), ("GET", "/dapi/v1/allOrders"): 20,
    ("GET", "/dapi/v1/positionRisk"): 1, ("GET", "/dapi/v1/account"): 5, ("GET", "/dapi/v1/balance"): 1,
    ("POST", "/dapi/v1/positionMargin"): 1, ("GET", "/dapi/v1/positionMargin/history"): 1, ("GET", "/dapi/v1/income"): 20,
}

# path prefix -> (limit per minute, the header reporting the used weight)
FAMILIES: dict[str, tuple[int, str]] = {
    "/fapi/": (2400, "X-MBX-USED-WEIGHT-1M"),
    "/dapi/": (2400, "X-MBX-USED-WEIGHT-1M"),
    "/api/": (6000, "X-MBX-USED-WEIGHT-1M"),
    "/sapi/": (12000, "X-SAPI-USED-IP-WEIGHT-1M"),
}

FIRST_BAN_SECONDS = 120.0
LONGEST_BAN_SECONDS = 3 * 24 * 3600.0


def weight_of(method: str, path: str, has_symbol: bool) -> int:
    """Return Binance's IP weight of a request (1 for a route not in the table)."""
    weight = WEIGHTS.get((method, path), 1)
    if isinstance(weight, tuple):
        return weight[0] if has_symbol else weight[1]
    return weight


@dataclass
class Verdict:
    """What the limiter says about one request: pass (status 200) or refuse, and the headers to send."""

    status: int = 200
    code: int = 0
    msg: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _IpState:
    minute: int = -1
    used: Counter[str] = field(default_factory=Counter)
    retry_until: float = -math.inf  # the Retry-After period of the last 429
    violations: int = 0  # requests sent inside it
    banned_until: float = -math.inf
    bans: int = 0


class WeightLimiter:
    """Per-IP weight per minute, 429 over the limit, 418 for a client that does not back off."""

    def __init__(self, limits: dict[str, int] | None = None, ban_after: int = 3) -> None:
        self.limits = {prefix: (limits or {}).get(prefix, limit) for prefix, (limit, _) in FAMILIES.items()}
        self.ban_after = ban_after
        self.enabled = True
        self._ips: dict[str, _IpState] = {}
        self.answers: Counter[int] = Counter()  # 429 and 418 answers given
        self.bans: list[tuple[str, float, float]] = []  # (ip, at, seconds)

    def judge(self, ip: str, method: str, path: str, has_symbol: bool, now: float) -> Verdict:
        """Count a request and say whether it may be served."""
        prefix = next((p for p in FAMILIES if path.startswith(p)), None)
        if prefix is None or not self.enabled:
            return Verdict()
        state = self._ips.setdefault(ip, _IpState())
        minute = math.floor(now / 60)
        if minute != state.minute:
            state.minute, state.used = minute, Counter()
        header = FAMILIES[prefix][1]
        if now < state.banned_until:
            return self._ban_answer(state, now, header, prefix)
        if now < state.retry_until:
            state.violations += 1
            if state.violations >= self.ban_after:
                seconds = min(FIRST_BAN_SECONDS * 2**state.bans, LONGEST_BAN_SECONDS)
                state.bans += 1
                state.banned_until = now + seconds
                state.retry_until = -math.inf
                state.violations = 0
                self.bans.append((ip, now, seconds))
                return self._ban_answer(state, now, header, prefix)
        state.used[prefix] += weight_of(method, path, has_symbol)
        used = state.used[prefix]
        headers = {header: str(used)}
        if used > self.limits[prefix] or now < state.retry_until:
            retry = max(1, math.ceil((minute + 1) * 60 - now))
            if now >= state.retry_until:
                state.violations = 0
            state.retry_until = max(state.retry_until, now + retry)
            self.answers[429] += 1
            return Verdict(
                429, -1003,
                f"Too many requests; current limit of IP({ip}) is {self.limits[prefix]} requests per minute. "
                "Please use the websocket for live updates to avoid polling the API.",
                {**headers, "Retry-After": str(math.ceil(state.retry_until - now))},
            )
        return Verdict(headers=headers)

    def note_429(self, ip: str, now: float, retry_after: float) -> None:
        """Start a Retry-After period given outside the weight count (an injected 429)."""
        state = self._ips.setdefault(ip, _IpState())
        if now >= state.retry_until:
            state.violations = 0
        state.retry_until = max(state.retry_until, now + retry_after)
        self.answers[429] += 1

    def _ban_answer(self, state: _IpState, now: float, header: str, prefix: str) -> Verdict:
        self.answers[418] += 1
        until_ms = int(state.banned_until * 1000)
        return Verdict(
            418, -1003,
            f"Way too much request weight used; IP banned until {until_ms}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            {header: str(state.used[prefix]), "Retry-After": str(math.ceil(state.banned_until - now))},
        )
