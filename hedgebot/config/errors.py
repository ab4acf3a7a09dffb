"""The one error a configuration can raise: what cannot be used, naming the field and value.

Its own module so that the readers of files a config names (hedgebot.config.calendar) raise it without
importing the models that call them.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field and value."""
