"""Structured logging: readable lines on a terminal, JSON lines everywhere else."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from decimal import Decimal
from typing import Any, Literal

import structlog

from hedgebot.redact import redact_processor


def configure_logging(fmt: Literal["auto", "console", "json"] = "auto", level: str = "info") -> None:
    """Set up structlog for the process."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stdout.isatty())
    renderer: structlog.typing.Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _decimals_as_text,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )


def _decimals_as_text(logger: Any, method: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """Show Decimals as plain numbers (2.5, not Decimal('2.5'))."""
    return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in event.items()}
