"""`seldon k8s ...`: SeldonDeployments on a Kubernetes cluster (render, install, operator)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from seldon_serving.cli.errors import CliError, one_sentence
from seldon_serving.cli.k8s_install import install_command
from seldon_serving.cli.k8s_operator import operator_command
from seldon_serving.cli.options import register_servers, server_registry_options


@click.group("k8s")
def k8s_group() -> None:
    """Run SeldonDeployments on Kubernetes: the core install, the operator, what it applies."""


@k8s_group.command("render")
@click.argument("files", nargs=-1, required=True)
@click.option("-n", "--namespace", default=None, help="Namespace of manifests that name none [default].")
@click.option("--image", "runtime_image", default=None, help="Our runtime image (engines and built-ins).")
@click.option("--name", "install_name", default="seldon", show_default=True, help="The install's --name.")
@click.option(
    "--single-namespace/--cluster-wide",
    default=True,
    show_default=True,
    help="Also map /seldon/<name>/ (an install watching one namespace) or only /seldon/<ns>/<name>/.",
)
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@server_registry_options
@one_sentence
def render_command(
    files: tuple[str, ...],
    namespace: str | None,
    runtime_image: str | None,
    install_name: str,
    single_namespace: bool,
    output: str,
    servers: tuple[str, ...],
    server_config: Path | None,
) -> None:
    """Print, offline, the Kubernetes objects the operator applies for these manifests (model
    servers of your own: --server / --server-config, as `seldon serve` takes them)."""
    import json

    from seldon_serving.deploy.files import collect
    from seldon_serving.deploy.k8s.render import RenderOptions, render_manifest, to_yaml

    defaults = RenderOptions()
    options = RenderOptions(
        runtime_image=runtime_image or defaults.runtime_image,
        install_name=install_name,
        single_namespace=single_namespace,
    )
    register_servers(servers, server_config)
    stdin_text = sys.stdin.read() if "-" in files else None
    collected = collect(list(files), stdin_text=stdin_text)
    for line in collected.skipped:
        click.echo(line, err=True)
    if not collected.manifests:
        raise CliError(f"no SeldonDeployment in {', '.join(files)}")
    objects = []
    for item in collected.manifests:
        objects += render_manifest(item.manifest, namespace, options, source=item.source)
    if output == "json":
        click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2))
    else:
        click.echo(to_yaml(objects), nl=False)


k8s_group.add_command(install_command)
k8s_group.add_command(operator_command)
