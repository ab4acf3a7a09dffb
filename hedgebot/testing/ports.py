"""Free TCP ports on 127.0.0.1 for the emulators, servers and daemons that tests and benches start.

A port found by binding port 0 and closing the socket can be handed out again by the kernel, at once, to another
process doing the same: two test sessions running side by side (`make test` runs two) then start two servers on
one port, and a test talks to the other session's server. So ports come from a band below the kernel's ephemeral
range (which it never hands out on its own), one band per session (`HEDGEBOT_TEST_PORT_BAND`, set by
`tests/run_suite.py`), walked from an offset that depends on the process, and each is checked free by binding it.
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator

BAND_ENV = "HEDGEBOT_TEST_PORT_BAND"
FIRST_PORT = 20000  # Linux's ephemeral range starts at 32768: the bands end below it
BAND_SIZE = 6000
BANDS = 2

_taken: set[int] = set()
_walk: Iterator[int] | None = None


def _band() -> int:
    text = os.environ.get(BAND_ENV, "0")
    if not text.isdigit() or int(text) >= BANDS:
        raise ValueError(f"{BAND_ENV}={text!r} is not a band number from 0 to {BANDS - 1}")
    return int(text)


def free_port() -> int:
    """Return a port on 127.0.0.1 that nobody listens on now and that this process has not handed out before."""
    global _walk
    if _walk is None:
        _walk = itertools.count(os.getpid() * 7919 % BAND_SIZE)
    base = FIRST_PORT + _band() * BAND_SIZE
    for _ in range(BAND_SIZE):
        port = base + next(_walk) % BAND_SIZE
        if port in _taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port
    raise RuntimeError(f"no free port left in {base}..{base + BAND_SIZE - 1}")
