"""The `seldon` command: one CLI whose subcommands a Kubernetes/Seldon user can guess."""

from __future__ import annotations

import click

from seldon_serving import __version__
from seldon_serving.cli.admin_token import admin_token_command
from seldon_serving.cli.build import build_command
from seldon_serving.cli.deployments import apply_command, delete_command, get_command
from seldon_serving.cli.engine import engine_command
from seldon_serving.cli.k8s import k8s_group
from seldon_serving.cli.manifests import convert_command, generate_command, validate_command
from seldon_serving.cli.microservice import microservice_command
from seldon_serving.cli.serve import serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seldon")
@click.option(
    "--debug", is_flag=True, envvar="SELDON_DEBUG", help="Show the traceback of an unexpected error."
)
def cli(debug: bool) -> None:
    """Seldon Serving: Seldon Core compatible model serving, on a laptop or on Kubernetes."""


cli.add_command(microservice_command)
cli.add_command(serve_command)
cli.add_command(apply_command)
cli.add_command(get_command)
cli.add_command(delete_command)
cli.add_command(admin_token_command)
cli.add_command(validate_command)
cli.add_command(convert_command)
cli.add_command(generate_command)
cli.add_command(engine_command)
cli.add_command(k8s_group)
cli.add_command(build_command)


def main() -> None:
    cli(prog_name="seldon")
