"""Settings for operator commands, and where they came from (said on stderr, so output stays clean)."""

from __future__ import annotations

import typer

from shared.config import Settings, load_settings, settings_file


def operator_settings() -> Settings:
    """The settings an operator command runs on: the environment over the settings file — by default
    `.env`, or the running dev environment's `.dev/dev.env` — naming the file it read."""
    path = settings_file()
    if path is not None and path.is_file():
        typer.echo(f"settings: {path} (the environment wins over it)", err=True)
    return load_settings()
