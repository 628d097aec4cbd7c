"""`seldon k8s operator`: the SeldonDeployment operator (what the install's operator Deployment
runs).  kopf and kubernetes are imported only when it runs, so `seldon --help` stays fast."""

from __future__ import annotations

import os
import re

import click

from seldon_serving.cli.errors import CliError, one_sentence

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a DNS-1123 label


def _namespaces(given: tuple[str, ...], all_namespaces: bool, environ: str | None) -> list[str] | None:
    """The namespaces to watch, None for all: flags first, else SELDON_WATCH_NAMESPACE
    (comma-separated), else all."""
    if given and all_namespaces:
        raise CliError("give --namespace or --all-namespaces, not both")
    if all_namespaces:
        return None
    chosen = list(given) or [n.strip() for n in (environ or "").split(",") if n.strip()]
    for namespace in chosen:
        if not _NAMESPACE.match(namespace):
            raise CliError(
                f"{namespace!r} is not a namespace name (lowercase letters, digits and '-', at most 63)"
            )
    return sorted(set(chosen)) or None


@click.command("operator")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    metavar="NS",
    help="Watch this namespace (repeat for several) [default: $SELDON_WATCH_NAMESPACE, else all].",
)
@click.option(
    "-A", "--all-namespaces", is_flag=True, help="Watch every namespace, whatever the environment says."
)
@click.option(
    "--liveness-port",
    default=8080,
    show_default=True,
    type=int,
    help="Port of the liveness probe, http://0.0.0.0:PORT/healthz.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log kopf's debug messages too.")
@one_sentence
def operator_command(
    namespaces: tuple[str, ...], all_namespaces: bool, liveness_port: int, verbose: bool
) -> None:
    """Run the operator: for each SeldonDeployment (any apiVersion) apply its Deployments,
    Services and autoscalers (what `seldon k8s render` prints), keep its status, until stopped.

    Render options (runtime image, Redis, images of the built-ins) come from the environment the
    install gives the operator's pod (SELDON_RUNTIME_IMAGE, SELDON_INSTALL_NAME, ...).
    """
    from seldon_serving.deploy.k8s import config

    if not 0 < liveness_port < 65536:
        raise CliError(f"--liveness-port must be between 1 and 65535, got {liveness_port}")
    watched = _namespaces(namespaces, all_namespaces, os.environ.get(config.WATCH_NAMESPACE))
    options = config.options_from_env()  # OperatorConfigError is one sentence already

    from seldon_serving.deploy.k8s import operator

    operator.run(watched, liveness_port, options, verbose=verbose)
