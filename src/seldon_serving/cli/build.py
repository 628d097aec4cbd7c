"""`seldon build` (placeholder, being written)."""

from __future__ import annotations

import click


@click.command("build")
def build_command() -> None:
    """Build a model image from a directory (Seldon's s2i step)."""
    raise click.ClickException("not written yet")
