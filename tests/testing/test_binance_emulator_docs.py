"""The emulator's docstring is what a person running it by hand reads: it must say what it serves."""

from __future__ import annotations

from hedgebot.testing import binance_emulator, binance_streams


def test_emulator_docstring_says_it_serves_the_websocket_streams_it_serves() -> None:
    doc = binance_emulator.__doc__ or ""
    assert "no websocket" not in doc.replace("\n", " ")
    assert "websocket streams" in doc.replace("\n", " ") and "binance_streams" in doc
    assert hasattr(binance_streams, "StreamHub")  # the module the docstring points at serves them
