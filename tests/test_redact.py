"""Redaction: signed request URLs, URL credentials and registered secrets never leave the process."""

from __future__ import annotations

from hedgebot.redact import redact

SIGNED = (
    "binanceusdm GET https://fapi.binance.com/fapi/v2/positionRisk?timestamp=1764740000000&recvWindow=10000"
    "&signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 RequestTimeout"
)


def test_a_signed_request_url_keeps_its_endpoint_but_loses_its_timestamp_and_signature() -> None:
    text = redact(SIGNED)
    assert "https://fapi.binance.com/fapi/v2/positionRisk?***" in text and "RequestTimeout" in text
    assert "signature" not in text and "1764740000000" not in text


def test_a_signed_body_loses_its_signature() -> None:
    text = redact('POST body "symbol=BTCUSDT&timestamp=1764740000000&signature=abc123def456" refused')
    assert "abc123def456" not in text and "BTCUSDT" in text


def test_a_public_url_without_signature_is_left_alone() -> None:
    text = "GET https://fapi.binance.com/fapi/v1/premiumIndex?symbol=BTCUSDT failed"
    assert redact(text) == text
