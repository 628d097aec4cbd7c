"""`seldon k8s operator` (placeholder, being written)."""

from __future__ import annotations

import click


@click.command("operator")
def operator_command() -> None:
    """Run the operator (what the install's operator Deployment runs)."""
    raise click.ClickException("not written yet")
