"""Every process logs one JSON object a line: structlog's events, and what libraries log through the
standard library (a pool's warning during a database outage, uvicorn's errors) with its traceback."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator

import pytest
import structlog

from shared.logs import configure_logging


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """configure_logging as a stage runs it, its standard-library handlers writing to a buffer."""
    configure_logging("INFO", "json", component="confirmer")
    written = io.StringIO()
    handlers = {h for name in ("", "uvicorn.error") for h in logging.getLogger(name).handlers}
    for handler in handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(written)
    yield written
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}})


def lines(written: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in written.getvalue().splitlines() if line.strip()]


def test_a_librarys_warning_is_a_json_line(json_logs: io.StringIO) -> None:
    logging.getLogger("psycopg.pool").warning("error connecting in %r: %s", "pool-1", "refused")
    logging.getLogger("psycopg.pool").info("chatty detail")  # below WARNING for libraries
    (line,) = lines(json_logs)
    assert line["event"] == "error connecting in 'pool-1': refused"
    assert line["level"] == "warning" and line["component"] == "confirmer"
    assert line["logger"] == "psycopg.pool" and "timestamp" in line


def test_an_error_carries_its_traceback_as_text(json_logs: io.StringIO) -> None:
    try:
        raise RuntimeError("the node went away")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    (line,) = lines(json_logs)
    assert line["level"] == "error"
    exception = str(line["exception"])
    assert exception.startswith("Traceback") and "RuntimeError: the node went away" in exception


def test_uvicorn_writes_no_line_per_request(json_logs: io.StringIO) -> None:
    # uvicorn logs each request only while its access logger has a handler (hasHandlers): none here
    # (pytest's own capture handlers aside), and none above it either.
    access = logging.getLogger("uvicorn.access")
    assert not access.propagate
    assert [h for h in access.handlers if not type(h).__module__.startswith("_pytest")] == []
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST", "/api/mint/0x", "1.1", 202)
    logging.getLogger("uvicorn.error").info("Started server process")  # its own lines still are
    (line,) = lines(json_logs)
    assert line["event"] == "Started server process" and line["logger"] == "uvicorn.error"
