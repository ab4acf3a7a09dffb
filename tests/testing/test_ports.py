"""Ports for the servers tests start: two sessions side by side never share one, and a taken one is never handed out."""

from __future__ import annotations

import socket

import pytest

from hedgebot.testing import ports


def test_the_two_sessions_bands_never_hand_out_the_same_port_and_stay_below_the_kernels_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: dict[str, set[int]] = {}
    for band in ("0", "1"):
        monkeypatch.setenv(ports.BAND_ENV, band)
        handed[band] = {ports.free_port() for _ in range(50)}
    assert len(handed["0"]) == len(handed["1"]) == 50  # never the same port twice in one process
    assert not handed["0"] & handed["1"]
    assert max(handed["0"] | handed["1"]) < 32768


def test_a_port_someone_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.BAND_ENV, "0")
    listened, free = ports.free_port(), ports.free_port()
    with socket.socket() as server:
        server.bind(("127.0.0.1", listened))
        server.listen()
        monkeypatch.setattr(ports, "_taken", set())  # forget both were handed out: only the probe can tell
        monkeypatch.setattr(ports, "_walk", iter([listened - ports.FIRST_PORT, free - ports.FIRST_PORT]))
        assert ports.free_port() == free


def test_an_unknown_band_is_refused_naming_the_variable_and_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ports.BAND_ENV, "7")
    with pytest.raises(ValueError, match=r"HEDGEBOT_TEST_PORT_BAND='7' is not a band number from 0 to 1"):
        ports.free_port()
