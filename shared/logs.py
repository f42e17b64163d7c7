"""Structured logging: one JSON (or console) line per event, with the ids that matter."""

from __future__ import annotations

import logging
import logging.config
import sys
from typing import Any

import structlog


def configure_logging(level: str = "INFO", fmt: str = "json", *, component: str = "") -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    if component:
        structlog.contextvars.bind_contextvars(component=component)
    # What libraries log through the standard library (psycopg_pool, web3, uvicorn …) in the same form.
    logging.config.dictConfig(stdlib_logging_config(level, fmt, component=component))


class AddComponent:
    """A structlog processor naming the process's component (a class: uvicorn pickles its log config
    for each worker process)."""

    def __init__(self, component: str) -> None:
        self.component = component

    def __call__(self, _: Any, __: str, event: Any) -> Any:
        if self.component:
            event.setdefault("component", self.component)
        return event


def stdlib_logging_config(level: str = "INFO", fmt: str = "json", *, component: str = "") -> dict[str, Any]:
    """A `logging.config.dictConfig` for libraries that log through the standard library (uvicorn's
    own lines at `level`, every other library's warnings and errors): rendered like ours — one JSON
    (or console) line, with the level, time, component and, for an error, its traceback as text."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
                "foreign_pre_chain": [
                    structlog.stdlib.add_log_level,
                    structlog.stdlib.add_logger_name,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    AddComponent(component),
                ],
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            **{
                name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
                for name in ("uvicorn", "uvicorn.error")
            },
            # No line per request: uvicorn writes one only while its access logger has a handler, and
            # that line cost an eighth of the API's CPU per payment. What an answer was is in our own
            # lines (payment_queued, payment_retried) and the metrics (accepted, refused by reason).
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
