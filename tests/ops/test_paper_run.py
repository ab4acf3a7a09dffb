"""The paper daemon as a user runs it: it serves /healthz, /metrics and /status, reloads on
SIGHUP, and nothing it prints, serves, journals or reports shows a planted secret."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
import tomllib
from pathlib import Path

import aiohttp
import pytest

from hedgebot.config import HttpConfig
from tests.emulator_rig import free_port
from tests.helpers import clean_env, write_toml
from tests.ops.support import Receiver

pytestmark = pytest.mark.realtime

REPO = Path(__file__).resolve().parents[2]
TOKEN = "tok-PLANTED-7f3a9c1e"
HOOK_SECRET = "hook-PLANTED-51d2e8"
QUERY_SECRET = "q-PLANTED-a77c0b"
BOT_TOKEN = "987654:PLANTED-tg-token-b6e1f0c3d2"
INLINE_SECRET = "inline-PLANTED-0c9e4d"
PLANTED = (TOKEN, HOOK_SECRET, QUERY_SECRET, BOT_TOKEN, INLINE_SECRET, "PLANTED")


def test_make_paper_serves_on_127_0_0_1_port_9310_by_default() -> None:
    config = tomllib.loads((REPO / "config" / "paper.toml").read_text())
    assert "http" not in config or {"host", "port"}.isdisjoint(config["http"])
    assert (HttpConfig().host, HttpConfig().port) == ("127.0.0.1", 9310)
    assert "hedgebot run --config config/paper.toml" in (REPO / "Makefile").read_text()


async def _run(*args: str, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hedgebot.commands.main", *args, cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode()


async def _wait_for(log: Path, needle: str, limit: float = 90) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        text = log.read_text()
        if needle in text:
            return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
async def test_a_paper_run_serves_the_endpoints_and_never_shows_a_planted_secret(tmp_path) -> None:
    receiver = Receiver()
    hook = await receiver.start()
    port = free_port()
    data = tomllib.loads((REPO / "config" / "paper.toml").read_text())
    state = tmp_path / "state"
    data["daemon"].update(state_dir=str(state), log_format="json")
    data["journal"] = {"path": str(state / "journal.sqlite")}
    data["http"] = {"port": port, "token": {"env": "HB_TEST_TOKEN"}}
    data["alerts"] = {"senders": [
        {"kind": "webhook", "name": "hook", "url": {"env": "HB_TEST_HOOK"}, "min_severity": "info"},
        {"kind": "telegram", "name": "tg", "bot_token": {"value": BOT_TOKEN}, "chat_id": "1",
         "api_url": f"http://127.0.0.1:{free_port()}", "timeout_seconds": 2},  # down: its errors get logged
    ]}
    config = write_toml(tmp_path / "hedgebot.toml", data)
    env = clean_env()
    env.update(HB_TEST_TOKEN=TOKEN, HB_TEST_HOOK=f"{hook}/hook/{HOOK_SECRET}?key={QUERY_SECRET}")
    seen: list[str] = []

    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config), cwd=REPO, env=env, stdout=out, stderr=out,
        )
    try:
        await _wait_for(log, '"rebalanced"')
        await _wait_for(log, '"alert_send_failed"')
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/readyz", "/metrics", "/status"):
                async with session.get(f"http://127.0.0.1:{port}{path}", headers=auth) as response:
                    body = await response.text()
                    seen.append(body)
                    if path != "/readyz":  # readiness may wait for a confirmed price jump in the demo
                        assert response.status == 200, (path, body)
            async with session.get(f"http://127.0.0.1:{port}/status") as response:
                assert response.status == 401
        status = json.loads(seen[3])
        assert status["hedges"][0]["name"] == "btc-core" and status["healthy"] is True
        assert 'hedgebot_short_size{account="paper",hedge="btc-core"}' in seen[2]

        # A reload with a bad file that carries a secret: rejected, and the secret is not echoed.
        bad = dict(data, alerts={"senders": [{"kind": "webhook", "url": f"http://x/{INLINE_SECRET}"}]})
        write_toml(config, bad)
        proc.send_signal(signal.SIGHUP)
        await _wait_for(log, '"config_reload_rejected"')
        write_toml(config, data)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), timeout=60)
        await receiver.close()
    assert code == 0
    seen.append(log.read_text())
    assert any(b["kind"] == "startup_summary" for b in receiver.received)

    for args in (["report"], ["report", "--csv"], ["report", "--json"], ["status"], ["history", "--hedge", "btc-core"],
                 ["alert-test"], ["check"]):
        rc, out = await _run(*args, "--config", str(config), env=env)
        seen.append(out)
        assert rc in (0, 1), (args, out)
    rc, out = await _run("check", "--config", str(write_toml(tmp_path / "bad.toml", bad)), env=env)
    assert rc == 2 and "url" in out
    seen.append(out)
    db = sqlite3.connect(state / "journal.sqlite")
    seen += [row[0] for row in db.execute("SELECT detail FROM events UNION ALL SELECT detail FROM intents")]
    seen += [(state / name).read_text() for name in os.listdir(state) if name.endswith(".json")]

    everything = "\n".join(seen)
    assert "funding received" in everything and "NOT delivered" in everything  # the outputs are really there
    for secret in PLANTED:
        assert secret not in everything, f"{secret} leaked"
