"""`hedgebot check --exchange`: every start-up problem of a live account, found on the exchange, and no order placed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.emulator_rig import PROCESS_KEY, PROCESS_SECRET, REPO, EmulatorProcess, live_config
from tests.helpers import clean_env


def _check(config, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env.update({"HB_BINANCE_KEY": PROCESS_KEY, "HB_BINANCE_SECRET": PROCESS_SECRET, **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "hedgebot.commands.main", "check", "--config", str(config), "--exchange"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def emulator(request, tmp_path):
    process = EmulatorProcess(tmp_path, key_flags=getattr(request, "param", ()))
    process.start()
    yield process
    process.stop()


@pytest.mark.slow
@pytest.mark.parametrize("emulator", [("withdraw", "noip")], indirect=True)
def test_check_exchange_reports_every_start_up_problem_and_places_no_order(tmp_path, emulator) -> None:
    emulator.control("account", {"dual_side": False, "multi_assets": True})
    before = emulator.control("state")
    config = live_config(tmp_path, emulator.url, min_order="0.0001", leverage=125)  # isolated; the emulator starts cross 20x
    done = _check(config)
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 2, said
    for problem in (
        "the API key can withdraw funds",
        "multi-assets margin mode",
        "min_order 0.0001 is below BTC/USDT:USDT's minimum amount 0.001",
        "leverage 125 is above 100, the maximum the exchange allows",
    ):
        assert problem in done.stderr, said
    assert "NOT IP restricted" in done.stdout and "position mode: oneway" in done.stdout, said
    assert "leverage differs" in done.stdout and "margin mode differs" in done.stdout, said
    after = emulator.control("state")
    assert not after["orders"] and after["dual_side"] is False and after["multi_assets"] is True
    assert after["positions"] == before["positions"] and after["transfers"] == before["transfers"]
    assert json.dumps(after["symbols"]) == json.dumps(before["symbols"])  # leverage and margin mode untouched


@pytest.mark.slow
@pytest.mark.parametrize("emulator", [("nofutures",)], indirect=True)
def test_check_exchange_names_a_key_without_futures_permission(tmp_path, emulator) -> None:
    done = _check(live_config(tmp_path, emulator.url))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 2, said
    assert "the API key has no futures permission (Enable Futures)" in done.stderr, said
    assert "created before the futures account was opened" in done.stderr
    assert not emulator.control("state")["orders"]


@pytest.mark.slow
def test_check_exchange_passes_a_sound_account_and_prints_the_runway_from_the_exchange_balances(tmp_path, emulator) -> None:
    emulator.control("account", {"dual_side": True})
    done = _check(live_config(tmp_path, emulator.url))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 0, said
    assert "position mode: hedge" in done.stdout
    assert "runway: the margin sources keep the short above its trigger up to" in done.stdout, said
    assert "the target opened from the exchange's balances" in done.stdout
    assert "no order was placed" in done.stdout
    assert not emulator.control("state")["orders"]


@pytest.mark.slow
def test_check_exchange_names_a_refused_key(tmp_path, emulator) -> None:
    done = _check(live_config(tmp_path, emulator.url), {"HB_BINANCE_SECRET": "wrong-secret"})
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 2, said
    assert "the exchange refused the API key" in done.stderr, said
    assert "wrong-secret" not in said


@pytest.mark.slow
def test_check_exchange_says_how_much_of_the_target_the_exchange_balances_fund_and_what_closes_the_gap(tmp_path, emulator) -> None:
    # 10 BTC in spot and 50,000 USDT of futures margin at 3x (a coin holder): about half the target can be opened.
    emulator.control("account", {"dual_side": True})
    emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": "9"})
    emulator.control("deposit", {"wallet": "futures", "asset": "USDT", "amount": "-10000"})
    done = _check(live_config(tmp_path, emulator.url, margin_guard={"sources": ["futures_wallet", "sell_spot"]}))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 0, said
    head = next(line for line in done.stdout.splitlines() if "fundability:" in line)
    assert "a short of 10.000 BTC at 50000.0 needs 166,916.667 USDT" in head, head
    assert "the sources hold 50,000.000 USDT" in head and "from the exchange's balances" in head, head
    gap = next(line for line in done.stdout.splitlines() if "UNDER-FUNDED" in line)
    assert "of the 10.000 BTC target can be opened" in gap and "deposit" in gap and "sell" in gap, gap
    assert not emulator.control("state")["orders"]


@pytest.mark.slow
def test_check_exchange_reads_a_holdings_account_and_one_it_cannot_reach_is_a_warning_not_a_refusal(tmp_path, emulator) -> None:
    import tomllib

    from tests.helpers import write_toml

    emulator.control("account", {"dual_side": True})
    data = tomllib.loads(live_config(tmp_path, emulator.url).read_text())
    data["accounts"][0]["hedges"][0]["exposure"] = {"spot": True, "accounts": ["cold", "vault"]}
    credentials = {"api_key": {"env": "HB_BINANCE_KEY"}, "secret": {"env": "HB_BINANCE_SECRET"}}
    data["accounts"].append({"name": "cold", "mode": "live", "exchange": "binanceusdm", "api_base_url": emulator.url, "credentials": credentials})
    data["accounts"].append({"name": "vault", "mode": "live", "exchange": "binanceusdm", "api_base_url": "http://127.0.0.1:9", "credentials": credentials})
    done = _check(write_toml(tmp_path / "holdings.toml", data))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 0, said
    assert "account cold: holdings on binanceusdm, read-only: spot holds 1.0 BTC" in done.stdout, said
    assert "account vault: holdings on binanceusdm, NOT READ" in done.stdout and "signature=" not in said


@pytest.mark.slow
def test_check_exchange_says_the_carrying_cost_from_the_markets_settled_funding_and_the_margin_the_target_locks(tmp_path, emulator) -> None:
    emulator.control("account", {"dual_side": True})
    for rate in ("0.0001", "0.0003"):  # a mean of 0.02 % a settlement: 21.9 % a year on 8-hour settlements
        emulator.control("funding", {"symbol": "BTCUSDT", "rate": rate})
    done = _check(live_config(tmp_path, emulator.url))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 0, said
    carry = next(line for line in done.stdout.splitlines() if "carrying cost:" in line)
    assert "0.0200% per 8 h (21.90% a year, BTC/USDT:USDT's last 2 settlements on the exchange)" in carry, carry
    assert "a short of" in carry and "receives about" in carry and "USDT a year" in carry, carry
    locked = next(line for line in done.stdout.splitlines() if "margin locked:" in line)
    assert "USDT for the short's whole target at" in locked and "of the hedged value" in locked, locked
    assert not emulator.control("state")["orders"]


@pytest.mark.slow
def test_compare_reads_a_live_accounts_perpetual_from_the_exchange_with_its_settled_funding_and_orders_nothing(tmp_path, emulator) -> None:
    emulator.control("account", {"dual_side": True})
    for rate in ("0.0001", "0.0003"):
        emulator.control("funding", {"symbol": "BTCUSDT", "rate": rate})
    env = clean_env()
    env.update({"HB_BINANCE_KEY": PROCESS_KEY, "HB_BINANCE_SECRET": PROCESS_SECRET})
    done = subprocess.run(
        [sys.executable, "-m", "hedgebot.commands.main", "compare", "--config", str(live_config(tmp_path, emulator.url)), "--hedge", "btc"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 0, said
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("usdm-perp") and "BTC/USDT:USDT  (held now)" in line)
    assert "carrying cost: 21.90% a year (2 settlements in the last 30 days); the short receives about" in lines[at + 1], said
    assert "margin locked:" in lines[at + 2] and "USDT for the whole target" in lines[at + 2], said
    assert not emulator.control("state")["orders"]


@pytest.mark.slow
def test_check_exchange_passes_a_live_coin_m_short_and_reads_its_coins_from_the_coin_m_wallet(tmp_path, emulator) -> None:
    emulator.control("account", {"coinm_dual_side": True})
    emulator.control("deposit", {"wallet": "coinm", "asset": "BTC", "amount": "0.5"})
    config = live_config(
        tmp_path, emulator.url, symbol="BTC/USD:BTC", instrument="coinm-perp", leverage=1, min_order="0.001",
        margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
    )
    import tomllib

    from tests.helpers import write_toml

    data = tomllib.loads(config.read_text())
    data["accounts"][0]["exchange"] = "binancecoinm"
    done = _check(write_toml(tmp_path / "coinm.toml", data))
    said = done.stdout + done.stderr
    assert "Traceback" not in said and done.returncode == 0, said
    assert "position mode: hedge" in done.stdout and "no order was placed" in done.stdout, said
    assert "not supported yet" not in said
    state = emulator.control("state")
    assert not state["orders"] and state["dual_side"] is False  # USDⓈ-M's mode was neither read for COIN-M nor changed
    requests = emulator.control("requests")["requests"]
    assert any(r["path"].startswith("/dapi/") for r in requests) and not any(r["path"].startswith("/fapi/v") and r["path"] != "/fapi/v1/time" for r in requests)


@pytest.mark.slow
def test_check_exchange_on_a_live_quarterly_says_the_contract_its_delivery_the_next_roll_and_the_basis_from_the_marks(tmp_path) -> None:
    from datetime import UTC, datetime

    from hedgebot.domain.delivery import quarterly_expiries
    from hedgebot.ops.figures import iso_utc

    now = datetime.now(UTC).timestamp()
    # The next two quarterly deliveries after the one within roll_before (3 days) of now: the nearest is held.
    near, far = [e for e in quarterly_expiries(now, 3) if e - now > 3 * 86400][:2]
    days = tuple(datetime.fromtimestamp(e, UTC).strftime("%y%m%d") for e in (near, far))
    process = EmulatorProcess(tmp_path, quarterlies=days)
    process.start()
    try:
        process.control("account", {"dual_side": True})
        held = f"BTCUSDT_{days[0]}"
        process.control("mark", {"symbol": held, "price": "51000"})  # 2 % over the perpetual's 50,000
        done = _check(live_config(tmp_path, process.url, instrument="usdm-quarterly", max_order="0.5"))
        said = done.stdout + done.stderr
        assert "Traceback" not in said and done.returncode == 0, said
        contract = f"BTC/USDT:USDT-{days[0]}"
        assert f"contract held: {contract}, delivered {iso_utc(near)}" in done.stdout, said
        assert f"its roll to the next contract starts {iso_utc(near - 3 * 86400)} (roll_before 72h00m)" in done.stdout, said
        years = (near - now) / (365 * 86400)
        line = next(l for l in done.stdout.splitlines() if "annualised basis" in l)
        shown = float(line.split("annualised basis ")[1].split("%")[0])
        assert abs(shown - 2.0 / years) < 0.05 * 2.0 / years, line  # (51,000 / 50,000 − 1) per year left
        assert "against the perpetual BTC/USDT:USDT's 50000" in line and "no funding on a quarterly" in line, line
        assert [l for l in done.stdout.splitlines() if "carrying cost" in l] == [line], "no funding carry for a quarterly"
        assert not process.control("state")["orders"]
    finally:
        process.stop()


@pytest.mark.slow
def test_check_exchange_on_a_live_cheapest_hedge_says_which_contract_it_opens_on_and_the_carries_read_from_the_exchange(tmp_path) -> None:
    from datetime import UTC, datetime

    from hedgebot.domain.delivery import quarterly_expiries

    now = datetime.now(UTC).timestamp()
    near, far = [e for e in quarterly_expiries(now, 3) if e - now > 3 * 86400][:2]
    days = tuple(datetime.fromtimestamp(e, UTC).strftime("%y%m%d") for e in (near, far))
    process = EmulatorProcess(tmp_path, quarterlies=days)
    process.start()
    try:
        process.control("account", {"dual_side": True})
        for _ in range(3):  # the perpetual pays a short 0.03 % every 8 h: 32.85 % a year, above the quarterly's 0 %
            process.control("funding", {"symbol": "BTCUSDT", "rate": "0.0003"})
        done = _check(live_config(tmp_path, process.url, instrument="cheapest", max_order="0.5"))
        said = done.stdout + done.stderr
        assert "Traceback" not in said and done.returncode == 0, said
        line = next((l for l in done.stdout.splitlines() if "cheapest: opens on" in l), "")
        assert "opens on BTC/USDT:USDT:" in line and "earns the most: 32.85 % a year" in line, said
        assert f"BTC/USDT:USDT-{days[0]} 0.00 %" in line and "BTC/USDT:USDT 32.85 %" in line, line
        assert "no quarterly far enough" not in said, said
        assert "contract held: the perpetual BTC/USDT:USDT, chosen by its carry" in said, said
        assert not process.control("state")["orders"]
    finally:
        process.stop()
