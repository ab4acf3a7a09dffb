"""Aster perpetual futures (Binance-compatible), as ccxt 4.5's `aster` client speaks to them.

Aster's futures API copies Binance USDⓈ-M: `positionSide` legs in hedge mode,
`newClientOrderId`, the same error codes, isolated margin on a leg with type
1/2, brackets with `cum`. So this dialect is Binance's with Aster's
differences, all read from ccxt's source (aster.py) and Aster's v3 API
documentation and listed in docs/exchanges.md:
- ccxt (>= 4.5.52) speaks Aster's v3 "Pro API": no API key and secret; every
  private request is signed (EIP-712) with the L1 wallet's private key. That
  key controls the wallet, withdrawals included, so the start-up checks see
  it as a key that can withdraw.
- ccxt switches a builder fee on by default (0.1 % on every swap order for
  ccxt's builder address, approved at sign-in). It is switched off here.
- Spot and futures are separate wallets moved between by a wallet transfer
  that carries a `clientTranId` (duplicates are refused with -4115).
- ccxt has no `fetch_leverage_tiers` and no `fetch_mark_price` for Aster: the
  brackets come from `/fapi/v3/leverageBracket` and the mark from
  `/fapi/v3/premiumIndex`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.model import Bracket, MarginMode, PositionSide, Wallet
from hedgebot.exchange.dialects.base import decimal_field
from hedgebot.exchange.dialects.binanceusdm import _CODES, BinanceUsdm, tap_binance_user_stream
from hedgebot.exchange.port import (
    AccountFacts,
    BadData,
    DuplicateClientId,
    FundingPayment,
    FundsMovement,
    FundsQuery,
    FuturesBalance,
    PriceQuote,
)


class Aster(BinanceUsdm):
    """Aster perpetuals and the Aster spot wallet, both through one `aster` client."""

    futures_id = "aster"
    spot_id = "aster"
    client_id_field = "newClientOrderId"
    label = "aster"
    instruments = frozenset({InstrumentKind.USDM_PERP})  # Aster lists perpetuals only
    codes = {**_CODES, "-4115": (DuplicateClientId, "a transfer with this clientTranId was already made")}

    def client_options(self, *, futures: bool) -> dict[str, Any]:
        """Switch ccxt's builder fee off; keep spot as the default type so that fetch_balance reads the spot wallet."""
        return {"builderFee": False, "approvedBuilderFee": False, "defaultType": "spot"}

    def credentials(self, api_key: str | None, secret: str | None, password: str | None) -> dict[str, Any]:
        """Sign with the wallet's private key, given as the secret.

        ccxt 4.5 derives both `user` and `signer` from that one key, so an
        API-wallet (agent) key cannot be used on its own; the key is not sent.
        """
        return {"privateKey": secret} if secret else {}

    def tap_user_stream(self, futures: Any, on_event: Callable[[Any], None]) -> None:
        """Binance's user-data events; ccxt's aster keeps its listen key per market type in other options."""
        tap_binance_user_stream(futures, on_event, _forget_aster_listen_key)

    async def fetch_futures_balance(self, futures: Any, asset: str) -> FuturesBalance:
        """Read /fapi/v3/balance: `balance` is the wallet, `crossWalletBalance` it without isolated margin, `availableBalance` free."""
        balance = await futures.fetch_balance({"type": "swap"})
        for row in balance.get("info") or []:
            if row.get("asset") == asset:
                return FuturesBalance(
                    wallet=decimal_field(row, "balance", "aster balance"),
                    free=max(Decimal(0), decimal_field(row, "availableBalance", "aster balance")),
                    cross_wallet=decimal_field(row, "crossWalletBalance", "aster balance"),
                )
        return FuturesBalance(Decimal(0), Decimal(0))

    async def fetch_spot_balances(self, spot: Any, settle: str) -> dict[str, Decimal]:
        """Read the spot wallet (/api/v3/account): free plus locked of every asset held."""
        balance = await spot.fetch_balance({"type": "spot"})
        out: dict[str, Decimal] = {}
        for row in balance.get("info") or []:
            total = decimal_field(row, "free", "aster spot") + decimal_field(row, "locked", "aster spot", default="0")
            if total:
                out[str(row.get("asset"))] = total
        return out

    async def _risk_row(self, futures: Any, symbol: str) -> dict[str, Any]:
        market = futures.market(symbol)
        rows = await futures.fapiPrivateGetV3PositionRisk({"symbol": market["id"]})
        for row in rows or []:
            if row.get("symbol") == market["id"] and row.get("positionSide") in ("SHORT", "BOTH"):
                return dict(row)
        raise BadData(f"aster positionRisk has no row for {market['id']}")

    async def fetch_margin_mode(self, futures: Any, symbol: str) -> MarginMode:
        """Read marginType from /fapi/v3/positionRisk."""
        row = await self._risk_row(futures, symbol)
        return MarginMode.ISOLATED if str(row.get("marginType")).lower() == "isolated" else MarginMode.CROSS

    async def fetch_leverage(self, futures: Any, symbol: str) -> int:
        """Read leverage from /fapi/v3/positionRisk."""
        row = await self._risk_row(futures, symbol)
        return int(decimal_field(row, "leverage", "aster positionRisk"))

    async def fetch_mark_price(self, futures: Any, symbol: str) -> PriceQuote:
        """Read markPrice and its time from /fapi/v3/premiumIndex."""
        answer = await futures.fetch_funding_rate(symbol)
        info = answer.get("info") or {}
        stamp = info.get("time")
        return PriceQuote(decimal_field(info, "markPrice", "aster premiumIndex"), int(stamp) / 1000 if stamp else float("-inf"))

    async def fetch_brackets(self, futures: Any, symbol: str, mark: Decimal | None) -> tuple[Bracket, ...]:
        """Read /fapi/v3/leverageBracket: notionalFloor, notionalCap, maintMarginRatio and cum, as Binance serves them."""
        market = futures.market(symbol)
        answer = await futures.fapiPrivateGetV3LeverageBracket({"symbol": market["id"]})
        entries = answer if isinstance(answer, list) else [answer]
        for entry in entries:
            if entry.get("symbol") != market["id"]:
                continue
            return tuple(
                Bracket(
                    decimal_field(b, "notionalFloor", "aster bracket"),
                    decimal_field(b, "notionalCap", "aster bracket"),
                    decimal_field(b, "maintMarginRatio", "aster bracket"),
                    decimal_field(b, "cum", "aster bracket"),
                    int(b["initialLeverage"]) if b.get("initialLeverage") else None,
                )
                for b in entry.get("brackets") or []
            )
        raise BadData(f"aster sent no brackets for {market['id']}")

    async def fetch_funding_history(self, futures: Any, symbol: str, since: float) -> list[FundingPayment]:
        """Read FUNDING_FEE income: `income` is what the account received (negative when it paid)."""
        market = futures.market(symbol)
        rows = await futures.fapiPrivateGetV3Income({"symbol": market["id"], "incomeType": "FUNDING_FEE", "startTime": int(since * 1000)})
        return [
            FundingPayment(symbol, str(row.get("asset")), decimal_field(row, "income", "aster income"), int(row["time"]) / 1000)
            for row in rows or []
            if row.get("incomeType") == "FUNDING_FEE"
        ]

    def margin_params(self, side: PositionSide) -> dict[str, Any]:
        """Name the leg of a margin change by positionSide."""
        return {"positionSide": side.value.upper()}

    def wallet_name(self, wallet: Wallet) -> str:
        """Return ccxt's account names: 'spot' (SPOT) and 'swap' (FUTURE)."""
        return "spot" if wallet is Wallet.SPOT else "swap"

    async def find_transfer(self, spot: Any, futures: Any, query: FundsQuery) -> FundsMovement | None:
        """Aster serves no transfer history through ccxt; an ambiguous transfer is settled by observing the wallets."""
        return None

    async def fetch_account_facts(self, spot: Any, futures: Any) -> AccountFacts:
        """The signing key is the wallet's own: it can withdraw. Read the multi-assets mode."""
        multi = await futures.fapiPrivateGetV3MultiAssetsMargin()
        return AccountFacts(
            can_withdraw=True,
            ip_restricted=False,
            multi_assets_margin=str((multi or {}).get("multiAssetsMargin")).lower() == "true",
            portfolio_margin=False,
        )


def _forget_aster_listen_key(futures: Any) -> None:
    """Make ccxt's next authenticate() ask Aster for a new swap listen key."""
    times = dict(futures.options.get("lastAuthenticatedTime") or {})
    times["swap"] = 0
    futures.options["lastAuthenticatedTime"] = times
