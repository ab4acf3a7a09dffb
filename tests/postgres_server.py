"""A real, throw-away PostgreSQL server for tests: initdb in a temporary directory, a free port on 127.0.0.1.

PostgreSQL refuses to run as root, so when the tests run as root the server runs
as the unprivileged user `nobody` (set on the child process, so signals reach the server itself), owning its temporary directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hedgebot.testing.ports import free_port

SUPERUSER = "hedgebot"
PASSWORD = "test-pass-1234"
UNPRIVILEGED = "nobody"


def find_binaries() -> Path | None:
    """Return the directory of initdb and postgres: on PATH, else Debian's /usr/lib/postgresql/N/bin (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class PostgresServer:
    """A running server; `url(db)` names a database on it with the superuser's password."""

    bin_dir: Path
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _owner(self) -> dict[str, object]:
        """Return Popen's arguments that run a command as the unprivileged owner when we are root (signals reach it directly)."""
        if os.geteuid() != 0:
            return {}
        owner = pwd.getpwnam(UNPRIVILEGED)
        return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(UNPRIVILEGED)
            for path in (self.root, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [
                str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync", "--no-instructions",
            ],
            check=True, capture_output=True, cwd=self.root, **self._owner(),  # type: ignore[call-overload]
        )

    def start(self) -> None:
        for _ in range(5):
            self.port = free_port()
            self._launch()
            if self._wait_ready():
                return
            self.stop()
        raise RuntimeError(f"PostgreSQL did not start; see {self.root / 'server.log'}")

    def _launch(self) -> None:
        with open(self.root / "server.log", "ab") as log:
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                [
                    str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root),
                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off",
                    "-c", "synchronous_commit=off", "-c", "max_connections=60", "-c", "shared_buffers=16MB",
                ],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.root, **self._owner(),
            )

    def _wait_ready(self, patience: float = 20.0) -> bool:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                ready = subprocess.run(
                    [str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
                )
                if ready.returncode == 0:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients are cut, nothing waits for them
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start the server on the same port (clients see their connections end)."""
        self.stop()
        self._launch()
        if not self._wait_ready():
            raise RuntimeError("PostgreSQL did not come back after a restart")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_server() -> PostgresServer:
    """Start a fresh server, or raise LookupError when no PostgreSQL binaries exist on this machine."""
    bin_dir = find_binaries()
    if bin_dir is None:
        raise LookupError(
            "no PostgreSQL binaries (initdb, postgres) on PATH or in /usr/lib/postgresql/*/bin: "
            "install the Debian package `postgresql` to run these tests"
        )
    root = Path(tempfile.mkdtemp(prefix="hedgebot-pg-"))
    server = PostgresServer(bin_dir, root, 0)
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
