"""The `seldon` command: one CLI whose subcommands a Kubernetes/Seldon user can guess."""

from __future__ import annotations

import click

from seldon_serving import __version__
from seldon_serving.cli.microservice import microservice_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seldon")
def cli() -> None:
    """Seldon Serving: Seldon Core compatible model serving, on a laptop or on Kubernetes."""


cli.add_command(microservice_command)


def main() -> None:
    cli(prog_name="seldon")
