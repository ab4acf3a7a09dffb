"""Files this process may not open: one message that names the file and says how to get in.

Commands run by a person who is not the service user meet state directories,
journals, status files, configs and secret files they may not read. They get
`cannot read PATH: permission denied (run as the service user, ...)` and exit
status 2, never a traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

SERVICE_USER_HINT = "run as the service user, for example sudo -u hedgebot"


def denied(path: Path | str, verb: str = "read") -> str:
    """Return the message for a file or directory this process may not `verb`."""
    return f"cannot {verb} {path}: permission denied ({SERVICE_USER_HINT})"


def unreadable(path: Path | str, exc: OSError) -> str:
    """Return why `path` could not be read: the permission message, or the system's reason."""
    if isinstance(exc, PermissionError):
        return denied(obstacle(exc.filename or path))
    return f"cannot read {path}: {exc.strerror or exc}"


def obstacle(path: Path | str) -> Path:
    """Return what keeps this process from `path`: a directory on the way it may not enter, else the path itself."""
    return blocked_directory(Path(path)) or Path(path)


def blocked_directory(path: Path) -> Path | None:
    """Return the first directory on the way to `path` this process may not enter, or None."""
    for directory in reversed(Path(os.path.abspath(path)).parents):
        if directory.is_dir() and not os.access(directory, os.X_OK):
            return directory
    return None


def require_access(path: Path, mode: int) -> None:
    """Raise PermissionError naming `path`, or the directory in the way, when this process may not use it so."""
    blocked = blocked_directory(path)
    if blocked is not None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(blocked))
    if path.exists() and not os.access(path, mode):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
