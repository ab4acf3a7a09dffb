"""deploy/: the systemd unit, the Dockerfile, the compose file and Prometheus' rules say what they must."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hedgebot.ops.health import Operations
from hedgebot.ops.metrics import build_registry, render
from tests.ops.support import running_daemon

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit_settings(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse a systemd unit: section -> key -> every value given (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_unit_is_a_hardened_notify_service_that_does_not_loop_on_a_bad_config() -> None:
    service = unit_settings((DEPLOY / "hedgebot.service").read_text())["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["Type"] == "notify" and int(one["WatchdogSec"]) > 0
    assert one["Restart"] == "on-failure" and "2" in one["RestartPreventExitStatus"].split()
    assert one["StateDirectory"] == "hedgebot" and one["ConfigurationDirectory"] == "hedgebot"
    assert one["WorkingDirectory"] == "/var/lib/hedgebot"  # created by StateDirectory=, no home directory needed
    assert one["User"] == "hedgebot" and one["User"] != "root"
    assert "--config /etc/hedgebot/hedgebot.toml" in one["ExecStart"]
    assert one["ExecReload"].endswith("kill -HUP $MAINPID")
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes"}.items():
        assert one[key] == value, key
    assert "EnvironmentFile" in service or "LoadCredential" in service


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_unit_passes_systemd_analyze_verify(tmp_path) -> None:
    # verify insists that ExecStart exists on this machine; the venv is not installed at /opt here.
    text = (DEPLOY / "hedgebot.service").read_text().replace("/opt/hedgebot/bin/hedgebot", shutil.which("true") or "/bin/true")
    unit = tmp_path / "hedgebot.service"
    unit.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_the_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck_and_a_state_volume() -> None:
    lines = [line.strip() for line in (DEPLOY / "Dockerfile").read_text().splitlines() if line.strip() and not line.startswith("#")]
    stages = [line for line in lines if line.upper().startswith("FROM ")]
    assert len(stages) >= 2 and " AS " in stages[0].upper()
    assert "slim" in stages[-1]
    final = lines[lines.index(stages[-1]):]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    health = " ".join(final[[i for i, line in enumerate(final) if line.upper().startswith("HEALTHCHECK")][0]:])
    assert "/healthz" in health
    volume = next(line for line in final if line.upper().startswith("VOLUME"))
    assert "/var/lib/hedgebot" in volume
    assert "HEDGEBOT_DAEMON__STATE_DIR=/var/lib/hedgebot" in " ".join(final)


def test_compose_runs_the_bot_with_prometheus_and_the_rules_use_metrics_hedgebot_serves() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    bot, prometheus = compose["services"]["hedgebot"], compose["services"]["prometheus"]
    assert any(v.endswith(":/var/lib/hedgebot") for v in bot["volumes"])
    assert bot["environment"]["HEDGEBOT_HTTP__TOKEN__FILE"] == "/run/secrets/hedgebot_http_token"
    assert any("hedgebot-rules.yml" in v for v in prometheus["volumes"])
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["hedgebot:9310"]
    assert job["authorization"]["credentials_file"] == "/run/secrets/hedgebot_http_token"
    rules = yaml.safe_load((DEPLOY / "prometheus" / "hedgebot-rules.yml").read_text())["groups"][0]["rules"]
    by_name = {r["alert"]: r["expr"] for r in rules}
    assert "hedgebot_liquidation_distance" in by_name["HedgebotLiquidationDistanceBelowTrigger"]
    assert "hedgebot_last_tick_timestamp_seconds" in by_name["HedgebotKeeperStale"]


async def test_every_metric_an_alerting_rule_uses_is_served(tmp_path) -> None:
    daemon, clock = await running_daemon(tmp_path)
    try:
        served = {m.name for m in build_registry(daemon.ops).collect()}
        served |= {f"{name}_total" for name in served}
    finally:
        await daemon.stop()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "hedgebot-rules.yml").read_text())["groups"][0]["rules"]
    used = {name for r in rules for name in re.findall(r"\bhedgebot_[a-z_]+", r["expr"])}
    assert used and used <= served, used - served
    assert render(build_registry(Operations(daemon.settings.http, clock.now))).startswith(b"# HELP")


def test_the_units_documentation_link_is_the_readme_the_install_steps_clone() -> None:
    unit = (DEPLOY / "hedgebot.service").read_text()
    [link] = unit_settings(unit)["Unit"]["Documentation"]
    assert link.startswith("file:///") and link.endswith("/README.md")
    checkout = link.removeprefix("file://").removesuffix("/README.md")
    readme = (DEPLOY.parent / "README.md").read_text()
    # The README's server steps and the unit's own comment clone the repository (with its README) there.
    assert re.search(rf"git clone [^\n]+? {re.escape(checkout)}\s", readme)
    assert re.search(rf"git clone [^\n]+? {re.escape(checkout)}\s", unit)


def test_the_units_exit_status_comment_does_not_call_a_taken_port_a_refused_start() -> None:
    comment = " ".join(
        line.lstrip("# ").strip() for line in (DEPLOY / "hedgebot.service").read_text().splitlines() if line.startswith("#")
    )
    refused = comment[comment.index("Exit status 2"):comment.index("restarting cannot fix it")]
    assert "port" not in refused
    assert "A taken HTTP port is not a refused start: the daemon keeps hedging" in comment


async def test_a_taken_http_port_keeps_the_daemon_hedging_as_the_unit_says(tmp_path) -> None:
    import socket

    from hedgebot.clock import SimClock
    from hedgebot.engine.daemon import Daemon
    from tests.ops.support import paper_settings

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        clock = SimClock()
        daemon = Daemon(paper_settings(tmp_path, {"http": {"port": port}}), clock, serve_http=True)
        await daemon.start()
        try:
            await clock.advance(5)
            [event] = daemon.journal.events(kind="http_unavailable")
            assert event.severity == "critical" and "retried every 30s" in event.detail["message"]
            assert daemon.keepers[0].status.short is not None and daemon.keepers[0].status.short > 0
        finally:
            await daemon.stop()


def test_the_binance_steps_ask_for_a_key_created_after_the_futures_account_was_opened() -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    steps = readme[readme.index("## Going live on Binance"):readme.index("What the start-up checks verify")]
    assert "created **after** the\n   futures account was opened" in steps
    assert "api-key-permission" in (DEPLOY.parent / "docs" / "exchanges.md").read_text()


def test_the_unit_raises_the_open_file_limit_above_systemds_default_of_1024() -> None:
    service = unit_settings((DEPLOY / "hedgebot.service").read_text())["Service"]
    assert int(service["LimitNOFILE"][-1]) > 1024


def _journal_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> object:
    """Load the paper demo's config under a replica's environment and return its [journal] section."""
    from hedgebot.config import load_config

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_config(DEPLOY.parent / "config" / "paper.toml").journal


def test_the_failover_compose_runs_postgresql_and_two_replicas_of_one_config_each_with_its_own_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = yaml.safe_load((DEPLOY / "failover" / "compose.yaml").read_text())
    services = compose["services"]
    replicas = [s for name, s in services.items() if name.startswith("hedgebot-")]
    assert "postgres" in services and len(replicas) == 2
    assert len({s["command"][2] for s in replicas}) == 1  # one config
    states = [v.split(":")[0] for s in replicas for v in s["volumes"] if v.endswith(":/var/lib/hedgebot")]
    assert len(set(states)) == 2  # its own state_dir each: the per-config lock and the status file
    for replica in replicas:
        assert replica["stop_grace_period"] == "90s" and "pg_password" in replica["secrets"]
        journal = _journal_from(replica["environment"], monkeypatch)
        assert journal.url == "postgresql://hedgebot@postgres:5432/hedgebot"  # type: ignore[attr-defined]
        assert str(journal.password.file) == "/run/secrets/pg_password"  # type: ignore[attr-defined]


def test_the_kubernetes_example_takes_the_database_password_from_a_secret_and_never_gates_rollouts_on_readyz(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "hedgebot.yaml").read_text())
    spec = deployment["spec"]
    assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    [container] = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "hedgebot", "key": "pg-password"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"  # a standby is never ready on /readyz
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > 30
    plain = {name: e["value"] for name, e in env.items() if "value" in e}
    journal = _journal_from(plain, monkeypatch)
    assert journal.url.startswith("postgresql://hedgebot@")  # type: ignore[attr-defined]
    assert journal.password.env == "PG_PASSWORD"  # type: ignore[attr-defined]
