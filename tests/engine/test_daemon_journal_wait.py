"""A PostgreSQL journal that does not answer at start-up is waited for, then the start is deferred, never refused for good.

The shipped unit never restarts an exit 2 (RestartPreventExitStatus=2: a bad config cannot be cured by a restart). A
database that is not up yet (the host booted first, the database fails over) must not end there: after a reboot both
the leader and the standby would stay down, with no hedge kept and no margin topped up, until a person noticed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from hedgebot.commands.main import main
from hedgebot.commands.run import EXIT_TRY_AGAIN
from hedgebot.testing.ports import free_port
from tests.helpers import paper_settings_dict, write_toml


@pytest.fixture(autouse=True)
def logging_restored():  # noqa: ANN201
    """`run` configures structlog to print to this test's captured stdout: later tests must not log to it once closed."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _closed_port() -> int:
    return free_port()


def _config(tmp_path: Path, patience: float) -> Path:
    data = paper_settings_dict(tmp_path)
    data["journal"] = {
        "url": f"postgresql://hedgebot@127.0.0.1:{_closed_port()}/hedgebot", "password": {"env": "HB_PG_PASSWORD"},
        "start_patience_seconds": patience,
    }
    data["http"] = {"enabled": False}
    return write_toml(tmp_path / "hedgebot.toml", data)


@pytest.mark.parametrize("flags", [[], ["--standby"]], ids=["leader", "standby"])
def test_a_database_that_does_not_answer_yet_is_waited_for_then_the_start_is_deferred_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], flags: list[str],
) -> None:
    monkeypatch.setenv("HB_PG_PASSWORD", "s3cret-pw")
    code = main(["run", "--config", str(_config(tmp_path, patience=2)), *flags])
    captured = capsys.readouterr()
    err, out = captured.err, captured.out
    assert code == EXIT_TRY_AGAIN == 75, err
    assert "nothing answers at that address" in err and "exiting 75" in err
    assert "journal_waiting" in out + err  # it was retried before giving the start back to the service manager
    assert "s3cret-pw" not in out + err


def test_the_unit_restarts_the_deferred_start_and_not_a_refused_one() -> None:
    unit = (Path(__file__).resolve().parents[2] / "deploy" / "hedgebot.service").read_text()
    assert "RestartPreventExitStatus=2\n" in unit and "Restart=on-failure" in unit  # 75 is a failure systemd restarts


def test_each_wait_for_the_journal_extends_the_units_start_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.ops.test_systemd import listen, received

    # deploy/hedgebot.service is Type=notify with TimeoutStartSec=180, shorter than start_patience_seconds (300):
    # without an extension systemd would kill the start while it only waits for the database.
    sock = listen(tmp_path, monkeypatch)
    monkeypatch.setenv("HB_PG_PASSWORD", "s3cret-pw")
    assert main(["run", "--config", str(_config(tmp_path, patience=2))]) == EXIT_TRY_AGAIN
    messages = received(sock)
    sock.close()
    waits = [m for m in messages if "STATUS=waiting for the journal" in m]
    assert waits and all("EXTEND_TIMEOUT_USEC=" in m for m in waits), messages
    assert "READY=1" not in "".join(messages)  # nothing was started
