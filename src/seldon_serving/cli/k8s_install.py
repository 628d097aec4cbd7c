"""`seldon k8s install` (placeholder, being written)."""

from __future__ import annotations

import click


@click.command("install")
def install_command() -> None:
    """Print the core install (CRD, operator, RBAC, Redis) as YAML for `kubectl apply -f -`."""
    raise click.ClickException("not written yet")
