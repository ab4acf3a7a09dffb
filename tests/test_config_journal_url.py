"""A [journal] url that psycopg cannot parse (a raw '%' in the user or database name) ends in a traceback once a
password is set (`make_conninfo` raises outside every handler); without a password the same URL gets a clean exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedgebot.commands.main import main
from tests.helpers import paper_settings_dict, write_toml


@pytest.mark.parametrize("command", [["check"], ["journal", "check"], ["run"]], ids=["check", "journal-check", "run"])
def test_an_unparsable_journal_url_is_named_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str],
) -> None:
    monkeypatch.setenv("HB_PG_PASSWORD", "s3cret-pw")
    data = paper_settings_dict(tmp_path)
    data["journal"] = {"url": "postgresql://ops%team@db.internal/hedgebot", "password": {"env": "HB_PG_PASSWORD"}}
    data["http"] = {"enabled": False}
    config = write_toml(tmp_path / "hedgebot.toml", data)
    try:
        code = main([*command, "--config", str(config)])
    except Exception as exc:  # noqa: BLE001 - the defect is the traceback
        pytest.fail(f"`hedgebot {' '.join(command)}` raised {exc!r}")
    err = capsys.readouterr().err
    assert code == 2 and "journal" in err and "s3cret-pw" not in err, (code, err)
