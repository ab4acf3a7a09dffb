"""Who owns an account: its identity, independent of paths, and the machine-wide lock on it.

Two daemons given different state directories or journals must still see each
other when they point at the same exchange account, or each takes the other's
orders for a stranger's. So the lock is taken on the account itself: a live
account is its exchange plus a fingerprint (a hash, never the key) of its API
key; a paper account is its name plus the file its simulated state lives in.
The lock files live in one runtime directory for the whole machine.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from hedgebot.config import AccountConfig, ConfigError, Settings
from hedgebot.engine.keeper import StartupRefused

LOCK_DIR_ENV = "HEDGEBOT_LOCK_DIR"
SYSTEM_LOCK_DIR = Path("/run/hedgebot")
SHARED_LOCK_DIR = Path("/tmp/hedgebot-locks")


class AccountLocked(StartupRefused):
    """Another daemon holds this account."""


@dataclass(frozen=True)
class AccountIdentity:
    """An account as the exchange sees it: `key` names the lock file, `label` is safe to print."""

    key: str
    label: str


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def account_identity(account: AccountConfig, state_dir: Path) -> AccountIdentity:
    """Return the account's identity; raise ConfigError when a live account's API key cannot be read."""
    if account.mode == "live":
        assert account.credentials is not None
        key = account.credentials.api_key.resolve(f"accounts.{account.name}.credentials.api_key")
        fingerprint = _digest(f"hedgebot-api-key\x00{key}")[:16]
        return AccountIdentity(f"live-{account.exchange}-{fingerprint}", f"{account.exchange} key {fingerprint}")
    state_file = (state_dir / f"paper-{account.name}.json").resolve()
    digest = _digest(account.name + "\x00" + str(state_file))[:16]
    return AccountIdentity(f"paper-{digest}", f"paper {account.name} at {state_file}")


def lock_directory(settings: Settings, environ: dict[str, str] | None = None) -> Path:
    """Return the machine-wide directory of account locks: configured, $HEDGEBOT_LOCK_DIR, /run/hedgebot, else /tmp."""
    env = os.environ if environ is None else environ
    if settings.daemon.lock_dir is not None:
        return settings.daemon.lock_dir
    if env.get(LOCK_DIR_ENV):
        return Path(env[LOCK_DIR_ENV])
    if SYSTEM_LOCK_DIR.is_dir() and os.access(SYSTEM_LOCK_DIR, os.W_OK | os.X_OK):
        return SYSTEM_LOCK_DIR
    return SHARED_LOCK_DIR


def _make_shared(directory: Path) -> None:
    """Create the lock directory so every user's daemon can lock in it (sticky, like /tmp)."""
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    if directory == SHARED_LOCK_DIR:
        os.chmod(directory, stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO | stat.S_ISVTX)


class IdentityLock:
    """A lock on one account identity for the daemon's life (flock: a dead holder frees it).

    A daemon on its own (SQLite) journal holds it exclusively. Daemons on a shared (PostgreSQL) journal hold
    it shared: a leader and its standby on one machine coexist (their lease decides who trades), but neither
    starts beside a daemon that runs the account on its own journal, nor that one beside them.
    """

    def __init__(self, directory: Path, identity: AccountIdentity, account: str) -> None:
        self.path = directory / f"{identity.key}.lock"
        self.identity = identity
        self.account = account
        self._handle: TextIO | None = None

    def acquire(self, *, shared: bool = False, **holder: Any) -> None:
        """Take the lock (shared among daemons on a shared journal) and write who holds it, or raise AccountLocked."""
        try:
            _make_shared(self.path.parent)
            handle = self.path.open("a+")
        except OSError as exc:
            raise StartupRefused(
                f"account {self.account!r}: cannot use the account lock directory {self.path.parent}: "
                f"{exc.strerror or exc}; set [daemon] lock_dir (or {LOCK_DIR_ENV}) to a directory every daemon on "
                "this machine can write"
            ) from None
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            handle.close()
            how = (
                "on its own journal: stop it before a daemon on the shared journal takes the account over"
                if shared else "(a daemon on a shared journal leads or stands by for it)"
                if '"shared": true' in text else ""
            )
            raise AccountLocked(f"account {self.account!r} ({self.identity.label}) is already run by a daemon ({_describe(text)})"
                                f"{' ' + how if how else ''}; two daemons on one account would trade against each other") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "shared": shared, **holder}, default=str))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the lock go."""
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _describe(text: str) -> str:
    """Describe a lock holder from its lock file: pid, state directory and journal."""
    try:
        holder = json.loads(text)
    except ValueError:
        return f"pid {text or 'unknown'}"
    if not isinstance(holder, dict):
        return f"pid {text}"
    parts = [f"pid {holder.get('pid', 'unknown')}"]
    parts += [f"{key} {holder[key]}" for key in ("state_dir", "journal") if holder.get(key)]
    return ", ".join(parts)


def identity_lock(settings: Settings, account: AccountConfig, *, venue_given: bool = False) -> IdentityLock:
    """Return the (untaken) machine-wide lock of `account`; raise StartupRefused when its identity cannot be known.

    With `venue_given` (the venue is handed in, not built from the credentials), a live account whose
    key cannot be read is known, as a paper account is, by its name and state directory.
    """
    try:
        identity = account_identity(account, settings.daemon.state_dir)
    except ConfigError as exc:
        if not venue_given:
            raise StartupRefused(f"account {account.name!r}: {exc}") from exc
        identity = account_identity(account.model_copy(update={"mode": "paper"}), settings.daemon.state_dir)
    return IdentityLock(lock_directory(settings), identity, account.name)
